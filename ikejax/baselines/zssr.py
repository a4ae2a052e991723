"""ZSSR (Shocher, Cohen, Irani 2018): a small CNN trained on the image's own son/father pairs.

Follows the official code (assafshocher/ZSSR `ZSSR.py`, `utils.py`, `configs.py`;
reference.md Sec. 4; cited in third_party/README.md):
  * Net: 8 convs 3x3, width 64, ReLU after all but the last, no biases, weights
    N(0, sqrt(0.1 / fan_in)); a residual over the son's bicubic upscale (`ZSSRNet`).
  * Pairs: a father is an augmented 128 px crop of the input (`augment`: leave as is
    5%, 90-degree turns and mirror 45%, else a random scale in [0.5, 1], x/y scale
    difference, shear and rotation, bicubic-sampled); its son is the father blurred
    with the kernel (its centre of mass moved onto the grid, `degrade.kernel_shift`)
    and subsampled (`son_of`). L1 loss between the net's output and the father.
  * Adam(1e-3); the learning-rate policy (`lr_policy`): every 60 iterations, at least
    256 after the last change, a line is fitted to the reconstruction MSE of the last
    256 iterations (the input rebuilt from its own son, tested every 50); when
    -1.5 x slope is below the slope's standard error, lr / 10. Training stops when lr
    falls below 9e-6 (at most 3000 iterations).
  * Output: the 8-way geometric self-ensemble (4 turns x mirror), each back-projected
    10 times onto the input, their median, back-projected again (`final_sr`).
  * Gradual SR (x4 as x2 then x4): the x2 output joins the fathers' sources (base
    scale 2), the net goes on training (Adam's moments kept, lr reset).
Without a kernel the son is MATLAB's antialiased bicubic downscale (ZSSR's non-blind
default), written as its kernel (`filters.bicubic_kernel`) so one son operator serves both.

Presets: `paper` (the official `Config`), `given-kernel` (its X2_GIVEN_KERNEL_CONF: no
turns, no ensemble, 2 back-projections), `kernelgan` (KernelGAN's bundled copy:
augmentations and ensemble off, 2 back-projections, the L1 loss weighted by a gradient
map) and `tiny` (tests). Deviations: the reconstruction test runs after iterations 50,
100, ... (the official one after 1, 51, 101, ...); the sampling is Keys' cubic with
a = -0.75 evaluated exactly (OpenCV's INTER_CUBIC uses 5-bit weight tables).

Everything that trains is one jit-compiled step of an explicit state (augmentation,
son, loss, Adam with the policy's lr as an argument); the policy itself runs on the host
at each reconstruction test, in `ikejax.loop.fit_loop`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import struct

from ikejax import conv_grad, loop, ops, tiles
from ikejax.imaging import degrade, filters, kernels

PyTree = Any


@dataclasses.dataclass(frozen=True)
class ZSSRConfig:
  """ZSSR's settings (names as the official `configs.Config`)."""
  width: int = 64
  depth: int = 8
  crop: int = 128
  max_iters: int = 3000
  min_iters: int = 256
  lr: float = 1e-3
  min_lr: float = 9e-6
  lr_check_every: int = 60
  lr_slope_range: int = 256
  lr_change_ratio: float = 1.5
  test_every: int = 50
  init_variance: float = 0.1
  back_projection_iters: int = 10
  self_ensemble: bool = True              # `output_flip`
  leave_as_is_p: float = 0.05
  no_interp_p: float = 0.45
  min_scale: float = 0.5
  scale_diff_sigma: float = 0.25
  shear_sigma: float = 0.1
  allow_rotation: bool = True
  noise_std: float = 0.0
  grad_loss_map: bool = False             # KernelGAN's copy: L1 weighted by a gradient map
  gradual_x4: bool = True                 # x4 as x2 then x4 (KernelGAN's scale list)

  def replace(self, **kw) -> "ZSSRConfig":
    return dataclasses.replace(self, **kw)

  def validate(self) -> "ZSSRConfig":
    if self.depth < 2 or self.width < 1:
      raise ValueError(f"zssr needs depth >= 2 and width >= 1, got {self.depth}, {self.width}")
    if self.max_iters < 1 or self.test_every < 1 or self.lr_check_every < 1:
      raise ValueError("zssr max_iters, test_every and lr_check_every must be >= 1")
    if not 0.0 <= self.leave_as_is_p + self.no_interp_p <= 1.0:
      raise ValueError("zssr leave_as_is_p + no_interp_p must lie in [0, 1]")
    if self.lr_slope_range // self.test_every < 5:
      raise ValueError("zssr's lr policy fits a line with its error to lr_slope_range // "
                       "test_every >= 5 tests")
    if self.crop < 8:
      raise ValueError(f"zssr crop must be >= 8, got {self.crop}")
    return self


