"""Data sets for classification demos — generated and seeded, or real and already on disk;
never downloaded.

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

Images: :func:`digits` (scikit-learn's 1,797 bundled 8×8 handwritten digits) and
:func:`mnist` (the MNIST files you already have) return images shaped ``(n, h, w, 1)``
(NHWC, one channel) with values in [0, 1] and integer labels 0–9 (int64), as
``X_train, y_train, X_test, y_test``.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import NbbpError

LABELS = ("01", "pm1", "onehot")


class DataError(NbbpError, ValueError):
    """A data-set function got an argument it cannot use, or a data file is missing or
    not what it should be."""


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


def _image_dtype(dtype: object, what: str) -> np.dtype:
    dt = np.dtype(dtype) if isinstance(dtype, (str, type, np.dtype)) else None
    if dt is None or dt not in (np.float32, np.float64):
        raise DataError(f"{what}: dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def _n_test(test: float | int, n: int, what: str) -> int:
    if isinstance(test, float) and 0.0 < test < 1.0:
        return min(int(math.ceil(test * n)), n - 1)
    if isinstance(test, (int, np.integer)) and not isinstance(test, bool) and 0 < test < n:
        return int(test)
    raise DataError(f"{what}: test must be a fraction between 0 and 1 or a number of images "
                    f"between 1 and {n - 1}, got {test!r}")


def _stratified(y: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test), both shuffled, with every class in the test part in
    proportion to its size (largest remainders make the sizes add up to ``n_test``)."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    share = counts * n_test / len(y)
    k = np.floor(share).astype(np.int64)
    extra = np.argsort(-(share - k), kind="stable")[: n_test - int(k.sum())]
    k[extra] += 1
    train, test = [], []
    for c, kc in zip(classes, k):
        rows = rng.permutation(np.flatnonzero(y == c))
        test.append(rows[:kc]); train.append(rows[kc:])
    tr, te = np.concatenate(train), np.concatenate(test)
    return tr[rng.permutation(len(tr))], te[rng.permutation(len(te))]


def digits(test: float | int = 0.2, seed: int = 0, dtype: str = "float64"
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 handwritten digits — 1,797 real images (UCI's optical digits,
    about 180 of each digit) that ship inside scikit-learn, so nothing is downloaded.

    Returns ``X_train, y_train, X_test, y_test``: images of shape ``(n, 8, 8, 1)`` with
    values in [0, 1] (the original 0–16 grey levels divided by 16) and labels 0–9 as
    int64. ``test`` is the fraction of images held out (or their number); the split is
    stratified (every digit in proportion) and shuffled, and the same ``seed`` always
    gives the same split. Needs scikit-learn: ``pip install 'nbbp[data]'``.

    >>> from nbbp import datasets
    >>> X, y, X_test, y_test = datasets.digits(test=0.2, seed=0)
    >>> X.shape, y.shape, X_test.shape, y.dtype.name, float(X.max())
    ((1437, 8, 8, 1), (1437,), (360, 8, 8, 1), 'int64', 1.0)
    """
    dt = _image_dtype(dtype, "digits")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("digits: needs scikit-learn, which ships the images; install it "
                        "with pip install 'nbbp[data]'") from None
    bunch = load_digits()
    X = (np.asarray(bunch.images, dtype=np.float64) / 16.0)[..., None].astype(dt)
    y = np.asarray(bunch.target, dtype=np.int64)
    tr, te = _stratified(y, _n_test(test, len(y), "digits"), seed)
    return X[tr], y[tr], X[te], y[te]


# ---------------------------------------------------------------- MNIST from the user's files

#: the file names MNIST is distributed under (each also found with ``.gz`` added, and
#: spelled ``train-images.idx3-ubyte`` as some mirrors do)
MNIST_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
               "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
