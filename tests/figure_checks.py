"""Text in a matplotlib figure: no two text artists overlap and none leaves the figure.

Used by tests/test_notebooks.py on every figure a notebook leaves open (headless, Agg), and by
unit tests on single figures. Boxes come from matplotlib (``Text.get_window_extent``) after a draw."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.text import Text

SLACK = 1.0        # px a box may leave the figure (anti-aliasing)
MIN_OVERLAP = 4.0  # px^2 of shared area that count as an overlap


def _texts(fig) -> list[Text]:
    out: list[Text] = list(fig.texts)
    for sup in (getattr(fig, "_suptitle", None), getattr(fig, "_supxlabel", None), getattr(fig, "_supylabel", None)):
        if sup is not None:
            out.append(sup)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        out += [ax.title, ax._left_title, ax._right_title]
        for axis in (ax.xaxis, ax.yaxis):
            # ax.axis("off") clears `axison`, and Axes.draw then leaves out both axes (labels,
            # ticks): boxes of text that is never drawn are not problems (titles and texts still are).
            if not (ax.axison and axis.get_visible()):
                continue
            out += [axis.label, axis.offsetText]
            for tick in axis._update_ticks():      # the ticks drawn (inside the view limits)
                out += [tick.label1, tick.label2]
        out += list(ax.texts)
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            out += list(leg.get_texts()) + ([leg.get_title()] if leg.get_title().get_text() else [])
    for leg in fig.legends:
        out += list(leg.get_texts())
    seen: set[int] = set()  # a suptitle is in fig.texts too: one artist counted twice "overlaps itself"
    out = [t for t in out if not (id(t) in seen or seen.add(id(t)))]
    return [t for t in out if t.get_visible() and t.get_text().strip() and (t.get_alpha() is None or t.get_alpha() > 0)]


def _tick_axes(fig) -> dict:
    """id of each tick label -> id of its Axis."""
    out = {}
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                out[id(tick.label1)] = out[id(tick.label2)] = id(axis)
    return out


def _same_axis_ticks(a: Text, b: Text, ticks: dict) -> bool:
    """Two tick labels of one axis. Their spacing is matplotlib's own layout (the tick locator
    picks how many ticks fit the axis's length, the formatter their text), not a choice of the
    course's drawing code; two adjacent labels of a log axis ("10^-1", "10^0") touch by a pixel
    or two of their boxes' padding without their glyphs meeting. Every other pair is compared."""
    axis = ticks.get(id(a))
    return axis is not None and axis == ticks.get(id(b))


def _name(t: Text) -> str:
    return repr(t.get_text()[:40])


def text_problems(fig) -> list[str]:
    """Overlapping text pairs and text outside the figure, as readable lines."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    W, H = fig.bbox.width, fig.bbox.height
    boxes = []
    for t in _texts(fig):
        try:
            bb = t.get_window_extent(renderer)
        except (RuntimeError, ValueError):
            continue
        if not all(map(math.isfinite, (bb.x0, bb.y0, bb.x1, bb.y1))):
            continue
        if t.axes is not None and t in t.axes.texts and not t.get_clip_on() is False:
            # an annotation clipped to its axes that lies outside them is not drawn
            if not bb.overlaps(t.axes.bbox):
                continue
        boxes.append((t, bb))
    problems = []
    ticks = _tick_axes(fig)
    for t, bb in boxes:
        if bb.x0 < -SLACK or bb.y0 < -SLACK or bb.x1 > W + SLACK or bb.y1 > H + SLACK:
            problems.append(f"{_name(t)} leaves the figure ({bb.x0:.0f},{bb.y0:.0f})-({bb.x1:.0f},{bb.y1:.0f}) "
                            f"in {W:.0f}x{H:.0f}")
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1:]:
            if _same_axis_ticks(a, b, ticks):
                continue
            w = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            h = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            if w > 0 and h > 0 and w * h > MIN_OVERLAP:
                problems.append(f"{_name(a)} overlaps {_name(b)}")
    return problems


def report(more=()) -> dict:
    """Problems of every open pyplot figure, and of the figures in ``more`` (those made without
    pyplot, such as a training lab's, whose curves the browser draws), by name and title."""
    out = {}
    figures = [(f"figure {num}", plt.figure(num)) for num in plt.get_fignums()]
    figures += [(f"live figure {i}", fig) for i, fig in enumerate(more)
                if all(fig is not f for _, f in figures)]
    for name, fig in figures:
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        problems = text_problems(fig)
        if problems:
            out[f"{name} {titles[:2]}"] = problems
    return out
