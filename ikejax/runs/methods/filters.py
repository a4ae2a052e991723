"""`--method bicubic|sharpen`: the zero-parameter reference rows (`ikejax.imaging.filters`).

They cost seconds and tell a user whether learning paid off; they write the outputs and
records of a learned method (the kernel they assume: MATLAB's bicubic downscale).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import numpy as np

from ikejax.imaging import filters, kernels
from ikejax.runs.job import Context, Job, Outcome, PerImage


@dataclasses.dataclass(frozen=True)
class FilterConfig:
  """A filter's only setting."""
  method: str
  scale: int

  def asdict(self) -> dict:
    # As the records of earlier versions store it (they stay reusable).
    return {"method": self.method, "scale": self.scale, "kernelgan": None, "dil": None}


class Filter(PerImage):
  """The `Method` of a zero-parameter filter."""
  presets = ("paper",)
  default_preset = "paper"

  def __init__(self, name: str):
    self.name = name

  def config(self, preset: str, scale: int, overrides: dict,
             kernel: Optional[str] = None) -> FilterConfig:
    if overrides:
      raise ValueError(f"--{next(iter(overrides))}: {self.name} is a filter with nothing to "
                       "train or set")
    if kernel is not None:
      raise ValueError(f"--kernel: {self.name} assumes the bicubic kernel")
    if scale not in (2, 3, 4):
      raise ValueError(f"unsupported scale {scale}; expected 2, 3 or 4")
    return FilterConfig(self.name, scale)

  def iterations(self, cfg: FilterConfig) -> int:
    return 1

  def _fit(self, job: Job, seed: int, ctx: Context) -> Outcome:
    t0 = time.perf_counter()
    s = job.cfg.scale
    sr01 = filters.FILTERS[self.name]((np.asarray(job.x, np.float64) + 1.0) / 2.0, s)
    out = Outcome(sr=2.0 * sr01 - 1.0, kernel=filters.bicubic_kernel(s, kernels.DEFAULT_SIZE[s]),
                  kernel_info={"source": "assumed: MATLAB bicubic downscale (nothing is estimated)"},
                  timings={"inference_s": time.perf_counter() - t0}, label=self.name)
    if ctx.progress is not None:
      ctx.progress(1, "")
    return out
