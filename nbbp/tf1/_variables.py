"""Variables, initialisers and variable scopes, with TensorFlow 1's rules.

A :class:`Variable` is a tensor whose value lives in each session, not in the
graph: it has none until its ``initializer`` (an ``Assign`` of its initial value)
runs in that session. ``get_variable`` looks variables up by their full name in
the current :func:`variable_scope` and refuses, as TF 1 does, to create one that
exists (without ``reuse``) or to reuse one that does not.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._core import (
    Operation,
    Tensor,
    check_name,
    constant,
    convert_to_tensor,
    get_default_graph,
    graph_of,
    session_for,
)
from ._ops import random_normal, random_uniform, truncated_normal, zeros
from ._types import (
    as_dtype,
    as_shape,
    check_convertible,
    compatible,
    float32,
    fully_known,
    shape_list_str,
    shape_str,
)
from .errors import DTypeError, NotSupportedError, UsageError, VariableScopeError

GLOBAL_VARIABLES = "variables"
TRAINABLE_VARIABLES = "trainable_variables"


class GraphKeys:
    """Names of the standard collections (``tf.GraphKeys.TRAINABLE_VARIABLES``, …)."""

    GLOBAL_VARIABLES = GLOBAL_VARIABLES
    TRAINABLE_VARIABLES = TRAINABLE_VARIABLES
    GLOBAL_STEP = "global_step"


class _AutoReuse:
    def __repr__(self) -> str:
        return "tf.AUTO_REUSE"


AUTO_REUSE = _AutoReuse()


class Variable(Tensor):
    """A tensor whose value a session keeps, set by ``initializer`` or ``assign``.

    >>> import nbbp.tf1 as tf
    >>> with tf.Graph().as_default():
    ...     w = tf.Variable(5.0, name="w")
    ...     with tf.Session() as sess:
    ...         _ = sess.run(w.initializer)
    ...         print(sess.run(w.assign_add(1.0)))
    6.0
    """

    __slots__ = ("initial_value", "initializer", "trainable")

    def __init__(self, initial_value: Any = None, trainable: bool = True,
                 name: str | None = None, dtype: Any = None, validate_shape: bool = True,
                 collections: list[str] | None = None, **unused: Any) -> None:
        if initial_value is None:
            raise UsageError("tf.Variable needs an initial_value, e.g. tf.Variable(0.0) or "
                             "tf.Variable(tf.zeros([2, 3]))")
        g = graph_of([initial_value], "tf.Variable")
        full = g.unique_name(check_name(name or "Variable", "variable name"))
        dt = None if dtype is None else as_dtype(dtype, "tf.Variable(dtype)")
        with g._absolute_scope(full):
            value = initial_value() if callable(initial_value) else initial_value
            if dt is not None and not isinstance(value, Tensor):
                check_convertible(value, dt)
            init = convert_to_tensor(value, dtype=dt, name="initial_value", graph=g)
        if init.dtype.kind == "s":
            g._truncate(init.op.id)
            raise NotSupportedError(f"tf.Variable {full!r} of tf.string is not supported by "
                                    "nbbp.tf1: it has string constants and tf.identity only; "
                                    "use tf.constant for fixed strings")
        if not fully_known(init._shape):
            raise UsageError(f"tf.Variable {full!r}: the initial value {init!r} has shape "
                             f"{shape_str(init._shape)}; a variable's shape must be fully "
                             "known (give the placeholder a shape, or use tf.zeros([...]))")
        op = g._add_op("VariableV2", (), {"shape": init._shape, "dtype": init.dtype}, full,
                       False)
        super().__init__(op, init._shape, init.dtype)
        op.outputs.append(self)
        self.initial_value = init
        self.trainable = bool(trainable)
        with g._absolute_scope(full):
            self.initializer = _assign_op(self, init, "Assign", "Assign").op
        for key in collections or [GLOBAL_VARIABLES]:
            g.add_to_collection(key, self)
        if self.trainable and TRAINABLE_VARIABLES not in (collections or []):
            g.add_to_collection(TRAINABLE_VARIABLES, self)

    def _type_word(self) -> str:
        return "tf.Variable"

    def _dtype_word(self) -> str:
        return self.dtype.name + "_ref"

    __str__ = Tensor.__repr__

    def value(self) -> Variable:
        return self

    read_value = value

    def assign(self, value: Any, use_locking: Any = None, name: str | None = None,
               read_value: bool = True) -> Tensor:
        """An op setting the variable to ``value``; fetching it gives the new value."""
        return _assign_op(self, value, "Assign", name or "Assign")

    def assign_add(self, delta: Any, use_locking: Any = None, name: str | None = None,
                   read_value: bool = True) -> Tensor:
        """An op adding ``delta`` to the variable; fetching it gives the new value."""
        return _assign_op(self, delta, "AssignAdd", name or "AssignAdd")

    def assign_sub(self, delta: Any, use_locking: Any = None, name: str | None = None,
                   read_value: bool = True) -> Tensor:
        """An op subtracting ``delta`` from the variable."""
        return _assign_op(self, delta, "AssignSub", name or "AssignSub")

    def load(self, value: Any, session: Any = None) -> None:
        """Write ``value`` into the variable in ``session`` (no op is added)."""
        session_for(self, session, "load()")._store(self, value, "load")


def _assign_op(var: Variable, value: Any, type: str, name: str) -> Tensor:
    g = var.graph
    full = g.unique_name(check_name(name, f"{type} name"))
    with g._absolute_scope(full):
        if not isinstance(value, Tensor):
            check_convertible(value, var.dtype)
        v = convert_to_tensor(value, dtype=None if isinstance(value, Tensor) else var.dtype,
                              name="value", graph=g)
    if v.graph is not g:
        graph_of([var, v], f"{var.op.name}.{type.lower()}")
    if v._shape is not None and not compatible(v._shape, var._shape):
        raise UsageError(f"{type} {full!r}: shapes must be equal, but variable "
                         f"{var.op.name!r} has shape {shape_list_str(var._shape)} and the "
                         f"value {v.name!r} has shape {shape_list_str(v._shape)}; pass a value "
                         "of the variable's shape (a variable's shape is fixed)")
    if v.dtype is not var.dtype:
        raise DTypeError(f"Input 'value' of '{type}' Op has type {v.dtype.name} that does not "
                         f"match type {var.dtype.name} of argument 'ref'.")
    inputs = (v,) if type == "Assign" else (var, v)
    return g._add_op(type, inputs, {"var": var}, full, var._shape, dtype=var.dtype).outputs[0]


def assign(ref: Variable, value: Any, name: str | None = None, **unused: Any) -> Tensor:
    return _as_var(ref, "tf.assign").assign(value, name=name)


def assign_add(ref: Variable, value: Any, name: str | None = None, **unused: Any) -> Tensor:
    return _as_var(ref, "tf.assign_add").assign_add(value, name=name)


def assign_sub(ref: Variable, value: Any, name: str | None = None, **unused: Any) -> Tensor:
    return _as_var(ref, "tf.assign_sub").assign_sub(value, name=name)


def _as_var(ref: Any, what: str) -> Variable:
    if not isinstance(ref, Variable):
        raise UsageError(f"{what} needs a tf.Variable as ref, got {ref!r}")
    return ref


def global_variables() -> list[Variable]:
    return get_default_graph().get_collection(GLOBAL_VARIABLES)


def trainable_variables() -> list[Variable]:
    return get_default_graph().get_collection(TRAINABLE_VARIABLES)


def group(*inputs: Any, name: str | None = None) -> Operation:
    """One operation that runs all of ``inputs`` (operations or tensors)."""
    ops = [x.op if isinstance(x, Tensor) else x for x in inputs]
    for x in ops:
        if not isinstance(x, Operation):
            raise UsageError(f"tf.group takes operations and tensors, got {x!r}")
    g = graph_of(ops, "tf.group")
    return g._add_op("NoOp", (), {}, g.unique_name(name or "group_deps"), False, tuple(ops))


def no_op(name: str | None = None) -> Operation:
    return group(name=name or "NoOp")


def variables_initializer(var_list: list[Variable], name: str = "init") -> Operation:
    """One operation running the initializers of ``var_list``."""
    return group(*[v.initializer for v in var_list], name=name)


def global_variables_initializer() -> Operation:
    """Initialise every global variable of the default graph **that exists now** —
    variables created later (e.g. by an optimizer's ``minimize``) are not included."""
    return variables_initializer(global_variables(), name="init")


# ---------------------------------------------------------------------------
# initialisers: callables (shape) → initial-value tensor
# ---------------------------------------------------------------------------


class Initializer:
    """Base class: ``init(shape)`` builds the initial-value tensor of that shape."""

    def __call__(self, shape: Any, dtype: Any = None, partition_info: Any = None) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"tf.{type(self).__name__}({args})"


def _dt(dtype: Any) -> Any:
    return float32 if dtype is None else as_dtype(dtype)


class zeros_initializer(Initializer):
    def __init__(self, dtype: Any = None) -> None:
        pass

    def __call__(self, shape, dtype=None, partition_info=None):
        return zeros(shape, dtype=_dt(dtype))


class ones_initializer(Initializer):
    def __init__(self, dtype: Any = None) -> None:
        pass

    def __call__(self, shape, dtype=None, partition_info=None):
        return constant(1, dtype=_dt(dtype), shape=shape, name="ones")


class constant_initializer(Initializer):
    def __init__(self, value: Any = 0, dtype: Any = None, verify_shape: bool = False) -> None:
        self.value = value

    def __call__(self, shape, dtype=None, partition_info=None):
        value = np.asarray(self.value) if not isinstance(self.value, (int, float)) \
            else self.value
        return constant(value, dtype=_dt(dtype), shape=shape)


class random_normal_initializer(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 1.0, seed: int | None = None,
                 dtype: Any = None) -> None:
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None, partition_info=None):
        return random_normal(shape, self.mean, self.stddev, seed=self.seed, dtype=_dt(dtype))


