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
