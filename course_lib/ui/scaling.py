"""Figures and slider panels of the scaling-law lesson (notebook 11).

Drawing only: the runs come from :mod:`course_lib.sweep`, the fits from
:mod:`course_lib.scaling`. Every function takes axes (``ax=None`` makes a figure) and returns
them, so figures compose and tests can count artists. The exact entropy rate ``H`` is drawn
the same way in every figure (black, dotted): the floor no model can go below.

Both panels answer at once: the sweeps are run (or read from the cache) before the panel is
built, so moving a slider only redraws. They follow :class:`course_lib.ui.panels.SliderPanel`:
a ``sliders`` dict a test drives from Python, a CSS class per control, a status line."""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, TwoSlopeNorm

from .._validation import check_number, check_relation, check_type
from ..scaling import CHINCHILLA_TOKENS_PER_PARAM, ChinchillaFit, PowerLawFit, fit_power_law
from ..sweep import SweepResult
from .live import LiveFigure
from .panels import SliderPanel, panel

__all__ = ["FLOOR_STYLE", "plot_loss_vs_params", "plot_loss_vs_tokens", "plot_excess_vs_params",
           "plot_compute_frontier", "plot_fit_residuals", "plot_extrapolation", "SpectrumExplorer",
           "ComputeBudgetExplorer"]


FLOOR_STYLE = dict(color="black", ls=":", lw=1.5)


_FIT_STYLE = dict(color="#D55E00", ls="--", lw=2)


_CHINCHILLA_STYLE = dict(color="#7f7f7f", ls="-.", lw=1.5)


def _axes(ax: Axes | None, figsize=(6, 4)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return check_type("ax", ax, Axes, where="plotting_scaling", expected="matplotlib Axes or None")


def _floor(ax: Axes, H: float) -> None:
    ax.axhline(H, **FLOOR_STYLE, label=f"entropy rate H = {H:.3f} (floor)")


def _no_minor_labels(ax: Axes) -> None:
    """Readable log axes. Matplotlib labels minor ticks when an axis spans less than about two
    decades, and those labels overlap. Instead: no minor labels, and on a short log x-axis
    major ticks at 1, 2 and 5 times each power of ten, written as plain numbers."""
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    lo, hi = ax.get_xlim()
    if ax.get_xscale() == "log" and 0 < lo and hi / lo < 10**2.5:
        ax.xaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))


def _plain_log_y(ax: Axes) -> None:
    """Losses span less than a decade: label a log y-axis with plain numbers (2.7, 3.0, 3.4),
    not with 10^0-multiples that nobody can read."""
    lo, hi = ax.get_ylim()
    ax.yaxis.set_major_locator(mticker.FixedLocator(np.geomspace(lo, hi, 6)))
    ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%.2f"))
    _no_minor_labels(ax)


def _tokens_label(D: float) -> str:
    k = np.log2(D)
    return f"D = 2^{k:.0f}" if float(k).is_integer() else f"D = {D:.3g}"


def plot_loss_vs_params(sweep: SweepResult, fit: PowerLawFit | None = None, ax: Axes | None = None) -> Axes:
    """Final loss against model size N (log-log), one line per token budget, the floor H.

    Args:
        sweep (SweepResult): a grid of runs.
        fit (PowerLawFit, optional): ``L(N)`` fitted at one budget, drawn dashed.
        ax (Axes, optional): where to draw. Default: a new figure.
    """
    groups = [(sweep.select(tokens=D), _tokens_label(D)) for D in sweep.budgets]
    return _loss_against(ax, "N", groups, "viridis", sweep, fit, "fit: E + A N^-α, α", "Loss vs model size")


def plot_loss_vs_tokens(sweep: SweepResult, fit: PowerLawFit | None = None, ax: Axes | None = None) -> Axes:
    """Final loss against token budget D (log-log), one line per model size, the floor H."""
    groups = [(s, f"N = {s.runs[0].num_params:,}") for s in (sweep.select(rank=d) for d in sweep.ranks)]
    return _loss_against(ax, "D", groups, "plasma", sweep, fit, "fit: E + B D^-β, β", "Loss vs data")


