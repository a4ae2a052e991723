"""KernelGAN iterations per second: G as one composed 13x13 kernel vs layer by layer.

  python benchmarks/kernelgan_speed.py [--image LR.png] [--iters 300]

Both variants train the same KernelGAN (paper config) on one image in one process, one
after the other; prints compile time and iterations per second (after compiling) and the
full 3000-iteration estimate. The official PyTorch code: 21 iterations/s on 2 CPU cores
(reference figure from the issue tracker, 148 s per image).
"""

from __future__ import annotations

import argparse

import jax

from ikejax.baselines import kernelgan
from ikejax.imaging import image_io


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument("--image", default=None)
  p.add_argument("--iters", type=int, default=300)
  a = p.parse_args()
  if a.image:
    loaded = image_io.read_image(a.image)
    lr01 = loaded.pixels / float(2 ** loaded.bit_depth - 1)
  else:
    lr01 = image_io.default_image(2)[0] / 255.0
  print("| G | compile s | iterations/s | s per 3000 iterations |\n|---|---|---|---|")
  for composed in (True, False):
    cfg = kernelgan.PRESETS["paper"].replace(iters=a.iters, composed=composed, log_every=a.iters)
    res = kernelgan.fit(lr01, cfg, jax.random.key(0))
    rate = a.iters / res.train_seconds
    print(f"| {'composed 13x13 kernel' if composed else 'layer by layer'} | "
          f"{res.compile_seconds:.1f} | {rate:.1f} | {3000 / rate:.0f} |", flush=True)


if __name__ == "__main__":
  main()