class truncated_normal_initializer(random_normal_initializer):
    def __call__(self, shape, dtype=None, partition_info=None):
        return truncated_normal(shape, self.mean, self.stddev, seed=self.seed,
                                dtype=_dt(dtype))


class random_uniform_initializer(Initializer):
    def __init__(self, minval: float = 0.0, maxval: float | None = None,
                 seed: int | None = None, dtype: Any = None) -> None:
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape, dtype=None, partition_info=None):
        return random_uniform(shape, self.minval, self.maxval, seed=self.seed,
                              dtype=_dt(dtype))


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """TF's fan-in and fan-out of a weight shape."""
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    field = math.prod(shape[:-2])
    return float(shape[-2] * field), float(shape[-1] * field)


class variance_scaling_initializer(Initializer):
    """Samples with variance ``scale / n`` (n: fan-in, fan-out or their mean)."""

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: int | None = None,
                 dtype: Any = None) -> None:
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise UsageError(f"mode={mode!r}: use 'fan_in', 'fan_out' or 'fan_avg'")
        if distribution not in ("normal", "truncated_normal", "untruncated_normal", "uniform"):
            raise UsageError(f"distribution={distribution!r}: use 'truncated_normal', "
                             "'untruncated_normal' or 'uniform'")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def __call__(self, shape, dtype=None, partition_info=None):
        s = as_shape(shape, "initializer shape")
        dt = _dt(dtype)
        fan_in, fan_out = _fans(s)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        scale = self.scale / max(1.0, n)
        if self.distribution in ("normal", "truncated_normal"):
            # TF divides by the std of a unit normal truncated to [-2, 2]
            return truncated_normal(s, 0.0, math.sqrt(scale) / 0.87962566103423978,
                                    seed=self.seed, dtype=dt)
        if self.distribution == "untruncated_normal":
            return random_normal(s, 0.0, math.sqrt(scale), seed=self.seed, dtype=dt)
        limit = math.sqrt(3.0 * scale)
        return random_uniform(s, -limit, limit, seed=self.seed, dtype=dt)


