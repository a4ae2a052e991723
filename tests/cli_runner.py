"""Runs the command-line programs as the tests need them: `run(module, *args)`.

Each run is a fresh process (its own flags, JAX backend and exit code), forked from a server
that has imported the programs and JAX once, so that a run costs what the program does, not
the seconds of importing JAX. A run whose environment differs from the server's in anything
JAX reads at import (JAX_*, XLA_*) gets a real `python -m` subprocess instead.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
from typing import Optional

# The server: reads one JSON request per line, forks a child that runs the program with
# stdout and stderr in files, answers with the exit code.
_SERVER = r"""
import importlib, json, os, signal, sys, time
# What the programs import, not the programs run as __main__ (runpy warns on those).
import jax, ikejax.cli.common, ikejax.cli.main, ikejax.imaging.degrade, ikejax.imaging.metrics
import ikejax.runs.methods
for line in sys.stdin:
  req = json.loads(line)
  pid = os.fork()
  if pid == 0:
    try:
      os.chdir(req["cwd"])
      os.environ.clear(); os.environ.update(req["env"])
      for fd, name in ((1, "out"), (2, "err")):
        f = os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd); os.close(f)
      sys.argv = [req["module"]] + req["args"]
      import runpy
      runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
      code = 0
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
      if not isinstance(e.code, (int, type(None))):
        print(e.code, file=sys.stderr)
    except BaseException:
      import traceback; traceback.print_exc(); code = 1
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(code)
  deadline = time.monotonic() + req["timeout"]
  while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
      rc = os.waitstatus_to_exitcode(status); break
    if time.monotonic() > deadline:
      os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0); rc = "timeout"; break
    time.sleep(0.02)
  print(json.dumps({"rc": rc}), flush=True)
"""

_lock = threading.Lock()
_server: Optional[subprocess.Popen] = None
_server_env: dict = {}


def _import_env(env: dict) -> dict:
  return {k: v for k, v in env.items() if k.startswith(("JAX_", "XLA_"))}


def _get_server() -> subprocess.Popen:
  global _server, _server_env
  if _server is None or _server.poll() is not None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _server_env = dict(os.environ)
    _server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=root, env=_server_env)
    atexit.register(_server.kill)
  return _server


def run(module: str, *args: str, timeout: float = 300, env: Optional[dict] = None,
        cwd: Optional[str] = None) -> subprocess.CompletedProcess:
  """`python -m module *args`, as `subprocess.run(..., capture_output=True, text=True)`."""
  env = dict(os.environ if env is None else env)
  cwd = os.getcwd() if cwd is None else cwd
  args = [str(a) for a in args]
  with _lock:
    server = _get_server()
    if _import_env(env) != _import_env(_server_env):
      return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                            text=True, timeout=timeout, env=env, cwd=cwd)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
      out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
      req = {"module": module, "args": args, "env": env, "cwd": cwd, "out": out, "err": err,
             "timeout": timeout}
      server.stdin.write(json.dumps(req) + "\n")
      server.stdin.flush()
      rc = json.loads(server.stdout.readline())["rc"]
      if rc == "timeout":
        raise subprocess.TimeoutExpired([module, *args], timeout)
      with open(out) as f_out, open(err) as f_err:
        return subprocess.CompletedProcess([module, *args], rc, f_out.read(), f_err.read())