def _loss_against(ax, x: str, groups, cmap: str, sweep: SweepResult, fit, fit_label: str, title: str) -> Axes:
    """Shared body of the two loss plots: one line per group, the fit, the floor, plain labels."""
    ax = _axes(ax)
    colors = plt.get_cmap(cmap)(np.linspace(0, 0.9, len(groups)))
    for (s, label), color in zip(groups, colors):
        ax.plot(getattr(s, x), s.loss, "o-", ms=3, color=color, label=label)
    if fit is not None:
        grid = np.geomspace(getattr(sweep, x).min(), getattr(sweep, x).max() * 2, 200)
        ax.plot(grid, fit.predict(grid), **_FIT_STYLE, label=f"{fit_label} = {fit.alpha:.2f}")
    _floor(ax, sweep.entropy_rate)
    ax.set(xscale="log", yscale="log", xlabel={"N": "parameters N", "D": "training tokens D"}[x],
           ylabel="loss (nats / token)", title=title)
    _plain_log_y(ax)
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_excess_vs_params(sweep: SweepResult, fit: PowerLawFit | None = None, ax: Axes | None = None, *,
                          color: str = "#0072B2", label: str | None = None) -> Axes:
    """The excess loss ``L - H`` against N (log-log): a power law is a straight line of slope -alpha."""
    ax = _axes(ax)
    excess = sweep.loss - sweep.entropy_rate
    ax.plot(sweep.N, excess, "o", color=color, label=label or "runs: L − H")
    if fit is not None:
        n = np.geomspace(sweep.N.min(), sweep.N.max(), 200)
        ax.plot(n, fit.predict(n) - sweep.entropy_rate, color=color, ls="--", lw=1.5,
                label=f"fit, α = {fit.alpha:.2f} ± {fit.alpha_std:.2f}")
    ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="excess loss L − H (nats)")
    _no_minor_labels(ax)
    return ax


def _contour_grid(fit: ChinchillaFit, N_range, D_range, n: int = 120):
    N = np.geomspace(*N_range, n)
    D = np.geomspace(*D_range, n)
    NN, DD = np.meshgrid(N, D)  # (n, n): rows are D, columns are N
    return NN, DD, fit.predict(NN, DD)


def plot_compute_frontier(fit: ChinchillaFit, C: float | None = None, ax: Axes | None = None, *,
                          N_range=None, D_range=None, runs: SweepResult | None = None,
                          title: str = "Iso-loss contours and the compute-optimal frontier",
                          colorbar: bool = True) -> Axes:
    """Iso-loss contours of a fitted ``L(N, D)``, the compute-optimal path, and a budget.

    The frontier is the closed form ``N_opt(C), D_opt(C)`` for ``C = 6 N D``. The grey line is
    Chinchilla's rule of thumb, ``D = 20 N``. For a budget ``C`` the iso-FLOP line
    ``D = C / (6 N)`` is drawn with its optimum (a star).

    Args:
        fit (ChinchillaFit): the law.
        C (float, optional): a compute budget in FLOPs.
        N_range, D_range (tuple, optional): axis ranges. Default: 3 decades around the frontier
            at ``C``, or around Chinchilla's 70B / 1.4T when ``C`` is None.
        runs (SweepResult, optional): the runs the law was fitted on, drawn as dots.
        title (str): axes title.
        colorbar (bool): add a colour bar (a panel redrawing the same contours adds it once).
    """
    ax = _axes(ax, figsize=(6, 4.5))
    check_type("fit", fit, ChinchillaFit, where="plot_compute_frontier")
    if C is not None:
        check_number("C", C, where="plot_compute_frontier", low=0, low_open=True)
    if N_range is None or D_range is None:
        N0, D0 = fit.compute_optimal(C) if C is not None else (7e10, 1.4e12)
        N_range = N_range or (N0 / 30, N0 * 30)
        D_range = D_range or (D0 / 30, D0 * 30)
    NN, DD, L = _contour_grid(fit, N_range, D_range)
    # Colour = the law's own reducible loss L - E (positive by construction; a fitted E can sit
    # a little below the true floor H, so L - H could be negative near the corner).
    excess = L - fit.E
    levels = np.geomspace(excess.min() * 1.01, excess.max() * 0.99, 12)
    cs = ax.contourf(NN, DD, excess, levels=levels, norm=LogNorm(), cmap="viridis_r", alpha=0.85)
    if colorbar:
        plt.colorbar(cs, ax=ax, label="predicted L − E (nats)", format="%.2g")
    # The frontier over budgets whose optimum lies inside the axes.
    budgets = np.geomspace(6 * N_range[0] * D_range[0], 6 * N_range[1] * D_range[1], 200)
    Nopt, Dopt = fit.compute_optimal(budgets)
    ax.plot(Nopt, Dopt, color="white", lw=2.5, label="compute-optimal N, D")
    n = np.geomspace(*N_range, 50)
    ax.plot(n, CHINCHILLA_TOKENS_PER_PARAM * n, **_CHINCHILLA_STYLE, label="Chinchilla: 20 tokens / parameter")
    if C is not None:
        ax.plot(n, C / (6 * n), color="#D55E00", lw=1, label=f"C = 6ND = {C:.2g} FLOPs")
        N_c, D_c = fit.compute_optimal(C)
        ax.plot([N_c], [D_c], "*", ms=16, color="#D55E00", mec="white",
                label=f"optimum: N = {N_c:.3g}, D = {D_c:.3g} ({D_c / N_c:.0f} tok/param)")
    if runs is not None:
        ax.plot(runs.N, runs.D, ".", color="black", ms=3, label="runs")
    ax.set(xscale="log", yscale="log", xlim=N_range, ylim=D_range, xlabel="parameters N", ylabel="tokens D",
           title=title)
    _no_minor_labels(ax)
    ax.legend(fontsize=7, loc="upper left")
    return ax


