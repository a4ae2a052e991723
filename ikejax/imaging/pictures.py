"""Pictures of a run, drawn with Pillow only: side-by-side crops and loss curves."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
            (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def crop_window(shape: tuple[int, int], max_side: int = 384,
                centre: tuple[float, float] = (0.5, 0.5)) -> tuple:
  """The window `side_by_side` shows of an `[h, w]` image: `((top, height), (left, width))`,
  at most `max_side` on a side, centred on `centre` (fractions of h, w), inside the image."""
  h, w = shape
  ch, cw = min(h, max_side), min(w, max_side)
  top = int(np.clip(round(centre[0] * h - ch / 2), 0, h - ch))
  left = int(np.clip(round(centre[1] * w - cw / 2), 0, w - cw))
  return (top, ch), (left, cw)


def side_by_side(panels: Mapping[str, np.ndarray], max_side: int = 384,
                 centre: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
  """Same-size uint8 `[H, W, 3]` panels cropped alike (`crop_window`) and put in a row,
  labelled.

  Args:
    panels: label -> image (all of one size, uint8).
    max_side: side of the crop taken from each panel (whole panel if smaller).
    centre: crop centre as fractions of (height, width).

  Returns:
    uint8 `[h + 14, n * (w + 4), 3]` picture.
  """
  imgs = list(panels.values())
  (top, ch), (left, cw) = crop_window(imgs[0].shape[:2], max_side, centre)
  gap, label_h = 4, 14
  canvas = Image.new("RGB", (len(imgs) * (cw + gap) - gap, ch + label_h), "white")
  draw = ImageDraw.Draw(canvas)
  for i, (name, img) in enumerate(panels.items()):
    tile = Image.fromarray(np.ascontiguousarray(img[top:top + ch, left:left + cw]))
    canvas.paste(tile, (i * (cw + gap), label_h))
    draw.text((i * (cw + gap) + 2, 1), name, fill="black")
  return np.asarray(canvas)


def loss_curves(history: Sequence[Mapping[str, float]], keys: Sequence[str],
                size: tuple[int, int] = (640, 360)) -> np.ndarray:
  """Loss curves against iteration, log-scaled y, one colour per key.

  Args:
    history: logged metrics, each with `iteration` and some of the `keys`
      (an entry without a key is skipped on that key's curve: methods with
      stages log different losses).
    keys: metric names to draw.
    size: (width, height) in pixels.

  Returns:
    uint8 `[height, width, 3]` picture.
  """
  width, height = size
  canvas = Image.new("RGB", size, "white")
  draw = ImageDraw.Draw(canvas)
  m_left, m_right, m_top, m_bottom = 48, 110, 10, 24
  pw, ph = width - m_left - m_right, height - m_top - m_bottom
  draw.rectangle([m_left, m_top, m_left + pw, m_top + ph], outline="black")
  its = [h["iteration"] for h in history]
  has = lambda h, k: k in h and math.isfinite(h[k])
  vals = [max(h[k], 1e-8) for h in history for k in keys if has(h, k)]
  if not its or not vals:
    return np.asarray(canvas)
  lo, hi = math.log10(min(vals)), math.log10(max(vals))
  hi = hi if hi > lo else lo + 1
  x0, x1 = min(its), max(its) if max(its) > min(its) else min(its) + 1
  to_xy = lambda it, v: (m_left + (it - x0) / (x1 - x0) * pw,
                         m_top + (hi - math.log10(max(v, 1e-8))) / (hi - lo) * ph)
  for i, k in enumerate(keys):
    pts = [to_xy(h["iteration"], h[k]) for h in history if has(h, k)]
    colour = _COLOURS[i % len(_COLOURS)]
    if len(pts) > 1:
      draw.line(pts, fill=colour, width=2)
    draw.text((m_left + pw + 8, m_top + 4 + 14 * i), k, fill=colour)
  draw.text((2, m_top), f"{10 ** hi:.3g}", fill="black")
  draw.text((2, m_top + ph - 10), f"{10 ** lo:.3g}", fill="black")
  draw.text((m_left, m_top + ph + 6), f"iteration {x0}", fill="black")
  draw.text((m_left + pw - 70, m_top + ph + 6), f"{x1}", fill="black")
  return np.asarray(canvas)


def kernel_image(kernel: np.ndarray, side: int = 256) -> np.ndarray:
  """A blur kernel as a picture: taps scaled to their maximum, nearest-upsampled.

  `[k, k]` -> uint8 `[~side, ~side, 3]` grey (white = the largest tap), each
  tap a square of `max(1, side // k)` px, so individual taps stay visible.
  """
  k = np.asarray(kernel, np.float64)
  peak = float(np.max(np.abs(k))) or 1.0
  grey = np.clip(np.rint(255.0 * np.abs(k) / peak), 0, 255).astype(np.uint8)
  cell = max(1, side // k.shape[0])
  big = np.repeat(np.repeat(grey, cell, 0), cell, 1)
  return np.repeat(big[..., None], 3, -1)
