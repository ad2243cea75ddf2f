"""Grading tests of notebook 05 (LR range test and cyclical schedules): exercises 5.1-5.4.

Oracles: ``torch.optim.lr_scheduler.CyclicLR`` / ``OneCycleLR`` step for step (max abs diff
<= 1e-9), ``course_lib.lr_finder.suggest_lrs(...)["steep"]``, made-up range-test curves, and
seeded one-cycle runs (calibrated: validation MSE < 0.02 for max_lr in about [2e-3, 0.2]
with Adam and [9e-3, 0.25] with SGD; 0.3 and above diverge or stall).
"""

import math

import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib.grading import isolated_torch as _isolated
from course_lib.lr_finder import suggest_lrs


def _torch_lrs(make_scheduler, num_steps):
    """The LR a torch scheduler sets at steps 0 .. num_steps - 1."""
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=1.0)
    sched = make_scheduler(opt)
    out = []
    for t in range(num_steps):
        out.append(sched.get_last_lr()[0])
        opt.step()
        if t < num_steps - 1:
            sched.step()
    return np.array(out)


def _compare(got, want, what):
    got = np.asarray(got, dtype=np.float64)
    err = np.abs(got - want)
    i = int(np.argmax(err))
    assert err[i] <= 1e-9, f"{what}: at step {i} expected {want[i]:.10g}; got {got[i]:.10g} (max abs diff {err[i]:.3g})"


# ----------------------------------------------------------------------------- 5.1 triangular_lr
@pytest.mark.exercise("5.1")
@pytest.mark.points(1)
def test_triangular_hand_table(exercise):
    """cycle = floor(1 + t / (2 s)), x = |t / s - 2 cycle + 1|, lr = base + (max - base) * max(0, 1 - x)."""
    f = exercise("5.1").triangular_lr
    got = [f(t, 0.1, 0.5, 2) for t in range(9)]
    want = [0.1, 0.3, 0.5, 0.3, 0.1, 0.3, 0.5, 0.3, 0.1]
    assert all(isinstance(v, float) for v in got), (
        f"triangular_lr should return Python floats; got {[type(v).__name__ for v in got[:2]]}")
    assert got == pytest.approx(want), (
        f"triangular_lr(t, base_lr=0.1, max_lr=0.5, step_size_up=2), t = 0..8, should be {want}; got {got}")


@pytest.mark.exercise("5.1")
@pytest.mark.points(2)
@pytest.mark.parametrize("base_lr, max_lr, step_size_up", [(1e-3, 1e-2, 100), (0.01, 0.7, 7)])
def test_triangular_matches_torch_cycliclr(exercise, base_lr, max_lr, step_size_up):
    """Use true division (t / s, not t // s) inside x, and math.floor only for the cycle."""
    f = exercise("5.1").triangular_lr
    n = 3 * 2 * step_size_up + 1  # three full cycles and the start of the fourth
    want = _torch_lrs(lambda opt: torch.optim.lr_scheduler.CyclicLR(
        opt, base_lr=base_lr, max_lr=max_lr, step_size_up=step_size_up, mode="triangular", cycle_momentum=False), n)
    _compare([f(t, base_lr, max_lr, step_size_up) for t in range(n)], want,
             f"triangular_lr vs CyclicLR(base_lr={base_lr}, max_lr={max_lr}, step_size_up={step_size_up})")


@pytest.mark.exercise("5.1")
@pytest.mark.points(1)
def test_triangular2_matches_torch_cycliclr(exercise):
    """triangular2 multiplies the amplitude by 1 / 2**(cycle - 1)."""
    f = exercise("5.1").triangular_lr
    base_lr, max_lr, s = 1e-3, 1e-2, 50
    n = 3 * 2 * s + 1
    want = _torch_lrs(lambda opt: torch.optim.lr_scheduler.CyclicLR(
        opt, base_lr=base_lr, max_lr=max_lr, step_size_up=s, mode="triangular2", cycle_momentum=False), n)
    _compare([f(t, base_lr, max_lr, s, mode="triangular2") for t in range(n)], want,
             "triangular_lr(mode='triangular2') vs CyclicLR(mode='triangular2'); hint: scale = 1 / 2**(cycle - 1)")


# ----------------------------------------------------------------------------- 5.2 one_cycle_lr
@pytest.mark.exercise("5.2")
@pytest.mark.points(1)
def test_one_cycle_levels(exercise):
    """initial = max_lr / div_factor, final = initial / final_div_factor; the warm-up ends at step pct_start * T - 1."""
    f = exercise("5.2").one_cycle_lr
    T = 100
    got = {"first": f(0, 0.5, T), "peak": f(29, 0.5, T), "last": f(T - 1, 0.5, T)}
    want = {"first": 0.5 / 25, "peak": 0.5, "last": 0.5 / 25 / 1e4}
    for k in want:
        assert isinstance(got[k], float), f"one_cycle_lr should return a Python float; got {type(got[k]).__name__}"
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-15), (
            f"one_cycle_lr(max_lr=0.5, total_steps=100): the {k} LR (step {dict(first=0, peak=29, last=99)[k]}) "
            f"should be {want[k]:.6g}; got {got[k]:.6g}")


