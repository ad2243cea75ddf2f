"""Schedules against their oracles: torch's CyclicLR / OneCycleLR, step by step, LR and momentum,
over at least three cycles (one-cycle: the whole run), plus hand-computed table values."""

import functools
import math

import pytest
import torch

import course_lib as cl
from course_lib.schedules import (attach_schedule, cyclic_lr, cyclic_momentum, cyclic_schedule, one_cycle_lr,
                                  one_cycle_momentum, one_cycle_schedule)

TOL = 1e-12


def _torch_sequence(make_scheduler, opt_cls, num_steps):
    """Run a torch scheduler on a dummy optimizer; record (lr, momentum) used at each step."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = opt_cls([p])
    sched = make_scheduler(opt)
    lrs, moms = [], []
    for _ in range(num_steps):
        g = opt.param_groups[0]
        lrs.append(g["lr"])
        moms.append(g["betas"][0] if "betas" in g else g["momentum"])
        opt.step()
        sched.step()
    return lrs, moms


SGD = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)
ADAM = functools.partial(torch.optim.Adam, lr=0.1)

CYCLIC_CASES = [
    dict(base_lr=1e-3, max_lr=6e-3, step_size_up=7, mode="triangular"),
    dict(base_lr=1e-3, max_lr=6e-3, step_size_up=7, step_size_down=3, mode="triangular"),
    dict(base_lr=0.01, max_lr=1.0, step_size_up=5, mode="triangular2"),
    dict(base_lr=0.01, max_lr=1.0, step_size_up=4, step_size_down=9, mode="triangular2"),
    dict(base_lr=0.01, max_lr=0.5, step_size_up=6, mode="exp_range", gamma=0.97),
    dict(base_lr=0.01, max_lr=0.5, step_size_up=1, mode="exp_range", gamma=0.9),
]


@pytest.mark.parametrize("opt_cls", [SGD, ADAM], ids=["sgd_momentum", "adam_beta1"])
@pytest.mark.parametrize("case", CYCLIC_CASES, ids=lambda c: f"{c['mode']}-{c['step_size_up']}-{c.get('step_size_down')}")
def test_cyclic_equals_torch_cycliclr_over_three_cycles(case, opt_cls):
    moms = dict(base_momentum=0.8, max_momentum=0.95)
    cycle_len = case["step_size_up"] + (case.get("step_size_down") or case["step_size_up"])
    n = 3 * cycle_len + 5  # three full cycles and into the fourth
    want_lr, want_m = _torch_sequence(
        lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, **case, **moms), opt_cls, n)
    s = cyclic_schedule(**case, **moms)
    got_lr, got_m = s.values(n)
    assert max(abs(a - b) for a, b in zip(got_lr, want_lr)) <= TOL
    assert max(abs(a - b) for a, b in zip(got_m, want_m)) <= TOL
    # the plain functions give the same numbers as the Schedule
    assert [cyclic_lr(t, **case) for t in range(n)] == got_lr.tolist()
    shape = {k: v for k, v in case.items() if k not in ("base_lr", "max_lr")}
    assert [cyclic_momentum(t, **moms, **shape) for t in range(n)] == got_m.tolist()


ONE_CYCLE_CASES = [
    dict(max_lr=0.1, total_steps=50),
    dict(max_lr=0.1, total_steps=50, anneal_strategy="linear"),
    dict(max_lr=0.3, total_steps=61, pct_start=0.25, div_factor=25.0, final_div_factor=1e5),  # fastai's
    dict(max_lr=0.3, total_steps=60, three_phase=True),
    dict(max_lr=0.3, total_steps=60, three_phase=True, anneal_strategy="linear", pct_start=0.2),
    dict(max_lr=2.0, total_steps=13, pct_start=0.5, div_factor=10.0),
]


@pytest.mark.parametrize("opt_cls", [SGD, ADAM], ids=["sgd_momentum", "adam_beta1"])
@pytest.mark.parametrize("case", ONE_CYCLE_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_one_cycle_equals_torch_onecyclelr(case, opt_cls):
    moms = dict(base_momentum=0.85, max_momentum=0.95)
    n = case["total_steps"]
    want_lr, want_m = _torch_sequence(
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, **case, **moms), opt_cls, n)
    s = one_cycle_schedule(**case, **moms)
    got_lr, got_m = s.values()
    assert len(got_lr) == n
    assert max(abs(a - b) for a, b in zip(got_lr, want_lr)) <= TOL
    assert max(abs(a - b) for a, b in zip(got_m, want_m)) <= TOL
    assert [one_cycle_lr(t, **case) for t in range(n)] == got_lr.tolist()
    mom_args = {k: v for k, v in case.items() if k in ("total_steps", "pct_start", "anneal_strategy", "three_phase")}
    assert [one_cycle_momentum(t, **mom_args, **moms) for t in range(n)] == got_m.tolist()


def test_table_values_computed_by_hand():
    # Triangular, half-cycle 2: 0.1 -> 0.5 -> 0.1, then again.
    assert [round(cyclic_lr(t, 0.1, 0.5, 2), 12) for t in range(6)] == [0.1, 0.3, 0.5, 0.3, 0.1, 0.3]
    # triangular2: the second peak is half as high above base_lr.
    assert cyclic_lr(6, 0.1, 0.5, 2, mode="triangular2") == pytest.approx(0.1 + 0.4 / 2)
    # exp_range: the amplitude at step t is gamma**t.
    assert cyclic_lr(2, 0.0 + 1e-9, 1.0, 2, mode="exp_range", gamma=0.5) == pytest.approx(1e-9 + (1 - 1e-9) * 0.25)
    # one-cycle: starts at max_lr/25, peaks at max_lr, ends at max_lr/25/1e4.
    assert one_cycle_lr(0, 1.0, 100) == pytest.approx(0.04)
    assert one_cycle_lr(29, 1.0, 100) == pytest.approx(1.0)
    assert one_cycle_lr(99, 1.0, 100) == pytest.approx(0.04 / 1e4)
    # Momentum is opposite to the LR.
    assert one_cycle_momentum(29, 100) == pytest.approx(0.85)
    assert cyclic_momentum(2, 0.8, 0.9, 2) == pytest.approx(0.8)


@pytest.mark.parametrize("opt_cls", [SGD, ADAM, functools.partial(torch.optim.AdamW, lr=0.1)])
def test_attach_schedule_drives_an_optimizer_like_torch(opt_cls):
    case = dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="triangular2")
    n = 30
    want_lr, want_m = _torch_sequence(lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, **case), opt_cls, n)
    got_lr, got_m = _torch_sequence(lambda opt: attach_schedule(opt, cyclic_schedule(**case)), opt_cls, n)
    assert max(abs(a - b) for a, b in zip(got_lr, want_lr)) <= TOL
    assert max(abs(a - b) for a, b in zip(got_m, want_m)) <= TOL


def test_attach_plain_function_and_rejects_momentum_cycling_without_momentum():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adagrad([p], lr=0.5)
    sched = attach_schedule(opt, lambda t: 0.1 / (t + 1))
    opt.step(); sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match=r"attach_schedule\(\): momentum cycling needs an optimizer"):
        attach_schedule(torch.optim.Adagrad([p]), cyclic_schedule(0.01, 0.1, 5))
    attach_schedule(torch.optim.Adagrad([p]), cyclic_schedule(0.01, 0.1, 5, cycle_momentum=False))


def test_fit_follows_a_schedule_with_momentum():
    data = cl.make_regression(128, noise=0.1, seed=0)
    s = one_cycle_schedule(max_lr=0.05, total_steps=40)
    opt_model = cl.MLP(1, 1, width=8)
    opt = torch.optim.SGD(opt_model.parameters(), lr=0.1, momentum=0.9)
    seen = []
    h = cl.fit(opt_model, data, optimizer=opt, num_steps=40, lr_schedule=s, eval_every=0, device="cpu",
               on_step=lambda st: seen.append(st.optimizer.param_groups[0]["momentum"]))
    want_lr, want_m = s.values(40)
    assert h.lr == pytest.approx(want_lr.tolist(), abs=TOL)
    assert seen == pytest.approx(want_m.tolist(), abs=TOL)


# --- bad input: a clear message naming the parameter, the allowed range and the value -------

@pytest.mark.parametrize("call, exc, match", [
    (lambda: cyclic_lr(0, base_lr=0.1, max_lr=0.01), ValueError,
     r"cyclic_lr\(\): 'max_lr' must be > 'base_lr', got max_lr=0.01, base_lr=0.1"),
    (lambda: cyclic_lr(0, base_lr=0.1, max_lr=0.1), ValueError, r"'max_lr' must be > 'base_lr'"),
    (lambda: cyclic_lr(0, base_lr=-0.1, max_lr=0.1), ValueError,
     r"cyclic_lr\(\): 'base_lr' must be a float > 0, got base_lr=-0.1"),
    (lambda: cyclic_schedule(base_lr=0.0, max_lr=0.1), ValueError, r"'base_lr' must be a float > 0, got base_lr=0.0"),
    (lambda: one_cycle_schedule(max_lr=-1.0, total_steps=10), ValueError, r"'max_lr' must be a float > 0"),
    (lambda: cyclic_schedule(0.01, 0.1, step_size_up=0), ValueError,
     r"cyclic_schedule\(\): 'step_size_up' must be an int >= 1, got step_size_up=0"),
    (lambda: cyclic_schedule(0.01, 0.1, step_size_up=2.5), TypeError, r"'step_size_up' must be an int >= 1"),
    (lambda: one_cycle_schedule(0.1, 100, pct_start=0.0), ValueError,
     r"one_cycle_schedule\(\): 'pct_start' must be a float in \(0, 1\), got pct_start=0.0"),
    (lambda: one_cycle_schedule(0.1, 100, pct_start=1.0), ValueError, r"'pct_start' must be a float in \(0, 1\)"),
    (lambda: one_cycle_schedule(0.1, 10, pct_start=0.05), ValueError, r"must leave at least one step to every phase"),
    (lambda: cyclic_schedule(0.01, 0.1, mode="cosine"), ValueError,
     r"'mode' must be one of 'triangular', 'triangular2', 'exp_range', got mode='cosine'"),
    (lambda: one_cycle_schedule(0.1, 100, anneal_strategy="cosine"), ValueError,
     r"'anneal_strategy' must be one of 'cos', 'linear', got anneal_strategy='cosine'"),
    (lambda: cyclic_schedule(0.01, 0.1, base_momentum=0.95, max_momentum=0.9), ValueError,
     r"'max_momentum' must be >= 'base_momentum', got max_momentum=0.9, base_momentum=0.95"),
    (lambda: cyclic_schedule(0.01, 0.1, mode="exp_range", gamma=1.5), ValueError, r"'gamma' must be a float in \(0, 1\]"),
    (lambda: one_cycle_schedule(0.1, 100).lr(101), ValueError, r"'step' must be an int in \[0, 100\], got step=101"),
    (lambda: cyclic_lr(-1, 0.01, 0.1), ValueError, r"'step' must be an int >= 0, got step=-1"),
    (lambda: attach_schedule("sgd", cyclic_schedule(0.01, 0.1)), TypeError, r"'optimizer' must be a Optimizer"),
])
def test_bad_input_messages(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_values_of_the_public_api_are_finite_over_long_runs():
    s = cyclic_schedule(1e-4, 1.0, step_size_up=3, mode="exp_range", gamma=0.999)
    lrs, moms = s.values(10_000)
    assert all(math.isfinite(v) for v in lrs) and lrs.min() >= 1e-4 and lrs.max() <= 1.0
