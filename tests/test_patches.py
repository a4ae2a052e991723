"""Tests for ikejax.patches: gradient/probability maps and crop sampling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ikejax import patches


def _box_mean_zero_pad(x: np.ndarray, k: int) -> np.ndarray:
  """Loop reference for a k x k box mean with zero padding.

  Window at i covers [i - k // 2, i - k // 2 + k - 1], the alignment of
  scipy.signal.convolve2d(..., 'same') used by KernelGAN.
  """
  h, w = x.shape
  out = np.zeros((h, w))
  for i in range(h):
    for j in range(w):
      acc = 0.0
      for di in range(k):
        for dj in range(k):
          r, c = i - k // 2 + di, j - k // 2 + dj
          if 0 <= r < h and 0 <= c < w:
            acc += x[r, c]
      out[i, j] = acc / (k * k)
  return out


# ------------------------------------------------------------------------------
# clip_extreme.
# ------------------------------------------------------------------------------


def test_clip_extreme_is_the_references_top_values_indicator():
  rng = np.random.default_rng(0)
  im = rng.permutation(100).astype(np.float64).reshape(10, 10)
  out = patches.clip_extreme(im, 0.97)
  # Pivot sorted[int(100 * 0.97)] = 97, the next value 98: clip to [97, 98], minus 97.
  np.testing.assert_array_equal(out, np.where(im >= 98, 1.0, 0.0))
  assert out.shape == im.shape


def test_clip_extreme_small_percent_loop():
  im = np.array([[3.0, 1.0, 4.0], [1.0, 5.0, 9.0]])
  out = patches.clip_extreme(im, 0.5)
  v_min, v_max = 4.0, 5.0  # sorted[int(6 * 0.5)] = 4.0, then 5.0
  for idx in np.ndindex(im.shape):
    assert out[idx] == pytest.approx(min(max(im[idx], v_min), v_max) - v_min)


def test_clip_rescaled_known_values():
  rng = np.random.default_rng(0)
  im = rng.permutation(100).astype(np.float64).reshape(10, 10)
  out = patches.clip_rescaled(im, 0.97)
  # Pivot is sorted[int(100 * 0.97)] = 97, max is 99: range [97, 99].
  np.testing.assert_allclose(out, np.where(im <= 97, 0.0, (im - 97.0) / 2.0))


@pytest.mark.parametrize("clip", [patches.clip_extreme, patches.clip_rescaled])
def test_clip_of_a_constant_is_zero(clip):
  np.testing.assert_array_equal(clip(np.full((4, 5), 0.3), 0.97), np.zeros((4, 5)))


@pytest.mark.parametrize("clip", [patches.clip_extreme, patches.clip_rescaled])
def test_clip_pivot_equals_max_with_outlier_below(clip):
  # Over 97% of the values equal the max: pivot == max, range 1e-5 -> zeros.
  im = np.ones(100)
  im[0] = 0.0
  out = clip(im, 0.97)
  assert np.all(np.isfinite(out))
  np.testing.assert_array_equal(out, np.zeros(100))


# ------------------------------------------------------------------------------
# gradient_map.
# ------------------------------------------------------------------------------


def test_gradient_map_flat_and_tiny_images_are_zero():
  assert np.all(patches.gradient_map(np.full((32, 40, 3), 0.4)) == 0)
  # Smaller than two 5-px borders: nothing survives.
  rng = np.random.default_rng(1)
  tiny = patches.gradient_map(rng.random((9, 9, 3)))
  assert tiny.shape == (9, 9) and np.all(tiny == 0)
  assert patches.gradient_map(np.zeros((1, 7, 3))).shape == (1, 7)


def _reference_gradient_map(img, rescaled):
  gray = 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]
  gy, gx = np.gradient(gray)
  comb = np.zeros_like(gray)
  for i, g in enumerate((np.abs(gx), np.abs(gy), np.hypot(gx, gy))):
    z = np.zeros_like(g)
    z[5:-5, 5:-5] = g[5:-5, 5:-5]
    s = np.sort(z.ravel())
    lo = s[int(s.size * 0.97)]
    if rescaled:
      c = (np.clip(z, lo, s[-1]) - lo) / (s[-1] - lo)
    elif i < 2:  # the reference's lm_x, lm_y; its sum takes the unclipped magnitude
      c = np.clip(z, lo, s[int(s.size * 0.97) + 1]) - lo
    else:
      c = z
    comb += c / c.sum()
  ref = _box_mean_zero_pad(comb, 5)
  return ref / ref.mean()


@pytest.mark.parametrize("form", patches.GRADIENT_MAPS)
def test_gradient_map_matches_independent_reference(form):
  img = np.random.default_rng(2).random((24, 20, 3))
  np.testing.assert_allclose(patches.gradient_map(img, form),
                             _reference_gradient_map(img, form == "rescaled"),
                             rtol=1e-10, atol=1e-12)
  with pytest.raises(ValueError, match="gradient map form"):
    patches.gradient_map(img, "linear")


def test_gradient_map_is_high_on_texture():
  img = np.full((64, 64, 3), 0.5)
  img[20:40, 20:40] = np.random.default_rng(3).random((20, 20, 3))
  g = patches.gradient_map(img)
  assert np.all(g >= 0)
  inside = g[20:40, 20:40].sum()
  assert inside > 0.8 * g.sum()
  assert g[:12, :12].sum() == 0


# ------------------------------------------------------------------------------
# probability_map.
# ------------------------------------------------------------------------------


@pytest.mark.parametrize('shape,crop', [((8, 8), 4), ((9, 11), 6), ((12, 10), 5)])
def test_probability_map_known_values(shape, crop):
  rng = np.random.default_rng(4)
  g = rng.random(shape)
  out = patches.probability_map(g, crop)
  e = crop // 2
  ref = _box_mean_zero_pad(g, e)
  ref[:e] = 0
  ref[shape[0] - e:] = 0
  ref[:, :e] = 0
  ref[:, shape[1] - e:] = 0
  ref /= ref.sum()
  assert out.dtype == np.float32
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-7)


def test_probability_map_delta():
  g = np.zeros((10, 10))
  g[5, 6] = 1.0
  # Window 2 covers [i-1, i]: the delta spreads to rows/cols {5,6} x {6,7}.
  out = patches.probability_map(g, 4)
  expected = np.zeros((10, 10))
  expected[5:7, 6:8] = 0.25
  np.testing.assert_allclose(out, expected, atol=1e-7)


def _check_map(p: np.ndarray, shape, crop: int | None):
  assert p.shape == shape
  assert p.dtype == np.float32
  assert np.all(np.isfinite(p))
  assert np.all(p >= 0)
  assert p.sum() == pytest.approx(1.0, abs=1e-5)
  if crop is not None:
    e = crop // 2
    h, w = shape
    assert np.all(p[:e] == 0) and np.all(p[h - e:] == 0)
    assert np.all(p[:, :e] == 0) and np.all(p[:, w - e:] == 0)


def test_crop_probability_maps_properties():
  rng = np.random.default_rng(5)
  img = rng.random((70, 90, 3))
  for scale in (2, 3, 4):
    g_crop, d_crop = 32, 32 // scale
    p_g, p_d = patches.crop_probability_maps(img, g_crop, d_crop, scale)
    _check_map(p_g, (70, 90), g_crop)
    _check_map(p_d, (70, 90), d_crop)


def test_flat_image_gives_uniform_over_valid_centres():
  img = np.full((40, 50, 3), 0.25)
  p_g, p_d = patches.crop_probability_maps(img, 16, 8, 2)
  for p, crop in ((p_g, 16), (p_d, 8)):
    _check_map(p, (40, 50), crop)
    e = crop // 2
    inner = p[e:40 - e, e:50 - e]
    np.testing.assert_allclose(inner, 1.0 / inner.size, rtol=1e-6)


def test_nan_map_falls_back_to_uniform():
  g = np.full((20, 20), np.nan)
  p = patches.probability_map(g, 8)
  _check_map(p, (20, 20), 8)
  np.testing.assert_allclose(p[4:16, 4:16], 1.0 / 144, rtol=1e-6)


def test_image_exactly_crop_size():
  rng = np.random.default_rng(6)
  img = rng.random((32, 32, 3)).astype(np.float32)
  p_g, p_d = patches.crop_probability_maps(img, 32, 16, 2)
  _check_map(p_g, (32, 32), None)
  _check_map(p_d, (32, 32), 16)
  keys = jax.random.split(jax.random.key(0), 50)
  tls = jax.vmap(lambda k: patches.sample_top_left(k, jnp.asarray(p_g), 32, 2))(keys)
  np.testing.assert_array_equal(np.asarray(tls), 0)
  g, d = patches.sample_crops(jax.random.key(1), jnp.asarray(img), jnp.asarray(p_g),
                              jnp.asarray(p_d), 32, 16, 2)
  np.testing.assert_array_equal(np.asarray(g), img)
  assert d.shape == (16, 16, 3)


def test_one_axis_equal_to_crop_keeps_other_axis_texture():
  # H == crop: rows collapse to the single valid centre, columns still follow
  # the texture rather than falling back to uniform.
  img = np.full((16, 80, 3), 0.5)
  img[:, 50:70] = np.random.default_rng(7).random((16, 20, 3))
  g = np.zeros((16, 80))
  g[:, 55:65] = 1.0
  p = patches.probability_map(g, 16)
  _check_map(p, (16, 80), None)
  assert np.all(p[np.arange(16) != 8] == 0)
  assert p[8, 50:70].sum() > 0.99
  p_g, _ = patches.crop_probability_maps(img, 16, 8, 2)
  _check_map(p_g, (16, 80), None)


def test_smaller_than_crop_map_is_valid():
  p = patches.probability_map(np.ones((6, 7)), 16)
  _check_map(p, (6, 7), None)


# ------------------------------------------------------------------------------
# sample_top_left / extract_crop / sample_crops.
# ------------------------------------------------------------------------------


@pytest.mark.parametrize('h,w,size,align', [(50, 67, 16, 2), (61, 40, 21, 3),
                                            (64, 64, 32, 4), (33, 35, 9, 1)])
def test_sample_top_left_in_range_and_aligned(h, w, size, align):
  rng = np.random.default_rng(h * w)
  # A map with mass everywhere, borders included, to exercise the clamps.
  prob = rng.random((h, w)) ** 4
  prob[0, 0] = prob[-1, -1] = prob[0, -1] = prob[-1, 0] = 5.0
  prob = jnp.asarray(prob / prob.sum(), jnp.float32)
  fn = jax.jit(jax.vmap(patches.sample_top_left, in_axes=(0, None, None, None)),
               static_argnums=(2, 3))
  tls = np.asarray(fn(jax.random.split(jax.random.key(3), 3000), prob, size, align))
  assert tls.dtype == np.int32 and tls.shape == (3000, 2)
  assert np.all(tls >= 0)
  assert np.all(tls[:, 0] <= h - size) and np.all(tls[:, 1] <= w - size)
  assert np.all(tls % align == 0)
  # The corner clamps are hit (corner centres have lots of mass).
  assert np.any(tls[:, 0] == 0) and np.any(tls[:, 1] == 0)
  assert np.any(tls[:, 0] == (h - size) - (h - size) % align)


@pytest.mark.parametrize('r,c,size,align,expected', [
    (20, 30, 8, 2, (16, 26)),
    (21, 31, 8, 2, (16, 26)),  # 17, 27 -> rounded down to even.
    (21, 31, 8, 3, (15, 27)),
    (2, 3, 8, 2, (0, 0)),  # Clamped at 0.
    (39, 47, 8, 4, (32, 40)),  # Clamped at (H - size, W - size) = (32, 42) -> 40.
    (39, 47, 8, 1, (32, 42)),
])
def test_sample_top_left_delta(r, c, size, align, expected):
  prob = jnp.zeros((40, 50)).at[r, c].set(1.0)
  fn = jax.jit(patches.sample_top_left, static_argnums=(2, 3))
  for seed in range(5):
    tl = np.asarray(fn(jax.random.key(seed), prob, size, align))
    assert tuple(tl.tolist()) == expected


def test_sample_top_left_frequencies():
  prob = jnp.zeros((30, 30)).at[10, 10].set(0.3).at[20, 20].set(0.7)
  keys = jax.random.split(jax.random.key(42), 2000)
  tls = np.asarray(jax.jit(jax.vmap(
      lambda k: patches.sample_top_left(k, prob, 4, 2)))(keys))
  first = np.all(tls == (8, 8), axis=1)
  second = np.all(tls == (18, 18), axis=1)
  assert np.all(first | second)
  # Binomial std at n=2000, p=0.3 is ~0.01; 0.04 is ~4 sigma.
  assert abs(first.mean() - 0.3) < 0.04


def test_sample_top_left_determinism():
  rng = np.random.default_rng(8)
  prob = rng.random((64, 64))
  prob = jnp.asarray(prob / prob.sum(), jnp.float32)
  a = patches.sample_top_left(jax.random.key(5), prob, 16, 2)
  b = patches.sample_top_left(jax.random.key(5), prob, 16, 2)
  np.testing.assert_array_equal(a, b)
  draws = {tuple(np.asarray(patches.sample_top_left(jax.random.key(s), prob, 16, 2)).tolist())
           for s in range(20)}
  assert len(draws) > 5


def test_extract_crop_matches_slicing():
  img = jnp.arange(20 * 30 * 2, dtype=jnp.float32).reshape(20, 30, 2)
  fn = jax.jit(patches.extract_crop, static_argnums=2)
  crop = fn(img, jnp.array([4, 10], jnp.int32), 8)
  np.testing.assert_array_equal(np.asarray(crop), np.asarray(img)[4:12, 10:18])


def test_sample_crops_uses_split_keys():
  rng = np.random.default_rng(9)
  img = jnp.asarray(rng.random((48, 56, 3)), jnp.float32)
  p_g, p_d = patches.crop_probability_maps(np.asarray(img), 24, 12, 2)
  p_g, p_d = jnp.asarray(p_g), jnp.asarray(p_d)
  key = jax.random.key(11)
  fn = jax.jit(patches.sample_crops, static_argnums=(4, 5, 6))
  g, d = fn(key, img, p_g, p_d, 24, 12, 2)
  assert g.shape == (24, 24, 3) and d.shape == (12, 12, 3)
  k_g, k_d = jax.random.split(key)
  g_tl = patches.sample_top_left(k_g, p_g, 24, 2)
  d_tl = patches.sample_top_left(k_d, p_d, 12, 2)
  np.testing.assert_array_equal(g, patches.extract_crop(img, g_tl, 24))
  np.testing.assert_array_equal(d, patches.extract_crop(img, d_tl, 12))


def test_g_crops_favour_textured_quadrant():
  rng = np.random.default_rng(10)
  h = w = 128
  img = np.full((h, w, 3), 0.5)
  img[:64, 64:] = rng.random((64, 64, 3))  # Top-right quadrant textured.
  g_crop, d_crop, scale = 32, 16, 2
  p_g, p_d = patches.crop_probability_maps(img, g_crop, d_crop, scale)
  keys = jax.random.split(jax.random.key(0), 400)
  sample = jax.jit(jax.vmap(lambda k, p, s: patches.sample_top_left(k, p, s, scale),
                            in_axes=(0, None, None)), static_argnums=2)

  def overlap_fraction(tls: np.ndarray, size: int) -> np.ndarray:
    rows = np.clip(np.minimum(tls[:, 0] + size, 64) - tls[:, 0], 0, None)
    cols = np.clip(np.minimum(tls[:, 1] + size, w) - np.maximum(tls[:, 1], 64), 0, None)
    return rows * cols / size**2

  g_ov = overlap_fraction(np.asarray(sample(keys, jnp.asarray(p_g), g_crop)), g_crop)
  d_ov = overlap_fraction(np.asarray(sample(keys, jnp.asarray(p_d), d_crop)), d_crop)
  # Uniform sampling would overlap only ~1/4 of the time.
  assert np.mean(g_ov > 0) > 0.9
  assert np.mean(g_ov >= 0.5) > 0.7
  assert np.mean(d_ov > 0) > 0.9


def test_centre_sampler_precomputed_equals_raw_map_and_follows_it():
  rng = np.random.default_rng(12)
  prob = rng.random((7, 9)) * (rng.random((7, 9)) > 0.5)
  prob[:, -1] = prob[-1, :] = 0.0      # zero borders, as the real maps have.
  prob /= prob.sum()
  sampler = patches.centre_sampler(prob)
  keys = jax.random.split(jax.random.key(0), 20000)
  draw = jax.jit(jax.vmap(lambda k, p: patches.sample_top_left(k, p, 1, 1), (0, None)))
  a, b = np.asarray(draw(keys, sampler)), np.asarray(draw(keys, jnp.asarray(prob, jnp.float32)))
  np.testing.assert_array_equal(a, b)
  freq = np.zeros_like(prob)
  np.add.at(freq, (a[:, 0], a[:, 1]), 1.0 / len(a))
  assert np.all(freq[prob == 0] == 0)
  # ~4 binomial sigmas at n = 20000.
  np.testing.assert_allclose(freq, prob, atol=4 * np.sqrt(prob.max() / len(a)))
