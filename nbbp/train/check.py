"""Check a model's gradients against central finite differences.

Like HIPS autograd's ``check_grads``: perturb every param (and optionally input)
along one random direction ``v`` and compare the directional derivative the
model computes, ``∇f · v``, with ``(f(x + εv) − f(x − εv)) / 2ε``. Order 2 does
the same for the gradient itself: the Hessian-vector product ``H v`` (built by
differentiating the backward graph) against finite differences of ``∇f``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.autodiff import gradients
from ..core.engine import Layout, make_program
from ..core.graph import Node, leaves
from ..core.ops import apply
from ..errors import NbbpError
from ..model import Model


class GradientCheckError(NbbpError, AssertionError):
    """Analytic and numeric derivatives disagree."""


def check_grads(m: Model, wrt: Sequence[str] | None = None, order: int = 2,
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
                 else leaves(m.forward, "param"))
    if not perturbed:
        raise NbbpError("check_grads: the model has no params to perturb; pass wrt=[...]")
    rng = np.random.default_rng(seed)
    x0 = {n: np.asarray(m.value_of(n), dtype=float) for n in perturbed}
    v = {n: rng.standard_normal(n.shape) for n in perturbed}

    def at(t: float) -> dict[Node, np.ndarray]:
        return {n: x0[n] + t * v[n] for n in perturbed}

    report: dict[str, float] = {}
    grads = [m.grad_node(n) for n in perturbed]
    analytic = sum(float(np.sum(np.asarray(m.grad_of(n)) * v[n])) for n in perturbed)
    numeric = (np.sum(m.run(m.output, at(eps))) - np.sum(m.run(m.output, at(-eps)))) / (2 * eps)
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
            layout = Layout(g)
            arena = layout.new_arena()
            for n in m.forward:
                if n.op in ("param", "input"):
                    layout.write(arena, n, m.value_of(n))
            make_program(layout, [n for n in g.ancestors(fetch) if not n.is_leaf],
                         m.engine, keep=fetch)(arena)
            hv = [layout.read(arena, h) for h in fetch]
            plus = m.run([gn for _, gn in live], at(eps))
            minus = m.run([gn for _, gn in live], at(-eps))
            errs = []
            k = 0
            for i, (n, _) in enumerate(live):
                num = (np.asarray(plus[i]) - np.asarray(minus[i])) / (2 * eps)
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
