"""Grading tests of notebook 05 (LR range test and cyclical schedules): exercises 5.1-5.5.

Oracles: ``torch.optim.lr_scheduler.CyclicLR`` / ``OneCycleLR`` step for step (max abs diff
<= 1e-9), the steep rule of the exercise text written out below (``_reference_steepest``),
made-up range-test curves (flat, falling, rising, then nan, as a smoothed range test ends),
and seeded one-cycle runs (calibrated: validation MSE < 0.02 for max_lr in about [2e-3, 0.2]
with Adam and [9e-3, 0.25] with SGD; 0.3 and above diverge or stall).
"""

import math

import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib.grading import isolated_torch as _isolated


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
    """Up from base_lr to max_lr in step_size_up steps, down again in as many, and again."""
    f = exercise("5.1").triangular_lr
    got = [f(t, 0.1, 0.5, 2) for t in range(9)]
    want = [0.1, 0.3, 0.5, 0.3, 0.1, 0.3, 0.5, 0.3, 0.1]
    assert all(isinstance(v, float) for v in got), (
        f"triangular_lr should return Python floats; got {[type(v).__module__ + '.' + type(v).__qualname__ for v in got[:2]]}")
    assert got == pytest.approx(want), (
        f"triangular_lr(t, base_lr=0.1, max_lr=0.5, step_size_up=2), t = 0..8, should be {want}; got {got}")


@pytest.mark.exercise("5.1")
@pytest.mark.points(1)
def test_triangular2_hand_table(exercise):
    """triangular2: the first cycle has the full amplitude, each later one half the one before."""
    f = exercise("5.1").triangular_lr
    got = [f(t, 0.1, 0.5, 2, mode="triangular2") for t in range(13)]
    want = [0.1, 0.3, 0.5, 0.3, 0.1, 0.2, 0.3, 0.2, 0.1, 0.15, 0.2, 0.15, 0.1]
    assert got == pytest.approx(want), (
        f"triangular_lr(t, 0.1, 0.5, 2, mode='triangular2'), t = 0..12, should be {want}: peaks 0.5, 0.3, 0.2; got "
        f"{[round(v, 6) for v in got]}")


@pytest.mark.exercise("5.1")
@pytest.mark.points(1.5)
@pytest.mark.parametrize("base_lr, max_lr, step_size_up", [(1e-3, 1e-2, 100), (0.01, 0.7, 7)])
def test_triangular_matches_torch_cycliclr(exercise, base_lr, max_lr, step_size_up):
    """Inside a cycle the LR changes at every step (true division); only the cycle number is rounded down."""
    f = exercise("5.1").triangular_lr
    n = 3 * 2 * step_size_up + 1  # three full cycles and the start of the fourth
    want = _torch_lrs(lambda opt: torch.optim.lr_scheduler.CyclicLR(
        opt, base_lr=base_lr, max_lr=max_lr, step_size_up=step_size_up, mode="triangular", cycle_momentum=False), n)
    _compare([f(t, base_lr, max_lr, step_size_up) for t in range(n)], want,
             f"triangular_lr vs CyclicLR(base_lr={base_lr}, max_lr={max_lr}, step_size_up={step_size_up})")


@pytest.mark.exercise("5.1")
@pytest.mark.points(2)
@pytest.mark.parametrize("base_lr, max_lr, s", [(1e-3, 1e-2, 50), (0.05, 0.3, 3)])
def test_triangular2_matches_torch_cycliclr(exercise, base_lr, max_lr, s):
    """triangular2 halves the amplitude (max_lr - base_lr) from one cycle to the next; the first cycle is full."""
    f = exercise("5.1").triangular_lr
    n = 4 * 2 * s + 1
    want = _torch_lrs(lambda opt: torch.optim.lr_scheduler.CyclicLR(
        opt, base_lr=base_lr, max_lr=max_lr, step_size_up=s, mode="triangular2", cycle_momentum=False), n)
    _compare([f(t, base_lr, max_lr, s, mode="triangular2") for t in range(n)], want,
             f"triangular_lr(mode='triangular2') vs CyclicLR(base_lr={base_lr}, max_lr={max_lr}, step_size_up={s}, "
             "mode='triangular2')")


