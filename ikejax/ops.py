"""Pure, parameter-free array ops on single images laid out as `[H, W, C]`.

Everything here works on `jax.Array`s inside `jit`; `imresize`, the filters
and `space_to_depth` also accept NumPy arrays and then return NumPy arrays, so
host-side code (crop probability maps, baselines) shares one implementation.

Reference behaviour followed (facts from the official IKE code, see
third_party/README.md):
  * `space_to_depth` orders channels as the official `SpaceToDepth`
    (`src/modules/Inv_arch.py`): channel = (dy * s + dx) * C + c.
  * `imresize(kind='torch')` is `torch.nn.Upsample(mode='bicubic',
    align_corners=True)`, the resize used everywhere inside the official flow.
  * `imresize(kind='matlab')` is MATLAB's `imresize(..., 'bicubic')`
    (Keys a = -0.5, antialiased when downscaling, half-pixel centres, mirrored
    borders), as in the `imresize.py` that KernelGAN, DualSR and IKE share.
"""

from __future__ import annotations

import functools
import os
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from ikejax.imaging import resize
from ikejax.imaging.resize import RESIZE_KINDS, resize_matrix

Array = Union[jax.Array, np.ndarray]

GRAY_WEIGHTS = (0.299, 0.587, 0.114)

# The CPU-tuned convolution formulations (`conv2d_banded` for convs with few input
# channels, `conv_grad`'s blocked filter gradient) compute the same functions as
# `lax.conv_general_dilated`. 'auto' takes them on the CPU backend only, where they were
# measured faster; 'cpu' and 'plain' force one or the other on every backend. Read when a
# function is traced: set it before the first jit call (`--conv`, or IKEJAX_CONV).
CONV_FORMULATIONS = ("auto", "cpu", "plain")
_CONV = {"formulation": os.environ.get("IKEJAX_CONV", "auto")}


def set_conv_formulation(name: str) -> None:
  if name not in CONV_FORMULATIONS:
    raise ValueError(f"conv formulation must be one of {CONV_FORMULATIONS}, got {name!r}")
  _CONV["formulation"] = name


def cpu_convs() -> bool:
  """Whether the CPU-tuned formulations are in use (see `CONV_FORMULATIONS`)."""
  name = _CONV["formulation"]
  if name not in CONV_FORMULATIONS:
    raise ValueError(f"IKEJAX_CONV must be one of {CONV_FORMULATIONS}, got {name!r}")
  return name == "cpu" or (name == "auto" and jax.default_backend() == "cpu")


def _xp(x: Array):
  """NumPy for NumPy inputs (host code), jax.numpy for everything else."""
  return np if isinstance(x, np.ndarray) else jnp


# ------------------------------------------------------------------------------
# Space-to-depth (the flow's squeeze).
# ------------------------------------------------------------------------------


