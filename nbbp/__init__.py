"""nbbp — see backpropagation: computation graphs with the gradient on every edge.

``import nbbp`` is light (NumPy only): Numba loads when a model first runs, and
IPython, ipywidgets and Graphviz only where they are used. In a notebook,
``%load_ext nbbp`` registers the ``%%bpgraph`` cell magic.
"""

from __future__ import annotations

from .build import build
from .core.autodiff import grad, gradients
from .core.graph import Graph, Node, const, input, param, scope
from .core.ops import FUNCTIONS as _FUNCTIONS
from .core.ops import OPS
from .errors import BuildError, FeedError, FileFormatError, NbbpError, NumericError, ShapeError
from .model import Edge, Model
from .train.check import GradientCheckError, check_grads
from .train.losses import (
    bce_with_logits,
    hinge,
    mae,
    mse,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
)

globals().update(_FUNCTIONS)     # nbbp.tanh, nbbp.matmul, … straight from the op table

__version__ = "0.1.0"

# submodules that load on first use, and where they live
_LAZY = {"datasets": "train.datasets", "io": "io", "optim": "train.optim", "sweep": "sweep",
         "tf1": "tf1", "train": "train", "widgets": "widgets"}


def __getattr__(name: str):
    """Submodules that load on first use: nbbp.datasets, nbbp.optim, nbbp.tf1, …"""
    if name in _LAZY:
        import importlib
        return importlib.import_module(f"{__name__}.{_LAZY[name]}")
    raise AttributeError(f"module 'nbbp' has no attribute {name!r}")


def from_torch(model, *example_inputs, **kw) -> Model:
    """A PyTorch module or function as a model (``nbbp.importers.torch.from_torch``;
    imports PyTorch here, never in ``import nbbp``)."""
    from .importers import from_torch as _from_torch
    return _from_torch(model, *example_inputs, **kw)


def from_jax(fn, *example_args, **kw) -> Model:
    """A JAX function as a model (``nbbp.importers.jax.from_jax``; imports JAX here)."""
    from .importers import from_jax as _from_jax
    return _from_jax(fn, *example_args, **kw)


def load(path, engine: str | None = None) -> Model:
    """Load a model saved with ``Model.save`` (one ``.nbbp`` file; never runs code)."""
    from .io import load as _load
    return _load(path, engine=engine)

__all__ = ["BuildError", "Edge", "FeedError", "FileFormatError", "GradientCheckError",
           "Graph", "Model", "NbbpError", "Node", "NumericError", "OPS", "ShapeError", "build",
           "check_grads", "const", "from_jax", "from_torch", "grad", "gradients", "input",
           "load", "param", "scope",
           "mse", "mae", "bce_with_logits", "softmax_cross_entropy", "hinge",
           "sparse_softmax_cross_entropy",
           *sorted(_FUNCTIONS)]


def load_ipython_extension(ipython) -> None:
    """``%load_ext nbbp``: register the ``%%bpgraph`` magic (imports IPython here)."""
    from .magic import load_ipython_extension as _load
    _load(ipython)


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext nbbp``: nbbp's errors show full tracebacks again."""
    from .magic import unload_ipython_extension as _unload
    _unload(ipython)
