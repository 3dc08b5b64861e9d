"""``nbbp.from_jax``: a JAX function as an nbbp model.

The function is traced with ``jax.make_jaxpr`` (in 64-bit mode when an argument is
float64; a float32 function as JAX runs it by default) and each jaxpr
primitive is rebuilt from nbbp's builders; ``jit``/``pjit`` and ``custom_jvp``/
``custom_vjp`` calls are inlined, so ``jax.nn.log_softmax`` shows its inside. Leaves of
the params pytree (argument 0 by default, as ``jax.grad``) are params named by their
key paths (``{"hidden": {"W": …}}`` → ``hidden/W``); the other arguments are inputs
named after the function's parameters. Equations that depend on no float leaf
(``iota``, one-hot masks of integer labels) are evaluated by JAX as constants.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .. import errors
from ..core import ops
from ..core.graph import Node
from ..model import Model
from . import _lower as L
from ._lower import MISSING, Lowering, Variant

HANDLERS: dict[str, Callable[..., Any]] = {}
CALLS = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr",
         "core_call": "call_jaxpr", "custom_jvp_call": "call_jaxpr",
         "custom_vjp_call": "call_jaxpr", "custom_vjp_call_jaxpr": "fun_jaxpr",
         "remat": "jaxpr", "checkpoint": "jaxpr"}


for _n in ("tanh", "exp", "log", "sqrt", "abs", "sin", "cos", "neg", "sign",
           "stop_gradient", "erf"):
    HANDLERS[_n] = lambda x, _f=ops.FUNCTIONS[_n], **p: _f(x)
for _n, _f in (("add", ops.add), ("sub", ops.sub), ("mul", ops.mul), ("div", ops.div),
               ("max", ops.maximum), ("min", ops.minimum), ("pow", ops.pow),
               ("gt", ops.gt), ("ge", ops.ge), ("lt", ops.lt), ("le", ops.le),
               ("eq", ops.eq)):
    HANDLERS[_n] = lambda a, b, _f=_f, **p: _f(a, b)
HANDLERS.update(
    logistic=lambda x, **p: ops.sigmoid(x),
    erfc=lambda x, **p: L.erfc(x),
    rsqrt=lambda x, **p: 1.0 / ops.sqrt(x),
    square=lambda x, **p: x * x,
    ne=lambda a, b, **p: 1.0 - ops.eq(a, b),
    copy=lambda x, **p: x, copy_p=lambda x, **p: x,
    reduce_precision=lambda x, **p: x,
    reduce_sum=lambda x, axes, **p: L.reduce("sum", x, list(axes)),
    reduce_max=lambda x, axes, **p: L.reduce("max", x, list(axes)),
    reduce_min=lambda x, axes, **p: L.reduce("min", x, list(axes)),
    reduce_prod=lambda x, axes, **p: L.reduce("prod", x, list(axes)),
    transpose=lambda x, permutation, **p: ops.transpose(x, tuple(permutation)),
    squeeze=lambda x, dimensions, **p: ops.reshape(
        x, tuple(s for i, s in enumerate(x.shape) if i not in set(dimensions))),
    concatenate=lambda *xs, dimension, **p: ops.concat(list(xs), axis=dimension),
)


def _integer_pow(x, y, **p):
    if y == 0:
        return ops.broadcast_to(1.0, x.shape) if x.shape else x * 0.0 + 1.0
    out = x
    for _ in range(abs(y) - 1):
        out = out * x
    return 1.0 / out if y < 0 else out


def _convert(x, new_dtype, **p):
    name = np.dtype(new_dtype).name
    if name not in ("float32", "float64"):
        raise Variant(f"convert_element_type of a float value to {name}")
    return x if name == x.dtype else ops.cast(x, name)


def _reshape(x, new_sizes, dimensions=None, **p):
    if dimensions is not None:
        x = ops.transpose(x, tuple(dimensions))
    return ops.reshape(x, tuple(new_sizes))


def _broadcast_in_dim(x, shape, broadcast_dimensions, **p):
    shape = tuple(shape)
    x = L.node_in(x)
    mid = [1] * len(shape)
    for src, dst in enumerate(broadcast_dimensions):
        mid[dst] = x.shape[src]
    if tuple(mid) != x.shape:
        x = ops.reshape(x, tuple(mid))
    return x if x.shape == shape else ops.broadcast_to(x, shape)


def _dot_general(a, b, dimension_numbers, **p):
    """Any ``dot_general`` as transposes, reshapes and one matmul (of matrices or of
    stacks of them)."""
    (ca, cb), (ba, bb) = dimension_numbers
    a, b = L.node_in(a), L.node_in(b)
    fa = [i for i in range(a.ndim) if i not in ca and i not in ba]
    fb = [i for i in range(b.ndim) if i not in cb and i not in bb]
    pa, pb = list(ba) + fa + list(ca), list(bb) + list(cb) + fb
    if pa != list(range(a.ndim)):
        a = ops.transpose(a, tuple(pa))
    if pb != list(range(b.ndim)):
        b = ops.transpose(b, tuple(pb))
    nb = len(ba)
    batch = a.shape[:nb]
    m_shape, n_shape = a.shape[nb:nb + len(fa)], b.shape[nb + len(cb):]
    k = int(np.prod(a.shape[nb + len(fa):]))
    m, n = int(np.prod(m_shape)), int(np.prod(n_shape))
    a2 = a if a.shape == batch + (m, k) else ops.reshape(a, batch + (m, k))
    b2 = b if b.shape == batch + (k, n) else ops.reshape(b, batch + (k, n))
    y = L.matmul(a2, b2)
    out = batch + tuple(m_shape) + tuple(n_shape)
    return y if y.shape == out else ops.reshape(y, out)


def _select_n(pred, *cases, **p):
    if not isinstance(pred, Node) and np.size(pred) and np.all(pred == np.ravel(pred)[0]):
        return cases[int(np.ravel(pred)[0])]       # a constant choice (jnp.var's ddof)
    if len(cases) != 2:
        raise Variant("select_n with more than two cases")
    return ops.where(pred, cases[1], cases[0])


def _slice(x, start_indices, limit_indices, strides=None, **p):
    strides = strides or (1,) * len(start_indices)
    return x[tuple(slice(s, e, k) for s, e, k in zip(start_indices, limit_indices, strides))]


def _pad(x, value, padding_config, **p):
    if any(i != 0 or lo < 0 or hi < 0 for lo, hi, i in padding_config):
        raise Variant("pad with interior or negative padding")
    return ops.pad(x, [[lo, hi] for lo, hi, _ in padding_config], value)


def _exp2(x, **p):
    return ops.exp(x * float(np.log(2.0)))


HANDLERS.update(integer_pow=_integer_pow, convert_element_type=_convert, reshape=_reshape,
                broadcast_in_dim=_broadcast_in_dim, dot_general=_dot_general,
                select_n=_select_n, slice=_slice, pad=_pad, exp2=_exp2)


# -- images: any layout, transposed around nbbp's NHWC/HWIO conv2d and pools -----------------
def _conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                          dimension_numbers, feature_group_count=1, batch_group_count=1, **p):
    """``lax.conv_general_dilated`` / ``lax.conv``: the input and filter transposed to
    NHWC and HWIO by the dimension numbers, nbbp's conv2d, the output transposed back."""
    if len(window_strides) != 2:
        raise Variant(f"conv_general_dilated with {len(window_strides)} spatial dimensions "
                      "(nbbp's conv2d has 2)")
    if any(d != 1 for d in lhs_dilation):
        raise Variant("conv_general_dilated with lhs_dilation (a transposed convolution)")
    if feature_group_count != 1 or batch_group_count != 1:
        raise Variant(f"conv_general_dilated with feature_group_count={feature_group_count}, "
                      f"batch_group_count={batch_group_count} (grouped; nbbp's conv2d takes 1)")
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    x = L.permute(L.node_in(lhs), [lhs_spec[i] for i in (0, 2, 3, 1)], "nhwc")
    w = L.permute(L.node_in(rhs), [rhs_spec[i] for i in (2, 3, 1, 0)], "hwio")
    y = L.conv2d(x, w, window_strides, padding, rhs_dilation)
    return L.permute(y, np.argsort([out_spec[i] for i in (0, 2, 3, 1)]))


