"""Closed-form blind kernel estimate from the LR image's power spectrum (beyond the paper).

Host-side NumPy, seconds per image. Model (per direction theta of the LR's 2-D spectrum,
radial frequency f in cycles per LR pixel):

  P(f) = A f^-alpha exp(-b f^2) + N          (`spectrum_model`)

a natural image's power law (A, alpha free per direction, so anisotropic content is
absorbed), times the power response of a Gaussian blur, plus a white floor N (quantisation
and noise). A Gaussian blur of covariance Sigma (HR px^2) attenuates LR frequency f by
exp(-4 pi^2 f^T Sigma f / s^2) in power, so each direction's fitted b gives
u^T Sigma u = b s^2 / (4 pi^2) (`directional_variance`), and Sigma is the least-squares
quadratic form through those (`fit_covariance`). The kernel is the Gaussian of that
covariance on a `[size, size]` grid, centred (`gaussian_from_covariance`). The fitted floor N
says when the LR is not blurred-then-decimated at all (`aliased`); the sons are then made
with a resampler's kernel instead (`resampler_kernel`, `son_kernel`).

It uses scale invariance the way KernelGAN does (the blur is what departs from a power
law), without a GAN: on the 8 DIV2KRK images of ../shared/data (x2) its principal sigmas
are within 0-25% of the truth (docs/recipe_log.md), where ikejax's KernelGAN is off by
30-40%.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.optimize

from ikejax.imaging import metrics


def power_spectrum(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Hann-windowed periodogram of the Y channel: `[H, W(, 3)] -> (P, fy, fx)`, each `[H, W]`.

  `img` on the 8-bit scale; `fy`, `fx` in cycles per pixel (`np.fft.fftfreq`).
  """
  y = metrics.rgb_to_y(img) if img.ndim == 3 else np.asarray(img, np.float64)
  y = y - y.mean()
  h, w = y.shape
  win = np.outer(np.hanning(h), np.hanning(w))
  p = np.abs(np.fft.fft2(y * win)) ** 2 / np.sum(win ** 2)
  fy = np.broadcast_to(np.fft.fftfreq(h)[:, None], (h, w))
  fx = np.broadcast_to(np.fft.fftfreq(w)[None, :], (h, w))
  return p, fy, fx


def spectrum_model(f, log_a, alpha, b, log_n):
  """`log P(f) = log(A f^-alpha exp(-b f^2) + N)` (the module docstring's model)."""
  return np.logaddexp(log_a - alpha * np.log(f) - b * f * f, log_n)


def directional_variance(b: float, scale: int) -> float:
  """`u^T Sigma u` in HR px^2 from the fitted fall-off `b` of direction u."""
  return max(b, 0.0) * scale * scale / (4 * np.pi ** 2)


def fit_direction(p, f, theta, t0, half_width, fmin=0.03, fmax=0.5, bins=40):
  """Fits `spectrum_model` to the binned spectrum within `half_width` rad of direction t0.

  Returns the fitted `(b, log N)`, or None when the fit fails (too few bins, no convergence).
  """
  d = np.abs(((theta - t0 + np.pi / 2) % np.pi) - np.pi / 2)
  m = (d <= half_width) & (f > fmin) & (f < fmax)
  edges = np.linspace(fmin, fmax, bins + 1)
  idx = np.digitize(f[m], edges)
  fb, pb = [], []
  for j in range(1, bins + 1):
    sel = idx == j
    if np.any(sel):
      fb.append(f[m][sel].mean())
      pb.append(p[m][sel].mean())
  if len(fb) < 8:
    return None
  fb, lp = np.array(fb), np.log(np.maximum(pb, 1e-30))
  p0 = [lp[0] + 2 * np.log(fb[0]), 2.0, 10.0, lp[-1]]
  try:
    with np.errstate(over="ignore"), warnings.catch_warnings():
      warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)  # no covariance: unused
      params, _ = scipy.optimize.curve_fit(spectrum_model, fb, lp, p0=p0, maxfev=20000)
  except (RuntimeError, ValueError):
    return None
  return float(params[2]), float(params[3])


def fit_covariance(directions: list[tuple[float, float]]) -> np.ndarray:
  """Least-squares `[2, 2]` (y, x) covariance with `u^T Sigma u = v` for `(theta, v)` pairs,
  `u = (sin theta, cos theta)`; eigenvalues floored at 0.3^2 px^2 (a delta-like blur)."""
  a = [[np.sin(t) ** 2, 2 * np.sin(t) * np.cos(t), np.cos(t) ** 2] for t, _ in directions]
  c = np.linalg.lstsq(np.array(a), np.array([v for _, v in directions]), rcond=None)[0]
  cov = np.array([[c[0], c[1]], [c[1], c[2]]])
  w, v = np.linalg.eigh(cov)
  return v @ np.diag(np.maximum(w, 0.09)) @ v.T


def gaussian_from_covariance(cov: np.ndarray, size: int, offset: float = 0.0) -> np.ndarray:
  """The `[size, size]` Gaussian of `[2, 2]` (y, x) covariance `cov`, sum 1, centred on
  `size // 2 + offset` along both axes."""
  i = np.arange(size) - size // 2 - offset
  yy, xx = np.meshgrid(i, i, indexing="ij")
  x = np.stack([yy, xx], -1)
  k = np.exp(-0.5 * np.einsum("...i,ij,...j->...", x, np.linalg.inv(cov), x))
  return k / k.sum()


# Kernel sides written per scale (as `ikejax.imaging.kernels.DEFAULT_SIZE`: DIV2KRK's are 11 and 31).
SIZES = {2: 21, 3: 31, 4: 41}


