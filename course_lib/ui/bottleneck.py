"""Figures of the masking-strength bottleneck (notebook 06b): the KL-vs-LM trade-off.

Drawing only; the computing lives in :mod:`course_lib.bottleneck`. Every function takes axes
(``ax=None`` makes a figure) and returns them, so figures compose and tests can count artists.
:class:`BottleneckPlot` keeps its line artists and updates them in place: the same code draws a
finished run and a run that is still training (inside a :class:`course_lib.ui.live.LiveFigure`)."""

from __future__ import annotations

import math

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.axes import Axes

from .._validation import check_number, check_relation, check_type
from ..bottleneck import BottleneckHistory
from ..curves import ema
from .live import LiveFigure
from .panels import SliderPanel, controls_row, panel

__all__ = ["STRENGTH_COLORS", "REFERENCE_STYLES", "BottleneckPlot", "plot_bottleneck_run", "plot_masking_tradeoff",
           "StrengthExplorer"]


# One colour per masking strength in every figure of the lesson (weak -> strong: blue -> red).
STRENGTH_COLORS = {0.001: "#0072B2", 0.5: "#009E73", 10.0: "#D55E00"}


# The two reference losses of a Markov language: what a perfect model gets, and what a model
# that only knows token frequencies gets (a collapsed bottleneck).
_EVENT_COLOR, _DIVERGED_COLOR = "#9467bd", "#d62728"

REFERENCE_STYLES = {"entropy_rate": dict(color="black", ls=":", lw=1.5),
                    "unigram_entropy": dict(color="#7f7f7f", ls="--", lw=1.2)}


def _strength_color(w: float | None) -> str:
    if w is None:
        return "#1f77b4"
    for known, color in STRENGTH_COLORS.items():
        if math.isclose(w, known):
            return color
    return "#1f77b4"


class BottleneckPlot:
    """The two curves of a bottleneck run, drawn in place: KL term (log y) and causal-LM loss.

    Args:
        ax_kl (Axes): where the KL term goes (log scale: it spans decades).
        ax_ce (Axes): where the next-token cross-entropy goes.
        entropy_rate (float, optional): ``H``, drawn as a labelled dotted line on ``ax_ce``.
        unigram_entropy (float, optional): ``U``, drawn as a labelled dashed line on ``ax_ce``.
        color (str, optional): line colour. Default: blue.
        smooth (float): EMA beta in [0, 1) applied to both curves; 0 draws the raw steps. Default: 0.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> fig, (ax_kl, ax_ce) = plt.subplots(2, 1)
        >>> plot = BottleneckPlot(ax_kl, ax_ce, entropy_rate=2.0, unigram_entropy=3.0)
        >>> plot.update(BottleneckHistory(step=[0, 1], ce=[3.4, 3.1], kl=[0.5, 0.4], strength=[0.5, 0.5]))
        >>> plot.ce_line.get_ydata().tolist()
        [3.4, 3.1]
    """

    def __init__(self, ax_kl: Axes, ax_ce: Axes, *, entropy_rate: float | None = None,
                 unigram_entropy: float | None = None, color: str | None = None, smooth: float = 0.0):
        where = "BottleneckPlot"
        check_type("ax_kl", ax_kl, Axes, where=where, expected="matplotlib Axes")
        check_type("ax_ce", ax_ce, Axes, where=where, expected="matplotlib Axes")
        check_number("entropy_rate", entropy_rate, where=where, low=0.0, allow_none=True)
        check_number("unigram_entropy", unigram_entropy, where=where, low=0.0, allow_none=True)
        self.smooth = check_number("smooth", smooth, where=where, low=0.0, high=1.0, high_open=True)
        self.ax_kl, self.ax_ce = ax_kl, ax_ce
        color = color or "#1f77b4"
        (self.kl_line,) = ax_kl.plot([], [], color=color, lw=1.2)
        (self.ce_line,) = ax_ce.plot([], [], color=color, lw=1.2)
        # Reference lines labelled just outside the right edge, like tick labels: a legend box
        # or a label inside the axes would sit on top of a curve that is still moving.
        for value, key, name in ((entropy_rate, "entropy_rate", "H"), (unigram_entropy, "unigram_entropy", "U")):
            if value is not None:
                style = REFERENCE_STYLES[key]
                ax_ce.axhline(value, **style)
                ax_ce.annotate(name, (1.01, value), xycoords=("axes fraction", "data"), ha="left", va="center",
                               fontsize="small", fontweight="bold", color=style["color"], annotation_clip=False)
        ax_kl.set_yscale("log")
        ax_kl.set(xlabel="step", ylabel="KL term (nats, log scale)")
        ax_ce.set(xlabel="step", ylabel="CE (nats / token)")
        self._events_drawn = 0

    def update(self, history: BottleneckHistory) -> None:
        """Redraw from ``history`` (cheap: ``set_data`` and a rescale; new events only)."""
        steps = np.asarray(history.step, dtype=float)
        ce = np.asarray(history.ce, dtype=float)
        kl = np.asarray(history.kl, dtype=float)
        if self.smooth > 0 and len(steps):
            ce = np.asarray(ema(ce.tolist(), beta=self.smooth))
            kl = np.asarray(ema(kl.tolist(), beta=self.smooth))
        kl = np.where(kl > 0, kl, np.nan)  # log scale: a KL of exactly 0 (or NaN) leaves a gap
        self.ce_line.set_data(steps, np.where(np.isfinite(ce), ce, np.nan))
        self.kl_line.set_data(steps, kl)
        for ax in (self.ax_kl, self.ax_ce):
            ax.relim()
            ax.autoscale_view()
        for ev in history.events[self._events_drawn:]:
            self._draw_event(ev, history)
        self._events_drawn = len(history.events)

    def _draw_event(self, ev: dict, history: BottleneckHistory) -> None:
        if ev["kind"] == "diverged":
            finite = [(s, c) for s, c in zip(history.step, history.ce) if math.isfinite(c)]
            s, c = finite[-1] if finite else (ev["step"], float("nan"))
            self.ax_ce.plot([s], [c], marker="X", ms=11, color=_DIVERGED_COLOR, ls="none")
            self.ax_ce.annotate(f"diverged at step {ev['step']}", (s, c), textcoords="offset points", xytext=(-8, 8),
                                ha="right", color=_DIVERGED_COLOR, fontsize="small")
            return
        for ax in (self.ax_kl, self.ax_ce):  # a strength change: a thin line, labelled, on both panels
            ax.axvline(ev["step"], color=_EVENT_COLOR, lw=1.0, alpha=0.7)
            ax.annotate(ev["text"], (ev["step"], 0.98), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize="x-small", color=_EVENT_COLOR)


