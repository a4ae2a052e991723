"""Measures the two defects seen in the official IKE code's output on DIV2KRK image 2.

  python experiments/defects.py --sr SR.png --lr LR.png --hr HR.png --scale 2

Prints one Markdown table comparing the SR image, MATLAB-style bicubic
upscaling of the same LR, and the HR image:
  * 2-pixel periodic striping: Y-channel energy at the Nyquist frequency
    (`ikejax.imaging.metrics.nyquist_energy`), absolute and as a ratio to the HR's;
  * colour/brightness shift: mean signed RGB error against the HR.
Also Y-PSNR / SSIM. Everything shaves `scale` px on each side.
"""

from __future__ import annotations

import sys

import numpy as np
from absl import app
from absl import flags

from ikejax import ops
from ikejax.imaging import image_io, metrics

flags.DEFINE_string("sr", None, "super-resolved image")
flags.DEFINE_string("lr", None, "the LR input (for the bicubic baseline)")
flags.DEFINE_string("hr", None, "ground truth")
flags.DEFINE_integer("scale", 2, "SR factor")
FLAGS = flags.FLAGS


def analyse(sr: np.ndarray, lr: np.ndarray, hr: np.ndarray, scale: int) -> dict:
  """Defect measures of `sr` and of bicubic(lr), against `hr` (uint8 `[H, W, 3]`)."""
  bic = image_io.from_model_range(
      ops.imresize(image_io.to_model_range(lr, 8).astype(np.float64), float(scale)), 8)
  hr = metrics.match_size(sr, hr, scale)
  e_hr = metrics.nyquist_energy(hr, scale)["total"]
  rows = {}
  for name, img in (("ikejax", sr), ("bicubic", bic), ("HR", hr)):
    e = metrics.nyquist_energy(img, scale)["total"]
    err = metrics.mean_rgb_error(img, hr, scale)
    rows[name] = {"nyquist": e, "nyquist_vs_hr": e / e_hr, "mean_rgb_error": err,
                  **(metrics.evaluate(img, hr, scale) if name != "HR" else {})}
  return rows


def main(argv):
  del argv
  read = lambda p: image_io.read_image(p).pixels
  rows = analyse(read(FLAGS.sr), read(FLAGS.lr), read(FLAGS.hr), FLAGS.scale)
  print(f"\n{FLAGS.sr}\n")
  print("| image | Y-PSNR | SSIM | Nyquist energy | vs HR | mean RGB error (R, G, B; mean) |")
  print("|---|---|---|---|---|---|")
  for name, r in rows.items():
    err = r["mean_rgb_error"]
    psnr = f"{r['psnr_y']:.2f}" if "psnr_y" in r else "-"
    ssim = f"{r['ssim_y']:.4f}" if "ssim_y" in r else "-"
    print(f"| {name} | {psnr} | {ssim} | {r['nyquist']:.2f} | {r['nyquist_vs_hr']:.1f}x | "
          f"{err[0]:+.2f}, {err[1]:+.2f}, {err[2]:+.2f}; {np.mean(err):+.2f} |")
  sys.stdout.flush()


if __name__ == "__main__":
  flags.mark_flags_as_required(["sr", "lr", "hr"])
  app.run(main)
