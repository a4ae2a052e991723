"""The fit loop every method trains through, and the compile helpers it uses.

A fit is a jit-compiled step applied `iters` times to one explicit state pytree. `fit_loop`
compiles the step once (`compile_cached`), syncs with the host only every `log_every`
iterations (metrics, the non-finite check, history, progress), validates and keeps the best
parameters when asked, and calls a checkpoint hook; batched steps (a leading job axis) and
single ones go through the same code.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


class NonFiniteLossError(RuntimeError):
  """A loss became NaN or inf; the message names the iteration."""


# XLA options for programs that run once (initialisation): there the optimisation passes cost
# more than they save (IKE's `create_state` compiles and runs about 3x faster with them than
# optimised or op by op; docs/benchmarks.md).
RUN_ONCE_OPTIONS = {"xla_backend_optimization_level": 0,
                    "xla_llvm_disable_expensive_passes": True}


@functools.lru_cache(maxsize=16)
def _compile_run_once(fn: Callable, static: tuple, avals: tuple):
  return jax.jit(fn, static_argnames=[k for k, _ in static]).lower(
      *avals, **dict(static)).compile(RUN_ONCE_OPTIONS)


def run_once(fn: Callable, *args: jax.Array, **static) -> Any:
  """`jax.jit(fn)(*args, **static)` compiled with `RUN_ONCE_OPTIONS`, cached per
  `(fn, static, shapes)`; `fn` is a module-level function, `static` hashable."""
  avals = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args)
  return _compile_run_once(fn, tuple(sorted(static.items())), avals)(*args)


_COMPILED: dict = {}


def compile_cached(jitted: Callable, key: Any, *args) -> Callable:
  """`jitted.lower(*args).compile()`, kept per `(key, argument shapes)` (8 at most).

  Restarts and repeated fits of one config and image size reuse the executable
  instead of compiling it again.
  """
  leaves, tree = jax.tree_util.tree_flatten(args)
  sig = (key, tree, tuple((np.shape(x), str(getattr(x, "dtype", type(x)))) for x in leaves))
  if sig not in _COMPILED:
    if len(_COMPILED) >= 8:
      _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[sig] = jitted.lower(*args).compile()
  return _COMPILED[sig]


@dataclasses.dataclass
class Validation:
  """How a fit validates: `measure(params) -> [slots]` dB of the parameters `params(state)`
  (higher is better), every `every` iterations and at the end; `held_out[i]` says whether
  job i's validation crops were held out of training; `keep_best` makes the returned state
  carry each job's best validated parameters (`set_params`)."""
  measure: Callable[[PyTree], np.ndarray]
  every: int
  held_out: Sequence[bool]
  keep_best: bool
  params: Callable[[PyTree], PyTree] = lambda state: state.ema
  set_params: Callable[[PyTree, PyTree], PyTree] = lambda state, p: state.replace(ema=p)


@dataclasses.dataclass
class LoopResult:
  """Outcome of `fit_loop` for its `n` jobs.

  Attributes:
    state: the final state (the best validated parameters when `keep_best`).
    histories: per job, the logged metrics (host floats, with `iteration`, `seconds` and,
      where validated, `val_psnr`).
    bad_steps: per job, the first iteration whose losses were not finite, or -1.
    validations: per job, `curve` [[iteration, dB], ...], `initial_db`, `best_db`,
      `best_iteration`, `held_out`, `kept` ('best' or 'last'); None without validation.
    compile_seconds, train_seconds: wall times of the compile and of the iterations.
    iterations: iterations run by this call (fewer than asked when `stop` ended it).
  """
  state: PyTree
  histories: list[list[dict]]
  bad_steps: list[int]
  validations: Optional[list[dict]]
  compile_seconds: float
  train_seconds: float
  iterations: int


