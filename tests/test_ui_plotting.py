"""Tests of course_lib.ui.plotting: each helper returns its Axes, so we count and read its lines."""

from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import course_lib as cl  # noqa: E402
from course_lib.curves import ema  # noqa: E402
from course_lib.ui.plotting import COLORS, plot_loss_curves, set_course_theme  # noqa: E402
from course_lib.train import History  # noqa: E402

CHANGE_STEP = 30  # the step at which the callback below lowers the learning rate


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _fit(**kw):
    data = cl.make_regression(64, seed=0)
    torch.manual_seed(0)
    return cl.fit(cl.MLP(1, 1, width=8), data, num_steps=60, eval_every=10, device="cpu", **kw)


@pytest.fixture(scope="module")
def history():
    return _fit()


@pytest.fixture(scope="module")
def diverged_history():
    h = _fit(optimizer="sgd", lr=10.0)
    assert h.diverged, f"lr=10 with SGD should diverge; stop_reason={h.stop_reason!r}"
    return h


@pytest.fixture(scope="module")
def changed_history():
    def lower_lr(state):
        if state.step == CHANGE_STEP - 1:  # applies from the next step on
            state.set_hyperparams(lr=1e-4)

    h = _fit(on_step=lower_lr)
    assert [e["step"] for e in h.events] == [CHANGE_STEP]
    return h


def _labels(ax):
    return [line.get_label() for line in ax.lines]


def _line(ax, label):
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return line


def _hline_ys(ax):
    """y of every horizontal line spanning the axes (axhline draws x in axes coordinates [0, 1])."""
    return [line.get_ydata()[0] for line in ax.lines
            if list(line.get_xdata()) == [0, 1] and line.get_ydata()[0] == line.get_ydata()[1]]


def _vline_xs(ax):
    return [line.get_xdata()[0] for line in ax.lines
            if list(line.get_ydata()) == [0, 1] and line.get_xdata()[0] == line.get_xdata()[1]]


# ---- the fitted runs -------------------------------------------------------------------------


def test_fitted_history_is_what_the_plots_expect(history):
    assert history.stop_reason == "completed"
    assert len(history.step) == 60 and history.val_step == [0, 10, 20, 30, 40, 50, 60]
    assert history.events == []


# ---- plot_loss_curves ------------------------------------------------------------------------


def test_returns_the_axes_it_was_given(history):
    _, ax = plt.subplots()
    assert plot_loss_curves(history, ax=ax) is ax


def test_makes_new_axes_without_ax(history):
    ax = plot_loss_curves(history)
    assert isinstance(ax, matplotlib.axes.Axes) and len(ax.lines) == 2


def test_train_only(history):
    ax = plot_loss_curves(history, show_val=False)
    assert _labels(ax) == ["train"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), history.step)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), history.train_loss)


def test_history_without_val_draws_one_line():
    h = History(step=[0, 1, 2], train_loss=[1.0, 0.5, 0.25], lr=[0.1] * 3)
    assert len(plot_loss_curves(h).lines) == 1


def test_train_and_val(history):
    ax = plot_loss_curves(history)
    assert _labels(ax) == ["train", "validation"]
    val = _line(ax, "validation")
    np.testing.assert_array_equal(val.get_xdata(), history.val_step)
    np.testing.assert_array_equal(val.get_ydata(), history.val_loss)
    assert val.get_color() == COLORS["val"] and _line(ax, "train").get_color() == COLORS["train"]


def test_label_prefixes_legend_entries(history):
    ax = plot_loss_curves(history, label="run A")
    assert _labels(ax) == ["run A: train", "run A: validation"]


def test_alpha_fades_the_curves(history):
    ax = plot_loss_curves(history, alpha=0.3)
    assert _line(ax, "train").get_alpha() == pytest.approx(0.3)


def test_smooth_adds_a_faint_raw_line_and_smooths_with_ema(history):
    n_plain = len(plot_loss_curves(history).lines)
    ax = plot_loss_curves(history, smooth=0.9)
    assert len(ax.lines) == n_plain + 1
    raw, smoothed = ax.lines[0], _line(ax, "train")
    np.testing.assert_array_equal(raw.get_ydata(), history.train_loss)
    assert raw.get_alpha() < smoothed.get_alpha()
    np.testing.assert_allclose(smoothed.get_ydata(), ema(history.train_loss, beta=0.9))
    assert not np.allclose(smoothed.get_ydata(), history.train_loss)


def test_smooth_uses_only_the_finite_losses():
    losses = [4.0, 3.0, math.nan, 2.0, math.inf, 1.0]
    h = History(step=list(range(6)), train_loss=losses, lr=[0.1] * 6)
    ax = plot_loss_curves(h, smooth=0.5)
    smoothed = _line(ax, "train")
    np.testing.assert_array_equal(smoothed.get_xdata(), [0, 1, 3, 5])
    np.testing.assert_allclose(smoothed.get_ydata(), ema([4.0, 3.0, 2.0, 1.0], beta=0.5))


