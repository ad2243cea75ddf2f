"""cached_run: a lesson's example run, trained once and then read from disk, equal to a fresh lab's run."""

from __future__ import annotations

import json

import pytest

from course_lib.ui.example_runs import cached_run
from course_lib.ui.lab import TrainingLab

SETTINGS = "task=regression&n_samples=200&train_fraction=0.8&noise=0.1&batch_size=64&width=16&depth=2&lr=0.01"


def _fresh(settings: str, steps: int):
    """The oracle: a new lab, trained the ordinary way (no cache involved)."""
    lab = TrainingLab(device="cpu", eval_every=25)
    lab.max_steps = steps
    lab.apply_settings(settings)
    return lab.run(), lab.baseline


def _no_training(lab, monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("trained, but the run was in the cache")
    monkeypatch.setattr(lab, "run", refuse)


def test_a_cached_run_equals_a_fresh_run_and_the_second_call_trains_nothing(tmp_path, monkeypatch):
    expected, baseline = _fresh(SETTINGS, 60)
    lab = TrainingLab(device="cpu", eval_every=25)
    first = cached_run(lab, SETTINGS, 60, cache_dir=tmp_path)
    assert first.same_curves(expected) and lab.baseline == baseline
    assert len(list((tmp_path / "example_runs").glob("*.json"))) == 1

    _no_training(lab, monkeypatch)
    second = cached_run(lab, SETTINGS, 60, cache_dir=tmp_path)
    assert second.same_curves(expected) and second.events == expected.events
    assert lab.baseline == baseline              # the lab still took the run's settings


def test_a_diverged_run_is_cached_with_its_nan_and_stop_reason(tmp_path, monkeypatch):
    settings = SETTINGS.replace("lr=0.01", "optimizer=sgd&lr=10")
    expected, _ = _fresh(settings, 60)
    assert expected.diverged                     # the case this test is about
    lab = TrainingLab(device="cpu", eval_every=25)
    cached_run(lab, settings, 60, cache_dir=tmp_path)
    _no_training(lab, monkeypatch)
    again = cached_run(lab, settings, 60, cache_dir=tmp_path)
    assert again.same_curves(expected) and again.stop_reason == expected.stop_reason


def test_other_settings_or_steps_are_other_runs(tmp_path):
    lab = TrainingLab(device="cpu", eval_every=25)
    cached_run(lab, SETTINGS, 60, cache_dir=tmp_path)
    longer = cached_run(lab, SETTINGS, 80, cache_dir=tmp_path)
    other = cached_run(lab, SETTINGS.replace("lr=0.01", "lr=0.02"), 60, cache_dir=tmp_path)
    assert len(longer) == 80 and other.same_curves(_fresh(SETTINGS.replace("lr=0.01", "lr=0.02"), 60)[0])
    assert len(list((tmp_path / "example_runs").glob("*.json"))) == 3


def test_a_file_edited_by_hand_is_ignored_and_the_run_repeated(tmp_path):
    lab = TrainingLab(device="cpu", eval_every=25)
    cached_run(lab, SETTINGS, 60, cache_dir=tmp_path)
    (path,) = (tmp_path / "example_runs").glob("*.json")
    stored = json.loads(path.read_text())
    stored["payload"]["values"]["train_loss"][0] = 123.0
    path.write_text(json.dumps(stored))
    again = cached_run(lab, SETTINGS, 60, cache_dir=tmp_path)
    assert again.train_loss[0] != 123.0 and again.same_curves(_fresh(SETTINGS, 60)[0])


def test_use_cache_false_writes_nothing(tmp_path):
    cached_run(TrainingLab(device="cpu", eval_every=25), SETTINGS, 30, cache_dir=tmp_path, use_cache=False)
    assert not (tmp_path / "example_runs").exists()


@pytest.mark.parametrize("kwargs, name", [({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"),
                                          ({"settings": 3}, "settings"), ({"lab": "lab"}, "lab")])
def test_bad_arguments_name_the_parameter(tmp_path, kwargs, name):
    args = {"lab": TrainingLab(device="cpu"), "settings": SETTINGS, "steps": 30, **kwargs}
    with pytest.raises((TypeError, ValueError), match=name):
        cached_run(args.pop("lab"), args.pop("settings"), args.pop("steps"), cache_dir=tmp_path)