def plot_fit_residuals(sweep: SweepResult, fit: ChinchillaFit, ax: Axes | None = None) -> Axes:
    """Heat map of the joint fit's error, ``100 * (L_fit / L - 1)`` percent, per rank and budget.

    A good law leaves small residuals with no pattern; a band of one colour (a whole row or
    column) is a regime the formula does not describe.
    """
    ax = _axes(ax, figsize=(7, 4))
    ranks, budgets = sweep.ranks, sweep.budgets
    grid = np.full((len(ranks), len(budgets)), np.nan)
    for r in sweep.runs:
        i, j = ranks.index(r.config.rank), budgets.index(r.config.tokens)
        grid[i, j] = 100 * (fit.predict(r.num_params, r.config.tokens) / r.loss - 1)
    lim = max(0.5, float(np.nanmax(np.abs(grid))))
    im = ax.imshow(grid, cmap="RdBu_r", norm=TwoSlopeNorm(0, -lim, lim), aspect="auto", origin="lower")
    for i in range(len(ranks)):
        for j in range(len(budgets)):
            dark = abs(grid[i, j]) > 0.6 * lim  # white text on the saturated cells
            ax.text(j, i, f"{grid[i, j]:+.1f}", ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")
    ax.grid(False)
    ax.set_xticks(range(len(budgets)), [f"2^{np.log2(b):.0f}" for b in budgets], fontsize=7)
    ax.set_yticks(range(len(ranks)), [f"{sweep.select(rank=d).runs[0].num_params:,}" for d in ranks], fontsize=7)
    ax.set(xlabel="training tokens D", ylabel="parameters N", title="Joint fit error (%): fit / run − 1")
    plt.colorbar(im, ax=ax, label="%")
    return ax


def plot_extrapolation(sweep: SweepResult, fit: PowerLawFit, held_out: int, ax: Axes | None = None) -> Axes:
    """Fit on the smaller models, predict the held-out largest: fitted points, prediction, truth.

    Args:
        sweep (SweepResult): runs at one budget.
        fit (PowerLawFit): fitted on the runs smaller than ``held_out``.
        held_out (int): N of the held-out model.
    """
    ax = _axes(ax)
    used = sweep.N < held_out
    ax.plot(sweep.N[used], sweep.loss[used], "o", color="#0072B2", label="fitted on")
    truth = float(sweep.loss[sweep.N == held_out][0])
    pred = float(fit.predict(held_out))
    ax.plot([held_out], [truth], "s", color="black", ms=8, label=f"held out: {truth:.4f}")
    ax.plot([held_out], [pred], "x", color="#D55E00", ms=10, mew=2,
            label=f"predicted: {pred:.4f} ({100 * (pred / truth - 1):+.2f}%)")
    n = np.geomspace(sweep.N.min(), held_out * 1.5, 200)
    ax.plot(n, fit.predict(n), **{**_FIT_STYLE, "lw": 1.2}, label="fitted law")
    _floor(ax, sweep.entropy_rate)
    ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="loss (nats / token)",
           title="Extrapolation to the largest model")
    _plain_log_y(ax)
    ax.legend(fontsize=7)
    return ax


_STYLE = {"description_width": "150px"}  # "spectrum exponent a" in full (130 px cut it)


_WIDE = W.Layout(width="420px")


