"""Grading tests of notebook 10 (hypergradients): exercises 10.1-10.3.

Oracles: the closed form of ridge gradient descent. With ``H = X^T X / n = U diag(mu) U^T`` and
``b = X^T y / n``, ``T`` steps from ``w = 0`` give ``w_T = U [(1 - q^T) / (mu + lam) * U^T b]``,
``q = 1 - lr (mu + lam)``, so ``f(rho)`` and its exact derivative are sums over eigenvalues.
For 10.2 also the Jacobians of the gradient step from ``torch.autograd.functional.jacobian``. 10.3 runs ``course_lib``'s
hyper-optimiser with the answer (calibrated, seeds 0/1/2, 10 Adam steps from rho = -6: ratio
to the closed-form optimum 1.13/1.05/1.10 at hyper_lr 0.5, 1.02/1.00/1.01 at 0.6, 1.00/1.02/1.01
at 0.7, 1.04/1.07/1.06 at 0.8; 1.0 and above diverge).
"""

import math

import pytest
import torch

from course_lib import hypergrad as hg
from course_lib.grading import isolated_torch as _isolated

F64 = dict(dtype=torch.float64)


def _data(n=40, d=50, m=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    X, X_val = torch.randn(n, d, generator=g, **F64), torch.randn(m, d, generator=g, **F64)
    w = torch.randn(d, generator=g, **F64) / math.sqrt(d)
    y, y_val = X @ w + torch.randn(n, generator=g, **F64), X_val @ w + torch.randn(m, generator=g, **F64)
    lr = 1 / torch.linalg.eigvalsh(X.T @ X / n)[-1].item()
    return X, y, X_val, y_val, lr


def closed_form(X, y, X_val, y_val, rho, T, lr):
    """(f, df/drho) of T ridge GD steps from 0, from the eigendecomposition of X^T X / n."""
    n = len(y)
    mu, U = torch.linalg.eigh(X.T @ X / n)
    c = U.T @ (X.T @ y / n)  # (d,): b in the eigenbasis
    lam = math.exp(rho)
    a = mu + lam
    q = 1 - lr * a
    w = U @ ((1 - q**T) / a * c)
    dw_dlam = U @ ((T * lr * q ** (T - 1) * a - (1 - q**T)) / a**2 * c)
    r = X_val @ w - y_val
    f = 0.5 * r.pow(2).mean().item()
    grad_E = X_val.T @ r / len(y_val)
    return f, lam * (grad_E @ dw_dlam).item()


def best_loss(problem, rhos):
    """The lowest closed-form validation loss over ``rhos`` after 300 steps (all rhos at once)."""
    X, y, X_val, y_val, lr = problem.X_train, problem.y_train, problem.X_val, problem.y_val, problem.default_lr
    mu, U = torch.linalg.eigh(X.T @ X / len(y))
    a = mu + rhos.exp()[:, None]  # (K, d)
    W = ((1 - (1 - lr * a) ** 300) / a * (U.T @ (X.T @ y / len(y)))) @ U.T  # (K, d): w_300 per rho
    return (0.5 * (W @ X_val.T - y_val).pow(2).mean(dim=1)).min().item()


def _float(value, what):
    assert isinstance(value, (float, int)) or (torch.is_tensor(value) and value.numel() == 1), (
        f"{what} should return a float; got {type(value).__name__}")
    return float(value)


# ----------------------------------------------------------------------------- 10.1 reverse mode
@pytest.mark.exercise("10.1")
@pytest.mark.points(1)
def test_one_step_has_no_hypergradient_and_two_steps_are_exact(exercise):
    """After one step from w = 0, w_1 = lr X^T y / n does not depend on lambda: the answer is 0.
    After two, only the second step's penalty term lr * lam * w_1 brings in lambda."""
    f = exercise("10.1").ridge_hypergradient
    X, y, X_val, y_val, lr = _data(12, 8, 30, seed=3)
    got1 = _float(f(X, y, X_val, y_val, 0.5, 1, lr), "ridge_hypergradient")
    assert abs(got1) < 1e-12, f"with num_steps=1, df/drho should be 0; got {got1:.6g}"
    want = closed_form(X, y, X_val, y_val, 0.5, 2, lr)[1]
    got2 = _float(f(X, y, X_val, y_val, 0.5, 2, lr), "ridge_hypergradient")
    assert got2 == pytest.approx(want, rel=1e-9), (
        f"with num_steps=2, rho=0.5: expected df/drho = {want:.10g}; got {got2:.10g}")


@pytest.mark.exercise("10.1")
@pytest.mark.points(2)
@pytest.mark.parametrize("rho", [-4.0, -1.0, 0.8])
def test_reverse_hypergradient_matches_the_closed_form(exercise, rho):
    """Differentiate with respect to rho, not lambda (lam = rho.exp() inside the graph), through
    every step (no detach), on the validation loss 0.5 * mean((X_val w - y_val)**2)."""
    f = exercise("10.1").ridge_hypergradient
    X, y, X_val, y_val, lr = _data()
    want = closed_form(X, y, X_val, y_val, rho, 300, lr)[1]
    with _isolated():
        got = _float(f(X, y, X_val, y_val, rho, 300, lr), "ridge_hypergradient")
    assert got == pytest.approx(want, rel=1e-8, abs=1e-12), (
        f"rho={rho}, 300 steps: expected df/drho = {want:.10g}; got {got:.10g} (ratio {got / want if want else math.nan:.4g})")


# ----------------------------------------------------------------------------- 10.2 forward step
def _step(X, y, w, rho, lr):
    """The ridge gradient step as a function of (w, rho): torch differentiates it for the oracle."""
    return w - lr * (X.T @ (X @ w - y) / len(y) + torch.exp(rho) * w)


@pytest.mark.exercise("10.2")
@pytest.mark.points(2)
@pytest.mark.parametrize("rho", [-2.0, 0.7])
def test_forward_step_matches_the_jacobians(exercise, rho):
    """z_next = A z + B with A z = z - lr (X^T X z / n + lam z) and B = -lr * lam * w (the OLD w)."""
    fs = exercise("10.2").forward_step
    X, y, _, _, lr = _data(12, 8, 30, seed=5)
    g = torch.Generator().manual_seed(1)
    w, z = torch.randn(8, generator=g, **F64), torch.randn(8, generator=g, **F64)
    w_copy, z_copy = w.clone(), z.clone()
    rho_t = torch.tensor(rho, **F64)
    J_w, J_rho = torch.autograd.functional.jacobian(lambda w_, r_: _step(X, y, w_, r_, lr), (w, rho_t))  # (8, 8), (8,)
    want_w, want_z = _step(X, y, w, rho_t, lr), J_w @ z + J_rho  # the tangent: A z + B
    got_w, got_z = fs(X, y, w, z, rho, lr)
    assert torch.equal(w, w_copy) and torch.equal(z, z_copy), "forward_step should not modify w or z in place"
    err_w, err_z = (got_w - want_w).abs().max().item(), (got_z - want_z).abs().max().item()
    assert err_w < 1e-12, f"w_next should be one gradient step; max abs error {err_w:.3g}"
    assert err_z < 1e-12, (f"rho={rho}: z_next should be dw_next/drho = {want_z[:3].tolist()}...; "
                           f"got {got_z[:3].tolist()}... (max abs error {err_z:.3g})")


@pytest.mark.exercise("10.2")
@pytest.mark.points(1)
def test_forward_steps_give_the_hypergradient(exercise):
    """Step w and z together from zero for T steps; grad E(w_T) . z_T is df/drho."""
    fs = exercise("10.2").forward_step
    X, y, X_val, y_val, lr = _data()
    w = z = torch.zeros(50, **F64)
    with _isolated():
        for _ in range(300):
            w, z = fs(X, y, w, z, -1.0, lr)
    got = ((X_val.T @ (X_val @ w - y_val) / len(y_val)) @ z).item()
    want = closed_form(X, y, X_val, y_val, -1.0, 300, lr)[1]
    assert got == pytest.approx(want, rel=1e-8), f"after 300 forward steps at rho=-1: expected {want:.10g}; got {got:.10g}"


# ----------------------------------------------------------------------------- 10.3 choose hyper_lr
def _hyper_run(exercise, seed):
    hyper_lr = _float(exercise("10.3").choose_hyper_lr(), "choose_hyper_lr")
    assert hyper_lr > 0, f"hyper_lr should be > 0; got {hyper_lr}"
    problem = hg.make_ridge_problem(seed=seed, device="cpu")
    with _isolated():
        run = hg.hyper_optimize(problem, -6.0, num_hyper_steps=10, hyper_lr=hyper_lr, num_steps=300,
                                   mode="forward")  # the same numbers as reverse mode, faster here
    best = best_loss(problem, torch.linspace(-6, 1.25, 146, **F64))
    return hyper_lr, run, best


def check_hyper_run(exercise, seed):
    hyper_lr, run, best = _hyper_run(exercise, seed)
    assert not run.diverged, (f"seed {seed}: with hyper_lr={hyper_lr} training diverged at rho = {run.rhos[-1][0]:.2f} "
                              "(too far right: the steps overshoot the valley)")
    assert run.losses[-1] < 1.10 * best, (
        f"seed {seed}: expected a validation loss below {1.10 * best:.4f} (1.1 x the optimum {best:.4f}) after 10 "
        f"hyper-steps; got {run.losses[-1]:.4f} at rho = {run.rhos[-1][0]:.2f} with hyper_lr={hyper_lr}")


@pytest.mark.exercise("10.3")
@pytest.mark.points(2)
def test_ten_hyper_steps_reach_the_valley(exercise):
    """Adam moves rho by about hyper_lr per step: from -6 the valley (near 0) is about 6 away,
    and beyond rho ~ 1.4 training diverges."""
    check_hyper_run(exercise, seed=0)
