"""Figures and the live lab of lesson 09 (training with local losses).

Drawing only; the computing lives in :mod:`course_lib.local_learning`. Every plotting function
takes ``ax=None`` (or ``axes=None``) and returns what it drew on, so a test can count artists.
:class:`LocalRunPlot` keeps its artists and moves them: the same code draws a finished run and
one that is still training. A head's colour is its depth (the block it reads, out of ``B``), so
"the head after block 4" has one colour whatever ``K`` is.
"""

from __future__ import annotations

import math
import time

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from .._validation import check_number, check_type
from ..curves import ema
from ..data import DataSplit
from ..local_learning import LocalHistory, cost_table, train_local
from .live import LiveFigure
from .panels import SliderPanel, controls_row, panel

__all__ = ["depth_color", "plot_checkerboard", "plot_gradient_reach", "LocalRunPlot", "plot_local_run",
           "plot_probes", "plot_accuracy_by_k", "LocalLearningLab"]

_GHOST = "#7f7f7f"
_CHANCE = dict(color="#7f7f7f", ls="--", lw=1)
_BACKPROP, _LOCAL, _OVERLAP = "#0072B2", "#D55E00", "#009E73"  # Okabe-Ito: colour-blind safe


def depth_color(depth: int, num_blocks: int) -> tuple:
    """The colour of the head (or probe) after block ``depth`` of ``num_blocks`` (viridis)."""
    return plt.get_cmap("viridis")(0.05 + 0.85 * depth / max(num_blocks, 1))


def plot_checkerboard(data: DataSplit, ax: Axes | None = None, *, max_points: int = 1500) -> Axes:
    """The task: training points coloured by class.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from course_lib.local_learning import make_checkerboard
        >>> len(plot_checkerboard(make_checkerboard(200)).collections)
        2
    """
    check_type("data", data, DataSplit, where="plot_checkerboard")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.6), layout="constrained")
    X, y = data.X_train[:max_points].cpu().numpy(), data.y_train[:max_points].cpu().numpy()
    for label, color in ((0, _BACKPROP), (1, _LOCAL)):
        ax.scatter(*X[y == label].T, s=5, color=color, label=f"class {label}")
    cells = data.info.get("cells")
    ax.set(aspect="equal", xlabel="x₁", ylabel="x₂",
           title=f"The task: the colour\nof the square ({cells} x {cells})" if cells else "The task")
    return ax


def plot_gradient_reach(reach, ax: Axes | None = None, *, title: str = "") -> Axes:
    """Which blocks each head's loss sends gradient to: a ``(K, B)`` grid, exact zeros blank.

    Args:
        reach (Tensor or array): ``(K, B)`` gradient norms from ``gradient_reach``.
        ax (Axes, optional): where to draw. title (str): the panel's title.

    Returns:
        Axes (one image; a "0" written in every cell the loss does not reach).
    """
    r = np.asarray(reach, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 2.2), layout="constrained")
    logs = np.full(r.shape, np.nan)
    logs[r > 0] = np.log10(r[r > 0])  # gradient norms span decades; exact zeros get no colour at all
    low = np.nanmin(logs) - 1 if (r > 0).any() else None  # the faintest reached cell is still visible
    ax.imshow(np.ma.masked_invalid(logs), cmap="Blues", aspect="auto", vmin=low)
    for j, b in zip(*np.nonzero(r == 0)):
        ax.text(b, j, "0", ha="center", va="center", fontsize="small", color="#444444")
    K, B = r.shape
    ax.set_xticks(range(B), [str(b + 1) for b in range(B)])
    ax.set_yticks(range(K), [str(j + 1) for j in range(K)])
    ax.set(xlabel="block (parameters θ_b)", ylabel="head's loss L_j", title=title)
    ax.grid(False)
    return ax