class SpectrumExplorer(SliderPanel):
    """Move the language's spectrum exponent ``a``; see the fitted model-size exponent follow.

    Left: excess loss ``L - H`` against N at the largest budget for the chosen ``a`` (the
    other languages faint), with its fitted power law. Right: the fitted ``alpha`` of every
    language against ``a``, with the line ``alpha = 2a - 1``: a rank-d model misses the
    directions ``k > d`` of the logits, whose energy ``sum_{k>d} s_k^2`` falls like ``d^(1-2a)``.

    Args:
        by_exponent (dict[float, SweepResult]): one sweep over model sizes per exponent
            (``course_sweeps()[1]``), each at one token budget.
        exponent (float, optional): where the slider starts. Default: 1.0 if present, else the first.

    Attributes:
        fits (dict[float, PowerLawFit]): ``L(N) = E + A N^-alpha`` per exponent.
        sliders (dict): ``"exponent"``. view (LiveFigure). status (HTML).
    """

    def __init__(self, by_exponent: dict, exponent: float | None = None, min_interval: float = 0.0):
        where = "SpectrumExplorer"
        check_type("by_exponent", by_exponent, dict, where=where, expected="dict of exponent -> SweepResult")
        check_relation(len(by_exponent) >= 2, "'by_exponent' must hold at least 2 sweeps", where=where,
                       exponents=sorted(by_exponent))
        for a, s in by_exponent.items():
            check_type(f"by_exponent[{a}]", s, SweepResult, where=where)
        self.sweeps = dict(sorted(by_exponent.items()))
        # One fit per language, once: the slider then only redraws.
        # 50 resamples: error bars to about 10%; the bootstrap is most of a fit's time (one fit per language).
        self.fits: dict[float, PowerLawFit] = {a: fit_power_law(s.N, s.loss, n_bootstrap=50)
                                                for a, s in self.sweeps.items()}
        options = list(self.sweeps)
        start = exponent if exponent is not None else (1.0 if 1.0 in options else options[0])
        check_relation(start in options, "'exponent' must be one of the swept exponents", where=where,
                       exponent=exponent, swept=options)
        self.view = LiveFigure(1, 2, figsize=(10, 3.8), min_interval=min_interval)
        self.sliders = {"exponent": W.SelectionSlider(options=options, value=start, description="spectrum exponent a",
                                                      continuous_update=True, style=_STYLE, layout=_WIDE)}
        self.status = W.HTML()
        self.widget = panel(W.VBox([self.sliders["exponent"], self.status]), self.view.widget)
        self._wire()
        self.redraw()

    def _draw(self) -> None:
        a = self.settings()["exponent"]
        ax_l, ax_r = self.view.axes
        ax_l.clear()
        ax_r.clear()
        for other, s in self.sweeps.items():
            if other != a:
                ax_l.plot(s.N, s.loss - s.entropy_rate, "o-", color="#bbbbbb", ms=2, lw=0.8)
        plot_excess_vs_params(self.sweeps[a], self.fits[a], ax_l, label=f"a = {a:g}")
        ax_l.set_title(f"Language with spectrum s_k ∝ k^-{a:g}")
        ax_l.legend(fontsize=7)
        exps = np.array(list(self.fits))
        alphas = np.array([f.alpha for f in self.fits.values()])
        errs = np.array([f.alpha_std for f in self.fits.values()])
        ax_r.errorbar(exps, alphas, yerr=errs, fmt="o-", color="#0072B2", label="fitted α")
        ax_r.plot(exps, 2 * exps - 1, color="#7f7f7f", ls="--", label="2a − 1 (tail energy of the spectrum)")
        ax_r.plot([a], [self.fits[a].alpha], "*", ms=16, color="#D55E00")
        ax_r.set(xlabel="spectrum exponent a (the data)", ylabel="model-size exponent α", title="The data sets α")
        ax_r.legend(fontsize=7)
        f = self.fits[a]
        self.status.value = (f"a = {a:g}: H = {self.sweeps[a].entropy_rate:.3f}, fitted E = {f.E:.3f}, "
                             f"α = {f.alpha:.2f} ± {f.alpha_std:.2f}")


