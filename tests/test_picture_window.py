"""The picture of a large flat graph reads and walks only the nodes it draws (a window:
the latest ``max_nodes - 1`` nodes and a box for the rest). Oracle: the same scene
reading and walking every node (``windowed = False``, the algorithm before windows),
whose DOT text must be byte-identical for every model and option."""

from __future__ import annotations

import numpy as np
import pytest

import nbbp
from nbbp.view.dot import scene_dot
from nbbp.view.listing import listing
from nbbp.view.options import for_model
from nbbp.view.scene import Scene


class FullScene(Scene):
    windowed = False


def chain(n: int, engine: str = "numba") -> nbbp.Model:
    """W5's pattern: sin, * 1.001, + 0.0005 in turn; x used again at the end (a leaf
    in the rest feeding a drawn node), and a named constant."""
    with nbbp.Graph():
        x = nbbp.param(0.5, name="x")
        c = nbbp.const(0.25, name="c")
        v = x
        for k in range(n):
            v = nbbp.sin(v) if k % 3 == 0 else (v * 1.001 if k % 3 == 1 else v + 0.0005)
        v = v * x + c
    return nbbp.Model(v, engine=engine)


def wide(n: int) -> nbbp.Model:
    with nbbp.Graph():
        v = nbbp.param(1.0, name="p0")
        for i in range(1, n):
            v = v + nbbp.param(1e-3 * i, name=f"p{i}") * float(i % 7 - 3)
    return nbbp.Model(v)


def mixed() -> nbbp.Model:
    """Tensors, float32, an int node (no gradient), a large contribution (the colour
    scale's top: 1e5 along each edge of big * big)."""
    with nbbp.Graph():
        t = nbbp.param(np.linspace(-1.0, 1.0, 6).reshape(2, 3), name="t")
        h = nbbp.param(np.ones((2, 3), np.float32), name="h")
        v = nbbp.sum(nbbp.tanh(t) * 2.0) + nbbp.cast(nbbp.sum(h * 3.0), "float64")
        k = nbbp.cast(nbbp.argmax(nbbp.reshape(t, (6,))), "float64")
        big = nbbp.param(1e5, name="big")
        for _ in range(40):
            v = v * 0.999 + nbbp.sin(v) * 1e-3
        v = v + k + big * big
    return nbbp.Model(v)


MODELS = {"chain300": lambda: chain(300), "chain300_py": lambda: chain(300, "python"),
          "wide120": lambda: wide(120), "mixed": mixed, "chain3": lambda: chain(3)}
OPTS = [{}, {"max_nodes": 2}, {"max_nodes": 3}, {"max_nodes": 10}, {"max_nodes": 0},
        {"max_nodes": 1}, {"backward": True, "max_nodes": 12}, {"rankdir": "LR"},
        {"max_nodes": 20, "grad": False}]


@pytest.fixture(scope="module")
def models():
    return {k: f() for k, f in MODELS.items()}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("opts", OPTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
                         or "default")
def test_the_window_draws_what_the_full_scene_draws(models, name, opts):
    m = models[name]
    o = for_model(m, opts)
    fast, full = Scene(m, o), FullScene(m, o)
    assert scene_dot(fast) == scene_dot(full)
    assert fast.top_magnitude() == full.top_magnitude()
    assert fast.rankdir == full.rankdir
    assert len(fast.rest) == len(full.rest) and fast.rest_info() == full.rest_info()
    if fast.first:                                   # a window: it read only its nodes
        assert len(fast.shown) < len(full.shown)


def test_a_window_reads_only_what_it_draws(models):
    m = models["chain300"]
    sc = Scene(m, for_model(m, {"max_nodes": 10}))
    assert sc.first and len(sc.shown) < 30
    assert len(dict.items(sc.value)) < 40       # what it read, not every node's value
    assert sc.top_magnitude() > 0 and "earlier nodes" in sc.rest_info()[0]
    # a node outside the window is still read when asked for, as the full scene reads it
    full = FullScene(m, for_model(m, {"max_nodes": 10}))
    x = m.node("x")
    assert sc.value[x.id] == full.value[x.id] == 0.5
    assert sc.grad[x.id] == full.grad[x.id] and x.id in sc.grad
    op = next(n for n in m.forward if n.inputs)
    assert sc.egrad[(op.id, 0)] == full.egrad[(op.id, 0)] is not None
    assert (op.id, 7) not in sc.egrad and sc.egrad.get((op.id, 7)) is None
    assert sc.unit[x.id] == full.unit[x.id] == "rest"


def test_the_listing_of_a_windowed_scene_lists_every_node_and_edge(models, monkeypatch):
    m = models["chain300"]
    text = listing(m, max_nodes=10)
    monkeypatch.setattr(Scene, "windowed", False)
    assert text.count("\n") > 300 and text == listing(m, max_nodes=10)
    assert "0.2051 = 0.01213 + 0.1929" in text     # x: both contributions, one in the rest


def test_the_largest_gradient_skips_nan_and_inf_and_reads_tensors(models):
    m = models["mixed"]
    o = for_model(m, {"max_nodes": 5})
    sc = Scene(m, o)
    assert sc.first
    egrads = [g for g in FullScene(m, o).egrad.values() if g is not None]
    assert any(np.ndim(g) == 2 for g in egrads)
    mags = [float(np.sqrt(np.sum(np.square(np.asarray(g, float))))) for g in egrads]
    assert sc.top_magnitude() == max(mags) == 1e5
    # nan and inf in the arena (as a masked branch leaves them) are not the largest
    m = mixed()
    top = [g for g in m.backprop.grads.edge.values() if g.shape == ()]
    m.compiled.view(top[0])[...] = np.nan
    m.compiled.view(top[1])[...] = np.inf
    m.compiled.view(top[2])[...] = -3e5
    assert Scene(m, o).top_magnitude() == FullScene(m, o).top_magnitude() == 3e5
