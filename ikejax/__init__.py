"""ikejax: IKE (Invertible Kernel Estimator) zero-shot blind super-resolution in JAX/Flax.

Python API (`ikejax.api`): `super_resolve(image, scale=2, method="ike", preset=None, seed=0)`
and `estimate_kernel(image, scale)`. Layers, lowest first: `imaging` (NumPy only), `ops`,
`patches`, `nets`, `loop` (the one fit loop), `ike` (the method), `baselines` (KernelGAN,
ISSR-DIL), `runs` (the Method protocol, the job path, the registry, folder and batched
runs), and the programs in `cli` (`ikejax`, `ikejax-degrade`, `ikejax-metrics`).
Importing `ikejax` loads neither JAX nor any command-line flag.
"""

__version__ = "0.1.0"
__all__ = ["super_resolve", "estimate_kernel", "SuperResolution"]


def __getattr__(name):
  if name in __all__:
    from ikejax import api
    return getattr(api, name)
  raise AttributeError(f"module 'ikejax' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