def _window(what: str, x: Node, window_dimensions, window_strides, padding, base_dilation,
            window_dilation, pool: Callable[..., Node]) -> Node:
    """``lax.reduce_window`` with max or add over two axes of a 4-D array, (1, 2) as in
    NHWC or (2, 3) as in NCHW: ``pool`` on the NHWC view."""
    if any(d != 1 for d in (*base_dilation, *window_dilation)):
        raise Variant(f"{what} with dilation")
    moved = {i for i in range(len(window_dimensions)) if window_dimensions[i] != 1
             or window_strides[i] != 1 or tuple(padding[i]) != (0, 0)}
    axes = next((a for a in ((1, 2), (2, 3)) if moved <= set(a)), None) if x.ndim == 4 else None
    if axes is None:
        raise Variant(f"{what} over axes {sorted(moved)} of a {x.ndim}-D array (nbbp pools "
                      "axes 1, 2 of NHWC or 2, 3 of NCHW images)")
    perm = (0, 1, 2, 3) if axes == (1, 2) else L.NCHW_TO_NHWC
    y = pool(L.permute(x, perm, "nhwc"), [window_dimensions[a] for a in axes],
             [window_strides[a] for a in axes], [padding[a] for a in axes])
    return L.permute(y, np.argsort(perm))


