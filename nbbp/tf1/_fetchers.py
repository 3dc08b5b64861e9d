"""Op types whose fetched value is built in Python from their inputs' values.

A summary op's value is a serialized ``Summary`` protocol buffer (bytes), not a
number, so it is not lowered to nbbp: when a session fetches such a tensor it
fetches the op's inputs instead (in the same compiled run as the other fetches)
and hands their values to ``FETCHERS[op.type](op, values)``. :mod:`.summary`
registers its op types here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FETCHERS: dict[str, Callable[[Any, list], Any]] = {}
