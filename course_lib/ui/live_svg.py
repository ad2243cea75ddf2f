"""Curves drawn by the browser: a live figure as a still picture plus the moving curves in SVG.

Why: a live frame that matplotlib renders and the kernel encodes as a PNG cost 8-13 ms of the
kernel's time, mostly holding the interpreter lock the training thread needs; at the 8% of the
time a lab may spend on drawing, that allowed about one frame a second (measured in Chromium:
1.1-1.6 frames/s). Here matplotlib draws everything that stands still (axes, ticks, labels, the
legend, earlier runs) only when it changes, and each frame sends the moving curves as SVG paths in
the figure's pixel coordinates (a few kB of text, about 1 ms to build). The browser draws them
between the still picture and the legend, so the page shows the same figure as ``savefig``.

Three layers stacked in one grid cell (CSS grid puts children of one cell on top of each other):
  1. ``still``: PNG of the figure without the moving curves,
  2. ``curves``: an ``<svg>`` with the same pixel size (a viewBox) holding the moving curves,
  3. ``over``: PNG, transparent except for opaque overlays (the legend) copied from the still.
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex, to_rgba
from matplotlib.lines import Line2D

__all__ = ["BrowserCurves", "drawn_in_browser"]

_SCALE = 10                     # SVG units per pixel: integer coordinates at 0.1 px precision
_NO_LINE = ("None", "none", "", " ")


def drawn_in_browser(artist) -> bool:
    """True for the artists the browser draws: solid lines (with no marker or round ones) and
    filled polygons. Everything else that moves (text, other markers) stays in the still picture,
    which is redrawn when it changes."""
    if isinstance(artist, Line2D):
        return artist.get_linestyle() not in _NO_LINE and artist.get_marker() in (*_NO_LINE, None, "o")
    return isinstance(artist, PolyCollection)


def _ints(points: np.ndarray) -> str:
    """'x y x y ...' of (N, 2) pixel coordinates, in SVG units (see _SCALE)."""
    return " ".join(map(str, np.rint(points * _SCALE).astype(np.int64).ravel().tolist()))


class _PathText:
    """The 'x y ' text of one path's points, kept from frame to frame.

    Why: formatting numbers as text was a quarter of a frame's cost, and almost all of it was the
    same text again: a growing curve changes only at its end, and the band around it (a polygon
    that runs along the top and back along the bottom) only in its middle. So the points equal to
    last frame's at the start and at the end keep their text, and only the others are formatted.
    The result is the same text as formatting every point (the points are compared, not assumed).
    """

    def __init__(self):
        self.ints = np.empty((0, 2), dtype=np.int64)   # (M, 2) last frame's points, in SVG units
        self.lens = np.zeros(0, dtype=np.int64)        # (M,) characters of each point's 'x y '
        self.text = ""

    def __call__(self, pts: np.ndarray) -> str:
        ints = np.rint(pts * _SCALE).astype(np.int64)  # (N, 2)
        old, n, m = self.ints, len(ints), len(self.ints)
        # 1. How many points are the same as last frame's, from the start and from the end.
        k = min(n, m)
        diff = np.flatnonzero((ints[:k] != old[:k]).any(axis=1))
        head = int(diff[0]) if len(diff) else k
        k = min(n, m) - head
        diff = np.flatnonzero((ints[n - k:] != old[m - k:]).any(axis=1)[::-1]) if k else diff[:0]
        tail = int(diff[0]) if len(diff) else k
        # 2. Text for the points in between only.
        mid = [f"{x} {y} " for x, y in ints[head:n - tail].tolist()]
        cut_head, cut_tail = int(self.lens[:head].sum()), int(self.lens[m - tail:].sum())
        self.text = self.text[:cut_head] + "".join(mid) + (self.text[len(self.text) - cut_tail:] if tail else "")
        self.lens = np.concatenate([self.lens[:head], np.fromiter(map(len, mid), np.int64, len(mid)),
                                    self.lens[m - tail:]])
        self.ints = ints
        return self.text


def _to_svg_xy(artist, xy: np.ndarray, height: float) -> np.ndarray:
    pts = artist.get_transform().transform(np.asarray(xy, dtype=float))   # (N, 2), origin bottom-left
    pts = pts[np.isfinite(pts).all(axis=1)]
    pts[:, 1] = height - pts[:, 1]                                          # SVG's origin: top-left
    return pts


def _paint(color, alpha) -> tuple[str, float]:
    r, g, b, a = to_rgba(color, alpha)
    return to_hex((r, g, b)), round(a, 3)


def _line_svg(line: Line2D, height: float, px_per_pt: float, text: _PathText) -> str:
    pts = _to_svg_xy(line, line.get_xydata(), height)
    if not len(pts):
        return ""
    color, alpha = _paint(line.get_color(), line.get_alpha())
    width = line.get_linewidth() * px_per_pt * _SCALE
    out = [f'<path d="M{_ints(pts[:1])}L{text(pts)}" fill="none" stroke="{color}" stroke-opacity="{alpha}" '
           f'stroke-width="{width:.0f}" stroke-linejoin="round" stroke-linecap="round"/>']
    if line.get_marker() == "o":
        r = (line.get_markersize() / 2 + line.get_markeredgewidth() / 2) * px_per_pt * _SCALE
        mcolor, malpha = _paint(line.get_markerfacecolor(), line.get_alpha())
        dots = "".join(f'<circle cx="{x}" cy="{y}" r="{r:.0f}"/>'
                       for x, y in np.rint(pts * _SCALE).astype(np.int64).tolist())
        out.append(f'<g fill="{mcolor}" fill-opacity="{malpha}">{dots}</g>')
    return "".join(out)


def _poly_svg(coll: PolyCollection, height: float, texts) -> str:
    colors = coll.get_facecolor()
    out = []
    for i, path in enumerate(coll.get_paths()):
        pts = _to_svg_xy(coll, path.vertices, height)
        if len(pts) < 3:
            continue
        color, alpha = _paint(colors[i % len(colors)], coll.get_alpha())
        out.append(f'<path d="M{_ints(pts[:1])}L{texts(i)(pts)}Z" fill="{color}" fill-opacity="{alpha}" stroke="none"/>')
    return "".join(out)


class BrowserCurves:
    """The widget of a live figure whose moving curves the browser draws (see the module's
    docstring). ``LiveFigure(curves_in_browser=True)`` makes one and feeds it.

    Args:
        fig (Figure): the figure (rendered with Agg).
        uid (str): unique on the page (names the SVG clip paths).
    """

    def __init__(self, fig, uid: str):
        self.fig, self.uid = fig, uid
        w, h = fig.canvas.get_width_height()
        cell = W.Layout(grid_area="1 / 1", width="100%", height="auto", margin="0px", padding="0px")
        self.still = W.Image(format="png", layout=cell)
        self.curves = W.HTML(layout=W.Layout(grid_area="1 / 1", width="100%", margin="0px", padding="0px",
                                             overflow="hidden", align_self="stretch"))
        self.over = W.Image(format="png", layout=W.Layout(grid_area="1 / 1", width="100%", height="auto",
                                                          margin="0px", padding="0px"))
        self.curves.add_class("course-live-curves")
        self.widget = W.GridBox([self.still, self.curves, self.over],
                                layout=W.Layout(width=f"{w}px", max_width="100%", grid_template_columns="100%",
                                                grid_template_rows="auto"))
        self.widget.add_class("course-live")
        self.frames_sent = 0
        self._texts: dict[tuple[int, int], _PathText] = {}   # (artist id, path index) -> its text

    def _text(self, used: dict, artist_id: int, i: int) -> _PathText:
        key = (artist_id, i)
        used[key] = self._texts.get(key) or _PathText()
        return used[key]

    def send_still(self, png: bytes, over_png: bytes | None) -> None:
        """A new still picture, and a new overlay picture unless ``over_png`` is None."""
        self.still.value = png
        if over_png is not None:
            self.over.value = over_png

    def svg(self, artists) -> str:
        """The ``<svg>`` of ``artists`` (those :func:`drawn_in_browser`), each clipped to its Axes."""
        fig = self.fig
        w, h = fig.canvas.get_width_height()
        px_per_pt = fig.dpi / 72
        clips, body, used = {}, [], {}
        for a in artists:
            if not a.get_visible():
                continue
            if isinstance(a, Line2D):
                part = _line_svg(a, h, px_per_pt, self._text(used, id(a), 0))
            else:
                part = _poly_svg(a, h, lambda i, a=a: self._text(used, id(a), i))
            if not part:
                continue
            ax = a.axes
            if ax is not None and a.get_clip_on():
                if id(ax) not in clips:
                    x0, y0, x1, y1 = ax.bbox.extents
                    clips[id(ax)] = (f"{self.uid}-{len(clips)}",
                                     f'<rect x="{x0 * _SCALE:.0f}" y="{(h - y1) * _SCALE:.0f}" '
                                     f'width="{(x1 - x0) * _SCALE:.0f}" height="{(y1 - y0) * _SCALE:.0f}"/>')
                part = f'<g clip-path="url(#{clips[id(ax)][0]})">{part}</g>'
            body.append(part)
        self._texts = used            # forget the paths of artists no longer drawn (a ghost removed)
        defs = "".join(f'<clipPath id="{cid}">{rect}</clipPath>' for cid, rect in clips.values())
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w * _SCALE} {h * _SCALE}" width="100%" '
                f'preserveAspectRatio="none" style="display:block"><defs>{defs}</defs>{"".join(body)}</svg>')

    def send_curves(self, artists) -> None:
        self.curves.value = self.svg(artists)
        self.frames_sent += 1
