"""ikejax: IKE (Invertible Kernel Estimator) zero-shot blind super-resolution in JAX/Flax.

Modules: `ops` (pure array ops), `flow` (the invertible flow), `networks` (U and the patch
discriminator), `model` (bicubic-residual wiring), `losses`, `patches` (crop sampling),
`train` (state, jitted iteration, fit loop), `infer`, `image_io`, `metrics`, `visualize`,
`configs`, and the CLI `ikejax.main`.
"""

__version__ = "0.1.0"
