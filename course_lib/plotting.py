"""Plots of loss curves, in one course theme. The only module (with ``widgets``) that imports
matplotlib and seaborn: compute modules stay importable without them.

Every function takes ``ax=None`` and returns the Axes, so it composes into subplots and a test
can count the lines it drew.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes

from ._validation import check_number, check_type
from .curves import ema

__all__ = ["set_course_theme", "plot_loss_curves", "COLORS"]

# One palette for the whole course: train is always blue, validation always orange, so a
# student never has to read the legend twice.
COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "baseline": "#7f7f7f", "floor": "#2ca02c",
          "event": "#9467bd", "diverged": "#d62728"}


def set_course_theme(lecture: bool = False) -> None:
    """Apply the course's seaborn theme (white grid, colour-blind-safe palette).

    Args:
        lecture (bool): larger fonts and lines for a projector. Default False.
    """
    sns.set_theme(context="talk" if lecture else "notebook", style="whitegrid", palette="colorblind",
                  rc={"figure.figsize": (7, 3.5), "axes.titleweight": "bold", "figure.dpi": 100,
                      "figure.constrained_layout.use": True})


def _finite(xs, ys):
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    keep = np.isfinite(ys)
    return xs[keep], ys[keep]


def plot_loss_curves(
    history,
    ax: Axes | None = None,
    *,
    log_y: bool = False,
    smooth: float = 0.0,
    baseline: float | None = None,
    floor: float | None = None,
    label: str | None = None,
    show_val: bool = True,
    show_events: bool = True,
    alpha: float = 1.0,
) -> Axes:
    """Draw the training (and validation) loss of a run, with its events.

    Args:
        history (History): a run from ``course_lib.train.fit``.
        ax (Axes or None): where to draw; None makes a new figure.
        log_y (bool): logarithmic loss axis (loss curves span decades). Default False.
        smooth (float): EMA beta in [0, 1) for the training loss; the raw curve stays, faint,
            behind the smoothed one. Default 0 (raw only).
        baseline (float or None): a horizontal line for a trivial predictor; defaults to
            ``history.baseline``.
        floor (float or None): a horizontal line for the irreducible loss, if known.
        label (str or None): prefix for the legend entries (for comparing runs).
        show_val (bool): draw the validation loss. Default True.
        show_events (bool): mark hyperparameter changes, early stopping and divergence.
        alpha (float): opacity, for faded "ghost" runs. Default 1.

    Returns:
        Axes.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from course_lib.train import History
        >>> h = History(step=[0, 1, 2], train_loss=[1.0, 0.5, 0.25], lr=[0.1] * 3)
        >>> len(plot_loss_curves(h).lines)
        1
    """
    where = "plot_loss_curves"
    check_number("smooth", smooth, where=where, low=0.0, high=1.0, high_open=True)
    check_number("alpha", alpha, where=where, low=0.0, high=1.0)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    check_type("ax", ax, Axes, where=where, expected="matplotlib Axes or None")
    prefix = f"{label}: " if label else ""
    steps, loss = _finite(history.step, history.train_loss)
    if smooth > 0:
        ax.plot(steps, loss, color=COLORS["train"], alpha=0.25 * alpha, lw=0.8)
        loss = ema(loss, beta=smooth)
    ax.plot(steps, loss, color=COLORS["train"], alpha=alpha, lw=1.5, label=f"{prefix}train")
    if show_val and len(history.val_loss):
        vs, vl = _finite(history.val_step, history.val_loss)
        ax.plot(vs, vl, color=COLORS["val"], alpha=alpha, lw=1.8, marker="o", ms=3, label=f"{prefix}validation")
    baseline = history.baseline if baseline is None else baseline
    if baseline is not None:
        ax.axhline(baseline, color=COLORS["baseline"], ls="--", lw=1, label="baseline (trivial predictor)")
    if floor is not None:
        ax.axhline(floor, color=COLORS["floor"], ls=":", lw=1.5, label="irreducible loss")
    if show_events:
        _draw_events(ax, history)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)" if log_y else "loss")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small")
    return ax


def _draw_events(ax: Axes, history) -> None:
    """Hyperparameter changes as thin vertical lines; divergence as a red cross at the last
    finite loss with a label, so a blown-up run reads as an event, not a broken chart."""
    finite = [(s, v) for s, v in zip(history.step, history.train_loss) if math.isfinite(v)]
    for ev in history.events:
        if ev["kind"] in ("diverged", "exploded"):
            s, v = finite[-1] if finite else (ev["step"], 1.0)
            ax.plot([s], [v], marker="X", ms=12, color=COLORS["diverged"], ls="none", label="diverged")
            ax.annotate(f"diverged at step {ev['step']}", (s, v), textcoords="offset points", xytext=(-10, 8),
                        ha="right", color=COLORS["diverged"], fontsize="small")
        else:
            ax.axvline(ev["step"], color=COLORS["event"], lw=0.8, alpha=0.6)
            ax.annotate(ev["text"], (ev["step"], 1.0), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize="x-small", color=COLORS["event"])
