"""Figures and the slider panel of lesson 07: gradient size vs epochs, MRL against SMRL.

Drawing only; the computing lives in :mod:`course_lib.matryoshka`. :class:`GradientSizePlot`
draws the figure as the SMEC paper does (mean ``|g|`` of two slices of the compression layer's
rows per epoch, and the gradient variance, both on log axes) and keeps its artists, so the same
code draws a finished run and one that is still training inside a
:class:`course_lib.ui.live.LiveFigure`. :class:`MatryoshkaPanel` trains MRL with the learner's
sizes, loss weights and optimizer when the learner presses its button, never by itself.

References:
    Zhang et al., *SMEC*, EMNLP 2025, arXiv 2510.12474 (figure "gradient size vs epochs").
    Kusupati et al., *Matryoshka Representation Learning*, arXiv 2205.13147.
"""

from __future__ import annotations

import math

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from .._validation import check_choice, check_number, check_tensor, check_type
from ..matryoshka import METHODS, OPTIMIZERS, MatryoshkaHistory, train_matryoshka
from .live import LiveFigure
from .panels import SliderPanel, controls_row, panel

__all__ = ["SLICE_COLORS", "METHOD_STYLES", "SIZE_CHOICES", "GradientSizePlot", "plot_gradient_size",
           "MatryoshkaPanel"]

# Okabe-Ito (colour-blind safe): the leading slice is always blue, the next ones vermillion,
# green, purple. MRL is drawn solid, SMRL dashed, in every figure of the lesson.
SLICE_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
METHOD_STYLES = {"mrl": dict(ls="-", marker="o"), "smrl": dict(ls="--", marker="s")}
_VAR_COLORS = {"mrl": "#000000", "smrl": "#7f7f7f"}
_STAGE_COLOR = "#9467bd"
# Nested sizes the panel offers (the layer has 192 rows, as in the lesson's toy).
SIZE_CHOICES = {"96, 192": (96, 192), "48, 192": (48, 192), "144, 192": (144, 192), "48, 96, 192": (48, 96, 192)}


def _positive(values) -> np.ndarray:
    """Log axes: zero (a frozen slice) or NaN leave a gap instead of breaking the scale."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v) & (v > 0), v, np.nan)


def _broken_at_stages(stages, values) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) with a NaN between two SMRL stages: a new stage's first epoch is not a
    continuation of the last stage's curve, so no line joins them."""
    xs, ys = [], []
    for e, (k, v) in enumerate(zip(stages, values)):
        if e > 0 and stages[e - 1] != k:
            xs.append(e - 0.5)
            ys.append(np.nan)
        xs.append(e)
        ys.append(v)
    return np.asarray(xs, dtype=float), _positive(ys)


def _integer_epochs(ax: Axes) -> None:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # one epoch: the tick 0, not -0.4, -0.2, ...


