"""Grading tests of notebook 02 (gradient descent and the learning rate): exercises 2.1-2.3.

Oracle: ``torch.optim.SGD`` run on the same least-squares problem, step for step; closed
forms for the thresholds of a quadratic.
"""

import math

import pytest
import torch


def _problem(seed=0, shape=(5,)):
    """A least-squares loss 0.5 ||A w - b||^2 over a parameter of `shape`: its gradient and w0."""
    g = torch.Generator().manual_seed(seed)
    d = math.prod(shape)
    A = torch.randn(20, d, generator=g, dtype=torch.float64) / math.sqrt(20)
    b = torch.randn(20, generator=g, dtype=torch.float64)
    w0 = torch.randn(shape, generator=g, dtype=torch.float64)

    def grad(w):
        return (A.T @ (A @ w.reshape(-1) - b)).reshape(shape)

    return grad, w0


def _torch_trajectory(grad, w0, steps, **sgd_kwargs):
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.SGD([w], **sgd_kwargs)
    out = []
    for _ in range(steps):
        w.grad = grad(w.detach())
        opt.step()
        out.append(w.detach().clone())
    return out


# ----------------------------------------------------------------------------- 2.1 sgd_step
@pytest.mark.exercise("2.1")
@pytest.mark.points(1)
def test_sgd_step_hand_computed(exercise):
    """L2 decay adds weight_decay times the parameter to the gradient; the step goes against that sum, scaled by
    lr."""
    sgd_step = exercise("2.1").sgd_step
    got = sgd_step(torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.5]), lr=0.1, weight_decay=0.1)
    want = torch.tensor([0.94, -2.03])  # w - 0.1 * (g + 0.1 w)
    assert isinstance(got, torch.Tensor), (
        f"sgd_step should return a tensor; got {type(got).__module__}.{type(got).__qualname__}")
    assert torch.allclose(got, want), (
        f"sgd_step([1, -2], grad [0.5, 0.5], lr=0.1, weight_decay=0.1) should be {want.tolist()}; got {got.tolist()}")


@pytest.mark.exercise("2.1")
@pytest.mark.points(1)
def test_sgd_step_matches_torch_without_decay(exercise):
    """Without decay, one step moves the parameter against the gradient, scaled by lr."""
    sgd_step = exercise("2.1").sgd_step
    grad, w0 = _problem(1)
    want = _torch_trajectory(grad, w0, 25, lr=0.3)
    w = w0.clone()
    for t in range(25):
        w = sgd_step(w, grad(w), lr=0.3)
        err = (w - want[t]).abs().max().item()
        assert err < 1e-12, (
            f"after step {t + 1} (lr=0.3, no weight decay) the parameter differs from torch.optim.SGD's by {err:.3g}")


@pytest.mark.exercise("2.1")
@pytest.mark.points(2)
@pytest.mark.parametrize("shape", [(5,), (3, 4)], ids=["vector", "matrix"])
def test_sgd_step_matches_torch_with_weight_decay(exercise, shape):
    """PyTorch's weight decay is L2 decay: it enters through the gradient, before the step; the input stays as it
    was."""
    sgd_step = exercise("2.1").sgd_step
    grad, w0 = _problem(2, shape)
    want = _torch_trajectory(grad, w0, 25, lr=0.2, weight_decay=0.1)
    w = w0.clone()
    for t in range(25):
        w_in, before = w, w.clone()
        w = sgd_step(w_in, grad(w_in), lr=0.2, weight_decay=0.1)
        assert torch.equal(w_in, before), (
            "sgd_step modified its input param in place; it must return a new tensor and leave param unchanged")
        assert tuple(w.shape) == shape, f"sgd_step changed the parameter's shape from {shape} to {tuple(w.shape)}"
        err = (w - want[t]).abs().max().item()
        assert err < 1e-12, (
            f"after step {t + 1} (lr=0.2, weight_decay=0.1) the parameter differs from torch.optim.SGD's by {err:.3g}. "
            "Hint: L2 decay enters through the gradient")