def plot_bottleneck_run(history: BottleneckHistory, axes=None, *, entropy_rate: float | None = None,
                        unigram_entropy: float | None = None, color: str | None = None,
                        smooth: float = 0.0) -> tuple[Axes, Axes]:
    """One run: KL term (log y) above, causal-LM loss below, with the reference lines.

    Args:
        history (BottleneckHistory): from ``course_lib.masking.train_bottleneck`` or a ``BottleneckRun``.
        axes (pair of Axes, optional): ``(ax_kl, ax_ce)``; None makes a 2 x 1 figure.
        entropy_rate, unigram_entropy (float, optional): ``H`` and ``U`` of the language.
        color (str, optional): line colour. Default: the strength's colour in ``STRENGTH_COLORS``.
        smooth (float): EMA beta in [0, 1). Default: 0 (raw steps).

    Returns:
        ``(ax_kl, ax_ce)``.
    """
    check_type("history", history, BottleneckHistory, where="plot_bottleneck_run")
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(5, 5), sharex=True, layout="constrained")
    ax_kl, ax_ce = axes
    w = history.strength[0] if history.strength else history.config.get("strength")
    plot = BottleneckPlot(ax_kl, ax_ce, entropy_rate=entropy_rate, unigram_entropy=unigram_entropy,
                          color=color or _strength_color(w), smooth=smooth)
    plot.update(history)
    return ax_kl, ax_ce


def plot_masking_tradeoff(histories: dict, *, entropy_rate: float, unigram_entropy: float, axes=None,
                          smooth: float = 0.0) -> np.ndarray:
    """The lesson's summary figure: one column per masking strength; top row the KL term on a log axis,
    bottom row the causal-LM loss with ``H`` and ``U`` as reference lines.

    Args:
        histories (dict): ``strength -> BottleneckHistory``, in column order.
        entropy_rate (float): ``H`` of the language (the floor of the CE).
        unigram_entropy (float): ``U`` (the CE of a collapsed latent).
        axes (array of Axes, optional): shape ``(2, len(histories))``; None makes the figure.
        smooth (float): EMA beta in [0, 1) for both rows. Default: 0.

    Returns:
        numpy array of Axes, shape ``(2, n)``.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> h = BottleneckHistory(step=[0, 1], ce=[3.2, 3.1], kl=[1e-3, 1e-4], strength=[10.0, 10.0])
        >>> plot_masking_tradeoff({10.0: h}, entropy_rate=2.0, unigram_entropy=3.1).shape
        (2, 1)
    """
    where = "plot_masking_tradeoff"
    check_type("histories", histories, dict, where=where, expected="dict strength -> BottleneckHistory")
    check_relation(len(histories) > 0, "'histories' must hold at least one run", where=where, histories=histories)
    n = len(histories)
    if axes is None:
        _, axes = plt.subplots(2, n, figsize=(4 * n, 6), sharex="col", sharey="row", squeeze=False,
                               layout="constrained")
    axes = np.asarray(axes).reshape(2, n)
    for col, (w, h) in enumerate(histories.items()):
        check_type(f"histories[{w!r}]", h, BottleneckHistory, where=where)
        plot_bottleneck_run(h, (axes[0, col], axes[1, col]), entropy_rate=entropy_rate,
                            unigram_entropy=unigram_entropy, color=_strength_color(w), smooth=smooth)
        axes[0, col].set_title(f"log KL loss, strength {w:g}")
        axes[1, col].set_title(f"causal LM loss, strength {w:g}")
        axes[0, col].set_xlabel("")  # the x-axis is shared with the panel below
        if col > 0:  # one set of y-labels per row is enough
            axes[0, col].set_ylabel("")
            axes[1, col].set_ylabel("")
    return axes


