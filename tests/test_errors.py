"""Every mistake gets a message that says what, where, why and how to fix it."""

from __future__ import annotations

import numpy as np
import pytest

import nbbp

BAD_SOURCES = [
    ("syntax", "x = param(3.0)\nf = x *", nbbp.BuildError,
     ["line 2, col 8", "syntax error", "f = x *"]),
    ("unknown op", "x = param(3.0)\nf = tanhh(x)", nbbp.BuildError,
     ["line 2, col 5", "unknown name 'tanhh'", "did you mean 'tanh'", "(nearest: ", "%%bpgraph?", "    ^"]),
    ("matmul shapes", "x = input(np.zeros((100, 2)))\nW = param(np.zeros((3, 16)))\nh = x @ W",
     nbbp.ShapeError, ["line 3", "x @ W: (100, 2) @ (3, 16)", "inner dimensions 2 and 3",
                       "W needs 2 rows"]),
    ("broadcast", "a = param(np.zeros(3))\nb = param(np.zeros(4))\nc = a + b", nbbp.ShapeError,
     ["a + b: shapes (3,) and (4,) do not broadcast", "reshape"]),
    ("non-numeric", "x = param('abc')", nbbp.BuildError,
     ["line 1", "param(...) needs a number", "str 'abc'"]),
    ("namespace value", "x = param(X)", nbbp.BuildError, ["str 'hello'"]),
    ("if on a node", "x = param(1.0)\nif x > 0:\n    y = x", nbbp.BuildError,
     ["line 2", "no truth value", "where(cond, a, b)"]),
    ("empty", "  \n", nbbp.BuildError, ["source is empty"]),
    ("index out of range", "x = param(np.ones(3))\ny = x[3]", nbbp.ShapeError,
     ["line 2", "getitem x[3]", "index 3 is out of range for axis 0 of size 3",
      "valid: -3..2"]),
    ("bad axis", "x = param(np.ones(3))\ny = sum(x, axis=2)", nbbp.ShapeError,
     ["sum(x, axis=2)", "shape (3,)"]),
    ("too many dims", "x = param(np.ones((1, 1, 1, 1, 2)))", nbbp.BuildError,
     ["up to 4 dimensions"]),
    ("reshape", "x = param(np.ones(6))\ny = reshape(x, (4, 2))", nbbp.ShapeError,
     ["reshape(x, (4, 2))", "6 elements"]),
    ("python error", "x = param(1.0)\ny = 1 / 0", nbbp.BuildError,
     ["line 2", "ZeroDivisionError"]),
    ("no node", "n = 3", nbbp.BuildError, ["assigns no node"]),
    ("log of negative", "x = param(-1.0)\ny = log(x)\nf = y * 2", nbbp.NumericError,
     ["line 2", "node 'y' = log", "produced nan", "x = -1", "needs x > 0"]),
    ("0/0", "x = param(0.0)\nf = x / x", nbbp.NumericError, ["node 'f' = div", "nan"]),
]


@pytest.mark.parametrize("label,src,exc,parts", BAD_SOURCES, ids=[c[0] for c in BAD_SOURCES])
def test_bad_source_messages(label, src, exc, parts, engine):
    with pytest.raises(exc) as info:
        nbbp.build(src, namespace={"X": "hello", "np": np}, engine=engine)
    text = str(info.value)
    for part in parts:
        assert part in text, f"{part!r} not in:\n{text}"


def test_unknown_output_suggests():
    with pytest.raises(nbbp.BuildError, match=r"output 'ff' is not a node.*'f'"):
        nbbp.build("x = param(1.0)\nf = x * x", output="ff")


def test_failed_build_leaves_nothing_behind():
    with nbbp.Graph() as g:
        x = nbbp.param(np.ones(3), name="x")
        n = len(g.nodes)
        with pytest.raises(nbbp.ShapeError):
            nbbp.matmul(x, np.ones((4, 2)))      # the lifted const must not stay behind
        assert len(g.nodes) == n and set(g.by_name) == {"x"}


def test_nodes_of_two_graphs_do_not_mix():
    with nbbp.Graph(name="one"):
        a = nbbp.param(1.0, name="a")
    with nbbp.Graph(name="two"):
        b = nbbp.param(2.0, name="b")
        with pytest.raises(nbbp.BuildError, match="belongs to another graph"):
            _ = b * a


def test_building_outside_a_graph_says_how():
    with pytest.raises(nbbp.BuildError, match=r"with nbbp.Graph\(\) as g"):
        nbbp.param(1.0)


def test_where_masks_a_nan_branch_without_error():
    # the untaken branch is nan (log of a negative), yet nothing the model reports is
    m = nbbp.build("x = param(-2.0)\nf = where(x > 0, log(x), x * x)")
    assert m.value == 4.0 and m.grads["x"] == -4.0


@pytest.mark.parametrize("src,message", [
    ("W = param(randn(2, 2.5))", r"a shape must be whole numbers ≥ 0, got \(2, 2.5\)"),
    ("W = param(zeros(2, 0))", r"shape \(2, 0\) has an axis of size 0"),
    ("x = param(np.ones(3))\ny = reshape(x, (3, 0))", "reshape"),
])
def test_bad_shapes_from_initialisers(src, message):
    with pytest.raises(nbbp.BuildError, match=message):
        nbbp.build(src, namespace={"np": np})


def test_a_constant_division_by_zero_is_one_error_line_not_a_numpy_warning():
    """The backward pass folds its constants (here −x/(0·0)); an inf there is the run's
    to report, as one NumericError naming the node, with no NumPy warning before it."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # any RuntimeWarning fails the test
        with pytest.raises(nbbp.NumericError) as info:
            nbbp.build("x = param(2.0)\ny = x / (1.5 - 1.5)")
    assert str(info.value).startswith("line 2: node 'y' = div(x, 0) produced inf from x = 2")
