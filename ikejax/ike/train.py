"""Training: the state pytree, one jit-compiled IKE iteration, and the fit loop.

One iteration (official `train.py` loop; paper "encoding / decoding phases")
runs four optimizer updates inside one compiled function:
  1. encode: flow step on  L_CSR^fwd + lambda_energy L_energy + lambda_bic L_bic
             (+ lambda_kernel L_kernel, beyond the paper)
  2. PD1:    discriminator on real LR crops vs X_LLR (detached)
  3. decode: flow + U step on  lambda_bwd L_CSR^bwd + lambda_TV L_TV + lambda_inter L_inter
             (+ lambda_rec L_rec on a son/father pair, beyond the paper; U only when
             `decode_trains_flow` is off)
  4. PD2:    discriminator on the LR crop vs the s x s tiles of X_SR (detached);
             skipped when lambda_bwd is 0
Every update is Adam (optax `scale_by_adam`) times a learning rate that is a
pure function of the iteration, as are the loss weights (`IKEConfig`
schedules). The flow has one Adam state, stepped twice per iteration, as the
official code steps `optimizer_G` in both phases.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from ikejax import loop, ops, patches
from ikejax.ike import losses, validation
from ikejax.ike.configs import IKEConfig
from ikejax.ike.model import IKEModel, build_model, init_variables, probe_side
from ikejax.loop import run_once

PyTree = Any

# The discriminator needs a 7x7 patch of the (s times smaller) LLR crop.
D_MIN_INPUT = 7


class IKEState(struct.PyTreeNode):
  """Everything that changes during training, as one pytree.

  Attributes:
    step: iteration counter (int32 scalar).
    flow, up: parameters of the flow and of U.
    d_lr, d_hr: variables (`params`, `batch_stats`) of PD1 and PD2.
    opt: Adam states keyed like the networks (`flow`, `up`, `d_lr`, `d_hr`).
    ema: exponential moving averages of `flow` and `up` (`cfg.ema_decay`;
      equal to them when it is 0), the parameters inference uses.
    bad_step: first iteration whose losses were not finite, or -1.
  """
  step: jax.Array
  flow: PyTree
  up: PyTree
  d_lr: PyTree
  d_hr: PyTree
  opt: dict
  ema: dict
  bad_step: jax.Array


def _adam(cfg: IKEConfig) -> optax.GradientTransformation:
  return optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=1e-8)


def init_state(key: jax.Array, cfg: IKEConfig) -> IKEState:
  """Initial state for crops of `cfg.crop` (PRNG key -> all four networks); traceable."""
  model = build_model(cfg)
  v = init_variables(model, key, cfg.crop)
  tx = _adam(cfg)
  opt = {"flow": tx.init(v["flow"]), "up": tx.init(v["up"]),
         "d_lr": tx.init(v["d_lr"]["params"]), "d_hr": tx.init(v["d_hr"]["params"])}
  return IKEState(step=jnp.zeros((), jnp.int32), flow=v["flow"], up=v["up"],
                  d_lr=v["d_lr"], d_hr=v["d_hr"], opt=opt,
                  ema={"flow": v["flow"], "up": v["up"]}, bad_step=jnp.full((), -1, jnp.int32))


def create_state(key: jax.Array, cfg: IKEConfig) -> IKEState:
  """`init_state` as one program compiled once per config (`run_once`)."""
  return run_once(init_state, key, cfg=cfg)


def _apply_adam(tx, params, grads, opt_state, lr):
  updates, opt_state = tx.update(grads, opt_state, params)
  params = jax.tree_util.tree_map(lambda p, u: p - lr * u, params, updates)
  return params, opt_state


def _tiles(x: jax.Array, s: int) -> list[jax.Array]:
  """The `s*s` non-overlapping `[H/s, W/s, C]` tiles of `[H, W, C]`."""
  h, w = x.shape[0] // s, x.shape[1] // s
  return [x[i * h:(i + 1) * h, j * w:(j + 1) * w] for i in range(s) for j in range(s)]


def dihedral(key: jax.Array, x: jax.Array) -> jax.Array:
  """One of the 8 flips / 90-degree turns of a square `[H, H, C]` crop, drawn by `key`."""
  def turn(k):
    return lambda v: jnp.rot90(v, k, axes=(0, 1))
  branches = [turn(k) for k in range(4)] + [lambda v, k=k: turn(k)(v[:, ::-1]) for k in range(4)]
  return jax.lax.switch(jax.random.randint(key, (), 0, 8), branches, x)


def train_step(state: IKEState, image: jax.Array, p_g: jax.Array, p_d: jax.Array,
               key: jax.Array, son_kernel: Optional[jax.Array] = None, *, cfg: IKEConfig,
               model: Optional[IKEModel] = None) -> tuple[IKEState, dict]:
  """One IKE iteration (the four updates above) on crops of one image.

  Args:
    state: current state.
    image: `[H, W, 3]` LR image in [-1, 1].
    p_g, p_d: centre samplers of the G and D crops (`patches.crop_samplers`;
      raw `[H, W]` maps work too, at the cost of rebuilding the CDF each step).
    key: the run's PRNG key; folded with `state.step`, so the same key is
      passed at every iteration.
    son_kernel: a known `[k, k]` degradation kernel (operator window, odd k), or
      None. Given, the sons are made with it (`ops.correlate_subsample`) and the encode
      phase and PD1 are skipped: there is no degradation left to learn (the
      non-blind mode, `cfg.lambda_rec > 0`).
    cfg: config (static); `cfg.crop` must fit the image.
    model: built from `cfg` when not given.

  Returns:
    The new state and a dict of scalar metrics (losses and weights).
  """
  model = model or build_model(cfg)
  s, g_crop = cfg.scale, cfg.crop
  tx = _adam(cfg)
  key = jax.random.fold_in(key, state.step)
  k_crop, k_fake, k_real, k_aug = jax.random.split(key, 4)
  g_in, d_in = patches.sample_crops(k_crop, image, p_g, p_d, g_crop, g_crop // s, align=s)

  t = state.step
  lr = cfg.lr_schedule()(t)
  lam_energy = cfg.lambda_energy_schedule()(t)
  lam_bic = cfg.lambda_bicubic_schedule()(t)
  down = model.down(g_in)           # X_bic_down of the crop.
  bic_up = model.up_bicubic(g_in)   # X_bic_up of the crop.

  # 1. Encode phase: the flow's forward pass against PD1.
  def encode_loss(flow_params):
    llr, _ = model.encode(flow_params, g_in)
    d_map, _ = model.discriminate("lr", state.d_lr, llr, update_stats=False)
    l_fwd = losses.gan_loss(d_map, real=True)
    l_energy = losses.energy_loss(g_in, llr, down, kind=cfg.energy_kind, scale=s)
    l_bic = losses.bicubic_warmup_loss(g_in, llr, down, kind=cfg.warmup_kind, scale=s)
    l_kernel = jnp.zeros((), jnp.float32)
    if cfg.lambda_kernel > 0:
      l_kernel = losses.kernel_prior_loss(
          model.downscale_kernel(flow_params, probe_side(cfg)), s)
    total = l_fwd + lam_energy * l_energy + lam_bic * l_bic + cfg.lambda_kernel * l_kernel
    return total, {"csr_fwd": l_fwd, "energy": l_energy, "bicubic": l_bic,
                   "kernel": l_kernel, "encode": total}

  def d_lr_loss(params, real, fake):
    # One batched call judges both crops, each with its own BatchNorm statistics.
    maps, stats = model.discriminate(
        "lr", {"params": params, "batch_stats": state.d_lr["batch_stats"]},
        jnp.stack([real, fake]), True)
    return 0.5 * (losses.gan_loss(maps[0], True) + losses.gan_loss(maps[1], False)), stats

  flow, opt_flow, d_lr, opt_dlr = state.flow, state.opt["flow"], state.d_lr, state.opt["d_lr"]
  if son_kernel is None:
    (_, m_enc), grads = jax.value_and_grad(encode_loss, has_aux=True)(state.flow)
    flow, opt_flow = _apply_adam(tx, state.flow, grads, state.opt["flow"], lr)

    # 2. PD1: real LR crops vs X_LLR of the updated flow (official `train_d`).
    llr, z = jax.lax.stop_gradient(model.encode(flow, g_in))
    fake = llr + cfg.d_fake_noise * jax.random.normal(k_fake, llr.shape)
    real = d_in + cfg.d_real_noise * jax.random.normal(k_real, d_in.shape)
    (l_dlr, stats), grads = jax.value_and_grad(d_lr_loss, has_aux=True)(
        state.d_lr["params"], real, fake)
    p_dlr, opt_dlr = _apply_adam(tx, state.d_lr["params"], grads, state.opt["d_lr"], lr)
    d_lr = {"params": p_dlr, "batch_stats": stats}
  else:
    zero = jnp.zeros((), jnp.float32)
    m_enc = {k: zero for k in ("csr_fwd", "energy", "bicubic", "kernel", "encode")}
    l_dlr = zero
    z = jax.lax.stop_gradient(model.encode(flow, g_in)[1])

  # 3. Decode phase: U and the flow's inverse pass (Z detached), against PD2 and the
  # priors on the LR crop's X_SR (paper), and/or on the son/father pair (lambda_rec).
  def upscale(flow_params, up_params, x, z_x):
    u_in = x if cfg.u_input == "image" else z_x
    return model.decode(flow_params, x, model.upscale_z(up_params, u_in))

  on_lr_crop = cfg.lambda_csr_bwd > 0 or cfg.lambda_tv > 0 or cfg.lambda_inter > 0
  if cfg.lambda_rec > 0:
    father = dihedral(k_aug, g_in) if cfg.augment else g_in
    if son_kernel is None:
      son = jax.lax.stop_gradient(model.encode(flow, father)[0])
    else:
      son = ops.correlate_subsample(father, son_kernel, s)
    z_son = None
    if cfg.u_input == "z":
      z_son = jax.lax.stop_gradient(model.encode(flow, son)[1])

  def decode_loss(trainable):
    flow_params, up_params = trainable
    if not cfg.decode_trains_flow:
      flow_params = jax.lax.stop_gradient(flow_params)
    zero = jnp.zeros((), jnp.float32)
    l_bwd = l_inter = l_tv = l_rec = zero
    if on_lr_crop:
      sr = upscale(flow_params, up_params, g_in, z)
      d_map, _ = model.discriminate("hr", state.d_hr, sr, update_stats=False)
      l_bwd = losses.gan_loss(d_map, real=True)
      l_inter = losses.interpolation_loss(sr, bic_up)
      l_tv = losses.tv_loss(sr, cfg.tv_kind)
    if cfg.lambda_rec > 0:
      l_rec = losses.reconstruction_loss(upscale(flow_params, up_params, son, z_son), father)
    total = (cfg.lambda_csr_bwd * l_bwd + cfg.lambda_tv * l_tv + cfg.lambda_inter * l_inter
             + cfg.lambda_rec * l_rec)
    return total, {"csr_bwd": l_bwd, "inter": l_inter, "tv": l_tv, "rec": l_rec,
                   "decode": total}

  (_, m_dec), (g_flow, g_up) = jax.value_and_grad(decode_loss, has_aux=True)((flow, state.up))
  if cfg.decode_trains_flow:
    flow, opt_flow = _apply_adam(tx, flow, g_flow, opt_flow, lr)
  up, opt_up = _apply_adam(tx, state.up, g_up, state.opt["up"], lr)

  # 4. PD2: the LR crop (real) vs the s x s crop-sized tiles of X_SR (fake); skipped
  # when L_CSR^bwd has no weight (PD2 then judges nothing that trains).
  d_hr, opt_dhr, l_dhr = state.d_hr, state.opt["d_hr"], jnp.zeros((), jnp.float32)
  if cfg.lambda_csr_bwd > 0:
    sr = jax.lax.stop_gradient(upscale(flow, up, g_in, z))

    def d_hr_loss(params):
      maps, stats = model.discriminate(
          "hr", {"params": params, "batch_stats": state.d_hr["batch_stats"]},
          jnp.stack([g_in, *_tiles(sr, s)]), True)
      # Mean over the equally sized tiles of each tile's mean loss.
      return 0.5 * (losses.gan_loss(maps[0], True) + losses.gan_loss(maps[1:], False)), stats

    (l_dhr, stats), grads = jax.value_and_grad(d_hr_loss, has_aux=True)(state.d_hr["params"])
    # PD2's learning rate never decays (official learner.py).
    p_dhr, opt_dhr = _apply_adam(tx, state.d_hr["params"], grads, state.opt["d_hr"], cfg.lr)
    d_hr = {"params": p_dhr, "batch_stats": stats}

  ema = {"flow": flow, "up": up}
  if cfg.ema_decay > 0:
    ema = optax.incremental_update(ema, state.ema, 1.0 - cfg.ema_decay)

  metrics = {**m_enc, **m_dec, "d_lr": l_dlr, "d_hr": l_dhr,
             "lambda_energy": lam_energy, "lambda_bicubic": lam_bic, "lr": lr}
  finite = jnp.all(jnp.stack([jnp.isfinite(v) for k, v in metrics.items()]))
  bad_step = jnp.where((state.bad_step < 0) & ~finite, state.step, state.bad_step)
  new_state = state.replace(
      step=state.step + 1, flow=flow, up=up, d_lr=d_lr, d_hr=d_hr,
      opt={"flow": opt_flow, "up": opt_up, "d_lr": opt_dlr, "d_hr": opt_dhr},
      ema=ema, bad_step=bad_step)
  return new_state, metrics


# Fields only the fit loop reads (validation): runs that differ in them share a compiled step.
LOOP_FIELDS = ("val_crops", "val_crop", "val_every", "keep_best", "restarts",
               "stuck_gain_db", "log_every")


def step_config(cfg: IKEConfig) -> IKEConfig:
  """`cfg` with the fit loop's own fields at their defaults: what the step depends on."""
  return cfg.replace(**{f: getattr(IKEConfig, f) for f in LOOP_FIELDS})


