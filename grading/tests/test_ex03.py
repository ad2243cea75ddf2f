"""Grading tests of notebook 03 (reading loss curves): exercises 3.1-3.4.

Oracles: ``course_lib.curves.ema`` and pandas' ``ewm(adjust=True)`` for the EMA,
``course_lib.fit``'s own early stopping, and hand-made curves for the diagnosis rules.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import course_lib as cl
from course_lib.grading import isolated_torch as _isolated


def _noisy_curve(n=500, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 2.0 * np.exp(-t / 150) + 0.3 + 0.2 * rng.standard_normal(n)


def _as_floats(got, name):
    try:
        return np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError) as e:
        pytest.fail(f"{name} should return a list of floats; got {type(got).__name__} ({e})")


# ----------------------------------------------------------------------------- 3.1 ema
@pytest.mark.exercise("3.1")
@pytest.mark.points(1)
def test_ema_hand_computed(exercise):
    """s_t = beta * s_{t-1} + (1 - beta) * x_t from s_0 = 0, then divide by 1 - beta**t (t from 1)."""
    got = _as_floats(exercise("3.1").ema([1.0, 2.0], beta=0.5), "ema")
    want = [1.0, 1.25 / 0.75]
    assert got.shape == (2,) and np.allclose(got, want, rtol=1e-12), (
        f"ema([1, 2], beta=0.5) should be [0.5 / 0.5, 1.25 / 0.75] = {want}; got {got.tolist()}")


@pytest.mark.exercise("3.1")
@pytest.mark.points(1)
def test_ema_keeps_a_constant_constant(exercise):
    """Divide by 1 - beta**t with t counted from 1: the bias correction."""
    got = _as_floats(exercise("3.1").ema([3.0] * 20, beta=0.98), "ema")
    assert np.allclose(got, 3.0, rtol=1e-12), (
        f"the bias-corrected EMA of a constant 3.0 should stay 3.0; got {got[:4].tolist()} ... "
        "Hint: divide s_t by 1 - beta**t (t counted from 1)")


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
    """Keep the uncorrected s in the loop and append the corrected s / (1 - beta**t)."""
    x = _noisy_curve()
    got = _as_floats(exercise("3.1").ema(list(x), beta=beta), "ema")
    want = cl.ema(x, beta=beta)
    want_pandas = pd.Series(x).ewm(alpha=1 - beta, adjust=True).mean().to_numpy()
    assert np.allclose(want, want_pandas, rtol=1e-10)  # the two oracles agree
    assert got.shape == x.shape, f"ema of {len(x)} values should return {len(x)} values; got {got.shape[0]}"
    err = np.abs(got - want).max()
    assert err < 1e-9, (
        f"ema(beta={beta}) differs from course_lib.curves.ema by up to {err:.3g} (first differing index "
        f"{int(np.argmax(np.abs(got - want) > 1e-9))})")


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
    """Improvement: v < best - min_delta (best = v, wait = 0); otherwise wait += 1; stop at the first i with
    wait >= patience."""
    got = exercise("3.2").early_stopping_step(val_losses, patience, min_delta)
    assert got == expected, f"early_stopping_step({val_losses}, patience={patience}) should be {expected}; got {got!r}"


@pytest.mark.exercise("3.2")
@pytest.mark.points(1)
def test_early_stopping_min_delta(exercise):
    """Move `best` only on a real improvement (more than min_delta); small improvements count as waiting."""
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
        f"0.94 is (best becomes 0.94), then 0.93, 0.92, 0.91 are not; got {got!r}. Hint: move `best` only on a real "
        "improvement")


@pytest.mark.exercise("3.2")
@pytest.mark.points(2)
def test_early_stopping_agrees_with_course_lib_fit(exercise):
    """Return the 0-based index of the evaluation at which wait reaches patience."""
    f = exercise("3.2").early_stopping_step
    data = cl.make_regression(220, kind="polynomial", noise=0.3, val_fraction=0.9, seed=1)

    def run(**kw):
        with _isolated():
            torch.manual_seed(0)
            return cl.fit(cl.MLP(1, 1, width=128, depth=2), data, lr=1e-2, num_steps=400, batch_size=32,
                          eval_every=25, device="cpu", seed=0, **kw)

    full = run()
    for patience, min_delta in [(5, 0.0), (3, 0.01)]:
        stopped = run(early_stopping=patience, min_delta=min_delta)
        assert stopped.stop_reason == "early_stopping"  # the oracle itself stopped early
        want = len(stopped.val_loss) - 1
        got = f(full.val_loss, patience, min_delta)
        assert got == want, (
            f"on a real run (validation losses {np.round(full.val_loss, 3).tolist()}), fit(early_stopping={patience}, "
            f"min_delta={min_delta}) stopped at evaluation {want}; your early_stopping_step says {got!r}")


# ----------------------------------------------------------------------------- 3.3 is_diverged
def _check_diverged(f, cases):
    for losses, factor, expected in cases:
        got = f(losses, factor)
        hint = " Hint: nan > x is always False; use math.isfinite" if any(map(math.isnan, losses)) else ""
        assert isinstance(got, (bool, np.bool_)) and bool(got) == expected, (
            f"is_diverged({losses}, factor={factor}) should be {expected}; got {got!r}.{hint}")


@pytest.mark.exercise("3.3")
@pytest.mark.points(2)
def test_is_diverged_on_non_finite_losses(exercise):
    """math.isfinite(x) is False for nan, inf and -inf; comparisons with nan are always False."""
    _check_diverged(exercise("3.3").is_diverged, [
        ([1.0, 0.8, 0.5, 0.3], 1e3, False),
        ([1.0, 0.8, float("nan")], 1e3, True),
        ([1.0, float("inf"), 0.5], 1e3, True),
        ([1.0, 0.5, float("-inf")], 1e3, True),
    ])


@pytest.mark.exercise("3.3")
@pytest.mark.points(2)
def test_is_diverged_on_exploding_losses(exercise):
    """Compare every loss with factor * losses[0] (the first loss), not with the previous one."""
    _check_diverged(exercise("3.3").is_diverged, [
        ([2.0, 5.0, 1999.0], 1e3, False),      # below 1000 x the first loss
        ([2.0, 5.0, 2001.0, 3.0], 1e3, True),  # above it, even if it comes back
        ([2.0, 5.0, 250.0], 100.0, True),
        ([0.5, 1.2, 0.9, 1.4, 0.7], 1e3, False),  # noisy but bounded
    ])


@pytest.mark.exercise("3.3")
@pytest.mark.points(1)
def test_is_diverged_default_factor_and_type(exercise):
    """Keep factor=1e3 as the default and return a Python bool (True/False)."""
    f = exercise("3.3").is_diverged
    got_low, got_high = f([1.0, 999.0]), f([1.0, 1001.0])
    assert isinstance(got_low, bool) and isinstance(got_high, bool), (
        f"is_diverged should return a Python bool; got {type(got_low).__name__}")
    assert (got_low, got_high) == (False, True), (
        f"the default factor is 1e3: [1, 999] should be False and [1, 1001] True; got {got_low}, {got_high}")


# ----------------------------------------------------------------------------- 3.4 is_overfitting
_OVERFIT_TABLE = [
    # (train, val, rise, expected, what)
    ([1.0, 0.6, 0.4, 0.3, 0.2], [1.0, 0.7, 0.6, 0.7, 0.8], 0.1, True, "classic: val up 33%, train down"),
    ([1.0, 0.6, 0.4, 0.3, 0.2], [1.0, 0.7, 0.6, 0.55, 0.5], 0.1, False, "both still falling"),
    ([1.0, 0.6, 0.4, 0.3, 0.2], [1.0, 0.7, 0.6, 0.62, 0.63], 0.1, False, "val only 5% above its minimum"),
    ([1.0, 0.6, 0.4, 0.3, 0.2], [1.0, 0.7, 0.6, 0.62, 0.63], 0.02, True, "5% is more than rise=2%"),
    ([1.0, 0.6, 0.4, 0.7, 1.5], [1.0, 0.7, 0.6, 0.9, 1.6], 0.1, False, "both rise: not overfitting"),
    ([1.0, 0.6, 0.4, 0.3, 0.2], [1.0, 0.9, 0.8, 0.7, 0.6], 0.0, False, "val minimum is the last point"),
    ([1.0, 0.5, 0.4, 0.4, 0.4], [1.0, 0.6, 0.5, 0.7, 0.9], 0.1, False, "train stopped falling after the val minimum"),
]


@pytest.mark.exercise("3.4")
@pytest.mark.points(1)
@pytest.mark.parametrize("train, val, rise, expected, what", _OVERFIT_TABLE, ids=[r[-1] for r in _OVERFIT_TABLE])
def test_is_overfitting_table(exercise, train, val, rise, expected, what):
    """Both conditions: val[-1] > (1 + rise) * val[i_min] and train[-1] < train[i_min], i_min = argmin of val."""
    got = exercise("3.4").is_overfitting(train, val, rise)
    assert isinstance(got, (bool, np.bool_)) and bool(got) == expected, (
        f"{what}: is_overfitting(train={train}, val={val}, rise={rise}) should be {expected}; got {got!r}")


@pytest.mark.exercise("3.4")
@pytest.mark.points(1)
def test_is_overfitting_default_rise(exercise):
    """Keep rise=0.1 as the default; the comparison is strict (>)."""
    f = exercise("3.4").is_overfitting
    train = [1.0, 0.5, 0.3, 0.2]
    got = (f(train, [1.0, 0.5, 0.54, 0.54]), f(train, [1.0, 0.5, 0.54, 0.56]))
    assert got == (False, True), (
        f"the default rise is 0.1: a last validation loss 8% above the minimum is not overfitting, 12% is; got {got}")
