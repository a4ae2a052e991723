"""Regenerates every DIV2KRK LR image at hand from its HR and kernel; prints and saves the PSNRs.

  python experiments/regenerate_div2krk.py [--data ../shared/data/DIV2KRK] [--out results/regenerate]

Three conventions per image and scale (RGB PSNR against the stored LR, 16 px border ignored):
`ikejax` (`degrade.blur_subsample`: the kernel's centre of mass shifted onto the
subsampling grid within its window, not renormalised, correlate, `[::s]`), `padded` (the
shift after zero-padding, as KernelGAN's `kernel_shift`, so no mass is lost) and `as stored`
(no shift). Writes `regenerate_div2krk.md` and `.csv`.
"""

from __future__ import annotations

import argparse
import csv
import os

import numpy as np
import scipy.ndimage

from ikejax.imaging import degrade, image_io


def _psnr(a: np.ndarray, b: np.ndarray, border: int = 16) -> float:
  a, b = a[border:-border, border:-border], b[border:-border, border:-border]
  return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


def _blur(hr, k, s):
  return np.clip(np.rint(np.stack([scipy.ndimage.correlate(hr[..., c], k, mode="reflect")
                                   for c in range(3)], -1)[::s, ::s]), 0, 255)


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument("--data", default="../shared/data/DIV2KRK")
  p.add_argument("--out", default="results/regenerate")
  a = p.parse_args()
  names = sorted((f[:-4] for f in os.listdir(os.path.join(a.data, "gt")) if f.endswith(".png")),
                 key=lambda n: int(n.split("_")[1]))
  rows = []
  for name in names:
    n = name.split("_")[1]
    hr = image_io.read_image(os.path.join(a.data, "gt", f"{name}.png")).pixels.astype(np.float64)
    for s in (2, 4):
      lr = image_io.read_image(os.path.join(a.data, f"lr_x{s}", f"{name}.png")).pixels
      k = image_io.load_kernel(os.path.join(a.data, f"gt_k_x{s}", f"kernel_{n}.mat"))
      size = np.asarray(k.shape)
      shift = size // 2 + 0.5 * (s - size % 2) - np.asarray(scipy.ndimage.center_of_mass(k))
      pad = int(np.ceil(np.abs(shift).max())) + 1
      padded = scipy.ndimage.shift(np.pad(k, pad), shift, order=3, mode="constant")
      ours = degrade.kernel_shift(k, s)
      rows.append({"image": name, "scale": s, "kernel": f"{k.shape[0]}x{k.shape[1]}",
                   "shifted kernel mass": round(float(ours.sum()), 4),
                   "ikejax": round(_psnr(np.clip(np.rint(degrade.blur_subsample(hr, k, s)),
                                                 0, 255), lr), 2),
                   "padded": round(_psnr(_blur(hr, padded / padded.sum(), s), lr), 2),
                   "as stored": round(_psnr(_blur(hr, k, s), lr), 2)})
      print(rows[-1], flush=True)
  os.makedirs(a.out, exist_ok=True)
  keys = list(rows[0])
  with open(os.path.join(a.out, "regenerate_div2krk.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
  lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
  lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
  with open(os.path.join(a.out, "regenerate_div2krk.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