def _reduce_window_max(x, **p):
    return _window("reduce_window_max", x, pool=L.max_pool, **_window_params(p))


def _reduce_window_sum(x, **p):
    return _window("reduce_window_sum", x, pool=L.window_sum, **_window_params(p))


def _window_params(p: dict) -> dict:
    keys = ("window_dimensions", "window_strides", "padding", "base_dilation",
            "window_dilation")
    return {k: p[k] for k in keys}


HANDLERS.update(conv_general_dilated=_conv_general_dilated,
                reduce_window_max=_reduce_window_max, reduce_window_sum=_reduce_window_sum)


class Imported(NamedTuple):
    """A model with its jaxpr and, for each of the jaxpr's variables, its node."""

    model: Model
    program: Any
    nodes: dict[Any, Node]


# -- tracing --------------------------------------------------------------------------------
def where(eqn: Any) -> str:
    """``file:line`` of the user's code that made ``eqn``."""
    try:
        from jax._src import source_info_util
        frame = source_info_util.user_frame(eqn.source_info.traceback)
    except Exception:  # noqa: BLE001 - a location is a courtesy, never a failure
        frame = None
    return f"{os.path.basename(frame.file_name)}:{frame.start_line}" if frame else ""


def _key_name(path: tuple) -> str:
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k).strip(".[]'\""))
    return "/".join(parts)


def from_jax(fn: Callable, *example_args: Any, params: Any = 0, loss: Any = None,
             name: str | None = None, engine: str = "numba") -> Model:
    """Import a JAX function as an :class:`nbbp.Model`.

    Parameters
    ----------
    fn : callable
        A function of arrays and pytrees of arrays, traceable by ``jax.make_jaxpr``.
    *example_args
        Its arguments; their values become the model's params and inputs.
    params : int or tuple of ints, default 0
        The arguments whose leaves are trainable params, as ``jax.grad``'s
        ``argnums`` (``None`` or ``()``: none). The other arguments are inputs;
        integer arrays (labels) are constants.
    loss : int, optional
        Which output is the model's output when ``fn`` returns several.
    name : str, optional
        The model's name (default: the function's name).

    Float32 arguments give a float32 model, traced as JAX runs it by default; a
    float64 argument turns on JAX's 64-bit mode for the trace.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, nbbp
    >>> f = lambda w, x: jnp.tanh(x @ w).sum()
    >>> m = nbbp.from_jax(f, np.ones((2, 3)), np.ones((4, 2)))
    >>> list(m.params), round(m.value, 12) == round(12 * float(np.tanh(2.0)), 12)
    (['w'], True)
    """
    return capture(fn, *example_args, params=params, loss=loss, name=name,
                   engine=engine).model


