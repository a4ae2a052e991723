"""Times one training iteration of given configs on one image (median of N).

  python benchmarks/step_time.py [--image LR.png] [--steps 8] \
      --variant "paper" --variant "paper:compose_subnets=False"

Each variant is `PRESET[:field=value,...]`. Prints a Markdown table with the
compile time and the median / min / max seconds per iteration, measured in
one process on the same inputs (so the ratios are meaningful on a noisy
machine). Without `--image` it uses the embedded default LR image.
"""

from __future__ import annotations

import ast
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app
from absl import flags

from ikejax import patches
from ikejax.ike import configs, train
from ikejax.imaging import image_io

flags.DEFINE_string("image", None, "LR image (default: the embedded default image)")
flags.DEFINE_integer("steps", 8, "timed iterations per variant (after one warm-up)")
flags.DEFINE_multi_string("variant", ["paper"], "PRESET[:field=value,...]")
FLAGS = flags.FLAGS


def parse_variant(text: str) -> configs.IKEConfig:
  preset, _, rest = text.partition(":")
  overrides = {}
  for item in filter(None, rest.split(",")):
    k, v = item.split("=")
    overrides[k.strip()] = ast.literal_eval(v.strip())
  return configs.get_config(preset, **overrides)


def time_variant(cfg: configs.IKEConfig, pixels: np.ndarray, steps: int) -> dict:
  x = image_io.to_model_range(pixels, 8)
  cfg, _ = train.adapt_crop(cfg, *x.shape[:2])
  samplers = patches.crop_samplers((x + 1) / 2, cfg.crop, cfg.crop // cfg.scale, cfg.scale)
  args = (jnp.asarray(x), *samplers, jax.random.key(1))
  state = train.create_state(jax.random.key(0), cfg)
  step = train.make_train_step(cfg)
  t0 = time.perf_counter()
  state, m = step(state, *args)
  jax.block_until_ready(m)
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, m = step(state, *args)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t0)
  return {"compile_s": compile_s, "median_s": float(np.median(times)),
          "min_s": float(np.min(times)), "max_s": float(np.max(times))}


def main(argv):
  del argv
  pixels = (image_io.read_image(FLAGS.image).pixels if FLAGS.image
            else image_io.default_image(2)[0])
  print(f"image {pixels.shape[1]}x{pixels.shape[0]}, {jax.devices()[0].device_kind}, "
        f"{FLAGS.steps} timed iterations\n")
  print("| variant | compile s | median s/iter | min | max |")
  print("|---|---|---|---|---|")
  for text in FLAGS.variant:
    r = time_variant(parse_variant(text), pixels, FLAGS.steps)
    print(f"| `{text}` | {r['compile_s']:.1f} | {r['median_s']:.3f} | {r['min_s']:.3f} | "
          f"{r['max_s']:.3f} |", flush=True)


if __name__ == "__main__":
  app.run(main)