class LocalRunPlot:
    """One run drawn in place: every head's training loss (left) and probe accuracy by depth
    (right), with faded *ghosts* of earlier runs for comparison.

    Args:
        ax_loss, ax_probe (Axes): where the two panels go.
        num_blocks (int): ``B`` (the probe panel has ``B + 1`` bars: the input, then each block).
        chance (float, optional): a dashed line on the probe panel.
        smooth (float): EMA beta in [0, 1) of the loss curves. Default: 0.9.
        max_ghosts (int): earlier runs kept. Default: 3.
    """

    def __init__(self, ax_loss: Axes, ax_probe: Axes, *, num_blocks: int = 8, chance: float | None = None,
                 smooth: float = 0.9, max_ghosts: int = 3):
        where = "LocalRunPlot"
        check_type("ax_loss", ax_loss, Axes, where=where, expected="matplotlib Axes")
        check_type("ax_probe", ax_probe, Axes, where=where, expected="matplotlib Axes")
        self.B = check_number("num_blocks", num_blocks, where=where, low=1, integer=True)
        self.smooth = check_number("smooth", smooth, where=where, low=0, high=1, high_open=True)
        self.max_ghosts = check_number("max_ghosts", max_ghosts, where=where, low=0, integer=True)
        self.ax_loss, self.ax_probe = ax_loss, ax_probe
        self.head_lines: list = []
        self.ghosts: list[list] = []
        self.bars = ax_probe.bar(range(self.B + 1), np.zeros(self.B + 1),
                                 color=[depth_color(d, self.B) for d in range(self.B + 1)])
        if chance is not None:
            ax_probe.axhline(chance, **_CHANCE, label="chance")
        ax_probe.set(ylim=(0.4, 1.0), xlabel="depth (0 = the input)", ylabel="probe accuracy (validation)",
                     title="Linear probe of each block")
        ax_probe.set_xticks(range(self.B + 1), ["in"] + [str(b) for b in range(1, self.B + 1)])
        ax_loss.set(xlabel="step", ylabel="training loss (nats, smoothed)", title="Each head's loss")
        self.history: LocalHistory | None = None

    def update(self, history: LocalHistory) -> None:
        """Redraw from ``history`` (``set_data`` and bar heights; new head lines on a new run)."""
        check_type("history", history, LocalHistory, where="LocalRunPlot.update")
        K = history.config.get("num_chunks", len(history.head_loss[0]) if history.head_loss else 1)
        if len(self.head_lines) != K:
            for line in self.head_lines:
                line.remove()
            per = self.B // K
            self.head_lines = [self.ax_loss.plot([], [], lw=1.6, color=depth_color((j + 1) * per, self.B),
                                                 label=f"head {j + 1} (after block {(j + 1) * per})")[0]
                               for j in range(K)]
            self.ax_loss.legend(fontsize="x-small", loc="upper right", ncols=2 if K > 4 else 1)
        losses = np.asarray(history.head_loss, dtype=float).reshape(len(history.head_loss), K)  # (steps, K)
        steps = np.asarray(history.step, dtype=float)
        for j, line in enumerate(self.head_lines):
            y = losses[:, j]
            if self.smooth > 0 and len(y):
                y = np.asarray(ema(y.tolist(), beta=self.smooth))
            line.set_data(steps, np.where(np.isfinite(y), y, np.nan))
        self.ax_loss.relim()
        self.ax_loss.autoscale_view()
        probes = history.probe_acc[-1] if history.probe_acc else [0.0] * (self.B + 1)
        for bar, acc in zip(self.bars, probes):
            bar.set_height(acc)
        self.history = history

    def add_ghost(self, history: LocalHistory, label: str) -> None:
        """Keep ``history`` on the plot, faded: its last head's loss and its probe profile."""
        y = np.asarray([row[-1] for row in history.head_loss], dtype=float)
        if self.smooth > 0 and len(y):
            y = np.asarray(ema(y.tolist(), beta=self.smooth))
        artists = self.ax_loss.plot(history.step, y, color=_GHOST, lw=1, alpha=0.5, ls="--")
        if history.probe_acc:
            artists += self.ax_probe.plot(range(self.B + 1), history.probe_acc[-1], color=_GHOST, alpha=0.6,
                                          marker="_", ms=14, ls=":", lw=1, label=label)
        self.ghosts.append(artists)
        while len(self.ghosts) > self.max_ghosts:
            for a in self.ghosts.pop(0):
                a.remove()
        # The runs are named in a legend inside the axes. (A label written beside each profile's
        # last bar ran off the figure's right edge, whose layout is fixed before any run, and two
        # runs that ended at similar accuracies had their labels on top of each other.)
        self.ax_probe.legend(fontsize="x-small", loc="upper left")


def plot_local_run(history: LocalHistory, axes=None, *, chance: float | None = None) -> tuple[Axes, Axes]:
    """One finished run: every head's loss, and its probe accuracy by depth.

    Returns:
        ``(ax_loss, ax_probe)``.
    """
    check_type("history", history, LocalHistory, where="plot_local_run")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    plot = LocalRunPlot(*axes, num_blocks=history.config.get("num_blocks", 8), chance=chance)
    plot.update(history)
    return tuple(axes)


