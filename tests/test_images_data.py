"""nbbp.datasets.digits and nbbp.datasets.mnist: real images, never downloaded.

Oracles: scikit-learn's own ``load_digits`` (images, per-class counts) for digits; for
MNIST, small IDX and .npz files written here byte by byte from the format's definition
(magic 00 00 08 ndim, big-endian int32 sizes, then the bytes), and broken copies of them.
"""

from __future__ import annotations

import gzip
import struct
import sys

import numpy as np
import pytest

from nbbp import datasets
from nbbp.datasets import DataError

sklearn_datasets = pytest.importorskip("sklearn.datasets")


# ------------------------------------------------------------------------------ digits

def test_digits_shapes_dtypes_range_and_split_sizes():
    Xtr, ytr, Xte, yte = datasets.digits(test=0.2, seed=0)
    assert Xtr.shape == (1437, 8, 8, 1) and Xte.shape == (360, 8, 8, 1)
    assert ytr.shape == (1437,) and yte.shape == (360,)
    assert Xtr.dtype == np.float64 and ytr.dtype == np.int64 and yte.dtype == np.int64
    assert Xtr.min() == 0.0 and Xtr.max() == 1.0 and Xte.min() >= 0.0 and Xte.max() <= 1.0
    assert datasets.digits(test=100)[2].shape == (100, 8, 8, 1)
    assert datasets.digits(dtype="float32")[0].dtype == np.float32


def test_digits_are_scikit_learns_images_with_their_labels_and_counts():
    bunch = sklearn_datasets.load_digits()
    Xtr, ytr, Xte, yte = datasets.digits(test=0.25, seed=3)
    X = np.concatenate([Xtr, Xte])[..., 0] * 16.0
    y = np.concatenate([ytr, yte])
    # the same 1,797 (image, label) pairs, in another order
    key = lambda imgs, labels: sorted(zip(labels.tolist(), (i.tobytes() for i in imgs)))
    assert key(X, y) == key(bunch.images.astype(np.float64), bunch.target)
    assert np.bincount(y, minlength=10).tolist() == np.bincount(bunch.target).tolist()
    # stratified: each digit's test share is within one image of 25 %
    counts = np.bincount(bunch.target)
    assert (np.abs(np.bincount(yte, minlength=10) - 0.25 * counts) <= 1).all()
    assert not np.array_equal(ytr[:40], np.sort(ytr[:40]))      # shuffled


def test_digits_split_is_deterministic_per_seed():
    a, b, c = datasets.digits(seed=1), datasets.digits(seed=1), datasets.digits(seed=2)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("kw, match", [
    ({"test": 1.0}, "fraction between 0 and 1"),
    ({"test": 0}, "fraction between 0 and 1"),
    ({"dtype": "int8"}, "dtype must be 'float32' or 'float64'"),
])
def test_digits_argument_errors(kw, match):
    with pytest.raises(DataError, match=match):
        datasets.digits(**kw)


def test_digits_without_scikit_learn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)     # import fails
    with pytest.raises(DataError) as info:
        datasets.digits()
    msg = str(info.value)
    assert "pip install 'nbbp[data]'" in msg and "\n" not in msg


# ------------------------------------------------------------------------------- MNIST

def idx(array: np.ndarray) -> bytes:
    a = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}i", *a.shape) + a.tobytes()


def small_mnist(seed: int = 0):
    rng = np.random.default_rng(seed)
    x_tr = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    y_tr = rng.integers(0, 10, 7, dtype=np.uint8)
    x_te = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    y_te = rng.integers(0, 10, 3, dtype=np.uint8)
    return x_tr, y_tr, x_te, y_te


def write_idx(folder, arrays, gz=False, names=datasets.MNIST_FILES):
    for key, a in zip(("x_train", "y_train", "x_test", "y_test"), arrays):
        data = idx(a)
        name = names[key] + (".gz" if gz else "")
        (folder / name).write_bytes(gzip.compress(data, mtime=0) if gz else data)


