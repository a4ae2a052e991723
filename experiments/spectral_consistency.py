"""Is the spectral kernel estimate self-consistent across scales? (a guard that did not work)

For each LR: the spectral estimate k, the son LR * k (subsampled), the estimate k' of the son.
Under blur-then-subsample and scale invariance k' should be close to k; the idea was to flag
the nonlinear LR images (median, bilateral, diffusion) where the default fails.
  python experiments/spectral_consistency.py   (after `ikejax-degrade --hr
  ../shared/data/Set5 --scale 2 --kind K --seed 0 --out /tmp/nl/Set5-K-x2` for each kind)
"""
import glob, numpy as np
from ikejax.imaging import degrade, image_io, spectral
sets = {"DIV2KRK": "../shared/data/DIV2KRK/lr_x2"}
for k in ("median", "bilateral", "diffusion", "random"):
  sets[k] = f"/tmp/nl/Set5-{k}-x2/lr"
for name, d in sets.items():
  rows = []
  for f in sorted(glob.glob(d + "/*.png")):
    lr = image_io.read_image(f).pixels.astype(np.float64)
    try:
      k, info = spectral.estimate_kernel(lr, 2)
      son = np.clip(degrade.blur_subsample(lr, k, 2), 0, 255)
      k2, info2 = spectral.estimate_kernel(son, 2)
    except ValueError as e:
      print(name, f, e); continue
    s1, s2 = np.array(info["sigmas"]), np.array(info2["sigmas"])
    rows.append((f.split("/")[-1], s1.round(2), s2.round(2), (s2 / s1).round(2)))
  for r in rows: print(name, *r)
