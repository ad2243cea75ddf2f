"""Figures and the slider panel of notebook 10, under Agg, driven from Python (small problem)."""

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import hypergrad as hg  # noqa: E402
from course_lib.ui import hypergrad as draw  # noqa: E402

F64 = dict(dtype=torch.float64)
RHOS = torch.linspace(-8, 1.5, 8, **F64)  # a coarse grid keeps each panel test under a second or two


@pytest.fixture(scope="module")
def problem():
    return hg.make_ridge_problem(12, 10, 40, seed=1, device="cpu")


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_plot_response_draws_curve_best_tangent_path_and_marks_blow_ups(problem):
    too_big = math.log(4 / problem.default_lr)  # lr (lambda_max + lambda) > 2: diverges
    search = hg.grid_search(problem, torch.tensor([-3.0, -1.0, 0.0, too_big], **F64), num_steps=100)
    run = hg.hyper_optimize(problem, -3.0, num_hyper_steps=3, num_steps=100)
    ax = draw.plot_response(search, run=run, tangent=(-1.0, 0.9, -0.2))
    labels = [ln.get_label() for ln in ax.get_lines()]
    # curve, diverged marks, best star, tangent + its point, the path
    assert len(ax.get_lines()) == 6, labels
    curve, crosses = ax.get_lines()[:2]
    assert list(curve.get_xdata()) == [-3.0, -1.0, 0.0] and len(crosses.get_xdata()) == 1
    assert labels[1] == "training diverged" and labels[2].startswith("grid best")
    tangent = ax.get_lines()[3]
    np.testing.assert_allclose(tangent.get_ydata(), [0.9 + 0.2, 0.9 - 0.2])  # slope -0.2 over rho -2 .. 0
    assert list(ax.get_lines()[5].get_xdata()) == [r[0] for r in run.rhos]
    assert ax.get_legend() is not None


def test_plot_response_without_extras_and_with_a_non_finite_tangent(problem):
    search = hg.grid_search(problem, torch.linspace(-3, 0, 4, **F64), num_steps=20)
    ax = draw.plot_response(search, tangent=(0.0, float("nan"), 1.0))
    assert len(ax.get_lines()) == 2  # the curve and the best point; no cross, no tangent


def test_plot_hyper_losses_one_line_per_run_and_the_optimum(problem):
    runs = {f"start {r0}": hg.hyper_optimize(problem, r0, num_hyper_steps=2, num_steps=20) for r0 in (-3.0, 0.0)}
    ax = draw.plot_hyper_losses(runs, best=0.5)
    assert len(ax.get_lines()) == 3 and ax.get_lines()[0].get_label() == "start -3.0"
    assert list(ax.get_lines()[1].get_ydata()) == runs["start 0.0"].losses


def test_plot_mode_costs_draws_memory_and_time_per_mode(problem):
    costs = {m: {T: hg.hypergrad(problem, 0.0, num_steps=T, mode=m) for T in (10, 20)} for m in ("reverse", "forward")}
    ax_m, ax_t = draw.plot_mode_costs(costs)
    assert len(ax_m.get_lines()) == len(ax_t.get_lines()) == 2
    rev = ax_m.get_lines()[0].get_ydata()
    assert list(rev) == [costs["reverse"][T].memory_bytes / 1024 for T in (10, 20)] and rev[1] > 1.5 * rev[0]
    assert list(ax_t.get_lines()[1].get_ydata()) == [1000 * costs["forward"][T].seconds for T in (10, 20)]
    assert ax_m.get_yscale() == ax_t.get_xscale() == "log"


def test_panel_first_frame_waits_for_the_button(problem):
    e = draw.HyperStepExplorer(problem, rhos=RHOS, num_steps=50, rho0=-3.0)
    assert e.run is None and e.view.frames >= 1 and "grid best" in e.status.value.lower()
    assert set(e.sliders) == {"num_steps", "lr", "rho0", "mode"}
    ax_l, ax_r = e.view.axes
    assert len(ax_l.get_lines()) == 4  # curve, best, tangent, its point: no path before the button
    assert len(ax_r.get_lines()) == 1  # only the grid optimum
    assert len(e.curves) == 1


@pytest.mark.parametrize("name, values", [
    ("num_steps", (2, 300)),
    ("lr", "extremes"),
    ("rho0", (-8.0, 1.5)),
    ("mode", ("forward", "reverse")),
])
def test_panel_at_every_slider_extreme(problem, name, values):
    e = draw.HyperStepExplorer(problem, rhos=RHOS, num_steps=20)
    if values == "extremes":
        values = (e.sliders["lr"].options[0][1], e.sliders["lr"].options[-1][1])
    for v in values:
        frames = e.view.frames
        e.sliders[name].value = v
        assert e.view.frames > frames, f"{name}={v} did not redraw"
        assert "color:#d62728" not in e.status.value, e.status.value  # no refused setting
        assert e.cost.mode == e.sliders["mode"].value
    assert e.settings()[name] == values[-1]


def test_panel_reports_divergence_instead_of_a_tangent(problem):
    e = draw.HyperStepExplorer(problem, rhos=RHOS, num_steps=300, lr_scale=1.2, rho0=1.5)
    assert e.cost.diverged and "diverged" in e.status.value
    assert len(e.view.axes[0].get_lines()) == 3  # curve, crosses, best: no tangent through a blow-up


def test_button_runs_hyper_steps_and_a_new_setting_makes_them_stale(problem):
    e = draw.HyperStepExplorer(problem, rhos=RHOS, num_steps=50, rho0=-3.0, num_hyper_steps=4)
    e.button.click()
    assert e.run is not None and len(e.run.rhos) == 5
    ax_l, ax_r = e.view.axes
    assert len(ax_l.get_lines()) == 5 and len(ax_r.get_lines()) == 2  # + path; per-step losses + optimum
    assert "after 4 hyper-steps" in e.status.value
    e.sliders["num_steps"].value = 100  # the run belongs to T = 50: no longer drawn
    assert len(e.view.axes[0].get_lines()) == 4 and "hyper-steps ρ" not in e.status.value
    assert len(e.curves) == 2


def test_forward_mode_reports_less_memory_than_reverse(problem):
    e = draw.HyperStepExplorer(problem, rhos=RHOS, num_steps=100)
    reverse = e.cost.memory_bytes
    e.sliders["mode"].value = "forward"
    assert e.cost.memory_bytes * 20 < reverse and "forward mode" in e.status.value


def test_panel_messages(problem):
    with pytest.raises(ValueError, match=r"HyperStepExplorer\(\): 'num_steps' must be one of 2, 5, 10"):
        draw.HyperStepExplorer(problem, rhos=RHOS, num_steps=7)
    with pytest.raises(ValueError, match=r"'rho0' must be a float in \[-8, 1.5\], got rho0=3.0"):
        draw.HyperStepExplorer(problem, rhos=RHOS, rho0=3.0)
    with pytest.raises(ValueError, match=r"'problem.model' must be 'ridge'"):
        draw.HyperStepExplorer(hg.make_mlp_problem(width=4, device="cpu"))
