"""The package's layers: no import cycle, no import from a lower layer to a higher one, and
`ikejax.imaging` free of JAX (host code runs without it)."""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "ikejax")
# Lowest first; a module may import its own layer and those below it.
LAYERS = [
    ("imaging",),
    ("ops", "conv_grad", "tiles", "patches", "nets", "loop"),
    ("ike",),
    ("baselines",),
    ("runs",),
    ("api", "cli"),
    ("__init__", "__main__", "main"),
]


def _modules() -> dict[str, str]:
  """`{dotted name: path}` of every module of the package."""
  out = {}
  for dirpath, _, files in os.walk(ROOT):
    for f in files:
      if f.endswith(".py"):
        rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].replace(os.sep, ".")
        name = ("ikejax." + rel).removesuffix(".__init__")
        out[name] = os.path.join(dirpath, f)
  return out


def _imports(path: str, name: str) -> set[str]:
  """The ikejax modules a file imports (anywhere in it, function bodies included)."""
  package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
  mods = _modules()
  found = set()
  for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
    if isinstance(node, ast.Import):
      found |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                        + ([base] if base else []))
      for a in node.names:  # `from pkg import module` imports the module, else pkg itself
        found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base)
  return {m for m in found if m in mods and m != name}


def _layer(name: str) -> int:
  top = name.split(".")[1] if name.count(".") else "__init__"
  for i, members in enumerate(LAYERS):
    if top in members:
      return i
  raise AssertionError(f"{name} is in no layer of tests/test_layers.py")


def _graph() -> dict[str, set[str]]:
  return {n: _imports(p, n) for n, p in _modules().items()}


def test_no_import_goes_up_a_layer():
  bad = [f"{a} imports {b}" for a, deps in _graph().items() for b in deps
         if _layer(b) > _layer(a)]
  assert not bad, bad


def test_no_import_cycle():
  graph = _graph()
  state: dict[str, int] = {}
  cycles = []

  def visit(n, path):
    state[n] = 1
    for d in sorted(graph[n]):
      if d == "ikejax" or n == "ikejax":
        continue  # the package's lazy __getattr__ reaches the API only on attribute access
      if state.get(d) == 1:
        cycles.append(path[path.index(d):] + [d] if d in path else [n, d])
      elif d not in state:
        visit(d, path + [d])
    state[n] = 2

  for n in sorted(graph):
    if n not in state:
      visit(n, [n])
  assert not cycles, cycles


@pytest.mark.parametrize("module", ["ikejax.imaging." + m for m in (
    "image_io", "resize", "filters", "degrade", "metrics", "kernels", "spectral", "pictures")])
def test_imaging_never_imports_jax(module):
  code = (f"import sys; import {module}; "
          "bad = [m for m in ('jax', 'flax', 'optax') if m in sys.modules]; "
          "assert not bad, bad")
  r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert r.returncode == 0, r.stderr[-500:]
