"""Figures and slider panels of notebook 11, on runs made up from a known law (no training)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib import ui  # noqa: E402
from course_lib.scaling import ChinchillaFit, fit_chinchilla, fit_power_law  # noqa: E402
from course_lib.ui.scaling import ComputeBudgetExplorer, SpectrumExplorer  # noqa: E402
from course_lib.sweep import RunConfig, RunResult, SweepResult  # noqa: E402

H = 2.5
LAW = ChinchillaFit(E=H, A=40.0, B=300.0, alpha=1.0, beta=0.8)
RANKS, BUDGETS = (1, 2, 4, 8, 16), (4096, 16384, 65536)


def _sweep(law=LAW, H=H, budgets=BUDGETS, exponent=1.0):
    runs = []
    for d in RANKS:
        for D in budgets:
            cfg = RunConfig(rank=d, tokens=D, exponent=exponent)
            runs.append(RunResult(cfg, float(law.predict(cfg.num_params, D)), H, D, 0.01))
    return SweepResult(runs, H, H + 1.0, 0.1)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _floor_lines(ax):
    return [ln for ln in ax.get_lines() if np.allclose(ln.get_ydata(), H) and len(ln.get_ydata()) == 2]


def test_loss_vs_params_and_tokens_draw_every_curve_and_the_floor():
    s = _sweep()
    fit = fit_power_law(s.select(tokens=max(BUDGETS)).N, s.select(tokens=max(BUDGETS)).loss, n_bootstrap=0)
    ax = ui.scaling.plot_loss_vs_params(s, fit)
    assert len(ax.get_lines()) == len(BUDGETS) + 2  # one per budget, the fit, the floor
    assert len(_floor_lines(ax)) == 1 and ax.get_xscale() == ax.get_yscale() == "log"
    ax = ui.scaling.plot_loss_vs_tokens(s)
    assert len(ax.get_lines()) == len(RANKS) + 1 and len(_floor_lines(ax)) == 1


def test_residual_map_shows_fit_over_run_minus_one():
    s = _sweep()
    off = ChinchillaFit(E=H, A=40.0, B=300.0, alpha=1.0, beta=0.8 * 1.05)  # a slightly wrong law
    ax = ui.scaling.plot_fit_residuals(s, off)
    shown = ax.images[0].get_array()  # (ranks, budgets)
    expected = 100 * (off.predict(s.N, s.D) / s.loss - 1)
    assert np.allclose(np.asarray(shown), expected.reshape(len(RANKS), len(BUDGETS)))


def test_compute_frontier_marks_the_closed_form_optimum():
    C = 1e9
    ax = ui.scaling.plot_compute_frontier(LAW, C)
    (star,) = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    N, D = LAW.compute_optimal(C)
    assert np.allclose(star.get_xdata(), [N]) and np.allclose(star.get_ydata(), [D])
    assert np.isclose(6 * N * D, C)


def test_extrapolation_plot_labels_the_error():
    s = _sweep().select(tokens=max(BUDGETS))
    small = s.N < s.N.max()
    fit = fit_power_law(s.N[small], s.loss[small] * 1.001, n_bootstrap=0)
    ax = ui.scaling.plot_extrapolation(s, fit, s.N.max())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("predicted" in t and "%" in t for t in labels)


# ---- slider panels, driven from Python ------------------------------------------------------


def test_spectrum_explorer_follows_the_slider():
    # Three "languages" whose excess falls as N^-alpha with alpha = 2a - 1.
    by = {a: _sweep(ChinchillaFit(E=H, A=40.0 * 100 ** (2 * a - 2), B=1e-9, alpha=2 * a - 1, beta=1.0),
                    budgets=(65536,), exponent=a) for a in (1.0, 1.5, 2.0)}
    panel = SpectrumExplorer(by)
    assert panel.sliders["exponent"].value == 1.0
    for a in (1.5, 2.0, 1.0):
        before = panel.view.frames
        panel.sliders["exponent"].value = a
        assert panel.view.frames == before + 1
        assert f"α = {panel.fits[a].alpha:.2f}" in panel.status.value
        assert abs(panel.fits[a].alpha - (2 * a - 1)) < 0.05  # the panel's fits recover the law
    assert panel.sliders["exponent"]._dom_classes == ("exponent-slider",)


def test_spectrum_explorer_bad_input_is_named():
    with pytest.raises(ValueError, match=r"SpectrumExplorer\(\): 'by_exponent' must hold at least 2 sweeps"):
        SpectrumExplorer({1.0: _sweep()})
    with pytest.raises(ValueError, match=r"'exponent' must be one of the swept exponents, got exponent=3.0"):
        SpectrumExplorer({1.0: _sweep(), 2.0: _sweep()}, exponent=3.0)


def test_compute_budget_explorer_moves_the_optimum():
    s = _sweep()
    fit = fit_chinchilla(s.N, s.D, s.loss, n_bootstrap=0)
    panel = ComputeBudgetExplorer(fit, budgets=(1e7, 1e11), floor=H, runs=s)
    optima = []
    for C in (1e8, 1e9, 1e10):
        before = panel.view.frames
        panel.sliders["budget"].value = C
        assert panel.view.frames == before + 1
        C = panel.sliders["budget"].value  # the slider rounds to its step
        N, D = panel.optimum
        assert np.allclose((N, D), fit.compute_optimal(C)) and np.isclose(6 * N * D, C)
        assert np.allclose(panel._star.get_xdata(), [N]) and np.allclose(panel._profile_star.get_xdata(), [N])
        assert f"{D / N:,.0f} tokens per parameter" in panel.status.value
        optima.append(N)
    assert optima == sorted(optima)  # more compute, bigger model


def test_the_budget_slider_reaches_both_budgets():
    # 4.2 decades: steps of exactly 0.05 decade left the largest budget out of reach by dragging.
    panel = ComputeBudgetExplorer(LAW, budgets=(3.3e6, 5.2e10))
    w = panel.sliders["budget"]
    steps = (w.max - w.min) / w.step
    assert steps == pytest.approx(round(steps), abs=1e-9) and w.step == pytest.approx(0.05, rel=0.05)
    assert (10 ** w.min, 10 ** w.max) == pytest.approx((3.3e6, 5.2e10), rel=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(budgets=(1e9, 1e8)), r"ComputeBudgetExplorer\(\): 'budgets' must be \(lowest, highest\) with highest > lowest"),
    (dict(budgets=(0, 1e8)), r"'budgets\[0\]' must be a float > 0, got budgets\[0\]=0"),
    (dict(budgets=(1e7, 1e8), C=1e9), r"'C' must be a float in \[1e\+07, 1e\+08\], got C=1000000000.0"),
])
def test_compute_budget_explorer_bad_input_is_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ComputeBudgetExplorer(LAW, **kwargs)
