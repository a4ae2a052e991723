"""IKE's losses as pure functions of single images (`[H, W, 3]` in [-1, 1]).

Each returns a scalar. Paper equations are cited; where the paper is silent
the official code (`src/loss.py`, `src/utils/util.py`) is followed, and the
official variants that differ from the paper are available by name.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ikejax import ops

# KernelGAN's 8x8 antialiased bicubic kernel for x2 (official `DownScaleLoss`),
# the outer product of this 1-D MATLAB bicubic (x0.5) filter.
_BICUBIC_8 = np.array([-0.01171875, -0.03515625, 0.11328125, 0.43359375,
                       0.43359375, 0.11328125, -0.03515625, -0.01171875])


def gan_loss(d_map: jax.Array, real: bool) -> jax.Array:
  """Pixel-wise L1 GAN loss (paper Eqs. 1, 3; official `PixGANLoss`).

  `mean |D - 1|` for real targets and `mean |D|` for fake ones (the official
  code compares the D map with all-ones / all-zeros maps under L1).
  """
  return jnp.mean(jnp.abs(d_map - (1.0 if real else 0.0)))


def energy_loss(x_lr: jax.Array, x_llr: jax.Array, down: jax.Array, *,
                kind: str = "mean9", scale: int = 2) -> jax.Array:
  """Local energy preservation between the downscaled input and X_LLR.

  * `'mean9'` (paper Eq. 2): `mean |M(X_bic_down) - M(X_LLR)|` with `M` a
    9x9 mean filter ('valid', so no border padding enters), per colour channel.
  * `'gauss36'` (official `EnergyLoss`): gray images; the `[H, W]` crop is
    blurred with a 36x36 Gaussian (sigma 0.9), stride `s`, zero padding 17,
    and compared by L1 with the gray X_LLR.

  Args:
    x_lr: the `[H, W, 3]` input crop.
    x_llr: the flow's `[H/s, W/s, 3]` downscaled crop.
    down: `[H/s, W/s, 3]` bicubic downscale of `x_lr` (X_bic_down).
    kind: `'mean9'` or `'gauss36'`.
    scale: SR scale (stride of `'gauss36'`).
  """
  if kind == "mean9":
    size = min(9, x_llr.shape[0], x_llr.shape[1])  # Tiny crops: shrink M.
    return jnp.mean(jnp.abs(ops.box_filter(down, size) - ops.box_filter(x_llr, size)))
  if kind == "gauss36":
    k = ops.gaussian_kernel(36, 0.9)
    gray_in = ops.rgb_to_gray(x_lr)[..., None]
    blurred = ops.conv2d_single(gray_in, k, stride=scale, padding=17)[..., 0]
    gray_out = ops.rgb_to_gray(x_llr)
    blurred = _shave_to(blurred, gray_out.shape)
    return jnp.mean(jnp.abs(blurred - gray_out))
  raise ValueError(f"unknown energy loss {kind!r}; expected 'mean9' or 'gauss36'")


def _shave_to(a: jax.Array, shape) -> jax.Array:
  """Symmetric crop of `a` to `shape[:2]` (official `shave_a2b`)."""
  dr, dc = a.shape[0] - shape[0], a.shape[1] - shape[1]
  return a[dr // 2:a.shape[0] - dr + dr // 2, dc // 2:a.shape[1] - dc + dc // 2]


def bicubic_warmup_loss(x_lr: jax.Array, x_llr: jax.Array, down: jax.Array, *,
                        kind: str = "exact", scale: int = 2) -> jax.Array:
  """Warm-up constraint pulling X_LLR to a bicubic downscale (MSE).

  * `'exact'`: `mean (X_LLR - down)^2` with `down` the model's own bicubic
    downscale of the crop (any scale).
  * `'reference'`: the official `DownScaleLoss`: KernelGAN's 8x8 x2 bicubic
    kernel, stride `s`, zero padding 3, and, as its `k.expand(C, C, ...)`
    does, every output channel sums the correlations of *all* input
    channels (a quirk kept for parity).
  """
  if kind == "exact":
    return jnp.mean((x_llr - down) ** 2)
  if kind == "reference":
    k = np.outer(_BICUBIC_8, _BICUBIC_8)
    per_channel = ops.conv2d_single(x_lr, k, stride=scale, padding=3)
    target = jnp.sum(per_channel, axis=-1, keepdims=True)
    target = _shave_to(target, x_llr.shape)
    return jnp.mean((x_llr - target) ** 2)
  raise ValueError(f"unknown warm-up loss {kind!r}; expected 'exact' or 'reference'")


def edge_mask(bic_up: jax.Array) -> jax.Array:
  """`1 - Sobel` mask of the interpolation loss, `[H, W, 3] -> [H, W, 1]`.

  Official `edge_detect`: the bicubic image quantised to 8 bits, its three
  channels summed, Sobel magnitude (reflect borders), min-max normalised to
  [0, 1] over the crop. Constant with respect to the parameters.
  """
  q = jnp.round((jnp.clip(bic_up, -1.0, 1.0) + 1.0) * 127.5)
  mag = ops.sobel_magnitude(jnp.sum(q, axis=-1))
  lo, hi = jnp.min(mag), jnp.max(mag)
  norm = jnp.where(hi > lo, (mag - lo) / jnp.where(hi > lo, hi - lo, 1.0), 0.0)
  return jax.lax.stop_gradient(1.0 - norm)[..., None]


def interpolation_loss(sr: jax.Array, bic_up: jax.Array) -> jax.Array:
  """Paper Eq. 4: `mean |f_mask * (X_SR - X_bic_up)|`, `f_mask = 1 - Sobel(X_bic_up)`."""
  return jnp.mean(edge_mask(bic_up) * jnp.abs(sr - bic_up))


def tv_loss(sr: jax.Array, kind: str = "isotropic") -> jax.Array:
  """Paper Eq. 5 (`'isotropic'`, per-pixel mean) or official `TVLoss` (`'squared'`)."""
  return ops.total_variation(sr, kind)


def reconstruction_loss(sr_son: jax.Array, father: jax.Array) -> jax.Array:
  """Son/father reconstruction (beyond the paper; ZSSR's self-supervision).

  `mean |decode(son) - father|`, with the son the learned downscaler's X_LLR
  of the father crop: the decoder is trained on a pair whose answer is known.
  """
  return jnp.mean(jnp.abs(sr_son - father))


def kernel_prior_loss(k: jax.Array, scale: int) -> jax.Array:
  """A blur's shape prior on the downscaler's weights (beyond the paper).

  `k`: `[side, side]` weights of one LLR pixel (`IKEModel.downscale_kernel`),
  aligned with input pixel `(s*c, s*c)`, `c = side / s // 2`. Returns the
  negative mass `sum relu(-k)` plus the mass beyond `4 s` px of the pixel's
  centre weighted by the distance past it in px, `sum |k| max(0, d - 4 s)`
  (KernelGAN's boundary loss, for a kernel with no window). A physical blur
  has neither; the GAN alone gives the linear flow kernels with half their
  mass negative.
  """
  side = k.shape[0]
  origin = scale * (side // scale // 2) + 0.5 * (scale - 1)   # the LLR pixel's centre
  idx = np.arange(side) - origin
  dist = np.sqrt(idx[:, None] ** 2 + idx[None, :] ** 2)
  far = np.maximum(0.0, dist - 4 * scale)
  return jnp.sum(jax.nn.relu(-k)) + jnp.sum(jnp.abs(k) * far)
