"""``tf.app.flags`` / ``tf.flags``: TensorFlow 1's command-line flags (absl's rules).

``DEFINE_string/integer/float/boolean(name, default, help)`` declare a flag;
``FLAGS.name`` reads it. ``FLAGS`` parses ``sys.argv`` the first time a flag is read
(as TF 1's wrapper around absl does), or ``tf.app.run()`` parses it before calling
``main``. Accepted forms: ``--name=value``, ``--name value``, ``-name=value``; a
boolean also as ``--name`` / ``--noname``; ``--`` ends the flags. Flags nobody
defined are left in the argument list ``main`` receives (TF 1's ``known_only``).

>>> from nbbp.tf1 import flags
>>> fv = flags.FlagValues()
>>> flags.DEFINE_integer("steps", 10, "how many steps", flag_values=fv)
>>> fv(["prog", "--steps", "3", "data.csv"])
['prog', 'data.csv']
>>> fv.steps
3
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._names import module_getattr
from .errors import UsageError


class Error(UsageError):
    """A flag was defined twice, or a command-line value does not parse."""


class DuplicateFlagError(Error):
    """``DEFINE_*`` of a name that is already a flag."""


class IllegalFlagValueError(Error):
    """A value on the command line (or assigned) that the flag's type refuses."""


_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


def _boolean(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    word = str(text).lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("Non-boolean argument to boolean flag")


@dataclass
class _Flag:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any]
    kind: str
    value: Any = None

    def set(self, text: Any) -> None:
        try:
            self.value = None if text is None else self.parse(text)
        except (TypeError, ValueError) as exc:
            raise IllegalFlagValueError(f"flag --{self.name}={text}: {exc}") from None


class FlagValues:
    """The defined flags and their values (``FLAGS``)."""

    def __init__(self) -> None:
        object.__setattr__(self, "_flags", {})
        object.__setattr__(self, "_parsed", False)

    def _define(self, name: str, default: Any, help: str, parse: Callable, kind: str) -> None:
        if name in self._flags:
            raise DuplicateFlagError(
                f"The flag '{name}' is defined twice. Give each DEFINE_{kind} a new name, or "
                f"define it once in the module every script imports.")
        flag = _Flag(name, default, help or "", parse, kind)
        flag.set(default)
        self._flags[name] = flag

    def __call__(self, argv: list[str], known_only: bool = True) -> list[str]:
        """Parse ``argv`` (``argv[0]`` is the program); return the arguments left over."""
        args = list(argv)
        rest, i = args[:1], 1
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                rest += args[i:]
                break
            if not arg.startswith("-") or arg == "-":
                rest.append(arg)
                continue
            body = arg.lstrip("-")
            name, eq, text = body.partition("=")
            flag = self._flags.get(name)
            if flag is None and name.startswith("no") and not eq:
                negated = self._flags.get(name[2:])
                if negated is not None and negated.kind == "boolean":
                    negated.value = False
                    continue
            if flag is None:
                if name in ("help", "helpshort", "helpfull"):
                    print(self.usage(args[0] if args else "program"))
                    raise SystemExit(0)
                if not known_only:
                    raise Error(f"Unknown command line flag '{name}'")
                rest.append(arg)
                continue
            if not eq:
                if flag.kind == "boolean":
                    flag.value = True
                    continue
                if i >= len(args):
                    raise Error(f"Flag --{name} must have a value other than None.")
                text = args[i]
                i += 1
            flag.set(text)
        object.__setattr__(self, "_parsed", True)
        return rest

    def usage(self, program: str) -> str:
        lines = [f"{program}:"]
        for f in self._flags.values():
            lines.append(f"  --{f.name}: {f.help}\n    (default: '{f.default}')")
        return "\n".join(lines)

    def is_parsed(self) -> bool:
        return self._parsed

    def flag_values_dict(self) -> dict[str, Any]:
        self._parse_once()
        return {n: f.value for n, f in self._flags.items()}

    def _parse_once(self) -> None:
        if not self._parsed:
            try:
                self(sys.argv)
            except Error as exc:
                raise Error(f"FATAL Flags parsing error: {exc}") from None

    def __getattr__(self, name: str) -> Any:
        flags = self.__dict__["_flags"]
        if name not in flags:
            import difflib
            close = difflib.get_close_matches(name, list(flags), n=1)
            hint = f"; did you mean FLAGS.{close[0]}?" if close else \
                f"; define it first with tf.app.flags.DEFINE_string('{name}', default, help)"
            raise AttributeError(f"Unknown flag: '{name}'" + hint)
        self._parse_once()
        return flags[name].value

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._flags:
            raise AttributeError(f"Unknown flag: '{name}'; define it before setting it")
        self._flags[name].set(value)

    def __contains__(self, name: str) -> bool:
        return name in self._flags

    def __repr__(self) -> str:
        return f"<FLAGS {', '.join(self._flags) or 'none defined'}>"


FLAGS = FlagValues()


def _def(kind: str, parse: Callable) -> Callable:
    def define(name: str, default: Any, help: str | None = None,
               flag_values: FlagValues = FLAGS, **unused: Any) -> None:
        flag_values._define(name, default, help or "", parse, kind)
    define.__name__ = define.__qualname__ = f"DEFINE_{kind}"
    define.__doc__ = f"Define a {kind} flag ``--{{name}}`` with ``default`` and ``help``."
    return define


DEFINE_string = _def("string", str)
DEFINE_integer = _def("integer", int)
DEFINE_float = _def("float", float)
DEFINE_boolean = _def("boolean", _boolean)
DEFINE_bool = DEFINE_boolean

__all__ = ["DEFINE_bool", "DEFINE_boolean", "DEFINE_float", "DEFINE_integer", "DEFINE_string",
           "DuplicateFlagError", "Error", "FLAGS", "FlagValues", "IllegalFlagValueError"]

__getattr__ = module_getattr("flags")
