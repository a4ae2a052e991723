"""A stride-1 NHWC convolution with a filter gradient that is fast on XLA:CPU.

XLA:CPU runs a 3x3, 64 -> 64 convolution's forward pass near its matmul peak, but its
filter gradient (the "backprop filter" convolution, a correlation with an image-sized
kernel) about five times slower, so that it dominates training of the 64-channel CNNs
(ZSSR's net, DualSR's G_UP, IKE's U). `conv2d` keeps `lax.conv_general_dilated` for the
forward pass and the input gradient, and forms the filter gradient as a scan over blocks of
a few output rows, each one small im2col matmul that stays in cache. A whole-image im2col
is no faster: it is bound by memory bandwidth. Same function, same gradients (to float32
rounding); other backends take the plain convolution (`ops.cpu_convs`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ikejax import ops

_DN = ("NHWC", "HWIO", "NHWC")
# Pixels (N x rows x W) per block of the filter gradient: its im2col block, pixels x
# k*k*C floats, stays within a few MB.
_BLOCK_PIXELS = 1024


def _valid(x: jax.Array, w: jax.Array) -> jax.Array:
  return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=_DN)


def filter_grad(xp: jax.Array, g: jax.Array, kh: int, kw: int) -> jax.Array:
  """`d sum(g * conv(xp, w)) / dw` of a VALID stride-1 conv, `-> [kh, kw, C, F]`.

  Args:
    xp: the (padded) input, `[N, Ho + kh - 1, Wo + kw - 1, C]`.
    g: the output's cotangent, `[N, Ho, Wo, F]`.
  """
  n, ho, wo, f = g.shape
  c = xp.shape[-1]
  rb = max(1, min(ho, _BLOCK_PIXELS // max(1, n * wo)))
  nb = -(-ho // rb)
  extra = nb * rb - ho  # zero cotangent rows contribute nothing
  g = jnp.pad(g, ((0, 0), (0, extra), (0, 0), (0, 0)))
  xp = jnp.pad(xp, ((0, 0), (0, extra), (0, 0), (0, 0)))

  def block(acc, b):
    xb = jax.lax.dynamic_slice_in_dim(xp, b * rb, rb + kh - 1, axis=1)
    gb = jax.lax.dynamic_slice_in_dim(g, b * rb, rb, axis=1).reshape(-1, f)
    cols = jnp.concatenate([xb[:, i:i + rb, j:j + wo] for i in range(kh) for j in range(kw)],
                           axis=-1).reshape(-1, kh * kw * c)
    return acc + jax.lax.dot_general(cols, gb, (((0,), (0,)), ((), ()))), None

  acc = jnp.zeros((kh * kw * c, f), jnp.result_type(xp, g))
  return jax.lax.scan(block, acc, jnp.arange(nb))[0].reshape(kh, kw, c, f)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_padded(x: jax.Array, w: jax.Array, pads: tuple) -> jax.Array:
  return _valid(jnp.pad(x, ((0, 0), *pads, (0, 0))), w)


def _fwd(x, w, pads):
  xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  return _valid(xp, w), (xp, w)


def _bwd(pads, res, g):
  xp, w = res
  dxp = jax.vjp(lambda a: _valid(a, w), xp)[1](g)[0]
  (t, b), (l, r) = pads
  dx = dxp[:, t:dxp.shape[1] - b, l:dxp.shape[2] - r]
  return dx, filter_grad(xp, g, w.shape[0], w.shape[1]).astype(w.dtype)


_conv_padded.defvjp(_fwd, _bwd)


def _pads(padding, kh: int, kw: int) -> tuple:
  if padding == "VALID":
    return ((0, 0), (0, 0))
  if padding == "SAME":
    return ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
  return tuple(tuple(int(v) for v in p) for p in padding)


def conv2d(x: jax.Array, w: jax.Array, padding="SAME") -> jax.Array:
  """`[N, H, W, C] * [kh, kw, C, F] -> [N, H', W', F]`, stride 1: `lax.conv_general_dilated`
  with the blocked filter gradient on CPU. `padding`: 'SAME', 'VALID' or `((t, b), (l, r))`."""
  pads = _pads(padding, w.shape[0], w.shape[1])
  if not ops.cpu_convs():
    return jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=_DN)
  return _conv_padded(x, w, pads)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         precision=None):
  """`conv2d` behind `lax.conv_general_dilated`'s signature (for `nn.Conv`).

  Only what `conv2d` computes is accepted: 2-D NHWC/HWIO, stride 1, no dilation, one group.
  """
  del precision
  ok = (tuple(window_strides) == (1, 1) and feature_group_count == 1
        and all(d in (None, (1, 1)) for d in (lhs_dilation and tuple(lhs_dilation),
                                              rhs_dilation and tuple(rhs_dilation)))
        and (dimension_numbers is None or tuple(dimension_numbers.lhs_spec) == (0, 3, 1, 2)))
  if not ok:
    raise ValueError("conv_grad needs a stride-1, undilated, ungrouped NHWC conv")
  return conv2d(lhs, rhs, padding)
