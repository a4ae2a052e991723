"""Tests of ikejax.ops: exact inverses, channel order, resizes, filters."""

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
from hypothesis import given, settings, strategies as st

from ikejax import ops
from ikejax.imaging import resize

FIXTURES = np.load(os.path.join(os.path.dirname(__file__), "fixtures", "resize_fixtures.npz"))


def _official_space_to_depth(x_chw: np.ndarray, bs: int) -> np.ndarray:
  """NumPy re-derivation of the official NCHW SpaceToDepth (view, permute(0,3,5,1,2,4))."""
  c, h, w = x_chw.shape
  y = x_chw.reshape(c, h // bs, bs, w // bs, bs)      # (C, H/bs, dy, W/bs, dx)
  y = y.transpose(2, 4, 0, 1, 3)                       # (dy, dx, C, H/bs, W/bs)
  return y.reshape(bs * bs * c, h // bs, w // bs)


@pytest.mark.parametrize("s", [2, 3, 4])
@pytest.mark.parametrize("c", [1, 3, 4])
def test_space_to_depth_channel_order_pinned(s, c):
  x = np.random.RandomState(0).rand(2 * s, 3 * s, c)
  ours = ops.space_to_depth(x, s)
  ref = _official_space_to_depth(x.transpose(2, 0, 1), s).transpose(1, 2, 0)
  np.testing.assert_array_equal(ours, ref)
  # Channel (dy * s + dx) * C + k holds pixel (s*i + dy, s*j + dx) of channel k.
  dy, dx, k = s - 1, 1, c - 1
  np.testing.assert_array_equal(ours[..., (dy * s + dx) * c + k], x[dy::s, dx::s, k])


@settings(max_examples=25, deadline=None)
@given(s=st.sampled_from([2, 3, 4]), h=st.integers(1, 4), w=st.integers(1, 4),
       c=st.integers(1, 5))
def test_space_to_depth_round_trip(s, h, w, c):
  x = np.random.RandomState(h * 100 + w * 10 + c).randn(h * s, w * s, c).astype(np.float32)
  y = ops.space_to_depth(x, s)
  assert y.shape == (h, w, s * s * c)
  np.testing.assert_array_equal(ops.depth_to_space(y, s), x)
  z = np.random.RandomState(1).randn(h, w, s * s * c).astype(np.float32)
  np.testing.assert_array_equal(ops.space_to_depth(ops.depth_to_space(z, s), s), z)


class SpaceToDepthJitTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_round_trip(self):
    for s in (2, 3, 4):
      x = jax.random.normal(jax.random.key(s), (4 * s, 2 * s, 3))
      fwd = self.variant(lambda v, s=s: ops.space_to_depth(v, s))
      inv = self.variant(lambda v, s=s: ops.depth_to_space(v, s))
      chex.assert_trees_all_close(inv(fwd(x)), x, atol=0)


@settings(max_examples=25, deadline=None)
@given(s=st.sampled_from([2, 3]), h=st.integers(1, 4), w=st.integers(1, 4),
       c=st.integers(1, 5))
def test_haar_squeeze_round_trip(s, h, w, c):
  x = np.random.RandomState(h * 100 + w * 10 + c).randn(h * s, w * s, c)
  y = ops.haar_squeeze(x, s)
  assert y.shape == (h, w, s * s * c)
  np.testing.assert_allclose(ops.haar_unsqueeze(y, s), x, atol=1e-12)
  # Channel c holds the block means of channel c; the inverse spreads a slot-0 value
  # over its whole block (what makes the decode at init the sharpening filter).
  np.testing.assert_allclose(y[..., :c], x.reshape(h, s, w, s, c).mean(axis=(1, 3)),
                             atol=1e-12)
  z = np.zeros((h, w, s * s * c))
  z[..., 0] = 1.0
  np.testing.assert_allclose(ops.haar_unsqueeze(z, s)[..., 0], 1.0, atol=1e-12)


def test_haar_basis_is_haar_at_x2_and_jit_round_trip():
  t = ops.block_basis(2)
  np.testing.assert_allclose(t[0], [0.25] * 4)
  np.testing.assert_allclose(np.abs(t[1:]), 0.5)
  np.testing.assert_allclose(t[1:] @ t[1:].T, np.eye(3), atol=1e-12)
  x = jax.random.normal(jax.random.key(0), (6, 8, 4))
  y = jax.jit(lambda v: ops.haar_squeeze(v, 2))(x)
  np.testing.assert_allclose(jax.jit(lambda v: ops.haar_unsqueeze(v, 2))(y), x, atol=1e-5)


def test_space_to_depth_rejects_indivisible():
  with pytest.raises(ValueError, match="divisible"):
    ops.space_to_depth(np.zeros((5, 4, 1)), 2)


@pytest.mark.parametrize("sc", [2.0, 0.5, 4.0, 0.25])
def test_torch_resize_matches_pytorch_fixture(sc):
  ref = FIXTURES[f"torch_{sc}"]
  np.testing.assert_allclose(ops.imresize(FIXTURES["x"], sc, "torch"), ref, atol=1e-12)
  got = ops.imresize(jnp.asarray(FIXTURES["x"], jnp.float32), sc, "torch")
  np.testing.assert_allclose(np.asarray(got), ref, atol=1e-5)


@pytest.mark.parametrize("sc", [2.0, 0.5, 3.0, 1 / 3])
def test_matlab_resize_matches_reference_interior(sc):
  ref = FIXTURES[f"matlab_{sc:.4f}"]
  ours = ops.imresize(FIXTURES["xm"], sc, "matlab")
  assert ours.shape == ref.shape
  b = 8 * int(max(sc, 1))  # The reference wraps indices at the top/left border.
  np.testing.assert_allclose(ours[b:, b:], ref[b:, b:], atol=1e-12)


def test_matlab_resize_mirrors_borders_and_matches_kernelgan_k8():
  # Interior x0.5 weights are KernelGAN's 8-tap antialiased bicubic filter.
  k8 = [-0.01171875, -0.03515625, 0.11328125, 0.43359375]
  m = resize.resize_matrix(32, 0.5, "matlab")
  np.testing.assert_allclose(m[8, 13:21], k8 + k8[::-1], atol=1e-12)
  # Symmetric borders: a mirrored signal resizes to the mirrored result.
  x = np.random.RandomState(0).rand(16, 12)
  np.testing.assert_allclose(ops.imresize(x[::-1, ::-1], 0.5), ops.imresize(x, 0.5)[::-1, ::-1],
                             atol=1e-12)
  # Rows of every resize matrix sum to one (constants are preserved).
  for sc, kind in ((2.0, "matlab"), (1 / 3, "matlab"), (4.0, "torch"), (0.5, "torch")):
    np.testing.assert_allclose(resize.resize_matrix(30, sc, kind).sum(1), 1.0, atol=1e-12)


def test_resize_sizes_and_errors():
  x = np.zeros((13, 10, 3))
  assert ops.imresize(x, 0.5, "matlab").shape == (7, 5, 3)   # ceil, as MATLAB.
  assert ops.imresize(x, 0.5, "torch").shape == (6, 5, 3)    # floor, as torch.
  with pytest.raises(ValueError, match="resize kind"):
    ops.imresize(x, 2.0, "bilinear")


def test_sobel_matches_scipy():
  x = np.random.RandomState(3).rand(13, 17) * 255
  ref = np.hypot(scipy.ndimage.sobel(x, 1), scipy.ndimage.sobel(x, 0))
  np.testing.assert_allclose(ops.sobel_magnitude(x), ref, atol=1e-9)
  got = ops.sobel_magnitude(jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5, atol=1e-3)


def test_box_and_gaussian_filters():
  x = jnp.arange(5 * 6 * 2, dtype=jnp.float32).reshape(5, 6, 2)
  y = ops.box_filter(x, 3)
  assert y.shape == (3, 4, 2)
  np.testing.assert_allclose(y[0, 0], np.asarray(x[:3, :3]).mean(axis=(0, 1)), rtol=1e-6)
  g = ops.gaussian_kernel(36, 0.9)
  assert g.shape == (36, 36)
  np.testing.assert_allclose(g.sum(), 1.0)
  # Even-sized kernel: the peak is the 2x2 centre block.
  assert np.argmax(g[17]) in (17, 18)


def test_total_variation_known_values():
  ramp = jnp.tile(jnp.arange(4.0)[None, :, None], (3, 1, 1))   # d/dx = 1, d/dy = 0.
  np.testing.assert_allclose(ops.total_variation(ramp, "isotropic", eps=0.0), 1.0)
  np.testing.assert_allclose(ops.total_variation(ramp, "squared"), 2.0)
  flat = jnp.ones((4, 4, 3))
  assert float(ops.total_variation(flat, "squared")) == 0.0
  g = jax.grad(lambda v: ops.total_variation(v, "isotropic"))(flat)
  assert np.all(np.isfinite(np.asarray(g)))
  with pytest.raises(ValueError):
    ops.total_variation(flat, "l2")


@pytest.mark.parametrize("shape,k,cin,cout,padding,tile", [
    ((3, 16, 21), 11, 2, 1, "SAME", None), ((2, 9, 30), 11, 1, 3, "SAME", 7),
    ((1, 20, 26), 7, 3, 8, "VALID", None), ((1, 12, 12), 3, 4, 4, "SAME", 64)])
def test_conv2d_banded_equals_lax_conv_with_gradients(shape, k, cin, cout, padding, tile):
  x = jax.random.normal(jax.random.key(0), shape + (cin,))
  w = jax.random.normal(jax.random.key(1), (k, k, cin, cout))
  ref = lambda x, w: jax.lax.conv_general_dilated(
      x, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=jax.lax.Precision.HIGHEST)
  ours = lambda x, w: ops.conv2d_banded(x, w, padding, tile)
  np.testing.assert_allclose(ours(x, w), ref(x, w), atol=1e-4, rtol=1e-5)
  g = jax.random.normal(jax.random.key(2), ref(x, w).shape)
  for a, b in zip(jax.vjp(ours, x, w)[1](g), jax.vjp(ref, x, w)[1](g)):
    np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-5)


def test_banded_conv_refuses_what_it_cannot_compute():
  x, w = jnp.ones((1, 8, 8, 1)), jnp.ones((3, 3, 1, 1))
  with pytest.raises(ValueError, match="stride-1"):
    ops.banded_conv_general_dilated(x, w, (2, 2), "VALID")


@pytest.mark.parametrize("kind", ["matlab", "torch"])
@pytest.mark.parametrize("scale", [2.0, 0.5, 1 / 3, 4.0])
def test_imresize_taps_equal_the_dense_matrices(kind, scale, monkeypatch):
  """Axes over `DENSE_MAX` px are resized by gathered taps: the same map as the matrices."""
  x = np.random.default_rng(0).random((23, 41, 2))
  dense_host, dense_jax = resize.imresize(x, scale, kind), ops.imresize(jnp.asarray(x), scale, kind)
  monkeypatch.setattr(resize, "DENSE_MAX", 16)
  np.testing.assert_allclose(resize.imresize(x, scale, kind), dense_host, atol=1e-12)
  np.testing.assert_allclose(ops.imresize(jnp.asarray(x, jnp.float32), scale, kind), dense_jax,
                             atol=1e-5)