PRESETS = {
    "paper": ZSSRConfig(),
    "given-kernel": ZSSRConfig(self_ensemble=False, allow_rotation=False,
                               back_projection_iters=2),
    "kernelgan": ZSSRConfig(self_ensemble=False, back_projection_iters=2, leave_as_is_p=1.0,
                            no_interp_p=0.0, min_scale=0.0, scale_diff_sigma=0.0,
                            shear_sigma=0.0, allow_rotation=False, grad_loss_map=True),
    "tiny": ZSSRConfig(width=8, depth=3, crop=32, max_iters=40, min_iters=8,
                       lr_check_every=6, lr_slope_range=25, test_every=5,
                       back_projection_iters=2),
}


# ------------------------------------------------------------------------------
# The network.
# ------------------------------------------------------------------------------


class ZSSRNet(nn.Module):
  """`[N, H, W, 3] -> [N, H, W, 3]`: `x + convs(x)`, `x` the son's bicubic upscale."""
  width: int = 64
  depth: int = 8
  init_variance: float = 0.1
  fast_grad: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init = nn.initializers.variance_scaling(self.init_variance, "fan_in", "normal")
    h = x
    for i in range(self.depth):
      last = i == self.depth - 1
      # Layers reading 64 channels take the blocked filter gradient (`conv_grad`): XLA's
      # is slowest on them, the 64 -> RGB one included; the RGB -> 64 stem's is cheap.
      conv = ({"conv_general_dilated": conv_grad.conv_general_dilated}
              if self.fast_grad and i > 0 else {})
      h = nn.Conv(x.shape[-1] if last else self.width, (3, 3), padding="SAME",
                  use_bias=False, kernel_init=init, name=f"conv{i}", **conv)(h)
      if not last:
        h = nn.relu(h)
    return x + h


# ------------------------------------------------------------------------------
# Sons, upscales and back-projection.
# ------------------------------------------------------------------------------


def son_kernel(kernel: Optional[np.ndarray], sf: int) -> np.ndarray:
  """The `[k, k]` kernel that makes sons at `sf`: the given one with its centre of mass
  moved onto the grid (ZSSR's `kernel_shift`, padded first so no mass is lost), or
  MATLAB's bicubic downscale (already on the grid) when `kernel` is None."""
  if kernel is None:
    return filters.bicubic_kernel(sf, kernels.DEFAULT_SIZE[sf])
  k = degrade.kernel_shift(np.pad(np.asarray(kernel, np.float64), 2), sf)
  return k / k.sum()


def son_of(x: jax.Array, kernel: jax.Array, sf: int) -> jax.Array:
  """`[H, W, C] -> [ceil(H/sf), ceil(W/sf), C]`: ZSSR's `father_to_son` (no noise)."""
  return ops.correlate_subsample(x, kernel, sf)


def upscale(x: jax.Array, sf: int, shape: tuple[int, int]) -> jax.Array:
  """`[h, w, C] -> [H, W, C]`: MATLAB bicubic x`sf`, cut to `shape` (ZSSR's `imresize`
  given both the scale and the output shape)."""
  return ops.imresize(x, float(sf))[:shape[0], :shape[1]]


def back_projection(sr: jax.Array, lr: jax.Array, kernel: jax.Array, sf: int,
                    iters: int) -> jax.Array:
  """`iters` times `sr <- clip(sr + up(lr - down(sr)), 0, 1)` (ZSSR's `back_projection`).

  `sr` `[sH, sW, C]`, `lr` `[H, W, C]` in [0, 1]; down with the son kernel, up bicubic."""
  for _ in range(iters):
    sr = jnp.clip(sr + upscale(lr - son_of(sr, kernel, sf), sf, sr.shape[:2]), 0.0, 1.0)
  return sr


