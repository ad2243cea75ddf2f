"""Lessons 07-11's prepared demos replayed on the lessons' own panels (marker ``slow``).

``replay(demo)`` alone plays these demos on small stand-ins (``ui.demo_standins``: seconds, for the
quick suite). Here each panel is built as its notebook builds it: the same library calls with the
same arguments, checked against the notebook's source so that the two cannot drift apart silently;
then the demo is replayed on it and its recorded end state asserted there. Fast mode
(``COURSE_FAST=1``) changes only what the notebooks change with it (lesson 09's step count, lesson
11's sweep grid).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from test_ui_demos import check_panel_end_state

from course_lib.ui.demos import DEMOS, replay

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "cpu"
pytestmark = pytest.mark.slow


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
                 "joint = cl.fit_chinchilla(grid.N, grid.D, grid.loss)",
                 "C_lo, C_hi = 6 * grid.N.min() * grid.D.min(), 6 * grid.N.max() * grid.D.max()")
    grid, by_exponent = cl.course_sweeps(device="cpu", progress=False)
    return grid, by_exponent, cl.fit_chinchilla(grid.N, grid.D, grid.loss)


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


def test_every_demo_of_07_to_11_has_its_lesson_panel_here():
    assert ON_LESSON_PANELS and {d.target for d in ON_LESSON_PANELS} <= set(PANELS)


@pytest.mark.parametrize("demo", ON_LESSON_PANELS, ids=lambda d: f"{d.lesson}-{d.name[:30]}")
def test_demo_replays_to_its_end_state_on_the_lessons_panel(demo):
    panel = PANELS[demo.target]()
    assert replay(demo, panel) is panel
    check_panel_end_state(demo, panel)
