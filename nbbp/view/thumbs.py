"""Tensors as pictures: a small heat-map thumbnail of a value or a gradient.

A 2-D or larger tensor is drawn as a grid of coloured cells, one per element: diverging
colours centred on 0 for gradients and for values of both signs (blue below 0, the
neutral grey-white at 0, red above, the ends at ± the largest magnitude shown), a
greyscale from white (0) to black (the largest) for values that are never negative
(images, activations after relu). A 4-D batch in NHWC shows its first image (its
channels as tiles); a 4-D ``param`` is a conv filter bank in HWIO and shows every filter
as a tile (input channels down, output channels across). Large axes are sampled.

The PNG is written here byte by byte — a fixed 100-colour palette, one byte per cell,
deflate's *stored* blocks (no compression, so the bytes do not depend on the zlib
build) — so the same tensor always gives the same bytes and nbval can compare stored
notebook outputs exactly.

The picture is placed after layout: the DOT cell that will hold it is drawn with a
sentinel background colour (:func:`sentinel`), which both ``dot`` and graphviz-pure
print as a ``<polygon>`` with that fill; :func:`svg_image` is the ``<image>`` that
replaces it, and the live picture refills the same slot on every frame.

>>> t = thumbnail(np.eye(3) - 0.5, signed=True)     # 0.5 → the red end, -0.5 → the blue
>>> t.index.tolist()[0], t.png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
([64, 0, 0], True)
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["DIVERGING", "GAP", "GREY", "NAN", "PALETTE", "SENTINEL", "Thumb", "box",
           "enlarge", "indices", "place", "png", "sentinel", "svg_image", "thumbnail"]

MAX_CELLS = 48          # a plain 2-D picture shows at most this many rows and columns
MAX_TILE = 16           # a tile (an image channel, a filter) at most this many per side
MAX_TILES = 8           # at most this many tiles down and across
MAX_PT, MIN_PT, CELL_PT = 56.0, 12.0, 6.0    # the picture's size in the node, in points

# -- the palette ----------------------------------------------------------------------
#: diverging stops (ColorBrewer RdBu): −max, −max/2, 0, +max/2, +max
DIVERGING_STOPS = ("#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b")
LEVELS = 32             # palette steps on each side of 0 (diverging) or from 0 (grey)
DIVERGING = 0           # indices DIVERGING … DIVERGING + 2·LEVELS; 0 at DIVERGING + LEVELS
GREY = DIVERGING + 2 * LEVELS + 1       # indices GREY … GREY + LEVELS: white (0) → black
GAP = GREY + LEVELS + 1                 # between tiles
NAN = GAP + 1                           # nan or inf


def _hex(c: str) -> np.ndarray:
    return np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _palette() -> np.ndarray:
    t = np.linspace(-1.0, 1.0, 2 * LEVELS + 1)
    stops = np.array([_hex(c) for c in DIVERGING_STOPS])
    where = np.linspace(-1.0, 1.0, len(stops))
    div = np.stack([np.interp(t, where, stops[:, k]) for k in range(3)], axis=1)
    grey = np.repeat(np.linspace(255.0, 0.0, LEVELS + 1)[:, None], 3, axis=1)
    rows = np.concatenate([div, grey, [_hex("#d9d9d9")], [_hex("#ff00ff")]])
    return np.round(rows).astype(np.uint8)


PALETTE = _palette()


def indices(a: np.ndarray, signed: bool) -> np.ndarray:
    """Palette indices (uint8) of ``a``'s elements: ``signed`` uses the diverging
    scale (0 → the neutral colour, ± max|a| → the ends), else the greyscale
    (0 → white, max → black). Non-finite elements get :data:`NAN`."""
    a = np.asarray(a, dtype=np.float64)
    ok = np.isfinite(a)
    top = float(np.abs(a[ok]).max()) if ok.any() else 0.0
    t = np.zeros(a.shape) if top == 0.0 else np.where(ok, a, 0.0) / top
    if signed:
        out = DIVERGING + LEVELS + np.rint(np.clip(t, -1.0, 1.0) * LEVELS)
    else:
        out = GREY + np.rint(np.clip(t, 0.0, 1.0) * LEVELS)
    return np.where(ok, out, NAN).astype(np.uint8)


# -- PNG ------------------------------------------------------------------------------
def _chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def _stored(raw: bytes) -> bytes:
    """A zlib stream of deflate's stored blocks: the same bytes on every zlib."""
    out = [b"\x78\x01"]
    step = 65535
    for i in range(0, max(len(raw), 1), step):
        block = raw[i:i + step]
        last = i + step >= len(raw)
        out.append(struct.pack("<BHH", int(last), len(block), 0xFFFF ^ len(block)) + block)
    out.append(struct.pack(">I", zlib.adler32(raw) & 0xFFFFFFFF))
    return b"".join(out)