@pytest.mark.exercise("2.1")
@pytest.mark.points(1)
def test_sgd_step_leaves_inputs_unchanged(exercise):
    """Return a new tensor and leave param and grad as they were: no in-place operations on the inputs."""
    sgd_step = exercise("2.1").sgd_step
    param, grad = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.1, -0.2, 0.3])
    p0, g0 = param.clone(), grad.clone()
    sgd_step(param, grad, lr=0.5, weight_decay=0.01)
    assert torch.equal(param, p0) and torch.equal(grad, g0), (
        f"sgd_step must not modify its inputs in place; param became {param.tolist()} (was {p0.tolist()})")


# ----------------------------------------------------------------------------- 2.2 momentum_step
@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
def test_momentum_two_steps_hand_computed(exercise):
    """The velocity decays by momentum and gathers the gradient; the parameter then moves against the new velocity;
    return both."""
    momentum_step = exercise("2.2").momentum_step
    g = torch.tensor([1.0, -2.0], dtype=torch.float64)
    zeros = torch.zeros(2, dtype=torch.float64)
    w, v = momentum_step(zeros, g, zeros.clone(), lr=0.1, momentum=0.5)
    assert torch.allclose(v, g) and torch.allclose(w, -0.1 * g), (
        f"first step from v = 0: velocity should be g = {g.tolist()} and w = -lr g = {(-0.1 * g).tolist()}; got v = "
        f"{v.tolist()}, w = {w.tolist()}")
    w, v = momentum_step(w, g, v, lr=0.1, momentum=0.5)
    assert torch.allclose(v, 1.5 * g), (
        f"second step: velocity should be 0.5 g + g = {(1.5 * g).tolist()}; got {v.tolist()}")
    assert torch.allclose(w, -0.25 * g), (
        f"second step: w should be -0.1 g - 0.1 * 1.5 g = {(-0.25 * g).tolist()}; got {w.tolist()}")


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
def test_momentum_zero_is_plain_sgd(exercise):
    """With momentum 0 the velocity is just the gradient."""
    momentum_step = exercise("2.2").momentum_step
    grad, w0 = _problem(3)
    w, v = w0.clone(), torch.zeros_like(w0)
    for t in range(5):
        want = w - 0.3 * grad(w)
        w, v = momentum_step(w, grad(w), v, lr=0.3, momentum=0.0)
        assert torch.allclose(w, want, atol=1e-12), (
            f"with momentum=0, step {t + 1} should be plain SGD w - lr g; max difference "
            f"{(w - want).abs().max().item():.3g}")


@pytest.mark.exercise("2.2")
@pytest.mark.points(2)
def test_momentum_matches_torch(exercise):
    """PyTorch's heavy-ball form gathers the full gradient into the velocity, without damping it by (1 - momentum)."""
    momentum_step = exercise("2.2").momentum_step
    grad, w0 = _problem(4)
    want = _torch_trajectory(grad, w0, 30, lr=0.1, momentum=0.9)
    w, v = w0.clone(), torch.zeros_like(w0)
    for t in range(30):
        w, v = momentum_step(w, grad(w), v, lr=0.1, momentum=0.9)
        err = (w - want[t]).abs().max().item()
        assert err < 1e-12, (
            f"after step {t + 1} (lr=0.1, momentum=0.9) the parameter differs from torch.optim.SGD's by {err:.3g}. "
            "PyTorch's velocity gathers the full gradient (no (1 - momentum) factor)")


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
def test_momentum_with_weight_decay_matches_torch(exercise):
    """The decay term belongs to the gradient, so it goes into the velocity too."""
    momentum_step = exercise("2.2").momentum_step
    grad, w0 = _problem(5, (3, 4))
    want = _torch_trajectory(grad, w0, 30, lr=0.1, momentum=0.8, weight_decay=0.05)
    w, v = w0.clone(), torch.zeros_like(w0)
    for t in range(30):
        w, v = momentum_step(w, grad(w), v, lr=0.1, momentum=0.8, weight_decay=0.05)
        err = (w - want[t]).abs().max().item()
        assert err < 1e-12, (
            f"after step {t + 1} (momentum=0.8, weight_decay=0.05) the parameter differs from torch.optim.SGD's by "
            f"{err:.3g}. "
            "The decay term belongs to the gradient, before the velocity update")