def grad_loss_map(im: np.ndarray, window: int = 5) -> np.ndarray:
  """`[H, W, 3] -> [H, W, 3]`: KernelGAN's copy's `create_loss_map`: the gray gradient
  magnitude summed over 5x5 windows, zero on a 3 px border, normalised to mean 1."""
  import scipy.signal
  gray = np.asarray(im, np.float64) @ np.asarray(ops.GRAY_WEIGHTS)
  gy, gx = np.gradient(gray)
  g = scipy.signal.convolve2d(np.hypot(gx, gy), np.ones((window, window)), "same")
  m = (window + window % 2) // 2
  out = np.zeros_like(g)
  out[m:-m, m:-m] = np.clip(g[m:-m, m:-m], 0.0, 255.0)
  out = out / max(out.sum() / out.size, 1e-12)
  return np.repeat(out[..., None], 3, -1)


# ------------------------------------------------------------------------------
# Augmentation: ZSSR's `random_augment` as a 3x3 transform and a bicubic warp.
# ------------------------------------------------------------------------------


def _keys_cubic(t: jax.Array, a: float = -0.75) -> jax.Array:
  t = jnp.abs(t)
  return jnp.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                   jnp.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


def warp(img: jax.Array, transform: jax.Array, size: int) -> jax.Array:
  """`[H, W, C] -> [size, size, C]`: `out(p) = img(transform^-1 p)` for pixel centres
  `p = (x, y, 1)`, bicubic, zero outside (OpenCV's `warpPerspective`, INTER_CUBIC,
  BORDER_CONSTANT)."""
  h, w = img.shape[:2]
  ys, xs = jnp.mgrid[0:size, 0:size].astype(jnp.float32)
  p = jnp.stack([xs.ravel(), ys.ravel(), jnp.ones(size * size)])
  q = jnp.linalg.inv(transform) @ p
  sx, sy = q[0] / q[2], q[1] / q[2]
  x0, y0 = jnp.floor(sx), jnp.floor(sy)
  out = 0.0
  for dy in range(-1, 3):
    yy = y0 + dy
    wy = _keys_cubic(sy - yy)
    for dx in range(-1, 3):
      xx = x0 + dx
      inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
      v = img[jnp.clip(yy, 0, h - 1).astype(jnp.int32), jnp.clip(xx, 0, w - 1).astype(jnp.int32)]
      out = out + (wy * _keys_cubic(sx - xx) * inside)[:, None] * v
  return out.reshape(size, size, img.shape[-1])


def _translate(tx, ty) -> jax.Array:
  return jnp.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def augment_transforms(key: jax.Array, shapes: Sequence[tuple[int, int]],
                       base_scales: Sequence[float], max_scale: float,
                       cfg: ZSSRConfig) -> tuple[jax.Array, list[jax.Array]]:
  """ZSSR's `random_augment` draws: which source, and for each source its 3x3 transform.

  Returns `(index, transforms)`: the chosen source (the smallest base scale above the
  drawn scale) and one transform per source (only the chosen one is used).
  """
  ks = jax.random.split(key, 9)
  u = jax.random.uniform(ks[0])
  leave = u < cfg.leave_as_is_p
  affine = u >= cfg.leave_as_is_p + cfg.no_interp_p
  drawn = jax.random.uniform(ks[1]) * (max_scale - cfg.min_scale) + cfg.min_scale
  scale = jnp.where(leave, 1.0, drawn)
  bases = jnp.asarray(base_scales, jnp.float32)
  index = jnp.argmax(bases > scale - 1e-6)
  diff = jnp.where(affine, jax.random.normal(ks[2]) * cfg.scale_diff_sigma, 0.0)
  reflect = 1.0 if not cfg.allow_rotation else jnp.where(
      leave, 1.0, jnp.sign(jax.random.normal(ks[3])))
  theta = jnp.where(affine, jax.random.uniform(ks[4]) * 2 * math.pi,
                    jnp.where(leave, 0.0, jax.random.randint(ks[5], (), 0, 4) * math.pi / 2))
  theta = theta if cfg.allow_rotation else 0.0
  shear = jnp.where(affine, jax.random.normal(ks[6], (2,)) * cfg.shear_sigma, 0.0)
  c, s = jnp.cos(theta), jnp.sin(theta)
  rot = jnp.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
  shear_m = jnp.array([[1.0, shear[0], 0.0], [shear[1], 1.0, 0.0], [0.0, 0.0, 1.0]])
  rx, ry = jax.random.uniform(ks[7]), jax.random.uniform(ks[8])
  out = []
  for (h, w), base in zip(shapes, base_scales):
    sc = jnp.where(affine, scale / base, 1.0)
    scale_m = jnp.diag(jnp.array([reflect * (sc + diff / 2), sc - diff / 2, 1.0]))
    centre = jnp.array([w / 2.0, h / 2.0])
    shift = jnp.stack([rx * jnp.clip(sc * w - cfg.crop, 0, 9999),
                       ry * jnp.clip(sc * h - cfg.crop, 0, 9999)])
    # Integer shifts keep the non-affine modes interpolation-free.
    centre = jnp.where(affine, centre, jnp.round(centre))
    shift = jnp.where(affine, shift, jnp.round(shift))
    out.append(_translate(*centre) @ _translate(*-shift) @ shear_m @ rot @ scale_m
               @ _translate(*-centre))
  return index, out


