"""Lessons 07-11's prepared demos replayed on the lessons' own panels (marker ``slow``).

``replay(demo)`` alone plays these demos on small stand-ins (``ui.demo_standins``: seconds, for the
quick suite). Here each panel is built as its notebook builds it: the same library calls with the
same arguments, checked against the notebook's source so that the two cannot drift apart silently;
then the demo is replayed on it, its recorded end state asserted there, and what its script tells the
class to watch checked on the numbers the panel's status line showed after each keyframe. Fast mode
(``COURSE_FAST=1``) changes only what the notebooks change with it (lesson 09's step count, lesson
11's sweep grid).
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from figure_checks import text_problems
from test_ui_demos import check_panel_end_state

from course_lib.ui.demos import DEMOS, apply_keyframe, keyframes

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "cpu"


@pytest.fixture(autouse=True, scope="module")
def _fast_mode_and_a_fresh_cache(tmp_path_factory):
    # As the notebook tests run the lessons: in fast mode (lesson 11's small sweep grid; the class
    # grid is minutes of training), with a results cache of its own, so that nothing is left in the
    # checkout and the run does not depend on what an earlier run cached.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_FAST", "1")
        mp.setenv("COURSE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


def _source(stem: str) -> str:
    """The code of a lesson notebook, all cells joined."""
    path = next((ROOT / "notebooks").glob(f"{stem}_*.ipynb"))
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _in_notebook(stem: str, *calls: str) -> None:
    """Each call, as written here, is in the notebook: the panel below is the notebook's."""
    code = _source(stem)
    missing = [c for c in calls if c not in code]
    assert not missing, f"notebook {stem} no longer builds its panel with {missing}: update this test's builder"


def _lesson_07():
    from course_lib.matryoshka import make_frozen_features
    from course_lib.ui.matryoshka import MatryoshkaPanel
    _in_notebook("07", "X, y = make_frozen_features(5000, seed=0)", "X_train, y_train, X_test, y_test = X[:4000], "
                 "y[:4000], X[4000:], y[4000:]", "EPOCHS = 10",
                 "MatryoshkaPanel(X_train, y_train, num_epochs=EPOCHS, device=DEVICE)")
    X, y = make_frozen_features(5000, seed=0)
    return MatryoshkaPanel(X[:4000], y[:4000], num_epochs=10, device=DEVICE)


def _lesson_08():
    from course_lib import MLP
    from course_lib.ewc import make_tasks, train_sequential
    from course_lib.ui.ewc import EWCLab
    _in_notebook("08", "STEPS = 1500 ", "LR = 0.05 ", "tasks = make_tasks(2, seed=0)", "torch.manual_seed(0)\n"
                 "model_A = cl.MLP(50, 10, width=100, depth=2)\n"
                 "history_A = train_sequential(model_A, tasks[:1], lr=LR, num_steps=STEPS, device=DEVICE)",
                 "EWCLab(model_A, tasks, num_steps=STEPS, lr=LR, goal=(0.7, 0.9), device=DEVICE)")
    tasks = make_tasks(2, seed=0)
    torch.manual_seed(0)
    model_a = MLP(50, 10, width=100, depth=2)
    train_sequential(model_a, tasks[:1], lr=0.05, num_steps=1500, device=DEVICE)
    return EWCLab(model_a, tasks, num_steps=1500, lr=0.05, goal=(0.7, 0.9), device=DEVICE)


def _lesson_09():
    from course_lib.device import fast_mode
    from course_lib.local_learning import make_checkerboard
    from course_lib.ui.local_learning import LocalLearningLab
    _in_notebook("09", "STEPS = 600 if FAST else 1000", "data = ll.make_checkerboard(4000, cells=5, seed=0)",
                 "ll_ui.LocalLearningLab(data, num_steps=STEPS, device=DEVICE)")
    return LocalLearningLab(make_checkerboard(4000, cells=5, seed=0), num_steps=600 if fast_mode() else 1000,
                            device=DEVICE)


def _lesson_10():
    from course_lib import hypergrad as hg
    from course_lib.ui.hypergrad import HyperStepExplorer
    _in_notebook("10", "problem = hg.make_ridge_problem(device=DEVICE)", "hg_ui.HyperStepExplorer(problem)")
    return HyperStepExplorer(hg.make_ridge_problem(device=DEVICE))


