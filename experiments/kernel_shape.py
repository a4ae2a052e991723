"""How far each run's learned kernels are from a blur (one Markdown row per run).

  python experiments/kernel_shape.py experiments/kept/nonlinear300/Set14-random-x4 [DIR ...]

Reads every `*_kernel.npy` in each DIR (an ikejax run folder or a kept records folder)
and gives `ikejax.imaging.kernels.shape` over them: the range of L1 norms with the upper median in
brackets (a blur has 1) and the range of the share of negative taps (a blur has 0%), as in
docs/notebook.md's "IKE kernels" columns. No ground truth needed (`score_kernels.py` compares
against it).
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np

from ikejax.imaging import kernels


def row(run_dir: str) -> str:
  files = sorted(glob.glob(os.path.join(run_dir, "*_kernel.npy")))
  if not files:
    raise SystemExit(f"kernel_shape: no *_kernel.npy in {run_dir}")
  shapes = [kernels.shape(np.load(f)) for f in files]
  l1 = sorted(s["l1_norm"] for s in shapes)
  neg = [100 * s["negative_mass"] for s in shapes]
  return (f"| {run_dir} | {len(files)} | {l1[0]:.1f}-{l1[-1]:.0f} ({l1[len(l1) // 2]:.1f}) | "
          f"{min(neg):.0f}-{max(neg):.0f}% |")


def main(argv: list[str]) -> None:
  if not argv:
    raise SystemExit(__doc__.split("\n\n")[1])
  print("| run | kernels | L1 norm (upper median) | negative mass |\n|---|---|---|---|")
  for d in argv:
    print(row(d))


if __name__ == "__main__":
  main(sys.argv[1:])