_PLTE = _chunk(b"PLTE", PALETTE.tobytes())


def png(index: np.ndarray) -> bytes:
    """Palette indices (h × w, uint8) as PNG bytes: colour type 3 with :data:`PALETTE`."""
    h, w = index.shape
    raw = b"".join(b"\x00" + index[i].tobytes() for i in range(h))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + _PLTE + _chunk(b"IDAT", _stored(raw)) + _chunk(b"IEND", b""))


# -- what is shown ----------------------------------------------------------------------
def _pick(n: int, most: int) -> np.ndarray:
    return np.arange(n) if n <= most else np.unique(np.linspace(0, n - 1, most).round()
                                                    .astype(np.int64))


def _tiles(a: np.ndarray, rows: int, cols: int, tile) -> tuple[np.ndarray, np.ndarray]:
    """Tiles ``tile(r, c)`` (2-D) in a grid with one-cell gaps; (values, gap mask)."""
    first = tile(0, 0)
    th, tw = first.shape
    H, W = rows * (th + 1) - 1, cols * (tw + 1) - 1
    canvas, gap = np.zeros((H, W)), np.ones((H, W), dtype=bool)
    for r in range(rows):
        for c in range(cols):
            canvas[r * (th + 1):r * (th + 1) + th, c * (tw + 1):c * (tw + 1) + tw] = tile(r, c)
            gap[r * (th + 1):r * (th + 1) + th, c * (tw + 1):c * (tw + 1) + tw] = False
    return canvas, gap


def _sample2(m: np.ndarray, most: int) -> np.ndarray:
    return m[np.ix_(_pick(m.shape[0], most), _pick(m.shape[1], most))]


