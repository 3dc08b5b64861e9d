"""Saving and loading models: one ``.nbbp`` file, plain data, never pickle.

A ``.nbbp`` file is a zip of ``graph.json`` (the model's forward nodes in build
order) and ``values.npz`` (every leaf's current value); :mod:`nbbp.files` writes
and reads it and describes the format. Loading reads JSON and
``np.load(..., allow_pickle=False)`` only — no code runs — and rebuilds the graph
with the op table, so every shape is checked again; the gradient nodes are rebuilt
by :class:`nbbp.Model`. A truncated, tampered or foreign file raises
:class:`~nbbp.errors.FileFormatError` naming the file and the problem, before
anything is returned.

This module is the model-level face of the file format (it sits beside the
model; the model itself saves through :mod:`nbbp.files`).

>>> import nbbp, tempfile, os
>>> from nbbp import io
>>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
>>> path = os.path.join(tempfile.mkdtemp(), "f.nbbp")
>>> io.save(m, path)
>>> io.load(path).grads
{'x': 12.0, 'y': 10.0}
"""

from __future__ import annotations

import os
from typing import Any

from .errors import FileFormatError, NbbpError
from .files import FORMAT, VERSION, read, write
from .model import Model


def save(model: Any, path: str | os.PathLike) -> None:
    """Write ``model`` (its forward graph and current leaf values) to ``path``.

    The file is written next to its final place and then renamed, so a crash
    never leaves half a file under the name.
    """
    if not isinstance(model, Model):
        raise NbbpError(f"save needs an nbbp.Model, got {type(model).__name__}")
    model.save(path)


def load(path: str | os.PathLike, engine: str | None = None) -> Model:
    """Read a model saved by :func:`save`; ``engine`` overrides the saved one.

    Raises :class:`FileFormatError` for a file that is not a valid ``.nbbp`` file.
    """
    saved = read(path)
    try:
        return Model(saved.output, engine=engine or saved.engine or "numba",
                     source=saved.source, name=saved.name)
    except NbbpError as exc:
        raise FileFormatError(f"{os.fspath(path)}: the saved model does not rebuild: "
                              f"{exc}") from None


__all__ = ["FORMAT", "VERSION", "load", "save", "write", "read"]