class GradientSizePlot:
    """The paper's figure, drawn in place: per-slice mean ``|g|`` (left) and variance (right).

    Each method gets one line per slice on ``ax_abs`` (colour = slice, style = method) and one
    variance line (the whole layer) on ``ax_var``. An SMRL stage change is a labelled vertical
    line; rows frozen in a stage leave a gap (their gradient is exactly 0).

    Args:
        ax_abs (Axes): where mean ``|g|`` goes (log y).
        ax_var (Axes): where the variance over each epoch's steps goes (log y).
        boundaries (tuple of int): slice edges of the runs to draw. Default: (0, 96, 192).
        methods (tuple of str): which methods get lines. Default: ("mrl", "smrl").

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> fig, (a, b) = plt.subplots(1, 2)
        >>> plot = GradientSizePlot(a, b)
        >>> h = MatryoshkaHistory([0, 96, 192], stage=[0, 0], mean_abs=[[2e-3, 1e-3], [1e-3, 5e-4]],
        ...                       var_all=[1e-5, 1e-6])
        >>> plot.update(h, "mrl")
        >>> plot.lines["mrl"][0].get_ydata().tolist()
        [0.002, 0.001]
    """

    def __init__(self, ax_abs: Axes, ax_var: Axes, boundaries=(0, 96, 192), methods=METHODS):
        where = "GradientSizePlot"
        check_type("ax_abs", ax_abs, Axes, where=where, expected="matplotlib Axes")
        check_type("ax_var", ax_var, Axes, where=where, expected="matplotlib Axes")
        for m in methods:
            check_choice("methods", m, METHODS, where=where)
        self.ax_abs, self.ax_var = ax_abs, ax_var
        self.boundaries = tuple(boundaries)
        slices = list(zip(self.boundaries, self.boundaries[1:]))
        self.lines, self.var_lines, self._stages_drawn = {}, {}, {}
        for m in methods:
            self.lines[m] = [ax_abs.plot([], [], color=SLICE_COLORS[i % 4], label=f"{m.upper()} rows [{lo}, {hi})",
                                         ms=3, lw=1.6, **METHOD_STYLES[m])[0] for i, (lo, hi) in enumerate(slices)]
            (self.var_lines[m],) = ax_var.plot([], [], color=_VAR_COLORS[m], label=f"{m.upper()} whole layer",
                                               ms=3, lw=1.6, **METHOD_STYLES[m])
            self._stages_drawn[m] = 1
        for ax in (ax_abs, ax_var):
            ax.set_yscale("log")
            _integer_epochs(ax)
        ax_abs.set(ylabel="mean |gradient| per epoch", title="Gradient size per slice of rows")
        ax_var.set(ylabel="variance over the epoch's steps", title="Gradient variance")
        # Legends outside the data: below each plot, where no curve can run under them.
        for ax in (ax_abs, ax_var):
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize="x-small", frameon=False)

    def update(self, history: MatryoshkaHistory, method: str) -> None:
        """Redraw ``method``'s lines from ``history`` (cheap: ``set_data`` and a rescale)."""
        check_type("history", history, MatryoshkaHistory, where="GradientSizePlot.update")
        check_choice("method", method, list(self.lines), where="GradientSizePlot.update")
        stages = history.stage or [0] * len(history.mean_abs)
        per_slice = np.asarray(history.mean_abs, dtype=float).reshape(len(history.mean_abs), -1)
        for i, line in enumerate(self.lines[method]):
            line.set_data(*_broken_at_stages(stages, per_slice[:, i] if i < per_slice.shape[1] else []))
        self.var_lines[method].set_data(*_broken_at_stages(stages, history.var_all))
        # A new SMRL stage: mark where it starts and what it freezes.
        sizes = history.config.get("stages", [])
        for e in range(1, len(history.stage)):
            k = history.stage[e]
            if history.stage[e - 1] != k and k >= self._stages_drawn[method]:
                self._stages_drawn[method] = k + 1
                text = f"{method.upper()} stage {k + 1}: size {sizes[k]}" if k < len(sizes) else f"stage {k + 1}"
                if k < len(sizes):
                    text += f"\nrows [{sizes[k]}, {sizes[0]}) frozen"
                for ax in (self.ax_abs, self.ax_var):
                    ax.axvline(e - 0.5, color=_STAGE_COLOR, lw=1.0, alpha=0.7)
                    # At the bottom: a new stage starts high, so its first points sit at the top.
                    ax.annotate(text, (e - 0.4, 0.03), xycoords=("data", "axes fraction"), va="bottom", ha="left",
                                fontsize="x-small", color=_STAGE_COLOR)
        for ax in (self.ax_abs, self.ax_var):
            ax.relim()
            ax.autoscale_view()

    def on_epoch(self, method: str, live: LiveFigure | None = None):
        """A callback for ``train_matryoshka(on_epoch=...)``: redraw after each epoch."""
        def callback(history: MatryoshkaHistory) -> None:
            self.update(history, method)
            if live is not None:
                live.refresh()
        return callback