@functools.cache                     # the sweeps come from the disk cache; the fit is the slow part (minutes)
def _lesson_11_sweeps():
    import course_lib as cl
    _in_notebook("11", 'grid, by_exponent = cl.course_sweeps(device="cpu")',
                 "lang = cl.MarkovLanguage(vocab_size=64, exponent=1.0, seed=0)", "H, U = lang.entropy_rate,",
                 "joint = cl.fit_chinchilla(grid.N, grid.D, grid.loss, n_bootstrap=50)",
                 "C_lo, C_hi = 6 * grid.N.min() * grid.D.min(), 6 * grid.N.max() * grid.D.max()")
    grid, by_exponent = cl.course_sweeps(device="cpu", progress=False)
    return grid, by_exponent, cl.fit_chinchilla(grid.N, grid.D, grid.loss, n_bootstrap=50)


def _lesson_11_budget():
    import course_lib as cl
    from course_lib.ui.scaling import ComputeBudgetExplorer
    _in_notebook("11", "ComputeBudgetExplorer(joint, budgets=(C_lo, C_hi), floor=H, runs=grid)")
    grid, _, joint = _lesson_11_sweeps()
    H = cl.MarkovLanguage(vocab_size=64, exponent=1.0, seed=0).entropy_rate
    budgets = (6 * grid.N.min() * grid.D.min(), 6 * grid.N.max() * grid.D.max())
    return ComputeBudgetExplorer(joint, budgets=budgets, floor=H, runs=grid)


def _lesson_11_spectrum():
    import course_lib as cl
    from course_lib.ui.scaling import SpectrumExplorer
    _in_notebook("11", "SpectrumExplorer(by_exponent)")
    _, by_exponent = cl.course_sweeps(device="cpu", progress=False)   # the spectrum needs no fit
    return SpectrumExplorer(by_exponent)


PANELS = {"MatryoshkaPanel": _lesson_07, "EWCLab": _lesson_08, "LocalLearningLab": _lesson_09,
          "HyperStepExplorer": _lesson_10, "ComputeBudgetExplorer": _lesson_11_budget,
          "SpectrumExplorer": _lesson_11_spectrum}
ON_LESSON_PANELS = [d for d in DEMOS if d.lesson in {"07", "08", "09", "10", "11"}]


def _numbers(pattern: str, text: str) -> list[float]:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in the status line {text!r}"
    return [float(g.replace(",", "")) for g in found.groups()]


def _adam_evens_out_sgd_follows(statuses):
    ratios = [_numbers(r"gradient ratio .*?<b>([\d.]+)</b>, step ratio <b>([\d.]+)</b>", s) for s in statuses]
    (g_adam, r_adam), (g_sgd, r_sgd) = ratios
    assert g_adam > 1.2 and g_sgd > 1.2, ratios                  # the small slice gets larger gradients
    assert abs(r_adam - 1) < abs(g_adam - 1) / 2, ratios          # Adam: steps nearer the same size
    assert r_sgd == pytest.approx(g_sgd, rel=0.05), ratios        # SGD: steps follow the gradients


def _penalty_holds_a(statuses):
    (a0, b0), (a30, b30) = (_numbers(r"task A ([\d.]+), task B ([\d.]+)", s) for s in statuses)
    assert a30 > a0 + 0.02, statuses                              # lambda = 30 holds task A higher
    assert b30 <= b0 + 0.02, statuses                             # and B learns no better


def _gap_to_backprop(statuses):
    acc, best, gap = _numbers(r"accuracy ([\d.]+); backprop's run scored ([\d.]+) \(gap ([+-][\d.]+)\)",
                              statuses[-1])
    assert gap == pytest.approx(best - acc, abs=0.0015), statuses[-1]


def _tangent_points_downhill(statuses):
    for s in statuses:
        rho, slope, best = _numbers(r"f\(ρ = ([-\d.]+)\) = [\d.]+, df/dρ = ([-+\d.e]+)\..*Grid best: ρ = ([-\d.]+)", s)
        if abs(rho - best) > 0.5:
            assert (slope < 0) == (rho < best), s                 # downhill is towards the grid's best rho


def _hyper_steps_walk_down(statuses):
    f0, best, rho, f = _numbers(r"f\(ρ = -6\) = ([\d.]+),.*Grid best: ρ = ([-\d.]+), f = [\d.]+; after \d+ "
                                r"hyper-steps ρ = ([-\d.]+), f = ([\d.]+)", statuses[-1])
    assert f < f0 and abs(rho - best) < abs(-6 - best), statuses[-1]


