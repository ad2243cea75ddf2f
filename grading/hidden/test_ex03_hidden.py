"""Hidden grading tests of notebook 03 (instructors only; not shipped to students).

Property tests against a reference written from the exercise text, and the diagnosis rule on
curves recorded by ``course_lib.fit`` on notebook 04's task (calibrated: without weight decay
the validation loss ends 50% above its minimum while training loss falls; with weight decay
3.0 it ends 8% above it).
"""

import math

import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib.grading import isolated_torch as _isolated


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


@pytest.mark.exercise("3.1")
@pytest.mark.points(1)
def test_ema_on_a_numpy_array(exercise):
    """Iterate over the values whatever their container (list or NumPy array)."""
    x = np.random.default_rng(0).standard_normal(2000).cumsum()
    got = np.asarray(exercise("3.1").ema(x, 0.99), dtype=np.float64)
    want = cl.ema(x, beta=0.99)
    assert got.shape == want.shape and np.allclose(got, want, rtol=1e-9, atol=1e-9), (
        "ema of a NumPy array (beta=0.99) differs from course_lib.curves.ema")


@pytest.mark.exercise("3.2")
@pytest.mark.points(2)
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


@pytest.fixture(scope="module")
def recorded_runs():
    data = cl.make_regression(220, kind="polynomial", noise=0.3, val_fraction=0.9, seed=1)
    runs = {}
    for wd in (0.0, 3.0):
        with _isolated():
            torch.manual_seed(0)
            h = cl.fit(cl.MLP(1, 1, width=128, depth=2), data, optimizer="adamw", lr=1e-2, weight_decay=wd,
                       num_steps=1000, batch_size=32, eval_every=25, device="cpu", seed=0)
        train = [h.train_loss[min(s, len(h.train_loss) - 1)] for s in h.val_step]
        runs[wd] = (train, h.val_loss)
    return runs


@pytest.mark.exercise("3.4")
@pytest.mark.points(1)
def test_is_overfitting_on_recorded_runs(exercise, recorded_runs):
    """Both conditions, with i_min the first argmin of the validation losses."""
    f = exercise("3.4").is_overfitting
    for wd, want in [(0.0, True), (3.0, False)]:
        train, val = recorded_runs[wd]
        i = int(np.argmin(val))
        got = f(train, val)
        assert bool(got) == want, (
            f"weight decay {wd}: validation loss min {val[i]:.3f} at evaluation {i}, last {val[-1]:.3f}; training loss "
            f"{train[i]:.3f} -> {train[-1]:.3f}: is_overfitting should be {want}; got {got!r}")


@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
def test_is_diverged_on_a_long_healthy_curve_with_numpy_floats(exercise):
    """Return a Python bool (True/False), also for NumPy input."""
    losses = np.exp(-np.linspace(0, 5, 1000)) + 0.01
    assert exercise("3.3").is_diverged(losses) is False, "a smoothly falling curve (a NumPy array) has not diverged"
    losses[500] = np.inf
    assert exercise("3.3").is_diverged(losses) is True, "an inf in the middle of a NumPy array means the run diverged"
