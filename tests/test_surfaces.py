"""Tests of course_lib.surfaces: hand-written gradients against autograd, optimizer paths
against hand-written update rules, GD's regimes on the quadratic against its closed-form
thresholds, the outlier fits against mean, median and exact M-estimates, and messages."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from course_lib import surfaces as S, loss_shapes as LS
from course_lib.losses import bce_with_logits_loss

F64 = dict(dtype=torch.float64)


def _points(n=64, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, 2, generator=g, **F64)  # (n, 2)


SURFACE_CASES = [S.quadratic(), S.quadratic(a=1.0, b=30.0, angle=35.0), S.rosenbrock(), S.rosenbrock(a=-0.5, b=10.0),
                 S.two_minima(), S.two_minima(tilt=-0.6, c=3.0)]


# ---------------------------------------------------------------------------------------------
# Surfaces
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("surface", SURFACE_CASES, ids=repr)
def test_hand_written_gradient_equals_autograd(surface):
    p = _points().requires_grad_(True)
    (auto,) = torch.autograd.grad(surface(p).sum(), p)  # each row's loss depends on its row only
    torch.testing.assert_close(surface.grad(p.detach()), auto, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("surface", SURFACE_CASES, ids=repr)
def test_minima_are_stationary_and_the_first_is_lowest(surface):
    for m in surface.minima:
        assert surface.grad(list(m)).abs().max() < 1e-9, f"gradient at the minimum {m} of {surface!r}"
    values = [surface(list(m)).item() for m in surface.minima]
    assert values[0] == min(values) == pytest.approx(surface.min_value)
    # a minimum, not a saddle: the loss rises in every direction around it
    for m in surface.minima:
        ring = torch.tensor(m, **F64) + 1e-3 * torch.stack(
            [torch.cos(t := torch.linspace(0, 2 * math.pi, 17, **F64)), torch.sin(t)], dim=1)
        assert (surface(ring) > surface(list(m))).all()


def test_two_minima_has_a_deeper_and_a_shallower_valley():
    s = S.two_minima(tilt=0.3)
    (xg, _), (xl, _) = s.minima
    assert xg < 0 < xl                      # the tilt makes the left valley the deeper one
    assert s(list(s.minima[1])).item() - s.min_value == pytest.approx(0.5996, abs=1e-3)


def test_quadratic_hessian_is_the_autograd_hessian():
    s = S.quadratic(a=0.3, b=7.0, angle=20.0)
    H = torch.autograd.functional.hessian(s.fn, torch.tensor([0.4, -1.3], **F64))
    torch.testing.assert_close(s.hessian, H, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.linalg.eigvalsh(H), torch.tensor([0.3, 7.0], **F64))


def test_grid_shapes_and_values():
    s = S.quadratic()
    X, Y, Z = s.grid(31)
    assert X.shape == Y.shape == Z.shape == (31, 31)
    assert X[0, 0] == s.xlim[0] and Y[-1, 0] == s.ylim[1]     # rows follow y, columns follow x
    torch.testing.assert_close(Z[7, 11], s([X[7, 11].item(), Y[7, 11].item()]))


def test_get_surface_and_registry():
    assert S.get_surface("quadratic").params == {"a": 0.2, "b": 4.0, "angle": 0.0}
    s = S.rosenbrock(b=5.0)
    assert S.get_surface(s) is s
    assert set(S.SURFACES) == {"quadratic", "rosenbrock", "two_minima"}


# ---------------------------------------------------------------------------------------------
# GD thresholds from theory
# ---------------------------------------------------------------------------------------------

def test_thresholds_table_for_the_default_quadratic():
    t = S.gd_thresholds(S.quadratic())                     # H = diag(0.2, 4)
    assert (t.L, t.mu) == pytest.approx((4.0, 0.2))
    assert (t.monotone_lr, t.max_lr, t.optimal_lr) == pytest.approx((0.25, 0.5, 2 / 4.2))
    assert t.condition_number == pytest.approx(20.0)
    assert t.rate(0.1) == pytest.approx(0.98) and t.rate(0.6) == pytest.approx(1.4)
    assert t.momentum_max_lr(0.9) == pytest.approx(0.95)
    assert t.steps_needed(0.6) == math.inf
    # the same from a Hessian, and unchanged by a rotation of the valley
    assert S.gd_thresholds(torch.diag(torch.tensor([0.2, 4.0], **F64))) == t
    rotated = S.gd_thresholds(S.quadratic(angle=40.0))
    assert (rotated.L, rotated.mu) == pytest.approx((4.0, 0.2))


def test_regime_labels():
    t = S.gd_thresholds(S.quadratic())
    table = {0.005: "too slow", 0.125: "good", 0.25: "good", 0.3: "oscillating", 0.499: "oscillating",
             0.5: "diverging", 0.525: "diverging"}
    assert {lr: t.regime(lr, num_steps=100) for lr in table} == table
    assert t.regime(0.05, num_steps=20) == "too slow" and t.regime(0.05, num_steps=2000) == "good"  # budget
    assert "oscillating" in t.describe(0.375) and "diverging" in t.describe(0.6)


def test_local_thresholds_of_rosenbrock_use_the_hessian_at_the_minimum():
    t = S.gd_thresholds("rosenbrock")
    H = torch.tensor([[802.0, -400.0], [-400.0, 200.0]], **F64)  # by hand at (1, 1)
    mu, L = torch.linalg.eigvalsh(H).tolist()
    assert (t.L, t.mu) == pytest.approx((L, mu))
    assert S.gd_thresholds("rosenbrock", at=(-1.2, 1.0)).L > t.L   # steeper walls at the start


# ---------------------------------------------------------------------------------------------
# Optimizer paths
# ---------------------------------------------------------------------------------------------

def _by_hand(surface, start, optimizer, lr, num_steps, momentum=0.9, betas=(0.9, 0.999), eps=1e-8):
    """The update rules written out (no torch.optim): the oracle for optimizer_path."""
    p = torch.tensor(start, **F64)
    buf, m, v = None, torch.zeros(2, **F64), torch.zeros(2, **F64)
    out = [p.clone()]
    for t in range(1, num_steps + 1):
        g = surface.grad(p)
        if optimizer == "gd":
            p = p - lr * g
        elif optimizer == "momentum":  # torch's form: buf = momentum * buf + g; p -= lr * buf
            buf = g.clone() if buf is None else momentum * buf + g
            p = p - lr * buf
        else:  # Adam with bias correction (Kingma & Ba, Algorithm 1)
            m = betas[0] * m + (1 - betas[0]) * g
            v = betas[1] * v + (1 - betas[1]) * g * g
            m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
            p = p - lr * m_hat / (v_hat.sqrt() + eps)
        out.append(p.clone())
    return torch.stack(out)


@pytest.mark.parametrize("optimizer,surface,lr", [
    ("gd", "quadratic", 0.3), ("momentum", "quadratic", 0.05), ("adam", "quadratic", 0.1),
    ("gd", "rosenbrock", 1e-3), ("momentum", "rosenbrock", 1e-3), ("adam", "rosenbrock", 0.05),
    ("momentum", "two_minima", 0.02),
])
def test_path_equals_the_update_rule_written_by_hand(optimizer, surface, lr):
    s = S.get_surface(surface)
    path = S.optimizer_path(s, optimizer=optimizer, lr=lr, num_steps=60, momentum=0.8)
    expected = _by_hand(s, s.start, optimizer, lr, 60, momentum=0.8)
    assert path.stop_reason == "completed" and path.xy.shape == (61, 2) and path.losses.shape == (61,)
    torch.testing.assert_close(path.xy, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(path.losses, s(expected))


def test_path_equals_a_hand_written_torch_loop():
    s, start = S.rosenbrock(), (0.3, -0.4)
    p = torch.tensor(start, **F64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.02, betas=(0.8, 0.99))
    xs = [p.detach().clone()]
    for _ in range(40):
        opt.zero_grad()
        s.fn(p).backward()
        opt.step()
        xs.append(p.detach().clone())
    path = S.optimizer_path(s, start, "adam", 0.02, 40, betas=(0.8, 0.99))
    assert torch.equal(path.xy, torch.stack(xs))  # bit for bit: the same torch optimizer


def test_defaults_come_from_the_surface():
    s = S.two_minima()
    path = S.optimizer_path(s)
    assert (path.lr, path.num_steps, path.config["start"]) == (s.lr, s.num_steps, s.start)


L_QUAD = 4.0  # the default quadratic's largest eigenvalue; its steep direction is the y axis


def test_gd_below_1_over_L_converges_monotonically():
    path = S.optimizer_path("quadratic", optimizer="gd", lr=0.5 / L_QUAD, num_steps=100)
    y = path.xy[:, 1]
    assert not path.diverged
    assert (torch.sign(y) == torch.sign(y[0])).all() and (y.abs().diff() < 0).all()  # no sign change
    assert (path.losses.diff() < 0).all()
    assert path.gaps[-1] < 1e-2 * path.gaps[0]


def test_gd_between_1_and_2_over_L_oscillates_but_converges():
    path = S.optimizer_path("quadratic", optimizer="gd", lr=1.5 / L_QUAD, num_steps=100)
    y = path.xy[:40, 1]  # (later |y| is at rounding level)
    assert not path.diverged
    assert (torch.sign(y[1:]) == -torch.sign(y[:-1])).all()      # flips sign every step ...
    assert (y.abs().diff() < 0).all()                             # ... and still shrinks
    assert path.gaps[-1] < 1e-5 * path.gaps[0]


def test_gd_above_2_over_L_diverges_and_is_flagged():
    path = S.optimizer_path("quadratic", optimizer="gd", lr=2.1 / L_QUAD, num_steps=100)
    assert path.diverged and path.stop_reason == "exploded" and path.stop_step < 100
    assert path.gaps[-1] > 100 * path.gaps[0] and len(path.xy) == path.stop_step + 1
    assert S.gd_thresholds("quadratic").regime(2.1 / L_QUAD) == "diverging"


def test_the_distance_shrinks_at_the_rate_theory_gives():
    t = S.gd_thresholds("quadratic")
    for lr in (0.05, 0.2, 0.4):
        x = S.optimizer_path("quadratic", optimizer="gd", lr=lr, num_steps=30).xy[:, 0]  # the flat axis
        torch.testing.assert_close(x[1:] / x[:-1], torch.full((30,), 1 - lr * t.mu, **F64))


def test_momentum_threshold_from_theory():
    t = S.gd_thresholds("quadratic")
    for beta in (0.5, 0.9):
        edge = t.momentum_max_lr(beta)
        below = S.optimizer_path("quadratic", optimizer="momentum", lr=0.95 * edge, num_steps=600, momentum=beta)
        above = S.optimizer_path("quadratic", optimizer="momentum", lr=1.05 * edge, num_steps=600, momentum=beta)
        assert not below.diverged and below.gaps[-1] < below.gaps[0]
        assert above.diverged, f"momentum {beta} at 1.05 x 2(1+b)/L should diverge"


def test_leaving_the_box_is_divergence_and_the_last_point_is_kept():
    path = S.optimizer_path("quadratic", optimizer="gd", lr=0.6, num_steps=500, explode_factor=None, bound=50.0)
    assert path.stop_reason == "diverged" and path.diverged
    assert path.xy[-1].abs().max() > 50 and (path.xy[:-1].abs().max(dim=1).values <= 50).all()
    assert len(path.xy) == len(path.losses) == path.stop_step + 1


def test_overflow_to_inf_ends_the_path_at_its_last_finite_point():
    path = S.optimizer_path("rosenbrock", optimizer="gd", lr=0.05, num_steps=100, explode_factor=None, bound=1e300)
    assert path.stop_reason == "diverged" and path.stop_step <= 100
    assert torch.isfinite(path.xy).all() and torch.isfinite(path.losses).all()
    assert len(path.xy) == len(path.losses)


def test_momentum_beats_gd_in_an_ill_conditioned_valley_at_the_same_lr():
    gd = S.optimizer_path("quadratic", optimizer="gd", lr=0.1, num_steps=50)
    mom = S.optimizer_path("quadratic", optimizer="momentum", lr=0.1, num_steps=50)
    assert mom.gaps[-1] < 0.2 * gd.gaps[-1]  # measured: 0.016 vs 0.33


def test_momentum_crosses_the_ridge_that_stops_gd():
    s = S.two_minima()
    gd = S.optimizer_path(s, optimizer="gd", lr=0.02, num_steps=150)
    mom = S.optimizer_path(s, optimizer="momentum", lr=0.02, num_steps=150)
    assert gd.xy[-1, 0] > 0 and mom.xy[-1, 0] < 0   # local (right) vs global (left) valley


# ---------------------------------------------------------------------------------------------
# 1-D loss curves
# ---------------------------------------------------------------------------------------------

X = torch.tensor([-2.5, -1.0, -0.3, 0.2, 0.7, 1.0 + 1e-9, 1.6, 3.0], **F64)  # no point on a kink


def _torch_oracle(loss, x, y=0.5, delta=0.8):
    x = x.clone().requires_grad_(True)
    t = torch.full_like(x, y)
    fns = {"mse": lambda: F.mse_loss(x, t, reduction="none"), "mae": lambda: F.l1_loss(x, t, reduction="none"),
           "huber": lambda: F.huber_loss(x, t, delta=delta, reduction="none"),
           "bce": lambda: F.binary_cross_entropy_with_logits(x, torch.ones_like(x), reduction="none"),
           "cross_entropy": lambda: F.cross_entropy(torch.stack([torch.zeros_like(x), x], 1),
                                                    torch.ones(len(x), dtype=torch.long), reduction="none"),
           "hinge": lambda: (1 - x).clamp(min=0)}
    v = fns[loss]()
    (g,) = torch.autograd.grad(v.sum(), x)
    return v.detach(), g


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "bce", "cross_entropy", "hinge"])
def test_loss_curve_matches_torch(loss):
    values, grads = LS.loss_curve(loss, X, y=0.5, delta=0.8)
    ref_v, ref_g = _torch_oracle(loss, X)
    torch.testing.assert_close(values, ref_v)
    torch.testing.assert_close(grads, ref_g)


def test_gradient_table_mse_grows_linearly_mae_is_constant_huber_is_capped():
    errors = torch.tensor([0.5, 1.0, 2.0, 4.0], **F64)
    assert LS.loss_curve("mse", errors)[1].tolist() == [1.0, 2.0, 4.0, 8.0]
    assert LS.loss_curve("mae", errors)[1].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert LS.loss_curve("huber", errors, delta=1.0)[1].tolist() == [0.5, 1.0, 1.0, 1.0]
    assert LS.loss_curve("zero_one", [-1.0, 0.0, 2.0]) == (pytest.approx([1.0, 1.0, 0.0]), pytest.approx([0.0] * 3))


def test_loss_curve_accepts_floats_lists_and_arrays():
    import numpy as np
    a = LS.loss_curve("huber", 2.0)[0]
    b = LS.loss_curve("huber", [2.0])[0]
    c = LS.loss_curve("huber", np.array([2.0]))[0]
    assert a.tolist() == b.tolist() == c.tolist() == [1.5]


def test_bce_gradient_at_a_zero_logit():
    x = torch.zeros(2, **F64, requires_grad=True)
    bce_with_logits_loss(x, torch.tensor([1.0, 0.0], **F64), reduction="sum").backward()
    assert x.grad.tolist() == [-0.5, 0.5]


# ---------------------------------------------------------------------------------------------
# One outlier, three fits
# ---------------------------------------------------------------------------------------------

def _huber_location(y, delta):
    """The Huber M-estimate by bisection on its (monotone) derivative: exact to 1e-12."""
    lo, hi = y.min().item(), y.max().item()
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if (mid - y).clamp(-delta, delta).sum() > 0 else (mid, hi)
    return (lo + hi) / 2


@pytest.mark.parametrize("outlier_y", [-20.0, 3.0, 12.0, 30.0])
def test_constant_fits_are_mean_median_and_huber_in_between(outlier_y):
    x, y = LS.make_outlier_data(10, outlier_y=outlier_y, slope=0.0, intercept=2.0, seed=1)
    mean, median = y.mean().item(), y.median().item()  # 11 points: the median is unique
    (_, b_mse), (_, b_mae), (w, b_hub) = (LS.fit_line(x, y, name, slope=False) for name in LS.FIT_LOSSES)
    assert w == 0.0
    assert b_mse == pytest.approx(mean, abs=1e-12)
    assert b_mae == pytest.approx(median, abs=5e-3)
    assert b_hub == pytest.approx(_huber_location(y, 1.0), abs=1e-9)
    assert min(mean, median) - 1e-9 <= b_hub <= max(mean, median) + 1e-9


def test_huber_moves_from_median_to_mean_as_delta_grows():
    x, y = LS.make_outlier_data(10, outlier_y=15.0, slope=0.0, seed=2)
    fits = [LS.fit_line(x, y, "huber", delta=d, slope=False)[1] for d in (0.05, 0.5, 2.0, 100.0)]
    assert fits == sorted(fits)                                # towards the outlier, step by step
    assert fits[0] == pytest.approx(y.median().item(), abs=0.05)
    assert fits[-1] == pytest.approx(y.mean().item(), abs=1e-9)


def test_line_fits_least_squares_and_least_absolute_deviations():
    x, y = LS.make_outlier_data(10, outlier_y=20.0, seed=0)
    w, b = LS.fit_line(x, y, "mse")
    sol = torch.linalg.lstsq(torch.stack([x, torch.ones_like(x)], 1), y.unsqueeze(1)).solution.squeeze(1)
    assert (w, b) == pytest.approx(tuple(sol.tolist()), abs=1e-10)
    # Exact LAD: an optimal L1 line passes through two data points, so try every pair.
    best = min((y - (y[j] - y[i]) / (x[j] - x[i]) * (x - x[i]) - y[i]).abs().mean().item()
               for i, j in itertools.combinations(range(len(x)), 2) if x[i] != x[j])
    w1, b1 = LS.fit_line(x, y, "mae")
    assert (y - w1 * x - b1).abs().mean().item() == pytest.approx(best, abs=5e-3)
    assert abs(w1 - 0.5) < 0.1 < abs(w - 0.5)   # the MAE slope stays near the truth, MSE's does not


def test_outlier_data_keeps_its_inliers_whatever_the_outlier():
    x1, y1 = LS.make_outlier_data(8, outlier_y=-5.0)
    x2, y2 = LS.make_outlier_data(8, outlier_y=25.0, outlier_x=3.5)
    assert x1.shape == y1.shape == (9,) and torch.equal(y1[:-1], y2[:-1])
    assert (x2[-1].item(), y2[-1].item()) == (3.5, 25.0)


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,exc,match", [
    (lambda: S.optimizer_path("quadratic", optimizer="sgd"), ValueError,
     r"optimizer_path\(\): 'optimizer' must be one of 'gd', 'momentum', 'adam', got optimizer='sgd'"),
    (lambda: S.optimizer_path("quadratic", lr=-1.0), ValueError,
     r"optimizer_path\(\): 'lr' must be a float > 0, got lr=-1.0"),
    (lambda: S.optimizer_path("quadratic", num_steps=0), ValueError, r"'num_steps' must be an int in \[1, 1000000\]"),
    (lambda: S.optimizer_path("quadratic", momentum=1.0), ValueError, r"'momentum' must be a float in \[0, 1\)"),
    (lambda: S.optimizer_path("quadratic", start=(1.0, 2.0, 3.0)), ValueError, r"'p' must have shape \(\.\.\., 2\)"),
    (lambda: S.optimizer_path("quadratic", start=[[0.0, 1.0], [1.0, 2.0]]), ValueError,
     r"'start' must be one point \(x, y\)"),
    (lambda: S.optimizer_path("banana"), ValueError, r"get_surface\(\): 'surface' must be one of 'quadratic'"),
    (lambda: S.optimizer_path(3), TypeError, r"optimizer_path\(\): 'surface' must be a str or Surface"),
    (lambda: LS.loss_curve("l2", [0.0]), ValueError, r"loss_curve\(\): 'loss' must be one of 'mse'"),
    (lambda: LS.loss_curve("huber", [0.0], delta=0), ValueError, r"loss_curve\(\): 'delta' must be a float > 0"),
    (lambda: LS.fit_line(torch.zeros(3, **F64), torch.zeros(4, **F64)), ValueError,
     r"fit_line\(\): 'x' and 'y' must hold the same number N >= 2 of points"),
    (lambda: LS.fit_line(torch.zeros(3), torch.zeros(3), "hinge"), ValueError, r"fit_line\(\): 'loss' must be one of"),
    (lambda: LS.fit_line(torch.ones(3), torch.zeros(3)), ValueError, r"a line needs at least two different values"),
    (lambda: S.quadratic(a=0), ValueError, r"quadratic\(\): 'a' must be a float > 0, got a=0"),
    (lambda: S.two_minima(tilt=0.0), ValueError, r"two_minima\(\): 'tilt' must be nonzero"),
    (lambda: S.gd_thresholds(torch.tensor([[1.0, 2.0], [0.0, 1.0]], **F64)), ValueError,
     r"gd_thresholds\(\): the Hessian must be symmetric"),
    (lambda: S.gd_thresholds(torch.diag(torch.tensor([-1.0, -2.0], **F64))), ValueError,
     r"must have a positive eigenvalue"),
    (lambda: S.gd_thresholds("quadratic").regime(0.0), ValueError,
     r"GDThresholds.regime\(\): 'lr' must be a float > 0"),
    (lambda: LS.make_outlier_data(1), ValueError, r"make_outlier_data\(\): 'n' must be an int >= 2, got n=1"),
])
def test_bad_arguments_are_named(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_surfaces_import_neither_matplotlib_nor_ipywidgets():
    code = ("import sys, course_lib.surfaces; "
            "print(any(m.startswith(('matplotlib', 'ipywidgets')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
