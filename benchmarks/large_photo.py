"""Large photos: peak memory and inference time of one `ikejax` run per size.

  python benchmarks/large_photo.py [--megapixels 1,4,12] [--scale 2] [--iters 5] \
      [--json results/benchmarks/large_photo.json] [-- EXTRA IKEJAX ARGS]

Each size is a synthetic 4:3 photo (smooth colour fields, edges and noise, so that every
stage does its real work) written to a temporary folder and run through the CLI in its own
process under `/usr/bin/time -v`, with a tiny training budget (`--iters`): what is measured
is the whole-image path, tiled by default above 2 megapixels (`ikejax.tiles`). Prints a
Markdown table: input size, peak RSS of the process, inference seconds (the record's
`inference_s`: SR and X_LLR), whole-run seconds, and inference seconds per megapixel.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image


def photo(megapixels: float, seed: int = 0) -> np.ndarray:
  """A 4:3 `[H, W, 3]` uint8 test photo of about `megapixels` Mpx."""
  w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
  h = int(round(w * 3 / 4))
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:h, 0:w].astype(np.float32)
  img = np.stack([np.sin(x / (17 + 5 * c) + c) * np.cos(y / (23 - 4 * c)) for c in range(3)], -1)
  img += (((x // 97 + y // 61) % 2) - 0.5)[..., None] * 0.6  # edges
  img = (img * 60 + 128 + rng.normal(0, 4, img.shape)).clip(0, 255)
  return img.astype(np.uint8)


def run_one(megapixels: float, scale: int, iters: int, extra: list[str], tmp: str) -> dict:
  img = photo(megapixels)
  path = os.path.join(tmp, f"photo_{megapixels:g}mp.png")
  Image.fromarray(img).save(path)
  out = os.path.join(tmp, f"out_{megapixels:g}")
  cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "ikejax.main", "--image", path,
         "--scale", str(scale), "--iters", str(iters), "--out", out, "--noprogress", *extra]
  t0 = time.perf_counter()
  r = subprocess.run(cmd, capture_output=True, text=True)
  wall = time.perf_counter() - t0
  if r.returncode != 0:
    raise SystemExit(f"ikejax failed on {megapixels} MP: {r.stderr[-2000:]}")
  rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
  stem = os.path.splitext(os.path.basename(path))[0]
  rec = json.load(open(os.path.join(out, f"{stem}_x{scale}.json")))
  t = rec["timings"]
  return {"megapixels": img.shape[0] * img.shape[1] / 1e6, "size": [img.shape[1], img.shape[0]],
          "scale": scale, "iters": iters, "peak_rss_gb": rss_kb / 2 ** 20,
          "inference_s": t["inference_s"], "run_s": wall, "tile": rec.get("tile"),
          "device": rec["device"]}


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--megapixels", default="1,4,12")
  ap.add_argument("--scale", type=int, default=2)
  ap.add_argument("--iters", type=int, default=5)
  ap.add_argument("--json", default="results/benchmarks/large_photo.json")
  ap.add_argument("extra", nargs="*", help="more ikejax flags (after --)")
  a = ap.parse_args()
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for mp in [float(v) for v in a.megapixels.split(",")]:
      rows.append(run_one(mp, a.scale, a.iters, a.extra, tmp))
      print(json.dumps(rows[-1]), flush=True)
  os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
  with open(a.json, "w") as f:
    json.dump({"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"),
               "rows": rows}, f, indent=1)
  print(f"\nx{a.scale}, --iters {a.iters} ({time.strftime('%Y-%m-%d')}, "
        f"{rows[0]['device']['kind']} x{os.cpu_count()} cores)\n")
  print("| input | peak RSS | inference | s / MP | whole run |")
  print("|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['size'][0]}x{r['size'][1]} ({r['megapixels']:.1f} MP) | "
          f"{r['peak_rss_gb']:.2f} GB | {r['inference_s']:.0f} s | "
          f"{r['inference_s'] / r['megapixels']:.1f} | {r['run_s']:.0f} s |")


if __name__ == "__main__":
  main()
