"""Hidden grading tests of notebook 10 (instructors only; not shipped to students).

10.1 and 10.2 on other shapes (more examples than features) and other unroll lengths, against
the closed form of ridge gradient descent; 10.3's step size on two more draws of the data
(calibrated: seeds 1 and 2 pass for hyper_lr in about [0.55, 0.85]).
"""

import math

import pytest
import torch

from course_lib import hypergrad as hg
from course_lib.grading import isolated_torch as _isolated

F64 = dict(dtype=torch.float64)


def _data(n, d, m, seed):
    g = torch.Generator().manual_seed(seed)
    X, X_val = torch.randn(n, d, generator=g, **F64), torch.randn(m, d, generator=g, **F64)
    w = torch.randn(d, generator=g, **F64) / math.sqrt(d)
    y, y_val = X @ w + 0.5 * torch.randn(n, generator=g, **F64), X_val @ w + 0.5 * torch.randn(m, generator=g, **F64)
    return X, y, X_val, y_val, 0.5 / torch.linalg.eigvalsh(X.T @ X / n)[-1].item()


def closed_form(X, y, X_val, y_val, rho, T, lr):
    """(f, df/drho) of T ridge GD steps from 0, from the eigendecomposition of X^T X / n."""
    n = len(y)
    mu, U = torch.linalg.eigh(X.T @ X / n)
    c = U.T @ (X.T @ y / n)
    lam = math.exp(rho)
    a = mu + lam
    q = 1 - lr * a
    w = U @ ((1 - q**T) / a * c)
    dw_dlam = U @ ((T * lr * q ** (T - 1) * a - (1 - q**T)) / a**2 * c)
    r = X_val @ w - y_val
    return 0.5 * r.pow(2).mean().item(), lam * ((X_val.T @ r / len(y_val)) @ dw_dlam).item()


def best_loss(problem, rhos):
    """The lowest closed-form validation loss over ``rhos`` after 300 steps (all rhos at once)."""
    X, y, X_val, y_val, lr = problem.X_train, problem.y_train, problem.X_val, problem.y_val, problem.default_lr
    mu, U = torch.linalg.eigh(X.T @ X / len(y))
    a = mu + rhos.exp()[:, None]  # (K, d)
    W = ((1 - (1 - lr * a) ** 300) / a * (U.T @ (X.T @ y / len(y)))) @ U.T  # (K, d): w_300 per rho
    return (0.5 * (W @ X_val.T - y_val).pow(2).mean(dim=1)).min().item()


@pytest.mark.exercise("10.1")
@pytest.mark.points(1)
@pytest.mark.parametrize("T, rho", [(7, -0.5), (60, 1.5)])
def test_reverse_on_a_tall_problem(exercise, T, rho):
    """Use the arguments you are given (num_steps, lr), and n = X.shape[0] for the mean."""
    X, y, X_val, y_val, lr = _data(60, 10, 90, seed=11)
    want = closed_form(X, y, X_val, y_val, rho, T, lr)[1]
    with _isolated():
        got = float(exercise("10.1").ridge_hypergradient(X, y, X_val, y_val, rho, T, lr))
    assert got == pytest.approx(want, rel=1e-8, abs=1e-14), f"T={T}, rho={rho}: expected {want:.10g}; got {got:.10g}"


@pytest.mark.exercise("10.2")
@pytest.mark.points(1)
def test_forward_steps_on_a_tall_problem(exercise):
    """z_next = A z - lr * lam * w, with the weights from before the step."""
    X, y, X_val, y_val, lr = _data(60, 10, 90, seed=12)
    w = z = torch.zeros(10, **F64)
    with _isolated():
        for _ in range(25):
            w, z = exercise("10.2").forward_step(X, y, w, z, 0.3, lr)
    got = ((X_val.T @ (X_val @ w - y_val) / len(y_val)) @ z).item()
    want = closed_form(X, y, X_val, y_val, 0.3, 25, lr)[1]
    assert got == pytest.approx(want, rel=1e-8), f"25 forward steps at rho=0.3: expected {want:.10g}; got {got:.10g}"


@pytest.mark.exercise("10.3")
@pytest.mark.points(1)
@pytest.mark.parametrize("seed", [1, 2])
def test_hyper_lr_works_on_other_draws(exercise, seed):
    """A step size that reaches the valley in 10 steps without jumping past the cliff works on
    any draw of this problem: the valley and the cliff barely move."""
    hyper_lr = float(exercise("10.3").choose_hyper_lr())
    assert hyper_lr > 0, f"hyper_lr should be > 0; got {hyper_lr}"
    problem = hg.make_ridge_problem(seed=seed, device="cpu")
    with _isolated():
        run = hg.hyper_optimize(problem, -6.0, num_hyper_steps=10, hyper_lr=hyper_lr, num_steps=300,
                                   mode="forward")  # the same numbers as reverse mode, faster here
    best = best_loss(problem, torch.linspace(-6, 1.25, 146, **F64))
    assert not run.diverged and run.losses[-1] < 1.10 * best, (
        f"seed {seed}: expected a validation loss below {1.10 * best:.4f} after 10 hyper-steps with hyper_lr="
        f"{hyper_lr}; got {run.losses[-1]:.4g} at rho = {run.rhos[-1][0]:.2f} ({run.stop_reason})")
