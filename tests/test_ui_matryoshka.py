"""Figures and the slider panel of lesson 07 under the Agg backend: line counts, the data the
lines carry (against the history they were drawn from), gaps on log axes, and the panel driven
from Python at every control's extremes."""

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib.matryoshka import MatryoshkaHistory, make_frozen_features, train_matryoshka  # noqa: E402
from course_lib.ui.live import LiveFigure  # noqa: E402
from course_lib.ui.matryoshka import (SIZE_CHOICES, GradientSizePlot, MatryoshkaPanel,  # noqa: E402
                                      plot_gradient_size)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _history(method="mrl"):
    """A made-up run: two MRL epochs, or SMRL with a second stage whose slice 1 is frozen."""
    if method == "mrl":
        return MatryoshkaHistory([0, 96, 192], config={"stages": [192]}, stage=[0, 0],
                                 mean_abs=[[4e-3, 2e-3], [1e-3, 5e-4]], var_all=[1e-5, 1e-6],
                                 update_abs=[[1e-3, 1e-3], [1e-3, 1e-3]], loss=[2.0, 1.0])
    return MatryoshkaHistory([0, 96, 192], config={"stages": [192, 96]}, stage=[0, 0, 1],
                             mean_abs=[[2e-3, 2e-3], [1e-3, 1e-3], [3e-3, 0.0]], var_all=[4e-6, 1e-6, 2e-6],
                             update_abs=[[1e-3, 1e-3]] * 3, loss=[1.0, 0.5, 0.8])


def test_figure_has_one_line_per_slice_and_method_plus_variance_lines():
    ax_abs, ax_var = plot_gradient_size({"mrl": _history("mrl"), "smrl": _history("smrl")})
    assert len(ax_abs.get_lines()) == 4 + 1  # 2 methods x 2 slices, and the stage marker
    assert len(ax_var.get_lines()) == 2 + 1  # 2 variance lines, and the stage marker
    assert ax_abs.get_yscale() == ax_var.get_yscale() == "log"
    assert "SMRL stage 2" in " ".join(t.get_text() for t in ax_abs.texts)


def test_lines_carry_the_history_with_gaps_for_frozen_rows_and_stage_changes():
    fig, (a, b) = plt.subplots(1, 2)
    plot = GradientSizePlot(a, b)
    plot.update(_history("smrl"), "smrl")
    x, y = plot.lines["smrl"][1].get_data()
    # Epochs 0, 1, a break at 1.5, epoch 2 whose slice is frozen (0 -> a gap on the log axis).
    assert list(x) == [0, 1, 1.5, 2]
    assert y[:2].tolist() == [2e-3, 1e-3] and math.isnan(y[2]) and math.isnan(y[3])
    x, y = plot.var_lines["smrl"].get_data()
    assert y[[0, 1, 3]].tolist() == [4e-6, 1e-6, 2e-6]
    assert plot.lines["mrl"][0].get_xydata().size == 0  # not drawn yet


def test_live_plot_redraws_every_epoch_of_a_real_run():
    X, y = make_frozen_features(256, dim=32, num_classes=4, device="cpu")
    live = LiveFigure(1, 2, min_interval=0.0, headless=True)
    plot = GradientSizePlot(*live.axes, boundaries=(0, 8, 16))
    h = train_matryoshka(X, y, sizes=(8, 16), batch_size=64, num_epochs=3, device="cpu",
                         on_epoch=plot.on_epoch("mrl", live))
    assert live.frames >= 1  # throttled: at most about a quarter of the time goes to drawing
    live.refresh(force=True)
    np.testing.assert_allclose(plot.lines["mrl"][0].get_ydata(), [a[0] for a in h.mean_abs])


def test_bad_arguments_are_named():
    fig, (a, b) = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="'methods' must be one of 'mrl', 'smrl', got methods='srml'"):
        GradientSizePlot(a, b, methods=("srml",))
    plot = GradientSizePlot(a, b, methods=("mrl",))
    with pytest.raises(ValueError, match="'method' must be one of 'mrl'"):
        plot.update(_history("smrl"), "smrl")
    X, y = make_frozen_features(64, dim=192, num_classes=4, device="cpu")
    with pytest.raises(ValueError, match="MatryoshkaPanel\\(\\): 'weight' must be a float in \\[0.05, 1\\]"):
        MatryoshkaPanel(X, y, weight=2.0)


@pytest.fixture(scope="module")
def data():
    return make_frozen_features(256, dim=192, num_classes=4, device="cpu")


@pytest.fixture(scope="module")
def panel(data):
    """One panel for the module (building one costs about a second); tests move its controls."""
    p = MatryoshkaPanel(*data, num_epochs=2, min_interval=0.0)
    p.view.headless = True
    yield p
    p.view.close()


def test_panel_waits_for_the_button(data):
    fresh = MatryoshkaPanel(*data, num_epochs=1, min_interval=0.0)
    assert fresh.history is None and "press <b>train</b>" in fresh.status.value
    assert fresh.settings()["weight"] == 1.0      # the start value is on the slider's grid: plain MRL, c = 1
    for ax in fresh.view.axes:   # the epochs the button trains, not an empty axis' -0.045..0.045
        assert ax.get_xlim() == (-0.5, 0.5) and [t for t in ax.get_xticks() if -0.5 <= t <= 0.5] == [0]
    fresh.sliders["weight"].value = 0.05  # moving a control never trains
    fresh.sliders["optimizer"].value = "sgd"
    assert fresh.history is None


# Every choice of sizes, each with the weight and optimizer at one of their extremes.
LOW = 10 ** -1.3     # the weight slider's lowest point (its 0.05 steps of log10 c end at c = 1)
@pytest.mark.parametrize("sizes, weight, optimizer", [
    (s, w, o) for s, (w, o) in zip(SIZE_CHOICES, [(LOW, "adam"), (1.0, "sgd"), (1.0, "adam"), (LOW, "sgd")])])
def test_panel_at_every_controls_extremes(panel, sizes, weight, optimizer):
    panel.sliders["sizes"].value = sizes
    panel.sliders["weight"].value = weight
    panel.sliders["optimizer"].value = optimizer
    h = panel.train()
    n = len(SIZE_CHOICES[sizes])
    assert h.config["sizes"] == list(SIZE_CHOICES[sizes]) and h.config["optimizer"] == optimizer
    assert h.config["weights"] == pytest.approx([weight] * (n - 1) + [1.0])
    ax_g, ax_s = panel.view.axes
    assert len(ax_g.get_lines()) == len(ax_s.get_lines()) == n  # one line per slice
    np.testing.assert_allclose(ax_g.get_lines()[0].get_ydata(), [a[0] for a in h.mean_abs])
    np.testing.assert_allclose(ax_s.get_lines()[-1].get_ydata(), [u[-1] for u in h.update_abs])
    assert "gradient ratio" in panel.status.value
    if optimizer == "sgd":  # SGD's step is lr * g: the step ratio equals the gradient ratio
        g, u = h.mean_abs[-1], h.update_abs[-1]
        assert u[0] / u[-1] == pytest.approx(g[0] / g[-1], rel=1e-3)
    # Changing a setting clears the stale run from the status line.
    panel.sliders["optimizer"].value = "sgd" if optimizer == "adam" else "adam"
    assert "Settings changed" in panel.status.value
