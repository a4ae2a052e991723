"""Zero-parameter reference upscalers: the rows every results table starts with.

They cost seconds and tell a user whether learning paid off (host NumPy, float64,
images `[H, W, C]` in [0, 1]):
  * `bicubic`: MATLAB-style bicubic upscale (`resize.imresize`).
  * `sharpen`: bicubic plus the LR's own bicubic residual copied over each
    `s x s` block, `up(LR) + nearest_s(LR - up(down(LR)))`. It is IKE's decode
    at initialisation with the Haar squeeze and Z = 0 (the inverse squeeze
    spreads the LR slot over its block; `tests/test_recipe.py` checks it).
"""

from __future__ import annotations

import numpy as np

from ikejax.imaging import resize


def bicubic(lr01: np.ndarray, scale: int) -> np.ndarray:
  """`[H, W, C] -> [s*H, s*W, C]` MATLAB bicubic."""
  return resize.imresize(np.asarray(lr01, np.float64), float(scale), "matlab")


def sharpen(lr01: np.ndarray, scale: int) -> np.ndarray:
  """`[H, W, C] -> [s*H, s*W, C]`: `up(LR) + nearest_s(LR - up(down(LR)))`.

  When `s` does not divide H or W, `up(down(LR))` is cropped back to `H x W`.
  """
  lr = np.asarray(lr01, np.float64)
  h, w = lr.shape[:2]
  back = resize.imresize(resize.imresize(lr, 1.0 / scale, "matlab"), float(scale), "matlab")
  residual = lr - back[:h, :w]
  return bicubic(lr, scale) + np.repeat(np.repeat(residual, scale, 0), scale, 1)


FILTERS = {"bicubic": bicubic, "sharpen": sharpen}


def bicubic_kernel(scale: int, size: int) -> np.ndarray:
  """MATLAB's antialiased x(1/s) bicubic as a `[size, size]` operator-window kernel.

  (`ikejax.imaging.kernels`'s convention: `y[i] = sum_u k[u] x[s*i + u - size//2]`), the
  degradation both filters assume; written as their "estimated kernel".
  """
  n = 8 * scale + size
  row = resize.resize_matrix(n, 1.0 / scale, "matlab")[n // (2 * scale)]
  i = n // (2 * scale)
  k1 = np.array([row[scale * i + u - size // 2] for u in range(size)])
  return np.outer(k1, k1)
