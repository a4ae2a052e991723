"""`--method zssr` and `--method kernelgan+zssr`: ZSSR on a kernel (`ikejax.baselines.zssr`).

  * `zssr`: the kernel given by `--kernel` (a file, or a folder of per-image kernels: any
    ikejax run's estimates, so "IKE kernel + ZSSR" is `--kernel IKE_RUN_DIR`, or DIV2KRK's
    true kernels, the non-blind bound; or `spectral`, each image's closed-form blind
    estimate, the kernel IKE's default recipe makes its sons with); MATLAB's bicubic
    without one (ZSSR's non-blind default). A given kernel is used in one jump at its scale; the bicubic default goes
    x4 through x2 (gradual SR).
  * `kernelgan+zssr`: KernelGAN's x2 estimate, then ZSSR on it; x4 as KernelGAN's
    pipeline: x2 with the estimate, then x4 with its analytic x4 kernel.
They train one image at a time and write the files of an IKE run (no X_LLR).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import jax
import numpy as np

from ikejax.baselines import kernelgan, zssr
from ikejax.imaging import filters, kernels
from ikejax.runs.job import SPECTRAL, Context, Job, Outcome, PerImage

LOSS_KEYS = ("loss",)


@dataclasses.dataclass(frozen=True)
class ZSSRMethodConfig:
  """ZSSR's settings, and KernelGAN's for `kernelgan+zssr` (else None)."""
  method: str
  scale: int
  zssr: zssr.ZSSRConfig
  kernelgan: Optional[kernelgan.KernelGANConfig] = None
  kernel_from: Optional[str] = None       # `--kernel`: a path, `spectral`, or None (bicubic)

  def validate(self) -> "ZSSRMethodConfig":
    self.zssr.validate()
    if self.kernelgan is not None:
      self.kernelgan.validate()
    return self

  def asdict(self) -> dict:
    return {"method": self.method, "scale": self.scale, "zssr": dataclasses.asdict(self.zssr),
            "kernelgan": dataclasses.asdict(self.kernelgan) if self.kernelgan else None,
            "kernel_from": self.kernel_from}


class _ZSSRBase(PerImage):
  name: str
  presets = tuple(zssr.PRESETS)

  def _zssr_config(self, preset: str, scale: int) -> zssr.ZSSRConfig:
    if preset not in zssr.PRESETS:
      raise ValueError(f"unknown {self.name} config {preset!r}; expected one of "
                       f"{sorted(zssr.PRESETS)}")
    if scale not in (2, 3, 4):
      raise ValueError(f"unsupported scale {scale}; expected 2, 3 or 4")
    return zssr.PRESETS[preset].validate()

  def iterations(self, cfg: ZSSRMethodConfig) -> int:
    stages = 2 if cfg.scale == 4 and cfg.zssr.gradual_x4 else 1
    return stages * cfg.zssr.max_iters + (cfg.kernelgan.iters if cfg.kernelgan else 0)

  def _zssr(self, job: Job, stages: list, key: jax.Array, ctx: Context, est: np.ndarray,
            k_info: dict, history: list, timings: dict, loss_keys=LOSS_KEYS) -> Outcome:
    cfg = job.cfg
    lr01 = (np.asarray(job.x, np.float64) + 1.0) / 2.0
    last = [0]

    def on_log(done, m):
      if ctx.progress is not None:
        ctx.progress(done - last[0], f"L1 {m['loss']:.4f} rec {m['val_psnr']:.2f} dB "
                                     f"lr {m['lr']:.0e}")
      last[0] = done

    res = zssr.fit(lr01, stages, cfg.zssr, key, on_log=on_log, tile=ctx.tile_for(job))
    if ctx.progress is not None:  # the lr floor stops stages early: finish the bar
      ctx.progress(max(0, len(stages) * cfg.zssr.max_iters - last[0]), "")
    offset = history[-1]["iteration"] if history else 0
    history = history + [{**h, "iteration": h["iteration"] + offset} for h in res.history]
    timings = {**timings, "zssr_compile_s": res.compile_seconds,
               "zssr_train_s": res.train_seconds, "inference_s": res.inference_seconds,
               "zssr_iterations": res.iterations}
    info = {"zssr_stages": [{"sf": st.sf, "iterations": n} for st, n in
                            zip(stages, res.iterations)]}
    return Outcome(sr=2.0 * res.sr01 - 1.0, kernel=est, kernel_info=k_info, history=history,
                   loss_keys=loss_keys, timings=timings, info=info, label=cfg.method)


class ZSSR(_ZSSRBase):
  """`--method zssr`: ZSSR on `--kernel` (or MATLAB's bicubic)."""
  name = "zssr"
  # ZSSR's own defaults (`paper`) leave the net dead on some images (docs/deviations.md).
  default_preset = "kernelgan"

  def config(self, preset: str, scale: int, overrides: dict,
             kernel: Optional[str] = None) -> ZSSRMethodConfig:
    zcfg = self._zssr_config(preset, scale)
    overrides = dict(overrides)
    if "iters" in overrides:
      zcfg = zcfg.replace(max_iters=overrides.pop("iters")).validate()
    if overrides:
      raise ValueError(f"--{next(iter(overrides))} does not apply to zssr")
    if kernel not in (None, SPECTRAL) and not os.path.exists(kernel):
      raise ValueError(f"--kernel {kernel}: no such file or folder")
    return ZSSRMethodConfig(self.name, scale, zcfg, kernel_from=(
        os.path.abspath(kernel) if kernel not in (None, SPECTRAL) else kernel))

  def _fit(self, job: Job, seed: int, ctx: Context) -> Outcome:
    s = job.cfg.scale
    if job.given_kernel is not None:
      given, path = job.given_kernel
      stages = [zssr.Stage(s, given)]
      est, k_info = given, {"source": f"given: {path}"}
    else:
      gradual = s == 4 and job.cfg.zssr.gradual_x4
      stages = [zssr.Stage(2, None), zssr.Stage(4, None)] if gradual else [zssr.Stage(s, None)]
      est = filters.bicubic_kernel(s, kernels.DEFAULT_SIZE[s])
      k_info = {"source": "assumed: MATLAB bicubic downscale (ZSSR's non-blind default)"}
    return self._zssr(job, stages, jax.random.key(seed), ctx, est, k_info, [], {})


class KernelGANZSSR(_ZSSRBase):
  """`--method kernelgan+zssr`: KernelGAN's kernel, then ZSSR on it."""
  name = "kernelgan+zssr"
  default_preset = "kernelgan"

  def config(self, preset: str, scale: int, overrides: dict,
             kernel: Optional[str] = None) -> ZSSRMethodConfig:
    if kernel is not None:
      raise ValueError("--kernel: kernelgan+zssr estimates its kernel; for ZSSR on a given "
                       "kernel use --method zssr")
    if scale not in (2, 4):
      raise ValueError(f"kernelgan estimates x2 kernels (x4 analytically); got --scale {scale}")
    zcfg = self._zssr_config(preset, scale)
    kcfg = kernelgan.PRESETS["tiny" if preset == "tiny" else "paper"]
    overrides = dict(overrides)
    if "iters" in overrides:
      kcfg = kcfg.replace(iters=overrides.pop("iters"))
    if overrides:
      raise ValueError(f"--{next(iter(overrides))} does not apply to kernelgan+zssr")
    return ZSSRMethodConfig(self.name, scale, zcfg, kcfg.validate())

  def _fit(self, job: Job, seed: int, ctx: Context) -> Outcome:
    cfg = job.cfg
    lr01 = (np.asarray(job.x, np.float64) + 1.0) / 2.0
    k_kg, k_zssr = jax.random.split(jax.random.key(seed))
    last = [0]

    def on_log(done, m):
      if ctx.progress is not None:
        ctx.progress(done - last[0], f"gan {m['g_gan']:.3f} bic {m['bicubic']:.4f} "
                                     f"D {m['d']:.3f}")
      last[0] = done

    res = kernelgan.fit(lr01, cfg.kernelgan, k_kg, on_log=on_log)
    k2 = kernelgan.final_kernels(res.kernel_x2, 2, cfg.kernelgan.n_filtering)
    if cfg.scale == 4 and cfg.zssr.gradual_x4:
      stages = [zssr.Stage(2, k2), zssr.Stage(4, kernelgan.final_kernels(
          res.kernel_x2, 4, cfg.kernelgan.n_filtering))]
    elif cfg.scale == 4:
      stages = [zssr.Stage(4, kernelgan.final_kernels(res.kernel_x2, 4,
                                                      cfg.kernelgan.n_filtering))]
    else:
      stages = [zssr.Stage(2, k2)]
    timings = {"kernelgan_compile_s": res.compile_seconds, "kernelgan_train_s": res.train_seconds}
    k_info = {"source": "KernelGAN (x4: analytic kernel of the x2 estimate)",
              "raw_x2": res.kernel_x2.tolist()}
    return self._zssr(job, stages, k_zssr, ctx, stages[-1].kernel, k_info, res.history, timings,
                      loss_keys=("g_gan", "bicubic", "d") + LOSS_KEYS)
