"""The methods registry: every method the tool runs, by its `--method` name.

Each is one module implementing `ikejax.runs.job.Method`; adding a method is that module
plus one line in `REGISTRY`. `override` is the one generic `--set field=value` for any of
their (frozen dataclass) configs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from ikejax.runs.job import Method
from ikejax.runs.methods import dualsr, filters, ike, kernel_first, zssr

REGISTRY: dict[str, Method] = {
    "ike": ike.IKE(),
    "kernelgan": kernel_first.KernelGANDIL(),
    "issr-dil": kernel_first.ISSRDIL(),
    "zssr": zssr.ZSSR(),
    "kernelgan+zssr": zssr.KernelGANZSSR(),
    "dualsr": dualsr.DualSR(),
    "bicubic": filters.Filter("bicubic"),
    "sharpen": filters.Filter("sharpen"),
}
NAMES = tuple(REGISTRY)


def get(name: str) -> Method:
  """Raises ValueError (one line) for an unknown method."""
  if name not in REGISTRY:
    raise ValueError(f"unknown method {name!r}; expected one of {', '.join(NAMES)}")
  return REGISTRY[name]


def _parse(text: str, like: Any, name: str) -> Any:
  """`text` as a value of the type of `like` (a field's preset value)."""
  if isinstance(like, bool):
    if text.lower() in ("1", "true", "yes", "on"):
      return True
    if text.lower() in ("0", "false", "no", "off"):
      return False
    raise ValueError(f"--set {name}={text}: expected true or false")
  try:
    if isinstance(like, int):
      return int(text)
    if isinstance(like, float):
      return float(text)
    if isinstance(like, tuple):
      return tuple(_parse(t, like[0], name) for t in text.split(",")) if like else tuple(
          text.split(","))
  except ValueError:
    raise ValueError(f"--set {name}={text}: expected a {type(like).__name__}") from None
  if like is None or isinstance(like, str):
    return None if text.lower() == "none" else text
  raise ValueError(f"--set {name}: a {type(like).__name__} field cannot be set from text")


def override(cfg: Any, assignments: Sequence[str]) -> Any:
  """`cfg` with `field=value` assignments applied (`part.field=value` for a nested config).

  Values are parsed by the type of the field's current value. Raises ValueError naming the
  bad assignment, field or value.
  """
  for a in assignments:
    if "=" not in a:
      raise ValueError(f"--set {a}: expected field=value")
    name, text = a.split("=", 1)
    cfg = _assign(cfg, name.strip().split("."), text.strip(), name.strip())
  return cfg


def _assign(cfg: Any, path: list[str], text: str, full: str) -> Any:
  fields = {f.name for f in dataclasses.fields(cfg)}
  if path[0] not in fields:
    raise ValueError(f"--set {full}: no field {path[0]!r} in {type(cfg).__name__} "
                     f"(fields: {', '.join(sorted(fields))})")
  value = getattr(cfg, path[0])
  if len(path) > 1:
    if not dataclasses.is_dataclass(value):
      raise ValueError(f"--set {full}: {path[0]!r} has no fields")
    new = _assign(value, path[1:], text, full)
  else:
    if dataclasses.is_dataclass(value):
      raise ValueError(f"--set {full}: {path[0]!r} is a config; set {path[0]}.FIELD")
    new = _parse(text, value, full)
  return dataclasses.replace(cfg, **{path[0]: new})