def estimate_kernel(lr: np.ndarray, scale: int, size: int | None = None,
                    directions: int = 12) -> tuple[np.ndarray, dict]:
  """The blind Gaussian kernel of an LR image (8-bit scale), `[size, size]`, odd size.

  In the operator-window convention of `ikejax.imaging.kernels` (centred on `size // 2 +
  (s - 1) / 2`, the LR pixel's centre), as the kernels ikejax runs write.

  Returns:
    (kernel, info): `info` holds the covariance (HR px^2), its principal sigmas, how
    many of the `directions` fits converged and the median fitted white floor N
    (`floor`, 8-bit units^2; `aliased` reads it).

  Raises:
    ValueError: when fewer than 3 directions could be fitted (a flat or tiny image).
  """
  size = size or SIZES[scale]
  lr = np.asarray(lr, np.float64)
  if min(lr.shape[:2]) < 32 or np.std(lr) < 1e-3:
    raise ValueError(f"spectral kernel estimate failed: the image is {'flat' if min(lr.shape[:2]) >= 32 else 'below 32 px'}")
  p, fy, fx = power_spectrum(lr)
  f = np.hypot(fy, fx)
  theta = np.mod(np.arctan2(fy, fx), np.pi)
  fits, log_floors = [], []
  for a in range(directions):
    t0 = a * np.pi / directions
    fit = fit_direction(p, f, theta, t0, np.pi / directions / 2 + 1e-9)
    if fit is not None:
      fits.append((t0, directional_variance(fit[0], scale)))
      log_floors.append(fit[1])
  if len(fits) < 3:
    raise ValueError(f"spectral kernel estimate failed: {len(fits)} of {directions} "
                     "directions could be fitted (image too small or flat)")
  cov = fit_covariance(fits)
  sig = np.sqrt(np.linalg.eigvalsh(cov))
  return gaussian_from_covariance(cov, size, (scale - 1) / 2), {
      "source": "spectral (ikejax.imaging.spectral)", "covariance": cov.tolist(),
      "sigmas": sig.tolist(), "directions_fitted": len(fits),
      "floor": float(np.exp(np.median(log_floors)))}


def aliased(info: dict, max_floor: float) -> bool:
  """Whether the LR's high band is not a blurred power law falling to the 8-bit floor.

  A Gaussian-blurred, decimated image's spectrum falls to the quantisation floor (variance
  1/12 on this periodogram's scale): the fitted white floor N stays near or below it
  (DIV2KRK x2 and x4 and the `random` kernels of `ikejax.imaging.degrade`: at most 0.44).
  Resampling that keeps a flat high band, aliasing (edge-keeping filters followed by
  decimation: N of 1.3 to 260 on 54 of the 57 such Set5 / Set14 x2 images) or MATLAB's
  bicubic (N above 1 on 11 of 19), lifts it (docs/recipe_log.md). There the Gaussian fit
  reads the flattened band as a wide blur. `max_floor`: N above which this says so.
  """
  return info["floor"] > max_floor


def resampler_kernel(kind: str, scale: int, size: int) -> np.ndarray:
  """`[size, size]` operator-window kernel of a resampler without a Gaussian blur.

  `bicubic`: MATLAB's antialiased bicubic (`imresize`); `corner`: `[::s, ::s]` decimation,
  LR pixel i on HR pixel s*i; `centre`: HR position s*i + (s-1)/2 sampled bilinearly (at
  x2 and x4 the mean of the central 2x2), as `cv2.resize(INTER_LINEAR)` at an integer factor.
  """
  from ikejax.imaging import filters
  if kind == "bicubic":
    return filters.bicubic_kernel(scale, size)
  c = size // 2 + ((scale - 1) / 2 if kind == "centre" else 0.0)
  k1 = np.zeros(size)
  lo = int(np.floor(c))
  k1[lo] += 1.0 - (c - lo)
  k1[min(lo + 1, size - 1)] += c - lo
  return np.outer(k1, k1)


def son_kernel(cfg, pixels: np.ndarray, bit_depth: int) -> tuple[np.ndarray, dict] | None:
  """The kernel a `son_source='spectral'` config makes its sons with, for one LR image.

  `pixels` as read (`image_io.LoadedImage`). None for configs that take sons from the
  learned flow or train no decoder on sons. When the spectrum cannot be fitted (tiny
  or flat images) the MATLAB bicubic kernel stands in, and `info['fallback']` says so.
  When the high band is not that of a blur (`aliased`), the kernel of `cfg.alias_son`
  (`resampler_kernel`) stands in, and `info['resampler']` says why.
  """
  if cfg.lambda_rec <= 0 or cfg.son_source != "spectral":
    return None
  from ikejax.imaging import filters
  try:
    k, info = estimate_kernel(np.asarray(pixels, np.float64) * (255.0 / (2 ** bit_depth - 1)),
                              cfg.scale)
    if aliased(info, cfg.alias_floor):
      k = resampler_kernel(cfg.alias_son, cfg.scale, k.shape[0])
      info = {**info, "source": f"{cfg.alias_son} resampler (ikejax.imaging.spectral.aliased)",
              "resampler": f"spectral floor {info['floor']:.2g} > alias_floor "
                           f"{cfg.alias_floor:g}: not a blur; making sons with the "
                           f"{cfg.alias_son} resampler"}
    return k, info
  except ValueError as e:
    k = filters.bicubic_kernel(cfg.scale, SIZES[cfg.scale])
    return k, {"source": "MATLAB bicubic (spectral estimate failed)", "fallback": str(e)}
