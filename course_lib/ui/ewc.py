"""Figures and the live panel of lesson 08: what :mod:`course_lib.ewc` computes, drawn.

* :func:`plot_accuracy`: every task's test accuracy over the steps of a sequential run, the
  trained task shaded, lam changes and divergence marked.
* :func:`plot_fisher`: "which weights mattered for A", a histogram of the diagonal Fisher per
  layer on a log axis.
* :class:`EWCLab`: train on task B from a saved model of task A with a lam slider (log scale,
  including 0) that acts while the run goes on, a true/empirical Fisher toggle, and faded
  *ghost* curves of the earlier runs, labelled with their lam.
"""

from __future__ import annotations

import copy
import threading

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from .._validation import check_choice, check_number, check_relation, check_seed, check_type
from ..data import DataSplit
from ..ewc import FISHER_KINDS, ContinualHistory, ContinualState, train_sequential
from .live import LiveFigure
from .panels import SliderPanel, controls_row, error_html, panel
from .plotting import COLORS

__all__ = ["TASK_COLORS", "LAM_STEPS", "plot_accuracy", "plot_fisher", "EWCLab"]

# Okabe-Ito (colour-blind safe): task A blue, task B orange, task C green, then more.
TASK_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9")
# The lam slider: 0, then 1 .. 1e4 in steps of about half a decade (a log scale that includes 0).
LAM_STEPS = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)


def _mark_events(ax: Axes, history: ContinualHistory, alpha: float = 1.0) -> None:
    for ev in history.events:
        if ev["kind"] == "change":
            ax.axvline(ev["step"], color=COLORS["event"], lw=0.9, alpha=0.7 * alpha)
        elif ev["kind"] == "diverged":
            ax.axvline(ev["step"], color=COLORS["diverged"], lw=1.2, ls="--", alpha=alpha)
            ax.text(ev["step"], 0.5, " diverged", color=COLORS["diverged"], rotation=90, va="center",
                    fontsize=8, alpha=alpha)


def plot_accuracy(history: ContinualHistory, ax: Axes | None = None, *, alpha: float = 1.0, label: str = "",
                  shade: bool = True) -> Axes:
    """Each task's test accuracy against the training step, while the tasks are trained in turn.

    Args:
        history (ContinualHistory): a run of :func:`course_lib.ewc.train_sequential`.
        ax (Axes or None): where to draw; None makes a new figure. Default: None.
        alpha (float): opacity, for faded comparisons. Default: ``1.0``.
        label (str): put in front of each legend entry, e.g. ``"lam=100: "``. Default: ``""``.
        shade (bool): shade the steps during which each later task is trained. Default: True.

    Returns:
        Axes: the axes drawn on (one line per task, plus markers for events).
    """
    check_type("history", history, ContinualHistory, where="plot_accuracy")
    check_number("alpha", alpha, where="plot_accuracy", low=0.0, high=1.0)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    marker = "o" if len(history.eval_step) < 5 else None  # a run that stopped at once is still visible
    for k, name in enumerate(history.task_names):
        ax.plot(history.eval_step, history.test_acc[k], color=TASK_COLORS[k % len(TASK_COLORS)], alpha=alpha,
                lw=1.8, marker=marker, label=f"{label}task {name}")
    if shade:
        ends = history.task_start[1:] + [history.step[-1] + 1 if history.step else 0]
        for k, (start, end) in enumerate(zip(history.task_start, ends)):
            if k > 0 and end > start:
                ax.axvspan(start, end, color=TASK_COLORS[k % len(TASK_COLORS)], alpha=0.07, lw=0)
    _mark_events(ax, history, alpha)
    ax.set(xlabel="training step", ylabel="test accuracy", ylim=(0, 1.02))
    ax.legend(loc="center right", fontsize=8)  # between a forgotten A (low) and a learned B (high)
    return ax


