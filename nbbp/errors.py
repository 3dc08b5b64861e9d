"""One exception family for every mistake a user can make.

Each message says what failed, where (source line and column, node name), why,
and how to fix it. The ``%%bpgraph`` magic turns these into one-line usage
errors, so a learner never sees a traceback for a mistake in their cell.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NbbpError(Exception):
    """Base class of every error nbbp raises on purpose."""

    def __init__(self, message: str, *, line: int | None = None, col: int | None = None,
                 source_line: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col
        self.source_line = source_line

    def located(self, line: int | None, col: int | None, source_line: str | None) -> NbbpError:
        """Attach a source position (first one wins) and return self."""
        if self.line is None:
            self.line, self.col, self.source_line = line, col, source_line
        return self

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        where = f"line {self.line}" + (f", col {self.col + 1}" if self.col is not None else "")
        text = f"{where}: {self.message}"
        if self.source_line is not None:
            text += "\n    " + self.source_line.rstrip()
            if self.col is not None:
                text += "\n    " + " " * self.col + "^"
        return text


class BuildError(NbbpError):
    """The model source or the graph-building calls are wrong."""


class ShapeError(BuildError):
    """Operand shapes do not fit the op."""


class FeedError(NbbpError):
    """A fed or set value names an unknown node or has the wrong shape or type."""


class NumericError(NbbpError):
    """A node produced nan or inf (for example ``log`` of a negative number)."""

    def __init__(self, message: str, *, node: str | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.node = node


class FileFormatError(NbbpError):
    """A saved model file is truncated, tampered with or not an nbbp file."""


def distance(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (``wieght`` →
    ``weight`` is 1), case-insensitive."""
    a, b = a.lower(), b.lower()
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def nearest(word: str, choices: Iterable[str], n: int = 5) -> list[str]:
    """The ``n`` choices closest to ``word`` by :func:`distance` (ties: difflib's
    similarity, then alphabetical)."""
    def key(c: str) -> tuple:
        return (distance(word, c), -difflib.SequenceMatcher(None, word, c).ratio(), c)
    return sorted(set(choices), key=key)[:n]


def closest(word: str, choices: Iterable[str]) -> list[str]:
    """The choices close enough to be what ``word`` meant: same letters in another
    case, difflib's close matches, then those a typo away (:func:`distance`)."""
    choices = sorted(set(choices))
    folded = [c for c in choices if c.lower() == word.lower()]
    limit = len(word) // 3
    typo = [c for c in nearest(word, choices, 3) if distance(word, c) <= limit]
    close = folded + difflib.get_close_matches(word, choices, n=3, cutoff=0.6) + typo
    return list(dict.fromkeys(close))[:3]


def suggest(word: str, choices: Iterable[str], what: str = "name", most: int = 16) -> str:
    """``"did you mean 'tanh'? "`` plus the valid choices (the ``most`` nearest when
    there are more), for error messages."""
    choices = sorted(set(choices))
    close = closest(word, choices)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    if len(choices) > most:
        return (f"{hint}Nearest {what}s: {', '.join(nearest(word, choices, most // 2))} "
                f"(of {len(choices)}).")
    return f"{hint}Valid {what}s: {', '.join(choices)}."
