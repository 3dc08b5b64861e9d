"""Front ends for models written in other frameworks: ``nbbp.from_torch`` and
``nbbp.from_jax`` (docs/import.md).

Each captures the framework's own program (``torch.export``, ``jax.make_jaxpr``)
and rebuilds it from nbbp's builder functions; neither computes the model itself.
PyTorch and JAX are imported by these functions, never by ``import nbbp``.
"""

from __future__ import annotations

from typing import Any


def from_torch(model: Any, *example_inputs: Any, **kw: Any):
    """See :func:`nbbp.importers.torch.from_torch`."""
    from .torch import from_torch as _from_torch
    return _from_torch(model, *example_inputs, **kw)


def from_jax(fn: Any, *example_args: Any, **kw: Any):
    """See :func:`nbbp.importers.jax.from_jax`."""
    from .jax import from_jax as _from_jax
    return _from_jax(fn, *example_args, **kw)
