"""Every lesson panel, each control at both ends: no text leaves the figure or lands on other text.

A panel's layout is computed for its first frame and then frozen (a frame costs far less without
it); the panel lays the figure out again when a tick label changes width (``LiveFigure.draw_now``).
The figure is checked as the page shows it after each move (``figure_checks.text_problems``: boxes
from matplotlib, the layout as it stands). The panels are built as their notebooks build them: the
calls are checked against the notebooks' source (lessons 07-10 share their builders with the
demo replays; lesson 11's panels are checked there).

A second test checks that both ends of every slider lie on its grid of steps (reachable by dragging;
a start value at an end is kept when the panel snaps it onto the grid).

Found this way: lesson 10's panel lost the "v" of its y-label off the figure's left edge when its
steps slider went from 300 to 100 (ticks "4.5" -> "2.75"), and lesson 09's name of an earlier run,
written beside its profile's last bar, ran off the right edge.
"""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")

import ipywidgets as W  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from figure_checks import text_problems  # noqa: E402
from test_demos_on_lesson_panels import PANELS, _in_notebook  # noqa: E402
# As the demo replays build the panels: in fast mode (lesson 11's small sweep grid), with a results
# cache of their own (an autouse fixture: imported here, it applies to this module too).
from test_demos_on_lesson_panels import _fast_mode_and_a_fresh_cache  # noqa: E402, F401


@pytest.fixture(autouse=True, scope="module")
def _close_figures():
    yield
    plt.close("all")


def _lesson_01_losses():
    from course_lib.ui.loss_shapes import LossExplorer
    _in_notebook("01", "ui.loss_shapes.LossExplorer()")
    return LossExplorer()


def _lesson_01_outliers():
    from course_lib.ui.loss_shapes import OutlierExplorer
    _in_notebook("01", 'ui.loss_shapes.OutlierExplorer(model="constant", outlier_y=25.0)')
    return OutlierExplorer(model="constant", outlier_y=25.0)


def _lesson_02_descent():
    from course_lib.ui.surfaces import DescentExplorer
    _in_notebook("02", 'ui.surfaces.DescentExplorer(surface="quadratic", optimizer="gd")')
    return DescentExplorer(surface="quadratic", optimizer="gd")


def _lesson_02_landscape():
    from course_lib.ui.surfaces import DescentExplorer
    _in_notebook("02", 'ui.surfaces.DescentExplorer(surface="rosenbrock", optimizer="all")')
    return DescentExplorer(surface="rosenbrock", optimizer="all")


def _lesson_05_cyclic():
    from course_lib.ui.schedules import SchedulePreviewer
    _in_notebook("05", 'ui.schedules.SchedulePreviewer("cyclic", num_steps=600)')
    return SchedulePreviewer("cyclic", num_steps=600)


def _lesson_05_one_cycle():
    from course_lib.ui.schedules import SchedulePreviewer
    _in_notebook("05", 'ui.schedules.SchedulePreviewer("one_cycle", num_steps=NUM_STEPS)',
                 "NUM_STEPS = 200 if FAST else 600")
    return SchedulePreviewer("one_cycle", num_steps=200)


def _lesson_06b():
    import course_lib as cl
    from course_lib.bottleneck import BottleneckRun
    from course_lib.ui.bottleneck import StrengthExplorer
    _in_notebook("06b", "lang = cl.MarkovLanguage(vocab_size=32, scale=50.0, seed=0)",
                 "run = BottleneckRun(lang, strength=0.001, seed=0, device=DEVICE)",
                 "ui.bottleneck.StrengthExplorer(run, entropy_rate=H, unigram_entropy=U, more_steps=MORE_STEPS)",
                 "MORE_STEPS = 100 if FAST else 500")
    lang = cl.MarkovLanguage(vocab_size=32, scale=50.0, seed=0)
    run = BottleneckRun(lang, strength=0.001, seed=0, device="cpu")
    return StrengthExplorer(run, entropy_rate=lang.entropy_rate, unigram_entropy=lang.unigram_entropy,
                            more_steps=100)


BUILDERS = {"01 LossExplorer": _lesson_01_losses, "01 OutlierExplorer": _lesson_01_outliers,
            "02 DescentExplorer quadratic": _lesson_02_descent, "02 DescentExplorer rosenbrock": _lesson_02_landscape,
            "05 SchedulePreviewer cyclic": _lesson_05_cyclic, "05 SchedulePreviewer one_cycle": _lesson_05_one_cycle,
            "06b StrengthExplorer": _lesson_06b,
            # Lesson 11's two panels are left to the demo replays, which move each one's only slider to
            # both ends and check the text after every move (their sweeps and fit cost a minute of CPU
            # again here), and to test_ui_scaling (the budget slider's grid).
            **{f"07-10 {k}": v for k, v in PANELS.items() if k not in ("ComputeBudgetExplorer", "SpectrumExplorer")}}


@functools.cache
def _panel(name: str):
    """Each panel built once for this module (lesson 11's fit and lesson 08's first task take seconds)."""
    return BUILDERS[name]()


def _ends(w) -> list:
    """The two ends of a control's range (first and last option, min and max), or both states of a
    checkbox; nothing for a control without a range."""
    if isinstance(w, W.FloatLogSlider):
        return [w.base ** w.min, w.base ** w.max]
    if hasattr(w, "options"):
        values = [o[1] if isinstance(o, tuple) else o for o in w.options]
        return [values[0], values[-1]]
    if hasattr(w, "min") and hasattr(w, "max"):
        return [w.min, w.max]
    if isinstance(w.value, bool):
        return [not w.value, w.value]
    return []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_each_control_at_both_ends_keeps_the_text_inside_the_figure_and_apart(name):
    panel = _panel(name)
    panel.view.refresh(force=True)                        # the first frame, as show() draws it: laid out, frozen
    assert text_problems(panel.view.fig) == [], "the first frame"
    moved = 0
    for key, w in panel.sliders.items():
        start = w.value
        for value in _ends(w) + [start]:
            w.value = value
            moved += 1
            assert text_problems(panel.view.fig) == [], f"{name}: {key} = {value!r}"
    assert moved, f"{name} has no control with a range"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_each_sliders_ends_are_on_its_grid(name):
    """Both ends of every slider can be reached by dragging, and a start value at an end is kept: the
    start is snapped onto the grid (lesson 07's weight slider started at c = 0.9976, not the plain MRL
    c = 1 it showed as "1.00"; lesson 11's largest budget was out of reach)."""
    panel = _panel(name)
    for key, w in panel.sliders.items():
        if isinstance(w, (W.FloatSlider, W.FloatLogSlider, W.IntSlider)):
            steps = (w.max - w.min) / w.step
            assert steps == pytest.approx(round(steps), abs=1e-6), f"{name}: {key} {w.min}..{w.max} by {w.step}"
