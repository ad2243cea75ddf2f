"""Figures and the lab of lesson 09, under Agg: artists counted and read back; the lab driven
from Python at every control's extremes (K = 1 and the largest K, overlap off and on)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from figure_checks import text_problems  # noqa: E402

from course_lib.local_learning import (LocalHistory, LocalNet, cost_table, gradient_reach,  # noqa: E402
                                       make_checkerboard)
from course_lib.ui.local_learning import (LocalLearningLab, LocalRunPlot, plot_accuracy_by_k,  # noqa: E402
                                          plot_checkerboard, plot_gradient_reach, plot_local_run, plot_probes)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _history(K=4, B=8, n=30, probes=2):
    return LocalHistory(config={"num_chunks": K, "num_blocks": B}, step=list(range(n)),
                        head_loss=[[0.7 - 0.01 * i - 0.001 * j for j in range(K)] for i in range(n)],
                        eval_step=[n - 1], head_acc=[[0.6 + 0.01 * j for j in range(K)]],
                        probe_step=list(range(probes)),
                        probe_acc=[[0.5 + 0.05 * d + 0.01 * p for d in range(B + 1)] for p in range(probes)])


def test_checkerboard_plot_has_one_scatter_per_class():
    ax = plot_checkerboard(make_checkerboard(300, cells=5, seed=0))
    assert len(ax.collections) == 2 and "5 x 5" in ax.get_title()
    assert sum(len(c.get_offsets()) for c in ax.collections) == 225


def test_gradient_reach_grid_writes_a_zero_in_every_unreached_cell():
    net = LocalNet(num_blocks=8, num_chunks=4, seed=0)
    X, y = torch.randn(16, 2), torch.randint(0, 2, (16,))
    for mode, overlap in [("local", False), ("local", True), ("backprop", False)]:
        reach = gradient_reach(net, X, y, mode=mode, overlap=overlap)
        ax = plot_gradient_reach(reach, title=mode)
        assert len(ax.images) == 1
        zeros = [t for t in ax.texts if t.get_text() == "0"]
        assert len(zeros) == int((reach == 0).sum())
        assert len(ax.get_xticks()) == 8 and len(ax.get_yticks()) == 4
    plot_gradient_reach(np.zeros((2, 4)))  # nothing reached at all: still draws


def test_run_plot_moves_its_artists_and_keeps_ghosts():
    fig, (a, b) = plt.subplots(1, 2)
    plot = LocalRunPlot(a, b, num_blocks=8, chance=0.5, max_ghosts=2)
    assert len(plot.bars) == 9
    h = _history(K=4)
    plot.update(h)
    assert len(plot.head_lines) == 4
    np.testing.assert_allclose([bar.get_height() for bar in plot.bars], h.probe_acc[-1])
    assert plot.head_lines[0].get_xdata().tolist() == list(range(30))
    plot.update(_history(K=8))  # a new K: new head lines, the old ones gone
    assert len(plot.head_lines) == 8 and len(a.lines) == 8
    for i in range(3):
        plot.add_ghost(_history(K=2), f"run {i}")
    assert len(plot.ghosts) == 2 and len(a.lines) == 8 + 2  # two ghosts kept, one dropped
    # The kept runs are named in the probe panel's legend (a label beside the last bar ran off the figure).
    assert [t.get_text() for t in b.get_legend().get_texts()] == ["chance", "run 1", "run 2"]


def test_plot_local_run_and_probes_and_tradeoff():
    ax_loss, ax_probe = plot_local_run(_history(K=2), chance=0.5)
    assert len(ax_loss.lines) == 2 and len(ax_probe.patches) == 9
    ax = plot_probes({"backprop": _history(K=1), "K=8": _history(K=8)}, chance=0.5)
    assert len(ax.lines) == 3
    acc = {1: [0.9, 0.88], 2: [0.85, 0.8], 4: [0.8, 0.79], 8: [0.7, 0.66]}
    ax_acc, ax_cost = plot_accuracy_by_k(acc, overlap={8: [0.75, 0.74]}, chance=0.5)
    assert len(ax_acc.containers) == 2  # two error-bar series
    heights = [p.get_height() for p in ax_cost.patches]
    assert heights == [cost_table(8, k)["local"]["memory_ratio"] for k in (1, 2, 4, 8)]
    means = np.asarray(ax_acc.containers[0].lines[0].get_ydata(), dtype=float)
    np.testing.assert_allclose(means, [np.mean(acc[k]) for k in (1, 2, 4, 8)])


SMALL = dict(num_steps=20, num_blocks=8)


def test_lab_waits_for_the_button_and_trains_at_every_extreme():
    data = make_checkerboard(300, cells=3, seed=0)
    lab = LocalLearningLab(data, **SMALL, min_interval=0.0)
    assert lab.sliders["num_chunks"].options == (1, 2, 4, 8)
    frames = lab.view.frames
    lab.sliders["num_chunks"].value = 1  # moving a control: a redraw, no training
    lab.sliders["overlap"].value = True
    assert lab.history is None and "K=1 backprop" in lab.status.value and lab.view.frames > frames
    assert lab.view.axes[0].get_xlim() == (0, SMALL["num_steps"])   # the steps Train will run, not 0..1
    h = lab.train()
    assert h.config["num_chunks"] == 1 and h.config["mode"] == "backprop" and not h.config["overlap"]
    assert len(lab.plot.head_lines) == 1 and "K=1 backprop" in lab.status.value
    lab.sliders["num_chunks"].value = 8
    h8 = lab.train()
    assert h8.config == {**h8.config, "num_chunks": 8, "mode": "local", "overlap": True}
    assert len(lab.plot.head_lines) == 8 and len(lab.plot.ghosts) == 1
    assert "gap" in lab.status.value
    np.testing.assert_allclose([b.get_height() for b in lab.plot.bars], h8.probe_acc[-1])
    lab.sliders["overlap"].value = False
    lab.train()
    assert [label for label, _ in lab.results] == ["K=1 backprop", "K=8 local + overlap", "K=8 local"]
    assert lab.view.axes[0].get_xlim() == (0, SMALL["num_steps"])   # fixed while runs come and go
    assert text_problems(lab.view.fig) == []                        # the runs' names stay inside the figure
    assert not lab.button.disabled