def _layout(a: np.ndarray, filters: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """The 2-D canvas shown for ``a``, its gap mask and a note of what it shows."""
    note = ""
    if a.ndim == 4 and filters and a.shape[2] > 1:          # HWIO: a filter bank
        kh, kw, ci, co = a.shape
        ri, rc = _pick(ci, MAX_TILES), _pick(co, MAX_TILES)
        canvas, gap = _tiles(a, len(ri), len(rc),
                             lambda r, c: _sample2(a[:, :, ri[r], rc[c]], MAX_TILE))
        return canvas, gap, (f"picture: the {kh}×{kw} filters, output channels across "
                             f"({_of(len(rc), co)}), input channels down ({_of(len(ri), ci)})")
    if a.ndim == 4 and filters:                              # one input channel: a grid
        note = f"picture: the {a.shape[3]} filters ({a.shape[0]}×{a.shape[1]}) as tiles"
        a = np.moveaxis(a[:, :, 0, :], -1, 0)
    elif a.ndim == 4:                                          # NHWC: the first image
        note = f"picture: the first image of {a.shape[0]}"
        a = a[0]
        if a.shape[-1] > 1:
            note += f", its {a.shape[-1]} channels as tiles"
        a = np.moveaxis(a, -1, 0)                            # channels first, as tiles
    elif a.ndim > 4:
        note = f"picture: reshaped to {int(np.prod(a.shape[:-1]))}×{a.shape[-1]}"
        a = a.reshape(-1, a.shape[-1])
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3:
        idx = _pick(a.shape[0], MAX_TILES * MAX_TILES)
        cols = min(len(idx), MAX_TILES if len(idx) > 16 else max(1, int(np.ceil(
            np.sqrt(2 * len(idx))))))
        rows = -(-len(idx) // cols)
        empty = np.zeros(_sample2(a[0], MAX_TILE).shape)

        def tile(r: int, c: int) -> np.ndarray:
            k = r * cols + c
            return _sample2(a[idx[k]], MAX_TILE) if k < len(idx) else empty
        canvas, gap = _tiles(a, rows, cols, tile)
        gap |= _unused(rows, cols, len(idx), empty.shape)   # the last row's empty places
        note = note or f"picture: {a.shape[0]} slices of {a.shape[1]}×{a.shape[2]} as tiles"
        if len(idx) < a.shape[0]:
            note += f" ({_of(len(idx), a.shape[0])})"
        return np.where(gap, 0.0, canvas), gap, note
    shown = _sample2(a, MAX_CELLS)
    if shown.shape != a.shape:
        note = (note + "; " if note else "picture: ") + (
            f"rows {_of(shown.shape[0], a.shape[0])}, columns {_of(shown.shape[1], a.shape[1])}")
    return shown, np.zeros(shown.shape, dtype=bool), note


def _of(shown: int, n: int) -> str:
    return f"all {n}" if shown == n else f"{shown} of {n}, evenly spaced"


def _unused(rows: int, cols: int, count: int, shape: tuple[int, int]) -> np.ndarray:
    th, tw = shape
    gap = np.zeros((rows * (th + 1) - 1, cols * (tw + 1) - 1), dtype=bool)
    for k in range(count, rows * cols):
        r, c = divmod(k, cols)
        gap[r * (th + 1):r * (th + 1) + th, c * (tw + 1):c * (tw + 1) + tw] = True
    return gap


@dataclass(frozen=True)
class Thumb:
    """One tensor's picture: palette indices, PNG bytes, its size in the node (points)."""

    index: np.ndarray
    png: bytes
    width: float
    height: float
    note: str           # what the picture shows when it is not every element

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def size_of(shape: tuple[int, int]) -> tuple[float, float]:
    """The picture's width and height in points for a canvas of ``shape`` cells."""
    h, w = shape
    s = min(CELL_PT, MAX_PT / max(h, w))
    return round(max(MIN_PT, w * s), 1), round(max(MIN_PT, h * s), 1)


def thumbnail(a: np.ndarray, signed: bool | None = None, filters: bool = False) -> Thumb:
    """The picture of ``a`` (2-D or more). ``signed``: the diverging scale (True, for
    gradients), the greyscale (False), or None: diverging when ``a`` has a negative
    element. ``filters``: a 4-D ``a`` is a conv filter bank (HWIO), else a batch (NHWC)."""
    a = np.asarray(a, dtype=np.float64)
    canvas, gap, note = _layout(a, filters)
    if signed is None:
        signed = bool((canvas[~gap] < 0).any())
    idx = indices(np.where(gap, 0.0, canvas), signed)
    idx[gap] = GAP
    w, h = size_of(idx.shape)
    return Thumb(idx, png(idx), w, h, note)


# -- placing it in the SVG ---------------------------------------------------------------
def sentinel(i: int) -> str:
    """The background colour marking image slot ``i`` in the DOT text."""
    return f"#fe{i:04x}"


SENTINEL = re.compile(r'<polygon fill="#fe([0-9a-f]{4})" stroke="[^"]*" points="([^"]*)"/>')


def box(points: str) -> tuple[float, float, float, float]:
    """(x, y, width, height) of a polygon's points."""
    xy = np.array([[float(v) for v in p.split(",")] for p in points.split()])
    (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def svg_image(uri: str, at: tuple[float, float, float, float], faded: bool = False) -> str:
    """The ``<image>`` (and a hairline frame) filling the box ``at``."""
    x, y, w, h = at
    fade = ' opacity="0.25"' if faded else ""
    return (f'<image x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" '
            f'preserveAspectRatio="none" style="image-rendering:pixelated"{fade} '
            f'xlink:href="{uri}"/>'
            f'<rect x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" fill="none" '
            'stroke="#bdbdbd" stroke-width="0.5"/>')


def place(svg: str, uris: list[str]) -> str:
    """``svg`` with every sentinel cell replaced by its picture (``uris[i]`` for slot
    ``i``); a slot without a picture is left empty."""
    def one(m: re.Match) -> str:
        i = int(m.group(1), 16)
        return svg_image(uris[i], box(m.group(2))) if i < len(uris) else ""
    return SENTINEL.sub(one, svg)


def enlarge(index: np.ndarray, width_pt: float, px_per_pt: float = 2.0) -> np.ndarray:
    """Each cell repeated to about ``px_per_pt`` pixels per point of the picture's
    width: renderers that scale a file image smooth it, so give them sharp pixels."""
    k = max(1, int(np.ceil(px_per_pt * width_pt / index.shape[1])))
    return np.repeat(np.repeat(index, k, axis=0), k, axis=1)
