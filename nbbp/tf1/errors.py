"""``tf.errors`` for :mod:`nbbp.tf1`: TensorFlow 1's exceptions, in nbbp's family.

Every class derives from :class:`nbbp.errors.NbbpError`, and also from the
Python exception TensorFlow 1 raises in the same situation (``ValueError`` for a
second ``get_variable``, ``TypeError`` for a bad fetch, …), so both
``except tf.errors.FailedPreconditionError`` and ``except ValueError`` work as
they do with TensorFlow.
"""

from __future__ import annotations

from ..errors import FeedError, NbbpError
from ..errors import ShapeError as _NbbpShapeError


class TF1Error(NbbpError):
    """Base class of the errors :mod:`nbbp.tf1` raises."""


class OpError(TF1Error):
    """An operation failed while a session ran (TensorFlow's ``tf.errors.OpError``)."""


class InvalidArgumentError(OpError):
    """A run lacked a value it needs, e.g. an unfed placeholder."""


class NotFoundError(OpError):
    """A checkpoint lacks a variable the graph asks for (``Key W not found in checkpoint``)."""


class FailedPreconditionError(OpError):
    """A run read a variable that was not initialised in this session."""


class GraphMismatchError(TF1Error, ValueError):
    """A tensor or operation was used with a graph it does not belong to."""


class FetchError(TF1Error, TypeError):
    """``Session.run`` got a fetch or a feed key it cannot interpret."""


class FeedShapeError(TF1Error, FeedError, ValueError):
    """A fed value does not have the shape of the tensor it feeds."""


class VariableScopeError(TF1Error, ValueError):
    """``get_variable`` broke the sharing rules of its variable scope."""


class ShapeError(_NbbpShapeError, TF1Error, ValueError):
    """An op's operands have shapes that do not fit (raised while building)."""


class DTypeError(TF1Error, TypeError):
    """Operands of different dtypes, or a value that does not fit a tensor's dtype
    (TensorFlow raises ``TypeError``)."""


class ClosedSessionError(TF1Error, RuntimeError):
    """The session was closed."""


class UsageError(TF1Error, ValueError):
    """An argument is not what the TensorFlow 1 function accepts."""


class NotSupportedError(TF1Error, AttributeError):
    """A TensorFlow 1 name that :mod:`nbbp.tf1` does not provide."""


__all__ = ["ClosedSessionError", "DTypeError", "FailedPreconditionError", "FeedShapeError",
           "FetchError", "GraphMismatchError", "InvalidArgumentError", "NotFoundError",
           "NotSupportedError", "OpError", "ShapeError", "TF1Error", "UsageError",
           "VariableScopeError"]
