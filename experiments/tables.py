"""Per-image comparison table from folder runs' manifests (Markdown and CSV).

  python experiments/tables.py --run paper=results/t2/x2-paper --run reference=results/t2/x2-reference \
      --title "DIV2KRK x2" --out results/t2/x2

Each `--run NAME=DIR[,DIR...]` names `python -m ikejax.main --images ... --gt ...` output
folders (several are merged, e.g. one method's Set5 and Set14 runs). Rows:
one per image (Y-PSNR / SSIM of bicubic, then of each run), then the mean over the images
every run finished, per run the number of images where it beats bicubic in PSNR, and the
median seconds per image (the upper median for an even count; a batched IKE image counts
its share of the batch). A missing or failed image shows its status instead of scores.
Pictures: each run's folder already holds `<stem>_x<s>_compare.png` (LR | bicubic | ikejax |
HR) per image.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os

from ikejax.runs import folder


def load(run_dirs: str) -> dict[str, dict]:
  """image file name -> manifest row, over every manifest (all processes) of the folders.

  `run_dirs` is one folder or several, comma-separated (e.g. Set5 and Set14 runs of one
  method, or a run and its `experiments/records.py` folder); an image name found twice keeps
  the later folder's row, unless only the earlier one is finished.
  """
  rows = {}
  for run_dir in run_dirs.split(","):
    paths = sorted(glob.glob(os.path.join(run_dir, "manifest*.json")))
    if not paths:
      raise SystemExit(f"error: no manifest in {run_dir}")
    for path in paths:
      with open(path, encoding="utf-8") as f:
        for row in json.load(f)["images"]:
          name = os.path.basename(row["image"])
          if _finished(rows.get(name)) and not _finished(row):
            continue
          rows[name] = row
  return rows


def _finished(row) -> bool:
  return bool(row) and row.get("status") in folder.FINISHED


def _score(row) -> str:
  if not _finished(row):
    return (row or {}).get("status", "missing")
  if row.get("psnr_y") is None:
    return "no GT"
  return f"{row['psnr_y']:.2f} / {row['ssim_y']:.4f}"


def table(runs: dict[str, dict[str, dict]], title: str) -> tuple[str, list[dict]]:
  names = sorted(set().union(*[set(r) for r in runs.values()]))
  scored = lambda row: row and row.get("psnr_y") is not None
  complete = [n for n in names if all(scored(r.get(n)) for r in runs.values())]
  first = next(iter(runs.values()))
  header = ["image", "bicubic"] + list(runs)
  lines = [f"**{title}** (Y-PSNR dB / SSIM)", "", "| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
  out = []
  for n in names:
    bic = first.get(n)
    cells = [n, (f"{bic['bicubic_psnr_y']:.2f} / {bic['bicubic_ssim_y']:.4f}"
                 if scored(bic) else "")] + [_score(r.get(n)) for r in runs.values()]
    lines.append("| " + " | ".join(cells) + " |")
    out.append(dict(zip(header, cells)))
  if complete:
    mean = lambda rows, k: sum(rows[n][k] for n in complete) / len(complete)
    cells = [f"mean of {len(complete)}", f"{mean(first, 'bicubic_psnr_y'):.2f} / "
             f"{mean(first, 'bicubic_ssim_y'):.4f}"]
    cells += [f"{mean(r, 'psnr_y'):.2f} / {mean(r, 'ssim_y'):.4f}" for r in runs.values()]
    lines.append("| " + " | ".join(cells) + " |")
    out.append(dict(zip(header, cells)))
    wins = ["beats bicubic (PSNR)", ""] + [
        f"{sum(r[n]['psnr_y'] > r[n]['bicubic_psnr_y'] for n in complete)} of {len(complete)}"
        for r in runs.values()]
    lines.append("| " + " | ".join(wins) + " |")
    out.append(dict(zip(header, wins)))
    secs = lambda r: [r[n].get("seconds") for n in complete if r[n].get("seconds") is not None]
    times = ["seconds per image (median)", ""] + [
        f"{sorted(secs(r))[len(secs(r)) // 2]:.0f}" if secs(r) else "" for r in runs.values()]
    lines.append("| " + " | ".join(times) + " |")
    out.append(dict(zip(header, times)))
  return "\n".join(lines) + "\n", out


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument("--run", action="append", required=True,
                 help="NAME=DIR[,DIR...] (repeatable)")
  p.add_argument("--title", default="")
  p.add_argument("--out", required=True, help="path prefix of the .md and .csv")
  a = p.parse_args()
  runs = {}
  for item in a.run:
    name, _, d = item.partition("=")
    runs[name] = load(d)
  md, rows = table(runs, a.title)
  os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
  with open(a.out + ".md", "w", encoding="utf-8") as f:
    f.write(md)
  with open(a.out + ".csv", "w", newline="", encoding="utf-8") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
  print(md)


if __name__ == "__main__":
  main()
