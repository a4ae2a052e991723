"""IKE's learned blur kernel: the impulse response of its (affine) downscaler.

With linear subnets the flow's `X_LR -> X_LLR` is an affine, s-periodic map applied to every
colour alike, i.e. a blur followed by `[::s]` subsampling; its kernel is the gradient of one
output pixel with respect to the input (one backward pass), in the operator-window convention
of `ikejax.imaging.kernels`.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ikejax.ike.configs import IKEConfig
from ikejax.ike.model import build_model, probe_side
from ikejax.imaging.kernels import DEFAULT_SIZE


@functools.partial(jax.jit, static_argnames=("cfg", "side"))
def _impulse_response(flow_params, *, cfg: IKEConfig, side: int) -> jax.Array:
  model = build_model(cfg)
  centre = side // cfg.scale // 2

  def centre_pixel(x):
    llr, _ = model.encode(flow_params, x)
    return llr[centre, centre, 0]

  return jax.grad(centre_pixel)(jnp.zeros((side, side, 3), jnp.float32))


def impulse_response(flow_params, cfg: IKEConfig,
                     side: Optional[int] = None) -> tuple[np.ndarray, tuple[int, int]]:
  """d X_LLR[c, c, 0] / d X_LR on a zero image: the downscaler's full kernel.

  Returns:
    (`[side, side]` float64 weights of the red channel, the input pixel
    `(s*c, s*c)` that the output pixel `(c, c)` is aligned with). The other
    colour channels' weights are zero (checked): colours never mix.
  """
  side = side or probe_side(cfg)
  g = np.asarray(_impulse_response(flow_params, cfg=cfg, side=side), np.float64)
  if np.abs(g[..., 1:]).max() > 1e-6 * max(np.abs(g[..., 0]).max(), 1e-30):
    raise ValueError("the downscaler mixes colour channels; it has no single blur kernel")
  origin = cfg.scale * (side // cfg.scale // 2)
  return g[..., 0], (origin, origin)


def ike_kernel(flow_params, cfg: IKEConfig, size: Optional[int] = None) -> tuple[np.ndarray, dict]:
  """IKE's learned x`s` blur kernel, `[size, size]` in the operator-window convention.

  Exact for linear subnets (the downscaler is affine); with nonlinear subnets
  it is the linearisation at a flat image, and `info['linear']` says so.

  Returns:
    (kernel, info): `info` holds `mass_inside` (the window's share of the
    full response's absolute mass; below ~0.99 the window is too small),
    `sum` (1 up to float error with the bicubic residual) and `linear`.
  """
  size = size or DEFAULT_SIZE[cfg.scale]
  full, (oy, ox) = impulse_response(flow_params, cfg)
  h = size // 2
  k = full[oy - h:oy - h + size, ox - h:ox - h + size]
  info = {"mass_inside": float(np.abs(k).sum() / np.abs(full).sum()),
          "sum": float(k.sum()), "linear": bool(cfg.linear_subnets), "size": size}
  return k, info
