"""Principal widths and orientation of kernel files, one Markdown row each.

  python experiments/kernel_moments.py K.npy|K.mat [K ...]

`ikejax.imaging.kernels.moments` of each (clipped at 0, normalised): principal sigmas (HR
px, major x minor) and the major axis's angle (degrees counter-clockwise from +x as the
array is drawn, modulo 180). Reads ikejax's `*_kernel.npy`, DIV2KRK's `kernel_<n>.mat` and
KernelGAN's `*_kernel_x2.mat` alike (`image_io.load_kernel`). Centres are not compared: the
files use different grid conventions.
"""

from __future__ import annotations

import sys

from ikejax.imaging import image_io, kernels


def main(paths: list[str]) -> None:
  if not paths:
    raise SystemExit("usage: kernel_moments.py K.npy|K.mat [K ...]")
  print("| kernel | sigmas (px) | major axis (deg) |\n|---|---|---|")
  for p in paths:
    m = kernels.moments(image_io.load_kernel(p))
    print(f"| {p} | {m['sigmas'][0]:.2f} x {m['sigmas'][1]:.2f} | {m['major_axis_deg']:.0f} |")


if __name__ == "__main__":
  main(sys.argv[1:])