def test_baseline_and_floor_lines(history):
    n_plain = len(plot_loss_curves(history).lines)
    ax = plot_loss_curves(history, baseline=0.75, floor=0.01)
    assert len(ax.lines) == n_plain + 2
    assert sorted(_hline_ys(ax)) == [0.01, 0.75]
    assert _line(ax, "baseline (trivial predictor)").get_ydata()[0] == 0.75
    assert _line(ax, "irreducible loss").get_ydata()[0] == 0.01


def test_baseline_defaults_to_the_history_baseline():
    h = History(step=[0, 1, 2], train_loss=[1.0, 0.5, 0.25], lr=[0.1] * 3, baseline=0.9)
    ax = plot_loss_curves(h)
    assert _hline_ys(ax) == [0.9]
    assert _hline_ys(plot_loss_curves(h, baseline=0.4)) == [0.4]


def test_log_y(history):
    assert plot_loss_curves(history).get_yscale() == "linear"
    ax = plot_loss_curves(history, log_y=True)
    assert ax.get_yscale() == "log"
    assert "log" in ax.get_ylabel()


def test_diverged_run_is_marked(diverged_history):
    h = diverged_history
    ax = plot_loss_curves(h)
    marker = _line(ax, "diverged")
    last_finite = [(s, v) for s, v in zip(h.step, h.train_loss) if math.isfinite(v)][-1]
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == last_finite
    texts = [t.get_text() for t in ax.texts]
    assert any("diverged at step" in t for t in texts), texts
    assert f"diverged at step {h.stop_step}" in texts


def test_diverged_marker_hidden_without_events(diverged_history):
    ax = plot_loss_curves(diverged_history, show_events=False)
    assert "diverged" not in _labels(ax) and len(ax.texts) == 0


def test_hyperparameter_change_draws_a_vertical_line(changed_history):
    ax = plot_loss_curves(changed_history)
    assert _vline_xs(ax) == [CHANGE_STEP]
    assert any("lr" in t.get_text() and "0.0001" in t.get_text() for t in ax.texts)
    assert _vline_xs(plot_loss_curves(changed_history, show_events=False)) == []


def test_nan_losses_are_dropped():
    nan, inf = math.nan, math.inf
    h = History(step=list(range(6)), train_loss=[1.0, nan, 0.5, inf, 0.3, 0.2], lr=[0.1] * 6,
                val_step=[0, 2, 4], val_loss=[1.1, nan, 0.4])
    ax = plot_loss_curves(h, smooth=0.5, log_y=True)
    for line in ax.lines:
        assert np.all(np.isfinite(line.get_ydata())), f"{line.get_label()!r} has non-finite y data"
    np.testing.assert_array_equal(_line(ax, "train").get_xdata(), [0, 2, 4, 5])
    np.testing.assert_array_equal(_line(ax, "validation").get_xdata(), [0, 4])


@pytest.mark.parametrize("kw, error, message", [
    (dict(smooth=1.0), ValueError, "plot_loss_curves(): 'smooth' must be a float in [0, 1), got smooth=1.0"),
    (dict(alpha=2), ValueError, "plot_loss_curves(): 'alpha' must be a float in [0, 1], got alpha=2"),
    (dict(ax="not an axes"), TypeError,
     "plot_loss_curves(): 'ax' must be a matplotlib Axes or None, got ax='not an axes' of type str"),
])
def test_messages(kw, error, message):
    h = History(step=[0, 1], train_loss=[1.0, 0.5], lr=[0.1] * 2)
    with pytest.raises(error, match=re.escape(message)):
        plot_loss_curves(h, **kw)


# ---- theme -----------------------------------------------------------------------------------


def test_set_course_theme_changes_rcparams():
    with matplotlib.rc_context():  # restores the global rcParams afterwards
        matplotlib.rcdefaults()
        default_size = matplotlib.rcParams["font.size"]
        set_course_theme()
        notebook = dict(matplotlib.rcParams)
        assert notebook["axes.grid"] is True
        assert list(notebook["figure.figsize"]) == [7, 3.5]
        set_course_theme(lecture=True)
        lecture = dict(matplotlib.rcParams)
    assert notebook["font.size"] != default_size
    assert lecture["font.size"] > notebook["font.size"]
    assert lecture["lines.linewidth"] > notebook["lines.linewidth"]


# --- the LR range test (results do not draw themselves: ui.lr_finder draws them) ----------------