@jax.jit
def select(pick: jax.Array, new: PyTree, old: PyTree) -> PyTree:
  """Per job, `new` where `pick` else `old` (leading job axis on every leaf)."""
  return jax.tree_util.tree_map(
      lambda n, o: jnp.where(pick.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)


def _copy(tree: PyTree) -> PyTree:
  """A copy of a device pytree (steps donate the state's buffers)."""
  return jax.tree_util.tree_map(jnp.copy, tree)


def fit_loop(step: Callable, state: PyTree, args: Sequence | Callable[[int], Sequence], *,
             iters: int, log_every: int, start: int = 0, jobs: Optional[int] = None,
             compile_key: Any = None, bad_steps: Optional[Callable[[PyTree], Any]] = None,
             validation: Optional[Validation] = None,
             histories: Optional[list[list[dict]]] = None,
             on_log: Optional[Callable[[int, list[dict], list[int]], None]] = None,
             on_compiled: Optional[Callable[[float], None]] = None,
             checkpoint_every: int = 0,
             on_checkpoint: Optional[Callable[[int, PyTree, list], None]] = None,
             stop: Optional[Callable[[int], bool]] = None) -> LoopResult:
  """Runs `state, metrics = step(state, *args)` for iterations `start .. iters - 1`.

  Args:
    step: a jitted `(state, *args) -> (state, metrics)`; `metrics` a dict of scalars, or of
      `[slots]` arrays when `jobs` is set.
    state: the initial state pytree (its buffers may be donated).
    args: the step's other arguments, or `args(iteration)` giving them per iteration (same
      shapes; called once per iteration, in order).
    iters, log_every: the last iteration, and how often to sync with the host (and at the end).
    start: the first iteration (a resumed state's step).
    jobs: None for one job (scalar metrics), or the number of real jobs of a batched step
      (leading axis `slots >= jobs`; the rest are padding).
    compile_key: caches the executable per `(compile_key, shapes)` (`compile_cached`); None
      compiles it for this call only.
    bad_steps: `state -> ` first non-finite iteration (scalar or `[slots]`, -1 when none);
      None: the logged metrics themselves are checked.
    validation: validate and keep the best (`Validation`), or None.
    histories: logs to continue (a resumed run).
    on_log: `on_log(iteration, per_job_metrics, per_job_bad_steps)` at every host sync.
    on_compiled: called with the compile time.
    checkpoint_every, on_checkpoint: `on_checkpoint(iteration, state, histories)` every
      this many iterations before the last (0: never).
    stop: `stop(iteration) -> True` at a host sync ends the fit there (early stopping,
      e.g. ZSSR's learning-rate floor); None: run to `iters`.

  Returns:
    A `LoopResult`.

  Raises:
    NonFiniteLossError: for one job (`jobs` None) whose losses became NaN or inf; a batched
      fit reports it in `bad_steps` instead (the other jobs go on).
  """
  n = 1 if jobs is None else jobs
  feed = args if callable(args) else (lambda _, a=tuple(args): a)
  first = tuple(feed(start)) if start < iters else ()
  t0 = time.perf_counter()
  if start < iters:
    compiled = (compile_cached(step, compile_key, state, *first) if compile_key is not None
                else step.lower(state, *first).compile())
  compile_seconds = time.perf_counter() - t0
  if on_compiled is not None:
    on_compiled(compile_seconds)

  histories = [list(h) for h in histories] if histories else [[] for _ in range(n)]
  vals = best = None
  if validation is not None:
    db = np.atleast_1d(np.asarray(jax.device_get(validation.measure(validation.params(state)))))
    vals = [{"curve": [[start, float(db[i])]], "initial_db": float(db[i]),
             "best_db": float(db[i]), "best_iteration": start,
             "held_out": bool(validation.held_out[i])} for i in range(n)]
    best_db, best = db.copy(), _copy(validation.params(state))
  t0 = time.perf_counter()
  done = start
  for it in range(start, iters):
    state, metrics = compiled(state, *(first if it == start else feed(it)))
    done = it + 1
    if validation is not None and (done % validation.every == 0 or done == iters):
      params = validation.params(state)
      db = np.atleast_1d(np.asarray(jax.device_get(validation.measure(params))))
      better = db > best_db
      if jobs is None:
        best = _copy(params) if better[0] else best
      else:
        best = select(jnp.asarray(better), params, best)
      best_db = np.where(better, db, best_db)
      for i in range(n):
        vals[i]["curve"].append([done, float(db[i])])
        if better[i]:
          vals[i].update(best_db=float(db[i]), best_iteration=done)
    if done % log_every == 0 or done == iters:
      # One host sync for the metrics and the non-finite flags.
      host, flags = jax.device_get((metrics, None if bad_steps is None else bad_steps(state)))
      bad = _bad(host, flags, done, n, jobs is not None)
      if jobs is None and bad[0] >= 0:
        raise NonFiniteLossError(f"a loss became NaN or inf at iteration {bad[0] + 1}")
      per_job = []
      for i in range(n):
        m = {k: float(v if jobs is None else v[i]) for k, v in host.items()}
        m.update(iteration=done, seconds=time.perf_counter() - t0)
        if vals is not None and vals[i]["curve"][-1][0] == done:
          m["val_psnr"] = vals[i]["curve"][-1][1]
        histories[i].append(m)
        per_job.append(m)
      if on_log is not None:
        on_log(done, per_job, bad)
      if stop is not None and stop(done):
        break
    if checkpoint_every and on_checkpoint and done % checkpoint_every == 0 and done < iters:
      on_checkpoint(done, state, histories)
  if vals is not None:
    for v in vals:
      v["kept"] = "best" if validation.keep_best else "last"
    if validation.keep_best:
      state = validation.set_params(state, best)
  jax.block_until_ready(state)
  final = [-1] * n if bad_steps is None else _as_list(jax.device_get(bad_steps(state)), n)
  return LoopResult(state=state, histories=histories, bad_steps=final, validations=vals,
                    compile_seconds=compile_seconds, train_seconds=time.perf_counter() - t0,
                    iterations=max(0, done - start))


def _as_list(bad, n: int) -> list[int]:
  return [int(b) for b in np.atleast_1d(np.asarray(bad))[:n]]


def _bad(host: dict, flags, done: int, n: int, batched: bool) -> list[int]:
  """Per job, the first non-finite iteration known at this sync, or -1: the state's flags
  when it keeps them, else the logged metrics themselves."""
  if flags is not None:
    return _as_list(flags, n)
  out = []
  for i in range(n):
    finite = all(np.isfinite(v if not batched else v[i]) for v in host.values())
    out.append(-1 if finite else done - 1)
  return out
