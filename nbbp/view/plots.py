"""Matplotlib pictures of training: the loss curve and a 2-D decision boundary.

matplotlib is imported here only, when a plot is asked for. Each function returns
the figure (closed with pyplot, so a notebook shows it once).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NbbpError
from ..train.predict import classifier_data, predict
from ..train.state import history


def pyplot():
    """matplotlib.pyplot, imported on first use, or an error that says how to install it."""
    try:
        import matplotlib
        matplotlib.use(matplotlib.get_backend())
        import matplotlib.pyplot as plt
    except ImportError:
        raise NbbpError("plots need matplotlib: pip install 'nbbp[notebook]' "
                        "(or pip install matplotlib)") from None
    return plt


def plot_loss(model, ax: Any = None, log: bool | None = None):
    """The loss at every training step so far (``model.history``)."""
    loss = np.asarray(history(model).loss)
    if loss.size == 0:
        raise NbbpError(f"model {model.name!r} has no training history yet: call "
                        f"{model.name}.fit(...) first")
    plt = pyplot()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(1, loss.size + 1), loss, lw=1.2)
    if log if log is not None else (loss.min() > 0 and loss.max() / loss.min() > 100):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss ({model.output.name})")
    ax.set_title(f"{model.name}: {loss.size} steps, loss {loss[-1]:.4g}")
    ax.grid(alpha=0.3)
    if fig is not None:
        fig.tight_layout()
        plt.close(fig)
    return fig or ax.figure


def plot_boundary(model, X: Any = None, y: Any = None, node: Any = None,
                  threshold: float | None = None, resolution: int = 150, ax: Any = None):
    """Decision regions of a classifier with 2-D inputs, with the data on top.

    ``X`` and ``y`` default to the model's input data and the input named like a
    label (``y``); the prediction node is ``node`` or one named like a prediction.
    The boundary is where the prediction crosses ``threshold`` (0 for scores and
    logits; 0.5 when the prediction lies in [0, 1]).
    """
    target, inputs, labels = classifier_data(model, node)
    if X is None:
        if len(inputs) != 1:
            raise NbbpError("plot_boundary: pass X (the model has several inputs)")
        X = model.value_of(inputs[0])
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise NbbpError(f"plot_boundary draws models with 2-D inputs; X has shape {X.shape}")
    if y is None:
        y = model.value_of(labels[0]) if labels else None
    plt = pyplot()
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0)) + 1e-9
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution),
                         np.linspace(lo[1], hi[1], resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    z = np.asarray(predict(model, grid, target))
    z = z[:, 0] if z.ndim == 2 and z.shape[1] == 1 else (
        z.argmax(axis=1) if z.ndim == 2 else z)
    if threshold is None:
        threshold = 0.5 if z.min() >= 0 and z.max() <= 1 else 0.0
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.contourf(gx, gy, (z > threshold).reshape(gx.shape).astype(float), levels=[-0.5, 0.5, 1.5],
                colors=["#f4c7c3", "#c6dbef"], alpha=0.8)
    ax.contour(gx, gy, z.reshape(gx.shape), levels=[threshold], colors="k", linewidths=1)
    if y is not None:
        yy = np.asarray(y, dtype=float).reshape(len(X), -1)
        cls = yy.argmax(axis=1) if yy.shape[1] > 1 else (yy[:, 0] > (yy.min() + yy.max()) / 2)
        ax.scatter(X[:, 0], X[:, 1], c=np.where(cls, "#2171b5", "#cb181d"), s=12,
                   edgecolors="white", linewidths=0.4)
    ax.set_title(f"{model.name}: decision boundary of {target.name}")
    ax.set_aspect("equal", adjustable="box")
    if fig is not None:
        fig.tight_layout()
        plt.close(fig)
    return fig or ax.figure
