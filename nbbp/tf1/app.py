"""``tf.app``: ``tf.app.run()`` parses the command-line flags and calls ``main(argv)``.

As in TF 1 (absl's ``app.run``): ``main`` defaults to the ``main`` function of the
script being run; it receives ``sys.argv`` without the flags it defined; its return
value is the process's exit status (``sys.exit(main(argv))``). A value that does not
parse stops the program with absl's ``FATAL Flags parsing error: …`` and status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from . import flags
from ._names import module_getattr
from .errors import UsageError


def run(main: Callable[[list[str]], Any] | None = None, argv: list[str] | None = None) -> None:
    """Parse flags from ``argv`` (default ``sys.argv``), then ``sys.exit(main(rest))``."""
    if main is None:
        main = getattr(sys.modules.get("__main__"), "main", None)
        if main is None:
            raise UsageError("tf.app.run() calls the script's main(argv); define "
                             "def main(_): ... before calling it, or pass tf.app.run(main=f)")
    try:
        rest = flags.FLAGS(sys.argv if argv is None else argv, known_only=True)
    except flags.Error as exc:
        print(f"FATAL Flags parsing error: {exc}\n"
              "Pass --helpshort or --helpfull to see help on flags.", file=sys.stderr)
        raise SystemExit(1) from None
    sys.exit(main(rest))


__all__ = ["flags", "run"]

__getattr__ = module_getattr("app")
