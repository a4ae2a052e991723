"""Tests for ikejax.imaging.metrics: Y conversion, PSNR/SSIM against scikit-image, and the CLI."""

import math

import numpy as np
from PIL import Image
import pytest
from skimage import metrics as skmetrics

from ikejax.imaging import metrics
import cli_runner



def _smooth_plus_noise(h, w, seed, noise=8.0):
  """A smooth colour image plus noise, clipped to uint8."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
  base = np.stack([
      128 + 90 * np.sin(xx / 7.0 + c) * np.cos(yy / 11.0 - c) + 20 * (c - 1) for c in range(3)
  ], axis=-1)
  return np.clip(np.rint(base + rng.normal(0, noise, base.shape)), 0, 255).astype(np.uint8)


def _pair(h, w, seed):
  hr = _smooth_plus_noise(h, w, seed)
  noise = np.random.default_rng(seed + 100).normal(0, 6, hr.shape)
  sr = np.clip(np.rint(hr + noise), 0, 255).astype(np.uint8)
  return sr, hr


def test_rgb_to_y_known_values():
  black = np.zeros((2, 3, 3), np.uint8)
  white = np.full((2, 3, 3), 255, np.uint8)
  np.testing.assert_allclose(metrics.rgb_to_y(black), 16.0, atol=1e-12)
  np.testing.assert_allclose(metrics.rgb_to_y(white), 235.0, atol=1e-12)
  red = np.zeros((1, 1, 3), np.uint8)
  red[..., 0] = 255
  np.testing.assert_allclose(metrics.rgb_to_y(red), 16 + 65.481, atol=1e-12)
  white16 = np.full((2, 2, 3), 65535, np.uint16)
  np.testing.assert_allclose(metrics.rgb_to_y(white16), 235.0, atol=1e-9)
  gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
  y = metrics.rgb_to_y(gray)
  assert y.dtype == np.float64
  np.testing.assert_array_equal(y, gray)
  with pytest.raises(ValueError):
    metrics.rgb_to_y(np.zeros((2, 2, 4), np.uint8))


def test_shave():
  img = np.arange(10 * 12).reshape(10, 12)
  np.testing.assert_array_equal(metrics.shave(img, 3), img[3:7, 3:9])
  assert metrics.shave(img, 0).shape == (10, 12)
  with pytest.raises(ValueError):
    metrics.shave(img, 5)


@pytest.mark.parametrize('scale', [2, 3, 4])
@pytest.mark.parametrize('size', [(64, 80), (61, 77)])
def test_against_skimage(scale, size):
  sr, hr = _pair(*size, seed=scale)
  y_sr = metrics.rgb_to_y(sr)[scale:-scale, scale:-scale]
  y_hr = metrics.rgb_to_y(hr)[scale:-scale, scale:-scale]
  want_psnr = skmetrics.peak_signal_noise_ratio(y_hr, y_sr, data_range=255)
  want_ssim = skmetrics.structural_similarity(
      y_sr, y_hr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
      data_range=255)
  got = metrics.evaluate(sr, hr, scale)
  assert abs(got['psnr_y'] - want_psnr) < 0.01
  assert abs(got['ssim_y'] - want_ssim) < 1e-4
  assert got['psnr_y'] == metrics.psnr_y(sr, hr, scale)
  assert got['ssim_y'] == metrics.ssim_y(sr, hr, scale)
  # Make sure the comparison is not vacuous.
  assert 20 < got['psnr_y'] < 60 and 0.3 < got['ssim_y'] < 0.999


def test_ssim_differs_from_padded_version():
  """'valid' filtering matters: a 'same'-size map gives a different mean."""
  sr, hr = _pair(40, 40, seed=7)
  y_sr, y_hr = metrics.rgb_to_y(sr), metrics.rgb_to_y(hr)
  ours = metrics.ssim(y_sr, y_hr)
  # skimage crops the padded border too; compare against an uncropped mean.
  _, full_map = skmetrics.structural_similarity(
      y_sr, y_hr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
      data_range=255, full=True)
  assert abs(ours - full_map[5:-5, 5:-5].mean()) < 1e-9
  assert abs(ours - full_map.mean()) > 1e-5


def test_identical_images():
  _, hr = _pair(48, 50, seed=1)
  assert metrics.psnr_y(hr, hr, 2) == math.inf
  assert metrics.ssim_y(hr, hr, 2) == pytest.approx(1.0, abs=1e-12)


def test_constant_offset_of_one_grey_level():
  y = np.random.default_rng(0).integers(0, 200, (40, 44)).astype(np.float64)
  assert metrics.psnr_y(y + 1, y, 4) == pytest.approx(20 * math.log10(255), abs=1e-9)
  assert metrics.psnr_y(y + 1, y, 4) == pytest.approx(48.13, abs=0.005)


def test_shave_excludes_border():
  _, hr = _pair(40, 40, seed=2)
  sr = hr.copy()
  sr[:3] = 0  # Damage only inside the 3-px shaved border.
  assert metrics.psnr_y(sr, hr, 3) == math.inf
  assert metrics.psnr_y(sr, hr, 2) < 40


def test_match_size():
  sr = np.zeros((20, 30, 3), np.uint8)
  hr = np.arange(23 * 31 * 3).reshape(23, 31, 3)
  np.testing.assert_array_equal(metrics.match_size(sr, hr, 4), hr[:20, :30])
  assert metrics.match_size(sr, hr[:20, :30], 4).shape == (20, 30, 3)
  with pytest.raises(ValueError, match=r'\(20, 30, 3\).*\(23, 31, 3\)'):
    metrics.match_size(sr, hr, 3)  # 3 rows too many at scale 3.
  with pytest.raises(ValueError):
    metrics.match_size(sr, hr[:19], 4)  # HR smaller than SR.
  # evaluate() applies it: HR that is not mod-cropped still evaluates.
  _, big = _pair(41, 43, seed=3)
  assert metrics.psnr_y(big[:40, :42], big, 2) == math.inf


def test_bad_scale():
  sr, hr = _pair(32, 32, seed=4)
  for scale in (0, -2, 2.0, True):
    with pytest.raises(ValueError):
      metrics.psnr_y(sr, hr, scale)


def _run_cli(*args):
  return cli_runner.run('ikejax.cli.metrics', *args, timeout=60)


def test_cli_prints_metrics(tmp_path):
  sr, hr = _pair(50, 60, seed=5)
  Image.fromarray(sr).save(tmp_path / 'sr.png')
  Image.fromarray(hr).save(tmp_path / 'hr.png')
  proc = _run_cli('--sr', str(tmp_path / 'sr.png'), '--hr', str(tmp_path / 'hr.png'),
                  '--scale', '2')
  assert proc.returncode == 0, proc.stderr
  want = metrics.evaluate(sr, hr, 2)
  assert proc.stdout.strip() == (
      f'PSNR_Y {want["psnr_y"]:.4f} dB  SSIM_Y {want["ssim_y"]:.4f}')


@pytest.mark.parametrize('case', ['missing', 'corrupt', 'size', 'scale_text', 'scale_zero'])
def test_cli_errors(tmp_path, case):
  sr, hr = _pair(50, 60, seed=6)
  Image.fromarray(sr).save(tmp_path / 'sr.png')
  Image.fromarray(hr).save(tmp_path / 'hr.png')
  Image.fromarray(hr[:30]).save(tmp_path / 'small.png')
  (tmp_path / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
  hr_path, scale, fragment = str(tmp_path / 'hr.png'), '2', None
  if case == 'missing':
    hr_path, fragment = str(tmp_path / 'nope.png'), 'nope.png'
  elif case == 'corrupt':
    hr_path, fragment = str(tmp_path / 'bad.png'), 'bad.png'
  elif case == 'size':
    hr_path, fragment = str(tmp_path / 'small.png'), '(30, 60, 3)'
  elif case == 'scale_text':
    scale, fragment = 'two', 'two'
  else:
    scale, fragment = '0', 'scale'
  proc = _run_cli('--sr', str(tmp_path / 'sr.png'), '--hr', hr_path, '--scale', scale)
  assert proc.returncode == 2
  assert proc.stdout == ''
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith('error:') and fragment in lines[0]
  assert 'Traceback' not in proc.stderr


def test_nyquist_energy_and_mean_rgb_error_known_values():
  flat = np.full((8, 10, 3), 100, np.uint8)
  assert metrics.nyquist_energy(flat)['total'] == pytest.approx(0.0)
  stripes = flat.copy()
  stripes[:, ::2] = 110   # Vertical 2-px stripes: Y alternates by 10 * 0.859.
  e = metrics.nyquist_energy(stripes)
  amp = 10 * (65.481 + 128.553 + 24.966) / 255 / 2
  assert e['cols'] == pytest.approx(amp ** 2 * 10, rel=1e-9)
  assert e['rows'] == pytest.approx(0.0)
  hr = np.full((12, 12, 3), 50, np.uint8)
  sr = hr.copy()
  sr[..., 1] -= 2
  assert metrics.mean_rgb_error(sr, hr, 2) == pytest.approx([0.0, -2.0, 0.0])


def test_windowed_nyquist_energy_noise_and_stripes():
  rng = np.random.RandomState(0)
  noise = np.stack([rng.randn(256, 256) * 10 + 128] * 3, -1)
  whole, win = metrics.nyquist_energy(noise), metrics.nyquist_energy_windowed(noise, 32)
  assert abs(win["total"] / whole["total"] - 1) < 0.15
  stripe = np.full((64, 256, 3), 128.0)
  stripe[:, ::2] += 5.0                      # one column phase brighter: coherent over W
  ratio = metrics.nyquist_energy_windowed(stripe, 32)["cols"] / metrics.nyquist_energy(stripe)["cols"]
  np.testing.assert_allclose(ratio, 32 / 256, rtol=1e-6)
