"""How much of a nonlinear-set score is the sampling grid? Re-scores finished runs, shifted.

  python experiments/grid_offset.py results/s7/nonlinear300            # every RUN under runs/
  python experiments/grid_offset.py OUT Set5-median-x4 Set5-random-x4  # some of them

OUT is a `bash experiments/table_nonlinear.sh OUT ...` folder (`OUT/data/RUN/{lr,hr}`,
`OUT/runs/RUN/<stem>_x<s>.png`). The nonlinear kinds keep `[::s, ::s]` of the filtered HR, so
LR pixel i sits on HR pixel s*i; bicubic (MATLAB's half-pixel convention) and the `paper`
preset's residual put it at s*i + (s-1)/2. This script shifts each output by -(s-1)/2 HR px
(cubic spline, edge-nearest, then rounded to 8 bit) and scores Y-PSNR again with
`ikejax.imaging.metrics.psnr_y`, for bicubic and for ikejax, printing one Markdown row per run (means
over the images the run finished). The kernel kinds (`random`, `taps`) are centred by their
kernel shift, so there the shift is a control: it must lower both scores.
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np
import scipy.ndimage

from ikejax import ops
from ikejax.imaging import image_io, metrics


def _load(path: str) -> np.ndarray:
  return image_io.read_image(path).pixels.astype(np.float64)


def _shift(img: np.ndarray, d: float) -> np.ndarray:
  """[H, W, 3] -> [H, W, 3], moved by d px along both axes, rounded to 8 bit as saved."""
  out = np.stack([scipy.ndimage.shift(img[..., c], (d, d), order=3, mode="nearest")
                  for c in range(3)], -1)
  return np.clip(np.rint(out), 0, 255)


def run_row(out: str, name: str) -> str | None:
  """Markdown row for OUT/runs/NAME, or None when it finished no image."""
  s = int(name.rsplit("-x", 1)[1])
  d = -(s - 1) / 2
  scores = []
  for hr_path in sorted(glob.glob(os.path.join(out, "data", name, "hr", "*.png"))):
    stem = os.path.splitext(os.path.basename(hr_path))[0]
    sr_path = os.path.join(out, "runs", name, f"{stem}_x{s}.png")
    if not os.path.exists(sr_path):
      continue
    hr, sr = _load(hr_path), _load(sr_path)
    lr = _load(os.path.join(out, "data", name, "lr", f"{stem}.png"))
    bic = np.clip(np.rint(np.asarray(ops.imresize(lr, s, "matlab"))), 0, 255)
    scores.append([metrics.psnr_y(x, hr, s) for x in (bic, _shift(bic, d), sr, _shift(sr, d))])
  if not scores:
    return None
  b, bs, i, is_ = np.mean(scores, 0)
  return (f"| {name} | {len(scores)} | {b:.2f} | {bs:.2f} ({bs - b:+.2f}) | {i:.2f} | "
          f"{is_:.2f} ({is_ - i:+.2f}) | {i - b:+.2f} | {is_ - bs:+.2f} |")


def main(argv: list[str]) -> int:
  if len(argv) < 2 or not os.path.isdir(os.path.join(argv[1], "runs")):
    print("usage: python experiments/grid_offset.py OUT [RUN ...] (OUT/runs must exist)",
          file=sys.stderr)
    return 2
  out = argv[1]
  names = argv[2:] or sorted(os.path.basename(p)
                              for p in glob.glob(os.path.join(out, "runs", "*-x*")))
  print("| run | images | bicubic | bicubic, shifted | ikejax | ikejax, shifted | ikejax - bicubic"
        " | the same, shifted |")
  print("|---|---|---|---|---|---|---|---|")
  for name in names:
    row = run_row(out, name)
    if row:
      print(row, flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
