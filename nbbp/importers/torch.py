"""``nbbp.from_torch``: a PyTorch module or function as an nbbp model.

The computation is captured with ``torch.export`` (ATen ops, one normalized name per
op, each with the stack trace of the user's line and the submodule it ran in), and
every ATen op is rebuilt from nbbp's builders: composites such as ``linear``,
``layer_norm``, ``cross_entropy_loss`` and ``scaled_dot_product_attention`` become
their inside (matmul, add, mean, softmax, …), so the picture shows it. Params are
named after the module's ``state_dict`` keys (``enc.0.weight`` → ``enc/0/weight``),
ops are scoped after the submodule that ran them, inputs keep the argument names.
PyTorch computes nothing of the model here; it only evaluates constants (integer
labels, masks) that depend on no float leaf.
"""

from __future__ import annotations

import inspect
import math
import operator
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import errors
from ..core import ops
from ..core.graph import Node
from ..model import Model
from . import _lower as L
from ._lower import MISSING, Lowering, Variant

HANDLERS: dict[str, Callable[..., Any]] = {}
IGNORED = {"_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range_for_size",
           "_assert_async"}


def handles(*names: str) -> Callable:
    def register(fn: Callable) -> Callable:
        for n in names:
            HANDLERS[n] = fn
        return fn
    return register


# -- elementwise ---------------------------------------------------------------------
for _n in ("tanh", "sigmoid", "relu", "exp", "log", "sqrt", "abs", "sin", "cos", "neg",
           "sign", "erf"):
    HANDLERS[_n] = ops.FUNCTIONS[_n]
for _n in ("maximum", "minimum", "gt", "ge", "lt", "le", "eq"):
    HANDLERS[_n] = ops.FUNCTIONS[_n]
HANDLERS.update(mul=operator.mul, pow=ops.pow)
HANDLERS.update(erfc=L.erfc, special_erfc=L.erfc, special_erf=ops.erf,
                rsqrt=lambda x: 1.0 / ops.sqrt(x), reciprocal=lambda x: 1.0 / x,
                square=lambda x: x * x, silu=lambda x: x * ops.sigmoid(x),
                ne=lambda a, b: 1.0 - ops.eq(a, b), where=ops.where,
                leaky_relu=lambda x, slope=0.01: ops.leaky_relu(x, slope))


@handles("add")
def _add(a, b, alpha=1):
    return a + (b if alpha == 1 else b * alpha)


@handles("sub")
def _sub(a, b, alpha=1):
    return a - (b if alpha == 1 else b * alpha)


@handles("rsub")
def _rsub(a, b, alpha=1):
    return b - (a if alpha == 1 else a * alpha)


@handles("div")
def _div(a, b, rounding_mode=None):
    if rounding_mode is not None:
        raise Variant(f"div with rounding_mode={rounding_mode!r}")
    return a / b


@handles("clamp", "hardtanh")
def _clamp(x, lo=None, hi=None):
    big = np.finfo(x.dtype).max
    return ops.clip(x, -big if lo is None else lo, big if hi is None else hi)


@handles("softplus")
def _softplus(x, beta=1, threshold=20):
    z = x * beta if beta != 1 else x
    soft = ops.softplus(z) / beta if beta != 1 else ops.softplus(z)
    return ops.where(z > threshold, x, soft)


@handles("gelu")
def _gelu(x, approximate="none"):
    return L.gelu_tanh(x) if approximate == "tanh" else L.gelu_erf(x)


@handles("dropout", "native_dropout", "feature_dropout", "alpha_dropout")
def _dropout(x, p=0.5, train=False):
    if train and p > 0:
        raise Variant("dropout in training mode (call model.eval() before importing)")
    return x


@handles("detach")
def _detach(x):
    return ops.stop_gradient(x)


@handles("clone", "contiguous", "alias", "lift_fresh_copy", "type_as")
def _identity(x, *args, **kwargs):
    return x


@handles("_to_copy", "to")
def _to(x, *args, dtype=None, **kwargs):
    import torch
    dt = dtype if dtype is not None else next((a for a in args if isinstance(a, torch.dtype)),
                                              None)
    if dt is None:
        return x
    name = str(dt).removeprefix("torch.")
    if name not in ("float32", "float64"):
        raise Variant(f"a cast of a float tensor to {dt}")
    return x if name == x.dtype else ops.cast(x, name)