class StrengthExplorer(SliderPanel):
    """Lesson 06b's panel: train a :class:`~course_lib.bottleneck.BottleneckRun` live and change
    its masking strength ``w`` while it trains.

    A log slider for ``w`` (CSS class ``strength-slider``), a button that trains some more
    steps, a status line with the current CE and KL, and :class:`BottleneckPlot` in a
    :class:`~course_lib.ui.live.LiveFigure`. A new strength is read at the start of the very next
    training step, so the curves show what the change does to a run in progress. Nothing trains
    until :meth:`train` is called or the button is pressed.

    Args:
        run (BottleneckRun): the run to train (its ``strength`` is the slider's start value).
        entropy_rate (float): ``H``, the floor of the CE curve.
        unigram_entropy (float): ``U``, what CE reaches when the latent carries nothing.
        more_steps (int): steps the button trains. Default 500.
        figsize (tuple): figure size in inches. Default (10, 3.5).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from course_lib.bottleneck import BottleneckRun
        >>> from course_lib.language import MarkovLanguage
        >>> lang = MarkovLanguage(vocab_size=8, seed=0)
        >>> panel = StrengthExplorer(BottleneckRun(lang, strength=0.01, seed=0, device="cpu"),
        ...                          entropy_rate=lang.entropy_rate, unigram_entropy=lang.unigram_entropy)
        >>> panel.sliders["strength"].value = 2.0     # as a drag would: the run's strength follows
        >>> panel.run.strength
        2.0
    """

    def __init__(self, run, *, entropy_rate: float, unigram_entropy: float, more_steps: int = 500,
                 figsize=(10, 3.5)):
        check_number("more_steps", more_steps, where="StrengthExplorer", low=1, integer=True)
        self.run = run
        self.more_steps = more_steps
        self.sliders = {"strength": W.FloatLogSlider(value=run.strength, base=10, min=-3, max=1, step=0.05,
                                                     description="strength w", readout_format=".3g",
                                                     continuous_update=False, style={"description_width": "80px"})}
        self.more = W.Button(description=f"train {more_steps} more steps", icon="play",
                             layout=W.Layout(width="auto"))  # as wide as its label (the default cut it)
        self.more.add_class("bottleneck-more")
        self.status = W.HTML()
        self.view = LiveFigure(1, 2, figsize=figsize)
        ax_ce, ax_kl = self.view.axes
        self.plot = BottleneckPlot(ax_kl, ax_ce, entropy_rate=entropy_rate, unigram_entropy=unigram_entropy)
        ax_ce.set_title("causal-LM loss")
        ax_kl.set_title("KL term (log scale)")
        self.entropy_rate, self.unigram_entropy = entropy_rate, unigram_entropy
        self.widget = panel(W.VBox([controls_row(self.sliders["strength"], self.more), self.status]), self.view.widget)
        self.more.on_click(lambda _: self.train(self.more_steps))
        self._wire()

    def _on_change(self, change) -> None:
        # A strength change steers the run (read at its next step); nothing to recompute, but the
        # figure says at once which strength the next steps use.
        self.run.strength = change["new"]
        self.view.axes[0].set_title(f"causal-LM loss (next steps: w = {self.run.strength:.3g})")
        self.view.draw_now()

    def _draw(self) -> None:
        self.run.flush()  # copy the recorded losses back from the device
        self.plot.update(self.run.history)
        h = self.run.history
        if h.ce:
            self.status.value = (f"step {self.run.step}, w = {self.run.strength:.3g}: CE {h.ce[-1]:.3f} nats "
                                 f"(H = {self.entropy_rate:.3f}, U = {self.unigram_entropy:.3f}), KL {h.kl[-1]:.3g} nats")

    def show(self):
        """Display the panel (the first frame: empty axes with the H and U lines)."""
        if not self.run.history.step:
            # Nothing trained yet (Run All never trains): show the steps the button will add, not
            # matplotlib's -0.04..0.04 of an empty axis. auto=None keeps autoscaling on for later frames.
            for ax in self.view.axes:
                ax.set_xlim(0, self.more_steps, auto=None)
            self.view.axes[1].set_ylim(1e-3, 1e2, auto=None)  # the KL axis: the decades the runs cover
        display(self.widget)
        self.view.refresh(force=True)
        return self

    def train(self, num_steps: int, on_step=None):
        """Train ``num_steps`` more steps, redrawing at most a few frames a second; returns the run."""
        def step(run):
            if on_step is not None:
                on_step(run)
            if self.view.due():
                self._draw()
                self.view.refresh()
        self.run.train(num_steps, on_step=step)
        self._draw()
        self.view.draw_now()
        return self.run