def plot_probes(histories: dict, ax: Axes | None = None, *, chance: float | None = None) -> Axes:
    """Probe accuracy by depth of several runs (``label -> LocalHistory``), one line each.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> h = LocalHistory(config={"num_blocks": 2}, probe_acc=[[0.5, 0.7, 0.9]])
        >>> len(plot_probes({"backprop": h}, chance=0.5).lines)
        2
    """
    check_type("histories", histories, dict, where="plot_probes", expected="dict label -> LocalHistory")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    colors = [_BACKPROP, _LOCAL, _OVERLAP, "#CC79A7", "#E69F00"]
    for i, (label, h) in enumerate(histories.items()):
        acc = h.probe_acc[-1]
        ax.plot(range(len(acc)), acc, marker="o", color=colors[i % len(colors)], label=label)
    if chance is not None:
        ax.axhline(chance, **_CHANCE, label="chance")
    n = max(len(h.probe_acc[-1]) for h in histories.values())
    ax.set_xticks(range(n), ["in"] + [str(b) for b in range(1, n)])
    ax.set(xlabel="depth (0 = the input)", ylabel="probe accuracy (validation)",
           title="How readable is the class after each block?")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_accuracy_by_k(accuracy: dict, axes=None, *, overlap: dict | None = None, chance: float | None = None,
                       num_blocks: int = 8) -> tuple[Axes, Axes]:
    """The trade-off: final accuracy against K (mean ± std over seeds), and what each K saves.

    Args:
        accuracy (dict): ``K -> list of final accuracies`` (``K = 1`` is backprop).
        axes (pair of Axes, optional): None makes a 1 x 2 figure.
        overlap (dict, optional): ``K -> accuracies`` of the overlapping variant.
        chance (float, optional): a dashed line.
        num_blocks (int): ``B``, for the cost panel. Default: 8.

    Returns:
        ``(ax_acc, ax_cost)``.
    """
    check_type("accuracy", accuracy, dict, where="plot_accuracy_by_k", expected="dict K -> list of floats")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    ax_acc, ax_cost = axes
    Ks = sorted(accuracy)
    for acc, color, name, shift in ((accuracy, _LOCAL, "local losses", 0.0), (overlap or {}, _OVERLAP,
                                                                                "overlapping chunks", 0.04)):
        ks = [k for k in Ks if k in acc]
        if not ks:
            continue
        mean = [float(np.mean(acc[k])) for k in ks]
        std = [float(np.std(acc[k], ddof=1)) if len(acc[k]) > 1 else 0.0 for k in ks]
        ax_acc.errorbar([k * (1 + shift) for k in ks], mean, yerr=std, marker="o", capsize=4, color=color, label=name)
    if 1 in accuracy:
        ax_acc.axhline(float(np.mean(accuracy[1])), color=_BACKPROP, lw=1, label="backprop (K = 1)")
    if chance is not None:
        ax_acc.axhline(chance, **_CHANCE, label="chance")
    ax_acc.set(xscale="log", xlabel="chunks K", ylabel="final accuracy (validation)",
               title="What local losses cost")
    ax_acc.set_xticks(Ks, [str(k) for k in Ks])
    ax_acc.minorticks_off()
    ax_acc.legend(fontsize="small", loc="lower left")
    ratio = [cost_table(num_blocks, k)["local"]["memory_ratio"] for k in Ks]
    layers = [cost_table(num_blocks, k)["local"]["backward_layers"] for k in Ks]
    ax_cost.bar([str(k) for k in Ks], ratio, color=_LOCAL, alpha=0.8)
    for i, (r, n) in enumerate(zip(ratio, layers)):
        ax_cost.annotate(f"{n} block{'s' if n > 1 else ''}", (i, r), xytext=(0, 3), textcoords="offset points",
                         ha="center", fontsize="small")
    ax_cost.set(ylim=(0, 1.15), xlabel="chunks K", ylabel="activation memory per worker\n(share of backprop's)",
                title="What they save\n(label: blocks per backward)")
    return ax_acc, ax_cost


