"""`--method dualsr`: DualSR (`ikejax.baselines.dualsr`), blind x2 SR by a dual up/down pair.

G_UP's output on the whole image is the SR; G_DN's impulse response (13x13, raw, as the
official `save_final_kernel`) is the kernel. x2 only (the official code's G_UP is a fixed
bilinear x2 and its G_DN strides by 2); blind, so `--kernel` is refused. One image at a
time; writes the files of an IKE run (no X_LLR).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import numpy as np

from ikejax.baselines import dualsr
from ikejax.runs.job import Context, Job, Outcome, PerImage

LOSS_KEYS = ("g_gan", "cycle_fwd", "cycle_bwd", "interp", "bicubic", "sum2one", "d")


@dataclasses.dataclass(frozen=True)
class DualSRMethodConfig:
  """DualSR's settings and the scale (always 2)."""
  method: str
  scale: int
  dualsr: dualsr.DualSRConfig

  def validate(self) -> "DualSRMethodConfig":
    self.dualsr.validate()
    return self

  def asdict(self) -> dict:
    return {"method": self.method, "scale": self.scale,
            "dualsr": dataclasses.asdict(self.dualsr)}


class DualSR(PerImage):
  """`--method dualsr`: DualSR's G_UP on the image, G_DN's kernel."""
  name = "dualsr"
  presets = tuple(dualsr.PRESETS)
  default_preset = "paper"

  def config(self, preset: str, scale: int, overrides: dict,
             kernel: Optional[str] = None) -> DualSRMethodConfig:
    if kernel is not None:
      raise ValueError("--kernel: dualsr is blind (it learns its own downscaler)")
    if scale != 2:
      raise ValueError(f"dualsr is x2 only (as the official code); got --scale {scale}")
    if preset not in dualsr.PRESETS:
      raise ValueError(f"unknown dualsr config {preset!r}; expected one of "
                       f"{sorted(dualsr.PRESETS)}")
    cfg = dualsr.PRESETS[preset]
    overrides = dict(overrides)
    if "iters" in overrides:
      cfg = cfg.replace(iters=overrides.pop("iters"))
    if overrides:
      raise ValueError(f"--{next(iter(overrides))} does not apply to dualsr")
    return DualSRMethodConfig(self.name, scale, cfg.validate())

  def iterations(self, cfg: DualSRMethodConfig) -> int:
    return cfg.dualsr.iters

  def _fit(self, job: Job, seed: int, ctx: Context) -> Outcome:
    cfg = job.cfg
    lr01 = (np.asarray(job.x, np.float64) + 1.0) / 2.0
    last = [0]

    def on_log(done, m):
      if ctx.progress is not None:
        ctx.progress(done - last[0], f"gan {m['g_gan']:.3f} cyc {m['cycle_fwd']:.4f}/"
                                     f"{m['cycle_bwd']:.4f} D {m['d']:.3f}")
      last[0] = done

    res = dualsr.fit(lr01, cfg.dualsr, jax.random.key(seed), on_log=on_log,
                     on_compiled=ctx.on_compiled, tile=ctx.tile_for(job))
    timings = {"compile_s": res.compile_seconds, "train_s": res.train_seconds,
               "s_per_iter": res.train_seconds / cfg.dualsr.iters,
               "inference_s": res.inference_seconds}
    k_info = {"source": "DualSR's G_DN (its impulse response, raw)",
              "sum": float(res.kernel_x2.sum())}
    return Outcome(sr=2.0 * res.sr01 - 1.0, kernel=res.kernel_x2, kernel_info=k_info,
                   history=res.history, loss_keys=LOSS_KEYS, timings=timings,
                   label=cfg.method)