def augment(key: jax.Array, sources: Sequence[jax.Array], maps: Sequence[jax.Array],
            base_scales: Sequence[float], max_scale: float,
            cfg: ZSSRConfig) -> tuple[jax.Array, jax.Array]:
  """A father `[crop, crop, 3]` in [0, 1] and its loss-map crop, from ZSSR's augmentation
  of one of `sources` (`[H_i, W_i, 3]`; the input first, then gradual SR's outputs)."""
  index, ts = augment_transforms(key, [x.shape[:2] for x in sources], base_scales,
                                 max_scale, cfg)
  fathers = jnp.stack([jnp.clip(warp(x, t, cfg.crop), 0.0, 1.0) for x, t in zip(sources, ts)])
  if not cfg.grad_loss_map:
    return fathers[index], jnp.ones_like(fathers[0])
  lmaps = jnp.stack([warp(m, t, cfg.crop) for m, t in zip(maps, ts)])
  return fathers[index], lmaps[index]


# ------------------------------------------------------------------------------
# Training.
# ------------------------------------------------------------------------------


@struct.dataclass
class ZSSRState:
  params: PyTree
  opt_state: PyTree
  key: jax.Array
  step: jax.Array


def create_state(key: jax.Array, cfg: ZSSRConfig) -> ZSSRState:
  k_init, k_train = jax.random.split(key)
  net = ZSSRNet(cfg.width, cfg.depth, cfg.init_variance)
  params = net.init(k_init, jnp.zeros((1, 16, 16, 3)))["params"]
  return ZSSRState(params=params, opt_state=optax.scale_by_adam().init(params), key=k_train,
                   step=jnp.zeros((), jnp.int32))


def l1_loss(out: jax.Array, father: jax.Array, loss_map: jax.Array) -> jax.Array:
  """ZSSR's loss: `mean(|net(up(son)) - father| * map)` (map 1 but in KernelGAN's copy)."""
  return jnp.mean(jnp.abs(out - father) * loss_map)


def train_step(state: ZSSRState, sources: tuple, maps: tuple, kernel: jax.Array,
               lr: jax.Array, *, cfg: ZSSRConfig, sf: int, base_scales: tuple,
               max_scale: float) -> tuple[ZSSRState, dict]:
  """One ZSSR iteration: augment a father, make its son, one Adam step at `lr`."""
  net = ZSSRNet(cfg.width, cfg.depth, cfg.init_variance)
  k_aug, k_noise = jax.random.split(jax.random.fold_in(state.key, state.step))
  father, lmap = augment(k_aug, sources, maps, base_scales, max_scale, cfg)
  son = son_of(father, kernel, sf)
  son = jnp.clip(son + cfg.noise_std * jax.random.normal(k_noise, son.shape), 0.0, 1.0)
  inp = upscale(son, sf, father.shape[:2])[None]

  def loss_fn(params):
    return l1_loss(net.apply({"params": params}, inp)[0], father, lmap)

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  updates, opt_state = optax.scale_by_adam().update(grads, state.opt_state)
  params = optax.apply_updates(state.params, jax.tree_util.tree_map(lambda u: -lr * u, updates))
  return state.replace(params=params, opt_state=opt_state, step=state.step + 1), {"loss": loss}