# ----------------------------------------------------------------------------- 5.2 one_cycle_lr
@pytest.mark.exercise("5.2")
@pytest.mark.points(1)
def test_one_cycle_levels(exercise):
    """Three levels: the start (max_lr / div_factor), the peak at the end of the warm-up, and the final LR (the start
    divided by final_div_factor)."""
    f = exercise("5.2").one_cycle_lr
    T = 100
    got = {"first": f(0, 0.5, T), "peak": f(29, 0.5, T), "last": f(T - 1, 0.5, T)}
    want = {"first": 0.5 / 25, "peak": 0.5, "last": 0.5 / 25 / 1e4}
    for k in want:
        assert isinstance(got[k], float), (
            f"one_cycle_lr should return a Python float; got {type(got[k]).__module__}.{type(got[k]).__qualname__}")
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-15), (
            f"one_cycle_lr(max_lr=0.5, total_steps=100): the {k} LR (step {dict(first=0, peak=29, last=99)[k]}) "
            f"should be {want[k]:.6g}; got {got[k]:.6g}")


@pytest.mark.exercise("5.2")
@pytest.mark.points(2)
@pytest.mark.parametrize("max_lr, total_steps", [(0.1, 1000), (3e-3, 37)])
def test_one_cycle_matches_torch_defaults(exercise, max_lr, total_steps):
    """Each phase is half a cosine from its start level to its end level, over the steps the exercise text gives it
    (the warm-up ends at a fractional step)."""
    f = exercise("5.2").one_cycle_lr
    want = _torch_lrs(lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=total_steps, anneal_strategy="cos", cycle_momentum=False), total_steps)
    _compare([f(t, max_lr, total_steps) for t in range(total_steps)], want,
             f"one_cycle_lr vs OneCycleLR(max_lr={max_lr}, total_steps={total_steps})")


@pytest.mark.exercise("5.2")
@pytest.mark.points(1)
@pytest.mark.parametrize("kw", [dict(pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
                                dict(pct_start=0.5, div_factor=4.0, final_div_factor=1e3)], ids=["custom1", "custom2"])
def test_one_cycle_matches_torch_custom(exercise, kw):
    """Use the pct_start, div_factor and final_div_factor arguments, not the defaults."""
    f = exercise("5.2").one_cycle_lr
    want = _torch_lrs(lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1.0, total_steps=500, anneal_strategy="cos", cycle_momentum=False, **kw), 500)
    _compare([f(t, 1.0, 500, **kw) for t in range(500)], want,
             f"one_cycle_lr vs OneCycleLR(max_lr=1, total_steps=500, {kw})")


