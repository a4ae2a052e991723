"""Does an LR's top band show whether it was prefiltered? One Markdown row per folder.

  python experiments/highband_lift.py SCALE LR_DIR [LR_DIR ...]

Per image: the Y periodogram (`spectral.power_spectrum`) within 15 degrees of the axes, a
line fitted to log P over log f at 0.08-0.24 cycles per LR px (the power law of the middle
band), and the mean lift of log P above that line at 0.40-0.48 (plain decimation aliases
energy up into that band, a prefilter removes it). Also the estimator's white floor N
(`spectral.estimate_kernel`). Gives the median and range of each per folder
(docs/recipe_log.md, "The grid is not in the spectrum").
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np

from ikejax.imaging import image_io, spectral


def lift(lr: np.ndarray) -> float:
  p, fy, fx = spectral.power_spectrum(lr)
  f, th = np.hypot(fy, fx), np.mod(np.arctan2(fy, fx), np.pi)
  axis = (np.abs(np.sin(th)) < 0.26) | (np.abs(np.cos(th)) < 0.26)
  band = lambda c: np.log(np.mean(p[axis & (f > c - 0.02) & (f < c + 0.02)]))
  mid, top = np.array([0.08, 0.12, 0.16, 0.20, 0.24]), np.array([0.40, 0.44, 0.48])
  line = np.polyfit(np.log(mid), [band(c) for c in mid], 1)
  return float(np.mean([band(c) for c in top] - np.polyval(line, np.log(top))))


def main(argv: list[str]) -> None:
  if len(argv) < 2:
    raise SystemExit("usage: highband_lift.py SCALE LR_DIR [LR_DIR ...]")
  s = int(argv[0])
  print("| LR folder | images | lift: median [range] | N: median [range] |\n|---|---|---|---|")
  for d in argv[1:]:
    rows = []
    for path in sorted(glob.glob(os.path.join(d, "*.png"))):
      lr = image_io.read_image(path).pixels.astype(np.float64)
      rows.append((lift(lr), spectral.estimate_kernel(lr, s)[1]["floor"]))
    a = np.array(rows)
    cell = lambda v: f"{np.median(v):+.2f} [{v.min():+.2f}, {v.max():+.2f}]"
    print(f"| {d} | {len(a)} | {cell(a[:, 0])} | {np.median(a[:, 1]):.2g} [{a[:, 1].min():.2g}, {a[:, 1].max():.2g}] |")


if __name__ == "__main__":
  main(sys.argv[1:])
