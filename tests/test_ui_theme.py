"""The projector theme: measured on rendered figures (Agg), at the size a 1280x720 screen shows.

The rule: axis labels at least 18 px and lines at least 2.5 px. A text's size in pixels is its
size in points x dpi / 72; a line's width likewise. Each rule is also checked to *fail* in the
default theme, so the measurement can tell the two apart."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_lib.train import History
from course_lib.ui import panels, setup_notebook
from course_lib.ui.plotting import plot_loss_curves
from course_lib.ui.theme import OKABE_ITO, lecture_mode, set_course_theme

OKABE_RGB = {mcolors.to_rgb(c) for c in OKABE_ITO} | {mcolors.to_rgb("#555555")}


@pytest.fixture
def theme():
    with matplotlib.rc_context():
        yield set_course_theme
    set_course_theme("default")
    plt.close("all")


def _history():
    steps = list(range(300))
    return History(step=steps, train_loss=[1.0 / (1 + 0.05 * s) for s in steps], lr=[0.1] * 300,
                   val_step=steps[::25], val_loss=[1.1 / (1 + 0.05 * s) for s in steps[::25]])


def _rendered_loss_plot():
    """A loss plot filling a 1280x720 picture, drawn (the lecture pass runs at draw time)."""
    fig, ax = plt.subplots(figsize=(12.8, 7.2), dpi=100)
    plot_loss_curves(_history(), ax=ax, baseline=1.0, smooth=0.5)
    fig.canvas.draw()
    assert fig.canvas.get_width_height() == (1280, 720)
    return fig, ax


def _px(points, fig):
    return points * fig.dpi / 72


def _data_lines(ax):
    return [ln for ln in ax.get_lines() if len(ln.get_xdata()) and ln.get_linestyle() not in ("None", "none", "")]


def test_lecture_figure_meets_the_projector_rule(theme):
    theme("lecture")
    fig, ax = _rendered_loss_plot()
    r = fig.canvas.get_renderer()
    for label in (ax.xaxis.label, ax.yaxis.label):
        assert _px(label.get_fontsize(), fig) >= 18, label.get_text()
        assert label.get_window_extent(r).height >= 18          # the glyphs as drawn, not only the setting
    for tick in ax.get_xticklabels() + ax.get_yticklabels():
        if tick.get_text():
            assert _px(tick.get_fontsize(), fig) >= 16.5, tick.get_text()
    lines = _data_lines(ax)
    assert len(lines) >= 4                                       # raw, smoothed, validation, baseline
    for ln in lines:
        assert _px(ln.get_linewidth(), fig) >= 2.5, (ln.get_label(), ln.get_linewidth())
    colors = {mcolors.to_rgb(ln.get_color()) for ln in lines}
    assert colors <= OKABE_RGB, colors                           # the colour-blind-safe palette


def test_default_figure_fails_the_projector_rule(theme):
    """The same measurement on the laptop theme finds small labels and thin lines."""
    theme("default")
    fig, ax = _rendered_loss_plot()
    assert _px(ax.xaxis.label.get_fontsize(), fig) < 18
    assert min(_px(ln.get_linewidth(), fig) for ln in _data_lines(ax)) < 2.5


def test_live_lab_figure_meets_the_rule_after_lines_are_added(theme):
    """A live plot adds curves after its figure was made (ghosts, events): they follow too."""
    from course_lib.ui.lab import TrainingLab
    theme("lecture")
    lab = TrainingLab("moons", max_steps=60, eval_every=20, device="cpu")
    lab.schedule(30, lr=0.05)
    lab.run()
    lab.reset()
    lab.run(40)
    fig = lab.view.fig
    fig.canvas.draw()
    w, h = fig.canvas.get_width_height()
    assert w <= 1280 and h <= 720                                # fits the screen at its own size
    ax = lab.view.axes
    assert _px(ax.xaxis.label.get_fontsize(), fig) >= 18
    lines = _data_lines(ax)
    assert any(ln.get_label().startswith("earlier") for ln in lines)   # the ghost, added later
    for ln in lines:
        assert _px(ln.get_linewidth(), fig) >= 2.5, ln.get_label()
    assert "course-lecture" in lab.widget._dom_classes         # the controls are drawn larger too
    lab.view.close()


def test_theme_choice_and_switches(theme, monkeypatch):
    theme("lecture")
    assert lecture_mode() and matplotlib.rcParams["axes.labelsize"] >= 18
    theme(lecture=False)
    assert not lecture_mode()
    theme(True)
    assert lecture_mode()
    theme("default")
    box = panels.panel(panels.controls_row(), panels.controls_row())
    assert "course-lecture" not in box._dom_classes
    monkeypatch.setenv("COURSE_LECTURE", "1")
    setup_notebook(seed=0, threads=None, verbose=False)
    assert lecture_mode()
    monkeypatch.setenv("COURSE_LECTURE", "0")
    setup_notebook(seed=0, threads=None, verbose=False)
    assert not lecture_mode()
    setup_notebook(seed=0, threads=None, lecture=True, verbose=False)
    assert lecture_mode()


@pytest.mark.parametrize("kw, error, message", [
    (dict(name="projector"), ValueError, r"set_course_theme\(\): 'name' must be one of 'default', 'lecture', got name='projector'"),
    (dict(lecture="yes"), TypeError, "'lecture' must be a bool or None"),
])
def test_theme_messages(theme, kw, error, message):
    with pytest.raises(error, match=message):
        theme(**kw)


def test_lecture_pass_keeps_other_colours_and_runs_once(theme):
    theme("lecture")
    fig, ax = plt.subplots()
    own, = ax.plot([0, 1], [0, 1], color="#123456", lw=5)
    fig.canvas.draw()
    fig.canvas.draw()
    assert own.get_linewidth() == 5 and mcolors.to_hex(own.get_color()) == "#123456"
    assert np.isclose(own.get_markersize(), matplotlib.rcParams["lines.markersize"] * 1.4)


def test_lecture_hides_the_interactive_figures_toolbar():
    """On a projector page ipympl's toolbar covered a wide figure's first axis label: the lecture hook hides it
    (and the title bar); a canvas without them (Agg) is left alone."""
    import types

    from course_lib.ui.theme import _hook_figure
    canvas = types.SimpleNamespace(toolbar_visible=True, header_visible=True)
    _hook_figure(types.SimpleNamespace(canvas=canvas, draw=lambda renderer: None))
    assert canvas.toolbar_visible is False and canvas.header_visible is False
    plain = types.SimpleNamespace()
    _hook_figure(types.SimpleNamespace(canvas=plain, draw=lambda renderer: None))
    assert vars(plain) == {}
