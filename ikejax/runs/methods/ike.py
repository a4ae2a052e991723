"""`--method ike`: IKE's flow and decoder trained on each image (`ikejax.ike`).

One image on its own trains with `train.fit`; a folder's images train `Context.batch` at a
time in one compiled step (`ikejax.runs.batch`), padded to one size per config so that a
run compiles once, and resumable from checkpoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import Optional, Sequence

import numpy as np

from ikejax.ike import configs, infer, kernel, train
from ikejax.ike.configs import IKEConfig
from ikejax.imaging import degrade, spectral
from ikejax.runs import records
from ikejax.runs.job import Context, Job, Outcome, as_stored

# Fields a record may differ in and still stand for this run: the crop adapts to small
# images, and logging changes no result.
_FREE = ("crop", "log_every")


class IKE:
  """The `Method` of IKE (`ikejax.runs.job.Method`)."""
  name = "ike"
  batches = True
  presets = tuple(configs.PRESETS)
  default_preset = "default"

  def config(self, preset: str, scale: int, overrides: dict,
             kernel: Optional[str] = None) -> IKEConfig:
    overrides = dict(overrides)
    ablations = tuple(overrides.pop("ablations", ()))
    try:
      cfg = configs.get_config(preset, ablations=ablations, scale=scale, **overrides)
    except TypeError as e:  # an unknown field
      raise ValueError(str(e)) from None
    if kernel is not None and cfg.lambda_rec <= 0:
      raise ValueError(f"--kernel needs a preset that trains on sons (--config default); "
                       f"{preset!r} learns its own degradation")
    return cfg

  def settings(self, cfg: IKEConfig) -> dict:
    return dataclasses.asdict(cfg)

  def same_settings(self, record: dict, cfg: IKEConfig) -> bool:
    got = record.get("config") or {}
    want = as_stored(self.settings(cfg))
    return all(got.get(k) == v for k, v in want.items() if k not in _FREE)

  def iterations(self, cfg: IKEConfig) -> int:
    return cfg.iters

  def prepare(self, cfg: IKEConfig, job: Job) -> None:
    """The crop fitted to the image, and the kernel its sons are made with."""
    h, w = job.loaded.pixels.shape[:2]
    job.cfg, warning = train.adapt_crop(cfg, h, w)
    job.extra["crop_warning"] = warning
    job.extra["messages"] = [f"warning: {warning}"] if warning else []
    if job.given_kernel is not None:
      k, path = job.given_kernel
      # Centre of mass to the LR pixel's centre (DIV2KRK's convention; a no-op for an
      # operator-window estimate such as an ikejax run's).
      job.extra["son_kernel"] = (degrade.kernel_shift(k, cfg.scale), {"source": f"given: {path}"})
      return
    est = spectral.son_kernel(cfg, job.loaded.pixels, job.loaded.bit_depth)
    job.extra["son_kernel"] = est
    if est is not None:
      if "fallback" in est[1]:
        job.extra["messages"].append(
            f"warning: {est[1]['fallback']}; making sons with the bicubic kernel")
      elif "resampler" in est[1]:
        job.extra["messages"].append(est[1]["resampler"])
      else:
        s = est[1]["sigmas"]
        job.extra["messages"].append(
            f"estimated the kernel from the spectrum: sigmas {s[0]:.2f} x {s[1]:.2f} px")

  def group_key(self, job: Job):
    return job.cfg

  def fit(self, jobs: Sequence[Job], seed: int, ctx: Context) -> list[Outcome]:
    if ctx.single:
      return [self._fit_one(jobs[0], seed, ctx)]
    return self._fit_batch(jobs, seed, ctx)

  def _outcome(self, job: Job, state, history, validation, timings, info,
               tile: Optional[int] = None) -> Outcome:
    """Whole-image inference with a trained state (on tiles of side `tile`, None: whole),
    and what the record says of it."""
    cfg = job.cfg
    t0 = time.perf_counter()
    sr = infer.super_resolve(state, job.x, cfg, tile=tile)
    timings = {**timings, "inference_s": time.perf_counter() - t0}
    llr = infer.downscale(state, job.x, cfg, tile=tile)
    son = job.extra.get("son_kernel")
    if son is None:  # the learned degradation as a blur kernel (exact with linear subnets)
      k, k_info = kernel.ike_kernel(state.ema["flow"], cfg)
    else:
      k, k_info = son[0], dict(son[1])
    return Outcome(
        sr=sr, llr=llr, kernel=k, kernel_info=k_info, history=history,
        # Losses a preset switches off stay 0: not drawn on the log scale.
        loss_keys=[n for n in records.LOSS_KEYS if any(h.get(n, 0) != 0 for h in history)],
        timings=timings, label="IKE",
        info={"crop_warning": job.extra.get("crop_warning"), "validation": validation, **info})

  def _fit_one(self, job: Job, seed: int, ctx: Context) -> Outcome:
    import jax
    t0 = time.perf_counter()
    cfg = job.cfg
    last = [0]

    def on_log(done, m):
      if done < last[0]:  # a rerun of a stuck run starts again (`train.fit`'s restarts)
        last[0] = 0
      if ctx.progress is not None:
        decode = (f"rec {m['rec']:.4f} K {m['kernel']:.3f}" if cfg.lambda_rec > 0 else
                  f"bwd {m['csr_bwd']:.3f} inter {m['inter']:.4f} tv {m['tv']:.4f}")
        val = f" val {m['val_psnr']:.2f} dB" if "val_psnr" in m else ""
        ctx.progress(done - last[0], f"fwd {m['csr_fwd']:.3f} E {m['energy']:.4f} {decode} "
                                     f"D {m['d_lr']:.3f}/{m['d_hr']:.3f}{val}")
      last[0] = done

    son = job.extra.get("son_kernel")
    res = train.fit(job.x, cfg, jax.random.key(seed), on_log=on_log,
                    on_compiled=ctx.on_compiled, son_kernel=None if son is None else son[0])
    timings = {"compile_s": res.compile_seconds, "train_s": res.train_seconds,
               "s_per_iter": res.train_seconds / max(1, cfg.iters)}
    out = self._outcome(job, res.state, res.history, res.validation, timings, {},
                        tile=ctx.tile_for(job))
    out.seconds = time.perf_counter() - t0
    return out

  def _fit_batch(self, group: Sequence[Job], seed: int, ctx: Context) -> list[Outcome]:
    import jax

    from ikejax.runs import batch as batch_lib
    cfg = group[0].cfg
    devices = ctx.devices if ctx.devices is not None else jax.local_devices()
    slots, used = batch_lib.slots_for(len(group), devices)
    bid = _batch_id(group, cfg, seed, slots)
    resumed, histories = None, None
    if ctx.checkpoint_every and ctx.checkpoints is not None:
      template = jax.eval_shape(lambda k: batch_lib.init_states(k, cfg=cfg),
                                jax.random.split(jax.random.key(0), slots))
      loaded = ctx.checkpoints.load(bid, template)
      if loaded is not None:
        resumed, histories = loaded
    last = {"it": int(np.asarray(resumed.step)[0]) if resumed is not None else 0}
    if ctx.progress is not None and last["it"]:
      ctx.progress(len(group) * last["it"], "")
    t_batch = time.perf_counter()

    def on_log(done, per_image, bad):
      if ctx.progress is not None:
        live = [m for m, b in zip(per_image, bad) if b < 0] or per_image
        mean = lambda k: float(np.mean([m[k] for m in live]))
        ctx.progress(sum(1 for b in bad if b < 0) * (done - last["it"]),
                     f"fwd {mean('csr_fwd'):.3f} E {mean('energy'):.4f} "
                     f"bwd {mean('csr_bwd'):.3f} inter {mean('inter'):.4f} "
                     f"D {mean('d_lr'):.3f}/{mean('d_hr'):.3f}")
      last["it"] = done

    def on_checkpoint(done, state, hist):
      ctx.checkpoints.save(bid, state, hist, [j.path for j in group])

    res = batch_lib.fit_batch(
        [j.x for j in group], cfg, [jax.random.key(seed)] * len(group), devices=used,
        pad_to=_pad_to(ctx.all_jobs or group, cfg), state=resumed, histories=histories,
        on_log=on_log, checkpoint_every=ctx.checkpoint_every,
        on_checkpoint=on_checkpoint if ctx.checkpoints is not None else None,
        son_kernels=([j.extra["son_kernel"][0] for j in group]
                     if group[0].extra.get("son_kernel") else None))
    train_each = (time.perf_counter() - t_batch) / len(group)
    # Per-image states on the host: inference then runs on the default device, never on
    # a slice of a multi-device array (that hung under jax.distributed on CPU).
    host_state = jax.device_get(res.state)
    outs = []
    for i, job in enumerate(group):
      if res.bad_steps[i] >= 0:
        outs.append(Outcome(error=f"a loss became NaN or inf at iteration {res.bad_steps[i] + 1}",
                            seconds=train_each))
        continue
      timings = {"compile_s": res.compile_seconds, "train_s": res.train_seconds,
                 "s_per_iter": res.train_seconds / max(1, res.iterations),
                 "train_share_s": train_each}
      t0 = time.perf_counter()
      out = self._outcome(job, batch_lib.take(host_state, i), res.histories[i],
                          res.validations[i] if res.validations else None, timings,
                          {"batch": {"size": len(group), "devices": len(used)}},
                          tile=ctx.tile_for(job))
      out.seconds = train_each + time.perf_counter() - t0  # its share, and its inference
      outs.append(out)
    if ctx.checkpoint_every and ctx.checkpoints is not None:
      ctx.checkpoints.drop(bid)
    return outs


def _pad_to(jobs: Sequence[Job], cfg: IKEConfig) -> tuple[int, int]:
  """The largest image of the run with this config: every batch of it has one shape, so
  one compiled step."""
  sizes = [j.x.shape[:2] for j in jobs if j.cfg == cfg and j.x is not None]
  return max(h for h, _ in sizes), max(w for _, w in sizes)


def _batch_id(batch: Sequence[Job], cfg: IKEConfig, seed: int, slots: int) -> str:
  """Names a batch's checkpoint: its config, seed, slots and input files."""
  parts = [json.dumps(dataclasses.asdict(cfg), sort_keys=True), str(seed), str(slots)]
  for j in batch:
    st = os.stat(j.path)
    parts.append(f"{os.path.abspath(j.path)}|{st.st_size}|{st.st_mtime_ns}")
  return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
