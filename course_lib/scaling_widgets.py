"""Slider panels of the scaling-law lesson (notebook 11).

Both panels answer at once: the sweeps are run (or read from the cache) before the panel is
built, so moving a slider only redraws. They follow :class:`course_lib.widgets.SliderPanel`:
a ``sliders`` dict a test drives from Python, a CSS class per control, a status line.
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np

from ._validation import check_number, check_relation, check_type
from .plotting_scaling import FLOOR_STYLE, plot_compute_frontier, plot_excess_vs_params
from .scaling import ChinchillaFit, PowerLawFit, fit_power_law
from .sweep import SweepResult
from .widgets import LiveFigure, SliderPanel

__all__ = ["SpectrumExplorer", "ComputeBudgetExplorer"]

_STYLE = {"description_width": "130px"}
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
        self.fits: dict[float, PowerLawFit] = {a: fit_power_law(s.N, s.loss, n_bootstrap=100)
                                                for a, s in self.sweeps.items()}
        options = list(self.sweeps)
        start = exponent if exponent is not None else (1.0 if 1.0 in options else options[0])
        check_relation(start in options, "'exponent' must be one of the swept exponents", where=where,
                       exponent=exponent, swept=options)
        self.view = LiveFigure(1, 2, figsize=(10, 3.8), min_interval=min_interval)
        self.sliders = {"exponent": W.SelectionSlider(options=options, value=start, description="spectrum exponent a",
                                                      continuous_update=True, style=_STYLE, layout=_WIDE)}
        self.status = W.HTML()
        self.widget = W.VBox([self.sliders["exponent"], self.status, self.view.widget])
        self._wire()
        self.redraw()

    def _draw(self) -> None:
        a = self.sliders["exponent"].value
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
        self.sliders = {"budget": W.FloatLogSlider(value=C, base=10, min=np.log10(lo), max=np.log10(hi), step=0.05,
                                                   description="compute C (FLOPs)", readout_format=".2e",
                                                   continuous_update=True, style=_STYLE, layout=_WIDE)}
        self.status = W.HTML()
        self.widget = W.VBox([self.sliders["budget"], self.status, self.view.widget])
        self._wire()
        self.redraw()

    @property
    def optimum(self) -> tuple[float, float]:
        N, D = self.fit.compute_optimal(self.sliders["budget"].value)
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
        ax_r.set(xscale="log", xlabel="parameters N (the rest of the budget is data)", ylabel="predicted loss",
                 title="One budget, many splits (iso-FLOP profile)")
        ax_r.legend(fontsize=7)

    def _draw(self) -> None:
        if not hasattr(self, "_iso"):
            self._draw_static()
        C = self.sliders["budget"].value
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
