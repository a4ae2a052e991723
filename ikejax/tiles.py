"""Whole-image inference in bounded memory: a resizing function run on overlapping tiles.

`map_tiles(fn, x, scale, tile, overlap)` cuts `[H, W, C]` into tiles of one size (so `fn`
compiles once), runs `fn` on each and blends the outputs across each overlap: no weight in
the third next to a tile's cut edge, a linear ramp over the middle third. With a third of
the overlap wider than `fn`'s reach (receptive-field radius) the result equals the untiled
one up to float rounding; narrower, the seams differ by what the missing context changes,
smoothly.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

# Default tile side in input pixels per backend: CPU caches and host memory favour smaller
# tiles; accelerators want fewer, larger calls.
DEFAULT_TILE = {"cpu": 512, "gpu": 1024, "tpu": 1024}
DEFAULT_OVERLAP = 32


# Images up to this many input px run whole by default: their activations fit in memory
# and the results stay exactly those of untiled runs.
AUTO_MAX_PIXELS = 2 ** 21


def default_tile(platform: str) -> int:
  return DEFAULT_TILE.get(platform, 512)


def choose_tile(setting: Optional[int], h: int, w: int, platform: str) -> Optional[int]:
  """The tile side for an `h x w` input: `setting` None picks by image and backend (whole
  up to `AUTO_MAX_PIXELS`, else `default_tile`), 0 means whole, N means N."""
  if setting is None:
    return default_tile(platform) if h * w > AUTO_MAX_PIXELS else None
  if setting < 0:
    raise ValueError(f"--tile must be >= 0, got {setting}")
  return setting or None


def starts(n: int, tile: int, overlap: int, align: int = 1) -> list[int]:
  """Tile starts along an axis of `n` (a multiple of `align`) px: `tile`-long tiles that
  cover `[0, n)`, each overlapping the next by at least `overlap`, starts multiples of `align`.
  """
  if n <= tile:
    return [0]
  step = max(align, (tile - overlap) // align * align)
  out = list(range(0, n - tile, step))
  last = (n - tile) // align * align
  if not out or out[-1] != last:
    out.append(last)
  return out


def _ramp(length: int, left: int, right: int) -> np.ndarray:
  """`[length]` weights of a tile that shares `left` / `right` px with its neighbours.

  Over a shared part of L px the weight is 0 in the third at the tile's edge (where its
  context is cut), rises linearly over the middle third and is 1 in the inner third; the
  neighbour's weight there is the mirror image, so the two sum to 1.
  """
  w = np.ones(length, np.float64)
  if left:
    w[:left] = np.clip((np.arange(left) + 0.5 - left / 3) / (left / 3), 0.0, 1.0)
  if right:
    r = np.clip((np.arange(right) + 0.5 - right / 3) / (right / 3), 0.0, 1.0)[::-1]
    w[length - right:] = np.minimum(w[length - right:], r)
  return w


def _placed_ramps(starts_: list[int], tile: int, scale: float,
                  n_out: int) -> tuple[list[np.ndarray], np.ndarray]:
  """Along one axis: each tile's output ramp (`_ramp` over the parts shared with its
  neighbours) and their sum placed at the tiles' output positions, `[n_out]`."""
  out_tile = round(scale * tile)
  ramps, total = [], np.zeros(n_out, np.float64)
  for i, a in enumerate(starts_):
    before = math.ceil(scale * (starts_[i - 1] + tile - a)) if i else 0
    after = math.ceil(scale * (a + tile - starts_[i + 1])) if i + 1 < len(starts_) else 0
    ramps.append(_ramp(out_tile, before, after))
    total[round(scale * a):round(scale * a) + out_tile] += ramps[-1]
  return ramps, total


def map_tiles(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, scale: float, tile: int,
              overlap: int = DEFAULT_OVERLAP, align: int = 1,
              on_tile: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
  """`fn` on overlapping tiles of `x`, blended: `[H, W, C] -> [scale*H, scale*W, C']`.

  Args:
    fn: `[t, t, C] -> [scale*t, scale*t, C']` (`scale*t` an integer), one tile size.
    x: the image; H and W are padded (symmetrically, bottom and right) up to multiples of
      `align` and the result cropped back to `round(scale*H) x round(scale*W)`.
    tile: tile side in input px (a multiple of `align`, with `scale*tile` an integer); an
      image no larger runs untiled.
    overlap: least overlap of neighbouring tiles, input px.
    align: tile starts are multiples of it (e.g. a flow's squeeze factor).
    on_tile: called with (tiles done, tiles in all) after each tile.
  """
  h, w = x.shape[:2]
  out_h, out_w = round(scale * h), round(scale * w)
  ph, pw = (-h) % align, (-w) % align
  if ph or pw:
    x = np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
  H, W = x.shape[:2]
  th, tw = min(tile, H), min(tile, W)
  if th == H and tw == W:
    y = np.asarray(fn(x))
    return y[:out_h, :out_w]
  if overlap >= min(th, tw):
    raise ValueError(f"tile overlap {overlap} must be smaller than the tile ({th}x{tw})")
  oth, otw = round(scale * th), round(scale * tw)
  rows, cols = starts(H, th, overlap, align), starts(W, tw, overlap, align)
  # A tile's weight is the outer product of a row ramp and a column ramp, so the sum of
  # weights over all tiles is the outer product of their placed sums: two vectors, not a
  # second image-sized array.
  ramps_r, row_w = _placed_ramps(rows, th, scale, round(scale * H))
  ramps_c, col_w = _placed_ramps(cols, tw, scale, round(scale * W))
  assert row_w.min() > 0 and col_w.min() > 0, "every output pixel has a tile with weight"
  acc = None
  total, done = len(rows) * len(cols), 0
  for i, r in enumerate(rows):
    for j, c in enumerate(cols):
      y = np.asarray(fn(x[r:r + th, c:c + tw]), np.float32)
      if acc is None:
        acc = np.zeros((row_w.size, col_w.size, y.shape[-1]), np.float32)
      wt = np.outer(ramps_r[i], ramps_c[j]).astype(np.float32)
      R, C = round(scale * r), round(scale * c)
      acc[R:R + oth, C:C + otw] += y * wt[:, :, None]
      done += 1
      if on_tile is not None:
        on_tile(done, total)
  inv_c = (1.0 / col_w).astype(np.float32)[None, :, None]
  for a in range(0, acc.shape[0], 256):  # in bands: no image-sized temporary
    acc[a:a + 256] *= (1.0 / row_w[a:a + 256]).astype(np.float32)[:, None, None] * inv_c
  return acc[:out_h, :out_w]
