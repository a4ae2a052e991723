"""Degradations for evaluation: DIV2KRK-style random kernels and the paper's nonlinear set.

  ikejax-degrade --hr HR.png|HR_DIR --scale 2|3|4 --kind K --seed N --out DIR [--grid G]

K is one of:
  * `div2krk`: DIV2KRK's recipe (KernelGAN's BSD100RK generator, reference.md Sec. 6): an
    11x11 anisotropic Gaussian with covariance eigenvalues (variances) lambda_1, lambda_2
    ~ U(0.35, 5.0) px^2 (FKP's DIV2KRK-like range) rotated by theta ~ U(0, pi), centred, times
    multiplicative noise (1 + U(-0.25, 0.25)) per tap (the KernelGAN paper's "up to 25%",
    not verified against its code), clipped at 0 and normalised. x4 uses the analytic x4
    kernel of such an x2 kernel (`analytic_kernel`, 31x31, as DIV2KRK's x4 kernels; those are
    not the analytic kernels of the same image's stored x2 kernel, L1 distance 0.90 and 0.45
    on images 2 and 3: DIV2KRK drew the x2 and x4 kernels independently).
    Applied as DIV2KRK's files are (`blur_subsample`, checked against them in
    tests/test_degrade.py). x3 (no DIV2KRK x3 exists): one 17x17 kernel of the same family
    with 2.25x the variances.
  * `random`: the same kernel family with wider ranges (variances U(0.2, 8.0), noise 0.4,
    the generator notebook's own noise level), a smooth reading of the paper's "random
    kernels" set (docs/notebook.md's tables use it).
  * `taps`: the paper's words taken literally ("randomly assigning values to the elements of
    a kernel"): a t x t block of i.i.d. U(0, 1) taps, t in {3, 5, 7} (uniform; the paper
    gives no size), normalised, centred in an 11x11 window (so the sub-pixel centring shift
    loses no mass) and applied as `div2krk` is; x4 uses its analytic kernel (31x31), x3
    the 11x11 kernel itself.
  * `bicubic`: MATLAB's antialiased bicubic `imresize(hr, 1/s)` (`ikejax.imaging.resize`),
    the classic non-blind benchmark LR (Set5 / Set14 "bicubic"); no randomness.
  * `median`: per-channel median filter, window 3 or 5 (uniform), reflect borders.
  * `bilateral`: the bilateral filter (`bilateral`: Gaussian spatial weight times Gaussian
    weight of the RGB distance), sigma_color ~ U(0.05, 0.15) (intensity in [0, 1]),
    sigma_spatial ~ U(1, 3) px, window radius ceil(3 sigma_spatial), reflect borders.
    Written here, not scikit-image's `denoise_bilateral`: the installed 0.26 one is not
    centred (its impulse response is a sheared, wrapped pattern ~2 px off; at a huge
    sigma_color its least-squares linear fit sits 1.7 and 1.3 px off centre), so sets made
    with it before 2026-12-08 paired each LR with a shifted HR (docs/recipe_log.md).
  * `diffusion`: Perona-Malik anisotropic diffusion (exponential conductance), kappa ~
    U(15, 40) (8-bit units), 5..15 iterations (uniform), step 0.2, per channel.
Each nonlinear kind is followed by subsampling on one of two grids G (`GRIDS`; the paper's set
has no published generator): `corner` (the default and docs/notebook.md's tables' setting, reference.md's
stated assumption) keeps `[::s, ::s]`, so LR pixel i sits on HR pixel s*i, (s-1)/2 HR px off
the half-pixel grid that bicubic (MATLAB `imresize`) and the `paper` preset's residual assume;
`centre` samples HR position s*i + (s-1)/2 bilinearly, as `cv2.resize(INTER_LINEAR)` does at an
integer factor (the default that IKE's own test tooling probably got, as it passes its
interpolation in the `dst` slot, reference.md Sec. 6): the centre pixel at x3, the mean of
the central 2x2 at x2 and x4. HR images are first cropped at the bottom/right to a multiple
of s, so LR is exactly HR / s. All randomness comes from `numpy.random.default_rng(seed)`;
the values drawn go to `params/<stem>.json` (`write`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional, Sequence

import numpy as np
import scipy.ndimage

KINDS = ("div2krk", "random", "taps", "bicubic", "median", "bilateral", "diffusion")
KERNEL_KINDS = ("div2krk", "random", "taps")
GRIDS = ("corner", "centre")


def kernel_shift(kernel: np.ndarray, scale: int) -> np.ndarray:
  """Moves the kernel's centre of mass to `k // 2 + 0.5 * (scale - k % 2)`, as DIV2KRK did.

  Correlating with the shifted kernel and keeping every `scale`-th pixel then
  centres LR pixel i on HR position `scale * i + (scale - 1) / 2`. The shift is
  a cubic spline within the `[k, k]` window (zeros outside) and the result is
  not renormalised: mass pushed past the border is lost. That is what the
  DIV2KRK files follow (measured on images 3 and 6 at x2: 51.1-51.2 dB this
  way, 44.6 and 50.7 dB when the kernel is padded first as KernelGAN's
  `kernel_shift` does, or renormalised; image 3's shifted x2 kernel keeps
  only 99.27% of its mass, so its LR is 0.7% darker than a normalised blur).

  Args:
    kernel: `[k, k]` kernel.
    scale: the subsampling factor it will be used with.

  Returns:
    `[k, k]` kernel.
  """
  kernel = np.asarray(kernel, np.float64)
  size = np.asarray(kernel.shape)
  shift = size // 2 + 0.5 * (scale - size % 2) - np.asarray(scipy.ndimage.center_of_mass(kernel))
  return scipy.ndimage.shift(kernel, shift, order=3, mode="constant")


def blur_subsample(hr: np.ndarray, kernel: np.ndarray, scale: int) -> np.ndarray:
  """DIV2KRK's degradation: `kernel_shift`, per-channel correlation (reflect), `[::s, ::s]`.

  The stored DIV2KRK kernels have their centre of mass at the kernel centre;
  this convention regenerates the stored LR images from HR and kernel at
  ~51 dB (x2 and x4; tests/test_degrade.py), where correlating with the kernel
  as stored gives 34-39 dB.

  Args:
    hr: `[H, W, C]` image (any real dtype; 0..255 for uint8 output).
    kernel: `[k, k]` centred kernel.
    scale: integer factor.

  Returns:
    float64 `[ceil(H / s), ceil(W / s), C]`, not rounded.
  """
  k = kernel_shift(kernel, scale)
  hr = np.asarray(hr, np.float64)
  out = [scipy.ndimage.correlate(hr[..., c], k, mode="reflect") for c in range(hr.shape[-1])]
  return np.stack(out, -1)[::scale, ::scale]


def analytic_kernel(k2: np.ndarray) -> np.ndarray:
  """The x4 kernel of applying an x2 kernel twice (KernelGAN's `analytic_kernel`).

  `big[2r : 2r + k, 2c : 2c + k] += k2[r, c] * k2`: blurring with k2,
  subsampling x2 and blurring with k2 again equals blurring once with this
  `[3k - 2, 3k - 2]` kernel and subsampling x4 (31x31 for DIV2KRK's 11x11).
  Not cropped (KernelGAN crops `k // 2` per side; DIV2KRK's x4 kernels are the
  full 31x31). Normalised to sum 1.
  """
  k2 = np.asarray(k2, np.float64)
  k = k2.shape[0]
  big = np.zeros((3 * k - 2, 3 * k - 2))
  for r in range(k):
    for c in range(k):
      big[2 * r:2 * r + k, 2 * c:2 * c + k] += k2[r, c] * k2
  return big / big.sum()


def gaussian_kernel(size: int, variances: tuple[float, float], theta: float) -> np.ndarray:
  """Centred anisotropic Gaussian: covariance `Q diag(variances) Q^T`, Q a rotation by theta."""
  q = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
  inv = np.linalg.inv(q @ np.diag(variances) @ q.T)
  r = np.arange(size) - size // 2
  d = np.stack(np.meshgrid(r, r, indexing="xy"), -1).astype(np.float64)  # (x, y) offsets
  k = np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, inv, d))
  return k / k.sum()


def random_kernel(rng: np.random.Generator, *, size: int = 11,
                  variance_range: tuple[float, float] = (0.35, 5.0),
                  noise: float = 0.25) -> tuple[np.ndarray, dict]:
  """A DIV2KRK-style x2 kernel and the parameters drawn (see the module docstring)."""
  variances = tuple(float(v) for v in rng.uniform(*variance_range, size=2))
  theta = float(rng.uniform(0.0, math.pi))
  k = gaussian_kernel(size, variances, theta)
  k = np.maximum(k * (1.0 + rng.uniform(-noise, noise, size=k.shape)), 0.0)
  return k / k.sum(), {"variances": variances, "theta": theta, "noise": noise, "size": size}


def random_taps_kernel(rng: np.random.Generator, *, size: int = 11,
                       taps: Sequence[int] = (3, 5, 7)) -> tuple[np.ndarray, dict]:
  """`[size, size]`: a t x t block of i.i.d. U(0, 1) taps (t drawn from `taps`), sum 1.

  The block sits in the middle of a zero window, so `kernel_shift` can move its centre of
  mass onto the subsampling grid without pushing mass past the border.
  """
  t = int(rng.choice(taps))
  k = np.zeros((size, size))
  lo = (size - t) // 2
  k[lo:lo + t, lo:lo + t] = rng.uniform(0.0, 1.0, size=(t, t))
  return k / k.sum(), {"taps": t, "size": size}


def perona_malik(img: np.ndarray, iterations: int, kappa: float,
                 step: float = 0.2) -> np.ndarray:
  """Perona-Malik diffusion per channel, conductance exp(-(|grad| / kappa)^2), reflect borders.

  `[H, W, C] -> [H, W, C]` float64 (same units as `img`; `kappa` in them).
  """
  x = np.asarray(img, np.float64).copy()
  for _ in range(iterations):
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="symmetric")
    flux = 0.0
    for d in (p[:-2, 1:-1] - x, p[2:, 1:-1] - x, p[1:-1, :-2] - x, p[1:-1, 2:] - x):
      flux = flux + np.exp(-np.square(d / kappa)) * d
    x = x + step * flux
  return x


def bilateral(img: np.ndarray, sigma_color: float, sigma_spatial: float) -> np.ndarray:
  """The bilateral filter (Tomasi & Manduchi), joint over the channels, reflect borders.

  `out(p) = sum_q w(p, q) img(q) / sum_q w(p, q)` over the window `|q - p|_inf <=
  ceil(3 sigma_spatial)`, `w = exp(-|q - p|^2 / 2 sigma_spatial^2 - |img(q) - img(p)|^2 / 2
  sigma_color^2)` (Euclidean RGB distance, as scikit-image's `channel_axis` mode).
  `[H, W, C] -> [H, W, C]` float64, in the units of `img` (`sigma_color` in them).
  """
  x = np.asarray(img, np.float64)
  r = max(2, int(math.ceil(3 * sigma_spatial)))
  p = np.pad(x, ((r, r), (r, r), (0, 0)), mode="reflect")
  h, w = x.shape[:2]
  num, den = np.zeros_like(x), np.zeros(x.shape[:2])
  for dy in range(-r, r + 1):
    for dx in range(-r, r + 1):
      q = p[r + dy:r + dy + h, r + dx:r + dx + w]
      wt = np.exp(-(dy * dy + dx * dx) / (2 * sigma_spatial ** 2)
                  - np.sum(np.square(q - x), -1) / (2 * sigma_color ** 2))
      num += wt[..., None] * q
      den += wt
  return num / den[..., None]


@dataclasses.dataclass
class Degraded:
  """An LR image and how it was made.

  Attributes:
    lr: uint8 `[H / s, W / s, 3]`.
    hr: the HR it came from, cropped to a multiple of s.
    kernel: the (centred) blur kernel for the linear kinds, else None.
    params: everything drawn, JSON-ready.
  """
  lr: np.ndarray
  hr: np.ndarray
  kernel: Optional[np.ndarray]
  params: dict


def subsample(y: np.ndarray, scale: int, grid: str = "corner") -> np.ndarray:
  """`[H, W, C] -> [H/s, W/s, C]` (H, W multiples of s) on the grid `grid` (module docstring)."""
  if grid == "corner":
    return y[::scale, ::scale]
  lo, hi = (scale - 1) // 2, scale // 2  # the HR pixels either side of s*i + (s-1)/2
  y = 0.5 * (y[lo::scale] + y[hi::scale])
  return 0.5 * (y[:, lo::scale] + y[:, hi::scale])


def degrade(hr: np.ndarray, scale: int, kind: str, seed: int,
            grid: str = "corner") -> Degraded:
  """Degrades a uint8 `[H, W, 3]` HR image (see the module docstring for each kind).

  `grid` picks where the nonlinear kinds subsample; the kernel kinds are centred by their
  kernel shift and take only `corner`.

  Raises:
    ValueError: for an unknown kind, grid or scale, `centre` with a kernel kind, or an image
      smaller than 2 * scale px.
  """
  if kind not in KINDS:
    raise ValueError(f"unknown degradation {kind!r}; expected one of {', '.join(KINDS)}")
  if grid not in GRIDS:
    raise ValueError(f"unknown grid {grid!r}; expected one of {', '.join(GRIDS)}")
  if grid != "corner" and (kind in KERNEL_KINDS or kind == "bicubic"):
    raise ValueError(f"--grid {grid} applies to median, bilateral and diffusion; {kind} is "
                     "already centred")
  if scale not in (2, 3, 4):
    raise ValueError(f"unsupported scale {scale}; expected 2, 3 or 4")
  h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
  if min(h, w) < 2 * scale:
    raise ValueError(f"image is {hr.shape[1]}x{hr.shape[0]} px, too small for x{scale}")
  hr = np.ascontiguousarray(hr[:h, :w, :3])
  rng = np.random.default_rng(seed)
  params = {"kind": kind, "scale": scale, "seed": seed}
  kernel = None
  x = hr.astype(np.float64)
  if kind in KERNEL_KINDS:
    if kind == "taps":
      kernel, drawn = random_taps_kernel(rng)
    else:
      spread, noise = ((0.35, 5.0), 0.25) if kind == "div2krk" else ((0.2, 8.0), 0.4)
      if scale == 3:  # No DIV2KRK x3 exists: the same family, 17 px, 1.5x the x2 spread.
        spread = (2.25 * spread[0], 2.25 * spread[1])
      kernel, drawn = random_kernel(rng, size=17 if scale == 3 else 11,
                                    variance_range=spread, noise=noise)
    if scale == 4:  # DIV2KRK's x4 kernels: the analytic kernel of an x2 one.
      kernel = analytic_kernel(kernel)
    params.update(drawn)
    out = blur_subsample(x, kernel, scale)
  elif kind == "bicubic":
    from ikejax.imaging import resize
    out = resize.imresize(x, 1.0 / scale)
  else:
    if kind == "median":
      size = int(rng.choice([3, 5]))
      params["window"] = size
      y = np.stack([scipy.ndimage.median_filter(x[..., c], size=size, mode="reflect")
                    for c in range(3)], -1)
    elif kind == "bilateral":
      sc, ss = float(rng.uniform(0.05, 0.15)), float(rng.uniform(1.0, 3.0))
      params.update(sigma_color=sc, sigma_spatial=ss, filter="ikejax bilateral")
      y = bilateral(x / 255.0, sc, ss) * 255.0
    else:
      iters, kappa = int(rng.integers(5, 16)), float(rng.uniform(15.0, 40.0))
      params.update(iterations=iters, kappa=kappa, step=0.2)
      y = perona_malik(x, iters, kappa)
    params["grid"] = grid
    out = subsample(y, scale, grid)
  lr = np.clip(np.rint(out), 0, 255).astype(np.uint8)
  return Degraded(lr=lr, hr=hr, kernel=kernel, params=params)


def write(result: Degraded, out_dir: str, stem: str, protect: Sequence[str] = ()) -> dict:
  """Writes one degraded image under `out_dir`, in folders a folder run can take as they are.

  `lr/<stem>.png`, `hr/<stem>.png` (the HR cropped to a multiple of s), `params/<stem>.json`
  and, for the kernel kinds, `kernels/<stem>.npy`, `.mat` (key `Kernel`, as DIV2KRK) and
  `.png` (a picture). Then `python -m ikejax.main --images OUT/lr --gt OUT/hr` scores them.
  Returns the paths written.
  """
  import scipy.io

  from ikejax.imaging import image_io, pictures
  paths = {"lr": os.path.join(out_dir, "lr", stem + ".png"),
           "hr": os.path.join(out_dir, "hr", stem + ".png"),
           "params": os.path.join(out_dir, "params", stem + ".json")}
  if result.kernel is not None:
    paths.update({f"kernel_{ext}": os.path.join(out_dir, "kernels", f"{stem}.{ext}")
                  for ext in ("npy", "mat", "png")})
  for p in paths.values():
    os.makedirs(os.path.dirname(p), exist_ok=True)
  image_io.save_image(paths["lr"], result.lr, protect=protect)
  image_io.save_image(paths["hr"], result.hr, protect=protect)
  if result.kernel is not None:
    with image_io.atomic_write(paths["kernel_npy"]) as f:
      np.save(f, result.kernel)
    with image_io.atomic_write(paths["kernel_mat"]) as f:
      scipy.io.savemat(f, {"Kernel": result.kernel})
    image_io.save_image(paths["kernel_png"], pictures.kernel_image(result.kernel),
                        protect=protect)
  image_io.write_json_atomic(paths["params"], {**result.params, "files": paths})
  return paths