def _budget_grows_both(statuses):
    (c_lo, n_lo, d_lo, tpp_lo), (c_hi, n_hi, d_hi, tpp_hi) = (
        _numbers(r"C = ([\d.e+]+) FLOPs: optimal N = ([\d,]+) parameters, D = ([\d,]+) tokens, ([\d,]+) tokens", s)
        for s in statuses)
    assert n_hi > n_lo and d_hi > d_lo, statuses                  # model and data grow together
    assert abs(math.log(tpp_hi / tpp_lo)) < 0.5 * math.log(c_hi / c_lo), statuses   # far less than C


def _alpha_climbs(statuses):
    a_lo, a_hi = (_numbers(r"α = ([-\d.]+) ±", s)[0] for s in statuses)
    assert a_hi > a_lo, statuses


# What each demo's script tells the class to watch, checked on the statuses the lesson's panel showed
# after each keyframe (the numbers are the real panel's, not a stand-in's).
CLAIMS = {"Adam evens out the steps, SGD does not": _adam_evens_out_sgd_follows,
          "no penalty forgets A, a penalty holds it": _penalty_holds_a,
          "backprop against eight local chunks": _gap_to_backprop,
          "the tangent follows the starting rho": _tangent_points_downhill,
          "hyper-steps walk down the response": _hyper_steps_walk_down,
          "a bigger budget: model and data grow together": _budget_grows_both,
          "the data set the exponent": _alpha_climbs}


def test_every_demo_of_07_to_11_has_its_lesson_panel_and_a_claim_here():
    assert ON_LESSON_PANELS and {d.target for d in ON_LESSON_PANELS} <= set(PANELS)
    assert {d.name for d in ON_LESSON_PANELS} <= set(CLAIMS)


# Statuses a panel could show if a demo's point did not hold: each claim must reject them.
WRONG = {"Adam evens out the steps, SGD does not": [("gradient ratio (first / last slice) <b>2.60</b>, step ratio "
                                                     "<b>2.60</b>")] * 2,
         "no penalty forgets A, a penalty holds it": ["λ = 0: task A 0.400, task B 0.950",
                                                      "λ = 30: task A 0.390, task B 0.950"],
         "backprop against eight local chunks": ["accuracy 0.800; backprop's run scored 0.900 (gap +0.300)"],
         "the tangent follows the starting rho": ["f(ρ = -6) = 0.500, df/dρ = +0.2. Grid best: ρ = -1.00, f = 0.1"],
         "hyper-steps walk down the response": [("f(ρ = -6) = 0.500, df/dρ = -0.2. Grid best: ρ = -1.00, f = 0.100; "
                                                 "after 5 hyper-steps ρ = -6.50, f = 0.600 (completed)")],
         "a bigger budget: model and data grow together": [
             "C = 1e+09 FLOPs: optimal N = 1,000 parameters, D = 10,000 tokens, 10 tokens",
             "C = 1e+12 FLOPs: optimal N = 1,100 parameters, D = 10,000,000 tokens, 9,000 tokens"],
         "the data set the exponent": ["α = 0.90 ± 0.1", "α = 0.80 ± 0.1"]}


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_each_claim_rejects_a_panel_where_the_point_does_not_hold(name):
    with pytest.raises(AssertionError) as err:
        CLAIMS[name](WRONG[name])
    assert "not in the status line" not in str(err.value), "it failed to read the numbers, not on the claim"


@pytest.mark.slow
@pytest.mark.parametrize("demo", ON_LESSON_PANELS, ids=lambda d: f"{d.lesson}-{d.name[:30]}")
def test_demo_replays_to_its_end_state_on_the_lessons_panel(demo):
    panel = PANELS[demo.target]()
    statuses = []
    for frame in keyframes(demo.settings):                        # what replay(demo, panel) does, one by one
        apply_keyframe(panel, frame)
        statuses.append(panel.status.value)
        # The figure as the page shows it after this keyframe (its layout frozen since the first
        # frame, redone when tick labels change width): no text off the figure or on other text.
        assert text_problems(panel.view.fig) == [], frame
    CLAIMS[demo.name](statuses)
    check_panel_end_state(demo, panel)
