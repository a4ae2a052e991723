"""Quick protocol for recipe exploration: one config on a few DIV2KRK images, one seed.

Trains the config on each whole LR image, and every `--every` iterations scores the
whole-image SR (Y-PSNR, `ikejax.imaging.metrics`) and the learned downscaler: its kernel's L1
against the true kernel (`kernels.compare_kernels`) and "degPSNR", the PSNR between the
true LR and the HR degraded with the learned kernel (interior; ~53 dB for the true
kernel). Prints one line per checkpoint beside the image's bicubic and `sharpen` scores;
writes the curves to `--out/<name>_s<seed>.json`.

  python experiments/recipe_probe.py --name SS --config selfsup --images 23,2 \
      --iters 600 --every 150 [--set '{"lambda_kernel": 0.0}'] [--seed 0] [--scale 2]

Exploring only (docs/recipe_log.md): confirm a recipe on all images and 3 seeds.
"""

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.io

from ikejax import patches
from ikejax.ike import configs, infer, kernel, train
from ikejax.imaging import filters, image_io, kernels, metrics

DATA = os.environ.get("DATA", os.path.join(os.path.dirname(__file__), "../../shared/data"))


def q8(x01):
  return np.clip(np.round(x01 * 255), 0, 255).astype(np.uint8)


def probe(name, preset, overrides, images, iters, seed, every, scale, out):
  d = os.path.join(DATA, "DIV2KRK")
  rows = []
  for im in images:
    lr = image_io.read_image(f"{d}/lr_x{scale}/im_{im}.png").pixels
    hr = image_io.read_image(f"{d}/gt/im_{im}.png").pixels
    k_true = scipy.io.loadmat(f"{d}/gt_k_x{scale}/kernel_{im}.mat")["Kernel"]
    h, w = lr.shape[0] // scale * scale, lr.shape[1] // scale * scale
    lr = lr[:h, :w]
    lr01 = lr.astype(np.float64) / 255
    cfg = configs.get_config(preset, **{**overrides, "scale": scale, "iters": iters})
    cfg, _ = train.adapt_crop(cfg, h, w)
    p_g, p_d = patches.crop_samplers(lr01, cfg.crop, cfg.crop // scale, scale)
    k_init, k_step = jax.random.split(jax.random.key(seed))
    state = train.create_state(k_init, cfg)
    step = train.make_train_step(cfg)
    x = jnp.asarray(2 * lr01 - 1, jnp.float32)
    row = {"image": im, "bicubic": metrics.psnr_y(q8(filters.bicubic(lr01, scale)), hr, scale),
           "sharpen": metrics.psnr_y(q8(filters.sharpen(lr01, scale)), hr, scale), "curve": []}
    t0, train_s = time.time(), 0.0
    for it in range(iters + 1):
      if it % every == 0 or it == iters:
        train_s += time.time() - t0
        sr = q8((infer.super_resolve(state, np.asarray(x), cfg) + 1) / 2)
        psnr = metrics.psnr_y(sr, hr, scale)
        k_est, _ = kernel.ike_kernel(state.ema["flow"], cfg)
        k_l1 = kernels.compare_kernels(k_est, k_true, scale)["l1"]
        lr_hat = kernels.apply_kernel(hr.astype(np.float64), k_est, scale)[:h, :w]
        err = (lr_hat - lr)[8:-8, 8:-8]
        deg = 10 * np.log10(255 ** 2 / np.mean(err ** 2))
        row["curve"].append({"iteration": it, "psnr_y": psnr, "kernel_l1": k_l1,
                             "deg_psnr": deg, "train_s": train_s})
        print(f"{name} im_{im} it {it}: {psnr:.3f} dB (bicubic {row['bicubic']:.3f}, "
              f"sharpen {row['sharpen']:.3f})  kernel L1 {k_l1:.3f}  degPSNR {deg:.2f}  "
              f"{train_s:.0f} s", flush=True)
        t0 = time.time()
      if it < iters:
        state, _ = step(state, x, p_g, p_d, k_step)
    rows.append(row)
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, f"{name}_s{seed}.json"), "w") as f:
    json.dump({"name": name, "preset": preset, "overrides": overrides, "iters": iters,
               "seed": seed, "scale": scale, "rows": rows}, f, indent=1)
  delta = [r["curve"][-1]["psnr_y"] - r["sharpen"] for r in rows]
  print(f"{name}: final - sharpen per image {np.round(delta, 3).tolist()}, "
        f"mean {np.mean(delta):+.3f} dB")


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--name", required=True)
  ap.add_argument("--config", default="selfsup")
  ap.add_argument("--set", default="{}", help="JSON of IKEConfig overrides")
  ap.add_argument("--images", default="23,2", help="DIV2KRK numbers, comma-separated")
  ap.add_argument("--iters", type=int, default=600)
  ap.add_argument("--every", type=int, default=150)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--scale", type=int, default=2)
  ap.add_argument("--out", default="results/recipe_probe")
  a = ap.parse_args()
  probe(a.name, a.config, json.loads(a.set), a.images.split(","), a.iters, a.seed, a.every,
        a.scale, a.out)
