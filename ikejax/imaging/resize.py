"""MATLAB- and torch-style bicubic resizing on the host (NumPy, float64), as 1-D maps.

`resize_taps` gives each output pixel's input indices and weights along one axis and
`resize_matrix` the same map as a dense `[n_out, n_in]` matrix; `imresize` applies them to
both spatial axes: as matrix products up to `DENSE_MAX` px per axis, above as sums of
gathered taps (memory and time linear in the pixel count, for large photos). `ikejax.ops.imresize` applies the same matrices to JAX arrays inside
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


# Longest axis resized with a dense matrix; longer ones use the taps.
DENSE_MAX = 2048


def _matlab_taps(n_in: int, n_out: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
  """MATLAB `imresize` bicubic taps along one axis: indices and weights, `[n_out, taps]`."""
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
  return mirror[np.mod(idx.astype(np.int64) - 1, 2 * n_in)], weights


def _torch_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
  """`torch` bicubic, `align_corners=True`, taps `[n_out, 4]`.

  PyTorch samples input coordinate `o * (n_in - 1) / (n_out - 1)` with Keys
  a = -0.75, no antialiasing, and clamps taps to the border.
  """
  step = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
  src = np.arange(n_out, dtype=np.float64) * step
  base = np.floor(src)
  t = src - base
  offsets = np.arange(-1, 3)
  weights = _cubic(t[:, None] - offsets[None, :], -0.75)
  return np.clip(base[:, None].astype(np.int64) + offsets[None, :], 0, n_in - 1), weights


def resize_out_size(n_in: int, scale: float, kind: str) -> int:
  """Output length of `imresize` along one axis (MATLAB ceil, torch floor)."""
  if kind == "matlab":
    return int(math.ceil(n_in * scale - 1e-9))
  if kind == "torch":
    return int(math.floor(n_in * scale + 1e-9))
  raise ValueError(f"unknown resize kind {kind!r}; expected one of {RESIZE_KINDS}")


@functools.lru_cache(maxsize=64)
def resize_taps(n_in: int, scale: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
  """`(indices, weights)`, int64 and float64 `[n_out, taps]`: output pixel i of a 1-D bicubic
  resize by `scale` is `sum_k weights[i, k] * x[indices[i, k]]`."""
  n_out = resize_out_size(n_in, scale, kind)
  idx, w = _matlab_taps(n_in, n_out, scale) if kind == "matlab" else _torch_taps(n_in, n_out)
  idx.setflags(write=False)
  w.setflags(write=False)
  return idx, w


@functools.lru_cache(maxsize=64)
def resize_matrix(n_in: int, scale: float, kind: str) -> np.ndarray:
  """The `[n_out, n_in]` float64 matrix of a 1-D bicubic resize by `scale`."""
  idx, w = resize_taps(n_in, scale, kind)
  mat = np.zeros((idx.shape[0], n_in))
  np.add.at(mat, (np.repeat(np.arange(idx.shape[0]), idx.shape[1]), idx.ravel()), w.ravel())
  mat.setflags(write=False)
  return mat


def _resize_axis(x: np.ndarray, axis: int, scale: float, kind: str) -> np.ndarray:
  n = x.shape[axis]
  if n <= DENSE_MAX:
    return np.moveaxis(np.tensordot(resize_matrix(n, scale, kind), x, axes=(1, axis)), 0, axis)
  idx, w = resize_taps(n, scale, kind)
  xm = np.moveaxis(x, axis, 0)
  out = np.zeros((idx.shape[0],) + xm.shape[1:])
  shape = (-1,) + (1,) * (xm.ndim - 1)
  step = 256  # output lines per block: temporaries stay small on large images
  for i in range(0, idx.shape[0], step):
    for k in range(idx.shape[1]):
      out[i:i + step] += w[i:i + step, k].reshape(shape) * xm[idx[i:i + step, k]]
  return np.moveaxis(out, 0, axis)


def imresize(x: np.ndarray, scale: float, kind: str = "matlab") -> np.ndarray:
  """`[H, W, C] -> [H', W', C]` (or `[H, W] -> [H', W']`) float64 bicubic resize by `scale`;
  `H' = ceil(H * scale)` for `'matlab'`, `floor(H * scale)` for `'torch'`."""
  if kind not in RESIZE_KINDS:
    raise ValueError(f"unknown resize kind {kind!r}; expected one of {RESIZE_KINDS}")
  y = _resize_axis(np.asarray(x, np.float64), 0, float(scale), kind)
  return _resize_axis(y, 1, float(scale), kind)