class LocalLearningLab(SliderPanel):
    """Choose K and overlap, press *Train*, watch every head learn; earlier runs stay as ghosts.

    Moving a control never trains: the panel waits for the button (or ``lab.train()``). ``K =
    1`` is end-to-end backprop; ``K > 1`` trains with local losses.

    Args:
        data (DataSplit): the task (``make_checkerboard``).
        num_steps (int): Adam steps per run. Default: 600.
        num_blocks (int): ``B``. Default: 8.
        seed (int): the seed of every run (so runs differ only in K and overlap). Default: 0.
        device: where to train. Default: None (the best available).

    Attributes:
        sliders (dict): ``"num_chunks"`` (1, 2, 4, 8 for B = 8) and ``"overlap"``; drive them from
            Python (``lab.sliders["num_chunks"].value = 8``). history (LocalHistory or None): the
            last run. results (list of (label, accuracy)): every run so far.
    """

    def __init__(self, data: DataSplit, *, num_steps: int = 600, num_blocks: int = 8, seed: int = 0, device=None,
                 min_interval: float = 0.08):
        where = "LocalLearningLab"
        check_type("data", data, DataSplit, where=where)
        self.data = data
        self.num_steps = check_number("num_steps", num_steps, where=where, low=1, integer=True)
        self.num_blocks = check_number("num_blocks", num_blocks, where=where, low=1, integer=True)
        self.seed, self.device = seed, device
        self.view = LiveFigure(1, 2, figsize=(10, 3.8), min_interval=min_interval)
        self.plot = LocalRunPlot(*self.view.axes, num_blocks=num_blocks, chance=data.info.get("chance"))
        # The steps the button trains, fixed (autoscaling only the loss): before a run the empty
        # axis showed 0..1 "steps", and during one it grew with every frame.
        self.view.axes[0].set_xlim(0, self.num_steps)
        options = [k for k in (1, 2, 4, 8, 16) if num_blocks % k == 0 and k <= num_blocks]
        style = {"description_width": "90px"}
        self.sliders = {
            "num_chunks": W.SelectionSlider(options=options, value=options[-1], description="chunks K",
                                            continuous_update=False, style=style),
            "overlap": W.Checkbox(value=False, description="overlapping chunks"),
        }
        self.button = W.Button(description="Train", button_style="primary")
        self.button.on_click(lambda _: self.train())
        self.status = W.HTML()
        self.history: LocalHistory | None = None
        self.results: list[tuple[str, float]] = []
        # Controls above the figure, wrapping on a narrow screen (a plain row squeezed the button's label).
        self.widget = panel(W.VBox([controls_row(*self.sliders.values(), self.button), self.status]), self.view.widget)
        self._wire()
        self.redraw()

    def _label(self) -> str:
        K, overlap = self.sliders["num_chunks"].value, self.sliders["overlap"].value
        return "K=1 backprop" if K == 1 else f"K={K} local{' + overlap' if overlap else ''}"

    def _draw(self) -> None:  # a control moved: say what Train will do (in the figure too), train nothing
        self.status.value = f"next run: <b>{self._label()}</b>, {self.num_steps} steps. Press <i>Train</i>."
        self.view.fig.suptitle(f"next run: {self._label()}", fontsize="small")

    def train(self) -> LocalHistory:
        """Train with the current settings, drawing as it goes; returns the run's history."""
        K, overlap = self.sliders["num_chunks"].value, self.sliders["overlap"].value
        label = self._label()
        if self.history is not None:
            self.plot.add_ghost(self.history, f"{self.results[-1][0]}: {self.results[-1][1]:.2f}")
        self.status.value = f"training <b>{label}</b> ..."
        self.button.disabled = True
        t0 = time.perf_counter()

        def on_eval(h: LocalHistory) -> None:
            if self.view.due():
                self.plot.update(h)
                self.view.refresh()

        try:
            h = train_local(self.data, num_chunks=K, mode="backprop" if K == 1 else "local", overlap=overlap and K > 1,
                            num_blocks=self.num_blocks, num_steps=self.num_steps, batch_size=min(256, self.data.n_train),
                            eval_every=max(self.num_steps // 30, 1),
                            probe_every=max(self.num_steps // 4, 1), seed=self.seed, device=self.device,
                            on_eval=on_eval)
        finally:
            self.button.disabled = False
        self.plot.update(h)
        self.view.draw_now()
        self.history = h
        acc = h.final_accuracy
        self.results.append((label, acc))
        verdict = "" if h.stop_reason == "completed" else f" ({h.stop_reason} at step {h.stop_step})"
        best = max((a for lbl, a in self.results if lbl.startswith("K=1")), default=math.nan)
        gap = "" if math.isnan(best) or K == 1 else f"; backprop's run scored {best:.3f} (gap {best - acc:+.3f})"
        self.status.value = (f"<b>{label}</b>: last head's accuracy {acc:.3f}{gap}{verdict} "
                             f"({time.perf_counter() - t0:.1f} s)")
        return h