def plot_gradient_size(histories: dict, axes=None) -> tuple[Axes, Axes]:
    """The figure for finished runs: ``{"mrl": history, "smrl": history}`` -> ``(ax_abs, ax_var)``.

    Args:
        histories (dict): method -> :class:`MatryoshkaHistory` (one or both methods).
        axes (pair of Axes, optional): where to draw; None makes a 1 x 2 figure.

    Returns:
        ``(ax_abs, ax_var)``.
    """
    check_type("histories", histories, dict, where="plot_gradient_size", expected="dict method -> MatryoshkaHistory")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    ax_abs, ax_var = axes
    first = next(iter(histories.values()), None)
    plot = GradientSizePlot(ax_abs, ax_var, first.boundaries if first else (0, 96, 192), tuple(histories))
    for method, h in histories.items():
        plot.update(h, method)
    return ax_abs, ax_var


class MatryoshkaPanel(SliderPanel):
    """Train MRL with your nested sizes, loss weight and optimizer; see raw gradients and steps.

    Left: the raw gradient's mean ``|g|`` per slice per epoch (what the paper plots). Right:
    the mean size of the optimizer's step per slice (what actually changes the weights). With
    SGD the step is ``lr * g``, so both plots show the same imbalance; Adam divides each
    coordinate by a running RMS of its gradient, so its steps come out about equal per slice.

    Nothing trains until the learner presses **train** (or a test calls :meth:`train`).

    Args:
        X (Tensor): features ``(N, D)``; y (Tensor): labels ``(N,)``.
        num_epochs (int): epochs per press. Default: 10.
        sizes (str): a key of ``SIZE_CHOICES``. Default: ``"96, 192"``.
        weight (float): ``c`` of every size but the largest (whose ``c`` is 1), in [0.05, 1]. Default: 1.
        optimizer (str): ``"adam"`` or ``"sgd"``. Default: ``"adam"``.
        seed (int): Default: 0. device: as for :func:`course_lib.matryoshka.train_matryoshka`.

    Attributes:
        sliders (dict): ``"sizes"``, ``"weight"``, ``"optimizer"``. view (LiveFigure).
        status (HTML). history (MatryoshkaHistory or None): the last run.
    """

    def __init__(self, X, y, *, num_epochs: int = 10, sizes: str = "96, 192", weight: float = 1.0,
                 optimizer: str = "adam", seed: int = 0, device=None, min_interval: float = 0.08):
        where = "MatryoshkaPanel"
        check_tensor("X", X, where=where, ndim=2, floating=True, shape_hint="(N, D)")
        check_tensor("y", y, where=where, ndim=1, floating=False, shape_hint="(N,)")
        self.num_epochs = check_number("num_epochs", num_epochs, where=where, low=1, integer=True)
        check_choice("sizes", sizes, list(SIZE_CHOICES), where=where)
        check_number("weight", weight, where=where, low=0.05, high=1.0)
        check_choice("optimizer", optimizer, OPTIMIZERS, where=where)
        self.X, self.y, self.seed, self.device = X, y, seed, device
        self.history: MatryoshkaHistory | None = None
        self._trained_with: dict | None = None
        style = {"description_width": "130px"}   # "weight c (smaller)" in full
        self.sliders = {
            "sizes": W.SelectionSlider(options=list(SIZE_CHOICES), value=sizes, description="nested sizes",
                                       continuous_update=False, style=style, layout=W.Layout(width="380px")),
            # min -1.3 (c = 0.0501), not log10(0.05): the grid of 0.05 steps then ends exactly at c = 1,
            # plain MRL (from log10(0.05) its last point was 0.9976, and the snapped start used that).
            "weight": W.FloatLogSlider(value=weight, base=10, min=-1.3, max=0.0, step=0.05,
                                       description="weight c (smaller)", readout_format=".2f",
                                       continuous_update=False, style=style, layout=W.Layout(width="380px")),
            "optimizer": W.ToggleButtons(options=list(OPTIMIZERS), value=optimizer, description="optimizer",
                                         style=style),
        }
        self.button = W.Button(description=f"train {self.num_epochs} epochs", icon="play")
        self.button.add_class("matryoshka-train")
        self.button.on_click(lambda _: self.train())
        self.status = W.HTML("Choose the settings, then press <b>train</b>.")
        self.view = LiveFigure(1, 2, figsize=(11, 4.2), min_interval=min_interval)
        # Controls above the figure, wrapping on a narrow screen.
        self.widget = panel(W.VBox([controls_row(W.VBox([self.sliders["sizes"], self.sliders["weight"]]),
                                                 W.VBox([self.sliders["optimizer"], self.button])),
                                    self.status]), self.view.widget)
        self._wire()
        self.redraw()

    def weights(self) -> tuple[float, ...]:
        """The loss weights of the current settings: ``c`` for each smaller size, 1 for the largest."""
        sizes = SIZE_CHOICES[self.sliders["sizes"].value]
        return (float(self.sliders["weight"].value),) * (len(sizes) - 1) + (1.0,)

    def _draw(self) -> None:
        """Lay out empty axes for the current sizes (a new setting clears the old run)."""
        sizes = SIZE_CHOICES[self.sliders["sizes"].value]
        ax_g, ax_s = self.view.axes
        for ax in (ax_g, ax_s):
            ax.clear()
            ax.set_yscale("log")
            _integer_epochs(ax)
            # The epochs the button trains, fixed: before a run an empty axis showed matplotlib's
            # -0.045..0.045 "epochs", and during one the axis grew epoch by epoch.
            ax.set_xlim(-0.5, self.num_epochs - 0.5)
        ax_g.set(ylabel="mean |gradient|", title="Raw gradient per slice (what the paper plots)")
        ax_s.set(ylabel="mean |step of W|", title="The optimizer's step per slice")
        b = (0,) + sizes
        self._lines = [[ax.plot([], [], "o-", ms=3, lw=1.6, color=SLICE_COLORS[i % 4],
                                label=f"rows [{lo}, {hi})")[0] for i, (lo, hi) in enumerate(zip(b, b[1:]))]
                       for ax in (ax_g, ax_s)]
        ax_g.legend(loc="upper right", fontsize="x-small")
        self.view.relayout()
        if self.history is not None and self._trained_with == self.settings():
            self._update(self.history)
        elif self.history is not None:
            self.status.value = "Settings changed: press <b>train</b> to run them."

    def _update(self, h: MatryoshkaHistory) -> None:
        epochs = np.arange(len(h.mean_abs))
        for lines, values in zip(self._lines, (h.mean_abs, h.update_abs)):
            v = np.asarray(values, dtype=float).reshape(len(epochs), -1)
            for i, line in enumerate(lines):
                line.set_data(epochs, _positive(v[:, i]))
        for ax in self.view.axes:
            ax.relim()
            ax.autoscale_view()
        if h.mean_abs:
            g, s = h.mean_abs[-1], h.update_abs[-1]
            self.status.value = (
                f"epoch {len(h.mean_abs)}: gradient ratio (first / last slice) <b>{g[0] / g[-1]:.2f}</b>, "
                f"step ratio <b>{s[0] / s[-1]:.2f}</b>, loss {h.loss[-1]:.3f}"
                + (" &mdash; <span style='color:#d62728'>diverged</span>" if h.diverged else ""))

    def train(self) -> MatryoshkaHistory:
        """Train MRL from scratch with the current settings, redrawing after each epoch."""
        sizes = SIZE_CHOICES[self.sliders["sizes"].value]
        self.history, self._trained_with = None, self.settings()
        self._draw()

        def on_epoch(h: MatryoshkaHistory) -> None:
            self._update(h)
            self.view.refresh()

        self.button.disabled = True  # one run at a time
        try:
            self.history = train_matryoshka(
                self.X, self.y, sizes=sizes, weights=list(self.weights()), optimizer=self.sliders["optimizer"].value,
                num_epochs=self.num_epochs, seed=self.seed, device=self.device, on_epoch=on_epoch)
        finally:
            self.button.disabled = False
        self._update(self.history)
        self.view.draw_now()
        return self.history
