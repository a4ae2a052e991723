"""A run folder's records beside the two reference filters, per image (Y-PSNR / SSIM).

  python experiments/filter_table.py --records OUT --lr LR_DIR --gt GT_DIR --scale 2 \
      [--append docs/results.md --title "..."]

Prints a markdown table: bicubic, `sharpen` (ikejax.imaging.filters, computed here) and the run's
own scores from its records, with the run's seconds per image and the mean; the deltas are
against `sharpen`, or with `--better` against the better of the two filters on each image. `--append`
adds it to a file under `--title`, with the command, the records' machine and the date.
"""

import argparse
import glob
import json
import os
import shlex
import sys
import time

import numpy as np

from ikejax.imaging import filters, image_io, metrics
from ikejax.runs import records


def _cpu() -> str:
  """This machine's CPU model and core count (the tables are made where the runs ran)."""
  try:
    model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                 if l.startswith("model name"))
  except (OSError, StopIteration):
    model = "unknown CPU"
  return f"{os.cpu_count()} cores, {model}"


def q8(x01):
  return np.clip(np.round(x01 * 255), 0, 255).astype(np.uint8)


def seed_spread(folders, scale):
  """Per image, over the seed folders that hold it: mean and std (n-1) of Y-PSNR."""
  runs = {}
  for d in folders:
    for path in glob.glob(os.path.join(d, f"*_x{scale}.json")):
      stem = os.path.basename(path)[:-len(f"_x{scale}.json")]
      runs.setdefault(stem, []).append(json.load(open(path))["scores"]["ikejax"]["psnr_y"])
  return {k: (np.mean(v), np.std(v, ddof=1) if len(v) > 1 else float("nan"), len(v))
          for k, v in runs.items()}


def main(a):
  rows = []
  for path in sorted(glob.glob(os.path.join(a.records, f"*_x{a.scale}.json"))):
    rec = json.load(open(path))
    stem = os.path.basename(path)[:-len(f"_x{a.scale}.json")]
    lr_path = os.path.join(a.lr, stem + ".png")
    if records.made_from_another_file(rec, lr_path):
      raise SystemExit(f"{path} was made from another file than {lr_path} (sha256 differs)")
    lr01 = image_io.read_image(lr_path).pixels / 255.0
    hr = image_io.read_image(os.path.join(a.gt, stem + ".png")).pixels
    sharp = metrics.evaluate(q8(filters.sharpen(lr01, a.scale)), hr, a.scale)
    rows.append((stem, rec["scores"]["bicubic"], sharp, rec["scores"]["ikejax"],
                 rec["timings"].get("total_s", float("nan"))))
  if a.seeds:
    spread = seed_spread([a.records] + a.seeds, a.scale)
    lines = ["| image | sharpen | run, mean +- std over seeds | n | mean - sharpen (dB) |",
             "|---|---|---|---|---|"]
    for stem, _, sh, _, _ in rows:
      m, sd, n = spread[stem]
      lines.append(f"| {stem} | {sh['psnr_y']:.2f} | {m:.2f} +- {sd:.2f} | {n} | "
                   f"{m - sh['psnr_y']:+.2f} |")
    means = [spread[r[0]][0] for r in rows]
    lines.append(f"| mean of {len(rows)} | {np.mean([r[2]['psnr_y'] for r in rows]):.2f} | "
                 f"{np.mean(means):.2f} | | {np.mean(means) - np.mean([r[2]['psnr_y'] for r in rows]):+.2f} "
                 f"({sum(m > r[2]['psnr_y'] for m, r in zip(means, rows))} of {len(rows)} above) |")
    _emit(a, lines)
    return
  # The reference per image: `sharpen`, or with --better the better of bicubic and sharpen
  # (where the LR is aliased, sharpening amplifies the aliasing and falls below bicubic).
  ref = (lambda b, sh: max(b["psnr_y"], sh["psnr_y"])) if a.better else (lambda b, sh: sh["psnr_y"])
  versus = "better filter" if a.better else "sharpen"
  lines = [f"| image | bicubic | sharpen | run | run - {versus} (dB) | s |",
           "|---|---|---|---|---|---|"]
  fmt = lambda d: f"{d['psnr_y']:.2f} / {d['ssim_y']:.4f}"
  for stem, b, sh, r, t in rows:
    lines.append(f"| {stem} | {fmt(b)} | {fmt(sh)} | {fmt(r)} | "
                 f"{r['psnr_y'] - ref(b, sh):+.2f} | {t:.0f} |")
  mean = lambda i, k: np.mean([row[i][k] for row in rows])
  refs = [ref(row[1], row[2]) for row in rows]
  wins = sum(row[3]["psnr_y"] > r for row, r in zip(rows, refs))
  lines.append(f"| mean of {len(rows)} | {mean(1, 'psnr_y'):.2f} / {mean(1, 'ssim_y'):.4f} | "
               f"{mean(2, 'psnr_y'):.2f} / {mean(2, 'ssim_y'):.4f} | "
               f"{mean(3, 'psnr_y'):.2f} / {mean(3, 'ssim_y'):.4f} | "
               f"{mean(3, 'psnr_y') - np.mean(refs):+.2f} ({wins} of {len(rows)} above) | "
               f"{np.median([row[4] for row in rows]):.0f} (median) |")
  _emit(a, lines)


def _emit(a, lines):
  print("\n".join(lines))
  if a.append:
    rec = json.load(open(sorted(glob.glob(os.path.join(a.records, f"*_x{a.scale}.json")))[0]))
    dev = rec["device"]
    head = [f"## {a.title}", "",
            f"`python {shlex.join(sys.argv)}` ({time.strftime('%Y-%m-%d')}; records made on "
            f"{dev['platform']} ({_cpu()}), jax {rec['versions']['jax']}; Y-PSNR / SSIM as "
            "`ikejax.imaging.metrics`, seconds: the whole run of one image).", ""]
    with open(a.append, "a") as f:
      f.write("\n".join(head + lines) + "\n\n")


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--records", required=True)
  ap.add_argument("--lr", required=True)
  ap.add_argument("--gt", required=True)
  ap.add_argument("--scale", type=int, default=2)
  ap.add_argument("--append", default=None, help="markdown file to add the table to")
  ap.add_argument("--seeds", nargs="*", default=[],
                  help="more record folders of the same images (other seeds): per-image spread")
  ap.add_argument("--title", default="Results")
  ap.add_argument("--better", action="store_true",
                  help="deltas against the better of bicubic and sharpen, per image")
  main(ap.parse_args())
