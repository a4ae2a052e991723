"""Run configurations: one frozen dataclass, named presets and ablation switches.

`IKEConfig` is hashable, so it is passed to `jax.jit` as a static argument.
Presets:
  * `paper` (default): the paper's objectives and weights (Sec. 2): lambda_energy
    4 -> 1, lambda_CSR_bwd 5, lambda_TV 1, lambda_inter 5, 3000 iterations, the
    9x9-mean energy loss and the isotropic TV of Eq. 5; what the paper leaves
    open follows the official code (architecture, Adam, schedules, crops).
  * `reference`: the official code's values (reference.md Secs. 1.7-1.8):
    lambda_cycleGAN 2, energy = 36x36 Gaussian on gray images, off until the
    bicubic warm-up ends (iteration 400) and then 4, squared TV, the 8x8
    channel-summing warm-up target, torch align_corners bicubic.
  * `fast`: the paper preset at 600 iterations (schedules scale with `iters`).
  * `selfsup`: beyond the paper, the decoder trained on son/father pairs made by
    the learned downscaler (`SELFSUP` below); not the default: measured below the
    `sharpen` filter while the downscaler's kernel is wrong (docs/recipe_log.md).
  * `default`: the `selfsup` decoder trained on sons made by the spectral kernel
    estimate, or by a known kernel (`--kernel`); `DEFAULT` below.
  * `tiny`: for tests (small nets and crops, a few iterations).
"""

from __future__ import annotations

import dataclasses

import optax

from ikejax import patches