class ComputeBudgetExplorer(SliderPanel):
    """Move the compute budget ``C = 6 N D``; see the optimal model size and data move.

    Left: iso-loss contours of the fitted ``L(N, D)`` (colour: ``L - E``), the compute-optimal frontier, Chinchilla's
    20 tokens per parameter, and the budget's iso-FLOP line with its optimum. Right: the loss
    along that line (too small a model, too little data, or just right).

    Args:
        fit (ChinchillaFit): the joint law (fitted on the sweep).
        budgets (tuple): (lowest, highest) budget of the slider in FLOPs.
        C (float, optional): where the slider starts. Default: the geometric middle.
        floor (float, optional): the known entropy rate, drawn as the floor.
        runs (SweepResult, optional): the runs behind the fit, as dots.

    Attributes:
        optimum (tuple): ``(N_opt, D_opt)`` at the current budget. sliders: ``"budget"``.
    """

    def __init__(self, fit: ChinchillaFit, budgets: tuple, C: float | None = None, floor: float | None = None,
                 runs: SweepResult | None = None, min_interval: float = 0.0):
        where = "ComputeBudgetExplorer"
        check_type("fit", fit, ChinchillaFit, where=where)
        lo = check_number("budgets[0]", budgets[0], where=where, low=0, low_open=True)
        hi = check_number("budgets[1]", budgets[1], where=where, low=0, low_open=True)
        check_relation(hi > lo, "'budgets' must be (lowest, highest) with highest > lowest", where=where,
                       budgets=budgets)
        C = float(np.sqrt(lo * hi)) if C is None else check_number("C", C, where=where, low=lo, high=hi)
        self.fit, self.floor, self.runs = fit, floor, runs
        # Fixed axes for every budget, so the star moves and the picture does not jump.
        n_lo, d_lo = fit.compute_optimal(lo)
        n_hi, d_hi = fit.compute_optimal(hi)
        self.N_range = (min(n_lo, lo / (6 * d_lo)) / 10, n_hi * 10)
        self.D_range = (d_lo / 10, d_hi * 10)
        self.view = LiveFigure(1, 2, figsize=(11, 4.2), min_interval=min_interval)
        # Room between the colour bar and the right panel: their two labels ("predicted L - E",
        # "predicted loss L") sat a few pixels apart and read as one.
        self.view.fig.get_layout_engine().set(wspace=0.06)
        # Steps of about 0.05 decade that end exactly at both budgets (with 0.05 the largest was out of reach).
        e_lo, e_hi = float(np.log10(lo)), float(np.log10(hi))
        step = (e_hi - e_lo) / max(1, round((e_hi - e_lo) / 0.05))
        self.sliders = {"budget": W.FloatLogSlider(value=C, base=10, min=e_lo, max=e_hi, step=step,
                                                   description="compute C (FLOPs)", readout_format=".2e",
                                                   continuous_update=True, style=_STYLE, layout=_WIDE)}
        self.status = W.HTML()
        self.widget = panel(W.VBox([self.sliders["budget"], self.status]), self.view.widget)
        self._wire()
        self.redraw()

    @property
    def optimum(self) -> tuple[float, float]:
        N, D = self.fit.compute_optimal(self.settings()["budget"])
        return float(N), float(D)

    def _draw_static(self) -> None:
        """Contours, frontier and runs do not depend on C: drawn once, then only lines move."""
        ax_l, ax_r = self.view.axes
        plot_compute_frontier(self.fit, None, ax_l, N_range=self.N_range, D_range=self.D_range, runs=self.runs,
                              title="Where should the compute go?")
        (self._iso,) = ax_l.plot([], [], color="#D55E00", lw=1.2, label="budget: D = C / 6N")
        (self._star,) = ax_l.plot([], [], "*", ms=16, color="#D55E00", mec="white", label="optimum for C")
        ax_l.legend(fontsize=7, loc="upper left")
        (self._profile,) = ax_r.plot([], [], color="#0072B2", lw=2, label="L(N, C / 6N)")
        (self._profile_star,) = ax_r.plot([], [], "*", ms=14, color="#D55E00", label="optimum")
        if self.floor is not None:
            ax_r.axhline(self.floor, **FLOOR_STYLE, label=f"entropy rate H = {self.floor:.3f}")
        ax_r.set(xscale="log", xlabel="parameters N (the rest of the budget is data)", ylabel="predicted loss L (nats)",
                 title="One budget, many splits (iso-FLOP profile)")
        ax_r.legend(fontsize=7)

    def _draw(self) -> None:
        if not hasattr(self, "_iso"):
            self._draw_static()
        C = self.settings()["budget"]
        ax_l, ax_r = self.view.axes
        N, D = self.optimum
        n = np.geomspace(*self.N_range, 60)
        self._iso.set_data(n, C / (6 * n))
        self._star.set_data([N], [D])
        n = N * np.geomspace(1 / 30, 30, 200)  # 1.5 decades either side of the optimum
        self._profile.set_data(n, self.fit.predict(n, C / (6 * n)))
        self._profile_star.set_data([N], [self.fit.predict(N, D)])
        ax_r.relim()
        ax_r.autoscale_view()
        self.status.value = (f"C = {C:.3g} FLOPs: optimal N = {N:,.0f} parameters, D = {D:,.0f} tokens, "
                             f"{D / N:,.0f} tokens per parameter (Chinchilla's rule: 20)")