def check_loaded(got, arrays):
    Xtr, ytr, Xte, yte = got
    x_tr, y_tr, x_te, y_te = arrays
    assert Xtr.shape == (7, 28, 28, 1) and Xte.shape == (3, 28, 28, 1)
    assert Xtr.dtype == np.float32 and ytr.dtype == np.int64
    np.testing.assert_array_equal(Xtr[..., 0], x_tr.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(Xte[..., 0], x_te.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ytr, y_tr)
    np.testing.assert_array_equal(yte, y_te)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_mnist_reads_idx_files(tmp_path, gz):
    arrays = small_mnist()
    write_idx(tmp_path, arrays, gz=gz)
    check_loaded(datasets.mnist(tmp_path), arrays)
    check_loaded(datasets.mnist(str(tmp_path / "t10k-labels-idx1-ubyte" ) + (".gz" if gz else "")),
                 arrays)                                   # a file names its folder
    assert datasets.mnist(tmp_path, dtype="float64")[0].dtype == np.float64


def test_mnist_reads_dotted_names_as_some_mirrors_spell_them(tmp_path):
    arrays = small_mnist(1)
    write_idx(tmp_path, arrays, names={k: v.replace("-idx", ".idx")
                                       for k, v in datasets.MNIST_FILES.items()})
    check_loaded(datasets.mnist(tmp_path), arrays)


def test_mnist_reads_npz(tmp_path):
    arrays = small_mnist(2)
    np.savez(tmp_path / "mnist.npz", x_train=arrays[0], y_train=arrays[1],
             x_test=arrays[2], y_test=arrays[3])
    check_loaded(datasets.mnist(tmp_path / "mnist.npz"), arrays)
    check_loaded(datasets.mnist(tmp_path), arrays)          # a folder holding mnist.npz


def broken(tmp_path, name, data, gz=False):
    write_idx(tmp_path, small_mnist(), gz=gz)
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError) as info:
        datasets.mnist(tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and name in msg
    return msg


def test_mnist_wrong_magic(tmp_path):
    data = bytearray(idx(small_mnist()[0])); data[3] = 1
    msg = broken(tmp_path, "train-images-idx3-ubyte", bytes(data))
    assert "magic number 0x00000801" in msg and "expected magic number 0x00000803" in msg


def test_mnist_truncated(tmp_path):
    msg = broken(tmp_path, "t10k-images-idx3-ubyte", idx(small_mnist()[2])[:-5])
    assert "dimensions (3, 28, 28)" in msg and "2352 bytes" in msg and "holds 2347" in msg


def test_mnist_header_too_short(tmp_path):
    msg = broken(tmp_path, "train-labels-idx1-ubyte", b"\x00\x00\x08")
    assert "too short for an IDX header" in msg


def test_mnist_counts_disagree(tmp_path):
    msg = broken(tmp_path, "train-labels-idx1-ubyte", idx(np.zeros(6, np.uint8)))
    assert "7 images but 6 labels" in msg


def test_mnist_labels_out_of_range(tmp_path):
    msg = broken(tmp_path, "t10k-labels-idx1-ubyte", idx(np.array([1, 2, 12], np.uint8)))
    assert "labels must be whole numbers 0–9" in msg


def test_mnist_corrupt_gzip(tmp_path):
    good = gzip.compress(idx(small_mnist()[1]), mtime=0)
    msg = broken(tmp_path, "train-labels-idx1-ubyte.gz", good[:12] + b"garbage" * 3, gz=True)
    assert "not a valid gzip file" in msg


def test_mnist_missing_file_and_folder(tmp_path):
    write_idx(tmp_path, small_mnist())
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match=r"no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte\.gz"):
        datasets.mnist(tmp_path)
    with pytest.raises(DataError, match="does not exist.*never downloads"):
        datasets.mnist(tmp_path / "nowhere")


def test_mnist_bad_npz(tmp_path):
    x_tr, y_tr, x_te, y_te = small_mnist()
    np.savez(tmp_path / "a.npz", x_train=x_tr, y_train=y_tr, x_test=x_te)
    with pytest.raises(DataError, match=r"a\.npz has arrays .*missing y_test"):
        datasets.mnist(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x_train=x_tr, y_train=y_tr[:5], x_test=x_te, y_test=y_te)
    with pytest.raises(DataError, match=r"b\.npz \(x_train, y_train\) has 7 images but 5 labels"):
        datasets.mnist(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=y_tr,
             x_test=x_te, y_test=y_te)
    with pytest.raises(DataError, match=r"c\.npz is not a readable \.npz file of plain arrays"):
        datasets.mnist(tmp_path / "c.npz")
    (tmp_path / "d.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"d\.npz is not a readable"):
        datasets.mnist(tmp_path / "d.npz")