@pytest.mark.exercise("5.2")
@pytest.mark.points(2)
@pytest.mark.parametrize("max_lr, total_steps", [(0.1, 1000), (3e-3, 37)])
def test_one_cycle_matches_torch_defaults(exercise, max_lr, total_steps):
    """Phase 1 ends at e1 = pct_start * T - 1 (a float), phase 2 at T - 1; pct = (t - start) / (end - start)
    inside the phase."""
    f = exercise("5.2").one_cycle_lr
    want = _torch_lrs(lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=total_steps, anneal_strategy="cos", cycle_momentum=False), total_steps)
    _compare([f(t, max_lr, total_steps) for t in range(total_steps)], want,
             f"one_cycle_lr vs OneCycleLR(max_lr={max_lr}, total_steps={total_steps})")


@pytest.mark.exercise("5.2")
@pytest.mark.points(1)
def test_one_cycle_matches_torch_custom(exercise):
    """Use the pct_start, div_factor and final_div_factor arguments, not the defaults."""
    f = exercise("5.2").one_cycle_lr
    kw = dict(pct_start=0.25, div_factor=10.0, final_div_factor=100.0)
    want = _torch_lrs(lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1.0, total_steps=500, anneal_strategy="cos", cycle_momentum=False, **kw), 500)
    _compare([f(t, 1.0, 500, **kw) for t in range(500)], want,
             f"one_cycle_lr vs OneCycleLR(max_lr=1, total_steps=500, {kw})")


# ----------------------------------------------------------------------------- 5.3 steepest_lr
def _tanh_curve():
    lrs = np.logspace(-4, 0, 50)
    return lrs, 1 + np.tanh(-(np.log10(lrs) + 2) * 2) + np.where(lrs > 0.3, 5.0, 0.0)


def _noisy_curve(seed, n=100):
    rng = np.random.default_rng(seed)
    lrs = np.logspace(-6, 1, n)
    u = np.log10(lrs)
    loss = 2.0 - np.tanh(1.2 * (u + 3)) + 0.05 * rng.standard_normal(n) + 30 * np.maximum(0, u + 1) ** 2
    return lrs, cl.ema(loss, 0.9)


@pytest.mark.exercise("5.3")
@pytest.mark.points(1)
def test_steepest_on_a_tanh_curve(exercise):
    """slope = np.diff(losses) / np.diff(np.log(lrs)); return lrs[argmin(slope)] as a float."""
    f = exercise("5.3").steepest_lr
    lrs, losses = _tanh_curve()
    got = f(lrs, losses, skip_start=2, skip_end=2)
    want = suggest_lrs(lrs, losses, skip_start=2, skip_end=2, rules=["steep"])["steep"]
    assert isinstance(got, float), f"steepest_lr should return a Python float; got {got!r}"
    assert got == pytest.approx(want, rel=1e-12), f"the tanh curve falls fastest at lr = {want:.4g}; got {got:.4g}"


@pytest.mark.exercise("5.3")
@pytest.mark.points(1)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_steepest_matches_suggest_lrs(exercise, seed):
    """Cut at the first non-finite loss, then drop skip_start points at the start and skip_end at the end, then
    take the slopes."""
    f = exercise("5.3").steepest_lr
    lrs, losses = _noisy_curve(seed)
    got = f(list(lrs), list(losses))
    want = suggest_lrs(lrs, losses, rules=["steep"])["steep"]
    assert got == pytest.approx(want, rel=1e-12), (
        f"steepest_lr with the default skip_start=10, skip_end=5 should be {want:.6g} (course_lib's steep rule); got "
        f"{got!r}. "
        "Hint: the slope is per unit of log(lr), and the answer is the left end of the steepest pair")


@pytest.mark.exercise("5.3")
@pytest.mark.points(1)
def test_steepest_ignores_the_diverged_tail(exercise):
    """Cut both arrays at the first non-finite loss before skipping: everything after it is meaningless."""
    f = exercise("5.3").steepest_lr
    lrs, losses = _noisy_curve(3)
    losses = losses.copy()
    losses[70] = np.nan       # the test diverged here: everything after is meaningless
    losses[71:] = -50.0       # (values that would look like a huge fall)
    got = f(lrs, losses)
    want = suggest_lrs(lrs, losses, rules=["steep"])["steep"]
    assert got == pytest.approx(want, rel=1e-12), (
        f"steepest_lr should cut the curve at its first nan and give {want:.6g}; got {got!r}")