@functools.lru_cache(maxsize=8)
def make_train_step(cfg: IKEConfig) -> Callable:
  """`train_step` jit-compiled for `cfg`, donating the state buffers.

  Cached per config, so fits of the same config and image size in one process
  (seeds, ablation scripts, tests) compile once.
  """
  fn = functools.partial(train_step, cfg=cfg, model=build_model(cfg))
  return jax.jit(fn, donate_argnums=0)


def crop_multiple(cfg: IKEConfig) -> int:
  """What a crop's side must be a multiple of: `s` for the squeeze levels, and `s * s` when
  the decoder also trains on sons (`lambda_rec`), whose side (crop / s) is squeezed too."""
  return cfg.scale * cfg.scale if cfg.lambda_rec > 0 else cfg.scale


def adapt_crop(cfg: IKEConfig, height: int, width: int) -> tuple[IKEConfig, Optional[str]]:
  """Fits the G crop to the image; refuses images below the true minimum.

  The crop must be a multiple of `crop_multiple(cfg)` and its LLR (crop / s) at least the
  discriminator's 7x7 receptive field: every side of the image must be at least `7 * s`
  pixels, rounded up to that multiple.

  Returns:
    The config with `crop` set, and a warning string when it was shrunk.

  Raises:
    ValueError: if the image is below the minimum for the scale.
  """
  s, m = cfg.scale, crop_multiple(cfg)
  minimum = -(-D_MIN_INPUT * s // m) * m
  if min(height, width) < minimum:
    raise ValueError(
        f"image is {width}x{height} px but x{s} needs at least {minimum}x{minimum} "
        f"(the discriminator needs a {D_MIN_INPUT}x{D_MIN_INPUT} patch of the x{s}-downscaled "
        "crop" + (f", and the crop a multiple of {m} px" if m != s else "") + ")")
  crop = (min(cfg.crop, height, width) // m) * m
  warning = None
  if crop < (cfg.crop // m) * m:
    warning = (f"image is {width}x{height} px, smaller than the {cfg.crop} px training crop: "
               f"using {crop} px crops")
  return cfg.replace(crop=crop), warning


@dataclasses.dataclass
class FitResult:
  """Outcome of `fit`: final state, logged metrics, validation and timings.

  `validation` (None without validation crops): the returned attempt's `curve`
  [[iteration, dB], ...], `initial_db`, `best_db`, `best_iteration`, `held_out`, `kept`
  ('best' or 'last'), and `attempts` (initial, best dB and iteration of every attempt).
  """
  state: IKEState
  history: list[dict]
  compile_seconds: float
  train_seconds: float
  validation: Optional[dict] = None


@functools.lru_cache(maxsize=8)
def make_validate(cfg: IKEConfig) -> Callable:
  """`validation.reconstruction_psnr` jit-compiled for `cfg`: `(params, vset, kernel) -> dB`."""
  return jax.jit(functools.partial(validation.reconstruction_psnr, cfg=cfg,
                                   model=build_model(cfg)))


def training_maps(image: np.ndarray, cfg: IKEConfig):
  """`[H, W, 3]` in [-1, 1] -> `(p_g, p_d, vset)`: the crop samplers with the held-out
  validation crops removed (`validation.prepare`), and the validation set or None."""
  img01 = (np.asarray(image, np.float64) + 1.0) / 2.0
  p_g, p_d = patches.crop_probability_maps(img01, cfg.crop, cfg.crop // cfg.scale, cfg.scale,
                                          cfg.crop_map)
  vset, p_g, p_d = validation.prepare(np.asarray(image, np.float32), p_g, p_d, cfg)
  return patches.centre_sampler(p_g), patches.centre_sampler(p_d), vset


def fit(image: np.ndarray, cfg: IKEConfig, key: jax.Array, *,
        on_log: Optional[Callable[[int, dict], None]] = None,
        on_compiled: Optional[Callable[[float], None]] = None,
        state: Optional[IKEState] = None,
        son_kernel: Optional[np.ndarray] = None) -> FitResult:
  """Trains IKE on one image for `cfg.iters` iterations.

  With validation crops (`cfg.val_crops`), the decoder's reconstruction of held-out
  crops is measured every `cfg.val_every` iterations (`ikejax.ike.validation`), and
  `cfg.keep_best` puts the best validated parameters in the returned `state.ema`. A
  run that gained less than `cfg.stuck_gain_db` is run again (`cfg.restarts` times at
  most) with its key folded with the attempt number; the attempt that validates best
  is returned.

  Args:
    image: `[H, W, 3]` float image in [-1, 1] (`image_io.to_model_range`).
    cfg: config whose `crop` fits the image (see `adapt_crop`).
    key: PRNG key of the run; split into an init key and a step key.
    on_log: called as `on_log(iteration, metrics)` every `cfg.log_every`
      iterations and at the end, with host floats (the only host syncs).
    on_compiled: called with the compile time once the step is compiled.
    state: resume from this state instead of a fresh one.
    son_kernel: a known degradation kernel: the non-blind mode (`train_step`).

  Returns:
    A `FitResult`.

  Raises:
    loop.NonFiniteLossError: if a loss became NaN or inf (names the iteration).
  """
  p_g, p_d, vset = training_maps(image, cfg)
  image = jnp.asarray(image, jnp.float32)
  if son_kernel is not None:
    son_kernel = jnp.asarray(son_kernel, jnp.float32)
  best, tried, seconds = None, [], [0.0, 0.0]
  for attempt in range(cfg.restarts + 1):
    run_key = key if attempt == 0 else jax.random.fold_in(key, attempt)
    res = _fit_once(image, p_g, p_d, vset, cfg, run_key, on_log, on_compiled,
                    state if attempt == 0 else None, son_kernel)
    if res.validation is None:
      return res
    tried.append(res.validation)
    seconds = [seconds[0] + res.compile_seconds, seconds[1] + res.train_seconds]
    if best is None or res.validation["best_db"] > best.validation["best_db"]:
      best = res
    if not validation.stuck(best.validation["initial_db"], best.validation["best_db"], cfg):
      break
  best.validation = {**best.validation, "attempts": [
      {k: v[k] for k in ("initial_db", "best_db", "best_iteration")} for v in tried]}
  best.compile_seconds, best.train_seconds = seconds  # every attempt's time
  return best


def _fit_once(image, p_g, p_d, vset, cfg, key, on_log, on_compiled, state, son_kernel
              ) -> FitResult:
  """One attempt of `fit`: `cfg.iters` iterations from `state` or a fresh init of `key`."""
  k_init, k_step = jax.random.split(key)
  if state is None:
    state = create_state(k_init, cfg)
  step_cfg = step_config(cfg)
  val = None
  if vset is not None:
    validate = make_validate(cfg)
    val = loop.Validation(measure=lambda params: validate(params, vset, son_kernel),
                          every=cfg.val_every, held_out=[bool(vset.held_out)],
                          keep_best=cfg.keep_best)
  res = loop.fit_loop(
      make_train_step(step_cfg), state, (image, p_g, p_d, k_step, son_kernel),
      iters=cfg.iters, log_every=cfg.log_every, start=int(state.step), compile_key=step_cfg,
      bad_steps=lambda st: st.bad_step, validation=val, on_compiled=on_compiled,
      on_log=None if on_log is None else lambda done, per_job, _: on_log(done, per_job[0]))
  return FitResult(state=res.state, history=res.histories[0],
                   compile_seconds=res.compile_seconds, train_seconds=res.train_seconds,
                   validation=None if res.validations is None else res.validations[0])
