"""ISSR-DIL (image-specific SR by deep identity learning): a linear CNN inverts a kernel.

Paper: "ISSR-DIL: Image Specific Super-Resolution Using Deep Identity Learning"
(../shared/papers/issr_dil_deep_identity_learning.md; no official code exists).
  1. Kernel from image statistics (Sec. 3.2, Eq. 5): `sigma_f = (sigma_o + d) /
     (sigma_o sqrt(2 pi))` with `sigma_o` the LR image's standard deviation and
     `d ~ U[1, 3]` (DIV2KRK), anisotropic 11x11 Gaussians rotated by `U[0, pi)`:
     a set of `n_kernels` such kernels is the whole training set (`sample_kernels`).
  2. L-CNN (Sec. 3.3): five 3x3 convolutions 1 -> 32 -> 32 -> 32 -> 32 -> 1,
     'SAME', no bias, no activation, trained on kernels alone with the DIL
     objective (Eqs. 6-7): `||L(K) - delta||^2 + 0.1 L_pinv + 0.7 L_unity + 0.1 L_rs`
     on the deep restoration kernel `h = L(delta)` (DRK, 11x11).
  3. SR: MATLAB-bicubic upsampling by s, then the L-CNN per colour channel
     (`super_resolve`); the L-CNN is the true convolution with `h`.
Any kernel can replace step 1 (`fit(kernels=...)`): KernelGAN's or IKE's, re-centred
first (`centre_kernel`), the combinations of the paper's Table 3.

Where the paper is ambiguous or does not work as printed (resolutions measured
on the DIV2KRK images here; docs/notebook.md "Deviations"):
  * units of sigma_o: [0, 1] (with [0, 255] every kernel is a near-delta);
  * one SD for an "anisotropic" kernel: two independent draws of d;
  * L_pinv, the 11x11 *matrix* pseudo-inverse of K: for rotated Gaussians its
    entries reach 1e3-1e14 and training collapses (~5 dB), so a kernel whose
    pseudo-inverse exceeds `pinv_max` in magnitude drops the term (counted in
    the record); it stays on for isotropic and well-conditioned kernels;
  * lr 0.1 (paper) diverged in every setting tried: default 1e-2, halved every
    10 epochs; `PRESETS['paper_lr']` keeps 0.1;
  * the image is reflect-padded by 5 px before the zero-padded L-CNN and cropped
    back, so borders are not darkened.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.ndimage
from flax import linen as nn

from ikejax import loop, ops, tiles
from ikejax.imaging import degrade


@dataclasses.dataclass(frozen=True)
class DILConfig:
  """ISSR-DIL settings (paper Sec. 4.1 where it gives them)."""
  kernel_size: int = 11
  delta_range: tuple = (1.0, 3.0)     # d ~ U[1, 3] for DIV2KRK (U[0.5, 1.5] for RealSR).
  anisotropic: bool = True            # two independent d draws per kernel.
  n_kernels: int = 100
  batch: int = 10
  epochs: int = 50
  lr: float = 1e-2                    # paper 0.1 (diverges; module docstring).
  lr_step_epochs: int = 10
  lr_gamma: float = 0.5
  b1: float = 0.9
  b2: float = 0.999
  width: int = 32
  depth: int = 5
  lambda_pinv: float = 0.1
  lambda_unity: float = 0.7
  lambda_rs: float = 0.1
  pinv_max: float = 1e3               # drop L_pinv for kernels whose pinv is larger.

  def replace(self, **kw) -> "DILConfig":
    return dataclasses.replace(self, **kw)


# `paper`: the paper's method with the resolutions above; `paper_lr`: also its lr 0.1.
PRESETS = {"paper": DILConfig(), "paper_lr": DILConfig(lr=0.1),
           "tiny": DILConfig(n_kernels=8, batch=4, epochs=3, width=4)}


class LinearCNN(nn.Module):
  """`[N, H, W, 1] -> [N, H, W, 1]`: `depth` 3x3 'SAME' convs, no bias, no activation.

  Init as PyTorch's `Conv2d` default, `U(+-1 / sqrt(fan_in))`.
  """
  width: int = 32
  depth: int = 5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
    for i in range(self.depth):
      x = nn.Conv(1 if i == self.depth - 1 else self.width, (3, 3), padding="SAME",
                  use_bias=False, kernel_init=init, precision=jax.lax.Precision.HIGHEST,
                  name=f"conv{i}")(x)
    return x


def image_sigma(lr01: np.ndarray) -> float:
  """`sigma_o`: the standard deviation of the LR image in [0, 1], all pixels and channels."""
  return float(np.std(np.asarray(lr01, np.float64)))


def sigma_from_stats(sigma_o: float, delta: float) -> float:
  """Eq. (5) as printed: `(sigma_o + delta) / (sigma_o sqrt(2 pi))` px."""
  return (sigma_o + delta) / (sigma_o * math.sqrt(2.0 * math.pi))


def sample_kernels(sigma_o: float, cfg: DILConfig, rng: np.random.Generator) -> np.ndarray:
  """`[n_kernels, k, k]` centred anisotropic Gaussians of Eq. (5) SDs, rotated by U[0, pi)."""
  out = []
  for _ in range(cfg.n_kernels):
    d1 = rng.uniform(*cfg.delta_range)
    d2 = rng.uniform(*cfg.delta_range) if cfg.anisotropic else d1
    s1, s2 = sigma_from_stats(sigma_o, d1), sigma_from_stats(sigma_o, d2)
    out.append(degrade.gaussian_kernel(cfg.kernel_size, (s1 * s1, s2 * s2),
                                       rng.uniform(0.0, math.pi)))
  return np.stack(out)


def centre_kernel(k: np.ndarray) -> np.ndarray:
  """Moves a kernel's centre of mass onto its central tap (cubic spline, padded: no loss).

  KernelGAN's and IKE's kernels are operator windows, `(s - 1) / 2` px off
  centre; the bicubic-upsampled image is already aligned, so the L-CNN must
  invert a centred kernel or it learns a spurious half-pixel shift.
  Returns an odd-sided kernel summing to 1.
  """
  k = np.asarray(k, np.float64)
  k = np.pad(k, 2)
  shift = np.asarray(k.shape) // 2 - np.asarray(scipy.ndimage.center_of_mass(np.clip(k, 0, None)))
  out = np.clip(scipy.ndimage.shift(k, shift, order=3, mode="constant"), 0.0, None)
  return out / out.sum()


def _delta(size: int) -> jnp.ndarray:
  return jnp.zeros((size, size)).at[size // 2, size // 2].set(1.0)


def restoration_kernel(net: LinearCNN, params, size: Optional[int] = None) -> jax.Array:
  """The DRK `h = L(delta)`, `[2 depth + 1, 2 depth + 1]`: `L(x) = x (*) h` (true convolution)."""
  size = size or 2 * net.depth + 1
  return net.apply({"params": params}, _delta(size)[None, :, :, None])[0, :, :, 0]


def pseudo_inverses(kernels: np.ndarray, pinv_max: float) -> tuple[np.ndarray, np.ndarray]:
  """Matrix pseudo-inverses of the kernels (float32, PyTorch's rtol) and which are usable."""
  k32 = np.asarray(kernels, np.float32)
  rcond = k32.shape[-1] * np.finfo(np.float32).eps
  p = np.stack([np.linalg.pinv(k, rcond=rcond) for k in k32])
  ok = np.abs(p).reshape(len(p), -1).max(-1) <= pinv_max
  return np.where(ok[:, None, None], p, 0.0).astype(np.float32), ok


def dil_loss(params, kernels: jax.Array, pinvs: jax.Array, pinv_ok: jax.Array, *,
             net: LinearCNN, cfg: DILConfig) -> tuple[jax.Array, dict]:
  """Eqs. (6)-(7) on a batch `[B, k, k]` of kernels (identity term averaged over the batch)."""
  out = net.apply({"params": params}, kernels[..., None])[..., 0]
  l_id = jnp.mean(jnp.sum((out - _delta(kernels.shape[-1])[None]) ** 2, axis=(1, 2)))
  h = restoration_kernel(net, params)
  if pinvs.shape[-1] != h.shape[-1]:  # compare on the common centred window
    c = (pinvs.shape[-1] - h.shape[-1]) // 2
    p = pinvs[:, c:c + h.shape[0], c:c + h.shape[1]] if c >= 0 else jnp.pad(
        pinvs, ((0, 0), (-c, -c), (-c, -c)))
  else:
    p = pinvs
  dist = jnp.sqrt(jnp.sum((h[None] - p) ** 2, axis=(1, 2)) + 1e-12)
  l_pinv = jnp.sum(jnp.where(pinv_ok, dist, 0.0)) / jnp.maximum(jnp.sum(pinv_ok), 1)
  l_unity = jnp.abs(1.0 - jnp.sum(h))
  hn = (h - h.min()) / (h.max() - h.min())
  l_rs = jnp.sqrt(jnp.sum((h - hn) ** 2))
  total = l_id + cfg.lambda_pinv * l_pinv + cfg.lambda_unity * l_unity + cfg.lambda_rs * l_rs
  return total, {"identity": l_id, "pinv": l_pinv, "unity": l_unity, "rs": l_rs,
                 "total": total}


@functools.lru_cache(maxsize=8)
def _step_fn(cfg: DILConfig, steps_per_epoch: int):
  net = LinearCNN(width=cfg.width, depth=cfg.depth)
  sched = optax.exponential_decay(cfg.lr, cfg.lr_step_epochs * steps_per_epoch, cfg.lr_gamma,
                                  staircase=True)
  tx = optax.adam(sched, b1=cfg.b1, b2=cfg.b2)

  @jax.jit
  def step(state, k, p, ok):
    params, opt = state
    (_, m), g = jax.value_and_grad(
        functools.partial(dil_loss, net=net, cfg=cfg), has_aux=True)(params, k, p, ok)
    updates, opt = tx.update(g, opt, params)
    return (optax.apply_updates(params, updates), opt), m

  return net, tx, step


@dataclasses.dataclass
class DILResult:
  params: dict
  drk: np.ndarray            # `[11, 11]` restoration kernel.
  kernels: np.ndarray        # the training kernels `[N, k, k]`.
  pinv_used: int             # kernels whose L_pinv term was kept.
  history: list[dict]
  train_seconds: float


def fit(key: jax.Array, cfg: DILConfig, *, lr01: Optional[np.ndarray] = None,
        kernels: Optional[np.ndarray] = None) -> DILResult:
  """Trains the L-CNN on the kernels of an image's statistics, or on given kernels.

  Args:
    key: PRNG key (init, kernel draws and batch order).
    cfg: settings.
    lr01: the LR image in [0, 1] (`[H, W, 3]`): kernels from Eq. (5).
    kernels: `[N, k, k]` or `[k, k]` centred kernels to invert instead (odd k).
  """
  k_init, k_data = jax.random.split(key)
  rng = np.random.default_rng(int(jax.random.randint(k_data, (), 0, 2 ** 31 - 1)))
  if kernels is None:
    kernels = sample_kernels(image_sigma(lr01), cfg, rng)
  kernels = np.asarray(kernels, np.float32).reshape((-1,) + np.shape(kernels)[-2:])
  pinvs, ok = pseudo_inverses(kernels, cfg.pinv_max)
  n = len(kernels)
  batch = min(cfg.batch, n)
  steps_per_epoch = max(1, n // batch)
  net, tx, step = _step_fn(cfg, steps_per_epoch)
  params = net.init(k_init, jnp.zeros((1, cfg.kernel_size, cfg.kernel_size, 1)))["params"]
  opt = tx.init(params)
  order = None

  def batch_at(it):
    # A new order of the kernels at each epoch's first step (iterations come in order).
    nonlocal order
    if it % steps_per_epoch == 0:
      order = rng.permutation(n)
    j = order[(it % steps_per_epoch) * batch:(it % steps_per_epoch + 1) * batch]
    return kernels[j], pinvs[j], ok[j]

  res = loop.fit_loop(step, (params, opt), batch_at, iters=cfg.epochs * steps_per_epoch,
                      log_every=steps_per_epoch)
  params = res.state[0]
  drk = np.asarray(restoration_kernel(net, params), np.float64)
  return DILResult(params=params, drk=drk, kernels=kernels, pinv_used=int(ok.sum()),
                   history=res.histories[0],
                   train_seconds=res.compile_seconds + res.train_seconds)


@functools.partial(jax.jit, static_argnames=("net",))
def _apply(net, params, x):
  return net.apply({"params": params}, x)


def super_resolve(result: DILResult, lr01: np.ndarray, scale: int, cfg: DILConfig,
                  tile: Optional[int] = None) -> np.ndarray:
  """`[H, W, 3]` in [0, 1] -> `[sH, sW, 3]`: bicubic x s, then the L-CNN on each channel.

  The upsampled image is reflect-padded by the L-CNN's reach first and
  cropped back (zero padding per layer would darken a 5 px border). `tile`: on
  overlapping tiles of that side (`ikejax.tiles`), None: whole.
  """
  if tile:
    fn = lambda t: super_resolve(result, t, scale, cfg)
    return tiles.map_tiles(fn, np.asarray(lr01, np.float64), scale, tile)  # float32
  up = np.asarray(ops.imresize(np.asarray(lr01, np.float64), float(scale), "matlab"))
  r = cfg.depth
  padded = np.pad(up, ((r, r), (r, r), (0, 0)), mode="symmetric").astype(np.float32)
  net = LinearCNN(width=cfg.width, depth=cfg.depth)
  out = np.asarray(_apply(net, result.params, jnp.asarray(np.transpose(padded, (2, 0, 1))[..., None])))
  return np.transpose(out[..., 0], (1, 2, 0))[r:-r, r:-r].astype(np.float64)


def stats_kernel(lr01: np.ndarray, scale: int, cfg: DILConfig) -> np.ndarray:
  """ISSR-DIL's kernel estimate as one kernel, for scoring: the isotropic Gaussian of
  Eq. (5) at the centre of the delta range, in the operator-window convention of
  `ikejax.imaging.kernels` (shifted onto the x`scale` grid; 11x11 as the paper's)."""
  s = sigma_from_stats(image_sigma(lr01), float(np.mean(cfg.delta_range)))
  k = degrade.gaussian_kernel(cfg.kernel_size, (s * s, s * s), 0.0)
  k = degrade.kernel_shift(np.pad(k, 2), scale)
  return k / k.sum()