@handles("zeros_like", "ones_like", "full_like", "empty_like")
def _like(x, *args, **kwargs):
    raise Variant("a tensor made like a float tensor (make it from its shape instead)")


# -- matrices and layout ------------------------------------------------------------------
@handles("linear")
def _linear(x, w, b=None):
    y = L.matmul(x, ops.transpose(w))
    return y if b is None else y + b


@handles("addmm")
def _addmm(bias, a, b, beta=1, alpha=1):
    ab = ops.matmul(a, b)
    return (bias if beta == 1 else bias * beta) + (ab if alpha == 1 else ab * alpha)


HANDLERS.update(mm=L.matmul, matmul=L.matmul, bmm=L.matmul)


@handles("t")
def _t(x):
    return ops.transpose(x) if x.ndim == 2 else x


@handles("numpy_T")
def _numpy_t(x):                       # x.T: every axis reversed
    return ops.transpose(x) if x.ndim >= 2 else x


@handles("transpose")
def _transpose(x, d0, d1):
    perm = list(range(x.ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return ops.transpose(x, tuple(perm))


@handles("permute")
def _permute(x, dims):
    return ops.transpose(x, tuple(d % x.ndim for d in dims))


@handles("view", "reshape", "_unsafe_view")
def _reshape(x, shape):
    return ops.reshape(x, tuple(shape))


@handles("flatten")
def _flatten(x, start=0, end=-1):
    if x.ndim == 0:
        return ops.reshape(x, (1,))
    s, e = start % x.ndim, end % x.ndim
    return ops.reshape(x, x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:])


@handles("expand")
def _expand(x, size, implicit=False):
    size = list(size)
    lead = len(size) - x.ndim
    full = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(size))
    return x if full == x.shape else ops.broadcast_to(x, full)


@handles("unsqueeze")
def _unsqueeze(x, dim):
    dim = dim % (x.ndim + 1)
    return ops.reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


@handles("squeeze")
def _squeeze(x, dim=None):
    dims = range(x.ndim) if dim is None else [dim] if isinstance(dim, int) else dim
    drop = {d % x.ndim for d in dims if x.shape[d] == 1} if x.ndim else set()
    return ops.reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in drop))


@handles("slice")
def _slice(x, dim=0, start=None, end=None, step=1):
    n = x.shape[dim]
    start = None if start is None else max(-n, min(start, n))
    end = None if end is None else max(-n, min(end, n))
    key = (slice(None),) * (dim % x.ndim) + (slice(start, end, step),)
    return x[key]


@handles("select")
def _select(x, dim, index):
    return x[(slice(None),) * (dim % x.ndim) + (int(index),)]


@handles("cat", "concat")
def _cat(xs, dim=0):
    return ops.concat(list(xs), axis=dim)


@handles("stack")
def _stack(xs, dim=0):
    return ops.stack(list(xs), axis=dim)


@handles("embedding")
def _embedding(weight, indices, *args):
    if isinstance(indices, Node):
        raise Variant("embedding with computed indices")
    return ops.gather(weight, np.asarray(indices, dtype=np.int64), axis=0)


# -- recurrent cells, drawn as their gates -----------------------------------------------------
def _affine(x, w, b):
    y = ops.matmul(x, ops.transpose(w))
    return y if b is None else y + b


@handles("rnn_tanh_cell")
def _rnn_tanh_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    return ops.tanh(_affine(x, w_ih, b_ih) + _affine(h, w_hh, b_hh))


@handles("rnn_relu_cell")
def _rnn_relu_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    return ops.relu(_affine(x, w_ih, b_ih) + _affine(h, w_hh, b_hh))


@handles("gru_cell")
def _gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    gi, gh = _affine(x, w_ih, b_ih), _affine(h, w_hh, b_hh)
    n = h.shape[-1]
    part = lambda g, i: g[..., i * n:(i + 1) * n]
    r = ops.sigmoid(part(gi, 0) + part(gh, 0))
    z = ops.sigmoid(part(gi, 1) + part(gh, 1))
    c = ops.tanh(part(gi, 2) + r * part(gh, 2))
    return (1.0 - z) * c + z * h


