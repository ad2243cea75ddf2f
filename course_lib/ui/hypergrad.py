"""Figures and the slider panel of lesson 10: they draw what :mod:`course_lib.hypergrad` computes.

* :func:`plot_response`: the validation loss after training, ``f(rho)``, over a grid of
  ``rho = log lambda``, with the grid's best point, a tangent from a hypergradient, and the
  path of a hyper-optimisation on top of it.
* :func:`plot_hyper_losses`: the response against hyper-step, for one run or several.
* :func:`plot_mode_costs`: memory and time of reverse and forward mode against the unroll length.
* :class:`HyperStepExplorer`: sliders for the unroll length ``T``, the inner learning rate and
  the starting ``rho``, a reverse/forward toggle (with the measured memory and time), and a
  button that runs the hyper-steps. The response curve of each ``(T, lr)`` is computed once and
  cached; the panel never trains until the button is pressed.
"""

from __future__ import annotations

import math

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from .. import hypergrad as hg
from .._validation import check_number, check_type
from .plotting import COLORS
from .live import LiveFigure
from .panels import SliderPanel

__all__ = ["plot_response", "plot_hyper_losses", "plot_mode_costs", "HyperStepExplorer"]

_CURVE = dict(color="#0072B2", lw=2)          # the response f(rho)
_STEPS = dict(color="#D55E00", marker="o", ms=4, lw=1)   # the hyper-steps
_BEST = dict(marker="*", ms=15, color="#009E73", ls="none", mec="white")
_TANGENT = dict(color="#CC79A7", lw=2.5)
_MODE_COLORS = {"reverse": "#0072B2", "forward": "#D55E00", "finite_diff": "#7f7f7f"}