_IDX_TYPES = {0x08: np.uint8}      # MNIST's images and labels are unsigned bytes


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"mnist: cannot read {path}: {e.strerror or e}") from None
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"mnist: {path} is not a valid gzip file ({e}); download it "
                            "again or unpack it yourself") from None
    return raw


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX file: magic ``00 00 08 ndim``, ``ndim`` big-endian int32 sizes, the bytes."""
    data = _read_bytes(path)
    want = f"magic number 0x0000080{ndim} (unsigned bytes, {ndim} dimension{'s' * (ndim > 1)})"
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"mnist: {path} is {len(data)} bytes, too short for an IDX header; "
                        f"expected {want}")
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x800 + ndim:
        raise DataError(f"mnist: {path} starts with magic number 0x{magic:08x}; expected {want}")
    dims = tuple(int(d) for d in np.frombuffer(data, ">i4", ndim, 4))
    body = len(data) - 4 - 4 * ndim
    size = math.prod(dims)
    if body != size:
        raise DataError(f"mnist: {path} has dimensions {dims}, which need {size} bytes of "
                        f"data after the header, but it holds {body} (truncated or corrupt?)")
    return np.frombuffer(data, _IDX_TYPES[0x08], size, 4 + 4 * ndim).reshape(dims)


def _which(folder: Path, stem: str) -> Path | None:
    dotted = stem.replace("-idx", ".idx")                   # train-images.idx3-ubyte
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _find(folder: Path, stem: str) -> Path:
    found = _which(folder, stem)
    if found is not None:
        return found
    raise DataError(f"mnist: no {stem} or {stem}.gz in {folder}; expected the four MNIST "
                    f"files ({', '.join(MNIST_FILES.values())}) or mnist.npz there")


def _images(x: np.ndarray, y: np.ndarray, where: str, dt: np.dtype
            ) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or y.ndim != 1:
        raise DataError(f"mnist: {where} holds images of shape {x.shape} and labels of shape "
                        f"{y.shape}; expected (n, rows, cols) images and (n,) labels")
    if len(x) != len(y):
        raise DataError(f"mnist: {where} has {len(x)} images but {len(y)} labels; expected "
                        "one label per image")
    if not (np.issubdtype(y.dtype, np.integer) and (len(y) == 0 or 0 <= y.min() <= y.max() <= 9)):
        raise DataError(f"mnist: {where} labels must be whole numbers 0–9, got dtype "
                        f"{y.dtype} with values {y.min() if len(y) else ''}…"
                        f"{y.max() if len(y) else ''}")
    if np.issubdtype(x.dtype, np.integer) and (x.size == 0 or 0 <= x.min() <= x.max() <= 255):
        X = x.astype(dt) / dt.type(255)
    elif np.issubdtype(x.dtype, np.floating) and (x.size == 0 or 0 <= x.min() <= x.max() <= 1):
        X = x.astype(dt)
    else:
        raise DataError(f"mnist: {where} images must be bytes 0–255 or floats in [0, 1], got "
                        f"dtype {x.dtype}")
    return X[..., None], y.astype(np.int64)


def _from_npz(path: Path, dt: np.dtype) -> tuple[np.ndarray, ...]:
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            missing = [k for k in MNIST_FILES if k not in z.files]
            if missing:
                raise DataError(f"mnist: {path} has arrays {sorted(z.files)}; expected "
                                f"x_train, y_train, x_test, y_test (missing {', '.join(missing)})")
            arrays = {k: z[k] for k in MNIST_FILES}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        raise DataError(f"mnist: {path} is not a readable .npz file of plain arrays ({e})"
                        ) from None
    x_tr, y_tr = _images(arrays["x_train"], arrays["y_train"], f"{path} (x_train, y_train)", dt)
    x_te, y_te = _images(arrays["x_test"], arrays["y_test"], f"{path} (x_test, y_test)", dt)
    return x_tr, y_tr, x_te, y_te


def mnist(path: str | os.PathLike, dtype: str = "float32"
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST from files you already have — never downloaded.

    ``path`` is a folder holding the four IDX files (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
    each gzipped or not) or ``mnist.npz``, or the ``.npz`` file itself (arrays
    ``x_train, y_train, x_test, y_test``, read without pickle). Returns
    ``X_train, y_train, X_test, y_test``: images ``(n, 28, 28, 1)`` in [0, 1] (float32
    by default: 60,000 images in float64 take 376 MB) and labels 0–9 as int64. A
    missing or malformed file raises :class:`DataError` naming the file and what was
    expected.
    """
    dt = _image_dtype(dtype, "mnist")
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".npz":
        return _from_npz(p, dt)
    if p.is_file():
        p = p.parent               # one of the IDX files: read the four beside it
    if not p.is_dir():
        raise DataError(f"mnist: {p} does not exist; give the folder holding the MNIST files "
                        "(or mnist.npz) — nbbp never downloads them")
    if (p / "mnist.npz").is_file() and not any(_which(p, s) for s in MNIST_FILES.values()):
        return _from_npz(p / "mnist.npz", dt)
    files = {k: _find(p, stem) for k, stem in MNIST_FILES.items()}
    x_tr, x_te = _read_idx(files["x_train"], 3), _read_idx(files["x_test"], 3)
    y_tr, y_te = _read_idx(files["y_train"], 1), _read_idx(files["y_test"], 1)
    train = _images(x_tr, y_tr, f"{files['x_train'].name} and {files['y_train'].name}", dt)
    test = _images(x_te, y_te, f"{files['x_test'].name} and {files['y_test'].name}", dt)
    return train[0], train[1], test[0], test[1]


__all__ = ["DataError", "blobs", "circles", "digits", "mnist", "moons", "spirals",
           "train_test_split", "xor"]
