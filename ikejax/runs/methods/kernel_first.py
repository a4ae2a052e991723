"""The kernel-first methods: a kernel estimate, then ISSR-DIL's linear inverse of it.

  * `kernelgan`: KernelGAN estimates the x2 kernel (x4: its analytic kernel), then
    ISSR-DIL's L-CNN, trained on that kernel (re-centred), inverts it after bicubic
    upsampling: "KernelGAN + ISSR-DIL" of ISSR-DIL's Table 3.
  * `issr-dil`: kernels from the image's statistics, the same L-CNN and SR; or, with
    `--kernel`, the L-CNN trained on a given kernel: any other method's estimate (an ikejax
    run folder, so "IKE kernel + ISSR-DIL" is two commands) or the ground truth (the
    non-blind bound of the L-CNN).
They write the files of an IKE run (no X_LLR), one image at a time (seconds to a minute
each on CPU).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional

import jax
import numpy as np

from ikejax.baselines import dil, kernelgan
from ikejax.imaging import kernels
from ikejax.runs.job import SPECTRAL, Context, Job, Outcome, PerImage

LOSS_KEYS = {"kernelgan": ("g_gan", "bicubic", "sum2one", "boundaries", "centralized",
                           "sparse", "d"),
             "issr-dil": ("identity", "pinv", "unity", "rs")}


@dataclasses.dataclass(frozen=True)
class MethodConfig:
  """A kernel-first method's settings: KernelGAN's (or None), the L-CNN's, and
  `kernel_from`: the `--kernel` file or folder the L-CNN inverts instead of the
  statistics' kernels (issr-dil only; None: statistics)."""
  method: str
  scale: int
  kernelgan: Optional[kernelgan.KernelGANConfig]
  dil: dil.DILConfig
  kernel_from: Optional[str] = None

  def asdict(self) -> dict:
    d = {"method": self.method, "scale": self.scale,
         "kernelgan": dataclasses.asdict(self.kernelgan) if self.kernelgan else None,
         "dil": dataclasses.asdict(self.dil)}
    if self.kernel_from is not None:  # only when set: records without it stay resumable
      d["kernel_from"] = self.kernel_from
    return d


def _dil_on_kernel(key: jax.Array, cfg: dil.DILConfig, k: np.ndarray) -> dil.DILResult:
  """The L-CNN trained to invert one estimated kernel (re-centred), repeated to fill its batch."""
  return dil.fit(key, cfg, kernels=np.repeat(dil.centre_kernel(k)[None], cfg.n_kernels, 0))


class _KernelFirst(PerImage):
  """What both kernel-first methods share: the L-CNN inverse of a kernel estimate."""
  name: str
  default_preset = "paper"

  def _invert(self, job: Job, est: np.ndarray, d: dil.DILResult,
              k_info: dict, history: list, timings: dict, tile=None) -> Outcome:
    """SR with the trained L-CNN (on tiles of side `tile`, None: whole), and the outcome."""
    cfg = job.cfg
    lr01 = (np.asarray(job.x, np.float64) + 1.0) / 2.0
    k_info = {**k_info, "drk": d.drk.tolist(), "pinv_terms_used": d.pinv_used}
    timings = {**timings, "dil_train_s": d.train_seconds}
    # DIL epochs continue the iteration count after KernelGAN's, on the same curves picture.
    offset = history[-1]["iteration"] if history else 0
    history = history + [{**h, "iteration": h["iteration"] + offset} for h in d.history]
    t0 = time.perf_counter()
    sr01 = dil.super_resolve(d, lr01, cfg.scale, cfg.dil, tile)
    timings["inference_s"] = time.perf_counter() - t0
    keys = LOSS_KEYS[cfg.method] + (LOSS_KEYS["issr-dil"] if cfg.kernelgan else ())
    return Outcome(sr=2.0 * sr01 - 1.0, kernel=est, kernel_info=k_info, history=history,
                   loss_keys=keys, timings=timings, label=cfg.method)


