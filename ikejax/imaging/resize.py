"""MATLAB- and torch-style bicubic resizing on the host (NumPy, float64), as dense 1-D maps.

`resize_matrix` gives the `[n_out, n_in]` weights of one axis; `imresize` applies them to
both spatial axes. `ikejax.ops.imresize` applies the same matrices to JAX arrays inside
`jit`, so host code (filters, crop maps, baselines) and the models share one definition.

  * `kind='matlab'`: MATLAB's `imresize(..., 'bicubic')` (Keys a = -0.5, antialiased when
    downscaling, half-pixel centres, mirrored borders), as the `imresize.py` that KernelGAN,
    DualSR and IKE share.
  * `kind='torch'`: `torch.nn.Upsample(mode='bicubic', align_corners=True)`, the resize
    inside the official IKE flow.
"""

from __future__ import annotations

import functools
import math

import numpy as np

RESIZE_KINDS = ("matlab", "torch")


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
  """Keys' cubic convolution kernel with parameter `a`."""
  ax = np.abs(x)
  ax2, ax3 = ax * ax, ax * ax * ax
  return np.where(
      ax <= 1, (a + 2) * ax3 - (a + 3) * ax2 + 1,
      np.where(ax < 2, a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a, 0.0))


def _matlab_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
  """MATLAB `imresize` bicubic weights along one axis, `[n_out, n_in]`."""
  antialias = scale < 1
  width = 4.0 / scale if antialias else 4.0
  kernel = (lambda t: scale * _cubic(scale * t, -0.5)) if antialias else (
      lambda t: _cubic(t, -0.5))
  out = np.arange(1, n_out + 1, dtype=np.float64)
  centre = out / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate.
  left = np.floor(centre - width / 2)
  taps = int(math.ceil(width)) + 2
  idx = left[:, None] + np.arange(taps)[None, :]
  weights = kernel(centre[:, None] - idx)
  weights /= weights.sum(axis=1, keepdims=True)
  # Mirror the borders (MATLAB's symmetric padding): 1..n, n..1, repeated.
  mirror = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
  idx = mirror[np.mod(idx.astype(np.int64) - 1, 2 * n_in)]
  mat = np.zeros((n_out, n_in))
  np.add.at(mat, (np.repeat(np.arange(n_out), taps), idx.ravel()), weights.ravel())
  return mat


def _torch_matrix(n_in: int, n_out: int) -> np.ndarray:
  """`torch` bicubic, `align_corners=True`, weights `[n_out, n_in]`.

  PyTorch samples input coordinate `o * (n_in - 1) / (n_out - 1)` with Keys
  a = -0.75, no antialiasing, and clamps taps to the border.
  """
  step = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
  src = np.arange(n_out, dtype=np.float64) * step
  base = np.floor(src)
  t = src - base
  offsets = np.arange(-1, 3)
  weights = _cubic(t[:, None] - offsets[None, :], -0.75)
  idx = np.clip(base[:, None].astype(np.int64) + offsets[None, :], 0, n_in - 1)
  mat = np.zeros((n_out, n_in))
  np.add.at(mat, (np.repeat(np.arange(n_out), 4), idx.ravel()), weights.ravel())
  return mat


def resize_out_size(n_in: int, scale: float, kind: str) -> int:
  """Output length of `imresize` along one axis (MATLAB ceil, torch floor)."""
  if kind == "matlab":
    return int(math.ceil(n_in * scale - 1e-9))
  if kind == "torch":
    return int(math.floor(n_in * scale + 1e-9))
  raise ValueError(f"unknown resize kind {kind!r}; expected one of {RESIZE_KINDS}")


@functools.lru_cache(maxsize=64)
def resize_matrix(n_in: int, scale: float, kind: str) -> np.ndarray:
  """The `[n_out, n_in]` float64 matrix of a 1-D bicubic resize by `scale`."""
  n_out = resize_out_size(n_in, scale, kind)
  if kind == "matlab":
    mat = _matlab_matrix(n_in, n_out, scale)
  else:
    mat = _torch_matrix(n_in, n_out)
  mat.setflags(write=False)
  return mat


def imresize(x: np.ndarray, scale: float, kind: str = "matlab") -> np.ndarray:
  """`[H, W, C] -> [H', W', C]` (or `[H, W] -> [H', W']`) float64 bicubic resize by `scale`;
  `H' = ceil(H * scale)` for `'matlab'`, `floor(H * scale)` for `'torch'`."""
  if kind not in RESIZE_KINDS:
    raise ValueError(f"unknown resize kind {kind!r}; expected one of {RESIZE_KINDS}")
  mh = resize_matrix(x.shape[0], float(scale), kind)
  mw = resize_matrix(x.shape[1], float(scale), kind)
  y = np.tensordot(mh, np.asarray(x, np.float64), axes=(1, 0))
  return np.moveaxis(np.tensordot(mw, y, axes=(1, 1)), 0, 1)