def capture(fn: Callable, *example_args: Any, params: Any = 0, loss: Any = None,
            name: str | None = None, engine: str = "numba") -> Imported:
    """:func:`from_jax`, also returning the closed jaxpr and the node of each of its
    top-level variables."""
    import jax

    argnums = {params} if isinstance(params, int) else set(params or ())
    names = _arg_names(fn, len(example_args))
    args = jax.tree_util.tree_map(np.asarray, example_args)
    floats = [a.dtype.name for a in jax.tree_util.tree_leaves(args)
              if np.issubdtype(a.dtype, np.floating)]
    dtype = L.model_dtype(floats)
    # float64 needs JAX's 64-bit mode; a float32 function is traced as JAX runs it
    with jax.enable_x64(dtype == "float64"):
        try:
            closed = jax.make_jaxpr(fn)(*args)
        except Exception as exc:  # noqa: BLE001 - JAX's own message, on one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise errors.NbbpError(f"from_jax: jax.make_jaxpr could not trace the function: "
                                   f"{first}") from exc
        title = getattr(fn, "__name__", "model")
        title = "model" if title == "<lambda>" else title
        low = Lowering("from_jax", name or title, dtype)
        env: dict[Any, Any] = {}
        invars = iter(closed.jaxpr.invars)
        for i, arg in enumerate(args):
            leaves = jax.tree_util.tree_flatten_with_path(arg)[0]
            for path, value in leaves:
                var = next(invars)
                value = np.asarray(value)
                kind = "param" if i in argnums else "input"
                label = _key_name(path) if kind == "param" and path else \
                    "/".join(p for p in (names[i], _key_name(path)) if p)
                if value.dtype.kind == "f" or value.dtype.name == "bfloat16":
                    env[var] = low.leaf(kind, label, value)
                else:
                    env[var] = value
        for var, value in zip(closed.jaxpr.constvars, closed.consts):
            env[var] = np.asarray(value)
        outs = _lower_jaxpr(low, closed.jaxpr, env)
    low.fail_if_unsupported()
    if loss is None:
        if len(outs) != 1:
            raise errors.NbbpError(f"from_jax: the function returns {len(outs)} outputs; "
                                   "pick the one to differentiate with loss=0, 1, …")
        loss = 0
    out = outs[loss]
    if not isinstance(out, Node):
        raise errors.NbbpError("from_jax: the output depends on no param or float input, "
                               "so there is nothing to differentiate")
    model = Model(out, engine=engine, name=name or title)
    return Imported(model, closed, {k: v for k, v in env.items() if isinstance(v, Node)})


def _arg_names(fn: Callable, n: int) -> list[str]:
    try:
        ps = [p.name for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        ps = []
    return ps[:n] + [f"x{i}" for i in range(len(ps), n)]


def _read(env: dict, v: Any) -> Any:
    from jax.extend.core import Literal
    if isinstance(v, Literal):
        return np.asarray(v.val)
    return env[v]


def _shape(var: Any) -> tuple[int, ...] | None:
    aval = getattr(var, "aval", None)
    return tuple(aval.shape) if aval is not None and hasattr(aval, "shape") else None


def _lower_jaxpr(low: Lowering, jaxpr: Any, env: dict, at: str = "") -> list:
    """Lower ``jaxpr``'s equations; ``at`` is the caller's place, for inlined calls."""
    for eqn in jaxpr.eqns:
        args = [_read(env, v) for v in eqn.invars]
        prim = eqn.primitive.name
        if any(a is MISSING for a in args):
            outs = [MISSING] * len(eqn.outvars)
        elif prim in CALLS and CALLS[prim] in eqn.params:
            inner = eqn.params[CALLS[prim]]
            sub = dict(zip(inner.jaxpr.constvars, (np.asarray(c) for c in inner.consts)))
            sub.update(zip(inner.jaxpr.invars, args))
            outs = _lower_jaxpr(low, inner.jaxpr, sub, where(eqn) or at)
        elif not any(isinstance(a, Node) for a in args):
            res = eqn.primitive.bind(*args, **eqn.params)
            outs = [np.asarray(r) for r in res] if eqn.primitive.multiple_results \
                else [np.asarray(res)]
        elif prim in HANDLERS:
            try:
                with low.graph:
                    res = HANDLERS[prim](*args, **eqn.params)
                outs = [res]
            except Variant as v:
                outs = [low.miss(str(v), where(eqn) or at, _shape(o)) for o in eqn.outvars]
        else:
            outs = [low.miss(prim, where(eqn) or at, _shape(o)) for o in eqn.outvars]
        for var, val in zip(eqn.outvars, outs):
            env[var] = val
    return [_read(env, v) for v in jaxpr.outvars]
