"""What every ikejax program shares: bad input is one `error: ...` line and exit status 2."""

from __future__ import annotations

import sys
from typing import Callable, NoReturn, Sequence

from absl import app
from absl import flags


def fail(message: str) -> NoReturn:
  """Prints `error: message` on one line and exits 2 (the CLIs' bad-input contract)."""
  # absl and Pillow messages can span lines; the contract is a single line.
  print("error: " + " ".join(str(message).split()), file=sys.stderr)
  sys.exit(2)


def show_in_help(doc: str) -> None:
  """`--help` prints `doc` and the flags defined so far, however the program was started
  (an installed command's `__main__` is a generated stub)."""
  sys.modules["__main__"].__doc__ = doc
  for name, flag in flags.FLAGS.flags_by_module_dict().items():
    if name.startswith("ikejax.cli"):
      for f in flag:
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], f)


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's parse of the global flags, with a bad or unknown flag as `fail`'s one line."""
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as e:
    fail(str(e).splitlines()[0])


def run_program(define_flags: Callable[[], None], main: Callable, doc: str) -> None:
  """Defines a small program's flags, then runs `main` with `parse_flags`; `doc` is its help."""
  define_flags()
  show_in_help(doc)
  app.run(main, flags_parser=parse_flags)
