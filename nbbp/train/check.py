"""Check a model's gradients against central finite differences.

Like HIPS autograd's ``check_grads``: perturb every param (and optionally input)
along one random direction ``v`` and compare the directional derivative the
model computes, ``∇f · v``, with ``(f(x + εv) − f(x − εv)) / 2ε``. Order 2 does
the same for the gradient itself: the Hessian-vector product ``H v`` (built by
differentiating the backward graph) against finite differences of ``∇f``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..core.autodiff import gradients
from ..core.compiled import Compiled
from ..core.graph import Node, leaves
from ..core.ops import apply
from ..errors import NbbpError


class GradientCheckError(NbbpError, AssertionError):
    """Analytic and numeric derivatives disagree."""


def central_difference(f: Callable[[dict[Node, np.ndarray]], Any],
                       x0: Mapping[Node, np.ndarray], direction: Mapping[Node, np.ndarray],
                       h: float) -> Any:
    """``(f(x0 + h·d) − f(x0 − h·d)) / 2h``: the derivative of ``f`` along ``d``.

    ``f`` takes the nodes of ``x0`` fed with new values (``{node: value}``) and returns
    a number or an array, or a list of them (then the result is a list too).

    >>> import nbbp
    >>> m = nbbp.build("x = param(3.0)\\nf = x * x")
    >>> x = m.graph["x"]
    >>> round(central_difference(lambda fed: m.run("f", fed), {x: 3.0}, {x: 1.0}, 1e-5), 6)
    6.0
    """
    plus = f({n: x0[n] + h * direction[n] for n in x0})
    minus = f({n: x0[n] - h * direction[n] for n in x0})
    if isinstance(plus, list):
        return [(np.asarray(p) - np.asarray(q)) / (2 * h) for p, q in zip(plus, minus)]
    return (plus - minus) / (2 * h)


def check_grads(m: Any, wrt: Sequence[str] | None = None, order: int = 2,
                eps: float = 1e-5, rtol: float = 1e-5, atol: float = 1e-7,
                seed: int = 0) -> dict[str, float]:
    """Raise :class:`GradientCheckError` unless the gradients match finite differences.

    Parameters
    ----------
    m
        The model to check (at its current values).
    wrt
        Leaf names to perturb; by default every param.
    order
        1 checks ∇f; 2 also checks Hessian-vector products (adds nodes to the graph).
    eps, rtol, atol
        Finite-difference step and tolerances.

    Returns
    -------
    dict
        The relative error found at each order, e.g. ``{"order 1": 3e-11}``.

    Examples
    --------
    >>> import nbbp
    >>> m = nbbp.build("x = param(0.3)\\nf = tanh(x) * exp(x)")
    >>> sorted(nbbp.check_grads(m))
    ['order 1', 'order 2']
    """
    perturbed = ([m.graph[name] for name in wrt] if wrt is not None
                 else [n for n in leaves(m.forward, "param")    # not the flag, counter
                       if n.dtype in ("float64", "float32")])
    if not perturbed:
        raise NbbpError("check_grads: the model has no params to perturb; pass wrt=[...]")
    rng = np.random.default_rng(seed)
    x0 = {n: np.asarray(m.value_of(n), dtype=float) for n in perturbed}
    v = {n: rng.standard_normal(n.shape) for n in perturbed}

    report: dict[str, float] = {}
    grads = [m.grad_node(n) for n in perturbed]
    analytic = sum(float(np.sum(np.asarray(m.grad_of(n)) * v[n])) for n in perturbed)
    numeric = central_difference(lambda fed: np.sum(m.run(m.output, fed)), x0, v, eps)
    report["order 1"] = _compare("∇f·v", analytic, numeric, rtol, atol)
    if order >= 2:
        g = m.graph
        live = [(n, gn) for n, gn in zip(perturbed, grads) if gn is not None]
        if live:
            with g:
                terms = [apply("sum", gn * v[n], axis=None, keepdims=False) for n, gn in live]
                gv = terms[0]
                for t in terms[1:]:
                    gv = gv + t
                hv_nodes = gradients(gv, [n for n, _ in live])
            fetch = [h for h in hv_nodes if h is not None]
            hvp = Compiled(g, [n for n in g.ancestors(fetch) if not n.is_leaf], keep=fetch,
                           watch=[], engine=m.engine)
            for n in m.forward:
                if n.op in ("param", "input"):
                    hvp.set(n, m.value_of(n))
            hvp.run()
            hv = [hvp.read(h) for h in fetch]
            fd = central_difference(lambda fed: m.run([gn for _, gn in live], fed), x0, v, eps)
            errs = []
            k = 0
            for i, (n, _) in enumerate(live):
                num = fd[i]
                ana = np.asarray(hv[k]) if hv_nodes[i] is not None else np.zeros(n.shape)
                k += hv_nodes[i] is not None
                errs.append(_compare(f"(H·v) for {n.name!r}", ana, num, rtol * 10, atol * 10))
            report["order 2"] = max(errs)
    return report


def _compare(what: str, analytic, numeric, rtol: float, atol: float) -> float:
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    err = float(np.max(np.abs(analytic - numeric) / (atol + rtol * np.abs(numeric)), initial=0))
    if not np.all(np.isfinite(analytic)) or err > 1.0:
        raise GradientCheckError(
            f"gradient check failed for {what}: analytic {analytic!r}, finite differences "
            f"{numeric!r} (allowed: {atol} + {rtol}·|numeric|). Check the op's VJP rule.")
    return float(np.max(np.abs(analytic - numeric) / np.maximum(np.abs(numeric), 1e-300),
                        initial=0))
