"""Which paper-vs-code difference drives the paper preset's artifacts? (DIV2KRK image 2, x2)

  python experiments/paper_vs_code_weights.py [NAME ...]   (default: all; 400 iterations each)

Each variant is the `paper` preset with one setting changed to the official
code's value (or the decode GAN switched off); schedules scale with `iters`.
Prints Y-PSNR / SSIM per variant; outputs go to results/paper_vs_code/NAME/.
Resumable: a variant whose run record exists is not run again.
"""

import json
import os
import sys

from ikejax.cli import main as cli

DATA = os.environ.get("DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
VARIANTS = {
    "paper": {},
    "no_bwd": dict(lambda_csr_bwd=0.0),      # L_CSR^bwd off (project-page ablation row).
    "bwd2": dict(lambda_csr_bwd=2.0),        # the code's lamda_cycleGAN.
    "tv_sq": dict(tv_kind="squared"),        # the code's TVLoss.
    "torch": dict(resize_kind="torch"),      # the code's align_corners bicubic.
}


def main(names):
  d = os.path.join(DATA, "DIV2KRK")
  for name in names or VARIANTS:
    out = os.path.join("results", "paper_vs_code", name)
    record_path = os.path.join(out, "im_2_x2.json")
    if not os.path.exists(record_path):
      cli.run(os.path.join(d, "lr_x2", "im_2.png"), out, "paper", 0, scale=2,
              overrides=dict(iters=400, **VARIANTS[name]),
              hr_path=os.path.join(d, "gt", "im_2.png"), progress=False)
    with open(record_path) as f:
      r = json.load(f)
    s = r["scores"]
    print(f"| {name} | {s['ikejax']['psnr_y']:.2f} | {s['ikejax']['ssim_y']:.4f} | "
          f"{s['bicubic']['psnr_y']:.2f} | {r['timings']['s_per_iter']:.3f} |", flush=True)


if __name__ == "__main__":
  main(sys.argv[1:])
