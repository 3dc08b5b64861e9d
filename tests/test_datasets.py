"""nbbp.datasets: shapes, determinism, balance, and the geometry each set promises.

Oracles: the sets' definitions (radii, quadrants, centres) and linear separability
decided by a linear program (scipy.optimize.linprog), not by nbbp.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from nbbp import datasets
from nbbp.datasets import DataError
from nbbp.errors import NbbpError

TWO_CLASS = [datasets.moons, datasets.circles, datasets.xor, datasets.spirals, datasets.blobs]


def linearly_separable(X: np.ndarray, y01: np.ndarray) -> bool:
    """Is there (w, b) with s·(w·x + b) ≥ 1 for every point? (an LP feasibility test)"""
    s = 2.0 * y01.ravel() - 1.0
    A = np.hstack([X, np.ones((len(X), 1))])
    res = linprog(np.zeros(3), A_ub=-(s[:, None] * A), b_ub=-np.ones(len(X)),
                  bounds=[(None, None)] * 3, method="highs")
    return res.status == 0


def least_squares_accuracy(X: np.ndarray, y01: np.ndarray) -> float:
    """Accuracy of the least-squares linear classifier (a good line, not the best)."""
    s = 2.0 * y01.ravel() - 1.0
    A = np.hstack([X, np.ones((len(X), 1))])
    w = np.linalg.lstsq(A, s, rcond=None)[0]
    return float(np.mean(np.sign(A @ w) == s))


@pytest.mark.parametrize("make", TWO_CLASS, ids=lambda f: f.__name__)
def test_shapes_dtypes_and_labels(make):
    X, y = make(101)
    assert X.shape == (101, 2) and y.shape == (101, 1)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert np.unique(y).tolist() == [0.0, 1.0]
    assert np.isfinite(X).all()


@pytest.mark.parametrize("make", TWO_CLASS, ids=lambda f: f.__name__)
def test_deterministic_per_seed(make):
    X1, y1 = make(60, seed=3)
    X2, y2 = make(60, seed=3)
    X3, _ = make(60, seed=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("make", TWO_CLASS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("n", [2, 7, 200])
def test_classes_are_balanced_and_shuffled(make, n):
    _, y = make(n)
    counts = np.bincount(y.ravel().astype(int), minlength=2)
    assert counts.tolist() == [n - n // 2, n // 2]
    if n == 200:
        assert 0.3 < y[:50].mean() < 0.7           # rows are not sorted by class


@pytest.mark.parametrize("make", TWO_CLASS, ids=lambda f: f.__name__)
def test_pm1_and_onehot_labels_describe_the_same_points(make):
    X, y = make(50, seed=1)
    Xp, yp = make(50, seed=1, labels="pm1")
    Xo, yo = make(50, seed=1, labels="onehot")
    np.testing.assert_array_equal(X, Xp)
    np.testing.assert_array_equal(X, Xo)
    np.testing.assert_array_equal(yp, 2.0 * y - 1.0)
    assert np.unique(yp).tolist() == [-1.0, 1.0]
    assert yo.shape == (50, 2) and (yo.sum(1) == 1.0).all()
    np.testing.assert_array_equal(yo[:, 1:], y)


def test_moons_are_not_linearly_separable_but_nearly():
    X, y = datasets.moons(200, noise=0.1, seed=0)
    assert not linearly_separable(X, y)
    assert 0.8 <= least_squares_accuracy(X, y) <= 0.95


def test_moons_without_noise_lie_on_their_arcs():
    X, y = datasets.moons(100, noise=0.0)
    top, bottom = X[y.ravel() == 0], X[y.ravel() == 1]
    np.testing.assert_allclose(np.hypot(*top.T), 1.0, rtol=1e-12)
    assert (top[:, 1] >= -1e-12).all()
    np.testing.assert_allclose(np.hypot(bottom[:, 0] - 1.0, bottom[:, 1] - 0.5), 1.0, rtol=1e-12)
    assert (bottom[:, 1] <= 0.5 + 1e-12).all()
    assert not linearly_separable(X, y)          # the tips interleave even without noise


def test_circles_are_separated_by_radius_not_by_a_line():
    X, y = datasets.circles(300, noise=0.05, factor=0.5)
    r = np.hypot(*X.T)
    assert r[y.ravel() == 0].min() > 0.75 > r[y.ravel() == 1].max()
    assert not linearly_separable(X, y)
    assert least_squares_accuracy(X, y) < 0.65


def test_xor_labels_follow_the_quadrants():
    X, y = datasets.xor(400)
    np.testing.assert_array_equal(y.ravel(), (X[:, 0] * X[:, 1] < 0).astype(float))
    assert np.abs(X).max() <= 1.0
    assert not linearly_separable(X, y)
    assert least_squares_accuracy(X, y) < 0.65


def test_spirals_with_more_classes():
    X, y = datasets.spirals(301, classes=3, noise=0.0)
    assert np.bincount(y.ravel().astype(int)).tolist() == [101, 100, 100]
    assert np.hypot(*X.T).max() == pytest.approx(1.0)
    _, yo = datasets.spirals(301, classes=3, labels="onehot")
    assert yo.shape == (301, 3) and (yo.sum(1) == 1).all()
    with pytest.raises(DataError, match="labels='pm1' needs two classes"):
        datasets.spirals(30, classes=3, labels="pm1")


def test_blobs_around_given_centers():
    centers = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 6.0]])
    X, y = datasets.blobs(3000, centers=centers, std=0.5)
    cls = y.ravel().astype(int)
    for k in range(3):
        np.testing.assert_allclose(X[cls == k].mean(0), centers[k], atol=0.06)
        assert X[cls == k].std(0) == pytest.approx([0.5, 0.5], abs=0.04)
    nearest = np.argmin(((X[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    assert (nearest == cls).mean() > 0.999


def test_train_test_split():
    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.arange(20, dtype=float).reshape(20, 1)
    Xtr, Xte, ytr, yte = datasets.train_test_split(X, y, test=0.25, seed=0)
    assert Xtr.shape == (15, 2) and Xte.shape == (5, 2) and ytr.shape == (15, 1)
    # rows stay paired, and the two parts partition the rows
    np.testing.assert_array_equal(Xtr[:, 0] / 2, ytr.ravel())
    np.testing.assert_array_equal(Xte[:, 0] / 2, yte.ravel())
    assert sorted(np.concatenate([ytr, yte]).ravel().tolist()) == list(range(20))
    again = datasets.train_test_split(X, y, test=0.25, seed=0)
    np.testing.assert_array_equal(again[1], Xte)
    assert datasets.train_test_split(X, y, test=3)[1].shape == (3, 2)


@pytest.mark.parametrize("call, match", [
    (lambda: datasets.moons(1), "at least 2"),
    (lambda: datasets.moons(10.5), "whole number"),
    (lambda: datasets.moons(10, labels="+-1"), "labels='\\+-1' is not known"),
    (lambda: datasets.moons(10, labels="pm"), "did you mean 'pm1'"),
    (lambda: datasets.circles(10, factor=1.5), "inner radius"),
    (lambda: datasets.spirals(10, classes=1), "classes must be"),
    (lambda: datasets.blobs(10, centers=np.zeros((3, 3))), "shape \\(k, 2\\)"),
    (lambda: datasets.train_test_split(np.zeros((4, 2)), np.zeros((3, 1))), "4 rows but y has 3"),
    (lambda: datasets.train_test_split(np.zeros((4, 2)), np.zeros((4, 1)), test=1.0), "fraction"),
])
def test_argument_errors(call, match):
    with pytest.raises(DataError, match=match) as info:
        call()
    assert isinstance(info.value, NbbpError) and isinstance(info.value, ValueError)
