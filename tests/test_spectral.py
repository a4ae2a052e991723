"""The closed-form spectral kernel estimate on synthetic power-law images with known blurs."""

import numpy as np
import pytest

from ikejax.imaging import degrade, kernels, spectral


def _power_law_image(n, seed):
  """A `[n, n]` random-phase image with power ~ f^-2 (a natural image's), 8-bit range."""
  rng = np.random.RandomState(seed)
  f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
  amp = 1.0 / np.maximum(f, 1.0 / n)
  img = np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.rand(n, n))))
  img = (img - img.mean()) / img.std()
  return np.clip(128 + 40 * img, 0, 255)


@pytest.mark.parametrize("sigmas,angle", [((1.6, 1.0), 0.0), ((1.2, 1.2), 0.0),
                                          ((2.0, 1.1), 45.0)])
def test_recovers_the_sigmas_of_a_known_gaussian(sigmas, angle):
  hr = _power_law_image(768, seed=1)
  t = np.deg2rad(angle)
  rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
  cov = rot @ np.diag(np.square(sigmas)) @ rot.T
  k_true = spectral.gaussian_from_covariance(cov, 21)
  lr = np.round(degrade.blur_subsample(np.stack([hr] * 3, -1), k_true, 2))
  k, info = spectral.estimate_kernel(lr, 2)
  assert info["directions_fitted"] >= 10
  np.testing.assert_allclose(sorted(info["sigmas"]), sorted(sigmas), rtol=0.15)
  assert kernels.compare_kernels(k, k_true, 2)["l1"] < 0.3


def test_covariance_fit_is_exact_on_a_quadratic_form():
  cov = np.array([[2.0, 0.4], [0.4, 1.0]])
  dirs = [(t, float(np.array([np.sin(t), np.cos(t)]) @ cov @ np.array([np.sin(t), np.cos(t)])))
          for t in np.linspace(0, np.pi, 12, endpoint=False)]
  np.testing.assert_allclose(spectral.fit_covariance(dirs), cov, atol=1e-12)
  k = spectral.gaussian_from_covariance(cov, 21)
  np.testing.assert_allclose(k.sum(), 1.0)


def test_flat_image_is_refused():
  with pytest.raises(ValueError, match="spectral kernel estimate failed: the image is flat"):
    spectral.estimate_kernel(np.full((40, 40, 3), 100.0), 2)
  with pytest.raises(ValueError, match="below 32 px"):
    spectral.estimate_kernel(np.random.rand(20, 40, 3) * 255, 2)


def test_aliasing_floor_swaps_the_gaussian_for_a_resampler_only_without_a_blur():
  """A blurred, decimated power-law image falls to the quantisation floor; the same image
  decimated without a blur keeps a flat, aliased high band, and the default then makes its
  sons with the resampler of `alias_son`; `alias_floor=inf` never does."""
  from ikejax.ike import configs
  hr = np.stack([_power_law_image(512, seed=0)] * 3, -1)
  blurred = np.round(degrade.blur_subsample(
      hr, spectral.gaussian_from_covariance(np.diag([1.6 ** 2, 1.0 ** 2]), 21), 2))
  plain = np.round(hr[::2, ::2]).astype(np.uint8)
  cfg = configs.get_config("default", scale=2)
  assert spectral.estimate_kernel(blurred, 2)[1]["floor"] < 0.2 * cfg.alias_floor
  assert spectral.estimate_kernel(plain, 2)[1]["floor"] > 50 * cfg.alias_floor
  k, info = spectral.son_kernel(cfg, blurred.astype(np.uint8), 8)
  assert "resampler" not in info and kernels.compare_kernels(
      k, spectral.gaussian_from_covariance(np.diag([1.6 ** 2, 1.0 ** 2]), 21), 2)["l1"] < 0.3
  k, info = spectral.son_kernel(cfg, plain, 8)
  assert "bicubic" in info["resampler"]
  np.testing.assert_allclose(k, spectral.resampler_kernel("bicubic", 2, 21))
  k, _ = spectral.son_kernel(cfg.replace(alias_son="corner"), plain, 8)
  assert k[10, 10] == 1.0 and k.sum() == 1.0
  k, _ = spectral.son_kernel(cfg.replace(alias_floor=float("inf")), plain, 8)
  assert k.max() < 0.5
  with pytest.raises(ValueError, match="alias_floor must be > 0"):
    cfg.replace(alias_floor=0.0).validate()
  with pytest.raises(ValueError, match="alias_son must be one of"):
    cfg.replace(alias_son="nearest").validate()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_resampler_kernels_sample_where_their_grids_say(scale):
  """`corner` keeps HR pixel s*i, `centre` HR position s*i + (s-1)/2 (bilinear), `bicubic`
  is MATLAB's kernel centred there: each sums to 1, centre of mass where the grid says."""
  size = spectral.SIZES[scale]
  r, c = np.indices((size, size))
  for kind, centre in (("corner", size // 2), ("centre", size // 2 + (scale - 1) / 2),
                       ("bicubic", size // 2 + (scale - 1) / 2)):
    k = spectral.resampler_kernel(kind, scale, size)
    assert k.sum() == pytest.approx(1.0)
    assert (k * r).sum() == pytest.approx(centre) and (k * c).sum() == pytest.approx(centre)
  # As the sons are made (`ops.correlate_subsample`, the training step's son maker).
  from ikejax import ops
  x = np.random.RandomState(0).rand(8 * scale, 8 * scale, 1).astype(np.float32)
  son = lambda kind: np.asarray(ops.correlate_subsample(
      x, np.float32(spectral.resampler_kernel(kind, scale, size)), scale))
  np.testing.assert_allclose(son("corner"), x[::scale, ::scale], atol=1e-6)
  if scale == 2:
    box = (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4
    np.testing.assert_allclose(son("centre")[:-1, :-1], box[:-1, :-1], atol=1e-6)