class KernelGANDIL(_KernelFirst):
  """`--method kernelgan`: KernelGAN's kernel, then ISSR-DIL's inverse."""
  name = "kernelgan"
  presets = tuple(kernelgan.PRESETS)

  def config(self, preset: str, scale: int, overrides: dict,
             kernel: Optional[str] = None) -> MethodConfig:
    if kernel is not None:
      raise ValueError("--kernel applies to --method ike or issr-dil (they train on the "
                       "given kernel)")
    if scale not in (2, 4):
      raise ValueError(f"kernelgan estimates x2 kernels (x4 analytically); got --scale {scale}")
    if preset not in kernelgan.PRESETS:
      raise ValueError(f"unknown kernelgan config {preset!r}; expected one of "
                       f"{sorted(kernelgan.PRESETS)}")
    overrides = dict(overrides)
    kcfg = kernelgan.PRESETS[preset]
    if "iters" in overrides:
      kcfg = kcfg.replace(iters=overrides.pop("iters"))
    if overrides:
      raise ValueError(f"--{next(iter(overrides))} does not apply to kernelgan")
    dcfg = dil.PRESETS["tiny" if preset == "tiny" else "paper"]
    return MethodConfig(self.name, scale, kcfg.validate(), dcfg)

  def iterations(self, cfg: MethodConfig) -> int:
    return cfg.kernelgan.iters

  def _fit(self, job: Job, seed: int, ctx: Context) -> Outcome:
    cfg = job.cfg
    lr01 = (np.asarray(job.x, np.float64) + 1.0) / 2.0
    k_kg, k_dil = jax.random.split(jax.random.key(seed))
    last = [0]

    def on_log(done, m):
      if ctx.progress is not None:
        ctx.progress(done - last[0], f"gan {m['g_gan']:.3f} bic {m['bicubic']:.4f} "
                                     f"sum {m['sum2one']:.3f} D {m['d']:.3f}")
      last[0] = done

    res = kernelgan.fit(lr01, cfg.kernelgan, k_kg, on_log=on_log)
    est = kernelgan.final_kernels(res.kernel_x2, cfg.scale, cfg.kernelgan.n_filtering)
    timings = {"kernelgan_compile_s": res.compile_seconds, "kernelgan_train_s": res.train_seconds,
               "s_per_iter": res.train_seconds / cfg.kernelgan.iters}
    d = _dil_on_kernel(k_dil, cfg.dil, est)
    return self._invert(job, est, d,
                        {"source": "KernelGAN (x4: analytic kernel of the x2 estimate)",
                         "raw_x2": res.kernel_x2.tolist()}, res.history, timings,
                        ctx.tile_for(job))


class ISSRDIL(_KernelFirst):
  """`--method issr-dil`: the image statistics' kernels (or `--kernel`), ISSR-DIL's inverse."""
  name = "issr-dil"
  presets = tuple(dil.PRESETS)

  def config(self, preset: str, scale: int, overrides: dict,
             kernel: Optional[str] = None) -> MethodConfig:
    if "iters" in overrides:
      raise ValueError("--iters sets IKE's or KernelGAN's iterations; issr-dil trains "
                       "a fixed number of epochs on kernels")
    if overrides:
      raise ValueError(f"--{next(iter(overrides))} does not apply to issr-dil")
    if preset not in dil.PRESETS:
      raise ValueError(f"unknown issr-dil config {preset!r}; expected one of {sorted(dil.PRESETS)}")
    if scale < 2:
      raise ValueError(f"scale must be >= 2, got {scale}")
    if kernel not in (None, SPECTRAL) and not os.path.exists(kernel):
      raise ValueError(f"--kernel {kernel}: no such file or folder")
    return MethodConfig(self.name, scale, None, dil.PRESETS[preset], kernel_from=(
        os.path.abspath(kernel) if kernel not in (None, SPECTRAL) else kernel))

  def iterations(self, cfg: MethodConfig) -> int:
    return 1

  def _fit(self, job: Job, seed: int, ctx: Context) -> Outcome:
    cfg = job.cfg
    lr01 = (np.asarray(job.x, np.float64) + 1.0) / 2.0
    _, k_dil = jax.random.split(jax.random.key(seed))
    if job.given_kernel is not None:
      given, path = job.given_kernel
      d = _dil_on_kernel(k_dil, cfg.dil, given)
      est = given  # written back as given, for the record and the kernel scores
      # IKE's kernels have negative taps; centre_kernel clips them: record how much.
      k_info = {"source": f"given: {path}",
                "negative_mass_clipped": kernels.shape(given)["negative_mass"]}
    else:
      d = dil.fit(k_dil, cfg.dil, lr01=lr01)
      est = dil.stats_kernel(lr01, cfg.scale, cfg.dil)
      k_info = {"source": "image statistics (Eq. 5) at the centre of the delta range",
                "sigma_o": dil.image_sigma(lr01)}
    out = self._invert(job, est, d, k_info, [], {}, ctx.tile_for(job))
    if ctx.progress is not None:
      ctx.progress(1, "")
    return out