class glorot_uniform_initializer(variance_scaling_initializer):
    """Uniform in ±sqrt(6 / (fan_in + fan_out)): TF 1's default for get_variable."""

    def __init__(self, seed: int | None = None, dtype: Any = None) -> None:
        super().__init__(1.0, "fan_avg", "uniform", seed)


class glorot_normal_initializer(variance_scaling_initializer):
    def __init__(self, seed: int | None = None, dtype: Any = None) -> None:
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)


# ---------------------------------------------------------------------------
# variable scopes and get_variable
# ---------------------------------------------------------------------------


class VariableScope:
    """A variable scope: a name prefix for ``get_variable``, whether it reuses
    existing variables, and a default initializer."""

    def __init__(self, name: str, reuse: Any = False, initializer: Any = None,
                 name_scope: str = "") -> None:
        self.name, self._reuse, self.initializer = name, reuse, initializer
        self.original_name_scope = name_scope

    @property
    def reuse(self) -> Any:
        return self._reuse

    def reuse_variables(self) -> None:
        """From now on, ``get_variable`` in this scope returns existing variables."""
        self._reuse = True

    def __repr__(self) -> str:
        return f"<tf.VariableScope {self.name!r} reuse={self._reuse!r}>"


def get_variable_scope() -> VariableScope:
    g = get_default_graph()
    if g._var_scope_stack:
        return g._var_scope_stack[-1]
    if g._var_scope_root is None:
        g._var_scope_root = VariableScope("")
    return g._var_scope_root


