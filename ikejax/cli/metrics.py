"""`ikejax-metrics --sr SR.png --hr HR.png --scale S`: Y-PSNR and SSIM as the blind-SR
literature computes them (`ikejax.imaging.metrics`).

Prints `PSNR_Y <dB> dB  SSIM_Y <ssim>` and exits 0; bad input is one `error: ...` line, exit 2.
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

from ikejax.cli.common import fail, run_program
from ikejax.imaging import image_io, metrics


def _define_flags() -> None:
  flags.DEFINE_string("sr", None, "Super-resolved image file.")
  flags.DEFINE_string("hr", None, "Ground-truth high-resolution image file.")
  flags.DEFINE_integer("scale", None, "Super-resolution factor (also the shave width).",
                       lower_bound=1)
  flags.mark_flags_as_required(["sr", "hr", "scale"])


def main(argv: Sequence[str]) -> int:
  """Evaluates `--sr` against `--hr`; returns the process exit status."""
  if len(argv) > 1:
    fail(f"unexpected arguments: {' '.join(argv[1:])}")
  fl = flags.FLAGS
  try:
    # 16-bit images are measured on the 8-bit scale (rgb_to_y divides by 257).
    sr = image_io.read_image(fl.sr).pixels
    hr = image_io.read_image(fl.hr).pixels
    result = metrics.evaluate(sr, hr, fl.scale)
  except ValueError as e:  # ImageError is a ValueError.
    fail(str(e))
  print(f"PSNR_Y {result['psnr_y']:.4f} dB  SSIM_Y {result['ssim_y']:.4f}")
  return 0


def run() -> None:
  """Entry point of `ikejax-metrics` and `python -m ikejax.cli.metrics`."""
  run_program(_define_flags, main, __doc__)


if __name__ == "__main__":
  run()
