"""Scores estimated kernels against the ground truth (Markdown and CSV table).

  python experiments/score_kernels.py --run ike=results/t2/x2-paper --run kernelgan=results/kg/x2 \
      --scale 2 [--data ../shared/data/DIV2KRK] --out results/kernels_x2

`--data` is DIV2KRK's layout (`gt/`, `lr_x<s>/`, `gt_k_x<s>/kernel_<n>.mat`) or a folder
written by `ikejax-degrade` with a kernel kind (`hr/`, `lr/`, `kernels/<stem>.npy`,
centred kernels as DIV2KRK stores them), e.g. the `random` and `taps` sets.

Each `--run NAME=DIR` is an output folder holding `<stem>_x<s>_kernel.npy` files (written
by every ikejax run). Per image and method (`ikejax.kernels.compare_kernels` and
`regenerated_lr_psnr`): L1 and kernel PSNR after integer alignment against the ground
truth shifted to the DIV2KRK convention, the principal sigmas, and the RGB PSNR of the LR
regenerated from the HR with the estimate (the ground truth itself reaches ~51 dB this way;
its row is given as `truth`). Means over the images every method has.
"""

from __future__ import annotations

import argparse
import csv
import os

import numpy as np

from ikejax.imaging import degrade, image_io, kernels


def cases(data: str, s: int):
  """The image stems under `data` and `load(stem) -> (centred truth kernel, HR, LR)`."""
  if os.path.isdir(os.path.join(data, "kernels")):  # written by ikejax.imaging.degrade
    lr_dir = os.path.join(data, "lr")
    load = lambda n: (np.load(os.path.join(data, "kernels", f"{n}.npy")),
                      image_io.read_image(os.path.join(data, "hr", f"{n}.png")).pixels,
                      image_io.read_image(os.path.join(lr_dir, f"{n}.png")).pixels)
    order = str
  else:  # DIV2KRK
    lr_dir = os.path.join(data, f"lr_x{s}")
    load = lambda n: (image_io.load_kernel(os.path.join(data, f"gt_k_x{s}",
                                                        f"kernel_{n.split('_')[1]}.mat")),
                      image_io.read_image(os.path.join(data, "gt", f"{n}.png")).pixels,
                      image_io.read_image(os.path.join(lr_dir, f"{n}.png")).pixels)
    order = lambda n: int(n.split("_")[1])
  if not os.path.isdir(lr_dir):
    raise SystemExit(f"score_kernels: no {lr_dir} (need DIV2KRK's layout or ikejax.imaging.degrade's)")
  names = sorted((f[:-4] for f in os.listdir(lr_dir) if f.endswith(".png")), key=order)
  return names, load


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--run", action="append", required=True, help="NAME=DIR")
  p.add_argument("--scale", type=int, required=True, choices=(2, 3, 4))
  p.add_argument("--data", default="../shared/data/DIV2KRK")
  p.add_argument("--out", required=True, help="output path without extension")
  a = p.parse_args()
  runs = dict(r.split("=", 1) for r in a.run)
  s = a.scale
  names, load = cases(a.data, s)
  rows = []
  for name in names:
    truth, hr, lr = load(name)
    gt_sig = kernels.moments(truth)["sigmas"]
    rows.append({"image": name, "method": "truth", "l1": 0.0, "kernel_psnr": None,
                 "sigmas": f"{gt_sig[0]:.2f}/{gt_sig[1]:.2f}", "shift": "",
                 "lr_psnr": kernels.regenerated_lr_psnr(hr, lr, degrade.kernel_shift(truth, s), s)})
    for method, d in runs.items():
      path = os.path.join(d, f"{name}_x{s}_kernel.npy")
      if not os.path.isfile(path):
        rows.append({"image": name, "method": method, "l1": None})
        continue
      est = np.load(path)
      c = kernels.compare_kernels(est, truth, s)
      sig = c["sigmas_estimate"]
      rows.append({"image": name, "method": method, "l1": c["l1"],
                   "kernel_psnr": c["kernel_psnr"], "sigmas": f"{sig[0]:.2f}/{sig[1]:.2f}",
                   "shift": f"{c['shift'][0]},{c['shift'][1]}",
                   "lr_psnr": kernels.regenerated_lr_psnr(hr, lr, est, s)})
    print(*[r for r in rows if r["image"] == name], sep="\n", flush=True)

  keys = ["image", "method", "l1", "kernel_psnr", "sigmas", "shift", "lr_psnr"]
  fmt = lambda v: "" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
  os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
  with open(a.out + ".csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=keys)
    w.writeheader()
    w.writerows([{k: fmt(r.get(k)) for k in keys} for r in rows])
  lines = [f"**Kernel estimates vs the ground truth of {a.data}, x{s}** (L1 and kernel PSNR after "
           "integer alignment; sigmas in px; LR PSNR: the LR regenerated from HR with the "
           "kernel vs the stored LR, dB)", "",
           "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
  lines += ["| " + " | ".join(fmt(r.get(k)) if r.get("l1") is not None or k in ("image", "method")
                              else "missing" for k in keys) + " |" for r in rows]
  lines += ["", "| mean over images every method has | l1 | kernel_psnr | lr_psnr |", "|---|---|---|---|"]
  methods = ["truth"] + list(runs)
  complete = [n for n in names if all(any(r["image"] == n and r["method"] == m and
                                          r.get("l1") is not None for r in rows)
                                      for m in methods)]
  for m in methods:
    sel = [r for r in rows if r["method"] == m and r["image"] in complete]
    if not sel:
      continue
    mean = lambda k: np.mean([r[k] for r in sel]) if all(r[k] is not None for r in sel) else None
    lines.append(f"| {m} ({len(sel)} images) | {fmt(mean('l1'))} | {fmt(mean('kernel_psnr'))} | "
                 f"{fmt(mean('lr_psnr'))} |")
  with open(a.out + ".md", "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