@contextlib.contextmanager
def variable_scope(name_or_scope: Any = None, default_name: str | None = None,
                   values: list | None = None, initializer: Any = None, reuse: Any = None,
                   **unused: Any) -> Iterator[VariableScope]:
    """Prefix ``get_variable`` names with ``name/`` and open a name scope of that name.

    ``reuse=True`` makes ``get_variable`` return existing variables (and fail for
    new names); ``reuse=tf.AUTO_REUSE`` returns them if they exist and creates
    them otherwise. Reuse is inherited by nested scopes and cannot be turned off.
    """
    g = graph_of(values or [], "tf.variable_scope")
    with g.as_default():
        parent = get_variable_scope()
        if reuse not in (None, False, True) and reuse is not AUTO_REUSE:
            raise UsageError(f"variable_scope(reuse={reuse!r}): use True, False, None or "
                             "tf.AUTO_REUSE")
        if isinstance(name_or_scope, VariableScope):
            full = name_or_scope.name
            ns = name_or_scope.original_name_scope or ""
            own = name_or_scope.reuse
        elif name_or_scope is not None:
            check_name(name_or_scope, "variable_scope")
            full = f"{parent.name}/{name_or_scope}" if parent.name else name_or_scope
            ns, own = name_or_scope, False
        else:
            if default_name is None:
                raise UsageError("variable_scope needs a name_or_scope or a default_name")
            if reuse is True:
                raise UsageError("reuse=True cannot be used without a name_or_scope")
            check_name(default_name, "variable_scope")
            base = f"{parent.name}/{default_name}" if parent.name else default_name
            k = g._var_scope_counts.get(base, 0)
            full = base if k == 0 else f"{base}_{k}"
            ns, own = default_name, False
        g._var_scope_counts[full] = g._var_scope_counts.get(full, 0) + 1
        if parent.reuse is True:
            new_reuse = True
        elif reuse in (None, False):
            new_reuse = own if own else parent.reuse
        else:
            new_reuse = reuse
        counts = g._var_scope_counts
        saved = dict(counts) if isinstance(name_or_scope, VariableScope) else None
        with g.name_scope(ns) as scope_str:
            vs = VariableScope(full, new_reuse, initializer or parent.initializer, scope_str)
            g._var_scope_stack.append(vs)
            try:
                yield vs
            finally:
                g._var_scope_stack.pop()
                # TF 1 closes the sub-scopes on the way out, so entering "model" again
                # numbers its layers dense, dense_1, … again (and reuse finds them)
                if saved is not None:
                    counts.clear()
                    counts.update(saved)
                else:
                    for k in counts:
                        if k.startswith(full + "/"):
                            counts[k] = 0