def _axes(ax: Axes | None, where: str, figsize=(6, 4)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return check_type("ax", ax, Axes, where=where, expected="matplotlib Axes or None")


def plot_response(search: hg.SearchResult, *, run: hg.HyperRun | None = None,
                  tangent: tuple[float, float, float] | None = None, ax: Axes | None = None,
                  label: str = "f(ρ): validation loss after training") -> Axes:
    """The response curve, its best grid point, a tangent and a hyper-run's path.

    Args:
        search (SearchResult): a one-hyperparameter grid (``grid_search``); diverged points
            (inf/NaN) are marked with a red ``x`` at the top of the axes.
        run (HyperRun, optional): its ``rhos`` and ``losses`` are drawn as connected dots.
        tangent (tuple, optional): ``(rho, f, df/drho)``: a line of that slope through that point.
        ax (Axes, optional): where to draw. Default: a new figure.
        label (str): the curve's legend entry.

    Returns:
        Axes: with the curve, the best point and, if given, the tangent and the path.
    """
    ax = _axes(ax, "plot_response")
    rho = np.array([r[0] for r in search.rhos])
    f = np.array(search.losses, dtype=float)
    ok = ~np.array(search.diverged, dtype=bool)
    ax.plot(rho[ok], f[ok], **_CURVE, label=label)
    if (~ok).any():
        top = f[ok].max() if ok.any() else 1.0
        ax.plot(rho[~ok], np.full((~ok).sum(), top), "x", color=COLORS["diverged"], ms=7,
                label="training diverged")
    ax.plot([search.best_rho[0]], [search.best_loss], **_BEST, label=f"grid best: {search.best_loss:.3f}")
    if tangent is not None and all(math.isfinite(v) for v in tangent):
        r0, f0, g0 = tangent
        xs = np.array([r0 - 1.0, r0 + 1.0])
        ax.plot(xs, f0 + g0 * (xs - r0), **_TANGENT, label=f"tangent: df/dρ = {g0:+.3g}")
        ax.plot([r0], [f0], "o", color=_TANGENT["color"], ms=8)
    if run is not None and run.rhos:
        ax.plot([r[0] for r in run.rhos], run.losses, **_STEPS, label=f"{len(run.rhos) - 1} hyper-steps")
    ax.set(xlabel="ρ = log λ (ridge strength, log scale)", ylabel="validation loss (½ MSE)",
           title="The response: validation loss after training")
    ax.legend(fontsize=8, loc="upper right")
    return ax


def plot_hyper_losses(runs: dict, *, best: float | None = None, ax: Axes | None = None) -> Axes:
    """The response against hyper-step, one line per run (``{label: HyperRun}``); dashed: ``best``."""
    ax = _axes(ax, "plot_hyper_losses")
    check_type("runs", runs, dict, where="plot_hyper_losses", expected="dict of label -> HyperRun")
    colors = iter([_STEPS["color"], "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"])
    for label, run in runs.items():
        ax.plot(range(len(run.losses)), run.losses, marker="o", ms=3, color=next(colors, None), label=label)
        if run.diverged:
            ax.plot([len(run.losses) - 1], [np.nan], "x", color=COLORS["diverged"])
    if best is not None:
        ax.axhline(best, color="#7f7f7f", ls="--", lw=1.5, label=f"grid optimum {best:.3f}")
    ax.set(xlabel="hyper-step", ylabel="validation loss (½ MSE)", title="Validation loss per hyper-step")
    ax.legend(fontsize=8)
    return ax


def plot_mode_costs(costs: dict, axes=None):
    """Memory and time of each mode against the unroll length ``T`` (log-log).

    Args:
        costs (dict): ``{mode: {T: Hypergradient}}``.
        axes (pair of Axes, optional): (memory, time). Default: a new 1 x 2 figure.

    Returns:
        tuple: the two Axes.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    ax_m, ax_t = axes
    for mode, by_T in costs.items():
        Ts = sorted(by_T)
        style = dict(marker="o", color=_MODE_COLORS.get(mode), label=mode)
        ax_m.plot(Ts, [by_T[T].memory_bytes / 1024 for T in Ts], **style)
        ax_t.plot(Ts, [by_T[T].seconds * 1000 for T in Ts], **style)
    ax_m.set(xscale="log", yscale="log", xlabel="unroll length T (steps)", ylabel="memory kept (KiB)",
             title="Memory: reverse grows with T")
    ax_t.set(xscale="log", yscale="log", xlabel="unroll length T (steps)", ylabel="time (ms)",
             title="Time per hypergradient")
    for ax in axes:
        ax.legend(fontsize=8)
    return ax_m, ax_t


class HyperStepExplorer(SliderPanel):
    """Tune ridge's ``rho = log lambda`` by hyper-steps, on top of the response curve.

    Left: ``f(rho)`` over the grid for the current ``(T, lr)`` (computed once per setting and
    cached), the current starting ``rho`` with its tangent from the hypergradient, and, after
    **run hyper-steps**, the path of Adam on ``rho``. Right: the validation loss per hyper-step.
    The status line gives the hypergradient and the measured memory and time of the chosen mode.

    Args:
        problem (HyperProblem): a ``"ridge"`` problem (:func:`course_lib.hypergrad.make_ridge_problem`).
        rhos (Tensor, optional): the grid of ``rho``. Default: 39 points in ``[-8, 1.5]``.
        num_steps (int): the starting unroll length, one of :attr:`STEPS`. Default: ``300``.
        lr_scale (float): the starting inner learning rate as a multiple of
            ``problem.default_lr``, one of :attr:`LR_SCALES`. Default: ``1.0``.
        rho0 (float): the starting ``rho``, in ``[-8, 1.5]``. Default: ``-4.0``.
        num_hyper_steps (int): hyper-steps per run. Default: ``20``.
        hyper_lr (float): Adam's step on ``rho``. Default: ``0.3``.

    Attributes:
        sliders (dict): ``"num_steps"``, ``"lr"``, ``"rho0"``, ``"mode"``; ``button``: runs the steps.
        curves (dict): ``(T, lr) -> SearchResult``; ``run`` (HyperRun or None); ``cost`` (Hypergradient).
    """

    STEPS = (2, 5, 10, 20, 30, 50, 100, 300)
    LR_SCALES = (0.03, 0.1, 0.3, 0.5, 1.0, 1.2)

    def __init__(self, problem: hg.HyperProblem, *, rhos=None, num_steps: int = 300, lr_scale: float = 1.0,
                 rho0: float = -4.0, num_hyper_steps: int = 20, hyper_lr: float = 0.3):
        where = "HyperStepExplorer"
        check_type("problem", problem, hg.HyperProblem, where=where)
        if problem.model != "ridge":
            raise ValueError(f"{where}(): 'problem.model' must be 'ridge', got problem.model={problem.model!r}")
        for name, value, options in (("num_steps", num_steps, self.STEPS), ("lr_scale", lr_scale, self.LR_SCALES)):
            if value not in options:
                raise ValueError(f"{where}(): '{name}' must be one of {', '.join(map(str, options))}, "
                                 f"got {name}={value!r}")
        rho0 = check_number("rho0", rho0, where=where, low=-8.0, high=1.5)
        self.problem = problem
        self.rhos = torch.linspace(-8, 1.5, 39, dtype=torch.float64) if rhos is None else rhos
        self.num_hyper_steps = check_number("num_hyper_steps", num_hyper_steps, where=where, low=1, integer=True)
        self.hyper_lr = check_number("hyper_lr", hyper_lr, where=where, low=0.0, low_open=True)
        self.curves: dict = {}
        self.run: hg.HyperRun | None = None
        self._run_key = None
        self.cost: hg.Hypergradient | None = None
        style, wide = {"description_width": "150px"}, W.Layout(width="440px")
        lr_options = [(f"{s:g} × 1/λ_max = {s * problem.default_lr:.3g}", s * problem.default_lr)
                      for s in self.LR_SCALES]
        self.sliders = {
            "num_steps": W.SelectionSlider(options=list(self.STEPS), value=num_steps, description="unroll length T",
                                           style=style, layout=wide),
            "lr": W.SelectionSlider(options=lr_options, value=lr_scale * problem.default_lr,
                                    description="inner learning rate", style=style, layout=wide),
            "rho0": W.FloatSlider(value=rho0, min=-8.0, max=1.5, step=0.5, description="starting ρ = log λ",
                                  style=style, layout=wide),
            "mode": W.ToggleButtons(options=["reverse", "forward"], value="reverse", description="mode",
                                    style=style),
        }
        self.button = W.Button(description="run hyper-steps", button_style="primary", icon="play")
        self.button.add_class("run-hyper-steps")
        self.button.on_click(lambda _: self.run_hyper_steps())
        self.view = LiveFigure(1, 2, figsize=(11, 4.0), min_interval=0.0)
        self.status = W.HTML()
        self.widget = W.VBox([*self.sliders.values(), self.button, self.status, self.view.widget])
        self._wire()
        self.redraw()

    def _key(self) -> tuple:
        return self.sliders["num_steps"].value, self.sliders["lr"].value

    def curve(self) -> hg.SearchResult:
        """The response over the grid for the current ``(T, lr)`` (cached)."""
        key = self._key()
        if key not in self.curves:
            self.curves[key] = hg.grid_search(self.problem, self.rhos, num_steps=key[0], lr=key[1])
        return self.curves[key]

    def run_hyper_steps(self) -> hg.HyperRun:
        """What the button does: Adam on ``rho`` from the starting ``rho``, then redraw."""
        T, lr = self._key()
        self.run = hg.hyper_optimize(self.problem, self.sliders["rho0"].value, num_hyper_steps=self.num_hyper_steps,
                                     hyper_lr=self.hyper_lr, num_steps=T, lr=lr, mode=self.sliders["mode"].value)
        self._run_key = (T, lr, self.sliders["rho0"].value)
        self.redraw()
        return self.run

    def _draw(self) -> None:
        T, lr = self._key()
        rho0, mode = self.sliders["rho0"].value, self.sliders["mode"].value
        search = self.curve()
        self.cost = hg.hypergrad(self.problem, rho0, num_steps=T, lr=lr, mode=mode)
        run = self.run if self._run_key == (T, lr, rho0) else None  # a run from other settings is stale
        ax_l, ax_r = self.view.axes
        ax_l.clear()
        ax_r.clear()
        c = self.cost
        tangent = None if c.diverged else (rho0, c.value, c.grad.item())  # no slope through a blow-up
        plot_response(search, run=run, tangent=tangent, ax=ax_l)
        ax_l.set_title(f"The response after T = {T} steps")
        if run is not None:
            plot_hyper_losses({f"{mode} mode": run}, best=search.best_loss, ax=ax_r)
        else:
            ax_r.axhline(search.best_loss, color="#7f7f7f", ls="--", lw=1.5, label=f"grid optimum {search.best_loss:.3f}")
            ax_r.set(xlabel="hyper-step", ylabel="validation loss (½ MSE)",
                     title="Press “run hyper-steps”", xlim=(0, self.num_hyper_steps))
            ax_r.legend(fontsize=8)
        if c.diverged:
            self.status.value = (f"<b>ρ = {rho0:g}: training diverged</b> (λ = {math.exp(rho0):.3g} makes the step "
                                 f"lr·(λ_max + λ) exceed 2); pick a smaller ρ or learning rate.")
            return
        found = "" if run is None else (f"; after {len(run.rhos) - 1} hyper-steps ρ = {run.rhos[-1][0]:.2f}, "
                                        f"f = {run.losses[-1]:.3f} ({run.stop_reason})")
        self.status.value = (f"f(ρ = {rho0:g}) = {c.value:.3f}, df/dρ = {c.grad.item():+.3g}. "
                             f"<b>{mode} mode</b>: {c.memory_bytes / 1024:,.1f} KiB kept, {1000 * c.seconds:.0f} ms. "
                             f"Grid best: ρ = {search.best_rho[0]:.2f}, f = {search.best_loss:.3f}{found}")
