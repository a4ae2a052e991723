"""How good is IKE's decoder when the degradation is known? (the non-blind bound)

Trains only U of the `selfsup` decoder (Haar flow at its initialisation, U reading the
image and writing every slot) on son/father crops of one LR image, the son made by a
GIVEN kernel instead of the learned downscaler: `--son true` (DIV2KRK's ground truth,
shifted to the operator convention), `--son bicubic` (the model's bicubic downscale), or
`--son FILE.npy` (e.g. a KernelGAN estimate). Adam 1e-3 (b1 0.9), flips/turns of the
father. Prints the whole-image Y-PSNR every quarter of the run.

  python experiments/decoder_bound.py --son true --images 23,2 --iters 800

It separates what the decoder can do from what the kernel estimate costs
(docs/recipe_log.md).
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.io

from ikejax import patches
from ikejax.ike import configs, infer, losses, train
from ikejax.imaging import degrade, image_io, metrics
from ikejax.ike.model import build_model

DATA = os.environ.get("DATA", os.path.join(os.path.dirname(__file__), "../../shared/data"))


def q8(x01):
  return np.clip(np.round(x01 * 255), 0, 255).astype(np.uint8)


def son_maker(kind, k_op, model, s):
  """`[H, W, 3] -> [H/s, W/s, 3]`: correlate with the kernel (mirrored borders), keep every s-th."""
  if kind == "bicubic":
    return model.down
  r = k_op.shape[0] // 2

  def make(f):
    fp = jnp.pad(f, ((r, r), (r, r), (0, 0)), mode="symmetric")
    corr = jax.vmap(lambda ch: jax.scipy.signal.correlate2d(ch, k_op, mode="valid"),
                    in_axes=2, out_axes=2)(fp)
    return corr[::s, ::s]
  return make


def main(a):
  s, d = 2, os.path.join(DATA, "DIV2KRK")
  cfg = configs.get_config("selfsup", scale=s)
  model = build_model(cfg)
  for im in a.images.split(","):
    lr = image_io.read_image(f"{d}/lr_x{s}/im_{im}.png").pixels
    hr = image_io.read_image(f"{d}/gt/im_{im}.png").pixels
    if a.son == "true":
      k = scipy.io.loadmat(f"{d}/gt_k_x{s}/kernel_{im}.mat")["Kernel"]
      k_op = degrade.kernel_shift(k, s)
    elif a.son == "bicubic":
      k_op = None
    else:
      k_op = np.load(a.son.format(im=im))
    make_son = son_maker("bicubic" if k_op is None else "kernel",
                         None if k_op is None else jnp.asarray(k_op, jnp.float32), model, s)
    lr01 = lr.astype(np.float64) / 255
    x = jnp.asarray(2 * lr01 - 1, jnp.float32)
    p_g, p_d = patches.crop_samplers(lr01, cfg.crop, cfg.crop // s, s)
    state = train.create_state(jax.random.key(a.seed), cfg)
    tx = optax.adam(a.lr)
    up, opt = state.up, tx.init(state.up)

    @jax.jit
    def step(up, opt, key):
      k_crop, k_aug = jax.random.split(key)
      g, _ = patches.sample_crops(k_crop, x, p_g, p_d, cfg.crop, cfg.crop // s, align=s)
      father = train.dihedral(k_aug, g)
      son = make_son(father)

      def loss(u):
        return losses.reconstruction_loss(
            model.decode(state.flow, son, model.upscale_z(u, son)), father)
      value, grads = jax.value_and_grad(loss)(up)
      updates, opt = tx.update(grads, opt, up)
      return optax.apply_updates(up, updates), opt, value

    key, t0 = jax.random.key(a.seed + 1), time.time()
    for it in range(a.iters + 1):
      if it % max(1, a.iters // 4) == 0:
        sr = infer.super_resolve(state.replace(ema={"flow": state.flow, "up": up}),
                                 np.asarray(x), cfg)
        print(f"son {a.son} im_{im} it {it}: {metrics.psnr_y(q8((sr + 1) / 2), hr, s):.3f} dB"
              f"  {time.time() - t0:.0f} s", flush=True)
      if it < a.iters:
        up, opt, _ = step(up, opt, jax.random.fold_in(key, it))


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--son", default="true", help="true | bicubic | FILE.npy ({im} = image number)")
  ap.add_argument("--images", default="23,2")
  ap.add_argument("--iters", type=int, default=800)
  ap.add_argument("--lr", type=float, default=1e-3)
  ap.add_argument("--seed", type=int, default=0)
  main(ap.parse_args())
