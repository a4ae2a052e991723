"""Speed of one zero-shot run: per-iteration time, compile, inference, memory, FLOP rate.

  python benchmarks/speed.py [--image ../shared/data/DIV2KRK/lr_x{s}/im_2.png] \
      [--scales 2,3,4] [--steps 20] [--config paper] [--set FIELD=VALUE] [--full_run] \
      [--json results/benchmarks/speed.json]

Prints a Markdown table and writes JSON. Each scale runs in its own
subprocess (so peak RSS is per scale and one compile cache does not help the
next); the float32 convolution peak is measured first in the parent, in the
same run, so the ratio "achieved / peak" compares numbers taken minutes apart
on the same machine.

FLOPs are counted analytically (`iteration_gflop`): 2 x multiply-adds of every
convolution and matmul of the nominal algorithm (direct convolutions; the
banded matmuls' extra zeros are not counted), forward and the backward
passes the four updates need, in the layout of `train.train_step`.
Element-wise work (BatchNorm, losses, resizes) is not counted.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app
from absl import flags

from _worker import run_worker, write_json  # benchmarks/, next to this script
from ikejax import patches
from ikejax.ike import configs, infer, train
from ikejax.imaging import image_io
from ikejax.ike.flow import squeeze_factors

flags.DEFINE_string("image", None, "LR image; '{s}' in the path is replaced by the scale, "
                    "falling back to the x2 file where no file exists for a scale (x3 on "
                    "DIV2KRK). Default: the embedded default image, degraded per scale")
flags.DEFINE_string("scales", "2,3,4", "comma-separated SR scales")
flags.DEFINE_integer("steps", 20, "timed iterations per scale (after 2 warm-up ones)")
flags.DEFINE_string("config", "paper", "preset")
flags.DEFINE_multi_string("set", [], "config override FIELD=VALUE (repeatable)")
flags.DEFINE_bool("full_run", False, "also time a whole run (cfg.iters iterations + inference)")
flags.DEFINE_string("json", "results/benchmarks/speed.json", "where to write the JSON")
flags.DEFINE_integer("worker", 0, "internal: run one scale and print its JSON")
FLAGS = flags.FLAGS


# --------------------------------------------------------------------- FLOPs
def _conv(pixels: int, k: int, cin: int, cout: int) -> float:
  return 2.0 * pixels * k * k * cin * cout


def _discriminator(n: int, width: int) -> float:
  """One D forward on an `n x n` input: 7x7 stem, five 1x1 layers, 1x1 head."""
  p = (n - 6) ** 2
  return _conv(p, 7, 3, width) + 5 * _conv(p, 1, width, width) + _conv(p, 1, width, 1)


def _subnet_composition(cin: int, cout: int, growth: int) -> float:
  """Pushing `cin + 1` 11x11 probes through the five 3x3 dense layers."""
  flops, c = 0.0, cin
  for _ in range(4):
    flops += _conv((cin + 1) * 121, 3, c, growth)
    c += growth
  return flops + _conv((cin + 1) * 121, 3, c, cout)


def _flow(cfg: configs.IKEConfig) -> tuple[float, float]:
  """(applying the composed subnets once, composing them once), all levels."""
  apply, compose = 0.0, 0.0
  side, channels = cfg.crop, 1
  for s in squeeze_factors(cfg.scale):
    side //= s
    channels *= s * s
    px = 3 * side * side                       # the colours are the flow's batch.
    if cfg.coupling == "tri":
      io = [(channels - 2, 1), (1, channels - 2), (1, 1)]
    else:
      io = [(channels - 1, 1), (1, channels - 1)]
    for cin, cout in io:
      apply += cfg.blocks_per_level * _conv(px, 11, cin, cout)
      compose += cfg.blocks_per_level * _subnet_composition(cin, cout, cfg.growth)
  return apply, compose


def iteration_gflop(cfg: configs.IKEConfig) -> dict:
  """Analytic GFLOP of one training iteration, by network.

  A forward costs F; a backward to the inputs F; to the weights F. The encode
  step needs the flow's forward and both backwards (3F) and D's forward and
  input backward (2F); PD1 runs the flow forward once and D (forward and
  weight backward) on the real and the fake crop; the decode step U and the
  inverse flow (3F) and D on the whole SR crop (2F); PD2 U and the inverse
  flow forward and D (2F) on the real crop and the s*s tiles.
  """
  c, s, w = cfg.crop, cfg.scale, cfg.d_width
  h = c // s
  apply, compose = _flow(cfg)
  flow_f = apply + compose
  cz = 3 * (s * s - 1)
  u_f = _conv(c * c, 3, cz, cfg.u_width) + (cfg.u_depth - 2) * _conv(
      c * c, 3, cfg.u_width, cfg.u_width) + _conv(c * c, 3, cfg.u_width, cz)
  d_small, d_crop, d_sr = _discriminator(h, w), _discriminator(c, w), _discriminator(s * c, w)
  parts = {
      "flow": (3 + 1 + 3 + 1) * flow_f,
      "U": (3 + 1) * u_f,
      "D": 2 * d_small + 2 * 2 * d_small + 2 * d_sr + 2 * (1 + s * s) * d_crop,
  }
  parts = {k: v / 1e9 for k, v in parts.items()}
  parts["total"] = sum(parts.values())
  return parts


# --------------------------------------------------------------------- peak
def conv_peak_gflops(reps: int = 10) -> dict:
  """Median float32 GFLOP/s of large 3x3 convolutions (XLA:CPU's best case)."""
  out = {}
  for n, ch in ((128, 64), (128, 128), (256, 64)):
    x = jnp.ones((1, n, n, ch), jnp.float32)
    k = jnp.full((3, 3, ch, ch), 0.01, jnp.float32)
    f = jax.jit(lambda a, b: jax.lax.conv_general_dilated(
        a, b, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
    jax.block_until_ready(f(x, k))
    times = []
    for _ in range(reps):
      t0 = time.perf_counter()
      jax.block_until_ready(f(x, k))
      times.append(time.perf_counter() - t0)
    out[f"{n}x{n}x{ch}"] = _conv(n * n, 3, ch, ch) / np.median(times) / 1e9
  return {"by_shape": out, "peak": max(out.values())}


# --------------------------------------------------------------------- one scale
def _config(scale: int) -> configs.IKEConfig:
  overrides = {}
  for item in FLAGS.set:
    k, v = item.split("=", 1)
    try:
      overrides[k] = ast.literal_eval(v)     # numbers, True/False
    except (ValueError, SyntaxError):
      overrides[k] = v                       # plain strings, e.g. tv_kind=squared
  return configs.get_config(FLAGS.config, scale=scale, **overrides)


def run_scale(scale: int) -> dict:
  path = None
  if FLAGS.image:
    path = FLAGS.image.replace("{s}", str(scale))
    if not os.path.exists(path):
      path = FLAGS.image.replace("{s}", "2")
  pixels = image_io.read_image(path).pixels if path else image_io.default_image(scale)[0]
  x = image_io.to_model_range(pixels, 8)
  cfg, _ = train.adapt_crop(_config(scale), *x.shape[:2])
  p_g, p_d = patches.crop_samplers((x + 1) / 2, cfg.crop, cfg.crop // cfg.scale, cfg.scale)
  image, key = jnp.asarray(x), jax.random.key(1)
  state = train.create_state(jax.random.key(0), cfg)
  t0 = time.perf_counter()
  step = train.make_train_step(cfg).lower(state, image, p_g, p_d, key).compile()
  compile_s = time.perf_counter() - t0
  for _ in range(2):
    state, m = step(state, image, p_g, p_d, key)
  jax.block_until_ready(m)
  times = []
  for _ in range(FLAGS.steps):
    t0 = time.perf_counter()
    state, m = step(state, image, p_g, p_d, key)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t0)
  t0 = time.perf_counter()
  infer.super_resolve(state, x, cfg)
  infer_first_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  infer.super_resolve(state, x, cfg)
  infer_s = time.perf_counter() - t0
  result = {
      "scale": scale, "image_path": path or "embedded default",
      "image": f"{x.shape[1]}x{x.shape[0]}", "crop": cfg.crop,
      "iters": cfg.iters, "compile_s": compile_s,
      "step_median_s": float(np.median(times)), "step_min_s": float(np.min(times)),
      "step_max_s": float(np.max(times)),
      "step_iqr_s": float(np.percentile(times, 75) - np.percentile(times, 25)),
      "inference_first_call_s": infer_first_s, "inference_s": infer_s,
      "gflop": iteration_gflop(cfg),
  }
  result["run_estimate_s"] = (compile_s + cfg.iters * result["step_median_s"]
                              + infer_first_s)
  if FLAGS.full_run:
    key = jax.random.key(2)
    t0 = time.perf_counter()
    fit = train.fit(x, cfg, key)
    infer.super_resolve(fit.state, x, cfg)
    result["full_run_s"] = time.perf_counter() - t0
  result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  return result


# --------------------------------------------------------------------- main
def main(argv):
  del argv
  if FLAGS.worker:
    print("RESULT " + json.dumps(run_scale(FLAGS.worker)), flush=True)
    return
  peak = conv_peak_gflops()
  rows = []
  for s in (int(v) for v in FLAGS.scales.split(",")):
    rows.append(run_worker(__file__, str(s)))
  peak_after = conv_peak_gflops()
  for r in rows:
    r["gflops"] = r["gflop"]["total"] / r["step_median_s"]
    r["fraction_of_peak"] = r["gflops"] / peak["peak"]
  record = {"date": time.strftime("%Y-%m-%d"), "device": jax.devices()[0].device_kind,
            "cpu_count": os.cpu_count(), "jax": jax.__version__, "config": FLAGS.config,
            "overrides": FLAGS.set, "steps": FLAGS.steps, "conv_peak": peak,
            "conv_peak_after": peak_after, "scales": rows}
  write_json(FLAGS.json, record)

  print(f"{record['date']}, {record['device']}, {record['cpu_count']} cores, jax {jax.__version__}, "
        f"config {FLAGS.config} {' '.join(FLAGS.set)}; float32 conv peak "
        f"{peak['peak']:.0f} GFLOP/s before, {peak_after['peak']:.0f} after\n")
  print("| scale | image | s/iter median (min-max) | compile s | inference s (1st call) "
        "| whole run s | peak RSS GB | GFLOP/iter (flow / U / D) | GFLOP/s | of peak |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for r in rows:
    g = r["gflop"]
    run = (f"{r['full_run_s']:.0f} measured" if "full_run_s" in r
           else f"{r['run_estimate_s']:.0f} est.")
    print(f"| x{r['scale']} | {r['image']} | {r['step_median_s']:.3f} ({r['step_min_s']:.3f}-"
          f"{r['step_max_s']:.3f}) | {r['compile_s']:.1f} | {r['inference_s']:.1f} "
          f"({r['inference_first_call_s']:.1f}) | {run} | {r['peak_rss_gb']:.2f} | "
          f"{g['total']:.1f} ({g['flow']:.1f} / {g['U']:.1f} / {g['D']:.1f}) | "
          f"{r['gflops']:.0f} | {100 * r['fraction_of_peak']:.0f}% |")
  print(f"\nJSON: {FLAGS.json}")


if __name__ == "__main__":
  app.run(main)
