"""Super-resolution evaluation metrics as the blind-SR literature computes them.

PSNR and SSIM are measured on the luma (Y) channel of MATLAB's `rgb2ycbcr`,
on the 8-bit scale, after shaving `scale` pixels from every border; SSIM is
Wang et al.'s with an 11x11 Gaussian window (sigma 1.5) and 'valid' filtering,
as in the reference MATLAB `ssim_index`.

The command line tool is `ikejax-metrics` (`ikejax.cli.metrics`).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage


# MATLAB rgb2ycbcr luma row, for R, G, B in [0, 255].
_Y_COEFFS = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0
_Y_OFFSET = 16.0

_PEAK = 255.0
_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def rgb_to_y(img: np.ndarray) -> np.ndarray:
  """MATLAB `rgb2ycbcr` luma on the 8-bit scale, without rounding.

  `Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255` with R, G, B in
  `[0, 255]`, so black maps to 16 and white to 235.

  uint16 input is first scaled to `[0, 255]` as float (`x * 255 / 65535`);
  any other dtype (uint8, float) is taken to be on the `[0, 255]` scale
  already. A 2-D (grayscale) input, or `[H, W, 1]`, is returned as is (as
  float64, on its own scale): it is treated as luma already, not mapped
  through the formula.

  Args:
    img: `[H, W, 3]` RGB or `[H, W]` / `[H, W, 1]` grayscale image.

  Returns:
    float64 `[H, W]` Y channel.

  Raises:
    ValueError: for other shapes.
  """
  img = np.asarray(img)
  scale = 255.0 / 65535.0 if img.dtype == np.uint16 else 1.0
  x = img.astype(np.float64) * scale
  if x.ndim == 3 and x.shape[-1] == 1:
    x = x[:, :, 0]
  if x.ndim == 2:
    return x
  if x.ndim != 3 or x.shape[-1] != 3:
    raise ValueError(f'expected an [H, W, 3] or [H, W] image, got shape {img.shape}')
  return x @ _Y_COEFFS + _Y_OFFSET


def shave(img: np.ndarray, border: int) -> np.ndarray:
  """Crops `border` pixels from every side of the two leading axes.

  Args:
    img: `[H, W, ...]` array.
    border: non-negative number of pixels.

  Returns:
    `[H - 2 * border, W - 2 * border, ...]` view of `img`.

  Raises:
    ValueError: if `border` is negative or leaves nothing.
  """
  border = int(border)
  if border < 0:
    raise ValueError(f'border must be non-negative, got {border}')
  h, w = img.shape[:2]
  if 2 * border >= h or 2 * border >= w:
    raise ValueError(f'cannot shave {border} px from an image of shape {img.shape}')
  if border == 0:
    return img
  return img[border:h - border, border:w - border]


def _check_scale(scale: int) -> int:
  if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
    raise ValueError(f'scale must be a positive integer, got {scale!r}')
  return int(scale)


def match_size(sr: np.ndarray, hr: np.ndarray, scale: int) -> np.ndarray:
  """Crops `hr` at the bottom/right to the size of `sr` when HR is not mod-cropped.

  An SR output is `scale` times its LR input, so when the HR image's size is
  not a multiple of `scale`, HR is up to `scale - 1` px larger per axis.

  Args:
    sr: `[h, w, ...]` super-resolved image.
    hr: `[H, W, ...]` ground truth.
    scale: the super-resolution factor.

  Returns:
    `hr[:h, :w]` (or `hr` itself if the sizes already match).

  Raises:
    ValueError: if `hr` is smaller than `sr`, or larger by `scale` px or more,
      in either dimension.
  """
  scale = _check_scale(scale)
  sr_hw, hr_hw = tuple(sr.shape[:2]), tuple(hr.shape[:2])
  if sr_hw == hr_hw:
    return hr
  if all(0 <= big - small < scale for small, big in zip(sr_hw, hr_hw)):
    return hr[:sr_hw[0], :sr_hw[1]]
  raise ValueError(f'SR size {sr.shape} does not match HR size {hr.shape} at scale {scale}')


def _prepare_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
  """Matches sizes, converts to Y and shaves `scale` px; returns (y_sr, y_hr)."""
  scale = _check_scale(scale)
  sr, hr = np.asarray(sr), np.asarray(hr)
  hr = match_size(sr, hr, scale)
  y_sr, y_hr = rgb_to_y(sr), rgb_to_y(hr)
  return shave(y_sr, scale), shave(y_hr, scale)


def psnr_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
  """PSNR (dB, peak 255) on the Y channel with `scale` px shaved per border.

  Args:
    sr: `[h, w, 3]` super-resolved image (or `[h, w]` grayscale).
    hr: `[H, W, 3]` ground truth; cropped with `match_size` if needed.
    scale: the super-resolution factor, also the shave width.

  Returns:
    PSNR in dB; `inf` if the shaved Y channels are identical.

  Raises:
    ValueError: on a bad `scale` or mismatched sizes.
  """
  y_sr, y_hr = _prepare_y(sr, hr, scale)
  mse = float(np.mean(np.square(y_sr - y_hr)))
  if mse == 0.0:
    return math.inf
  return 10.0 * math.log10(_PEAK**2 / mse)


def _gaussian_window_1d() -> np.ndarray:
  r = np.arange(_SSIM_WINDOW, dtype=np.float64) - (_SSIM_WINDOW - 1) / 2
  g = np.exp(-(r**2) / (2 * _SSIM_SIGMA**2))
  # The 2-D window outer(g, g) sums to 1 exactly when g does.
  return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
  """Separable 2-D filter of `x` by `outer(g, g)`, keeping only 'valid' outputs."""
  # The boundary mode is irrelevant: every output that uses padding is cropped.
  y = scipy.ndimage.correlate1d(x, g, axis=0, mode='constant')
  y = scipy.ndimage.correlate1d(y, g, axis=1, mode='constant')
  r = (len(g) - 1) // 2
  return y[r:-r, r:-r]


def ssim(x: np.ndarray, y: np.ndarray, data_range: float = _PEAK) -> float:
  """Wang et al. SSIM of two 2-D images, as MATLAB `ssim_index` computes it.

  11x11 Gaussian window (sigma 1.5, normalised to sum 1), K1 = 0.01,
  K2 = 0.03; local statistics use 'valid' filtering (no padding) and
  population (biased) variances; returns the mean of the SSIM map.

  Args:
    x: float `[H, W]` image, H and W at least 11.
    y: float `[H, W]` image.
    data_range: the dynamic range L of the pixel values.

  Returns:
    Mean SSIM, 1.0 for identical images.

  Raises:
    ValueError: if shapes differ or are smaller than the window.
  """
  x = np.asarray(x, dtype=np.float64)
  y = np.asarray(y, dtype=np.float64)
  if x.shape != y.shape or x.ndim != 2:
    raise ValueError(f'SSIM needs two 2-D images of equal shape, got {x.shape} and {y.shape}')
  if min(x.shape) < _SSIM_WINDOW:
    raise ValueError(f'SSIM needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} px, '
                     f'got {x.shape}')
  c1 = (_SSIM_K1 * data_range)**2
  c2 = (_SSIM_K2 * data_range)**2
  g = _gaussian_window_1d()
  mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
  var_x = _filter_valid(x * x, g) - mu_x**2
  var_y = _filter_valid(y * y, g) - mu_y**2
  cov_xy = _filter_valid(x * y, g) - mu_x * mu_y
  ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2) /
              ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)))
  return float(np.mean(ssim_map))


def ssim_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
  """SSIM (see `ssim`, L = 255) on the Y channel with `scale` px shaved per border.

  Args:
    sr: `[h, w, 3]` super-resolved image (or `[h, w]` grayscale).
    hr: `[H, W, 3]` ground truth; cropped with `match_size` if needed.
    scale: the super-resolution factor, also the shave width.

  Returns:
    Mean SSIM.

  Raises:
    ValueError: on a bad `scale`, mismatched sizes, or an image too small.
  """
  y_sr, y_hr = _prepare_y(sr, hr, scale)
  return ssim(y_sr, y_hr, data_range=_PEAK)


def evaluate(sr: np.ndarray, hr: np.ndarray, scale: int) -> dict[str, float]:
  """Computes the standard metrics of an SR result against its ground truth.

  Args:
    sr: `[h, w, 3]` super-resolved image, uint8 or uint16 (16-bit images are
      measured on the 8-bit scale, see `rgb_to_y`).
    hr: `[H, W, 3]` ground truth; cropped with `match_size` if needed.
    scale: the super-resolution factor.

  Returns:
    {'psnr_y': dB, 'ssim_y': mean SSIM}.

  Raises:
    ValueError: on a bad `scale`, mismatched sizes, or an image too small.
  """
  return {'psnr_y': psnr_y(sr, hr, scale), 'ssim_y': ssim_y(sr, hr, scale)}


def nyquist_energy(img: np.ndarray, border: int = 0) -> dict[str, float]:
  """Energy of 2-pixel periodic patterns (stripes, checkerboards) on the Y channel.

  For every row, the power of the row at the horizontal Nyquist frequency
  (`|sum_c y[r, c] (-1)^c|^2 / W`, its DFT bin at 1/2 cycle per pixel),
  averaged over rows (`'cols'`: period-2 columns); the same along columns
  (`'rows'`). Projecting each row (column) separately keeps stripes whose
  phase flips across the image (and checkerboards) from cancelling out.
  Grid artifacts of a sub-pixel (space-to-depth) decoder show up here;
  compare with the HR image.

  Args:
    img: `[H, W, 3]` (or `[H, W]`) image, 8-bit scale.
    border: pixels shaved on every side first.

  Returns:
    {'cols': ..., 'rows': ..., 'total': cols + rows}.
  """
  y = rgb_to_y(img)
  y = shave(y, border) if border else y
  y = y[:y.shape[0] // 2 * 2, :y.shape[1] // 2 * 2]
  sy = (-1.0) ** np.arange(y.shape[0])[:, None]
  sx = (-1.0) ** np.arange(y.shape[1])[None, :]
  cols = float(np.mean(np.sum(y * sx, axis=1) ** 2) / y.shape[1])
  rows = float(np.mean(np.sum(y * sy, axis=0) ** 2) / y.shape[0])
  return {'cols': cols, 'rows': rows, 'total': cols + rows}


def nyquist_energy_windowed(img: np.ndarray, tile: int = 32, border: int = 0) -> dict[str, float]:
  """`nyquist_energy` per `tile x tile` window, averaged over the windows.

  The whole-image figure sums each row coherently, so a constant offset on one of
  the 2x2 sub-pixel positions (a per-position bias) scores as if it were a strong
  stripe; here each window's rows are summed on their own and the windows' powers
  averaged (incoherent across windows), the usual windowed periodogram.

  For noise-like content both figures estimate the same power density; a stripe that is
  coherent over the whole width W scores `tile / W` of its whole-image figure.

  Returns:
    {'cols': ..., 'rows': ..., 'total': cols + rows}.
  """
  y = rgb_to_y(img)
  y = shave(y, border) if border else y
  h, w = (y.shape[0] // tile) * tile, (y.shape[1] // tile) * tile
  t = y[:h, :w].reshape(h // tile, tile, w // tile, tile).transpose(0, 2, 1, 3)
  sign = (-1.0) ** np.arange(tile)
  cols = float(np.mean(np.einsum("abrc,c->abr", t, sign) ** 2) / tile)
  rows = float(np.mean(np.einsum("abrc,r->abc", t, sign) ** 2) / tile)
  return {'cols': cols, 'rows': rows, 'total': cols + rows}


def mean_rgb_error(sr: np.ndarray, hr: np.ndarray, scale: int) -> list[float]:
  """Mean signed error `sr - hr` per RGB channel (8-bit scale, shave = scale)."""
  hr = match_size(sr, hr, scale)
  d = shave(sr.astype(np.float64), scale) - shave(hr.astype(np.float64), scale)
  return [float(v) for v in d.reshape(-1, d.shape[-1]).mean(axis=0)]
