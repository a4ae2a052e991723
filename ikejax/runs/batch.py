"""Many zero-shot jobs in one compiled program, sharded over a device mesh.

Each image keeps its own networks, Adam states and PRNG stream: the state is
`train.IKEState` with a leading image axis `[B, ...]`. One compiled step
advances all B jobs by one IKE iteration:

  shard_map over the mesh axis `images` (B / D images per device)
    -> vmap over the images of a device
      -> `train.train_step` of one image, masked (`_masked_step`).

Why this layout, per backend (measured in docs/benchmarks.md, "Batched runs"):
  * GPU/TPU: several images per device, vmapped.
  * CPU: vmapping per-image weights turns every convolution into a grouped
    one, which XLA:CPU runs ~2x slower per image, and `lax.map` over the images
    ran ~7x slower than the same step outside a loop. Splitting the host into
    one XLA device per image (`use_cpu_devices`) keeps one image per device:
    the vmap is over one image, the convolutions stay dense, and the devices
    run concurrently (B = 2 is 1.26x faster per image than one image at a
    time on 2 cores).

Images of different sizes batch together: crops are fixed-size, so every image
is zero-padded to the largest and its crop samplers padded so that they draw
exactly the crops of the unpadded image (`pad_sampler`). Image i of a batch
follows the same trajectory as `train.fit` on that image with the same key.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ikejax import loop, patches
from ikejax.ike import train, validation
from ikejax.ike.configs import IKEConfig
from ikejax.ike.model import build_model

AXIS = "images"


def use_cpu_devices(n: int) -> bool:
  """Splits the host CPU into `n` XLA devices (one per image of a batch).

  Must run before JAX initialises its backends; it then only affects the CPU
  platform (GPUs and TPUs stay as they are). Returns False, changing
  nothing, when the backends are already up.
  """
  try:
    jax.config.update("jax_num_cpu_devices", max(1, int(n)))
  except RuntimeError:
    return False
  return True


def default_batch_size(devices: Optional[Sequence[jax.Device]] = None) -> int:
  """Images per compiled step when the user sets none: one per local accelerator (a
  batch then fills every GPU/TPU of the host), 1 on CPU (its devices are one host's cores:
  splitting them buys nothing for one image at a time)."""
  devices = jax.local_devices() if devices is None else list(devices)
  return 1 if devices[0].platform == "cpu" else len(devices)


def pad_image(x: np.ndarray, height: int, width: int) -> np.ndarray:
  """Zero-pads `[h, w, C]` at the bottom/right to `[height, width, C]`."""
  return np.pad(x, ((0, height - x.shape[0]), (0, width - x.shape[1]), (0, 0)))


def pad_sampler(sampler: patches.CentreSampler, height: int,
                width: int) -> patches.CentreSampler:
  """The sampler of the centre map zero-padded to `[height, width]`.

  Padded rows and columns carry no mass, so their cumulative values are 1 and
  `sample_top_left` never counts them: the same uniforms give the same
  centres, and (as every centre keeps its crop inside the original image) the
  same crops.
  """
  h, w = sampler.cols.shape
  rows = jnp.pad(sampler.rows, (0, height - h), constant_values=1.0)
  cols = jnp.pad(sampler.cols, ((0, height - h), (0, width - w)), constant_values=1.0)
  return patches.CentreSampler(rows=rows, cols=cols)


def stack(trees: Sequence) -> object:
  """`[tree, ...] -> tree` of arrays with a leading axis."""
  return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)


def take(tree, i: int):
  """Entry `i` of every leaf of a stacked tree."""
  return jax.tree_util.tree_map(lambda a: a[i], tree)


def _masked_step(state: train.IKEState, image, p_g, p_d, key, active, son_kernel, *, cfg,
                 model):
  """`train.train_step`, keeping the last finite state of a job that failed.

  A job whose losses became NaN/inf (or a padding slot, `active` False) keeps
  its previous networks; `bad_step` records the failing iteration. Jobs never
  share values, so one failure cannot reach the others.
  """
  new, metrics = train.train_step(state, image, p_g, p_d, key, son_kernel, cfg=cfg, model=model)
  ok = active & (new.bad_step < 0)
  kept = jax.tree_util.tree_map(lambda n, o: jnp.where(ok, n, o), new, state)
  return kept.replace(step=new.step, bad_step=new.bad_step), metrics


def make_mesh(devices: Sequence[jax.Device]) -> Mesh:
  """A one-axis mesh (`images`) over `devices`."""
  return Mesh(np.asarray(devices), (AXIS,))


@functools.lru_cache(maxsize=None)
def make_batched_step(cfg: IKEConfig, mesh: Mesh) -> Callable:
  """The compiled step of a batch: `(state, images, p_g, p_d, keys, active, son_kernels)
  -> (state, metrics)` (`son_kernels`: `[B, k, k]` or None, `train.train_step`).

  Every argument and output has a leading image axis `B` (a multiple of the
  mesh size), sharded over the mesh. The state's buffers are donated.
  """
  step = functools.partial(_masked_step, cfg=cfg, model=build_model(cfg))
  spec = P(AXIS)
  fn = jax.shard_map(jax.vmap(step), mesh=mesh, in_specs=spec, out_specs=spec)
  return jax.jit(fn, donate_argnums=0)


@functools.lru_cache(maxsize=None)
def make_batched_validate(cfg: IKEConfig, mesh: Mesh) -> Callable:
  """`(params, vsets, son_kernels) -> [B]` validation PSNRs (`validation.reconstruction_psnr`)."""
  fn = functools.partial(validation.reconstruction_psnr, cfg=cfg, model=build_model(cfg))
  spec = P(AXIS)
  return jax.jit(jax.shard_map(jax.vmap(fn), mesh=mesh, in_specs=spec, out_specs=spec))


def init_states(keys: jax.Array, *, cfg: IKEConfig) -> train.IKEState:
  """`[B]` keys -> the `[B, ...]` stacked `train.init_state` of each key; traceable."""
  return jax.vmap(lambda k: train.init_state(k, cfg))(keys)


@dataclasses.dataclass
class BatchInputs:
  """Device-ready inputs of one batch (leading axis B, padding slots included).

  Attributes:
    images: `[B, H, W, 3]` images padded to the largest.
    p_g, p_d: stacked, padded `CentreSampler`s.
    init_keys, step_keys: `[B]` PRNG keys (`train.fit`'s split of each key).
    active: `[B]` bool, False on padding slots.
    son_kernels: `[B, k, k]` kernels the sons are made with, or None.
    vsets: stacked `validation.ValidationSet`s, or None (`cfg.val_crops` 0).
  """
  images: jax.Array
  p_g: patches.CentreSampler
  p_d: patches.CentreSampler
  init_keys: jax.Array
  step_keys: jax.Array
  active: jax.Array
  son_kernels: Optional[jax.Array] = None
  vsets: Optional[validation.ValidationSet] = None


def prepare(images: Sequence[np.ndarray], cfg: IKEConfig, keys: Sequence[jax.Array],
            slots: int, pad_to: Optional[tuple[int, int]] = None,
            son_kernels: Optional[Sequence[np.ndarray]] = None) -> BatchInputs:
  """Pads and stacks the jobs' inputs to `slots` entries (repeating job 0, inactive).

  Args:
    images: `[h_i, w_i, 3]` images in [-1, 1], each fitting `cfg.crop`.
    cfg: the shared config.
    keys: one PRNG key per image (as given to `train.fit`).
    slots: batch size after padding, `>= len(images)`.
    pad_to: `(H, W)` to pad to (default: the largest image); one size for
      all batches of a run means one compile.
    son_kernels: one `[k, k]` kernel per image (same k), or None.
  """
  n = len(images)
  height = max([x.shape[0] for x in images] + [pad_to[0] if pad_to else 0])
  width = max([x.shape[1] for x in images] + [pad_to[1] if pad_to else 0])
  xs, pgs, pds, vsets = [], [], [], []
  for x in images:
    p_g, p_d, vset = train.training_maps(x, cfg)
    xs.append(pad_image(np.asarray(x, np.float32), height, width))
    pgs.append(pad_sampler(p_g, height, width))
    pds.append(pad_sampler(p_d, height, width))
    vsets.append(vset)
  order = list(range(n)) + [0] * (slots - n)
  split = [jax.random.split(keys[i]) for i in order]
  return BatchInputs(
      images=jnp.asarray(np.stack([xs[i] for i in order])),
      p_g=stack([pgs[i] for i in order]), p_d=stack([pds[i] for i in order]),
      init_keys=jnp.stack([k[0] for k in split]), step_keys=jnp.stack([k[1] for k in split]),
      active=jnp.asarray([i < n for i in range(slots)]),
      son_kernels=None if son_kernels is None else jnp.asarray(
          np.stack([son_kernels[i] for i in order]), jnp.float32),
      vsets=None if vsets[0] is None else stack([vsets[i] for i in order]))


@dataclasses.dataclass
class BatchResult:
  """Outcome of `fit_batch` (padding slots removed).

  Attributes:
    state: the batched final state (leading axis: slots; use `take(state, i)`).
    histories: per image, the logged metrics (as `train.fit`'s history).
    bad_steps: per image, the first non-finite iteration, or -1.
    iterations: iterations run by this call (fewer than `cfg.iters` when resumed).
    compile_seconds, train_seconds: wall times of the batch (restarts included).
    validations: per image, `train.FitResult.validation` (None without validation).
  """
  state: train.IKEState
  histories: list[list[dict]]
  bad_steps: list[int]
  iterations: int
  compile_seconds: float
  train_seconds: float
  validations: Optional[list] = None


def slots_for(n: int, devices: Sequence[jax.Device]) -> tuple[int, list[jax.Device]]:
  """Batch slots and devices for `n` jobs: `min(n, D)` devices, slots a multiple of them."""
  used = list(devices)[:max(1, min(n, len(devices)))]
  return -(-n // len(used)) * len(used), used


def _fit_batch_once(images: Sequence[np.ndarray], cfg: IKEConfig, keys: Sequence[jax.Array], *,
                    devices: Optional[Sequence[jax.Device]] = None,
                    pad_to: Optional[tuple[int, int]] = None,
                    state: Optional[train.IKEState] = None,
                    histories: Optional[list[list[dict]]] = None,
                    on_log: Optional[Callable[[int, list[dict], list[int]], None]] = None,
                    on_compiled: Optional[Callable[[float], None]] = None,
                    checkpoint_every: int = 0,
                    on_checkpoint: Optional[Callable[[int, train.IKEState, list], None]] = None,
                    son_kernels: Optional[Sequence[np.ndarray]] = None) -> BatchResult:
  """One attempt of `fit_batch`: every image `cfg.iters` iterations, validated.

  Args:
    images: `[h_i, w_i, 3]` images in [-1, 1]; all must fit `cfg.crop`
      (`train.adapt_crop` gives every image the same crop unless it is small).
    cfg: shared config.
    keys: one PRNG key per image; image i then follows `train.fit(images[i],
      cfg, keys[i])` (same crops, noise and init).
    devices: where to shard (default: this process's devices).
    pad_to: pad the images to this `(H, W)` (see `prepare`).
    state: resume from this batched state (host or device arrays, as saved
      by `on_checkpoint`); `histories` resumes the logs.
    on_log: `on_log(iteration, metrics, bad_steps)` every `cfg.log_every`
      iterations and at the end: per image, a dict of host floats, and the
      first non-finite iteration or -1 (the only host syncs).
    on_compiled: called with the compile time.
    checkpoint_every: call `on_checkpoint(iteration, state, histories)` every
      this many iterations (0: never).
    son_kernels: per image, the kernel its sons are made with (`train.fit`'s
      `son_kernel`), or None.

  Returns:
    A `BatchResult`. A job that went non-finite is not raised but reported in
    `bad_steps` (its state is its last finite one).
  """
  n = len(images)
  if n == 0 or len(keys) != n:
    raise ValueError(f"need one key per image, got {len(keys)} keys for {n} images")
  slots, used = slots_for(n, devices if devices is not None else jax.local_devices())
  mesh = make_mesh(used)
  sharding = NamedSharding(mesh, P(AXIS))
  inputs = prepare(images, cfg, keys, slots, pad_to, son_kernels)
  if state is None:
    state = loop.run_once(init_states, inputs.init_keys, cfg=cfg)
  state = jax.device_put(state, sharding)
  args = jax.device_put((inputs.images, inputs.p_g, inputs.p_d, inputs.step_keys,
                         inputs.active, inputs.son_kernels), sharding)
  step_cfg = train.step_config(cfg)
  val = None
  if inputs.vsets is not None:
    validate = make_batched_validate(cfg, mesh)
    v_args = jax.device_put((inputs.vsets, inputs.son_kernels), sharding)
    val = loop.Validation(
        measure=lambda params: validate(params, *v_args), every=cfg.val_every,
        held_out=[bool(h) for h in jax.device_get(inputs.vsets.held_out)],
        keep_best=cfg.keep_best)
  start = int(jax.device_get(state.step)[0])
  res = loop.fit_loop(
      make_batched_step(step_cfg, mesh), state, args, iters=cfg.iters,
      log_every=cfg.log_every, start=start, jobs=n, compile_key=("batch", step_cfg, mesh),
      bad_steps=lambda st: st.bad_step, validation=val, histories=histories, on_log=on_log,
      on_compiled=on_compiled, checkpoint_every=checkpoint_every, on_checkpoint=on_checkpoint)
  return BatchResult(state=res.state, histories=res.histories, bad_steps=res.bad_steps,
                     iterations=res.iterations, compile_seconds=res.compile_seconds,
                     train_seconds=res.train_seconds, validations=res.validations)


def fit_batch(images: Sequence[np.ndarray], cfg: IKEConfig, keys: Sequence[jax.Array], *,
              devices: Optional[Sequence[jax.Device]] = None,
              son_kernels: Optional[Sequence[np.ndarray]] = None, **kw) -> BatchResult:
  """Trains IKE on several images at once, `cfg.iters` iterations each.

  `_fit_batch_once`'s arguments (`pad_to`, `state`, `histories`, `on_log`,
  `on_compiled`, `checkpoint_every`, `on_checkpoint`). As `train.fit`, an image whose
  run validated as stuck (`validation.stuck`) is run again, `cfg.restarts` times at
  most, with its key folded with the attempt, in a batch of the stuck images only; its
  best-validated attempt is kept. Image i thus follows `train.fit(images[i], cfg,
  keys[i])`. A resumed batch (`state` given) is not restarted.
  """
  res = _fit_batch_once(images, cfg, keys, devices=devices, son_kernels=son_kernels, **kw)
  if res.validations is None:
    return res
  tried = [[v] for v in res.validations]
  if kw.get("state") is None:
    host = None
    for attempt in range(1, cfg.restarts + 1):
      redo = [i for i, v in enumerate(res.validations)
              if res.bad_steps[i] < 0
              and validation.stuck(v["initial_db"], v["best_db"], cfg) and len(tried[i]) == attempt]
      if not redo:
        break
      again = _fit_batch_once(
          [images[i] for i in redo], cfg, [jax.random.fold_in(keys[i], attempt) for i in redo],
          devices=devices, pad_to=kw.get("pad_to"),
          son_kernels=None if son_kernels is None else [son_kernels[i] for i in redo])
      host = jax.device_get(res.state) if host is None else host
      again_host = jax.device_get(again.state)
      for j, i in enumerate(redo):
        tried[i].append(again.validations[j])
        if again.bad_steps[j] < 0 and (again.validations[j]["best_db"]
                                       > res.validations[i]["best_db"]):
          host = jax.tree_util.tree_map(lambda a, b: _set(a, i, b[j]), host, again_host)
          res.histories[i] = again.histories[j]
          res.validations[i] = again.validations[j]
      res.compile_seconds += again.compile_seconds
      res.train_seconds += again.train_seconds
    if host is not None:
      res.state = host
  for i, v in enumerate(res.validations):
    res.validations[i] = {**v, "attempts": [
        {k: t[k] for k in ("initial_db", "best_db", "best_iteration")} for t in tried[i]]}
  return res


def _set(a: np.ndarray, i: int, value) -> np.ndarray:
  out = np.array(a)
  out[i] = value
  return out
