"""Figures and the slider panel of cyclical and one-cycle schedules (notebook 05): the learning
rate (and momentum) a schedule sets at every step."""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.axes import Axes

from .._validation import check_choice, check_number, check_type
from ..schedules import cyclic_schedule, one_cycle_schedule
from .live import LiveFigure
from .panels import controls_row, panel
from .plotting import COLORS

__all__ = ["SchedulePlot", "preview_schedule", "SchedulePreviewer"]


class SchedulePlot:
    """LR (left axis) and momentum (right axis, dashed) of a schedule over its steps, with the
    artists kept so sliders can update them in place."""

    def __init__(self, ax: Axes | None = None, *, log_lr: bool = False):
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3), layout="constrained")
        check_type("ax", ax, Axes, where="SchedulePlot", expected="matplotlib Axes or None")
        self.ax = ax
        self.mom_ax = ax.twinx()
        self.mom_ax.grid(False)
        self.lr_line = ax.plot([], [], color=COLORS["train"], lw=2, label="learning rate")[0]
        self.mom_line = self.mom_ax.plot([], [], color=COLORS["val"], lw=1.5, ls="--", label="momentum")[0]
        if log_lr:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("learning rate", color=COLORS["train"])
        self.mom_ax.set_ylabel("momentum", color=COLORS["val"])

    def update(self, schedule, num_steps: int | None = None) -> None:
        lrs, moms = schedule.values(num_steps) if hasattr(schedule, "values") else (
            np.array([schedule(t) for t in range(check_number("num_steps", num_steps, where="preview_schedule",
                                                                    low=1, integer=True))]), None)
        steps = np.arange(len(lrs))
        self.lr_line.set_data(steps, lrs)
        self.ax.set_xlim(0, max(1, len(lrs) - 1))
        lo, hi = float(lrs.min()), float(lrs.max())
        if self.ax.get_yscale() == "log":
            self.ax.set_ylim(lo / 1.5, hi * 1.5)
        else:
            self.ax.set_ylim(0, hi * 1.08)
        if moms is None:
            self.mom_line.set_data([], [])
            self.mom_ax.set_visible(False)
        else:
            self.mom_ax.set_visible(True)
            self.mom_line.set_data(steps, moms)
            pad = max(0.01, 0.1 * float(moms.max() - moms.min()))
            self.mom_ax.set_ylim(float(moms.min()) - pad, float(moms.max()) + pad)
        name = getattr(schedule, "name", "schedule")
        self.ax.set_title(f"{name}: lr {lo:.2g} .. {hi:.2g} over {len(lrs)} steps", fontsize="medium")


def preview_schedule(schedule, num_steps: int | None = None, ax: Axes | None = None, *,
                     log_lr: bool = False) -> Axes:
    """Plot a schedule's LR and momentum over ``num_steps`` *before* any training (a dry run:
    the schedule is a plain function of the step, so nothing has to be trained to see it).

    Args:
        schedule (Schedule or callable): from ``course_lib.cyclic_schedule`` /
            ``one_cycle_schedule``, or any ``step -> lr`` function.
        num_steps (int or None): steps to show; None uses ``schedule.num_steps``.
        ax (Axes or None): where to draw; None makes a new figure.
        log_lr (bool): logarithmic LR axis. Default False.

    Returns:
        Axes: the LR axes; the momentum axes is ``ax.figure.axes`` after it (a twin).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from course_lib.schedules import one_cycle_schedule
        >>> ax = preview_schedule(one_cycle_schedule(max_lr=0.1, total_steps=100))
        >>> len(ax.lines[0].get_xdata()), round(float(max(ax.lines[0].get_ydata())), 3)
        (100, 0.1)
    """
    p = SchedulePlot(ax, log_lr=log_lr)
    p.update(schedule, num_steps)
    return p.ax