@functools.partial(jax.jit, static_argnames=("cfg", "sf"))
def super_resolve_once(params: PyTree, lr01: jax.Array, *, cfg: ZSSRConfig, sf: int) -> jax.Array:
  """`[H, W, 3] -> [sf*H, sf*W, 3]`: `clip(net(up(lr)), 0, 1)` (ZSSR's `forward_pass`)."""
  net = ZSSRNet(cfg.width, cfg.depth, cfg.init_variance)
  up = ops.imresize(lr01, float(sf))
  return jnp.clip(net.apply({"params": params}, up[None])[0], 0.0, 1.0)


@functools.partial(jax.jit, static_argnames=("cfg", "sf"))
def reconstruction_mse(params: PyTree, lr01: jax.Array, kernel: jax.Array, *, cfg: ZSSRConfig,
                       sf: int) -> jax.Array:
  """ZSSR's test: the MSE of the input rebuilt from its own son (`quick_test`'s mse_rec)."""
  net = ZSSRNet(cfg.width, cfg.depth, cfg.init_variance)
  inp = upscale(son_of(lr01, kernel, sf), sf, lr01.shape[:2])
  rec = jnp.clip(net.apply({"params": params}, inp[None])[0], 0.0, 1.0)
  return jnp.mean(jnp.square(rec - lr01))


def lr_policy(iteration: int, lr: float, last_change: int, steps: Sequence[int],
              mse: Sequence[float], cfg: ZSSRConfig) -> tuple[float, int]:
  """ZSSR's `learning_rate_policy` after iteration `iteration` (0-based): `(lr, last_change)`.

  Every `lr_check_every` iterations, once more than `min_iters` have passed since the last
  change, a line is fitted to the last `lr_slope_range // test_every` reconstruction
  MSEs; when `-ratio * slope < std(slope)` (no significant descent) lr is divided by 10.
  """
  n = cfg.lr_slope_range // cfg.test_every
  if (iteration + 1) % cfg.lr_check_every or iteration - last_change <= cfg.min_iters:
    return lr, last_change
  if len(mse) < n:
    return lr, last_change
  (slope, _), cov = np.polyfit(np.asarray(steps[-n:], np.float64),
                               np.asarray(mse[-n:], np.float64), 1, cov=True)
  if -cfg.lr_change_ratio * slope < np.sqrt(cov[0, 0]):
    return lr / 10.0, iteration
  return lr, last_change


@dataclasses.dataclass
class Stage:
  """One jump of (gradual) ZSSR: the scale relative to the input and its son kernel."""
  sf: int
  kernel: np.ndarray


@dataclasses.dataclass
class ZSSRResult:
  sr01: np.ndarray                 # [sH, sW, 3] in [0, 1]
  params: PyTree
  history: list
  iterations: list                 # per stage, iterations run
  compile_seconds: float
  train_seconds: float
  inference_seconds: float


def final_sr(params: PyTree, lr01: np.ndarray, kernel: jax.Array, cfg: ZSSRConfig,
             sf: int, tile: Optional[int] = None) -> np.ndarray:
  """ZSSR's `final_test`: the (8-way) geometric self-ensemble, each output back-projected,
  their median, back-projected again. `[H, W, 3] -> [sf*H, sf*W, 3]` in [0, 1]; on
  overlapping tiles of side `tile` when given (`ikejax.tiles`)."""
  if tile:
    fn = lambda t: final_sr(params, t, kernel, cfg, sf)
    # float32, as the tiles are: a float64 copy of a large photo at x4 is GBs.
    return tiles.map_tiles(fn, np.asarray(lr01, np.float32), sf, tile)
  bp = jax.jit(back_projection, static_argnames=("sf", "iters"))
  x = jnp.asarray(lr01, jnp.float32)
  outs = []
  for k in range(8 if cfg.self_ensemble else 1):
    t = jnp.rot90(x, k) if k < 4 else jnp.fliplr(jnp.rot90(x, k))
    y = super_resolve_once(params, t, cfg=cfg, sf=sf)
    y = jnp.rot90(y, -k) if k < 4 else jnp.rot90(jnp.fliplr(y), -k)
    outs.append(np.asarray(bp(y, x, kernel, sf=sf, iters=cfg.back_projection_iters)))
  fused = jnp.asarray(np.median(np.stack(outs), 0) if len(outs) > 1 else outs[0])
  return np.asarray(bp(fused, x, kernel, sf=sf, iters=cfg.back_projection_iters), np.float64)


