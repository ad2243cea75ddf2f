"""Hidden grading tests of notebook 03 (instructors only; not shipped to students).

Property tests against references written from the exercise text (random curves with ties and
exact boundaries), and the diagnosis rule on curves recorded by ``course_lib.fit`` on notebook
04's task (the recorded curves are data: what they should give comes from the reference, so a
curve that lands near a boundary on another machine cannot fail a correct answer).
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import course_lib as cl
from course_lib.grading import isolated_torch as _isolated
from course_lib.grading import reference


def _reference_stop(val_losses, patience, min_delta):
    best, wait = math.inf, 0
    for i, v in enumerate(val_losses):
        if v < best - min_delta:
            best, wait = v, 0
        else:
            wait += 1
        if wait >= patience:
            return i
    return None


def _reference_diverged(losses, factor):
    return any(not math.isfinite(x) or x > factor * losses[0] for x in losses)


def _reference_overfitting(train, val, rise):
    i = min(range(len(val)), key=lambda k: (val[k], k))  # the first minimum
    return val[-1] > (1 + rise) * val[i] and train[-1] < train[i]


@pytest.mark.exercise("3.1")
@pytest.mark.points(1)
def test_ema_on_a_numpy_array(exercise):
    """Iterate over the values whatever their container (list or NumPy array)."""
    x = np.random.default_rng(0).standard_normal(2000).cumsum()
    got = np.asarray(exercise("3.1").ema(x, 0.99), dtype=np.float64)
    want = pd.Series(x).ewm(alpha=0.01, adjust=True).mean().to_numpy()
    assert got.shape == want.shape and np.allclose(got, want, rtol=1e-9, atol=1e-9), (
        "ema of a NumPy array (beta=0.99) differs from pandas' ewm(alpha=1 - beta, adjust=True)")


@pytest.mark.exercise("3.2")
@pytest.mark.points(4)
def test_early_stopping_on_random_curves(exercise):
    """Follow the three steps of the exercise text exactly."""
    f = exercise("3.2").early_stopping_step
    rng = np.random.default_rng(1)
    for k in range(300):
        n = int(rng.integers(1, 40))
        curve = (1.0 / (1 + np.arange(n)) + 0.05 * rng.standard_normal(n)).round(3).tolist()
        patience = int(rng.integers(1, 6))
        min_delta = float(rng.choice([0.0, 0.01, 0.05]))
        want = _reference_stop(curve, patience, min_delta)
        got = f(curve, patience, min_delta)
        assert got == want, (
            f"early_stopping_step({curve}, patience={patience}, min_delta={min_delta}) should be {want}; got {got!r}")


@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
def test_is_diverged_on_a_long_numpy_curve(exercise):
    """A NumPy array of losses: the same rule as for a list."""
    f = exercise("3.3").is_diverged
    losses = np.exp(-np.linspace(0, 5, 1000)) + 0.01
    for where, value, want in [(None, None, False), (500, np.inf, True), (700, np.nan, True), (900, 1e4, True)]:
        x = losses.copy()
        if where is not None:
            x[where] = value
        got = f(x)
        what = "a smoothly falling curve" if where is None else f"a falling curve with {value} at index {where}"
        assert bool(got) == want, f"{what} (a NumPy array): is_diverged should be {want}; got {got!r}"


@pytest.mark.exercise("3.3")
@pytest.mark.points(4)
def test_is_diverged_on_random_curves(exercise):
    """Both rules of the exercise text, on every loss: not finite, or more than factor times the first loss."""
    f = exercise("3.3").is_diverged
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        factor = float(rng.choice([2.0, 10.0, 100.0]))
        curve = rng.choice([0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0], size=n).tolist()
        if rng.random() < 0.2:
            curve[int(rng.integers(0, n))] = float(rng.choice([math.nan, math.inf, -math.inf]))
        want = _reference_diverged(curve, factor)
        got = f(curve, factor)
        assert bool(got) == want, f"is_diverged({curve}, factor={factor}) should be {want}; got {got!r}"


@reference(warm=[()])  # the same two runs for every student: the batch grader runs them once
def _recorded_runs():
    data = cl.make_regression(220, kind="polynomial", noise=0.3, val_fraction=0.9, seed=1)
    runs = {}
    for wd in (0.0, 3.0):
        with _isolated():
            torch.manual_seed(0)
            h = cl.fit(cl.MLP(1, 1, width=128, depth=2), data, optimizer="adamw", lr=1e-2, weight_decay=wd,
                       num_steps=1000, batch_size=32, eval_every=25, device="cpu", seed=0)
        train = [float(h.train_loss[min(s, len(h.train_loss) - 1)]) for s in h.val_step]
        runs[wd] = (train, [float(v) for v in h.val_loss])
    return runs


@pytest.fixture
def recorded_runs():
    return _recorded_runs()


@pytest.mark.exercise("3.4")
@pytest.mark.points(1)
def test_is_overfitting_on_recorded_runs(exercise, recorded_runs):
    """Both conditions, with i_min the first minimum of the validation losses."""
    f = exercise("3.4").is_overfitting
    for wd in (0.0, 3.0):
        train, val = recorded_runs[wd]
        for rise in (0.05, 0.1, 0.3):
            want = _reference_overfitting(train, val, rise)
            got = f(train, val, rise)
            i = int(np.argmin(val))
            assert bool(got) == want, (
                f"weight decay {wd}, rise={rise}: validation loss min {val[i]:.4f} at evaluation {i}, last "
                f"{val[-1]:.4f}; training loss {train[i]:.4f} -> {train[-1]:.4f}: is_overfitting should be {want}; "
                f"got {got!r}")


@pytest.mark.exercise("3.4")
@pytest.mark.points(3)
def test_is_overfitting_on_random_curves(exercise):
    """Both conditions of the exercise text, strict comparisons, the first minimum on ties."""
    f = exercise("3.4").is_overfitting
    rng = np.random.default_rng(4)
    levels = [0.5, 0.6, 0.75, 0.8, 1.0, 1.2, 1.5]  # few levels: ties and exact (1 + rise) multiples happen
    for _ in range(300):
        n = int(rng.integers(2, 9))
        val = rng.choice(levels, size=n).tolist()
        train = rng.choice(levels, size=n).tolist()
        rise = float(rng.choice([0.0, 0.25, 0.5, 1.0]))
        want = _reference_overfitting(train, val, rise)
        got = f(train, val, rise)
        assert bool(got) == want, (
            f"is_overfitting(train={train}, val={val}, rise={rise}) should be {want}; got {got!r}")