class SchedulePreviewer:
    """Sliders for a cyclical or one-cycle schedule; the LR/momentum preview redraws at once.

    A setting the schedule rejects (say ``max_lr <= base_lr``) shows the course's error message
    in the status line instead of raising, and the plot keeps the last valid schedule.

    Args:
        kind (str): ``"cyclic"`` or ``"one_cycle"``.
        num_steps (int): steps previewed (cyclic; one-cycle previews its ``total_steps``). Default 600.

    Attributes:
        sliders (dict): name -> widget (drive them from Python: ``p.sliders["max_lr"].value = 0.1``).
        schedule: the schedule now shown. plot (SchedulePlot), view (LiveFigure), status (HTML).
    """

    def __init__(self, kind: str = "one_cycle", num_steps: int = 600, min_interval: float = 0.0):
        self.kind = check_choice("kind", kind, ("cyclic", "one_cycle"), where="SchedulePreviewer")
        self.num_steps = check_number("num_steps", num_steps, where="SchedulePreviewer", low=2, integer=True)
        self.view = LiveFigure(figsize=(7, 3), min_interval=min_interval)
        self.plot = SchedulePlot(self.view.axes)
        style = {"description_width": "120px"}
        log = dict(base=10, style=style, continuous_update=True, readout_format=".2g")
        if kind == "cyclic":
            self.sliders = {
                "base_lr": W.FloatLogSlider(value=1e-3, min=-5, max=0, description="base_lr", **log),
                "max_lr": W.FloatLogSlider(value=1e-2, min=-4, max=1, description="max_lr", **log),
                "step_size_up": W.IntSlider(value=100, min=1, max=400, description="step_size_up", style=style),
                "mode": W.Dropdown(options=["triangular", "triangular2", "exp_range"], value="triangular",
                                   description="mode", style=style),
                "gamma": W.FloatSlider(value=0.995, min=0.95, max=1.0, step=0.001, readout_format=".3f",
                                       description="gamma", style=style),
                "cycle_momentum": W.Checkbox(value=True, description="cycle momentum"),
            }
        else:
            self.sliders = {
                "max_lr": W.FloatLogSlider(value=0.1, min=-4, max=1, description="max_lr", **log),
                "total_steps": W.IntSlider(value=num_steps, min=10, max=5000, step=10, description="total_steps",
                                           style=style),
                "pct_start": W.FloatSlider(value=0.3, min=0.05, max=0.95, step=0.05, description="pct_start",
                                           style=style),
                "div_factor": W.FloatLogSlider(value=25.0, min=0, max=3, description="div_factor", **log),
                "final_div_factor": W.FloatLogSlider(value=1e4, min=0, max=6, description="final_div_factor", **log),
                "anneal_strategy": W.Dropdown(options=["cos", "linear"], value="cos", description="anneal",
                                              style=style),
                "three_phase": W.Checkbox(value=False, description="three phases"),
                "cycle_momentum": W.Checkbox(value=True, description="cycle momentum"),
            }
        for name, w in self.sliders.items():
            w.add_class(f"{name.replace('_', '-')}-slider")  # stable handles for browser tests
            w.observe(self._on_change, names="value")
        self.status = W.HTML()
        self.schedule = None
        ws = list(self.sliders.values())
        half = (len(ws) + 1) // 2
        self.widget = panel(controls_row(W.VBox(ws[:half]), W.VBox(ws[half:])), self.view.widget, self.status)
        self._redraw()

    def show(self) -> "SchedulePreviewer":
        from .demos import picker_for
        display(picker_for(self) or self.widget)      # with the lesson's demos above, if any
        self.view.refresh(force=True)
        return self

    def _on_change(self, change) -> None:
        self._redraw()

    def settings(self) -> dict:
        """The current slider values, as keyword arguments of the schedule's constructor."""
        return {name: w.value for name, w in self.sliders.items()}

    def _redraw(self) -> None:

        try:
            if self.kind == "cyclic":
                schedule = cyclic_schedule(**self.settings())
            else:
                schedule = one_cycle_schedule(**self.settings())
        except (ValueError, TypeError) as err:  # a setting the schedule rejects: say why, keep the plot
            self.status.value = f"<span style='color:#d62728'>{err}</span>"
            return
        self.schedule = schedule
        self.plot.update(schedule, self.num_steps if self.kind == "cyclic" else None)
        self.status.value = f"<code>{_describe(schedule)}</code>"
        self.view.draw_now()


def _describe(schedule) -> str:
    """The call that builds this schedule, to copy into your own code."""
    fn = "one_cycle_schedule" if schedule.name == "one_cycle" else "cyclic_schedule"
    args = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in schedule.params.items())
    return f"{fn}({args})"
