"""Methods side by side on the same images: one Markdown table of Y-PSNR / SSIM per image.

  python experiments/method_table.py --lr LR_DIR --gt GT_DIR --scale 2 \
      default=experiments/kept/default/DIV2KRK-x2-seed0-800it-val \
      "KernelGAN + ZSSR=experiments/kept/methods/DIV2KRK-x2-kernelgan+zssr-seed0-cropmaps" ...

Each `NAME=DIR` is a folder of `<stem>_x<s>.json` records (`python -m ikejax.main` runs).
Beside them the two zero-parameter filters (bicubic as the records score it, `sharpen`
computed here). Rows: one per image of LR_DIR that any run holds (a run without it shows
`-`), then per run the mean over the images it holds (and how many), how many of them beat
the better of bicubic and `sharpen`, and the median seconds of a whole run. A record made
from another LR file than LR_DIR's is refused (sha256), as in `filter_table.py`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np

from ikejax.imaging import filters, image_io, metrics
from ikejax.runs import records


def _q8(x01: np.ndarray) -> np.ndarray:
  return np.clip(np.round(x01 * 255), 0, 255).astype(np.uint8)


def load_run(folder: str, lr_dir: str, scale: int) -> dict[str, dict]:
  """stem -> record, every record checked against the LR file it claims."""
  out = {}
  for path in sorted(glob.glob(os.path.join(folder, f"*_x{scale}.json"))):
    stem = os.path.basename(path)[:-len(f"_x{scale}.json")]
    rec = json.load(open(path))
    lr_path = os.path.join(lr_dir, stem + ".png")
    if records.made_from_another_file(rec, lr_path):
      raise SystemExit(f"{path} was made from another file than {lr_path} (sha256 differs)")
    out[stem] = rec
  return out


def table(runs: dict[str, dict[str, dict]], lr_dir: str, gt_dir: str, scale: int) -> list[str]:
  stems = sorted({s for recs in runs.values() for s in recs},
                 key=lambda s: (len(s), s))  # im_2 before im_13
  filt = {}
  for stem in stems:
    lr01 = image_io.read_image(os.path.join(lr_dir, stem + ".png")).pixels / 255.0
    hr = image_io.read_image(os.path.join(gt_dir, stem + ".png")).pixels
    rec = next(recs[stem] for recs in runs.values() if stem in recs)
    filt[stem] = (rec["scores"]["bicubic"],
                  metrics.evaluate(_q8(filters.sharpen(lr01, scale)), hr, scale))
  fmt = lambda sc: f"{sc['psnr_y']:.2f} / {sc['ssim_y']:.4f}"
  names = list(runs)
  lines = ["| image | bicubic | sharpen | " + " | ".join(names) + " |",
           "|---" * (3 + len(names)) + "|"]
  for stem in stems:
    cells = [fmt(runs[n][stem]["scores"]["ikejax"]) if stem in runs[n] else "-" for n in names]
    lines.append(f"| {stem} | {fmt(filt[stem][0])} | {fmt(filt[stem][1])} | "
                 + " | ".join(cells) + " |")
  mean = lambda xs: float(np.mean(xs)) if xs else float("nan")
  cells = []
  for n in names:
    have = [s for s in stems if s in runs[n]]
    cells.append(f"{mean([runs[n][s]['scores']['ikejax']['psnr_y'] for s in have]):.2f} "
                 f"({len(have)})")
  lines.append(f"| mean (images) | {mean([f[0]['psnr_y'] for f in filt.values()]):.2f} | "
               f"{mean([f[1]['psnr_y'] for f in filt.values()]):.2f} | " + " | ".join(cells) + " |")
  wins, secs = [], []
  for n in names:
    have = [s for s in stems if s in runs[n]]
    better = [max(filt[s][0]["psnr_y"], filt[s][1]["psnr_y"]) for s in have]
    won = sum(runs[n][s]["scores"]["ikejax"]["psnr_y"] > b for s, b in zip(have, better))
    wins.append(f"{won} of {len(have)}")
    t = [runs[n][s].get("timings", {}).get("total_s") for s in have]
    t = [x for x in t if x is not None]
    secs.append(f"{np.median(t):.0f}" if t else "-")
  lines.append("| above the better filter | | | " + " | ".join(wins) + " |")
  lines.append("| seconds per image (median) | | | " + " | ".join(secs) + " |")
  return lines


def main(argv=None) -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("runs", nargs="+", help="NAME=DIR")
  ap.add_argument("--lr", required=True)
  ap.add_argument("--gt", required=True)
  ap.add_argument("--scale", type=int, default=2)
  a = ap.parse_args(argv)
  runs = {}
  for spec in a.runs:
    name, sep, folder = spec.partition("=")
    if not sep or not os.path.isdir(folder):
      raise SystemExit(f"error: expected NAME=DIR with an existing DIR, got {spec!r}")
    runs[name] = load_run(folder, a.lr, a.scale)
  print("\n".join(table(runs, a.lr, a.gt, a.scale)))


if __name__ == "__main__":
  main()