def fit(lr01: np.ndarray, stages: Sequence[Stage], cfg: ZSSRConfig, key: jax.Array, *,
        on_log: Optional[Callable[[int, dict], None]] = None,
        tile: Optional[int] = None) -> ZSSRResult:
  """ZSSR on one image: each stage trained (`loop.fit_loop`, stopped by the lr floor)
  and post-processed; a stage's output becomes a fathers' source for the next.

  Args:
    lr01: `[H, W, 3]` input in [0, 1].
    stages: the jumps (one, or x2 then x4 for gradual SR), kernels as given (`son_kernel`
      moves them onto the grid).
    on_log: `on_log(iterations done in all stages, metrics)` at each test.
    tile: each stage's final SR on overlapping tiles of this side (None: whole).
  """
  x = jnp.asarray(lr01, jnp.float32)
  state = create_state(key, cfg)
  sources, maps, bases = [x], [_loss_map(lr01, cfg)], [1.0]
  history, iters_run = [], []
  compile_s = train_s = infer_s = 0.0
  sr01 = None
  offset = 0
  for stage in stages:
    kernel = jnp.asarray(son_kernel(stage.kernel, stage.sf), jnp.float32)
    max_scale = ([1.0] + [float(s.sf) for s in stages])[len(sources) - 1]
    step = jax.jit(functools.partial(train_step, cfg=cfg, sf=stage.sf, base_scales=tuple(bases),
                                     max_scale=max_scale), donate_argnums=0)
    policy = {"lr": cfg.lr, "last": 0, "upto": -1, "steps": [], "mse": []}

    def advance(upto, policy=policy):
      """Applies the policy after each iteration up to `upto` not yet seen."""
      for i in range(policy["upto"] + 1, upto + 1):
        policy["lr"], policy["last"] = lr_policy(i, policy["lr"], policy["last"],
                                                 policy["steps"], policy["mse"], cfg)
      policy["upto"] = max(policy["upto"], upto)

    def measure(params, kernel=kernel, sf=stage.sf):
      return -10.0 * jnp.log10(reconstruction_mse(params, x, kernel, cfg=cfg, sf=sf))

    def on_stage_log(done, per_job, bad, policy=policy, offset=offset, sf=stage.sf):
      m = per_job[0]
      policy["steps"].append(done - 1)
      policy["mse"].append(10.0 ** (-m["val_psnr"] / 10.0))
      m.update(lr=policy["lr"], stage_sf=sf)
      if on_log is not None:
        on_log(offset + done, m)

    def args(it, policy=policy, kernel=kernel):
      advance(it - 1)
      return tuple(sources), tuple(maps), kernel, jnp.float32(policy["lr"])

    def stop(done, policy=policy):
      advance(done - 1)
      return policy["lr"] < cfg.min_lr

    res = loop.fit_loop(
        step, state, args, iters=cfg.max_iters, log_every=cfg.test_every,
        validation=loop.Validation(measure=measure, every=cfg.test_every, held_out=[False],
                                   keep_best=False, params=lambda s: s.params,
                                   set_params=lambda s, p: s.replace(params=p)),
        on_log=on_stage_log, stop=stop)
    state = res.state
    history += [{**h, "iteration": h["iteration"] + offset} for h in res.histories[0]]
    offset += res.iterations
    iters_run.append(res.iterations)
    compile_s += res.compile_seconds
    train_s += res.train_seconds
    t0 = time.perf_counter()
    sr01 = final_sr(state.params, lr01, kernel, cfg, stage.sf, tile)
    infer_s += time.perf_counter() - t0
    sources.append(jnp.asarray(sr01, jnp.float32))
    maps.append(_loss_map(sr01, cfg))
    bases.append(float(stage.sf))
  return ZSSRResult(sr01=sr01, params=state.params, history=history, iterations=iters_run,
                    compile_seconds=compile_s, train_seconds=train_s, inference_seconds=infer_s)


def _loss_map(im01: np.ndarray, cfg: ZSSRConfig) -> jax.Array:
  im = np.asarray(im01, np.float64)
  return jnp.asarray(grad_loss_map(im) if cfg.grad_loss_map else np.ones_like(im), jnp.float32)
