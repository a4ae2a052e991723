"""Whole-image inference with a trained state (official `test()`), any H and W."""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ikejax import tiles
from ikejax.ike.configs import IKEConfig
from ikejax.ike.model import build_model
from ikejax.ike.train import IKEState


def _pad_to_multiple(x: jax.Array, s: int) -> jax.Array:
  """Symmetric padding at the bottom/right so that `s` divides H and W."""
  ph, pw = (-x.shape[0]) % s, (-x.shape[1]) % s
  if ph or pw:
    x = jnp.pad(x, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
  return x


@functools.partial(jax.jit, static_argnames=("cfg",))
def _super_resolve(flow, up, image, *, cfg):
  model = build_model(cfg)
  h, w, _ = image.shape
  s = cfg.scale
  sr = model.super_resolve(flow, up, _pad_to_multiple(image, s))
  return sr[:s * h, :s * w]


@functools.partial(jax.jit, static_argnames=("cfg",))
def _downscale(flow, image, *, cfg):
  model = build_model(cfg)
  llr, _ = model.encode(flow, image)
  return llr


def _tile(tile: Optional[int], s: int) -> Optional[int]:
  return None if not tile else max(s, tile // s * s)


def super_resolve(state: IKEState, image: np.ndarray, cfg: IKEConfig,
                  tile: Optional[int] = None, overlap: int = tiles.DEFAULT_OVERLAP
                  ) -> np.ndarray:
  """X_LR -> flow -> Z -> U -> inverse flow, on the whole image, with the
  inference parameters (`state.ema`: the trained ones unless `cfg.ema_decay`).

  `[H, W, 3] -> [s*H, s*W, 3]` in [-1, 1] (not clipped). When `s` does not
  divide H or W the image is padded symmetrically to a multiple of `s` and
  the result cropped back to exactly `s*H x s*W`. `tile`: run on overlapping tiles of
  about that side (`ikejax.tiles`; starts on the squeeze grid), None: whole.
  """
  fn = lambda x: _super_resolve(state.ema["flow"], state.ema["up"],
                                jnp.asarray(x, jnp.float32), cfg=cfg)
  s = cfg.scale
  if not tile:
    return np.asarray(fn(image))
  return tiles.map_tiles(fn, np.asarray(image, np.float32), s, _tile(tile, s), overlap, align=s)


def downscale(state: IKEState, image: np.ndarray, cfg: IKEConfig,
              tile: Optional[int] = None, overlap: int = tiles.DEFAULT_OVERLAP) -> np.ndarray:
  """The learned degradation X_LR -> X_LLR on the whole image, `[H, W, 3] -> [H/s, W/s, 3]`.

  H and W are first cropped (bottom/right) to multiples of `s`. `tile` as `super_resolve`.
  """
  s = cfg.scale
  h, w = (image.shape[0] // s) * s, (image.shape[1] // s) * s
  fn = lambda x: _downscale(state.ema["flow"], jnp.asarray(x, jnp.float32), cfg=cfg)
  if not tile:
    return np.asarray(fn(image[:h, :w]))
  return tiles.map_tiles(fn, np.asarray(image[:h, :w], np.float32), 1.0 / s, _tile(tile, s),
                         -(-overlap // s) * s, align=s)