# -- reductions and normalizations -----------------------------------------------------------
def _reducer(op: str) -> Callable:
    def fn(x, dim=None, keepdim=False, dtype=None):
        dims = None if dim is None or dim == [] else [dim] if isinstance(dim, int) else dim
        return L.reduce(op, x, dims, keepdim)
    return fn


HANDLERS.update(sum=_reducer("sum"), mean=_reducer("mean"), amax=_reducer("max"),
                amin=_reducer("min"))


@handles("softmax", "_softmax")
def _softmax(x, dim, *args):
    return ops.softmax(x, axis=dim)


@handles("log_softmax", "_log_softmax")
def _log_softmax(x, dim, *args):
    return ops.log_softmax(x, axis=dim)


@handles("logsumexp")
def _logsumexp(x, dim, keepdim=False):
    dims = [dim] if isinstance(dim, int) else list(dim)
    if len(dims) != 1:
        raise Variant("logsumexp over several dims")
    return ops.logsumexp(x, dims[0], keepdim)


@handles("layer_norm")
def _layer_norm(x, shape, weight=None, bias=None, eps=1e-5, cudnn=False):
    return L.layer_norm(x, len(shape), weight, bias, eps)


@handles("scaled_dot_product_attention")
def _sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
          enable_gqa=False):
    if dropout_p:
        raise Variant("scaled_dot_product_attention with dropout_p > 0")
    return L.attention(q, k, v, attn_mask, is_causal, scale)


# -- images: NCHW tensors and OIHW filters, transposed around nbbp's NHWC/HWIO ops ----------
def _pair(v: Any) -> tuple[int, int]:
    v = [int(t) for t in ([v] if isinstance(v, int) else v)]
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def _images(op: str, x: Node, fn: Callable[[Node], Node]) -> Node:
    """``fn`` (on NHWC) applied to ``x`` (NCHW, or CHW unbatched), as PyTorch lays it
    out: transpose in, ``fn``, transpose back."""
    if x.ndim not in (3, 4):
        raise Variant(f"{op} on a {x.ndim}-D tensor (it takes (N, C, H, W) or (C, H, W))")
    one = x.ndim == 3
    y = fn(L.permute(ops.reshape(x, (1,) + x.shape) if one else x, L.NCHW_TO_NHWC, "nhwc"))
    y = L.permute(y, L.NHWC_TO_NCHW)          # named after the op by capture
    return ops.reshape(y, y.shape[1:]) if one else y


