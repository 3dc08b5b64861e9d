"""Small inline-SVG charts for the training panel: the loss curve and a decision boundary.

Plain SVG text (the boundary's background is a small PNG written here with ``zlib``):
no matplotlib figure per refresh, deterministic output, a few milliseconds each, and
the numbers stay readable in the page like the graph's.

>>> svg = loss_svg([1.0, 0.5, 0.25])
>>> svg.startswith("<svg") and "step 3" in svg
True
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np

from ..errors import NbbpError
from ..train.predict import classifier_data
from .numbers import fmt

BLUE, ORANGE = "#0877bd", "#f59322"     # the two classes, as in TensorFlow Playground
FONT = 'font-family="Helvetica,sans-serif" font-size="10"'


def loss_svg(losses: Sequence[float], width: int = 340, height: int = 150,
             label: str = "loss") -> str:
    """The loss at every step, log-scaled when it spans more than a factor of 100."""
    left, right, top, bottom = 48, 10, 18, 22
    w, h = width - left - right, height - top - bottom
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" class="nbbp-loss-chart">'
            f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafafa" '
            'stroke="#dddddd"/>')
    y = np.asarray(losses, dtype=float)
    steps = np.arange(1, y.size + 1)
    ok = np.isfinite(y)
    y, steps = y[ok], steps[ok]
    if y.size == 0:
        return (head + f'<text x="{left + w / 2}" y="{top + h / 2}" text-anchor="middle" '
                f'fill="#888888" {FONT}>no steps yet</text></svg>')
    if y.size > 2 * w:                       # at most two points per pixel column
        pick = np.unique(np.linspace(0, y.size - 1, 2 * w).round().astype(int))
        y, steps = y[pick], steps[pick]
    log = bool(y.min() > 0 and y.max() / y.min() > 100)
    t = np.log10(y) if log else y
    lo, hi = float(t.min()), float(t.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    n = int(steps[-1])
    xs = left + (steps - 1) / max(n - 1, 1) * w
    ys = top + (hi - t) / (hi - lo) * h
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))
    val = (lambda v: fmt(10 ** v, 3)) if log else (lambda v: fmt(v, 3))
    ticks = "".join(
        f'<text x="{left - 4}" y="{yy + 3:.1f}" text-anchor="end" fill="#666666" {FONT}>'
        f"{val(v)}</text>" for v, yy in ((hi, top), (lo, top + h)))
    last = float(np.asarray(losses, dtype=float)[-1])
    return (head + f'<polyline fill="none" stroke="#08519c" stroke-width="1.4" '
            f'points="{points}"/>' + ticks
            + f'<text x="{left}" y="{height - 6}" fill="#666666" {FONT}>1</text>'
            f'<text x="{left + w}" y="{height - 6}" text-anchor="end" fill="#666666" {FONT}>'
            f"step {n}</text>"
            f'<text x="{left}" y="12" fill="#333333" {FONT}>{escape(label)} {fmt(last, 4)}'
            + (" (log scale)" if log else "") + "</text></svg>")


def _png(rgb: np.ndarray) -> bytes:
    """An RGB image (h × w × 3, uint8) as PNG bytes."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def boundary_setup(model: Any) -> tuple[Any, np.ndarray, np.ndarray | None] | None:
    """(prediction node, 2-D data X, labels or None) if the model is a classifier on
    2-D inputs that :meth:`~nbbp.Model.predict` can evaluate, else None."""
    try:
        target, inputs, labels = classifier_data(model)
    except NbbpError:
        return None
    if len(inputs) != 1 or len(inputs[0].shape) != 2 or inputs[0].shape[1] != 2:
        return None
    X = np.asarray(model.value_of(inputs[0]), dtype=float)
    y = np.asarray(model.value_of(labels[0]), dtype=float) if labels else None
    return target, X, y


def boundary_svg(model: Any, setup: tuple, size: int = 220, resolution: int = 48,
                 max_points: int = 400) -> str:
    """The classifier's regions over its data: blue where the prediction is above the
    threshold (0 for scores, 0.5 for probabilities), orange below, deeper where surer."""
    target, X, y = setup
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0)) + 1e-9
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx = np.linspace(lo[0], hi[0], resolution)
    gy = np.linspace(hi[1], lo[1], resolution)            # image rows run top to bottom
    grid = np.column_stack([np.tile(gx, resolution), np.repeat(gy, resolution)])
    z = np.asarray(model.predict(grid, target), dtype=float)
    if z.ndim == 2 and z.shape[1] > 1:                    # several classes: the winner
        c = z.argmax(axis=1)
        t = np.where(c == 0, -1.0, 1.0) * 0.8
    else:
        z = z.reshape(-1)
        prob = z.min() >= 0 and z.max() <= 1
        t = np.clip(2 * z - 1, -1, 1) if prob else np.tanh(z)
    a = (0.15 + 0.5 * np.abs(t))[:, None]
    white = np.full(3, 255.0)
    col = np.where(t[:, None] >= 0, _rgb(BLUE), _rgb(ORANGE))
    rgb = (white * (1 - a) + col * a).round().clip(0, 255).astype(np.uint8)
    png = base64.b64encode(_png(rgb.reshape(resolution, resolution, 3))).decode("ascii")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
           f'viewBox="0 0 {size} {size}" class="nbbp-boundary-chart">',
           f'<image href="data:image/png;base64,{png}" x="0" y="0" width="{size}" '
           f'height="{size}" preserveAspectRatio="none"/>']
    if y is not None:
        yy = y.reshape(len(X), -1)
        cls = yy.argmax(axis=1) > 0 if yy.shape[1] > 1 else yy[:, 0] > (yy.min() + yy.max()) / 2
        step = max(1, len(X) // max_points)
        px = (X[::step, 0] - lo[0]) / (hi[0] - lo[0]) * size
        py = (hi[1] - X[::step, 1]) / (hi[1] - lo[1]) * size
        for a_, b_, c_ in zip(px, py, cls[::step]):
            out.append(f'<circle cx="{a_:.1f}" cy="{b_:.1f}" r="2.6" '
                       f'fill="{BLUE if c_ else ORANGE}" stroke="white" stroke-width="0.7"/>')
    out.append(f'<rect x="0.5" y="0.5" width="{size - 1}" height="{size - 1}" fill="none" '
               'stroke="#cccccc"/></svg>')
    return "".join(out)