@pytest.mark.exercise("5.3")
@pytest.mark.points(1)
def test_steepest_too_few_points_is_none(exercise):
    """After cutting and skipping, return None if fewer than 3 points are left."""
    f = exercise("5.3").steepest_lr
    lrs, losses = _tanh_curve()
    got = f(lrs[:17], losses[:17])  # 17 - 10 - 5 = 2 points left
    assert got is None, f"with only 2 points left after skipping, steepest_lr should return None; got {got!r}"
    got = f(lrs[:18], losses[:18])
    assert isinstance(got, float), f"with 3 points left steepest_lr should return a float; got {got!r}"


# ----------------------------------------------------------------------------- 5.4 pick_max_lr
BOUND = 0.02  # twice the noise floor 0.01


def _synthetic(center):
    """A range-test-like curve: flat, falling around 10**center, exploding ~1.5 decades later."""
    lrs = np.logspace(-7, 1, 100)
    u = np.log10(lrs)
    loss = 1.5 - np.tanh(1.5 * (u - center)) + 20 * np.maximum(0, u - (center + 1.5)) ** 2
    loss = loss + 0.02 * np.sin(1.3 * np.arange(100))  # a little ripple, like a smoothed noisy curve
    loss[loss > 10] = np.nan  # the test stops being meaningful after divergence
    return lrs, loss


@pytest.mark.exercise("5.4")
@pytest.mark.points(1)
def test_pick_is_an_lr_inside_the_sweep(exercise):
    """Return one of the swept learning rates, or a value computed from them, as a float."""
    lrs, losses = _synthetic(-3)
    got = exercise("5.4").pick_max_lr(lrs, losses)
    assert isinstance(got, (float, np.floating)) and math.isfinite(got), (
        f"pick_max_lr should return a finite float; got {got!r}")
    assert lrs[0] <= got <= lrs[-1], (
        f"the pick should lie inside the swept range [{lrs[0]:.3g}, {lrs[-1]:.3g}]; got {got:.3g}")


@pytest.mark.exercise("5.4")
@pytest.mark.points(1)
@pytest.mark.parametrize("center", [-5, -3, -1])
def test_pick_lies_on_the_falling_part(exercise, center):
    """Read the curve: find the lowest finite loss and step back from its LR; the bottom itself is too high."""
    lrs, losses = _synthetic(center)
    got = float(exercise("5.4").pick_max_lr(lrs, losses))
    finite = np.isfinite(losses)
    n = int(np.argmax(~finite)) if (~finite).any() else len(losses)
    i_min = int(np.argmin(losses[:n]))
    lr_min, start, low = lrs[i_min], losses[0], losses[i_min]
    assert got < lr_min, (
        f"on a curve falling around lr = 1e{center}, the lowest loss is at lr = {lr_min:.3g}; your max_lr {got:.3g} "
        "should be below it (at the bottom the loss is about to diverge)")
    loss_at_pick = float(np.interp(math.log(got), np.log(lrs[:n]), losses[:n]))
    assert loss_at_pick <= start - 0.1 * (start - low), (
        f"on a curve falling around lr = 1e{center}, your max_lr {got:.3g} sits where the loss has not started to fall "
        f"(loss {loss_at_pick:.3f}, start {start:.3f}, lowest {low:.3f}): the rule should read the curve")


@pytest.fixture(scope="module")
def regression_task():
    return cl.make_regression(600, kind="polynomial", degree=5, noise=0.1, seed=0)


def _model():
    torch.manual_seed(0)
    return cl.MLP(1, 1, width=64, depth=2)


def _range_test(data, optimizer):
    with _isolated():
        r = cl.lr_range_test(_model(), data, optimizer=optimizer, start_lr=1e-5, end_lr=10, num_iter=100,
                             batch_size=64, device="cpu")
    return list(r.lrs), list(r.smoothed_losses)


def _one_cycle_val_mse(data, optimizer, max_lr):
    with _isolated():
        h = cl.fit(_model(), data, optimizer=optimizer, lr=max_lr, num_steps=300, batch_size=64, eval_every=300,
                   device="cpu", lr_schedule=cl.one_cycle_schedule(max_lr=max_lr, total_steps=300))
    return h.val_loss[-1] if h.val_loss and h.stop_reason == "completed" else float("nan")


@pytest.mark.exercise("5.4")
@pytest.mark.points(2)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_pick_trains_below_the_bound(exercise, regression_task, optimizer):
    """Too small a max_lr does not get there in 300 steps; the LR at the bottom of the curve diverges. Try your
    rule in the experiment cell."""
    pick = exercise("5.4").pick_max_lr
    lrs, losses = _range_test(regression_task, optimizer)
    max_lr = float(pick(lrs, losses))
    got = _one_cycle_val_mse(regression_task, optimizer, max_lr)
    assert got < BOUND, (
        f"{optimizer}: one-cycle with your max_lr = {max_lr:.3g} for 300 steps should reach a validation MSE "
        f"below {BOUND} (noise floor 0.01); got {got:.4f}. "
        + ("Hint: that max_lr is too large (the run diverged or stalled)" if not got < 0.5 or max_lr > 0.25
           else "Hint: that max_lr is too small to get there in 300 steps"))
