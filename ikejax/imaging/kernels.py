"""Blur kernels on the host (NumPy): their convention, scores against ground truth, files.

IKE's own kernel (the impulse response of its learned downscaler) is read off the flow
in `ikejax.ike.kernel`; every method's kernel is written and scored with this module.

Kernel convention ("operator window"): `k` with `y[i] = sum_u k[u] x[s*i + u - k//2]`,
i.e. `scipy.ndimage.correlate(x, k)[::s, ::s]` (`apply_kernel`). A blur of
LR pixel centres sits `(s - 1) / 2` px off the window centre. This is what
KernelGAN saves (after its `kernel_shift`) and what DIV2KRK's LR files
follow once their centred kernels are shifted (`degrade.kernel_shift`), so
ground truth is compared after that shift (`compare_kernels`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import scipy.io
import scipy.ndimage

from ikejax.imaging import degrade, image_io, pictures

# Saved kernel sides: wider than DIV2KRK's 11 (x2) and 31 (x4) so that a wide learned
# blur is not cut off (`mass_inside` in the record says how much the window holds).
DEFAULT_SIZE = {2: 21, 3: 31, 4: 41}


def apply_kernel(img: np.ndarray, kernel: np.ndarray, scale: int) -> np.ndarray:
  """`scipy.ndimage.correlate(img, kernel, mode='reflect')[::s, ::s]` per channel.

  The operator of an (odd-sided) operator-window kernel, `[H, W, C] ->
  [ceil(H/s), ceil(W/s), C]` float64 (no shift: see the module docstring).
  Computed by FFT: 41x41 kernels on 2K images take ~1 s instead of ~30 s.
  """
  import scipy.signal
  kernel = np.asarray(kernel, np.float64)
  if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
    raise ValueError(f"kernel sides must be odd, got {kernel.shape}")
  r0, r1 = kernel.shape[0] // 2, kernel.shape[1] // 2
  img = np.asarray(img, np.float64)
  padded = np.pad(img, ((r0, r0), (r1, r1), (0, 0)), mode="symmetric")  # scipy's 'reflect'
  flipped = kernel[::-1, ::-1, None]  # correlation = convolution with the flipped kernel
  return scipy.signal.fftconvolve(padded, flipped, mode="valid", axes=(0, 1))[::scale, ::scale]


def moments(kernel: np.ndarray) -> dict:
  """Centre of mass (row, col), principal standard deviations (px, major first) and the
  major axis's angle (degrees) of a kernel.

  Negative taps are clipped to 0 first (a blur's spread, as reported for
  KernelGAN: sigma 1.70 / 1.31 px estimated vs 1.08 / 0.96 true on DIV2KRK 2).
  """
  k = np.clip(np.asarray(kernel, np.float64), 0.0, None)
  k = k / k.sum()
  r, c = np.indices(k.shape)
  mr, mc = (k * r).sum(), (k * c).sum()
  cov = np.array([[(k * (r - mr) ** 2).sum(), (k * (r - mr) * (c - mc)).sum()],
                  [(k * (r - mr) * (c - mc)).sum(), (k * (c - mc) ** 2).sum()]])
  w, v = np.linalg.eigh(cov)
  ev = np.sqrt(np.clip(w[::-1], 0.0, None))
  # The major axis as drawn (rows grow downwards), degrees counter-clockwise from +x, mod 180.
  angle = np.degrees(np.arctan2(-v[0, 1], v[1, 1])) % 180.0
  return {"centre": [float(mr), float(mc)], "sigmas": [float(ev[0]), float(ev[1])],
          "major_axis_deg": float(angle)}


def shape(kernel: np.ndarray) -> dict:
  """How far a kernel is from a blur: its L1 norm (1 for a blur, whose taps are all
  non-negative and sum to 1) and the share of that norm in negative taps (0 for a blur)."""
  k = np.asarray(kernel, np.float64)
  l1 = float(np.abs(k).sum())
  return {"l1_norm": l1, "negative_mass": float(-k[k < 0].sum() / l1)}


def _embed(k: np.ndarray, side: int, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
  """`k` on a `[side, side]` zero canvas with its index `k//2` at `side//2 + offset`."""
  out = np.zeros((side, side))
  top = side // 2 - k.shape[0] // 2 + offset[0]
  left = side // 2 - k.shape[1] // 2 + offset[1]
  out[top:top + k.shape[0], left:left + k.shape[1]] = k
  return out


def compare_kernels(estimate: np.ndarray, truth: np.ndarray, scale: int,
                    max_shift: int = 3) -> dict:
  """Scores an operator-window kernel against a centred ground-truth kernel (DIV2KRK's).

  The truth is moved to the operator convention (`degrade.kernel_shift`, the
  convention the DIV2KRK LR files follow), both are normalised to sum 1, and
  the estimate is aligned to it by the integer shift (within `max_shift` px)
  of least L1 (a kernel shifted by whole pixels only translates the image).
  Scores count every tap of either kernel (the truth zero-padded), so mass an
  estimate spreads beyond the truth's window is error, not ignored:
    * `l1`: sum of |estimate - truth| (0 = equal, 2 = disjoint);
    * `kernel_psnr`: `10 log10(1 / mse)` dB (peak 1), mse = the summed squared
      error divided by the truth's tap count (its `k x k` window);
    * `shift`: the alignment applied (rows, cols), `sigmas_*`: `moments`.
  """
  truth = degrade.kernel_shift(truth, scale)
  truth = truth / truth.sum()
  est = np.asarray(estimate, np.float64)
  est = est / est.sum()
  side = max(est.shape[0], truth.shape[0]) + 2 * max_shift + 2
  t = _embed(truth, side)
  best = None
  for dy in range(-max_shift, max_shift + 1):
    for dx in range(-max_shift, max_shift + 1):
      e = _embed(est, side, (dy, dx))
      l1 = float(np.abs(e - t).sum())
      if best is None or l1 < best[0]:
        best = (l1, (dy, dx), e)
  l1, shift, e = best
  mse = float(np.sum((e - t) ** 2)) / truth.size
  return {"l1": l1, "kernel_psnr": 10 * math.log10(1.0 / max(mse, 1e-30)),
          "shift": list(shift), "sigmas_estimate": moments(est)["sigmas"],
          "sigmas_truth": moments(truth)["sigmas"]}


def regenerated_lr_psnr(hr: np.ndarray, lr: np.ndarray, kernel: np.ndarray, scale: int,
                        border: int = 16) -> float:
  """RGB PSNR (0..255) of `apply_kernel(hr, kernel)` (rounded) against a stored LR.

  The LR is what the kernel claims to explain; the ground-truth DIV2KRK kernels
  reach ~51 dB this way (experiments/regenerate_div2krk.py). `border` px are
  ignored (boundary handling is not part of a kernel). The kernel is used as
  given, not renormalised (DIV2KRK's shifted kernels lose up to 0.9% mass and
  its LR files keep that loss). `inf` when the LR is reproduced exactly.
  """
  est = np.clip(np.rint(apply_kernel(hr, kernel, scale)), 0, 255)
  h, w = min(est.shape[0], lr.shape[0]), min(est.shape[1], lr.shape[1])
  d = est[border:h - border, border:w - border] - np.asarray(lr, np.float64)[border:h - border,
                                                                           border:w - border]
  mse = float(np.mean(d ** 2))
  return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def kernel_paths(base: str) -> dict[str, str]:
  """`<base>_kernel.npy`, `.mat` (key `Kernel`, as DIV2KRK and KernelGAN) and `.png`."""
  return {ext: f"{base}_kernel.{ext}" for ext in ("npy", "mat", "png")}


def save_kernel(paths: dict[str, str], kernel: np.ndarray, protect: Sequence[str] = ()) -> None:
  """Writes a kernel to `paths` (`kernel_paths`): `.npy`, `.mat` and a PNG picture, atomically."""
  for p in paths.values():
    if any(image_io.same_file(p, q) for q in protect):
      raise image_io.ImageError(f"refusing to overwrite an input file: {p}")
  kernel = np.asarray(kernel, np.float64)
  with image_io.atomic_write(paths["npy"]) as f:
    np.save(f, kernel)
  with image_io.atomic_write(paths["mat"]) as f:
    scipy.io.savemat(f, {"Kernel": kernel})
  image_io.save_image(paths["png"], pictures.kernel_image(kernel), protect=protect)
