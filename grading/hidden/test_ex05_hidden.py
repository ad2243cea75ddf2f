"""Hidden grading tests of notebook 05 (instructors only; not shipped to students).

The max_lr rule on a third optimizer (SGD with momentum 0.9; calibrated: validation MSE
< 0.02 for max_lr in about [9e-3, 0.25]), and the steep rule on a real range test.
"""


import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib.grading import isolated_torch as _isolated


def _model():
    torch.manual_seed(0)
    return cl.MLP(1, 1, width=64, depth=2)


@pytest.fixture(scope="module")
def momentum_range_test():
    data = cl.make_regression(600, kind="polynomial", degree=5, noise=0.1, seed=0)
    with _isolated():
        r = cl.lr_range_test(_model(), data, optimizer="momentum", start_lr=1e-5, end_lr=10, num_iter=100,
                             batch_size=64, device="cpu")
    return data, r


@pytest.mark.exercise("5.4")
@pytest.mark.points(1)
def test_pick_trains_with_momentum(exercise, momentum_range_test):
    """Read the max_lr from the curve (every optimizer has its own range), not a fixed number."""
    data, r = momentum_range_test
    max_lr = float(exercise("5.4").pick_max_lr(list(r.lrs), list(r.smoothed_losses)))
    with _isolated():
        h = cl.fit(_model(), data, optimizer="momentum", lr=max_lr, num_steps=300, batch_size=64, eval_every=300,
                   device="cpu", lr_schedule=cl.one_cycle_schedule(max_lr=max_lr, total_steps=300))
    got = h.val_loss[-1] if h.val_loss and h.stop_reason == "completed" else float("nan")
    assert got < 0.02, (
        f"SGD with momentum: one-cycle with max_lr = {max_lr:.3g} should reach a validation MSE below 0.02; got "
        f"{got:.4f}")


@pytest.mark.exercise("5.3")
@pytest.mark.points(1)
def test_steepest_on_a_real_range_test(exercise, momentum_range_test):
    """Follow the four steps of the exercise text exactly."""
    _, r = momentum_range_test
    lrs, losses = np.array(r.lrs), np.array(r.smoothed_losses)
    got = exercise("5.3").steepest_lr(lrs, losses, skip_start=3, skip_end=2)
    finite = np.isfinite(losses)  # the four steps of the exercise text, written out
    n = len(losses) if finite.all() else int(np.argmin(finite))
    lrs, losses = lrs[:n][3:n - 2], losses[:n][3:n - 2]
    want = float(lrs[int(np.argmin(np.diff(losses) / np.diff(np.log(lrs))))])
    assert got == pytest.approx(want, rel=1e-12), (
        f"on a real range test the steep suggestion is {want:.6g}; got {got!r}")


@pytest.mark.exercise("5.1")
@pytest.mark.points(1)
def test_triangular_with_integer_and_float_steps(exercise):
    """Use true division in x = |t / s - 2 cycle + 1|."""
    f = exercise("5.1").triangular_lr
    got = [f(t, 1.0, 3.0, 4) for t in (0, 2, 4, 6, 8, 12, 16)]
    assert got == pytest.approx([1.0, 2.0, 3.0, 2.0, 1.0, 3.0, 1.0]), (
        f"triangular_lr(t, 1, 3, 4) at t = 0, 2, 4, 6, 8, 12, 16; got {got}")


# ----------------------------------------------------------------------------- 5.5 triangular bounds
@pytest.mark.exercise("5.5")
@pytest.mark.points(1)
@pytest.mark.parametrize("a, b, n", [(3e-4, 3e-2, 141), (1e-3, 1e-1, 60)])
def test_bounds_on_a_noisy_curve_and_a_short_sweep(exercise, a, b, n):
    """A smoothed range test is never exactly flat: 1% noise must not move where the fall starts."""
    lrs = np.logspace(-6, 1, n)
    clean = np.interp(np.log10(lrs), [-6, np.log10(a), np.log10(b), np.log10(b) + 1.5, 1], [2.0, 2.0, 0.5, 3.0, 9.0])
    losses = clean * (1 + 0.01 * np.random.default_rng(n).standard_normal(n))
    losses[lrs > 30 * b] = np.nan
    base, top = (float(v) for v in exercise("5.5").triangular_bounds(lrs, losses))
    assert b / 2 <= top <= 2 * b, f"the fall ends at {b:.3g}: expected max_lr within a factor of 2; got {top:.3g}"
    assert a / 2 <= base <= top / 2.5, f"the fall starts at {a:.3g}: expected base_lr in [{a / 2:.3g}, {top / 2.5:.3g}]; got {base:.3g}"