# ----------------------------------------------------------------------------- 5.3 steepest_lr
def _reference_steepest(lrs, losses, skip_start=10, skip_end=5):
    """The four steps of the exercise text."""
    lrs, losses = np.asarray(lrs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    finite = np.isfinite(losses)
    n = len(losses) if finite.all() else int(np.argmin(finite))  # 1. cut at the first non-finite loss
    lrs, losses = lrs[:n][skip_start:n - skip_end], losses[:n][skip_start:n - skip_end]  # 2. skip
    if len(losses) < 3:  # 3.
        return None
    slope = np.diff(losses) / np.diff(np.log(lrs))  # 4. per unit of log(lr); the left end of the steepest
    return float(lrs[int(np.argmin(slope))])


def _ema(x, beta):
    out, s = [], 0.0
    for t, v in enumerate(x, start=1):
        s = beta * s + (1 - beta) * v
        out.append(s / (1 - beta**t))
    return np.array(out)


def _tanh_curve():
    lrs = np.logspace(-4, 0, 50)
    return lrs, 1 + np.tanh(-(np.log10(lrs) + 2) * 2) + np.where(lrs > 0.3, 5.0, 0.0)


def _range_curve(seed, n=100, fall=-3.0, cliff=False):
    """A smoothed range test as it really ends: flat, falling around 10**fall, rising, then nan.

    With ``cliff`` the last points before the nan hold the steepest fall of the whole curve (a
    sudden drop just before the blow-up): step 2 of the exercise drops them, a rule that skips
    before it cuts, or never cuts, keeps them.
    """
    rng = np.random.default_rng(seed)
    lrs = np.logspace(-6, 1, n)
    u = np.log10(lrs)
    loss = 2.0 - np.tanh(1.2 * (u - fall)) + 0.05 * rng.standard_normal(n) + 3 * np.maximum(0, u + 0.5) ** 2
    loss = _ema(loss, 0.9)
    first_nan = int(np.argmax(loss > 4.0)) if (loss > 4.0).any() else n - 8
    if cliff:
        first_nan = min(first_nan, n - 8)
        loss[first_nan - 5:first_nan - 2] = loss[first_nan - 6] - np.array([0.8, 1.6, 2.4])  # a sudden drop ...
        loss[first_nan - 2:first_nan] = loss[first_nan - 3] + np.array([3.0, 9.0])  # ... then the blow-up
    loss[first_nan:] = np.nan
    return lrs, loss


@pytest.mark.exercise("5.3")
@pytest.mark.points(1)
def test_steepest_on_a_tanh_curve(exercise):
    """The fall per unit of log(lr) between neighbouring points; the answer is the LR at the left end of the steepest
    pair, as a Python float."""
    f = exercise("5.3").steepest_lr
    lrs, losses = _tanh_curve()
    got = f(lrs, losses, skip_start=2, skip_end=2)
    want = _reference_steepest(lrs, losses, skip_start=2, skip_end=2)
    assert isinstance(got, float), f"steepest_lr should return a Python float; got {got!r}"
    assert got == pytest.approx(want, rel=1e-12), f"the tanh curve falls fastest at lr = {want:.4g}; got {got:.4g}"


@pytest.mark.exercise("5.3")
@pytest.mark.points(1)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_steepest_on_range_test_curves(exercise, seed):
    """First cut at the first non-finite loss, then drop skip_start points at the start and skip_end at the end of
    what is left, then take the slopes per unit of log(lr)."""
    f = exercise("5.3").steepest_lr
    lrs, losses = _range_curve(seed, fall=-4.0 + seed)
    got = f(list(lrs), list(losses))
    want = _reference_steepest(lrs, losses)
    assert got == pytest.approx(want, rel=1e-12), (
        f"on a range-test curve (flat, falling, rising, then nan from index {int(np.argmax(np.isnan(losses)))}), "
        f"steepest_lr with the default skip_start=10, skip_end=5 should be {want:.6g}; got {got!r}. Hint: the order of "
        "the steps matters")


@pytest.mark.exercise("5.3")
@pytest.mark.points(2)
@pytest.mark.parametrize("seed", [3, 4])
def test_steepest_drops_the_last_points_before_the_nan(exercise, seed):
    """Cut both arrays at the first non-finite loss before skipping: skip_end counts from the cut, so the points
    just before the blow-up are dropped."""
    f = exercise("5.3").steepest_lr
    lrs, losses = _range_curve(seed, cliff=True)
    n = int(np.argmax(np.isnan(losses)))
    got = f(lrs, losses)
    want = _reference_steepest(lrs, losses)
    assert got == pytest.approx(want, rel=1e-12), (
        f"the curve turns nan at index {n}; its steepest fall is in the 5 points just before (lr "
        f"{lrs[n - 5]:.3g} .. {lrs[n - 1]:.3g}), which skip_end drops: steepest_lr should be {want:.6g}; got {got!r}. "
        "Hint: cut at the first nan first, then skip")


@pytest.mark.exercise("5.3")
@pytest.mark.points(1)
def test_steepest_too_few_points_is_none(exercise):
    """After cutting and skipping, fewer than 3 points left means no suggestion (None)."""
    f = exercise("5.3").steepest_lr
    lrs, losses = _tanh_curve()
    got = f(lrs[:17], losses[:17])  # 17 - 10 - 5 = 2 points left
    assert got is None, f"with only 2 points left after skipping, steepest_lr should return None; got {got!r}"
    got = f(lrs[:18], losses[:18])
    assert isinstance(got, float), f"with 3 points left steepest_lr should return a float; got {got!r}"
    losses = losses.copy()
    losses[17] = np.nan
    got = f(lrs, losses)  # cut at 17: again only 2 points left
    assert got is None, f"a nan at index 17 leaves 17 - 10 - 5 = 2 points: steepest_lr should be None; got {got!r}"


# ----------------------------------------------------------------------------- 5.4 pick_max_lr
BOUND = 0.02  # twice the noise floor 0.01


def _synthetic(center, tail=1.5):
    """A range-test-like curve: flat, falling around 10**center, its lowest point ~1.5 decades later, then
    rising for a while (``tail``: how slowly) before it turns nan, as a smoothed range test does."""
    lrs = np.logspace(-8, 3.5, 116)  # one sweep for every curve, as a real range test has
    u = np.log10(lrs)
    loss = 1.5 - np.tanh(1.5 * (u - center)) + tail * np.maximum(0, u - (center + 1.5)) ** 2
    loss = loss + 0.02 * np.sin(1.3 * np.arange(len(u)))  # a little ripple, like a smoothed noisy curve
    loss[loss > 10] = np.nan  # the test stops being meaningful after divergence
    assert np.isnan(loss).any()  # the test's own curve ends in nan
    loss[int(np.argmax(np.isnan(loss))):] = np.nan
    return lrs, loss


def _lowest(lrs, losses):
    finite = np.isfinite(losses)
    n = int(np.argmin(finite)) if not finite.all() else len(losses)
    i_min = int(np.argmin(losses[:n]))
    return n, i_min


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
@pytest.mark.parametrize("center", [-6, -5, -4, -3, -2, -1])
def test_pick_lies_on_the_falling_part(exercise, center):
    """Read the curve: the loss must already fall at your max_lr, and the lowest point (where it is about to
    diverge) is too high."""
    lrs, losses = _synthetic(center)
    got = float(exercise("5.4").pick_max_lr(lrs, losses))
    n, i_min = _lowest(lrs, losses)
    lr_min, start, low = lrs[i_min], losses[0], losses[i_min]
    assert got < lr_min, (
        f"on a curve falling around lr = 1e{center}, the lowest loss is at lr = {lr_min:.3g}; your max_lr {got:.3g} "
        "should be below it (at the bottom the loss is about to diverge)")
    assert got >= lrs[0], f"your max_lr {got:.3g} lies below the swept range (from {lrs[0]:.3g})"
    loss_at_pick = float(np.interp(math.log(got), np.log(lrs[:n]), losses[:n]))
    assert loss_at_pick <= start - 0.1 * (start - low), (
        f"on a curve falling around lr = 1e{center}, your max_lr {got:.3g} sits where the loss has not started to fall "
        f"(loss {loss_at_pick:.3f}, start {start:.3f}, lowest {low:.3f}): the rule should read the curve")


@pytest.mark.exercise("5.4")
@pytest.mark.points(1.5)
@pytest.mark.parametrize("center", [-5, -1])
def test_pick_ignores_the_nan_tail(exercise, center):
    """A curve that ends in nan: the lowest loss is the lowest *finite* one, before the first nan (np.argmin of an
    array holding nan points at the nan)."""
    lrs, losses = _synthetic(center, tail=1.2)  # rises slowly: the nan comes ~3 decades after the lowest point
    got = float(exercise("5.4").pick_max_lr(lrs, losses))
    n, i_min = _lowest(lrs, losses)
    assert got < lrs[i_min], (
        f"the curve falls around lr = 1e{center}, is lowest at lr = {lrs[i_min]:.3g} and turns nan at lr = "
        f"{lrs[n]:.3g}; your max_lr {got:.3g} should be below the lowest point. Hint: nan is not the lowest loss")
    start, low = losses[0], losses[i_min]
    loss_at_pick = float(np.interp(math.log(got), np.log(lrs[:n]), losses[:n]))
    assert loss_at_pick <= start - 0.1 * (start - low), (
        f"the curve falls around lr = 1e{center}; at your max_lr {got:.3g} the loss has not started to fall (loss "
        f"{loss_at_pick:.3f}, start {start:.3f}, lowest {low:.3f}): the rule should read the curve")


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


def _too_large_or_small(max_lr, lrs, losses, got):
    """Which way the pick is off, read from the range test itself."""
    lrs, losses = np.asarray(lrs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    n, i_min = _lowest(lrs, losses)
    if not math.isfinite(got) or max_lr >= lrs[i_min]:
        return (f"Hint: that max_lr is too large: the range test's loss is lowest at {lrs[i_min]:.3g}, and at the "
                "bottom it is about to diverge")
    return (f"Hint: that max_lr is too small to get there in 300 steps (the range test's loss falls fastest well "
            f"above it, and is lowest at {lrs[i_min]:.3g})")


@pytest.mark.exercise("5.4")
@pytest.mark.points(1)
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
        f"below {BOUND} (noise floor 0.01); got {got:.4f}. " + _too_large_or_small(max_lr, lrs, losses, got))


# ----------------------------------------------------------------------------- 5.5 triangular bounds
# Made-up range-test curves whose start (a) and end (b) of the fall are known by construction:
# flat, falling, rising, then diverged. Accepted: max_lr within a factor of 2 of b; base_lr from
# a / 2 (where the fall starts, Smith's reading) up to max_lr / 2.5 (his rule of thumb, max/3-4).
def check_bounds(got, a, b):
    assert isinstance(got, (tuple, list)) and len(got) == 2, f"triangular_bounds should return (base_lr, max_lr); got {got!r}"
    base, top = float(got[0]), float(got[1])
    assert b / 2 <= top <= 2 * b, (
        f"the loss stops falling at lr = {b:.3g}: expected max_lr within a factor of 2 of it; got max_lr = {top:.3g}")
    assert a / 2 <= base <= top / 2.5, (
        f"the loss starts to fall at lr = {a:.3g}: expected base_lr between {a / 2:.3g} and max_lr / 2.5 = "
        f"{top / 2.5:.3g}; got base_lr = {base:.3g}")


@pytest.mark.exercise("5.5")
@pytest.mark.points(2)
def test_bounds_on_an_exponential_sweep(exercise):
    """max_lr where the loss stops falling (the bottom); base_lr where it starts to fall, or max_lr / 3 to / 4."""
    lrs = np.logspace(-6, 1, 141)
    losses = np.interp(np.log10(lrs), [-6, -4, -2, 0, 1], [2.0, 2.0, 0.5, 3.0, 8.0])
    check_bounds(exercise("5.5").triangular_bounds(lrs, losses), 1e-4, 1e-2)


@pytest.mark.exercise("5.5")
@pytest.mark.points(1)
def test_bounds_on_a_linear_sweep(exercise):
    """Smith's own sweep raises the LR linearly: the same reading works on it."""
    lrs = np.linspace(1e-3, 1.0, 250)
    losses = np.interp(lrs, [1e-3, 0.05, 0.35, 0.6, 1.0], [2.3, 2.3, 0.8, 4.0, 9.0])
    check_bounds(exercise("5.5").triangular_bounds(lrs, losses), 0.05, 0.35)


@pytest.mark.exercise("5.5")
@pytest.mark.points(1)
def test_bounds_ignore_a_diverged_tail(exercise):
    """Cut at the first nan or inf: np.argmin of an array with a nan returns the nan's index."""
    lrs = np.logspace(-5, 1, 121)
    losses = np.interp(np.log10(lrs), [-5, -3.5, -1.5, -0.5, 1], [3.0, 3.0, 1.0, 2.5, 6.0])
    losses[lrs > 0.5] = np.nan
    losses[-3:] = np.inf
    check_bounds(exercise("5.5").triangular_bounds(lrs, losses), 10**-3.5, 10**-1.5)