def plot_fisher(fisher: list[torch.Tensor], names: list[str] | None = None, ax: Axes | None = None, *,
                bins: int = 40, legend: bool = True) -> Axes:
    """Histogram of the diagonal Fisher, one outline per parameter tensor, on a log axis.

    Args:
        fisher (list[Tensor]): from :func:`course_lib.ewc.fisher_diagonal`.
        names (list[str] or None): a label per tensor (e.g. from ``model.named_parameters()``).
        ax (Axes or None): where to draw. Default: None (a new figure).
        bins (int): bins over the decades spanned. Default: ``40``.
        legend (bool): a legend beside the axes (right), where it covers no data. Default: True.

    Returns:
        Axes: one histogram outline per tensor (zeros are left out: a log axis has no 0).
    """
    where = "plot_fisher"
    check_type("fisher", fisher, (list, tuple), where=where, expected="list of tensors")
    check_relation(len(fisher) > 0, "'fisher' must not be empty", where=where, **{"len(fisher)": 0})
    names = names if names is not None else [f"tensor {i}" for i in range(len(fisher))]
    check_relation(len(names) == len(fisher), "'names' must have one label per tensor of 'fisher'", where=where,
                   **{"len(names)": len(names), "len(fisher)": len(fisher)})
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    values = [f.detach().flatten().double().cpu().numpy() for f in fisher]
    pos = np.concatenate([v[v > 0] for v in values])
    edges = np.logspace(np.log10(pos.min()), np.log10(pos.max()), bins + 1) if len(pos) else np.logspace(-8, 0, bins)
    for i, (v, name) in enumerate(zip(values, names)):
        ax.hist(v[v > 0], bins=edges, histtype="step", lw=1.5, color=plt.cm.viridis(i / max(1, len(values) - 1)),
                label=f"{name} ({v.size} weights)")
    ax.set(xscale="log", yscale="log", xlabel="Fisher value F_i (log scale)", ylabel="number of weights")
    if legend:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


