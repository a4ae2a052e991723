"""One device check: images per hour at B = 1, 8, 32, the exact inverse and batched = single,
under the chosen float32 precision, and peak memory.

  python benchmarks/device_check.py [--config default] [--batches 1,8,32] [--steps 3] \
      [--size 128] [--precision highest|default] [--json results/benchmarks/device_check.json]

On whatever JAX sees (GPU, TPU or CPU). For each B, `batch.fit_batch` trains B synthetic
`size x size` images for `--steps` iterations after a compile; the median step time is
extrapolated to the preset's iteration count (stated as such: short runs, not whole ones):
images/hour = 3600 * B / (iters * step + B * inference), inference one whole-image SR
measured after its compile. Checks, in the same precision: the flow's inverse of its
forward (max abs error on a random input) and image 0 of a B = 2 batch against its single
run after `--steps` + 2 iterations (relative parameter difference). Prints a Markdown table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from ikejax.ike import configs, infer, train
from ikejax.ike.flow import IKEFlow
from ikejax.ike.model import build_model
from ikejax.runs import batch


def _image(size: int, seed: int) -> np.ndarray:
  rng = np.random.RandomState(seed)
  y, x = np.mgrid[0:size, 0:size]
  img = np.stack([np.sin(x / 3.0 + c + seed) * np.cos(y / 4.0) for c in range(3)], -1) * 0.7
  return (img + rng.randn(size, size, 3) * 0.03).astype(np.float32)


def _rel_diff(a, b) -> float:
  flat = lambda t: np.concatenate([np.ravel(v) for v in jax.device_get(jax.tree_util.tree_leaves(t))])
  fa, fb = flat(a), flat(b)
  return float(np.linalg.norm(fa - fb) / np.linalg.norm(fb))


def inverse_error(cfg) -> float:
  """max |inverse(forward(x)) - x| of the config's flow at init, on a random input."""
  flow = build_model(cfg).flow
  x = jax.random.normal(jax.random.key(0), (3, 8 * cfg.scale, 8 * cfg.scale, 1))
  params = flow.init(jax.random.key(1), x, method=IKEFlow.forward)["params"]
  y = flow.apply({"params": params}, x, method=IKEFlow.forward)
  back = flow.apply({"params": params}, y, method=IKEFlow.inverse)
  return float(jnp.max(jnp.abs(back - x)))


def batched_vs_single(cfg, size: int) -> float:
  images = [_image(size, 0), _image(size, 1)]
  single = train.fit(images[0], cfg, jax.random.key(3))
  both = batch.fit_batch(images, cfg, [jax.random.key(3)] * 2)
  got = batch.take(both.state, 0)
  return max(_rel_diff(getattr(got, n), getattr(single.state, n)) for n in ("flow", "up"))


def throughput(run_cfg, b: int, size: int) -> dict:
  """Median step time of a B-image batch, from per-iteration logs after 2 warm-up steps."""
  stamps = []
  res = batch.fit_batch([_image(size, i) for i in range(b)], run_cfg,
                        [jax.random.key(i) for i in range(b)],
                        on_log=lambda *a: stamps.append(time.perf_counter()))
  dt = [t1 - t0 for t0, t1 in zip(stamps, stamps[1:])][2:] or [res.train_seconds / run_cfg.iters]
  return {"B": b, "step_s": statistics.median(dt), "compile_s": res.compile_seconds,
          "devices": len(jax.tree_util.tree_leaves(res.state.flow)[0].sharding.device_set)}


def peak_memory() -> dict:
  stats = jax.devices()[0].memory_stats() or {}
  return {"device_peak_gb": stats.get("peak_bytes_in_use", 0) / 2 ** 30 or None,
          "host_peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def main(argv=None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--config", default="default")
  ap.add_argument("--batches", default="1,8,32")
  ap.add_argument("--steps", type=int, default=3)
  ap.add_argument("--size", type=int, default=128, help="side of the synthetic LR images")
  ap.add_argument("--precision", default="highest", choices=("highest", "default"))
  ap.add_argument("--json", default="results/benchmarks/device_check.json")
  a = ap.parse_args(argv)
  if a.precision == "highest":  # full float32 in matmuls and convs (GPUs default to TF32)
    jax.config.update("jax_default_matmul_precision", "highest")
  cfg = configs.get_config(a.config, scale=2)
  dev = jax.devices()[0]
  out = {"device": f"{dev.platform}: {dev.device_kind} x{jax.device_count()}",
         "config": a.config, "precision": a.precision, "iters": cfg.iters, "size": a.size,
         "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv)}
  out["inverse_max_abs_error"] = inverse_error(cfg)
  # One config (and so one compiled step per batch size) for the checks and the timings.
  run_cfg = cfg.replace(iters=a.steps + 2, log_every=1)
  out["batched_vs_single_rel"] = batched_vs_single(run_cfg, a.size)
  state = train.create_state(jax.random.key(0), cfg)
  x = _image(2 * a.size, 9)
  infer.super_resolve(state, x, cfg)  # compile
  t0 = time.perf_counter()
  infer.super_resolve(state, x, cfg)
  out["inference_s"] = time.perf_counter() - t0
  rows = []
  for b in [int(v) for v in a.batches.split(",")]:
    r = throughput(run_cfg, b, a.size)
    r["images_per_hour"] = 3600 * b / (cfg.iters * r["step_s"] + b * out["inference_s"])
    rows.append(r)
    print(json.dumps(r), flush=True)
  out["rows"] = rows
  out.update(peak_memory())
  os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
  with open(a.json, "w") as f:
    json.dump(out, f, indent=1)
  print(f"\n{out['device']}, `{a.config}` ({cfg.iters} iterations, extrapolated from "
        f"{a.steps} steps), {a.size} px LR, precision {a.precision}, {out['date']}\n")
  print("| B | devices | step s | compile s | images / hour (extrapolated) | vs B = 1 |")
  print("|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['B']} | {r['devices']} | {r['step_s']:.3f} | {r['compile_s']:.1f} | "
          f"{r['images_per_hour']:.1f} | {r['images_per_hour'] / rows[0]['images_per_hour']:.2f}x |")
  print(f"\nexact inverse: max abs error {out['inverse_max_abs_error']:.2e}; batched vs "
        f"single: {out['batched_vs_single_rel']:.2e} relative; peak memory: device "
        f"{out['device_peak_gb']} GB, host RSS {out['host_peak_rss_gb']:.2f} GB")
  return out


if __name__ == "__main__":
  main()