def get_variable(name: str, shape: Any = None, dtype: Any = None, initializer: Any = None,
                 regularizer: Any = None, trainable: bool | None = None,
                 collections: list[str] | None = None, **unused: Any) -> Variable:
    """The variable ``scope/name``: a new one, or with reuse the existing one.

    Without reuse, a second ``get_variable`` of the same name in the same scope is
    an error (TensorFlow 1's rule); see :func:`variable_scope`.
    """
    g = get_default_graph()
    vs = get_variable_scope()
    check_name(name, "get_variable")
    full = f"{vs.name}/{name}" if vs.name else name
    s = as_shape(shape, f"get_variable({name!r}, shape=...)")
    existing = g._var_store.get(full)
    if existing is not None:
        if not vs.reuse:
            raise VariableScopeError(
                f"Variable {full} already exists, disallowed. Did you mean to set reuse=True "
                f"or reuse=tf.AUTO_REUSE in VarScope? To share the existing variable, get it "
                f"inside tf.variable_scope({vs.name or '...'!r}, reuse=True) (or "
                f"reuse=tf.AUTO_REUSE); to make a second variable, give it another name, "
                f"e.g. tf.get_variable({name + '_2'!r}, ...), or create it in another scope.")
        if s is not None and tuple(s) != existing._shape:
            raise VariableScopeError(
                f"Trying to share variable {full}, but specified shape {shape_str(s)} and "
                f"found shape {shape_str(existing._shape)}. Leave out shape= when reusing, "
                "or use another name for a variable of a different shape.")
        return existing
    if vs.reuse is True:
        raise VariableScopeError(
            f"Variable {full} does not exist, or was not created with tf.get_variable(). "
            f"Did you mean to set reuse=tf.AUTO_REUSE in VarScope? Create it first, outside "
            f"reuse (or with reuse=tf.AUTO_REUSE), then reuse it; variables made with "
            f"tf.Variable(...) are not found by get_variable.")
    dt = float32 if dtype is None else as_dtype(dtype, "get_variable(dtype)")
    init = initializer if initializer is not None else (
        vs.initializer if vs.initializer is not None else glorot_uniform_initializer())
    initial: Any
    if isinstance(init, Tensor) or not callable(init):
        value = init
        if s is not None:
            vshape = value._shape if isinstance(value, Tensor) else np.shape(value)
            if vshape is None or tuple(vshape) != tuple(s):
                raise UsageError(f"get_variable({full!r}): the initializer value has shape "
                                 f"{shape_str(None if vshape is None else tuple(vshape))} but "
                                 f"shape={list(s)}; if the initializer is a value, leave "
                                 "out shape")
        initial = value
    else:
        if not fully_known(s):
            raise UsageError(f"Shape of a new variable ({full}) must be fully defined, but "
                             f"instead was {shape_str(s)}. Pass shape=[...] to get_variable.")

        def initial() -> Tensor:
            with g.name_scope("Initializer"):
                return _call_initializer(init, s, dt)

    with g._absolute_scope(""):
        var = Variable(initial, name=full, trainable=True if trainable is None else trainable,
                       collections=collections, dtype=dt)
    g._var_store[full] = var
    return var


def _call_initializer(init: Callable, shape: tuple, dtype: Any) -> Tensor:
    if isinstance(init, type):      # initializer=tf.zeros_initializer: TF 1 makes one
        init = init()
    out = init(list(shape), dtype=dtype)
    return convert_to_tensor(out, dtype=dtype)
