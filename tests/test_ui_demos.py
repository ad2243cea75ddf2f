"""Prepared demos: every settings string parses where it will be played, every demo replays
headless to the end state recorded in its table row, and the picker plays them."""

import math
import time
from urllib.parse import parse_qsl

import matplotlib

matplotlib.use("Agg")

import pytest

from course_lib.ui import demos
from course_lib.ui.demos import DEMOS, end_state, keyframes, replay
from course_lib.ui.lab import LIVE_SETTINGS, TrainingLab
from course_lib.ui.live import same_setting

LAB_DEMOS = [d for d in DEMOS if d.target == "TrainingLab"]
PANEL_DEMOS = [d for d in DEMOS if d.target != "TrainingLab"]


def _id(d):
    return f"{d.lesson}-{d.name[:30]}"


def test_the_table():
    """Lessons 01-06 each ship at least one demo; every row has a script, unique names per lesson."""
    assert {d.lesson for d in DEMOS} >= {"01", "02", "03", "04", "05", "06"}
    for d in DEMOS:
        assert d.script.strip() and d.name.strip()
        assert d.expect or d.target != "TrainingLab", d.name      # a lab demo records its end state
    names = [(d.lesson, d.name) for d in DEMOS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("demo", LAB_DEMOS, ids=_id)
def test_lab_settings_string_parses_into_the_run_it_names(demo):
    """The lab's own parser takes the string; the scheduled changes are exactly the ones written."""
    lab = TrainingLab(device="cpu", **demo.make)
    lab.apply_settings(demo.settings)
    items = dict(parse_qsl(demo.settings))
    for key, value in items.items():
        if key == "changes":
            continue
        got = lab._start_settings[key]
        assert (got == value) if isinstance(got, str) else math.isclose(got, float(value)), key
    expected = {}
    for part in filter(None, items.get("changes", "").split(";")):
        step, _, assign = part.partition(":")
        name, _, value = assign.partition("=")
        assert name in LIVE_SETTINGS + tuple(lab.live_settings)
        expected.setdefault(int(step), {})[name] = float(value)
    assert lab._scheduled == expected
    lab.view.close()


@pytest.mark.parametrize("demo", PANEL_DEMOS, ids=_id)
def test_panel_demo_replays_to_its_end_state(demo):
    """Keyframes name real sliders, each move is accepted, and the panel ends where recorded."""
    panel = replay(demo)
    last = {}
    for frame in keyframes(demo.settings):
        last.update(frame)
    for name, text in last.items():
        w = panel.sliders[name]
        want = demos._convert(w, text)
        assert same_setting(w, panel.settings()[name], want), (name, panel.settings()[name], want)
    if hasattr(panel, "redraw"):
        assert panel.redraw(), panel.status.value                   # the final setting is accepted
    else:
        assert " must " not in panel.status.value, panel.status.value
    for key, value in demo.expect.items():
        if key == "status_has":
            assert value in panel.status.value, panel.status.value
        else:
            assert getattr(panel, key) == value, key
    panel.view.close()


def _check_end(demo, state):
    for key, want in demo.expect.items():
        got = state[key]
        if isinstance(want, tuple):
            value, rel = want
            assert got is not None and abs(got - value) <= rel * abs(value), (key, got, want)
        else:
            assert got == want, (key, got, want)


@pytest.mark.slow
@pytest.mark.parametrize("demo", LAB_DEMOS, ids=_id)
def test_lab_demo_replays_to_its_recorded_end_state(demo):
    h = replay(demo)
    _check_end(demo, end_state(h))


def test_a_wrong_end_state_is_caught():
    """The comparison fails on an end state other than the recorded one (it can fail)."""
    demo = next(d for d in LAB_DEMOS if d.expect.get("stop_reason") == "exploded")
    with pytest.raises(AssertionError):
        _check_end(demo, {"stop_reason": "completed", "stop_step": 202})
    with pytest.raises(AssertionError):
        _check_end(demo, {"stop_reason": "exploded", "stop_step": 300})


def test_lab_picker_lists_the_demos_that_fit_and_plays_one():
    lab = TrainingLab(device="cpu", max_steps=50)
    names = [d.name for d in lab.demos.demos]
    assert "too high an LR diverges" in names
    assert "masking strength collapses the latent" not in names        # needs a lab with a bottleneck
    masked = TrainingLab(device="cpu", masking=0.001)
    assert [d.name for d in masked.demos.demos] == [d.name for d in LAB_DEMOS if "masking" in d.make]
    demo = next(d for d in lab.demos.demos if d.name == "too high an LR diverges")
    lab.demos.choice.value = demo
    assert demo.script in lab.demos.script.value
    lab.demos.buttons["play"].click()
    deadline = time.monotonic() + 120
    while lab.history is None or lab.history.stop_reason == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lab.wait()
    assert lab.history.stop_reason == "exploded"
    assert "changes=200:lr=3" in lab.share.value                  # the copyable string of the run just made
    lab._join()
    lab.view.close()
    masked.view.close()


def test_panel_picker_steps_pauses_and_shows_the_settings_to_copy():
    from course_lib.ui.surfaces import DescentExplorer
    panel = DescentExplorer()
    picker = demos.picker_for(panel) and panel.demos
    demo = next(d for d in picker.demos if d.target == "DescentExplorer")
    picker.choice.value = demo
    picker.step()
    assert panel.settings()["lr"] == pytest.approx(0.02, rel=0.07)
    picker.step()
    assert panel.settings()["lr"] == pytest.approx(0.2, rel=0.07)
    assert "lr=0.2" in picker.settings.value                      # what a lecturer copies into a new demo
    picker.interval = 0.0
    picker.play()
    picker._thread.join(timeout=60)
    assert panel.regime == "diverging" and picker._next == len(keyframes(demo.settings))
    panel.view.close()


@pytest.mark.parametrize("text, error, message", [
    ("", ValueError, "a panel's settings must be keyframes"),
    ("lr=0.1;;", None, None),
])
def test_keyframes_messages(text, error, message):
    if error is None:
        assert keyframes(text) == [{"lr": "0.1"}]
        return
    with pytest.raises(error, match=message):
        keyframes(text)


def test_unknown_slider_is_named():
    from course_lib.ui.schedules import SchedulePreviewer
    p = SchedulePreviewer("cyclic")
    with pytest.raises(ValueError, match=r"apply_keyframe.*unknown=\['pct_start'\]"):
        demos.apply_keyframe(p, {"pct_start": "0.3"})
    with pytest.raises(ValueError, match="has no option 'sawtooth'"):
        demos.apply_keyframe(p, {"mode": "sawtooth"})
    p.view.close()
