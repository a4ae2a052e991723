"""Images per hour of folder runs: batches of B = 1, 2, 4, 8 next to the sequential loop.

  python benchmarks/throughput.py [--images '../shared/data/DIV2KRK/lr_x2/*.png'] \
      [--batches 1,2,4,8] [--one_device 2,4] [--steps 6] [--config paper] \
      [--json results/benchmarks/throughput.json]

Each measurement runs in its own subprocess, because the number of XLA CPU
devices is fixed when JAX starts:
  * `sequential`: `train.fit`'s compiled step on one image at a time, as a
    loop over the images runs (the baseline);
  * `B = n`: `batch.fit_batch` on n images, the host split into n CPU devices
    (one image each; what `--images ... --batch n` does);
  * `B = n, one device`: the n images vmapped on a single device (per-image
    weights make every convolution a grouped one), to show why the CPU
    strategy above was chosen.
Per-iteration times are medians of `--steps` iterations after 2 warm-up ones,
read from the per-iteration log (`log_every=1`: one host sync per iteration in
every variant). Images per hour = 3600 * B / (iters * step + B * inference),
with `iters` the preset's (3000 for `paper`) and `inference` the measured
first whole-image call (compile included) of the sequential worker; compile
time is listed apart (a folder run compiles once: every batch has one padded
size).
"""

from __future__ import annotations

import glob
import json
import os
import resource
import sys
import time

import numpy as np
from absl import app
from absl import flags

from _worker import run_worker, write_json  # benchmarks/, next to this script

flags.DEFINE_string("images", "../shared/data/DIV2KRK/lr_x2/*.png", "glob of LR images")
flags.DEFINE_string("batches", "1,2,4,8", "batch sizes (one CPU device per image)")
flags.DEFINE_string("one_device", "2,4", "batch sizes also run vmapped on one device")
flags.DEFINE_integer("steps", 6, "timed iterations (after 2 warm-up ones)")
flags.DEFINE_integer("scale", 2, "SR scale")
flags.DEFINE_string("config", "paper", "preset")
flags.DEFINE_string("json", "results/benchmarks/throughput.json", "where to write the JSON")
flags.DEFINE_string("worker", "", "internal: 'seq', 'B' or 'B:1'")
FLAGS = flags.FLAGS


def _images(n: int):
  from ikejax.imaging import image_io
  paths = sorted(glob.glob(FLAGS.images))
  if not paths:
    sys.exit(f"error: no files match {FLAGS.images}")
  paths = [paths[i % len(paths)] for i in range(n)]
  return paths, [image_io.to_model_range(image_io.read_image(p).pixels, 8) for p in paths]


def _config():
  from ikejax.ike import configs
  return configs.get_config(FLAGS.config, scale=FLAGS.scale, iters=2 + FLAGS.steps, log_every=1)


def _step_times(history: list[dict]) -> list[float]:
  t = [0.0] + [h["seconds"] for h in history]
  return list(np.diff(t)[2:])


def worker(spec: str) -> dict:
  if spec == "seq":
    import jax
    from ikejax.ike import infer, train
    paths, xs = _images(1)
    cfg, _ = train.adapt_crop(_config(), *xs[0].shape[:2])
    fit = train.fit(xs[0], cfg, jax.random.key(0))
    t0 = time.perf_counter()
    infer.super_resolve(fit.state, xs[0], cfg)
    return {"variant": "sequential", "batch": 1, "devices": 1,
            "compile_s": fit.compile_seconds, "step_times": _step_times(fit.history),
            "inference_first_call_s": time.perf_counter() - t0, "images": paths}
  b, _, one = spec.partition(":")
  b = int(b)
  from ikejax.runs import batch
  if not one:
    batch.use_cpu_devices(b)
  import jax
  from ikejax.ike import train
  paths, xs = _images(b)
  cfg, _ = train.adapt_crop(_config(), *np.min([x.shape[:2] for x in xs], 0))
  devices = jax.devices()[:1] if one else jax.devices()
  res = batch.fit_batch(xs, cfg, [jax.random.key(0)] * b, devices=devices)
  return {"variant": f"B={b}" + (", one device (vmap)" if one else ""), "batch": b,
          "devices": len(devices), "compile_s": res.compile_seconds,
          "step_times": _step_times(res.histories[0]), "images": paths}


def main(argv):
  del argv
  if FLAGS.worker:
    r = worker(FLAGS.worker)
    r["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("RESULT " + json.dumps(r), flush=True)
    return
  specs = (["seq"] + [b for b in FLAGS.batches.split(",") if b]
           + [f"{b}:1" for b in FLAGS.one_device.split(",") if b])
  rows = []
  for spec in specs:
    rows.append(run_worker(__file__, spec))
    print(f"done {rows[-1]['variant']}", file=sys.stderr, flush=True)

  from ikejax.ike import configs
  iters = configs.get_config(FLAGS.config, scale=FLAGS.scale).iters
  infer_s = rows[0]["inference_first_call_s"]
  seq_step = float(np.median(rows[0]["step_times"]))
  for r in rows:
    r["step_median_s"] = float(np.median(r["step_times"]))
    r["per_image_iter_s"] = r["step_median_s"] / r["batch"]
    r["images_per_hour"] = 3600 * r["batch"] / (iters * r["step_median_s"] + r["batch"] * infer_s)
    r["speedup_vs_sequential"] = seq_step / r["per_image_iter_s"]
  import jax
  record = {"date": time.strftime("%Y-%m-%d"), "cpu_count": os.cpu_count(),
            "jax": jax.__version__, "config": FLAGS.config, "scale": FLAGS.scale,
            "iters": iters, "steps": FLAGS.steps, "inference_first_call_s": infer_s,
            "rows": rows}
  write_json(FLAGS.json, record)

  print(f"{record['date']}, {os.cpu_count()} cores, jax {jax.__version__}, {FLAGS.config} x"
        f"{FLAGS.scale}, {iters} iterations per image, inference {infer_s:.1f} s per image\n")
  print("| variant | devices | s/step median (min-max) | s per image-iteration | vs sequential "
        "| images/hour | compile s | peak RSS GB |")
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    t = r["step_times"]
    print(f"| {r['variant']} | {r['devices']} | {r['step_median_s']:.3f} ({min(t):.3f}-"
          f"{max(t):.3f}) | {r['per_image_iter_s']:.3f} | {r['speedup_vs_sequential']:.2f}x | "
          f"{r['images_per_hour']:.2f} | {r['compile_s']:.1f} | {r['peak_rss_gb']:.2f} |")
  print(f"\nJSON: {FLAGS.json}")


if __name__ == "__main__":
  app.run(main)
