"""Quick protocol: the default recipe with its sons made by a chosen kernel, on a degraded set.

The default decoder is trained on son -> father pairs whose sons are made by the LR's
spectral kernel estimate. This probe swaps that kernel, keeping everything else, and scores
the SR (Y-PSNR, `ikejax.imaging.metrics`) beside bicubic:
  * `spectral`: the default (what `--config default` does);
  * `delta`: a 3x3 operator-window impulse, i.e. sons by plain `[::s, ::s]` decimation, the
    `corner` grid of `ikejax-degrade`'s nonlinear kinds;
  * `box`: the 2x2 mean, the `centre` grid's sampling at x2.

  ikejax-degrade --hr ../shared/data/Set5 --scale 2 --kind bilateral --seed 0 --out SET
  python experiments/son_kernel_probe.py --set SET --son delta [--seed 0]

Exploring only (docs/recipe_log.md): one seed, one set; not a table.
"""

import argparse
import json
import os
import time

import numpy as np

from ikejax.imaging import filters, image_io, metrics
from ikejax.runs import job as job_lib
from ikejax.runs import methods

SONS = ("spectral", "delta", "box")


def _q8(x01):
  return np.clip(np.round(x01 * 255), 0, 255).astype(np.uint8)


def son_kernel(name: str):
  """`[3, 3]` operator-window kernel, or None for the recipe's own (spectral) choice."""
  if name == "spectral":
    return None
  k = np.zeros((3, 3))
  if name == "delta":
    k[1, 1] = 1.0
  else:  # box: HR pixels s*i and s*i + 1 in each axis
    k[1:, 1:] = 0.25
  return k


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--set", required=True, help="an `ikejax-degrade` output folder (lr/, hr/)")
  ap.add_argument("--son", choices=SONS, default="delta")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--scale", type=int, default=2)
  ap.add_argument("--json", help="write the scores here")
  args = ap.parse_args()
  m = methods.get("ike")
  cfg = m.config("default", args.scale, {}).validate()
  rows = {}
  for name in sorted(os.listdir(os.path.join(args.set, "lr"))):
    stem = os.path.splitext(name)[0]
    loaded = image_io.read_image(os.path.join(args.set, "lr", name))
    hr = image_io.read_image(os.path.join(args.set, "hr", name)).pixels
    job = job_lib.Job(path=None, stem=stem, outputs={}, loaded=loaded,
                      x=image_io.to_model_range(loaded.pixels, loaded.bit_depth))
    m.prepare(cfg, job)
    k = son_kernel(args.son)
    if k is not None:
      job.extra["son_kernel"] = (k, {"source": args.son})
    t0 = time.perf_counter()
    out = m.fit([job], args.seed, job_lib.Context(single=True, tile=0))[0]
    sr = image_io.from_model_range(out.sr, loaded.bit_depth)
    lr01 = loaded.pixels / (2.0 ** loaded.bit_depth - 1)
    rows[stem] = {"run": metrics.psnr_y(sr, hr, args.scale), "s": time.perf_counter() - t0}
    for f, up in filters.FILTERS.items():
      rows[stem][f] = metrics.psnr_y(_q8(up(lr01, args.scale)), hr, args.scale)
    r = rows[stem]
    best = max(r["bicubic"], r["sharpen"])
    print(f"{stem}: {args.son} {r['run']:.2f}  bicubic {r['bicubic']:.2f}  sharpen "
          f"{r['sharpen']:.2f}  run - better filter {r['run'] - best:+.2f} dB  {r['s']:.0f} s",
          flush=True)
  mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in ("run", "bicubic", "sharpen")}
  wins = sum(r["run"] > max(r["bicubic"], r["sharpen"]) for r in rows.values())
  print(f"mean of {len(rows)}: {args.son} {mean['run']:.2f}  bicubic {mean['bicubic']:.2f}  "
        f"sharpen {mean['sharpen']:.2f}  ({wins} of {len(rows)} above the better filter)")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"set": args.set, "son": args.son, "seed": args.seed, "rows": rows}, f, indent=1)


if __name__ == "__main__":
  main()