def test_plot_returns_axes_with_a_marker_per_suggestion():
    from course_lib.ui.lr_finder import plot_lr_finder
    data = cl.make_regression(256, noise=0.1, seed=0)
    r = cl.lr_range_test(cl.MLP(1, 1, width=16), data, start_lr=1e-5, end_lr=100, device="cpu")
    assert not hasattr(r, "plot")
    ax = plot_lr_finder(r)
    found = {rule for rule in cl.SUGGESTION_RULES if any(rule in ln.get_label() for ln in ax.get_lines())}
    assert found == {k for k, v in r.suggestions.items() if v is not None}
    assert ax.get_xscale() == "log"


def test_figure_checks_find_overlapping_and_clipped_text():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from figure_checks import text_problems

    fig, ax = plt.subplots(figsize=(4, 3), layout="constrained")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    assert text_problems(fig) == []
    ax.text(0.5, 0.5, "one", transform=ax.transAxes)
    ax.text(0.5, 0.5, "two", transform=ax.transAxes)
    fig.text(0.99, 0.5, "far outside the right edge")
    problems = text_problems(fig)
    assert any("'one' overlaps 'two'" in p for p in problems)
    assert any("leaves the figure" in p for p in problems)
    plt.close(fig)


def test_figure_checks_skip_the_axes_of_an_axes_drawn_without_them():
    # ax.axis("off") draws no tick labels (matplotlib's Axes.draw leaves both axes out): their
    # boxes, wherever they lie, are not problems; the title and texts of that Axes still are.
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from figure_checks import text_problems

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_ylim(-1e6, 1e6)                       # long y tick labels ...
    fig.subplots_adjust(left=0.0)                # ... that would leave the figure at the left
    assert any("leaves the figure" in p for p in text_problems(fig))
    ax.axis("off")
    assert text_problems(fig) == []
    ax.set_title("a title", x=0.5)
    ax.text(0.5, 1.0, "over the title", transform=ax.transAxes, va="bottom")
    assert any("overlaps" in p for p in text_problems(fig))
    plt.close(fig)


@pytest.mark.parametrize("theme", ["default", "lecture"])
def test_a_change_label_at_the_right_edge_is_not_hidden_under_the_legend(theme):
    # A change a learner makes now is drawn at the current step, the right edge of the axes, where
    # the (opaque) legend sits. Its label must start below the legend; one far from the legend
    # stays at the top. The oracle is matplotlib's own boxes of the drawn label and legend.
    from course_lib.ui.plotting import LossCurvesPlot
    set_course_theme(theme)
    try:
        fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
        plot = LossCurvesPlot(ax)
        n = 1000
        h = History(step=list(range(n)), train_loss=list(np.exp(-np.arange(n) / 400) + 0.1), lr=[0.01] * n,
                    val_step=list(range(0, n, 25)), val_loss=list(np.exp(-np.arange(0, n, 25) / 400) + 0.15))
        h.add_event(100, "change", "lr 0.01 -> 0.03")
        h.add_event(n - 2, "change", "weight_decay 0 -> 0.001")
        plot.update(h), plot.legend(), plot.update(h)          # as a live frame: update, legend, next frame
        fig.canvas.draw()
        legend = ax.get_legend().get_window_extent()
        labels = {t.xy[0]: t for t in ax.texts if t.get_text().startswith(("lr", "weight"))}
        right = labels[n - 2].get_window_extent()
        assert not right.overlaps(legend), f"the label {right} is under the legend {legend}"
        # It stays inside the axes (shortened if it must: the lecture theme's label is longer than
        # the room below the legend), and says which setting changed.
        assert right.y1 < legend.y0 and right.y0 >= ax.bbox.y0 - 1, "the label left the axes"
        text = labels[n - 2].get_text()
        assert text == "weight_decay 0 -> 0.001" or (text.endswith("\u2026") and text.startswith("weight_decay"))
        assert labels[100].xy[1] == pytest.approx(0.98) and labels[100].get_text() == "lr 0.01 -> 0.03"
    finally:
        set_course_theme("default")


def test_step_ticks_are_whole_numbers_even_for_a_two_step_run():
    # A run that diverged at step 1 (03's gallery) had ticks 0.0, 0.2, ... 1.0 on its step axis.
    h = History(step=[0, 1], train_loss=[2.0, 1e6])
    ax = plot_loss_curves(h, log_y=True)
    ax.figure.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    # Longer runs keep matplotlib's default ticks (integer=True alone packed 0, 80, 160, ... into 600 steps).
    for n in (600, 1500):
        ax = plot_loss_curves(History(step=list(range(n + 1)), train_loss=[1.0] * (n + 1)))
        ax.figure.canvas.draw()
        got = list(ax.get_xticks())
        ax.xaxis.set_major_locator(matplotlib.ticker.AutoLocator())
        assert got == list(ax.get_xticks()), (n, got)