class EWCLab(SliderPanel):
    """Train on task B from a saved model of task A and watch A's accuracy, with lam live.

    The slider sets ``lam`` (0, then 1 to 1e4 in half-decade steps). Moving it while a run goes on
    changes ``lam`` from the next evaluation on (every ``eval_every`` steps) and draws a purple
    line there. The toggle picks the true or empirical Fisher for the next run. **Train on B**
    starts a run (never the panel by itself); the previous run stays on the plot, faded.

    Args:
        model (nn.Module): a classifier already trained on ``tasks[0]``; each run trains a copy.
        tasks (list[DataSplit]): ``[A, B]`` (or more: every task is drawn, the later ones trained).
        lam (float): where the slider starts, one of :data:`LAM_STEPS`. Default: ``0.0``.
        fisher (str): ``"true"`` or ``"empirical"``. Default: ``"true"``.
        num_steps (int): SGD steps per run on B. Default: ``1000``.
        lr (float): SGD learning rate. Default: ``0.05``.
        eval_every (int): steps between evaluations (and frames). Default: ``25``.
        goal (tuple[float, float]): the panel's goal: A's accuracy at least ``goal[0]`` and B's
            at least ``goal[1]`` at the end of a run. Default: ``(0.7, 0.9)``.
        seed (int): seeds the batches and the Fisher's samples (the same for every run). Default: 0.
        device: where to train; None picks CUDA, then MPS, then the CPU.
        max_ghosts (int): earlier runs kept, faded. Default: ``3``.

    Attributes:
        sliders (dict): ``"lam"`` (SelectionSlider), ``"fisher"`` (ToggleButtons). button, status,
        view (LiveFigure). history: the latest run. ghosts: ``(label, history)`` of earlier runs.
    """

    def __init__(self, model, tasks, *, lam: float = 0.0, fisher: str = "true", num_steps: int = 1000,
                 lr: float = 0.05, eval_every: int = 25, goal: tuple[float, float] = (0.7, 0.9), seed: int = 0,
                 device=None, max_ghosts: int = 3, min_interval: float = 0.08, figsize=(10, 3.6)):
        where = "EWCLab"
        check_type("model", model, torch.nn.Module, where=where, expected="torch.nn.Module")
        check_type("tasks", tasks, (list, tuple), where=where, expected="list of DataSplit")
        check_relation(len(tasks) >= 2, "'tasks' must hold task A and at least one more", where=where,
                       **{"len(tasks)": len(tasks)})
        for i, t in enumerate(tasks):
            check_type(f"tasks[{i}]", t, DataSplit, where=where, expected="DataSplit")
        check_choice("lam", lam, LAM_STEPS, where=where)
        check_choice("fisher", fisher, FISHER_KINDS, where=where)
        self.num_steps = check_number("num_steps", num_steps, where=where, low=1, integer=True)
        self.lr = check_number("lr", lr, where=where, low=0.0, low_open=True)
        self.eval_every = check_number("eval_every", eval_every, where=where, low=1, integer=True)
        check_type("goal", goal, tuple, where=where, expected="tuple (acc_A, acc_B)")
        self.goal = tuple(check_number(f"goal[{i}]", g, where=where, low=0.0, high=1.0) for i, g in enumerate(goal))
        self.seed = check_seed(seed, where=where)
        self.max_ghosts = check_number("max_ghosts", max_ghosts, where=where, low=0, integer=True)
        self.device = device
        self.tasks = list(tasks)
        self._start = copy.deepcopy(model).cpu()  # the model of A every run starts from
        self.history: ContinualHistory | None = None
        self.ghosts: list[tuple[str, ContinualHistory]] = []
        self._pending: float | None = None  # a lam from the slider, waiting for the next evaluation
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.running = False

        self.sliders = {
            "lam": W.SelectionSlider(options=[(f"{v:g}", v) for v in LAM_STEPS], value=float(lam),
                                     description="λ (EWC)",
                                     continuous_update=False, style={"description_width": "70px"},
                                     layout=W.Layout(width="420px")),
            "fisher": W.ToggleButtons(options=list(FISHER_KINDS), value=fisher, description="Fisher",
                                      style={"description_width": "70px", "button_width": "90px"}),
        }
        self.button = W.Button(description=f"Train on B ({num_steps} steps)", icon="play", button_style="primary",
                               layout=W.Layout(width="auto"))  # as wide as its label (the default cut it)
        self.button.add_class("train-b-button")
        self.status = W.HTML("Choose λ, then press <b>Train on B</b>.")
        self.view = LiveFigure(1, 2, figsize=figsize, min_interval=min_interval)
        # Controls above the figure, wrapping on a narrow screen (a plain row squeezed the button's label).
        self.widget = panel(W.VBox([controls_row(self.sliders["lam"], self.button), self.sliders["fisher"],
                                    self.status]), self.view.widget)
        self._build_figure()
        self._show_next_run()
        self._wire()
        self.button.on_click(lambda _: self.train())

    def _show_next_run(self) -> None:
        """Say in the figure what the next run will use, so a control moved before training shows at once."""
        self.view.fig.suptitle(f"next run: λ = {self.sliders['lam'].value:g}, {self.sliders['fisher'].value} Fisher",
                               fontsize="small")

    def _build_figure(self) -> None:
        """The axes and the current run's lines, made once; frames only move their data."""
        ax_acc, ax_loss = self.view.axes
        for k, g in enumerate(self.goal):
            ax_acc.axhline(g, color=TASK_COLORS[k], ls=":", lw=1)
        self.lines = [[ax.plot([], [], color=TASK_COLORS[k], lw=2, label=f"task {self.tasks[k].name}")[0]
                       for k in (0, 1)] for ax in (ax_acc, ax_loss)]  # [accuracy, loss] x [A, B]
        self._marks: list = []  # event lines of the current run
        self._ghost_artists: list[list] = []
        ax_acc.set(xlabel="step of training on B", ylabel="test accuracy", ylim=(0, 1.02), xlim=(0, self.num_steps),
                   title="Accuracy while training on B (dotted: the goal)")
        ax_loss.set(xlabel="step of training on B", ylabel="test cross-entropy (log scale)", yscale="log",
                    xlim=(0, self.num_steps), ylim=(1e-2, 10), title="Test loss of A and B")
        ax_acc.legend(loc="lower left", fontsize=8)

    # -- controls ----------------------------------------------------------------------------

    def _on_change(self, change) -> None:
        if change["owner"] is self.sliders["lam"]:
            if self.running:
                with self._lock:
                    self._pending = float(change["new"])  # the training thread applies it
                return
            self.status.value = f"λ = {change['new']:g}: press <b>Train on B</b>."
        else:
            self.status.value = f"{change['new']} Fisher from the next run on: press <b>Train on B</b>."
        if not self.running:
            self._show_next_run()
            self.view.draw_now()

    def train(self) -> None:
        """Start a run in a background thread (the button), so the slider stays live."""
        if self.running:
            return
        self.running = True  # set here, not in the thread: a slider move right after must queue
        self._thread = threading.Thread(target=self._run_safely, daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current run (if any) has finished."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_safely(self) -> None:
        try:
            self.run()
        except Exception as err:  # shown in the panel: a thread's traceback would vanish
            self.status.value = error_html(err)
            self.running = False

    # -- a run -------------------------------------------------------------------------------

    def run(self, changes: dict[int, float] | None = None) -> ContinualHistory:
        """One run on B in the calling thread, from the saved model of A, with the current
        controls. ``changes`` ``{step: lam}`` moves lam at the first evaluation at or after each
        step, as the slider would (tests and notebook checks use it). Returns its history."""
        schedule = dict(sorted((changes or {}).items()))
        for step, value in schedule.items():
            check_number("step", step, where="EWCLab.run", low=0, integer=True)
            check_number("lam", value, where="EWCLab.run", low=0.0)
        self.running = True
        self.view.rest()        # a run right after another starts with full drawing allowances (see LiveFigure.rest)
        if self.history is not None:
            self._add_ghost(self.history)
        self.history = None
        lam, fisher = float(self.sliders["lam"].value), self.sliders["fisher"].value

        def on_eval(state: ContinualState) -> None:
            for s in [s for s in schedule if s <= state.step + 1]:
                state.set_lam(schedule.pop(s))
            with self._lock:
                pending, self._pending = self._pending, None
            if pending is not None:
                state.set_lam(pending)
            self.history = state.history
            if self.view.due():
                self._draw()
                self.view.refresh()

        try:
            self.history = train_sequential(copy.deepcopy(self._start), self.tasks, lam=lam, fisher=fisher,
                                            lr=self.lr, num_steps=self.num_steps, eval_every=self.eval_every,
                                            on_eval=on_eval, skip_first=True, seed=self.seed, device=self.device)
        finally:
            self.running = False
        self._draw()
        self.view.draw_now()
        return self.history

    def goal_met(self) -> bool:
        """True if the latest run ended with A and B at or above the goal."""
        h = self.history
        return h is not None and not h.diverged and h.acc_matrix[-1][0] >= self.goal[0] \
            and h.acc_matrix[-1][1] >= self.goal[1]

    # -- drawing -----------------------------------------------------------------------------

    @staticmethod
    def _label(h: ContinualHistory) -> str:
        """"λ=0→100" from the run's start value and its changes; "(emp.)" for the empirical Fisher."""
        lams = [h.config["lam"]] + [e["lam"] for e in h.events if e["kind"] == "change"]
        return "λ=" + "→".join(f"{v:g}" for v in lams) + ("" if h.config["fisher"] == "true" else " (emp.)")

    def _add_ghost(self, h: ContinualHistory) -> None:
        """Keep a finished run on the plot, faded and labelled; the oldest goes past ``max_ghosts``."""
        self.ghosts.append((self._label(h), h))
        ax_acc, ax_loss = self.view.axes
        artists = [ax.plot(h.eval_step, values[k], color=TASK_COLORS[k], alpha=0.3, lw=1.2)[0]
                   for ax, values in ((ax_acc, h.test_acc), (ax_loss, h.test_loss)) for k in (0, 1)]
        artists.append(ax_acc.annotate(self.ghosts[-1][0], (h.eval_step[-1], h.test_acc[0][-1]), fontsize=7,
                                       color=TASK_COLORS[0], alpha=0.8, ha="right", va="bottom"))
        self._ghost_artists.append(artists)
        while len(self.ghosts) > self.max_ghosts:
            self.ghosts.pop(0)
            for artist in self._ghost_artists.pop(0):
                artist.remove()

    def _draw(self) -> None:
        h = self.history
        if h is None or not h.eval_step:
            return
        for row, values in zip(self.lines, (h.test_acc, h.test_loss)):
            for k, line in enumerate(row):
                line.set_data(h.eval_step, values[k])
        for artist in self._marks:
            artist.remove()
        ax_acc = self.view.axes[0]
        self._marks = [ax_acc.axvline(e["step"], color=COLORS["diverged" if e["kind"] == "diverged" else "event"],
                                      lw=1, ls="--" if e["kind"] == "diverged" else "-")
                       for e in h.events if e["kind"] in ("change", "diverged")]
        self.status.value = self._status(h)

    def _status(self, h: ContinualHistory) -> str:
        a, b = h.test_acc[0][-1], h.test_acc[1][-1]
        text = f"step {h.eval_step[-1]}, λ = {h.lam[-1]:g}: task A {a:.3f}, task B {b:.3f}"
        if h.diverged:
            return text + f" · <span style='color:{COLORS['diverged']}'>{h.events[-1]['text']}</span>"
        if self.running:
            return text
        done = "✓ goal reached" if self.goal_met() else f"goal: A ≥ {self.goal[0]:g} and B ≥ {self.goal[1]:g}"
        return f"{text} · <b>{done}</b>"
