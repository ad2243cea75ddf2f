"""Figures and the live panel of lesson 08, driven from Python under Agg: artists counted,
every control at its extremes, a mid-run lam change from the schedule and from the slider."""

import matplotlib

matplotlib.use("Agg")

import copy  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import ewc  # noqa: E402
from course_lib.models import MLP  # noqa: E402
from course_lib.ui.ewc import LAM_STEPS, TASK_COLORS, EWCLab, plot_accuracy, plot_fisher  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def trained():
    """Small tasks and a model that has learned task A (a few hundred ms)."""
    tasks = ewc.make_tasks(2, dim=8, num_classes=4, n_train=200, n_test=100, seed=0)
    torch.manual_seed(0)
    model = MLP(8, 4, width=16)
    ewc.train_sequential(model, tasks[:1], num_steps=100, device="cpu")
    return model, tasks


def _lab(trained, **kw):
    model, tasks = trained
    return EWCLab(model, tasks, **{"num_steps": 60, "eval_every": 10, "device": "cpu", **kw})


def test_plot_accuracy_draws_each_task_its_shading_and_events(trained):
    model, tasks = trained
    h = ewc.train_sequential(copy.deepcopy(model), tasks, lam=3.0, num_steps=40, eval_every=10, skip_first=True,
                             on_eval=lambda s: s.set_lam(10.0) if s.step >= 19 else None, device="cpu")
    ax = plot_accuracy(h, label="run: ")
    task_lines = [ln for ln in ax.get_lines() if ln.get_label().startswith("run: task")]
    assert [ln.get_label() for ln in task_lines] == ["run: task A", "run: task B"]
    assert [ln.get_color() for ln in task_lines] == list(TASK_COLORS[:2])
    assert list(task_lines[1].get_xdata()) == h.eval_step and list(task_lines[1].get_ydata()) == h.test_acc[1]
    assert len(ax.get_lines()) == 3          # two tasks and one lam change (a vertical line)
    assert len(ax.patches) == 1              # B's training steps shaded
    assert ax.get_ylim() == (0, 1.02) and ax.get_xlabel() == "training step"


def test_plot_accuracy_marks_a_divergence(trained):
    model, tasks = trained
    h = ewc.train_sequential(copy.deepcopy(model), tasks, lam=1e6, num_steps=40, skip_first=True, device="cpu")
    ax = plot_accuracy(h)
    assert h.diverged and any(t.get_text().strip() == "diverged" for t in ax.texts)


def test_plot_fisher_has_one_histogram_per_tensor_on_log_axes(trained):
    model, tasks = trained
    fisher = ewc.fisher_diagonal(model, tasks[0].X_train, kind="true")
    names = [n for n, _ in model.named_parameters()]
    ax = plot_fisher(fisher, names)
    assert len(ax.patches) == len(fisher) == 6
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()] == names
    with pytest.raises(ValueError, match=r"plot_fisher\(\): 'names' must have one label per tensor"):
        plot_fisher(fisher, names[:2])


def test_lab_waits_for_the_button(trained):
    lab = _lab(trained)
    assert lab.history is None and not lab.running   # building the panel trains nothing
    assert [len(ln.get_xdata()) for ln in lab.view.axes[0].get_lines()] == [2, 2, 0, 0]  # goals; empty A, B
    assert "Train on B" in lab.status.value


@pytest.mark.parametrize("lam", [LAM_STEPS[0], LAM_STEPS[-1]])
@pytest.mark.parametrize("fisher", ["true", "empirical"])
def test_lab_at_every_controls_extremes(trained, lam, fisher):
    lab = _lab(trained)
    lab.sliders["lam"].value = lam
    lab.sliders["fisher"].value = fisher
    h = lab.run()
    assert h.config["lam"] == lam and h.config["fisher"] == fisher
    if lam == LAM_STEPS[-1]:
        assert h.diverged and "diverged" not in lab.status.value.split("·")[0]
        assert "loss = " in lab.status.value and "#d62728" in lab.status.value   # said in red
    else:
        assert h.stop_reason == "completed" and h.eval_step[-1] == 60 and "goal" in lab.status.value
    ax_acc, ax_loss = lab.view.axes
    assert len(ax_loss.get_lines()) == 2 and list(ax_loss.get_lines()[1].get_ydata()) == h.test_loss[1]
    assert len(ax_acc.get_lines()) == 2 + 2 + (1 if h.diverged else 0)   # goals, A and B, a divergence mark
    assert ax_loss.get_yscale() == "log" and lab.view.frames >= 1


def test_lab_changes_lam_mid_run_and_keeps_ghosts(trained):
    lab = _lab(trained, max_ghosts=2)
    first = lab.run(changes={30: 10.0})
    change = [e for e in first.events if e["kind"] == "change"]
    assert [(e["step"], e["lam"]) for e in change] == [(30, 10.0)]
    assert first.lam == [0.0, 0.0, 0.0, 0.0, 10.0, 10.0, 10.0]
    for _ in range(3):
        lab.run()
    assert len(lab.ghosts) == 2 and lab.ghosts[0][0] == "λ=0"
    lab.run()
    labels = [label for label, _ in lab.ghosts]
    # accuracy axes: 2 ghosts x (A, B), 2 goal lines, the current run's A and B
    assert labels == ["λ=0", "λ=0"] and len(lab.view.axes[0].get_lines()) == 2 * 2 + 2 + 2
    assert len(lab.view.axes[0].texts) == 2 and len(lab.view.axes[1].get_lines()) == 2 * 2 + 2
    assert lab._label(first) == "λ=0→10"


def test_lab_slider_acts_while_the_button_run_goes_on(trained):
    lab = _lab(trained, num_steps=100)
    lab.train()                       # the button's path: a background thread
    lab.sliders["lam"].value = 30.0   # queued at once, applied at the next evaluation
    lab.wait(timeout=60)
    h = lab.history
    assert not lab.running and h.stop_reason == "completed"
    change = [e for e in h.events if e["kind"] == "change"]
    assert len(change) == 1 and change[0]["lam"] == 30.0 and change[0]["step"] % 10 == 0
    assert h.lam[-1] == 30.0


def test_lab_goal(trained):
    lab = _lab(trained, goal=(0.0, 0.0))
    lab.run()
    assert lab.goal_met() and "✓ goal reached" in lab.status.value
    lab = _lab(trained, goal=(1.0, 1.0))
    lab.run()
    assert not lab.goal_met() and "goal: A ≥ 1 and B ≥ 1" in lab.status.value


def test_lab_messages(trained):
    model, tasks = trained
    with pytest.raises(ValueError, match=r"EWCLab\(\): 'lam' must be one of 0.0, 1.0, .*, got lam=5"):
        EWCLab(model, tasks, lam=5)
    with pytest.raises(ValueError, match=r"EWCLab\(\): 'tasks' must hold task A and at least one more"):
        EWCLab(model, tasks[:1])


def test_lab_a_run_starts_with_its_full_drawing_allowance_even_right_after_another(trained):
    # As in the training lab: drawing time is earned in CPU time, so a run that followed another
    # at once would start paying off the last one's redraws (fewer frames at its start).
    lab = _lab(trained)
    lab.run()
    lab.view._budget, lab.view._stills = -lab.view._DEBT, 0.0    # what a run of many redraws leaves
    seen = []
    due = lab.view.due
    lab.view.due = lambda *a, **k: seen.append((lab.view._budget, lab.view._stills)) or due(*a, **k)
    lab.run()
    assert seen and seen[0][0] >= 0 and seen[0][1] == lab.view._STILL_BURST, seen[:3]