def _conv_pads(padding: Any, k: tuple[int, int], dilation: tuple[int, int]) -> tuple:
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":                  # PyTorch: the odd element after, as TF
        return tuple((d * (n - 1) // 2, d * (n - 1) - d * (n - 1) // 2)
                     for n, d in zip(k, dilation))
    return tuple((p, p) for p in _pair(padding))


@handles("conv2d")
def _conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    if groups != 1:
        raise Variant(f"conv2d with groups={groups} (nbbp's conv2d takes groups=1)")
    stride, dilation = _pair(stride), _pair(dilation)
    pads = _conv_pads(padding, w.shape[2:], dilation)
    hwio = ops.transpose(w, L.OIHW_TO_HWIO, name="hwio")

    def conv(x):
        y = L.conv2d(x, hwio, stride, pads, dilation, name="conv_nhwc")
        return y if b is None else y + b        # the bias on the channel axis (last)
    return _images("conv2d", x, conv)


@handles("conv1d")
def _conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """A conv2d of height 1: (N, C, L) → (N, C, 1, L)."""
    if x.ndim not in (2, 3):
        raise Variant(f"conv1d on a {x.ndim}-D tensor (it takes (N, C, L) or (C, L))")
    pad = padding if isinstance(padding, str) else (0, _pair(padding)[0])
    y = _conv2d(_unsqueeze(x, -2), _unsqueeze(w, -2), b, (1, _pair(stride)[0]), pad,
                (1, _pair(dilation)[0]), groups)
    return _squeeze(y, -2)


@handles("convolution")
def _convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    if transposed:
        raise Variant("a transposed convolution (conv_transpose)")
    fn = {4: _conv2d, 3: _conv1d}.get(w.ndim)
    if fn is None:
        raise Variant(f"a {w.ndim - 2}-D convolution (conv1d and conv2d import)")
    return fn(x, w, b, stride, padding, dilation, groups)


def _pool_out(n: int, k: int, s: int, p: int, ceil: bool) -> int:
    """PyTorch's pooled size: with ``ceil_mode`` the last window may hang over the end,
    but must start inside the input or its left padding."""
    out = (-(-(n + 2 * p - k) // s) if ceil else (n + 2 * p - k) // s) + 1
    return out - 1 if ceil and (out - 1) * s >= n + p else out


def _pool_geometry(x: Node, kernel, stride, padding, ceil: bool):
    """Window, strides and explicit pads (the right ones grown for ``ceil_mode``)."""
    k = _pair(kernel)
    s = _pair(stride) if stride else k
    p = _pair(padding)
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise Variant(f"pooling with padding {p} over half the window {k}")
    outs = [_pool_out(n, *a, ceil) for n, a in zip(x.shape[-2:], zip(k, s, p))]
    pads = tuple((pi, max((o - 1) * si + ki - n - pi, pi))
                 for n, o, ki, si, pi in zip(x.shape[-2:], outs, k, s, p))
    return k, s, p, outs, pads


@handles("max_pool2d")
def _max_pool2d(x, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
    if _pair(dilation) != (1, 1):
        raise Variant(f"max_pool2d with dilation={dilation} (nbbp's max_pool has none)")
    k, s, _, _, pads = _pool_geometry(x, kernel, stride, padding, ceil_mode)
    return _images("max_pool2d", x, lambda t: L.max_pool(t, k, s, pads))


def _avg_divisor(n: int, o: int, k: int, s: int, p: int, with_pad: bool) -> np.ndarray:
    """How many elements PyTorch's avg_pool2d divides each window along an axis by:
    the window clipped to the padded input, or to the input itself."""
    start = np.arange(o) * s - p
    end = np.minimum(start + k, n + p)
    return end - start if with_pad else np.minimum(end, n) - np.maximum(start, 0)


@handles("avg_pool2d")
def _avg_pool2d(x, kernel, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
    k, s, p, outs, pads = _pool_geometry(x, kernel, stride, padding, ceil_mode)
    if divisor_override:
        div: Any = divisor_override
    else:
        h, w = (_avg_divisor(n, o, ki, si, pi, count_include_pad)
                for n, o, ki, si, pi in zip(x.shape[-2:], outs, k, s, p))
        div = np.outer(h, w)
    return _images("avg_pool2d", x, lambda t: L.window_sum(t, k, s, pads, div))


@handles("adaptive_avg_pool2d")
def _adaptive_avg_pool2d(x, output_size):
    hw = x.shape[-2:]
    out = tuple(n if o is None else int(o) for n, o in zip(hw, _pair_none(output_size)))
    if out == (1, 1):
        return L.reduce("mean", x, [-2, -1], keepdims=True)
    if any(n % o for n, o in zip(hw, out)):
        raise Variant(f"adaptive_avg_pool2d from {hw[0]}×{hw[1]} to {out[0]}×{out[1]} "
                      "(windows of unequal sizes; use sizes that divide the input's)")
    k = tuple(n // o for n, o in zip(hw, out))
    return _images("adaptive_avg_pool2d", x,
                   lambda t: L.window_sum(t, k, k, ((0, 0), (0, 0)), math.prod(k)))


def _pair_none(v: Any) -> tuple:
    return (v, v) if v is None or isinstance(v, int) else tuple(v)


@handles("batch_norm")
def _batch_norm(x, weight, bias, mean, var, training, momentum=0.1, eps=1e-5, cudnn=True):
    """Eval mode: (x − running_mean) / sqrt(running_var + eps) · weight + bias, the
    running statistics constants of the graph, per channel (axis 1)."""
    if training or mean is None:
        raise Variant("batch_norm with batch statistics (call model.eval() before "
                      "importing; track_running_stats=True)")
    shape = (x.shape[1],) + (1,) * (x.ndim - 2)

    def per(v):
        return v if v is None or x.ndim == 2 else ops.reshape(L.node_in(v), shape)
    y = (x - per(mean)) / ops.sqrt(per(var) + eps)
    if weight is not None:
        y = y * per(weight)
    return y if bias is None else y + per(bias)


# -- losses ------------------------------------------------------------------------------
def _reduced(per: Node, reduction: int) -> Node:
    """PyTorch's reduction codes: 0 none, 1 mean, 2 sum."""
    return per if reduction == 0 else ops.mean(per) if reduction == 1 else ops.sum(per)


def _targets(logp: Node, target: Any, ignore_index: int) -> Any:
    if isinstance(target, Node):
        return target             # class probabilities
    t = np.asarray(target)
    if np.issubdtype(t.dtype, np.floating):
        return t
    if (t == ignore_index).any():
        raise Variant("a loss with targets equal to ignore_index")
    return L.onehot(t, logp.shape[1 if logp.ndim > 1 else 0], axis=1 if logp.ndim > 1 else 0)


@handles("cross_entropy_loss")
def _cross_entropy(x, target, weight=None, reduction=1, ignore_index=-100, smoothing=0.0):
    if weight is not None or smoothing:
        raise Variant("cross_entropy with class weights or label smoothing")
    axis = 1 if x.ndim > 1 else 0
    logp = ops.log_softmax(x, axis=axis)
    per = -ops.sum(logp * _targets(logp, target, ignore_index), axis=axis)
    return _reduced(per, reduction)


@handles("nll_loss", "nll_loss_nd", "nll_loss2d")
def _nll(logp, target, weight=None, reduction=1, ignore_index=-100):
    if weight is not None:
        raise Variant("nll_loss with class weights")
    axis = 1 if logp.ndim > 1 else 0
    per = -ops.sum(logp * _targets(logp, target, ignore_index), axis=axis)
    return _reduced(per, reduction)


@handles("mse_loss")
def _mse(a, b, reduction=1):
    d = a - b
    return _reduced(d * d, reduction)


@handles("binary_cross_entropy_with_logits")
def _bce_logits(x, y, weight=None, pos_weight=None, reduction=1):
    if weight is not None or pos_weight is not None:
        raise Variant("binary_cross_entropy_with_logits with weights")
    return _reduced(ops.softplus(x) - x * y, reduction)


# -- capture ------------------------------------------------------------------------------------
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def where(node: Any, skip: Sequence[str]) -> str:
    """``file:line`` of the user's code that made ``node`` (its last frame outside
    PyTorch and nbbp)."""
    frames = _FRAME.findall(node.meta.get("stack_trace") or "")
    for path, line in reversed(frames):
        if not any(path.startswith(s) for s in skip):
            return f"{os.path.basename(path)}:{line}"
    return ""


def scope_of(node: Any) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    path = re.sub(r"^L\['self'\]\.?", "", path)
    return "/".join(p for p in re.split(r"[.\[\]'\"]+", path) if p)


def _as_numpy(t: Any) -> Any:
    import torch
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy() if t.dtype != torch.bfloat16 else \
            t.detach().double().numpy()
    if isinstance(t, (tuple, list)):
        return type(t)(_as_numpy(v) for v in t)
    return t


def _as_torch(v: Any) -> Any:
    import torch
    if isinstance(v, np.ndarray):
        return torch.from_numpy(v)
    if isinstance(v, (tuple, list)):
        return type(v)(_as_torch(x) for x in v)
    return v


def _contains(v: Any, kind: type) -> bool:
    if isinstance(v, (tuple, list)):
        return any(_contains(x, kind) for x in v)
    if isinstance(v, dict):
        return any(_contains(x, kind) for x in v.values())
    return isinstance(v, kind)


def _arg_names(fn: Callable, n: int) -> list[str]:
    try:
        ps = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        ps = []
    names = [p.name for p in ps[:n]]
    return names + [f"x{i}" for i in range(len(names), n)]


class Imported(NamedTuple):
    """A model with what it came from: the captured program and, for each of the
    program's values, the nbbp node holding it (the tests' link to the framework)."""

    model: Model
    program: Any
    nodes: dict[Any, Node]


def from_torch(model: Any, *example_inputs: Any, params: Any = None, loss: Any = None,
               name: str | None = None, engine: str = "numba") -> Model:
    """Import a PyTorch module or function as an :class:`nbbp.Model`.

    Parameters
    ----------
    model : torch.nn.Module or callable
        What to import; a module in eval mode if it has dropout.
    *example_inputs : torch.Tensor
        The inputs; their values become the model's inputs (integer tensors, such as
        class labels, become constants).
    params : int, str or list of them, optional
        Which inputs are trainable params (a function's weights). A module's own
        parameters are always params, named after its ``state_dict`` keys.
    loss : int, optional
        Which output is the model's output when there are several.
    name : str, optional
        The model's name (default: the module's class or the function's name).

    Each param and input keeps its dtype (float32 or float64) and ops promote as
    PyTorch does, so a float32 module imports as a float32 model.

    Examples
    --------
    >>> import torch, nbbp
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh()).double()
    >>> m = nbbp.from_torch(net, torch.ones(1, 2, dtype=torch.float64))   # output summed
    >>> with torch.no_grad():
    ...     want = float(net(torch.ones(1, 2, dtype=torch.float64)).sum())
    >>> bool(abs(m.value.sum() - want) < 1e-12), list(m.params)
    (True, ['0/weight', '0/bias'])
    """
    return capture(model, *example_inputs, params=params, loss=loss, name=name,
                   engine=engine).model


def capture(model: Any, *example_inputs: Any, params: Any = None, loss: Any = None,
            name: str | None = None, engine: str = "numba") -> Imported:
    """:func:`from_torch`, also returning the ``torch.export`` program and the node of
    each of its values (by the program's node names)."""
    import torch

    inputs = tuple(example_inputs)
    if not all(isinstance(x, torch.Tensor) for x in inputs):
        bad = next(type(x).__name__ for x in inputs if not isinstance(x, torch.Tensor))
        raise errors.NbbpError(f"from_torch: example inputs must be tensors, got {bad}; "
                               "pass numbers as torch.tensor(...)")
    if isinstance(model, torch.nn.Module):
        module, fn = model, model.forward
        title = type(model).__name__
    elif callable(model):
        module, fn = _Function(model), model
        title = getattr(model, "__name__", "model")
        title = "model" if title == "<lambda>" else title
    else:
        raise errors.NbbpError(f"from_torch: needs a torch.nn.Module or a function, got "
                               f"{type(model).__name__}")
    arg_names = _arg_names(fn, len(inputs))
    trainable = _which(params, arg_names)
    try:
        ep = torch.export.export(module, inputs, strict=False)
    except Exception as exc:  # noqa: BLE001 - torch's own message, on one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise errors.NbbpError(f"from_torch: torch.export could not capture the model: "
                               f"{first}") from exc
    floats = [_dtype_name(t) for t in (*inputs, *ep.state_dict.values(),
                                       *ep.constants.values())
              if isinstance(t, torch.Tensor) and t.is_floating_point()]
    low = Lowering("from_torch", name or title, L.model_dtype(floats))
    skip = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))
    env = _placeholders(low, ep, inputs, arg_names, trainable)
    outputs = []
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            outputs = list(node.args[0])
            continue
        start = len(low.graph.nodes)
        env[node.name] = res = _lower_node(low, node, env, skip)
        if isinstance(res, Node) and res.id >= start and res.auto_named:
            low.graph.rename(res, node.name)     # the result of `linear` is named linear
    low.fail_if_unsupported()
    out = _pick_output(ep, outputs, env, loss)
    model = Model(out, engine=engine, name=name or title)
    nodes = {k: v for k, v in env.items() if isinstance(v, Node)}
    return Imported(model, ep, nodes)


class _Function:
    """A plain function wrapped as a module so that ``torch.export`` takes it."""

    def __new__(cls, fn: Callable) -> Any:
        import torch

        class Function(torch.nn.Module):
            def forward(self, *args):
                return fn(*args)
        return Function()


def _which(params: Any, names: list[str]) -> set[int]:
    if params is None:
        return set()
    items = [params] if isinstance(params, (int, str)) else list(params)
    out = set()
    for p in items:
        if isinstance(p, str):
            if p not in names:
                raise errors.NbbpError(f"from_torch: params={p!r} is not an input; "
                                       + errors.suggest(p, names, "input"))
            out.add(names.index(p))
        elif isinstance(p, int) and -len(names) <= p < len(names):
            out.add(p % len(names))
        else:
            raise errors.NbbpError(f"from_torch: params={p!r}: give input positions "
                                   f"0..{len(names) - 1} or names {names}")
    return out


def _placeholders(low: Lowering, ep: Any, inputs: tuple, names: list[str],
                  trainable: set[int]) -> dict[str, Any]:
    """Each input of the program as a leaf: float tensors become params (the module's
    parameters, the inputs named in ``params=``), inputs, or consts (buffers such as
    batch norm's running statistics), in their own dtype; integer ones (labels,
    indices, ``num_batches_tracked``) are constants."""
    from torch.export.graph_signature import InputKind
    env: dict[str, Any] = {}
    k = 0
    for spec in ep.graph_signature.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            kind = "param" if k in trainable else "input"
            name, value = names[k], inputs[k]
            k += 1
        elif spec.kind == InputKind.PARAMETER:
            kind, name, value = "param", spec.target, ep.state_dict[spec.target]
        elif spec.kind == InputKind.BUFFER:
            kind, name = "const", spec.target
            value = ep.state_dict.get(spec.target, ep.constants.get(spec.target))
        else:
            kind, name, value = "", spec.target, ep.constants[spec.target]
        name = name.replace(".", "/")
        if kind and value.is_floating_point():
            low.float_dtype(_dtype_name(value), name)    # float16, bfloat16: refused
            env[spec.arg.name] = low.leaf(kind, name, _as_numpy(value))
        else:
            env[spec.arg.name] = _as_numpy(value)
    return env


def _dtype_name(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


def _lower_node(low: Lowering, node: Any, env: dict[str, Any], skip: Sequence[str]) -> Any:
    import torch
    from torch.fx.node import map_aggregate

    args = map_aggregate(node.args, lambda a: env[a.name] if isinstance(a, torch.fx.Node) else a)
    kwargs = map_aggregate(node.kwargs,
                           lambda a: env[a.name] if isinstance(a, torch.fx.Node) else a)
    if _contains((args, kwargs), L.Missing):
        return MISSING
    target = node.target
    if node.op != "call_function":
        return low.miss(f"{node.op} {target}", where(node, skip))  # no shape: stops here
    if target is operator.getitem:
        return args[0][args[1]]
    opname = getattr(target, "_opname", getattr(target, "__name__", str(target)))
    if opname in IGNORED:
        return None
    if not _contains((args, kwargs), Node):   # depends on no float leaf: a constant
        return _as_numpy(target(*_as_torch(args), **_as_torch(kwargs)))
    val = node.meta.get("val")
    shape = tuple(val.shape) if isinstance(val, torch.Tensor) else None
    fn = HANDLERS.get(opname)
    if fn is None:
        return low.miss(f"aten.{opname}", where(node, skip), shape)
    try:
        with low.scope(scope_of(node)):
            return fn(*args, **kwargs)
    except Variant as v:
        return low.miss(str(v), where(node, skip), shape)


def _pick_output(ep: Any, outputs: list, env: dict[str, Any], loss: Any) -> Node:
    from torch.export.graph_signature import OutputKind
    user = [o for o, spec in zip(outputs, ep.graph_signature.output_specs)
            if spec.kind == OutputKind.USER_OUTPUT]
    if loss is None:
        if len(user) != 1:
            raise errors.NbbpError(f"from_torch: the model returns {len(user)} outputs; "
                                   "pick the one to differentiate with loss=0, 1, …")
        loss = 0
    if not isinstance(loss, int) or not -len(user) <= loss < len(user):
        raise errors.NbbpError(f"from_torch: loss={loss!r}: give an output position "
                               f"0..{len(user) - 1}")
    o = user[loss]
    out = env.get(o.name) if hasattr(o, "name") else None
    if not isinstance(out, Node) or out.is_leaf and out.op == "const":
        raise errors.NbbpError("from_torch: the output depends on no param or float input, "
                               "so there is nothing to differentiate")
    return out
