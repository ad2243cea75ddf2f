"""Figures and the live panel of the LR range test (notebook 05): loss against learning rate,
with the suggestion rules marked.

References:
    Smith, Cyclical Learning Rates for Training Neural Networks, 2017, arXiv 1506.01186, Sec. 3.3
    (the range test). Howard & Gugger, Fastai: A Layered API for Deep Learning, 2020, arXiv
    2002.04688 (the exponential sweep with EMA and 4x stop, and the suggestion rules drawn here).
"""

from __future__ import annotations

from typing import Callable

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.axes import Axes

from .._validation import check_type
from ..lr_finder import lr_range_test
from .live import LiveFigure
from .panels import panel
from .plotting import COLORS, finite_xy

__all__ = ["RULE_STYLES", "LRFinderPlot", "plot_lr_finder", "LiveLRFinder"]


# One marker and colour per suggestion rule, the same in every plot of the course.
RULE_STYLES = {"steep": ("v", "#d62728"), "valley": ("o", "#2ca02c"), "minimum": ("s", "#9467bd"),
               "slide": ("D", "#8c564b")}


class LRFinderPlot:
    """The range-test plot with its artists kept, so a live view can update them in place
    (``update(result)`` moves the curves and the suggestion markers; no new figure per frame).

    Args:
        ax (Axes or None): where to draw; None makes a new figure.
        rules (sequence of str): which suggestion markers to show. Default all four.
        show_raw (bool): draw the unsmoothed losses, faint, behind the smoothed curve. Default True.
        label (str or None): prefix for the legend entries (to compare two settings on one Axes).
        color (str or None): colour of the smoothed curve. Default the course's train blue.
    """

    def __init__(self, ax: Axes | None = None, *, rules=("steep", "valley", "minimum", "slide"),
                 show_raw: bool = True, label: str | None = None, color: str | None = None):
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
        check_type("ax", ax, Axes, where="LRFinderPlot", expected="matplotlib Axes or None")
        self.ax, self.rules, self.prefix = ax, tuple(rules), f"{label}: " if label else ""
        color = color or COLORS["train"]
        self.raw = ax.plot([], [], color=color, alpha=0.25, lw=0.8, label=f"{self.prefix}raw loss")[0] \
            if show_raw else None
        self.smoothed = ax.plot([], [], color=color, lw=2, label=f"{self.prefix}smoothed")[0]
        self.markers = {r: ax.plot([], [], ls="none", marker=RULE_STYLES[r][0], ms=9, mec="white",
                                   color=RULE_STYLES[r][1], label=r)[0] for r in self.rules}
        self.stop = ax.plot([], [], ls="none", marker="X", ms=12, color=COLORS["diverged"], label="stopped")[0]
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("loss")

    def update(self, result) -> None:
        """Redraw from a (possibly partial) :class:`~course_lib.lr_finder.LRFinderResult`."""
        lrs = np.asarray(result.lrs, dtype=float)
        mon = np.asarray(result.monitored_losses, dtype=float)
        sm = np.asarray(result.smoothed_losses, dtype=float)
        if self.raw is not None:
            self.raw.set_data(*finite_xy(lrs, mon))
        self.smoothed.set_data(*finite_xy(lrs, sm))
        x_ok, y_ok = finite_xy(lrs, sm)
        for rule, line in self.markers.items():
            lr = result.suggestions.get(rule)
            if lr is None or len(x_ok) < 2:
                line.set_data([], [])
                line.set_label(f"{self.prefix}{rule}: -")
            else:
                y = float(np.interp(np.log(lr), np.log(x_ok), y_ok))
                line.set_data([lr], [y])
                line.set_label(f"{self.prefix}{rule}: {lr:.2g}")
        if result.stop_reason == "diverged" and len(x_ok):
            self.stop.set_data([lrs[-1]], [y_ok[-1]])
            self.stop.set_label(f"{self.prefix}diverged at lr={lrs[-1]:.2g}")
        else:
            self.stop.set_data([], [])
        self._rescale(lrs, y_ok, result)
        handles = [ln for ln in self.ax.get_lines() if ln.get_label() and not ln.get_label().startswith("_")
                   and len(ln.get_xdata())]
        if len(handles) > 6:   # several runs: the legend goes beside the axes, off the curves and markers
            self.ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small",
                           borderaxespad=0.0)
        else:
            self.ax.legend(handles=handles, loc="upper left", fontsize="x-small")
        start, end = result.config.get("start_lr"), result.config.get("end_lr")
        if start and end:
            self.ax.set_xlim(start, end)

    def _rescale(self, lrs, y_ok, result) -> None:
        # A diverged tail would squash the interesting part into a flat line: cap the y-axis at
        # a little above the loss the test started from.
        if not len(y_ok):
            return
        lo = float(y_ok.min())
        hi = float(min(y_ok.max(), max(y_ok[: max(1, len(y_ok) // 3)].max(), 1.5 * y_ok[0])))
        pad = 0.08 * max(hi - lo, 1e-12)
        self.ax.set_ylim(lo - pad, hi + pad)


def plot_lr_finder(result, ax: Axes | None = None, *, rules=("steep", "valley", "minimum", "slide"),
                   show_raw: bool = True, label: str | None = None, color: str | None = None) -> Axes:
    """Draw an LR range test: raw and smoothed loss against the LR (log axis), a marker per
    suggestion rule, and a red cross where it stopped if it diverged.

    Args:
        result (LRFinderResult): from ``course_lib.lr_range_test``.
        ax (Axes or None): where to draw; None makes a new figure.
        rules, show_raw, label, color: see :class:`LRFinderPlot`.

    Returns:
        Axes.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from course_lib.lr_finder import LRFinderResult
        >>> r = LRFinderResult(lrs=[1e-3, 1e-2, 1e-1], raw_losses=[1.0, 0.5, 2.0],
        ...                    smoothed_losses=[1.0, 0.7, 1.2], suggestions={"minimum": 1e-3})
        >>> ax = plot_lr_finder(r)
        >>> [ln.get_label() for ln in ax.get_lines() if len(ln.get_xdata())]
        ['raw loss', 'smoothed', 'minimum: 0.001']
    """
    p = LRFinderPlot(ax, rules=rules, show_raw=show_raw, label=label, color=color)
    p.update(result)
    return p.ax


class LiveLRFinder:
    """An LR range test drawn while it runs: the smoothed curve grows and the suggestion
    markers move as points arrive. Several runs can share the plot (``label=`` each).

    Example (in a notebook)::

        live = LiveLRFinder().show()
        result = live.run(model, data, loss_fn="cross_entropy", num_iter=200)
    """

    def __init__(self, figsize=(8, 4), min_interval: float = 0.08):
        self.view = LiveFigure(figsize=figsize, min_interval=min_interval)
        self.ax = self.view.axes
        self.plots: list[LRFinderPlot] = []
        self.status = W.HTML("ready")
        self.widget = panel(self.status, self.view.widget)

    def show(self) -> "LiveLRFinder":
        display(self.widget)
        self.view.refresh(force=True)
        return self

    def run(self, model, data, *, label: str | None = None, color: str | None = None,
            rules=("steep", "valley", "minimum", "slide"), **kwargs):
        """Run ``course_lib.lr_range_test(model, data, **kwargs)`` and draw it live; returns its result."""

        show_raw = not self.plots          # the raw curve of the first run only: less clutter
        plot = LRFinderPlot(self.ax, rules=rules, show_raw=show_raw, label=label, color=color)
        self.plots.append(plot)
        self.view.relayout()               # new axis labels and legend entries: lay the figure out again
        user_cb: Callable | None = kwargs.pop("on_step", None)

        def on_step(result):
            if self.view.due():  # update the artists only when a frame will show them
                plot.update(result)
                self.view.refresh()
                self.status.value = (f"{label + ': ' if label else ''}iteration {len(result)}, "
                                     f"lr {result.lrs[-1]:.2g}, smoothed loss {result.smoothed_losses[-1]:.3g}")
            if user_cb is not None:
                user_cb(result)

        result = lr_range_test(model, data, on_step=on_step, **kwargs)
        plot.update(result)
        self.view.relayout()               # the final legend (suggestions) may be wider
        self.view.refresh(force=True)
        sug = ", ".join(f"{k} {v:.2g}" for k, v in result.suggestions.items() if v is not None)
        self.status.value = (f"{label + ': ' if label else ''}{result.stop_reason} after {len(result)} iterations "
                             f"({result.seconds:.1f} s); suggestions: {sug or 'none (too few points)'}")
        return result
