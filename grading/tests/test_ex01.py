"""Grading tests of notebook 01 (loss functions): exercises 1.1-1.5.

Oracles: torch's own losses (``F.mse_loss``, ``F.huber_loss``, ``torch.log_softmax``,
``F.cross_entropy``, ``torch.distributions.kl_divergence``) and hand-computed values.
"""

import math

import pytest
import torch
import torch.nn.functional as F


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _resolution(dtype, magnitude):
    """The rounding error a few operations at ``magnitude`` may make in ``dtype`` (8 ulps)."""
    return 8 * torch.finfo(dtype).eps * magnitude


def _check_tensor(got, like, what):
    """A tensor of the input's shape and dtype, with a message that names what differs."""
    assert isinstance(got, torch.Tensor), f"{what}: should return a tensor; got {type(got).__module__}.{type(got).__qualname__}"
    assert tuple(got.shape) == tuple(like.shape), (
        f"{what}: the result should have the input's shape {tuple(like.shape)}; got {tuple(got.shape)}")
    assert got.dtype == like.dtype, f"{what}: the result should keep the input's dtype {like.dtype}; got {got.dtype}"


# ----------------------------------------------------------------------------- 1.1 mse
@pytest.mark.exercise("1.1")
@pytest.mark.points(1)
def test_mse_hand_computed(exercise):
    """The loss is the average (not the sum) of the squared residuals."""
    mse = exercise("1.1").mse
    got = mse(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]))
    assert float(got) == pytest.approx(2.0), f"mse([1, 2], [1, 4]) should be (0 + 4) / 2 = 2.0; got {float(got)}"


@pytest.mark.exercise("1.1")
@pytest.mark.points(1)
def test_mse_returns_a_scalar_tensor(exercise):
    """Return the loss as a 0-dim tensor (a Python number cannot carry a gradient)."""
    mse = exercise("1.1").mse
    got = mse(torch.ones(5, 3), torch.zeros(5, 3))
    assert isinstance(got, torch.Tensor), (
        f"mse should return a torch.Tensor; got {type(got).__module__}.{type(got).__qualname__}")
    assert got.ndim == 0, f"mse should return a 0-dim tensor (the mean over all elements); got shape {tuple(got.shape)}"


@pytest.mark.exercise("1.1")
@pytest.mark.points(1)
@pytest.mark.parametrize("shape", [(64, 1), (8, 5), (3, 4, 2)], ids=["64x1", "8x5", "3x4x2"])
def test_mse_matches_torch(exercise, shape):
    """Average over every element, whatever the shape, not along one dimension."""
    mse = exercise("1.1").mse
    g = _g(1)
    y_hat = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.randn(shape, generator=g, dtype=torch.float64)
    want = F.mse_loss(y_hat, y).item()
    got = float(mse(y_hat, y))
    assert got == pytest.approx(want, rel=1e-10), (
        f"mse on random tensors of shape {shape}: expected {want:.10g} (F.mse_loss); got {got:.10g}")