@pytest.mark.exercise("2.2")
@pytest.mark.points(1)
def test_momentum_leaves_inputs_unchanged(exercise):
    """Return the new parameter and the new velocity as new tensors; the inputs stay as they were."""
    momentum_step = exercise("2.2").momentum_step
    param, grad, vel = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -0.5]), torch.tensor([0.1, 0.2])
    saved = [t.clone() for t in (param, grad, vel)]
    out = momentum_step(param, grad, vel, lr=0.1, momentum=0.9, weight_decay=0.01)
    assert isinstance(out, tuple) and len(out) == 2, (
        f"momentum_step should return (new_param, new_velocity); got {type(out).__name__}")
    for name, t, t0 in zip(("param", "grad", "velocity"), (param, grad, vel), saved):
        assert torch.equal(t, t0), (
            f"momentum_step modified its input {name} in place (from {t0.tolist()} to {t.tolist()}): return new "
            "tensors instead")


# ----------------------------------------------------------------------------- 2.3 lr_thresholds
_KEYS = ("monotone", "max", "optimal")


@pytest.mark.exercise("2.3")
@pytest.mark.points(1)
def test_thresholds_return_three_floats(exercise):
    """Return a dict with the three keys of the exercise, each a Python float."""
    got = exercise("2.3").lr_thresholds(torch.diag(torch.tensor([1.0, 2.0], dtype=torch.float64)))
    assert isinstance(got, dict) and set(got) == set(_KEYS), (
        f"lr_thresholds should return a dict with keys {_KEYS}; got {got!r}")
    types = {k: f"{type(got[k]).__module__}.{type(got[k]).__qualname__}" for k in _KEYS}
    assert all(isinstance(got[k], float) for k in _KEYS), f"the values should be Python floats; got {types}"


@pytest.mark.exercise("2.3")
@pytest.mark.points(2)
def test_thresholds_of_the_course_bowl(exercise):
    """The thresholds come from the largest and the smallest curvature of the bowl (eigenvalues of H)."""
    got = exercise("2.3").lr_thresholds(torch.diag(torch.tensor([0.2, 4.0], dtype=torch.float64)))
    want = {"monotone": 0.25, "max": 0.5, "optimal": 2 / 4.2}
    for k in _KEYS:
        assert float(got[k]) == pytest.approx(want[k], rel=1e-9), (
            f"for H = diag(0.2, 4), {k!r} should be {want[k]:.6g}; got {got[k]!r}")


@pytest.mark.exercise("2.3")
@pytest.mark.points(2)
def test_thresholds_of_a_rotated_matrix(exercise):
    """The curvatures of a rotated bowl are the eigenvalues of H, not its diagonal entries."""
    g = torch.Generator().manual_seed(6)
    Q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    lam = torch.tensor([0.5, 1.0, 3.0, 8.0], dtype=torch.float64)
    H = Q @ torch.diag(lam) @ Q.T  # not diagonal: the eigenvalues are not on the diagonal
    got = exercise("2.3").lr_thresholds(H)
    want = {"monotone": 1 / 8, "max": 2 / 8, "optimal": 2 / 8.5}
    for k in _KEYS:
        assert float(got[k]) == pytest.approx(want[k], rel=1e-9), (
            f"for a (non-diagonal) H with eigenvalues {lam.tolist()}, {k!r} should be {want[k]:.6g}; got {got[k]!r}. "
            "Hint: use the eigenvalues, not the diagonal")


@pytest.mark.exercise("2.3")
@pytest.mark.points(1)
def test_max_threshold_separates_convergence_from_divergence(exercise):
    """'max' is where gradient descent turns from converging to diverging along the steepest direction."""
    H = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    lr_max = float(exercise("2.3").lr_thresholds(H)["max"])
    norms = {}
    for factor in (0.97, 1.03):
        w = torch.ones(2, dtype=torch.float64)
        for _ in range(300):
            w = w - factor * lr_max * (H @ w)
        norms[factor] = w.norm().item()
    assert norms[0.97] < 1e-3 and norms[1.03] > 10, (
        f"GD at 0.97 x max should converge and at 1.03 x max diverge; |w| after 300 steps: {norms} (max = "
        f"{lr_max:.4g})")
