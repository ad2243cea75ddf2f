"""Grading tests of notebook 03 (reading loss curves): exercises 3.1-3.4.

Oracles: pandas' ``ewm(adjust=True)`` and the closed form of the bias-corrected EMA, the rules of
the exercise text written out as references below (never the course's own output), hand-made
curves for the edge cases (ties, exact boundaries), and random curves against the references.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import course_lib as cl
from course_lib.grading import isolated_torch as _isolated
from course_lib.grading import reference


def _noisy_curve(n=500, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 2.0 * np.exp(-t / 150) + 0.3 + 0.2 * rng.standard_normal(n)


def _as_floats(got, name):
    try:
        return np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError) as e:
        pytest.fail(f"{name} should return a list of floats; got {type(got).__name__} ({e})")


def _type_name(x):
    return f"{type(x).__module__}.{type(x).__qualname__}".replace("builtins.", "")


def _reference_stop(val_losses, patience, min_delta):
    """3.2 as the exercise text states it (written apart from the master: this file ships to students)."""
    best, since_best = math.inf, 0
    for step, value in enumerate(val_losses):
        improved = value < best - min_delta
        best = value if improved else best
        since_best = 0 if improved else since_best + 1
        if since_best >= patience:
            return step
    return None


# ----------------------------------------------------------------------------- 3.1 ema
@pytest.mark.exercise("3.1")
@pytest.mark.points(1)
def test_ema_hand_computed(exercise):
    """Start the running average at 0, and correct each value for the weight that start still has."""
    got = _as_floats(exercise("3.1").ema([1.0, 2.0], beta=0.5), "ema")
    want = [1.0, 1.25 / 0.75]
    assert got.shape == (2,) and np.allclose(got, want, rtol=1e-12), (
        f"ema([1, 2], beta=0.5) should be [0.5 / 0.5, 1.25 / 0.75] = {want}; got {got.tolist()}")


@pytest.mark.exercise("3.1")
@pytest.mark.points(1)
def test_ema_keeps_a_constant_constant(exercise):
    """The bias correction divides by the total weight the values have so far (steps counted from 1)."""
    got = _as_floats(exercise("3.1").ema([3.0] * 20, beta=0.98), "ema")
    assert np.allclose(got, 3.0, rtol=1e-12), (
        f"the bias-corrected EMA of a constant 3.0 should stay 3.0; got {got[:4].tolist()} ... "
        "Hint: the bias correction removes the pull of the start value 0")


@pytest.mark.exercise("3.1")
@pytest.mark.points(1)
def test_ema_beta_zero_is_identity(exercise):
    """With beta = 0 every smoothed value is the raw value."""
    x = [0.3, 1.5, -2.0, 4.0]
    got = _as_floats(exercise("3.1").ema(x, beta=0.0), "ema")
    assert np.allclose(got, x, rtol=1e-12), f"ema(x, beta=0) should return x = {x}; got {got.tolist()}"


@pytest.mark.exercise("3.1")
@pytest.mark.points(1)
@pytest.mark.parametrize("beta", [0.9, 0.98])
def test_ema_matches_course_lib_and_pandas(exercise, beta):
    """The running average itself stays uncorrected; only the value you report is divided by the correction."""
    x = _noisy_curve()
    got = _as_floats(exercise("3.1").ema(list(x), beta=beta), "ema")
    want = pd.Series(x).ewm(alpha=1 - beta, adjust=True).mean().to_numpy()
    t = np.arange(1, len(x) + 1)  # closed form: sum_k (1-b) b^(t-k) x_k / (1 - b^t)
    closed = np.array([((1 - beta) * beta ** (t[i] - t[: i + 1]) * x[: i + 1]).sum() / (1 - beta ** t[i])
                       for i in range(0, len(x), 50)])
    assert np.allclose(want[::50], closed, rtol=1e-10)  # the two oracles agree
    assert got.shape == x.shape, f"ema of {len(x)} values should return {len(x)} values; got {got.shape[0]}"
    err = np.abs(got - want).max()
    assert err < 1e-9, (
        f"ema(beta={beta}) differs from pandas' ewm(alpha=1 - beta, adjust=True) by up to {err:.3g} (first differing "
        f"index {int(np.argmax(np.abs(got - want) > 1e-9))})")


# ----------------------------------------------------------------------------- 3.2 early_stopping_step
_ES_TABLE = [
    # (val_losses, patience, min_delta, expected)
    ([1.0, 0.8, 0.9, 0.85, 0.95], 3, 0.0, 4),
    ([1.0, 0.8, 0.9, 0.85, 0.95], 4, 0.0, None),
    ([1.0, 0.9, 0.8, 0.7, 0.6], 1, 0.0, None),
    ([1.0, 1.0, 1.0], 2, 0.0, 2),            # equal is not an improvement
    ([1.0, 0.9, 0.95, 0.85, 0.9, 0.9], 2, 0.0, 5),
    ([1.0, 2.0], 1, 0.0, 1),
]


@pytest.mark.exercise("3.2")
@pytest.mark.points(1)
@pytest.mark.parametrize("val_losses, patience, min_delta, expected", _ES_TABLE)
def test_early_stopping_table(exercise, val_losses, patience, min_delta, expected):
    """An improvement must beat the best loss so far by more than min_delta; stop at the evaluation where the
    evaluations without improvement reach patience."""
    got = exercise("3.2").early_stopping_step(val_losses, patience, min_delta)
    assert got == expected, f"early_stopping_step({val_losses}, patience={patience}) should be {expected}; got {got!r}"


@pytest.mark.exercise("3.2")
@pytest.mark.points(1)
def test_early_stopping_min_delta(exercise):
    """Move the best loss only on a real improvement (more than min_delta); small improvements count as waiting."""
    f = exercise("3.2").early_stopping_step
    losses = [1.0, 0.99, 0.98, 0.97, 0.96]  # steady, but tiny, improvements
    assert f(losses, 2, 0.0) is None, f"improving every time: no stop without min_delta; got {f(losses, 2, 0.0)!r}"
    got = f(losses, 2, 0.05)
    assert got == 2, (
        f"with min_delta=0.05 an improvement of 0.01 does not count, so patience 2 runs out at evaluation 2; got "
        f"{got!r}")
    losses = [1.0, 0.97, 0.94, 0.93, 0.92, 0.91]
    got = f(losses, 3, 0.05)
    assert got == 5, (
        f"early_stopping_step({losses}, patience=3, min_delta=0.05) should be 5: 0.97 is no real improvement on 1.0, "
        f"0.94 is (best becomes 0.94), then 0.93, 0.92, 0.91 are not; got {got!r}. Hint: the best loss only moves on a "
        "real improvement")


@reference(warm=[()])  # the same run for every student (it is the test's input): the batch grader trains it once
def _recorded_curve():
    """The validation losses of a 400-step run, one every 25 steps."""
    data = cl.make_regression(220, kind="polynomial", noise=0.3, val_fraction=0.9, seed=1)
    with _isolated():
        torch.manual_seed(0)
        full = cl.fit(cl.MLP(1, 1, width=128, depth=2), data, lr=1e-2, num_steps=400, batch_size=32,
                      eval_every=25, device="cpu", seed=0)
    return [float(v) for v in full.val_loss]


@pytest.mark.exercise("3.2")
@pytest.mark.points(2)
def test_early_stopping_on_a_real_run(exercise):
    """Count from 0, and follow the three steps of the exercise text on a recorded validation curve."""
    f = exercise("3.2").early_stopping_step
    curve = _recorded_curve()
    for patience, min_delta in [(5, 0.0), (3, 0.01)]:
        want = _reference_stop(curve, patience, min_delta)
        assert want is not None  # the test's own curve stops early
        got = f(curve, patience, min_delta)
        assert got == want, (
            f"on a real run (validation losses {np.round(curve, 3).tolist()}), patience={patience}, "
            f"min_delta={min_delta}: training stops at evaluation {want}; your early_stopping_step says {got!r}")


@pytest.mark.exercise("3.2")
@pytest.mark.points(4)
def test_early_stopping_on_random_curves(exercise):
    """Follow the three steps of the exercise text exactly: ties and tiny improvements are not improvements."""
    f = exercise("3.2").early_stopping_step
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        curve = (1.0 / (1 + np.arange(n)) + 0.05 * rng.standard_normal(n)).round(2).tolist()  # ties happen
        patience = int(rng.integers(1, 5))
        min_delta = float(rng.choice([0.0, 0.02, 0.05]))
        want = _reference_stop(curve, patience, min_delta)
        got = f(curve, patience, min_delta)
        assert got == want, (
            f"early_stopping_step({curve}, patience={patience}, min_delta={min_delta}) should be {want}; got {got!r}")


# ----------------------------------------------------------------------------- 3.3 is_diverged
def _check_diverged(f, cases):
    for losses, factor, expected in cases:
        got = f(losses, factor)
        hint = " Hint: every comparison with nan is False" if any(map(math.isnan, losses)) else ""
        assert isinstance(got, (bool, np.bool_)) and bool(got) == expected, (
            f"is_diverged({losses}, factor={factor}) should be {expected}; got {got!r}.{hint}")


@pytest.mark.exercise("3.3")
@pytest.mark.points(2)
def test_is_diverged_on_non_finite_losses(exercise):
    """nan, inf and -inf all mean the run diverged, and no comparison with nan is ever True."""
    _check_diverged(exercise("3.3").is_diverged, [
        ([1.0, 0.8, 0.5, 0.3], 1e3, False),
        ([1.0, 0.8, float("nan")], 1e3, True),
        ([1.0, float("inf"), 0.5], 1e3, True),
        ([1.0, 0.5, float("-inf")], 1e3, True),
        ([1.0, float("nan"), 0.5, 0.4], 1e3, True),
    ])


@pytest.mark.exercise("3.3")
@pytest.mark.points(2)
def test_is_diverged_on_exploding_losses(exercise):
    """Compare every loss with factor times the first loss, not with its neighbour or the last one."""
    _check_diverged(exercise("3.3").is_diverged, [
        ([2.0, 5.0, 1999.0], 1e3, False),      # below 1000 x the first loss
        ([2.0, 5.0, 2001.0, 3.0], 1e3, True),  # above it, even if it comes back
        ([2.0, 5.0, 250.0], 100.0, True),
        ([0.5, 1.2, 0.9, 1.4, 0.7], 1e3, False),  # noisy but bounded
        ([1.0, 0.01, 5.0], 100.0, False),      # 500 x the previous loss, but only 5 x the first
        ([10.0, 0.001, 0.002], 100.0, False),  # ends far below the first loss
    ])


@pytest.mark.exercise("3.3")
@pytest.mark.points(2)
def test_is_diverged_boundary_is_strict(exercise):
    """'More than factor times the first loss': a loss of exactly factor times the first has not blown up."""
    _check_diverged(exercise("3.3").is_diverged, [
        ([2.0, 1.0, 2000.0], 1e3, False),
        ([0.5, 50.0], 100.0, False),
        ([0.5, 50.5], 100.0, True),
    ])


@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
def test_is_diverged_default_factor_and_type(exercise):
    """Keep factor=1e3 as the default and return a Python bool (True/False), not a NumPy one."""
    f = exercise("3.3").is_diverged
    got_low, got_high = f([1.0, 999.0]), f([1.0, 1001.0])
    assert isinstance(got_low, bool) and isinstance(got_high, bool), (
        f"is_diverged should return a Python bool; got {_type_name(got_low)} ({got_low!r}). bool(...) converts it")
    assert (got_low, got_high) == (False, True), (
        f"the default factor is 1e3: [1, 999] should be False and [1, 1001] True; got {got_low}, {got_high}")


# ----------------------------------------------------------------------------- 3.4 is_overfitting
def _check_overfitting(f, cases):
    for train, val, rise, expected, what in cases:
        got = f(train, val, rise)
        assert isinstance(got, (bool, np.bool_)) and bool(got) == expected, (
            f"{what}: is_overfitting(train={train}, val={val}, rise={rise}) should be {expected}; got {got!r}")


_TRAIN = [1.0, 0.6, 0.4, 0.3, 0.2]


@pytest.mark.exercise("3.4")
@pytest.mark.points(2)
def test_is_overfitting_validation_condition(exercise):
    """The last validation loss must be more than a fraction rise above the lowest validation loss (relative, not
    absolute)."""
    _check_overfitting(exercise("3.4").is_overfitting, [
        (_TRAIN, [1.0, 0.7, 0.6, 0.7, 0.8], 0.1, True, "classic: val up 33%, train down"),
        (_TRAIN, [1.0, 0.7, 0.6, 0.55, 0.5], 0.1, False, "both still falling"),
        (_TRAIN, [1.0, 0.7, 0.6, 0.62, 0.63], 0.1, False, "val only 5% above its minimum"),
        (_TRAIN, [1.0, 0.7, 0.6, 0.62, 0.63], 0.02, True, "5% is more than rise=2%"),
        (_TRAIN, [8.0, 6.0, 4.0, 4.2, 4.6], 0.1, True, "val 15% above a minimum of 4"),
        (_TRAIN, [0.1, 0.05, 0.02, 0.04, 0.06], 0.5, True, "val 3 x its minimum of 0.02"),
    ])


@pytest.mark.exercise("3.4")
@pytest.mark.points(2)
def test_is_overfitting_training_condition(exercise):
    """Overfitting also needs the training loss to have kept falling after the validation minimum."""
    _check_overfitting(exercise("3.4").is_overfitting, [
        ([1.0, 0.6, 0.4, 0.7, 1.5], [1.0, 0.7, 0.6, 0.9, 1.6], 0.1, False, "both rise: not overfitting"),
        ([1.0, 0.5, 0.4, 0.4, 0.4], [1.0, 0.6, 0.5, 0.7, 0.9], 0.1, False, "train stopped falling after the val minimum"),
        ([1.0, 0.5, 0.3, 0.29, 0.28], [1.0, 0.6, 0.5, 0.7, 0.9], 0.1, True, "train still falling, slowly"),
    ])


@pytest.mark.exercise("3.4")
@pytest.mark.points(2)
def test_is_overfitting_compares_training_at_the_validation_minimum(exercise):
    """The training loss is compared at the evaluation of the lowest validation loss, not at the start or at its own
    minimum."""
    _check_overfitting(exercise("3.4").is_overfitting, [
        ([1.0, 0.3, 0.5, 0.6, 0.5], [1.0, 0.7, 0.6, 0.7, 0.8], 0.1, False, "train below its start but above i_min"),
        ([1.0, 0.6, 0.4, 0.3, 0.35], [1.0, 0.7, 0.6, 0.7, 0.8], 0.1, True, "train below i_min, above its own minimum"),
        (_TRAIN, [1.0, 0.7, 0.6, 0.55, 0.5], 0.0, False, "val minimum is the last point"),
    ])


@pytest.mark.exercise("3.4")
@pytest.mark.points(1)
def test_is_overfitting_boundary_is_strict(exercise):
    """'More than rise above the minimum': exactly (1 + rise) times the minimum is not overfitting."""
    _check_overfitting(exercise("3.4").is_overfitting, [
        (_TRAIN, [1.0, 0.5, 0.6, 0.7, 0.75], 0.5, False, "val exactly 1.5 x its minimum, rise=0.5"),
        (_TRAIN, [1.0, 0.5, 0.6, 0.5, 0.5], 0.0, False, "val back at its minimum, rise=0"),
    ])


@pytest.mark.exercise("3.4")
@pytest.mark.points(1)
def test_is_overfitting_takes_the_first_minimum_on_ties(exercise):
    """If the lowest validation loss occurs more than once, i_min is the first one."""
    _check_overfitting(exercise("3.4").is_overfitting, [
        ([1.0, 0.6, 0.4, 0.3, 0.35], [1.0, 0.5, 0.9, 0.5, 0.7], 0.1, True, "minimum 0.5 at evaluations 1 and 3"),
    ])


@pytest.mark.exercise("3.4")
@pytest.mark.points(1)
def test_is_overfitting_default_rise(exercise):
    """Keep rise=0.1 as the default."""
    f = exercise("3.4").is_overfitting
    train = [1.0, 0.5, 0.3, 0.2]
    got = (f(train, [1.0, 0.5, 0.54, 0.54]), f(train, [1.0, 0.5, 0.54, 0.56]))
    assert got == (False, True), (
        f"the default rise is 0.1: a last validation loss 8% above the minimum is not overfitting, 12% is; got {got}")