@pytest.mark.exercise("1.1")
@pytest.mark.points(1)
def test_mse_gradient(exercise):
    """Autograd differentiates what you computed: a mean of N squares has the gradient 2 (y_hat - y) / N."""
    mse = exercise("1.1").mse
    g = _g(2)
    y_hat = torch.randn(10, 1, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(10, 1, generator=g, dtype=torch.float64)
    out = mse(y_hat, y)
    assert isinstance(out, torch.Tensor) and out.requires_grad, (
        f"mse returned {type(out).__module__}.{type(out).__qualname__} without a gradient: the loss must stay a "
        "tensor built from y_hat (no .item(), no NumPy) so that autograd can follow it")
    out.backward()
    want = 2 * (y_hat.detach() - y) / y.numel()
    assert y_hat.grad is not None, "no gradient reached y_hat: the loss must be built from y_hat with torch operations"
    err = (y_hat.grad - want).abs().max().item()
    ratio = (y_hat.grad / want).median().item()
    why = (f" (yours is {ratio:.3g} times too large: a sum rather than a mean?)" if abs(ratio - y.numel()) < 1e-6
           else "")
    assert err < 1e-12, f"d mse / d y_hat should be 2 (y_hat - y) / N; max abs difference {err:.3g}{why}"


# ----------------------------------------------------------------------------- 1.2 huber
@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_huber_hand_computed(exercise):
    """Two pieces that meet smoothly at |r| = delta: a half square inside, a straight line (with an offset) outside;
    then the mean."""
    huber = exercise("1.2").huber
    got = float(huber(torch.tensor([0.5, 2.0]), torch.zeros(2)))
    # 0.5 * 0.5**2 = 0.125 (quadratic), 1.0 * (2.0 - 0.5) = 1.5 (linear): mean 0.8125
    assert got == pytest.approx(0.8125), (
        f"huber([0.5, 2.0], [0, 0], delta=1) should be (0.125 + 1.5) / 2 = 0.8125: 0.5 * 0.5**2 for the small "
        f"residual, 1 * (2 - 0.5) for the large one; got {got}")


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_matches_torch(exercise, delta):
    """delta decides both where the pieces meet and the slope of the linear piece; choose the piece per element."""
    huber = exercise("1.2").huber
    g = _g(3)
    y_hat = 3 * torch.randn(200, generator=g, dtype=torch.float64)  # residuals on both sides of delta
    y = torch.randn(200, generator=g, dtype=torch.float64)
    want = F.huber_loss(y_hat, y, delta=delta).item()
    got = float(huber(y_hat, y, delta=delta))
    assert got == pytest.approx(want, rel=1e-10), (
        f"huber with delta={delta}: expected {want:.10g} (F.huber_loss); got {got:.10g}")


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_huber_default_delta_is_one(exercise):
    """Keep the signature of the exercise, with its default delta."""
    huber = exercise("1.2").huber
    y_hat = torch.tensor([0.2, -0.7, 1.5, -4.0], dtype=torch.float64)
    want = F.huber_loss(y_hat, torch.zeros(4, dtype=torch.float64), delta=1.0).item()
    got = float(huber(y_hat, torch.zeros(4, dtype=torch.float64)))
    assert got == pytest.approx(want, rel=1e-10), (
        f"huber without delta should use delta=1.0 and give {want:.6g}; got {got:.6g}")


@pytest.mark.exercise("1.2")
@pytest.mark.points(1)
def test_huber_gradient_is_clipped_residual(exercise):
    """Build the loss with tensor operations that pick a piece per element, so autograd follows the chosen piece."""
    huber = exercise("1.2").huber
    r = torch.tensor([-5.0, -1.5, -0.3, 0.0, 0.4, 1.2, 9.0], dtype=torch.float64)
    y_hat = r.clone().requires_grad_(True)
    huber(y_hat, torch.zeros_like(r), delta=1.0).backward()
    want = r.clamp(-1.0, 1.0) / r.numel()
    assert y_hat.grad is not None, "no gradient reached y_hat: compute the loss with torch operations"
    assert torch.allclose(y_hat.grad, want, atol=1e-12), (
        f"d huber / d y_hat should be clip(r, -delta, delta) / N = {want.tolist()}; got {y_hat.grad.tolist()}")


# ----------------------------------------------------------------------------- 1.3 log_softmax
@pytest.mark.exercise("1.3")
@pytest.mark.points(2)
def test_log_softmax_matches_torch(exercise):
    """log softmax(z)_i = z_i - log(sum_j exp(z_j)), along dim."""
    log_softmax = exercise("1.3").log_softmax
    z = 3 * torch.randn(6, 10, generator=_g(4), dtype=torch.float64)
    want = torch.log_softmax(z, dim=-1)
    got = log_softmax(z)
    _check_tensor(got, z, "log_softmax of a float64 (6, 10) tensor")
    err = (got - want).abs().max().item()
    assert err < 1e-12, f"log_softmax differs from torch.log_softmax by up to {err:.3g}"


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
def test_log_softmax_along_dim_0(exercise):
    """Every reduction goes along the dim argument and keeps that dimension, so the result broadcasts back."""
    log_softmax = exercise("1.3").log_softmax
    z = torch.randn(5, 3, 4, generator=_g(5), dtype=torch.float64)
    want = torch.log_softmax(z, dim=0)
    got = log_softmax(z, dim=0)
    _check_tensor(got, z, "log_softmax(z, dim=0) of a float64 (5, 3, 4) tensor")
    err = (got - want).abs().max().item()
    assert err < 1e-12, f"log_softmax(z, dim=0) differs from torch.log_softmax(z, dim=0) by up to {err:.3g}"


@pytest.mark.exercise("1.3")
@pytest.mark.points(2)
def test_log_softmax_survives_huge_logits(exercise):
    """exp(1e4) overflows: rewrite log(sum(exp(z))) so that no exp ever sees a large positive number (the
    log-sum-exp trick)."""
    log_softmax = exercise("1.3").log_softmax
    z = torch.tensor([[1e4, 1e4], [1e4, 0.0], [-1e4, -1e4]])  # float32
    got = log_softmax(z)
    _check_tensor(got, z, "log_softmax of float32 logits of shape (3, 2)")
    assert torch.isfinite(got).all(), (
        f"log_softmax of logits [[1e4, 1e4], [1e4, 0], [-1e4, -1e4]] should be finite; got {got.tolist()}")
    want = torch.tensor([[-math.log(2), -math.log(2)], [0.0, -1e4], [-math.log(2), -math.log(2)]])
    # Any correct formula rounds through values of size 1e4, where float32's spacing is about 1e-3.
    atol = _resolution(torch.float32, 1e4)
    err = (got - want).abs().max().item()
    assert err <= atol, (
        f"expected {want.tolist()} (to within {atol:.2g}, float32's resolution at 1e4); got {got.tolist()}")


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
def test_log_softmax_is_normalised(exercise):
    """Normalise by the whole row (along dim), not by single entries."""
    log_softmax = exercise("1.3").log_softmax
    z = 50 * torch.randn(8, 7, generator=_g(6), dtype=torch.float64)
    sums = log_softmax(z).exp().sum(dim=-1)
    assert torch.allclose(sums, torch.ones(8, dtype=torch.float64), atol=1e-12), (
        f"exp(log_softmax(z)) should sum to 1 in every row; got row sums {sums.tolist()}")


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
def test_log_softmax_gradient_at_huge_logits(exercise):
    """If no intermediate value overflows, the gradient stays finite too."""
    log_softmax = exercise("1.3").log_softmax
    z = torch.tensor([[1e4, 1e4 - 1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    log_softmax(z)[0, 1].backward()
    z2 = z.detach().clone().requires_grad_(True)
    torch.log_softmax(z2, dim=-1)[0, 1].backward()
    assert z.grad is not None and torch.isfinite(z.grad).all(), (
        f"the gradient at logits of 1e4 should be finite; got {z.grad}")
    assert torch.allclose(z.grad, z2.grad, atol=1e-10), (
        f"gradient at logits of 1e4: expected {z2.grad.tolist()}; got {z.grad.tolist()}")


# ----------------------------------------------------------------------------- 1.4 cross_entropy
@pytest.mark.exercise("1.4")
@pytest.mark.points(2)
def test_cross_entropy_matches_torch(exercise):
    """The mean over the rows of minus the log-probability of each row's true class."""
    cross_entropy = exercise("1.4").cross_entropy
    g = _g(7)
    logits = 2 * torch.randn(32, 5, generator=g, dtype=torch.float64)
    target = torch.randint(0, 5, (32,), generator=g)
    want = F.cross_entropy(logits, target).item()
    got = float(cross_entropy(logits, target))
    assert got == pytest.approx(want, rel=1e-10), (
        f"cross_entropy on random logits: expected {want:.10g} (F.cross_entropy); got {got:.10g}")


@pytest.mark.exercise("1.4")
@pytest.mark.points(1)
def test_cross_entropy_of_uniform_logits_is_log_c(exercise):
    """Average over the N rows, not a sum."""
    cross_entropy = exercise("1.4").cross_entropy
    got = float(cross_entropy(torch.zeros(3, 10), torch.tensor([0, 4, 9])))
    assert got == pytest.approx(math.log(10), rel=1e-6), (
        f"with all logits equal every class has probability 1/10, so the loss is log(10) = {math.log(10):.6f}; got "
        f"{got:.6f}")


@pytest.mark.exercise("1.4")
@pytest.mark.points(1)
def test_cross_entropy_survives_huge_logits(exercise):
    """Large logits need the log-sum-exp trick of exercise 1.3."""
    cross_entropy = exercise("1.4").cross_entropy
    logits = torch.tensor([[1e4, 0.0, -1e4]])
    right = float(cross_entropy(logits, torch.tensor([0])))
    wrong = float(cross_entropy(logits, torch.tensor([1])))
    assert math.isfinite(right) and math.isfinite(wrong), (
        f"cross_entropy on logits [1e4, 0, -1e4] should be finite; got {right} (target 0) and {wrong} (target 1). "
        "exp(1e4) overflows: see the log-sum-exp trick of exercise 1.3")
    assert right == pytest.approx(0.0, abs=1e-4), f"a confident right answer costs 0; got {right}"
    assert wrong == pytest.approx(1e4, rel=1e-6), f"a confident wrong answer (margin 1e4) costs 1e4; got {wrong}"


@pytest.mark.exercise("1.4")
@pytest.mark.points(1)
def test_cross_entropy_gradient_is_predicted_minus_true(exercise):
    """Build the loss from tensor operations on the logits, so that autograd gives (softmax - onehot) / N."""
    cross_entropy = exercise("1.4").cross_entropy
    g = _g(8)
    logits = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([2, 0, 1, 1])
    cross_entropy(logits, target).backward()
    want = (logits.detach().softmax(dim=1) - F.one_hot(target, 3).double()) / 4
    assert logits.grad is not None, "no gradient reached the logits: use torch operations only"
    err = (logits.grad - want).abs().max().item()
    assert err < 1e-12, f"d CE / d logits should be (softmax - onehot) / N; max abs difference {err:.3g}"


# ----------------------------------------------------------------------------- 1.5 kl_divergence
@pytest.mark.exercise("1.5")
@pytest.mark.points(1)
def test_kl_hand_computed(exercise):
    """KL(p || q) weights the log ratio log(p / q) by p and sums over the classes."""
    kl = exercise("1.5").kl_divergence
    got = float(kl(torch.tensor([0.5, 0.5], dtype=torch.float64), torch.tensor([0.25, 0.75], dtype=torch.float64)))
    want = 0.5 * math.log(4 / 3)
    assert got == pytest.approx(want, rel=1e-10), (
        f"KL([0.5, 0.5] || [0.25, 0.75]) should be 0.5 log(4/3) = {want:.6f}; got {got:.6f}")


@pytest.mark.exercise("1.5")
@pytest.mark.points(2)
def test_kl_matches_torch_distributions(exercise):
    """One value per distribution: reduce over the last dimension only."""
    kl = exercise("1.5").kl_divergence
    g = _g(9)
    p = torch.randn(6, 5, generator=g, dtype=torch.float64).softmax(-1)
    q = torch.randn(6, 5, generator=g, dtype=torch.float64).softmax(-1)
    Categorical = torch.distributions.Categorical
    want = torch.distributions.kl_divergence(Categorical(probs=p), Categorical(probs=q))
    got = kl(p, q)
    assert tuple(got.shape) == (6,), (
        f"kl_divergence of (6, 5) inputs should have shape (6,), one value per row; got {tuple(got.shape)}")
    err = (got - want).abs().max().item()
    assert err < 1e-12, f"kl_divergence differs from torch.distributions.kl_divergence by up to {err:.3g}"


@pytest.mark.exercise("1.5")
@pytest.mark.points(1)
def test_kl_is_zero_for_equal_and_positive_otherwise(exercise):
    """KL(p || q) puts p first: the weights are p, and the log ratio is log p - log q."""
    kl = exercise("1.5").kl_divergence
    p = torch.randn(4, 6, generator=_g(10), dtype=torch.float64).softmax(-1)
    same = kl(p, p)
    assert torch.allclose(same, torch.zeros(4, dtype=torch.float64), atol=1e-12), (
        f"KL(p || p) should be 0; got {same.tolist()}")
    q = p.roll(1, dims=-1)
    both = torch.stack([kl(p, q), kl(q, p)])
    assert (both > 0).all(), f"KL between different distributions should be > 0; got {both.tolist()}"
    assert not torch.allclose(both[0], both[1]), "KL(p || q) and KL(q || p) came out equal: KL is not symmetric"


@pytest.mark.exercise("1.5")
@pytest.mark.points(1)
def test_kl_handles_zero_probabilities(exercise):
    """A class with p = 0 contributes 0 (0 log 0 = 0), and no intermediate value may be inf or nan there, or the
    gradient becomes nan."""
    kl = exercise("1.5").kl_divergence
    p = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
    got = kl(p, q)
    value = float(got.detach())
    assert math.isfinite(value), f"a zero in p must contribute 0 (0 log 0 = 0); got {value}"
    assert value == pytest.approx(math.log(2), rel=1e-10), (
        f"KL([0.5, 0.5, 0] || [0.25, 0.25, 0.5]) should be log 2 = {math.log(2):.6f}; got {value:.6f}")
    got.backward()
    assert p.grad is not None and torch.isfinite(p.grad).all(), (
        f"the gradient should be finite at p = 0 too; got {p.grad}. A log(0) anywhere in the computation, even in a "
        "branch that is not chosen, makes it nan")
