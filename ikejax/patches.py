"""Crop sampling from gradient-based probability maps.

IKE trains its GAN on crops of the single input image and, like KernelGAN,
draws the crop centres from a probability map that favours textured regions
(where the image gradients are large): flat regions say little about the
degradation kernel. This module reproduces that scheme:

* host side (numpy, once per image): ``gradient_map`` (KernelGAN ``util.py``
  ``create_gradient_map``), ``probability_map`` (``create_probability_map``)
  and ``crop_probability_maps`` (KernelGAN ``data.py`` ``create_prob_maps``,
  reused by IKE ``src/data.py``);
* device side (JAX, traceable with static sizes, used inside the jitted
  training step): ``centre_sampler`` / ``crop_samplers`` (the maps as
  inverse CDFs, once per image), ``sample_top_left`` (``get_top_left``), ``extract_crop`` and
  ``sample_crops``.

Conventions: images are ``[H, W, C]`` float arrays in [0, 1]; a map is
``[H, W]`` and is indexed by crop *centre*; a crop is addressed by its
top-left corner ``(top, left)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from ikejax import ops

# KernelGAN util.py create_gradient_map(im, window=5, percent=.97).
_GRAD_WINDOW = 5
_GRAD_PERCENT = 0.97
# clip_extreme's range when the value after the pivot equals it (ties, a flat map): 1e-5
# wide, the reference's `10e-6` (and no division by zero in `clip_rescaled`).
_CLIP_EPS = 10e-6
# BT.601 luma weights, as KernelGAN util.py rgb2gray.
_GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114])


# The two forms of the gradient map: "official" is what KernelGAN, DualSR and IKE's
# util.py compute; "rescaled" clips all three maps with `clip_rescaled` (this project's
# earlier reading, which IKE's default recipe was tuned with).
GRADIENT_MAPS = ("official", "rescaled")


def clip_extreme(im: np.ndarray, percent: float) -> np.ndarray:
  """KernelGAN / DualSR / IKE ``util.py`` ``clip_extreme``: an indicator of the top values.

  With ``v_min`` the value at sorted position ``int(n * percent)`` and ``v_max`` the next
  sorted value, returns ``clip(im, v_min, v_max) - v_min``: 0 up to the pivot, a constant
  ``v_max - v_min`` above the next value (a scaled indicator of the top ``1 - percent``, as
  the map is normalised to sum 1 afterwards). When that next value equals the pivot the
  range is ``1e-5`` wide (the reference's ``10e-6``).

  Args:
    im: [H, W] float map.
    percent: quantile in [0, 1) of the pivot.

  Returns:
    [H, W] float64 map with values in [0, v_max - v_min].
  """
  im = np.asarray(im, np.float64)
  im_sorted = np.sort(im.ravel())
  p = int(len(im_sorted) * percent)
  v_min = im_sorted[p]
  nxt = im_sorted[min(p + 1, len(im_sorted) - 1)]  # the reference indexes past the end there
  v_max = nxt if nxt > v_min else v_min + _CLIP_EPS
  return np.clip(im, v_min, v_max) - v_min


def clip_rescaled(im: np.ndarray, percent: float) -> np.ndarray:
  """The pivot of ``clip_extreme`` goes to 0 and the maximum to 1, linearly in between.

  ``[H, W] -> [H, W]`` in [0, 1] (all 0 when the pivot is the maximum). The "rescaled"
  gradient map; not what the official code computes (see ``GRADIENT_MAPS``).
  """
  im = np.asarray(im, np.float64)
  im_sorted = np.sort(im.ravel())
  v_min = im_sorted[int(len(im_sorted) * percent)]
  v_max = im_sorted[-1] if v_min < im_sorted[-1] else v_min + _CLIP_EPS
  return (np.clip(im, v_min, v_max) - v_min) / (v_max - v_min)


def _zero_border(im: np.ndarray, edge: int) -> np.ndarray:
  """Zeroes an ``edge``-pixel border (KernelGAN ``util.py`` ``pad_edges``).

  Unlike the reference (``im[edge:-edge]`` is empty for ``edge == 0``), an edge
  of 0 keeps the whole map.

  Args:
    im: [H, W] map.
    edge: border width in pixels.

  Returns:
    [H, W] copy with the border set to 0.
  """
  out = np.zeros_like(im)
  h, w = im.shape
  out[edge:h - edge, edge:w - edge] = im[edge:h - edge, edge:w - edge]
  return out


def gradient_map(img: np.ndarray, form: str = "official") -> np.ndarray:
  """Gradient-energy map of an image (KernelGAN ``create_gradient_map``).

  The gray image is ``0.299 R + 0.587 G + 0.114 B`` of the [0, 1] image
  (KernelGAN divides the uint8 image by 255 before calling it). From its
  ``np.gradient`` (gy along axis 0, gx along axis 1) three maps ``|gx|``,
  ``|gy|`` and ``sqrt(gx^2 + gy^2)`` are made, each with a 5-px border zeroed.
  ``form='official'``: ``|gx|`` and ``|gy|`` pass through ``clip_extreme(., 0.97)`` (top-3 %
  indicators) and the magnitude stays as it is (the reference clips it too but sums the
  unclipped one); ``'rescaled'``: all three through ``clip_rescaled``. Each is normalised
  to sum 1 (a map that sums to 0 contributes nothing); their sum is box-averaged over 5x5
  (zero padding, as ``convolve2d(..., 'same')``) and divided by its mean, so
  that a non-zero map averages 1 (only relative values matter downstream).

  Args:
    img: [H, W, 3] float image in [0, 1] (a [H, W] gray image is accepted).

  Returns:
    [H, W] float64 non-negative map; all zeros when the image has no usable
    gradient (flat, or too small for the 5-px border).
  """
  img = np.asarray(img, np.float64)
  gray = img[..., :3] @ _GRAY_WEIGHTS if img.ndim == 3 else img
  h, w = gray.shape
  if h < 2 or w < 2:
    # np.gradient needs 2 samples per axis; such an image has no texture.
    return np.zeros((h, w), np.float64)
  if form not in GRADIENT_MAPS:
    raise ValueError(f"gradient map form must be one of {GRADIENT_MAPS}, got {form!r}")
  gy, gx = np.gradient(gray)
  combined = np.zeros((h, w), np.float64)
  for i, g in enumerate((np.abs(gx), np.abs(gy), np.sqrt(gx**2 + gy**2))):
    g = _zero_border(g, _GRAD_WINDOW)
    if form == "rescaled":
      g = clip_rescaled(g, _GRAD_PERCENT)
    elif i < 2:
      g = clip_extreme(g, _GRAD_PERCENT)
    total = g.sum()
    if np.isfinite(total) and total > 0:
      combined += g / total
  # Box mean; zero padding matches KernelGAN's convolve2d(..., 'same') / 25.
  loss_map = ndimage.uniform_filter(combined, size=_GRAD_WINDOW,
                                    mode='constant', cval=0.0)
  loss_map = np.maximum(loss_map, 0.0)  # Running sums can leave -1e-20s.
  mean = loss_map.mean()
  if np.isfinite(mean) and mean > 0:
    loss_map = loss_map / mean
  return loss_map


def _valid_centre_range(n: int, crop: int) -> tuple[int, int]:
  """Range ``[lo, hi)`` of crop centres kept along one axis of length ``n``.

  KernelGAN zeroes a ``crop // 2`` border so that a centre keeps its crop
  inside the image. When the axis is not longer than the crop that range is
  empty; then the single centre ``min(crop // 2, n - 1)`` is kept, whose
  top-left clamps to 0 (the only possible crop).

  Args:
    n: axis length.
    crop: crop size along that axis.

  Returns:
    (lo, hi) with ``0 <= lo < hi <= n``.
  """
  edge = crop // 2
  lo = min(edge, n - 1)
  hi = max(n - edge, lo + 1)
  return lo, hi


def _valid_centre_mask(shape: tuple[int, int], crop: int) -> np.ndarray:
  """Boolean [H, W] mask of the crop centres kept by ``probability_map``."""
  h, w = shape
  r0, r1 = _valid_centre_range(h, crop)
  c0, c1 = _valid_centre_range(w, crop)
  mask = np.zeros((h, w), bool)
  mask[r0:r1, c0:c1] = True
  return mask


def probability_map(grad_map: np.ndarray, crop: int) -> np.ndarray:
  """Crop-centre probability map (KernelGAN ``create_probability_map``).

  The gradient map is box-averaged over a ``crop // 2`` window (zero padding
  as ``convolve2d(..., 'same')``; for an even window ``k`` the window at ``i``
  covers ``[i - k // 2, i - k // 2 + k - 1]``), a ``crop // 2`` border is
  zeroed so that every centre keeps its crop inside the image, and the map is
  normalised to sum 1.

  Robustness beyond the reference: along an axis not longer than ``crop`` the
  border would swallow every centre, so the single centre whose crop starts
  at 0 is kept instead (see ``_valid_centre_range``); and when the masked map
  sums to 0 or is not finite (flat image, tiny image, NaNs) the result is
  uniform over the valid centres instead of the reference's uniform over
  the whole image. The result never contains NaN.

  Args:
    grad_map: [H, W] non-negative map, e.g. from ``gradient_map``.
    crop: crop size in pixels (the crop is ``crop x crop``).

  Returns:
    [H, W] float32 map, non-negative, summing to 1, zero outside the valid
    centres.
  """
  grad_map = np.asarray(grad_map, np.float64)
  window = max(crop // 2, 1)
  blurred = ndimage.uniform_filter(grad_map, size=window, mode='constant',
                                   cval=0.0)
  mask = _valid_centre_mask(grad_map.shape, crop)
  prob = np.where(mask, np.maximum(blurred, 0.0), 0.0)
  total = prob.sum()
  if not (np.isfinite(total) and total > 0):
    prob = mask.astype(np.float64)
    total = prob.sum()
  return (prob / total).astype(np.float32)


def _nearest_upsample(im: np.ndarray, scale: int,
                      shape: tuple[int, int]) -> np.ndarray:
  """Nearest-neighbour upsampling by an integer ``scale`` to exactly ``shape``.

  KernelGAN ``util.py`` ``nn_interpolation`` repeats every pixel ``scale``
  times per axis; the small image has ``ceil`` or ``floor`` of ``H / scale``
  rows depending on the resize, so the result is cropped, or edge-padded, to
  ``shape``.

  Args:
    im: [h, w] map.
    scale: integer upsampling factor.
    shape: target (H, W).

  Returns:
    [H, W] map.
  """
  up = np.repeat(np.repeat(im, scale, axis=0), scale, axis=1)
  h, w = shape
  up = up[:h, :w]
  pad = ((0, h - up.shape[0]), (0, w - up.shape[1]))
  if any(p for _, p in pad):
    up = np.pad(up, pad, mode='edge')
  return up


def crop_probability_maps(img01: np.ndarray, g_crop: int, d_crop: int, scale: int,
                          form: str = "official") -> tuple[np.ndarray, np.ndarray]:
  """Probability maps for the generator and discriminator crops.

  As KernelGAN ``data.py`` ``create_prob_maps`` (reused by IKE
  ``src/data.py``): the G map is the gradient map of the image downscaled by
  ``1 / scale`` (MATLAB-style bicubic), nearest-neighbour upsampled back to
  [H, W], then turned into a probability map for ``g_crop`` crops; the D map
  is that of the image itself for ``d_crop`` crops. G input crops are large
  and are downscaled by G, so their texture is judged at the scale G's
  output has.

  Args:
    img01: [H, W, 3] float image in [0, 1].
    g_crop: G crop size (e.g. 128).
    d_crop: D crop size (e.g. ``g_crop // scale``).
    scale: integer SR scale (2, 3, 4, ...).
    form: of the gradient maps (``gradient_map``).

  Returns:
    (p_g, p_d): two [H, W] float32 maps, each summing to 1.
  """
  img01 = np.asarray(img01, np.float64)
  h, w = img01.shape[:2]
  small = np.asarray(ops.imresize(img01, 1.0 / scale), np.float64)
  g_grad = _nearest_upsample(gradient_map(small, form), int(scale), (h, w))
  p_g = probability_map(g_grad, g_crop)
  p_d = probability_map(gradient_map(img01, form), d_crop)
  return p_g, p_d


class CentreSampler(NamedTuple):
  """A centre map as a two-level inverse CDF (rows, then columns within the row).

  Attributes:
    rows: [H] cumulative row masses, normalised; 1 from the last row with
      mass onwards.
    cols: [H, W] cumulative column masses of each row, normalised the same way.
  """
  rows: jax.Array
  cols: jax.Array


def _cdf(mass: jax.Array) -> jax.Array:
  """Normalised cumulative sum along the last axis, exactly 1 from the last positive entry."""
  c = jnp.cumsum(mass, axis=-1)
  total = c[..., -1:]
  c = c / jnp.where(total > 0, total, 1.0)
  idx = jnp.broadcast_to(jnp.arange(mass.shape[-1]), mass.shape)
  last = jnp.max(jnp.where(mass > 0, idx, -1), axis=-1, keepdims=True)
  # A uniform u in [0, 1) then never lands past the last entry with mass.
  return jnp.where(idx >= last, 1.0, c)


def centre_sampler(prob) -> CentreSampler:
  """Precomputes the inverse CDF of an `[H, W]` centre map (once per image).

  Drawing from it costs two uniforms and two comparisons against `H` and `W`
  values, where a categorical draw over the flat map needs `H * W` Gumbel
  samples per crop (~25 ms per iteration on a 1020x678 image, measured).
  """
  prob = jnp.asarray(prob, jnp.float32)
  return CentreSampler(rows=_cdf(jnp.sum(prob, axis=1)), cols=_cdf(prob))


def crop_samplers(img01: np.ndarray, g_crop: int, d_crop: int, scale: int,
                  form: str = "official") -> tuple[CentreSampler, CentreSampler]:
  """``crop_probability_maps`` as the two samplers the training step draws from."""
  p_g, p_d = crop_probability_maps(img01, g_crop, d_crop, scale, form)
  return centre_sampler(p_g), centre_sampler(p_d)


def sample_top_left(key: jax.Array, prob, size: int, align: int = 2) -> jax.Array:
  """Draws a crop's top-left corner from a centre probability map.

  As KernelGAN ``data.py`` ``get_top_left``: a centre (row, col) is drawn
  from ``prob``, the top-left is ``clamp(centre - size // 2, 0, H - size)``
  per axis, then rounded down to a multiple of ``align``. The reference
  forces it even (``top - top % 2``) to keep crops on the scale-2
  space-to-depth grid; passing ``align = scale`` generalises that. Rounding
  down keeps the corner within ``[0, H - size]``.

  Traceable under ``jax.jit``: ``size`` and ``align`` must be static.

  Args:
    key: PRNG key.
    prob: [H, W] non-negative map summing to 1 (zeros are never drawn), or
      its ``centre_sampler`` (precompute it when drawing many times).
    size: crop size; assumed ``<= min(H, W)``.
    align: the corner is a multiple of this (>= 1).

  Returns:
    int32 [2] array (top, left).
  """
  sampler = prob if isinstance(prob, CentreSampler) else centre_sampler(prob)
  h, w = sampler.cols.shape
  u = jax.random.uniform(key, (2,))
  # Inverse CDF: the first entry whose cumulative mass exceeds u.
  row = jnp.sum(sampler.rows <= u[0]).astype(jnp.int32)
  col = jnp.sum(sampler.cols[row] <= u[1]).astype(jnp.int32)
  centre = jnp.stack([row, col])
  half = size // 2
  upper = jnp.array([max(h - size, 0), max(w - size, 0)], jnp.int32)
  top_left = jnp.clip(centre - half, 0, upper)
  return (top_left - top_left % align).astype(jnp.int32)


def extract_crop(img: jax.Array, top_left: jax.Array, size: int) -> jax.Array:
  """Cuts a ``size x size`` crop at a (traced) top-left corner.

  Args:
    img: [H, W, C] image.
    top_left: int [2] (top, left).
    size: static crop size, ``<= min(H, W)``.

  Returns:
    [size, size, C] crop.
  """
  top_left = jnp.asarray(top_left, jnp.int32)
  zero = jnp.zeros((), jnp.int32)
  return jax.lax.dynamic_slice(img, (top_left[0], top_left[1], zero),
                               (size, size, img.shape[2]))


def sample_crops(key: jax.Array, img: jax.Array, p_g: jax.Array,
                 p_d: jax.Array, g_crop: int, d_crop: int,
                 align: int = 2) -> tuple[jax.Array, jax.Array]:
  """Samples one G crop and one D crop of the image.

  Args:
    key: PRNG key; split into ``(k_g, k_d)`` for the two crops.
    img: [H, W, C] image.
    p_g: [H, W] centre map for G crops (``crop_probability_maps``), or its
      ``centre_sampler``.
    p_d: the same for D crops.
    g_crop: static G crop size.
    d_crop: static D crop size.
    align: both corners are multiples of this (pass the SR scale).

  Returns:
    (g_crop_img [g_crop, g_crop, C], d_crop_img [d_crop, d_crop, C]).
  """
  k_g, k_d = jax.random.split(key)
  g_tl = sample_top_left(k_g, p_g, g_crop, align)
  d_tl = sample_top_left(k_d, p_d, d_crop, align)
  return extract_crop(img, g_tl, g_crop), extract_crop(img, d_tl, d_crop)