@dataclasses.dataclass(frozen=True)
class IKEConfig:
  """All settings of one IKE run (hashable: a `jit` static argument)."""
  # --- problem
  scale: int = 2                    # SR factor: 2, 3 or 4.
  iters: int = 3000                 # training iterations (paper: 3000).
  crop: int = 128                   # G crop side (official input_crop_size); D crop = crop / s.
  crop_map: str = "official"        # crop-centre gradient maps: 'official' or 'rescaled'
                                    # (`patches.GRADIENT_MAPS`).
  # --- flow
  blocks_per_level: int = 4         # K coupling blocks per squeeze level (paper K = 4).
  coupling: str = "tri"             # 'tri' (IKE) or 'additive' (two-way ablation).
  growth: int = 32                  # dense-subnet growth channels.
  linear_subnets: bool = True       # the official run command's --linear.
  compose_subnets: bool = True      # linear subnets run as one composed 11x11 conv (fast path).
  reference_inverse: bool = False   # official inexact reverse pass instead of the exact one.
  bicubic_residual: bool = True     # flow on X - up(down(X)) (paper "bicubic residual").
  squeeze: str = "space2depth"      # 'space2depth' (official run command) or 'haar'.
  resize_kind: str = "matlab"       # bicubic of the residual, U and losses: 'matlab' or 'torch'.
  # --- other networks
  u_width: int = 64                 # Z-upscale module channels.
  u_depth: int = 8                  # Z-upscale module convs.
  u_init: str = "he"                # 'he' (trainable) or 'reference' (official, U never trains).
  u_input: str = "z"                # U reads 'z' (paper: Z of X_LR) or the 'image' X_LR itself.
  ema_decay: float = 0.0            # > 0: inference uses an EMA of the flow and U parameters.
  d_width: int = 64                 # discriminator channels.
  # --- optimisation (official configs.py / learner.py)
  lr: float = 2e-4                  # Adam lr of flow, PD1, U (and PD2, which never decays).
  b1: float = 0.25                  # Adam beta1 (official 0.25, not KernelGAN's 0.5).
  b2: float = 0.999
  lr_decay_every: float = 0.25      # fraction of iters between /10 decays of flow, PD1, U lr.
  lr_warmup: float = 0.0            # fraction of iters of linear warm-up from 0 (beyond the paper).
  # --- loss weights and variants
  lambda_energy_start: float = 4.0  # paper: 4 -> 1.
  lambda_energy_end: float = 1.0
  energy_start: float = 0.0         # fraction of iters before the energy loss switches on.
  energy_kind: str = "mean9"        # 'mean9' (paper Eq. 2) or 'gauss36' (official).
  lambda_csr_bwd: float = 5.0       # paper 5, official 2.
  lambda_tv: float = 1.0
  tv_kind: str = "isotropic"        # 'isotropic' (paper Eq. 5) or 'squared' (official).
  lambda_inter: float = 5.0
  lambda_kernel: float = 0.0        # blur prior on the downscaler (beyond the paper).
  # Son/father reconstruction (beyond the paper): the learned downscaler makes the son
  # X_LLR of an LR crop, and the decode must give the crop back, L1.
  lambda_rec: float = 0.0
  decode_trains_flow: bool = True   # the decode phase steps the flow too (paper); else U only.
  augment: bool = False             # random flips / 90-degree turns of the father crop.
  son_source: str = "flow"          # sons by the learned 'flow' or a 'spectral' kernel estimate
                                    # (ikejax.imaging.spectral); `--kernel` gives a known one instead.
  alias_floor: float = 1.0          # 'spectral': a fitted white floor above this (8-bit units^2)
  alias_son: str = "bicubic"        #   makes sons with this resampler instead of the Gaussian
                                    #   (`spectral.aliased`, `resampler_kernel`; inf: never).
  lambda_bicubic: float = 5.0       # warm-up constraint weight, /100 every `warmup_every`.
  warmup_every: float = 200 / 3000  # fraction of iters (official: every 200 of 3000).
  lambda_bicubic_min: float = 5e-6
  warmup_kind: str = "exact"        # 'exact' or 'reference' (8x8 kernel, channel sum).
  # --- noise added to discriminator inputs (official, [-1, 1] units)
  d_fake_noise: float = 1 / 255     # randn/255 on the fake X_LLR.
  d_real_noise: float = 2 / 255     # randn/255 in [0, 1] units on real LR crops.
  # --- internal validation (beyond the paper, ikejax.ike.validation)
  val_crops: int = 3                # held-out father crops (0: no validation).
  val_crop: int = 64                # their side (rounded down to the scale, at most crop).
  val_every: int = 50               # iterations between validations (a multiple of log_every).
  keep_best: bool = False           # inference keeps the best validated iteration's parameters.
  restarts: int = 0                 # runs again (key folded with the attempt) a run whose
  stuck_gain_db: float = 0.3        #   best validation PSNR gained less than this over its start.
  # --- logging
  log_every: int = 50               # host sync interval (progress, NaN check).

  def replace(self, **kw) -> "IKEConfig":
    return dataclasses.replace(self, **kw)

  def validate(self) -> "IKEConfig":
    """Checks user-settable values; raises ValueError with the bad value."""
    if self.scale not in (2, 3, 4):
      raise ValueError(f"unsupported scale {self.scale}; expected 2, 3 or 4")
    if self.iters < 1:
      raise ValueError(f"iters must be >= 1, got {self.iters}")
    if self.val_crops < 0 or self.val_every < 1 or self.restarts < 0:
      raise ValueError("val_crops and restarts must be >= 0 and val_every >= 1, got "
                       f"{self.val_crops}, {self.restarts}, {self.val_every}")
    if self.val_crops and self.val_crop < self.scale:
      raise ValueError(f"val_crop must be at least the scale, got {self.val_crop}")
    if (self.keep_best or self.restarts) and not self.val_crops:
      raise ValueError("keep_best and restarts need validation crops (val_crops > 0)")
    if not self.alias_floor > 0:
      raise ValueError(f"alias_floor must be > 0 (inf: always the Gaussian), got {self.alias_floor}")
    if not 0.0 <= self.ema_decay < 1.0:
      raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
    for name, allowed in (("coupling", ("tri", "additive")),
                          ("resize_kind", ("matlab", "torch")),
                          ("u_init", ("he", "reference")),
                          ("u_input", ("z", "image")),
                          ("squeeze", ("space2depth", "haar")),
                          ("crop_map", patches.GRADIENT_MAPS),
                          ("son_source", ("flow", "spectral")),
                          ("alias_son", ("bicubic", "corner", "centre")),
                          ("energy_kind", ("mean9", "gauss36")),
                          ("tv_kind", ("isotropic", "squared")),
                          ("warmup_kind", ("exact", "reference"))):
      if getattr(self, name) not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
    return self

  # --- schedules: pure functions of the iteration (optax schedules)
  def _every(self, fraction: float) -> int:
    return max(1, round(self.iters * fraction))

  def lr_schedule(self) -> optax.Schedule:
    """Flow, PD1 and U: lr / 10 every `lr_decay_every * iters` iterations, after a linear
    warm-up over the first `lr_warmup * iters` (none by default)."""
    decay = optax.exponential_decay(self.lr, self._every(self.lr_decay_every), 0.1,
                                    staircase=True)
    warm = round(self.iters * self.lr_warmup)
    if warm == 0:
      return decay
    return optax.join_schedules([optax.linear_schedule(0.0, self.lr, warm), decay], [warm])

  def lambda_bicubic_schedule(self) -> optax.Schedule:
    """5 -> /100 every 200 (of 3000) iterations, floored at 5e-6.

    The official learner starts decaying once the warm-up loss has stayed
    below a threshold for 3 iterations, which with the bicubic residual holds
    from the first iterations; we make that a pure function of the step.
    """
    return optax.exponential_decay(self.lambda_bicubic, self._every(self.warmup_every),
                                   0.01, staircase=True, end_value=self.lambda_bicubic_min)

  def lambda_energy_schedule(self) -> optax.Schedule:
    """Linear `start -> end` from `energy_start * iters` to the last iteration."""
    t0 = round(self.iters * self.energy_start)
    ramp = optax.linear_schedule(self.lambda_energy_start, self.lambda_energy_end,
                                 max(1, self.iters - t0))
    if t0 == 0:
      return ramp
    return optax.join_schedules([optax.constant_schedule(0.0), ramp], [t0])