def space_to_depth(x: Array, s: int) -> Array:
  """Moves `s x s` pixel blocks into channels.

  `[H, W, C] -> [H/s, W/s, s*s*C]`, output channel `(dy * s + dx) * C + c`
  holds pixel `(s*i + dy, s*j + dx)` of input channel `c`, the order of the
  official `SpaceToDepth` (`permute(0, 3, 5, 1, 2, 4)` in NCHW). The coupling
  split relies on it: channel 0 (sub-pixel (0, 0) of colour 0) is the LR slot.

  Args:
    x: `[H, W, C]` with `H` and `W` divisible by `s`.
    s: block size.

  Returns:
    `[H/s, W/s, s*s*C]`.

  Raises:
    ValueError: if `H` or `W` is not divisible by `s`.
  """
  h, w, c = x.shape
  if h % s or w % s:
    raise ValueError(f"space_to_depth needs H, W divisible by {s}, got {x.shape}")
  xp = _xp(x)
  y = x.reshape(h // s, s, w // s, s, c)
  y = xp.transpose(y, (0, 2, 1, 3, 4))
  return y.reshape(h // s, w // s, s * s * c)


def depth_to_space(y: Array, s: int) -> Array:
  """Exact inverse of `space_to_depth`: `[h, w, s*s*C] -> [s*h, s*w, C]`."""
  h, w, cs = y.shape
  if cs % (s * s):
    raise ValueError(f"depth_to_space needs channels divisible by {s * s}, got {y.shape}")
  c = cs // (s * s)
  xp = _xp(y)
  x = y.reshape(h, w, s, s, c)
  x = xp.transpose(x, (0, 2, 1, 3, 4))
  return x.reshape(h * s, w * s, c)


@functools.lru_cache(maxsize=8)
def block_basis(s: int) -> np.ndarray:
  """The `[s*s, s*s]` analysis matrix of the Haar-style squeeze.

  Row 0 is the block mean (weights `1/s^2`); rows `1..s*s-1` are an
  orthonormal basis of the zero-mean patterns of an `s x s` block: the 2-D
  Haar wavelets for `s = 2` (the official code's Haar squeeze), the 2-D DCT-II
  for other `s`. Its inverse sends `[a, 0, ..., 0]` to `a` on every pixel of
  the block, so an LR slot placed by the inverse fills the block (pixel
  shuffle would put it at one sub-pixel). Index order `dy * s + dx`.
  """
  n = np.arange(s)
  dct = np.cos(np.pi * (n[None, :] + 0.5) * n[:, None] / s)   # [k, x]
  dct /= np.linalg.norm(dct, axis=1, keepdims=True)
  basis = np.einsum("ay,bx->abyx", dct, dct).reshape(s * s, s * s)
  basis[0] = 1.0 / (s * s)
  basis.setflags(write=False)
  return basis


def haar_squeeze(x: Array, s: int) -> Array:
  """`space_to_depth`, then every colour's `s*s` sub-pixels mixed by `block_basis(s)`.

  `[H, W, C] -> [H/s, W/s, s*s*C]`, channel `q * C + c` = coefficient `q` of
  input channel `c` (channel 0: block means of channel 0). Exactly invertible
  (`haar_unsqueeze`); not volume preserving (no log-det is used).
  """
  y = space_to_depth(x, s)
  h, w, cs = y.shape
  t = block_basis(s)
  y = y.reshape(h, w, s * s, cs // (s * s))
  xp = _xp(x)
  t = t if xp is np else jnp.asarray(t, y.dtype)
  return xp.einsum("qp,hwpc->hwqc", t, y).reshape(h, w, cs)


def haar_unsqueeze(y: Array, s: int) -> Array:
  """Exact inverse of `haar_squeeze`: `[h, w, s*s*C] -> [s*h, s*w, C]`."""
  h, w, cs = y.shape
  t_inv = np.linalg.inv(block_basis(s))
  xp = _xp(y)
  t_inv = t_inv if xp is np else jnp.asarray(t_inv, y.dtype)
  x = xp.einsum("pq,hwqc->hwpc", t_inv, y.reshape(h, w, s * s, cs // (s * s)))
  return depth_to_space(x.reshape(h, w, cs), s)


# ------------------------------------------------------------------------------
# Bicubic resizing as two dense, exactly reproducible linear maps.
# ------------------------------------------------------------------------------


def imresize(x: Array, scale: float, kind: str = "matlab") -> Array:
  """Bicubic resize of one image by `scale` along both spatial axes.

  `[H, W, C] -> [H', W', C]` (or `[H, W] -> [H', W']`), with `H' = ceil(H *
  scale)` for `'matlab'` and `floor(H * scale)` for `'torch'`. Implemented as
  two dense matrix products (exact, differentiable, and fast on crops), or on axes over
  `resize.DENSE_MAX` px as sums of gathered taps (linear in the pixel count).

  Args:
    x: image, NumPy (computed in float64 and returned as float64) or JAX
      (computed in `x.dtype`).
    scale: resize factor (> 1 upscales).
    kind: `'matlab'` (antialiased, half-pixel centres) or `'torch'`
      (`align_corners=True`).

  Returns:
    The resized image.
  """
  if isinstance(x, np.ndarray):
    return resize.imresize(x, scale, kind)
  if kind not in RESIZE_KINDS:
    raise ValueError(f"unknown resize kind {kind!r}; expected one of {RESIZE_KINDS}")
  return _resize_axis(_resize_axis(x, 0, float(scale), kind), 1, float(scale), kind)


def _resize_axis(x: jax.Array, axis: int, scale: float, kind: str) -> jax.Array:
  """One axis of `imresize`: a dense matrix product up to `resize.DENSE_MAX` px, gathered
  taps above (linear in the pixel count)."""
  n = x.shape[axis]
  if n <= resize.DENSE_MAX:
    m = jnp.asarray(resize_matrix(n, scale, kind), x.dtype)
    hi = jax.lax.Precision.HIGHEST  # Keep float32 exact on TPU/GPU matmul units.
    return jnp.moveaxis(jnp.tensordot(m, x, axes=(1, axis), precision=hi), 0, axis)
  idx, w = resize.resize_taps(n, scale, kind)
  xm = jnp.moveaxis(x, axis, 0)
  shape = (-1,) + (1,) * (xm.ndim - 1)
  out = sum(jnp.asarray(w[:, k], x.dtype).reshape(shape) * jnp.take(xm, jnp.asarray(idx[:, k]),
                                                                     axis=0)
            for k in range(idx.shape[1]))
  return jnp.moveaxis(out, 0, axis)


# ------------------------------------------------------------------------------
# Filters.
# ------------------------------------------------------------------------------


def correlate_subsample(x: jax.Array, kernel: jax.Array, s: int) -> jax.Array:
  """`[H, W, C] -> [ceil(H/s), ceil(W/s), C]`: every channel correlated with an odd
  `[k, k]` operator-window kernel (mirrored borders, `d c b a | a b c d`), then every
  s-th pixel from 0: `y[i] = sum_u kernel[u] x[s*i + u - k//2]` (`ikejax.imaging.kernels`'s
  convention, DIV2KRK's degradation)."""
  r = kernel.shape[0] // 2
  xp = jnp.pad(x, ((r, r), (r, r), (0, 0)), mode="symmetric")
  return conv2d_single(xp, kernel, stride=s, padding=0)


def rgb_to_gray(x: Array) -> Array:
  """`[H, W, 3] -> [H, W]` luma with weights (0.299, 0.587, 0.114)."""
  return x[..., 0] * GRAY_WEIGHTS[0] + x[..., 1] * GRAY_WEIGHTS[1] + x[..., 2] * GRAY_WEIGHTS[2]


def conv2d_single(x: Array, kernel: Array, stride: int = 1, padding=0) -> Array:
  """Correlates every channel of `x` with one 2-D `kernel` (depthwise).

  `[H, W, C] -> [H', W', C]`; `padding` is an int (zeros on every side, as
  `torch.nn.functional.conv2d`) or `'VALID'`.

  Args:
    x: `[H, W, C]` JAX array.
    kernel: `[kh, kw]`.
    stride: spatial stride.
    padding: zero padding per side, or `'VALID'` (= 0).

  Returns:
    `[(H + 2p - kh) // stride + 1, ..., C]`.
  """
  pad = 0 if padding == "VALID" else int(padding)
  c = x.shape[-1]
  k = jnp.broadcast_to(jnp.asarray(kernel, x.dtype)[:, :, None, None],
                       kernel.shape + (1, c))
  y = jax.lax.conv_general_dilated(
      x[None], k, window_strides=(stride, stride), padding=[(pad, pad)] * 2,
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c,
      precision=jax.lax.Precision.HIGHEST)
  return y[0]


def conv2d_banded(x: jax.Array, kernel: jax.Array, padding: str = "SAME",
                  tile: Optional[int] = None) -> jax.Array:
  """Stride-1 correlation as one matrix multiply (few input channels, wide kernel).

  `[N, H, W, Cin] x [kh, kw, Cin, Cout] -> [N, H', W', Cout]`, the same
  function as `lax.conv_general_dilated(x, kernel, (1, 1), padding)` with
  `padding` `'SAME'` (odd kernels) or `'VALID'`. XLA:CPU runs convolutions
  with one to three input channels far below its peak (the flow's 11x11
  subnets at ~2 GFLOP/s, the discriminator's 7x7 RGB stem at ~40 GFLOP/s).
  Here the output columns are cut into tiles of `tile` (plus the kernel's
  halo), the kh row shifts of each tile are laid side by side, and one
  matmul with a banded (Toeplitz) matrix built from the kernel gives every
  output. It does (tile + kw - 1) / kw times the multiply-adds of a direct
  convolution, at matmul speed. Differentiable in both arguments. The
  default tile (16 outputs for up to 16 output channels, down to 4 for 64)
  was the fastest measured on this project's CPU. Off the CPU (`cpu_convs()` false) it is
  `lax.conv_general_dilated` itself.
  """
  if padding not in ("SAME", "VALID"):
    raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
  if not cpu_convs():
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  kh, kw, _, d = kernel.shape
  if padding == "SAME":
    x = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  n, h, w, c = x.shape
  oh, ow = h - kh + 1, w - kw + 1
  b = min(tile or max(4, min(16, 256 // d)), ow)
  nt = -(-ow // b)                      # tiles; the last one is zero-padded.
  span = b + kw - 1                     # input columns one tile of outputs sees.
  x = jnp.pad(x, ((0, 0), (0, 0), (0, nt * b - ow), (0, 0)))
  tiles = jnp.stack([x[:, :, t * b:t * b + span] for t in range(nt)], axis=2)
  rows = jnp.stack([tiles[:, dy:dy + oh] for dy in range(kh)], axis=3)
  rows = rows.reshape(n * oh * nt, kh * span * c)      # [N*H'*nt, kh*span*Cin]
  # band[i, o, t] = 1 where tile input column i feeds output o through tap t.
  band = (np.arange(span)[:, None, None]
          == np.arange(b)[None, :, None] + np.arange(kw)[None, None, :])
  toeplitz = jnp.einsum("iot,ytcd->yicod", band.astype(kernel.dtype), kernel)
  out = rows @ toeplitz.reshape(kh * span * c, b * d)   # [N*H'*nt, b*Cout]
  return out.reshape(n, oh, nt * b, d)[:, :, :ow]


def banded_conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                                rhs_dilation=None, dimension_numbers=None,
                                feature_group_count=1, precision=None):
  """`conv2d_banded` behind `lax.conv_general_dilated`'s signature (for `nn.Conv`).

  Only what `conv2d_banded` computes is accepted: 2-D NHWC/HWIO, stride 1,
  no dilation, one feature group, `'SAME'`/`'VALID'` padding.
  """
  del precision
  ok = (tuple(window_strides) == (1, 1) and feature_group_count == 1
        and all(d in (None, (1, 1)) for d in (lhs_dilation and tuple(lhs_dilation),
                                              rhs_dilation and tuple(rhs_dilation)))
        and padding in ("SAME", "VALID")
        and (dimension_numbers is None or tuple(dimension_numbers.lhs_spec) == (0, 3, 1, 2)))
  if not ok:
    raise ValueError("banded convolution needs a stride-1, undilated, ungrouped NHWC conv "
                     "with 'SAME' or 'VALID' padding")
  return conv2d_banded(lhs, rhs, padding)


def box_filter(x: Array, size: int) -> Array:
  """`size x size` mean filter, 'valid' (no padding): `[H, W, C] -> [H-size+1, W-size+1, C]`."""
  return conv2d_single(x, jnp.full((size, size), 1.0 / (size * size), x.dtype))


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
  """`[size, size]` separable Gaussian as `cv2.getGaussianKernel` builds it."""
  t = np.arange(size, dtype=np.float64) - (size - 1) / 2
  g = np.exp(-t * t / (2 * sigma * sigma))
  g /= g.sum()
  return np.outer(g, g)


def sobel_magnitude(x: Array) -> Array:
  """Sobel gradient magnitude of a 2-D image, `[H, W] -> [H, W]`.

  Same as `numpy.hypot(scipy.ndimage.sobel(x, 1), scipy.ndimage.sobel(x, 0))`
  (mode 'reflect', i.e. half-sample symmetric borders), which the official
  `edge_detect` computes.
  """
  xp = _xp(x)
  p = xp.pad(x, 1, mode="symmetric")
  # Derivative [-1, 0, 1] along one axis, smoothing [1, 2, 1] along the other.
  dx = p[:, 2:] - p[:, :-2]
  gx = dx[:-2] + 2 * dx[1:-1] + dx[2:]
  dy = p[2:] - p[:-2]
  gy = dy[:, :-2] + 2 * dy[:, 1:-1] + dy[:, 2:]
  return xp.sqrt(gx * gx + gy * gy)


def total_variation(x: Array, kind: str = "isotropic", eps: float = 1e-8) -> Array:
  """Total variation of `[H, W, C]`, normalised per pixel.

  * `'isotropic'`: the paper's Eq. 5, `sqrt(dx^2 + dy^2)` per pixel, taken as a
    mean over the `(H-1)(W-1)C` pixels that have both neighbours (the paper
    writes a sum; a mean keeps lambda_TV = 1 on the scale of the other, mean,
    losses). `eps` keeps the gradient finite at flat pixels.
  * `'squared'`: the official `TVLoss`, `2 * (mean(dy^2) + mean(dx^2))`.
  """
  dy = x[1:, :, :] - x[:-1, :, :]
  dx = x[:, 1:, :] - x[:, :-1, :]
  if kind == "isotropic":
    return jnp.mean(jnp.sqrt(dy[:, :-1] ** 2 + dx[:-1, :] ** 2 + eps))
  if kind == "squared":
    return 2.0 * (jnp.mean(dy * dy) + jnp.mean(dx * dx))
  raise ValueError(f"unknown TV kind {kind!r}; expected 'isotropic' or 'squared'")
