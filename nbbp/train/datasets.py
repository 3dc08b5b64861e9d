"""Small generated data sets for classification demos — seeded, never downloaded.

Every function returns ``(X, y)``: ``X`` a float64 array of shape ``(n, 2)`` (points
in the plane) and ``y`` a float64 array of shape ``(n, 1)`` holding the class of
each point — ``0.0`` or ``1.0`` for two classes. ``labels="pm1"`` gives ``-1.0`` /
``+1.0`` instead (for hinge losses such as ``relu(1 - y * s)``), and
``labels="onehot"`` gives shape ``(n, k)`` rows of zeros with one 1 (for softmax
cross-entropy). Classes are as balanced as ``n`` allows and the rows are shuffled,
so any slice is a fair sample. The same ``seed`` always gives the same arrays.

>>> import numpy as np
>>> from nbbp import datasets
>>> X, y = datasets.moons(200, noise=0.1, seed=0)
>>> X.shape, y.shape, np.unique(y).tolist()
((200, 2), (200, 1), [0.0, 1.0])
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import NbbpError

LABELS = ("01", "pm1", "onehot")


class DataError(NbbpError, ValueError):
    """A data-set function got an argument it cannot use."""


def _check(n: int, k: int, labels: str, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < k:
        raise DataError(f"{what}: n must be a whole number of points, at least {k} (one per "
                        f"class), got {n!r}")
    if labels not in LABELS:
        from ..errors import suggest
        raise DataError(f"{what}: labels={labels!r} is not known; "
                        + suggest(str(labels), LABELS, "labels option")
                        + " ('01': classes 0, 1, …; 'pm1': -1/+1 for two classes; "
                        "'onehot': one column per class)")
    if labels == "pm1" and k != 2:
        raise DataError(f"{what}: labels='pm1' needs two classes, this set has {k}; use "
                        "labels='01' or 'onehot'")
    return int(n)


def _counts(n: int, k: int) -> list[int]:
    """Balanced class sizes: n // k each, the first n % k classes one more."""
    return [n // k + (1 if c < n % k else 0) for c in range(k)]


def _finish(parts: list[np.ndarray], k: int, labels: str, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    X = np.concatenate(parts).astype(np.float64)
    cls = np.concatenate([np.full(len(p), c) for c, p in enumerate(parts)])
    order = rng.permutation(len(X))
    X, cls = X[order], cls[order]
    if labels == "onehot":
        return X, np.eye(k)[cls]
    y = cls.astype(np.float64).reshape(-1, 1)
    return X, (2.0 * y - 1.0 if labels == "pm1" else y)


def moons(n: int = 200, noise: float = 0.1, seed: int = 0, labels: str = "01"
          ) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (class 0 on top, class 1 below), with Gaussian
    noise of standard deviation ``noise``. Not linearly separable, but a line gets
    most points right; a small MLP separates them."""
    n = _check(n, 2, labels, "moons")
    rng = np.random.default_rng(seed)
    n0, n1 = _counts(n, 2)
    t0, t1 = np.linspace(0.0, math.pi, n0), np.linspace(0.0, math.pi, n1)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    parts = [upper + rng.normal(0.0, noise, upper.shape),
             lower + rng.normal(0.0, noise, lower.shape)]
    return _finish(parts, 2, labels, rng)


def circles(n: int = 200, noise: float = 0.05, factor: float = 0.5, seed: int = 0,
            labels: str = "01") -> tuple[np.ndarray, np.ndarray]:
    """A circle of radius 1 (class 0) around one of radius ``factor`` (class 1)."""
    n = _check(n, 2, labels, "circles")
    if not 0.0 < factor < 1.0:
        raise DataError(f"circles: factor is the inner radius, between 0 and 1, got {factor!r}")
    rng = np.random.default_rng(seed)
    parts = []
    for c, m in enumerate(_counts(n, 2)):
        t = np.linspace(0.0, 2.0 * math.pi, m, endpoint=False)
        r = 1.0 if c == 0 else factor
        ring = r * np.stack([np.cos(t), np.sin(t)], axis=1)
        parts.append(ring + rng.normal(0.0, noise, ring.shape))
    return _finish(parts, 2, labels, rng)


def xor(n: int = 200, noise: float = 0.0, seed: int = 0, labels: str = "01"
        ) -> tuple[np.ndarray, np.ndarray]:
    """Points in the square [-1, 1]²: class 1 where the coordinates' signs differ
    (quadrants II and IV), class 0 where they agree — no line does better than
    chance. ``noise`` jitters the points after labelling."""
    n = _check(n, 2, labels, "xor")
    rng = np.random.default_rng(seed)
    parts = []
    for c, m in enumerate(_counts(n, 2)):
        mag = rng.uniform(0.05, 1.0, (m, 2))
        s = rng.choice([-1.0, 1.0], m)
        signs = np.stack([s, s if c == 0 else -s], axis=1)
        parts.append(mag * signs + rng.normal(0.0, noise, (m, 2)))
    return _finish(parts, 2, labels, rng)


def spirals(n: int = 200, classes: int = 2, noise: float = 0.2, turns: float = 1.0,
            seed: int = 0, labels: str = "01") -> tuple[np.ndarray, np.ndarray]:
    """``classes`` interleaved spiral arms from the centre out to radius 1 (the
    CS231n set); ``noise`` perturbs the angle. With more than two classes, ``y``
    holds the class index 0, 1, …, k-1 (or one-hot rows with ``labels="onehot"``)."""
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 2:
        raise DataError(f"spirals: classes must be a whole number ≥ 2, got {classes!r}")
    k = int(classes)
    n = _check(n, k, labels, "spirals")
    rng = np.random.default_rng(seed)
    parts = []
    for c, m in enumerate(_counts(n, k)):
        r = np.linspace(0.0, 1.0, m)
        t = (2.0 * math.pi * turns * r + 2.0 * math.pi * c / k
             + rng.normal(0.0, noise, m))
        parts.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
    return _finish(parts, k, labels, rng)


def blobs(n: int = 200, centers: int | np.ndarray = 2, std: float = 1.0, seed: int = 0,
          box: tuple[float, float] = (-5.0, 5.0), labels: str = "01"
          ) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs of standard deviation ``std`` around ``centers`` — a number of
    centers drawn uniformly in ``box`` × ``box``, or their coordinates, shape (k, 2)."""
    rng = np.random.default_rng(seed)
    if np.ndim(centers) == 0:
        if isinstance(centers, bool) or int(centers) != centers or int(centers) < 2:
            raise DataError(f"blobs: centers must be a number ≥ 2 or an array of shape "
                            f"(k, 2), got {centers!r}")
        c = rng.uniform(box[0], box[1], (int(centers), 2))
    else:
        c = np.asarray(centers, dtype=np.float64)
        if c.ndim != 2 or c.shape[1] != 2 or len(c) < 2:
            raise DataError(f"blobs: centers given as coordinates need shape (k, 2) with "
                            f"k ≥ 2, got shape {c.shape}")
    k = len(c)
    n = _check(n, k, labels, "blobs")
    parts = [c[j] + rng.normal(0.0, std, (m, 2)) for j, m in enumerate(_counts(n, k))]
    return _finish(parts, k, labels, rng)


def train_test_split(X: np.ndarray, y: np.ndarray, test: float | int = 0.25, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle the rows and split them: ``X_train, X_test, y_train, y_test``.

    ``test`` is the fraction of rows for testing (0 < test < 1) or their number.

    >>> from nbbp import datasets
    >>> X, y = datasets.xor(100)
    >>> Xtr, Xte, ytr, yte = datasets.train_test_split(X, y, test=0.2)
    >>> Xtr.shape, Xte.shape, ytr.shape, yte.shape
    ((80, 2), (20, 2), (80, 1), (20, 1))
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise DataError(f"train_test_split: X has {len(X)} rows but y has {len(y)}")
    n = len(X)
    if isinstance(test, float) and 0.0 < test < 1.0:
        n_test = int(math.ceil(test * n))
    elif isinstance(test, (int, np.integer)) and not isinstance(test, bool) and 0 < test < n:
        n_test = int(test)
    else:
        raise DataError(f"train_test_split: test must be a fraction between 0 and 1 or a "
                        f"number of rows between 1 and {n - 1}, got {test!r}")
    if n_test >= n:
        raise DataError(f"train_test_split: test={test!r} leaves no rows to train on")
    order = np.random.default_rng(seed).permutation(n)
    te, tr = order[:n_test], order[n_test:]
    return X[tr], X[te], y[tr], y[te]


__all__ = ["DataError", "blobs", "circles", "moons", "spirals", "train_test_split", "xor"]