PAPER = IKEConfig()

REFERENCE = IKEConfig(
    lambda_energy_start=4.0, lambda_energy_end=4.0, energy_start=400 / 3000,
    energy_kind="gauss36", lambda_csr_bwd=2.0, tv_kind="squared",
    warmup_kind="reference", resize_kind="torch")

FAST = PAPER.replace(iters=600)

# Beyond the paper (docs/deviations.md, docs/recipe_log.md): the decoder trained on a pair
# whose answer is known. The encode phase and PD1 are the paper's, plus a blur prior on the
# downscaler; the decode is the Haar flow's inverse with U reading X_LR and writing every
# slot, trained on son/father crops (son = the learned X_LLR of the father), the flow
# stepped by the encode phase only; no PD2, TV or interpolation loss; EMA for inference.
SELFSUP = PAPER.replace(
    iters=600, squeeze="haar", u_input="image", lambda_rec=1.0, decode_trains_flow=False,
    augment=True, ema_decay=0.99, lambda_kernel=1.0, lambda_csr_bwd=0.0, lambda_tv=0.0,
    lambda_inter=0.0)

TINY = IKEConfig(iters=4, crop=32, blocks_per_level=1, growth=4, u_width=8, u_depth=2,
                 d_width=8, log_every=2, val_crops=0)

# The same decoder on sons made by a kernel: the closed-form spectral estimate
# (ikejax.imaging.spectral), or a known one (`--kernel`). The flow stays at its Haar
# initialisation (the kernel is given, nothing is left for the encode phase), U alone is
# trained with Adam 1e-3, beta1 0.9, no decay, no EMA (experiments/decoder_bound.py).
# 800 iterations: 1600 (with or without an lr decay at 3/4) scored lower on DIV2KRK 13 with
# the estimated kernel (34.47-34.66 vs 34.74 dB), though one true-kernel seed there needs
# them to leave a slow start (docs/recipe_log.md).
# lr warm-up over the first 10%: without it U stayed near the filter's output for all 800
# iterations in some runs (DIV2KRK 27 seed 1: 33.87 -> 36.92 dB with it; 13 seed 0 with
# the true kernel: 32.26 -> 35.10).
# Crops drawn from the "rescaled" gradient maps, with which the recipe was measured.
# Validation (ikejax.ike.validation): 3 held-out 64 px crops; the best validated iteration is kept,
# and a run that gained under 1 dB on them is run again once (healthy runs gain 3.4-9.3 dB:
# DIV2KRK x2, 8 images, seed 0).
DEFAULT = SELFSUP.replace(iters=800, lr=1e-3, b1=0.9, lr_decay_every=1.0, lr_warmup=0.1,
                          ema_decay=0.0, lambda_kernel=0.0, son_source="spectral",
                          keep_best=True, restarts=1, stuck_gain_db=1.0,
                          crop_map="rescaled")

PRESETS = {"paper": PAPER, "reference": REFERENCE, "fast": FAST, "selfsup": SELFSUP,
           "default": DEFAULT, "tiny": TINY}

# The project page's ablation switches (each removes one design of the full model).
ABLATIONS = {
    "no_energy": dict(lambda_energy_start=0.0, lambda_energy_end=0.0),
    "two_way": dict(coupling="additive"),
    "no_residual": dict(bicubic_residual=False),
    "no_csr_bwd": dict(lambda_csr_bwd=0.0),
    "no_inter": dict(lambda_inter=0.0),
}


def get_config(preset: str = "paper", *, ablations=(), **overrides) -> IKEConfig:
  """A preset with ablation switches and field overrides applied, validated."""
  if preset not in PRESETS:
    raise ValueError(f"unknown config {preset!r}; expected one of {sorted(PRESETS)}")
  cfg = PRESETS[preset]
  for name in ablations:
    if name not in ABLATIONS:
      raise ValueError(f"unknown ablation {name!r}; expected one of {sorted(ABLATIONS)}")
    cfg = cfg.replace(**ABLATIONS[name])
  return cfg.replace(**overrides).validate()
