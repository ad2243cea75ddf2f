"""Grading tests of notebook 04 (regularization and capacity): exercises 4.1-4.3.

Oracles: ``torch.nn.functional.dropout``'s statistics (zeros fraction, mean, scaling) and
its closed forms; a hand-computed L1 sum; a seeded ``course_lib.fit`` run for the weight
decay (calibrated: no decay ends at validation MSE 0.199, any decay in [0.05, 8] below 0.172).
"""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import course_lib as cl
from course_lib.grading import isolated_torch as _isolated


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- 4.1 dropout
def _unchanged(x, x0, what="dropout"):
    assert torch.equal(x, x0), (
        f"{what} modified its input x in place (x changed while it ran): build a new tensor and leave x as it was")


@pytest.mark.exercise("4.1")
@pytest.mark.points(1)
def test_dropout_eval_mode_is_identity(exercise):
    """In evaluation mode (training=False) dropout does nothing."""
    dropout = exercise("4.1").dropout
    x = torch.randn(50, 20, generator=_gen(0))
    got = dropout(x, 0.5, training=False, generator=_gen(1))
    assert torch.equal(got, x), "with training=False dropout must return x unchanged (no mask, no scaling)"


@pytest.mark.exercise("4.1")
@pytest.mark.points(1)
def test_dropout_p_zero_is_identity(exercise):
    """With p = 0 nothing is dropped and nothing needs rescaling."""
    dropout = exercise("4.1").dropout
    x = torch.randn(50, 20, generator=_gen(0))
    got = dropout(x, 0.0, training=True, generator=_gen(1))
    assert torch.allclose(got, x), "with p=0 dropout must return x unchanged"


@pytest.mark.exercise("4.1")
@pytest.mark.points(1)
def test_dropout_scales_survivors(exercise):
    """Inverted dropout rescales the survivors so that the expected value of every element is unchanged."""
    dropout = exercise("4.1").dropout
    x = torch.full((1000,), 3.0)
    got = dropout(x, 0.25, generator=_gen(2))
    assert got.shape == x.shape and got.dtype == x.dtype, (
        f"dropout should keep shape {tuple(x.shape)} and dtype {x.dtype}; got {tuple(got.shape)}, {got.dtype}")
    values = sorted(set(torch.unique(got).tolist()))
    assert values == pytest.approx([0.0, 4.0]), (
        f"with p=0.25 every element of a tensor of 3.0 should become 0 or 3 / (1 - 0.25) = 4.0; got values "
        f"{values[:6]}. Hint: inverted dropout rescales the survivors")


@pytest.mark.exercise("4.1")
@pytest.mark.points(2)
@pytest.mark.parametrize("p", [0.1, 0.3, 0.8])
def test_dropout_zero_fraction_and_mean_like_torch(exercise, p):
    """p is the probability of being dropped: a fraction p of the elements become 0, and the mean is unchanged."""
    dropout = exercise("4.1").dropout
    x = torch.ones(400, 500)
    n = x.numel()
    got = dropout(x, p, generator=_gen(3))
    _unchanged(x, torch.ones(400, 500))
    with torch.random.fork_rng(devices=[]):  # torch's dropout draws from the global generator
        torch.manual_seed(3)
        ref = F.dropout(x, p, training=True)
    sigma = math.sqrt(p * (1 - p) / n)  # std of the zeros fraction
    zeros, ref_zeros = (got == 0).double().mean().item(), (ref == 0).double().mean().item()
    assert abs(zeros - p) < 5 * sigma, (
        f"dropout(p={p}) should zero a fraction {p} of the elements (torch.nn.functional.dropout: {ref_zeros:.4f}); "
        f"got {zeros:.4f}. Hint: p is the probability of being dropped")
    # mean of x * keep / (1 - p): expected 1, std sqrt(p / ((1 - p) n))
    mean, ref_mean = got.double().mean().item(), ref.double().mean().item()
    tol = 5 * math.sqrt(p / ((1 - p) * n))
    assert abs(mean - 1.0) < tol, f"dropout(p={p}) should preserve the mean 1.0 (torch: {ref_mean:.4f}); got {mean:.4f}"


@pytest.mark.exercise("4.1")
@pytest.mark.points(2)
def test_dropout_masks_every_element_independently(exercise):
    """Every element of x gets its own random draw: no mask shared by the rows (samples) or by the columns
    (features)."""
    dropout = exercise("4.1").dropout
    p, rows, cols = 0.3, 300, 200
    x = torch.ones(rows, cols)
    got = dropout(x, p, generator=_gen(11))
    assert got.shape == x.shape, f"dropout should keep the shape {tuple(x.shape)}; got {tuple(got.shape)}"
    dropped = (got == 0).double()
    # Independent draws: each row's and each column's dropped fraction is close to p (5 standard deviations).
    for axis, name, n in [(1, "row", cols), (0, "column", rows)]:
        frac = dropped.mean(dim=axis)
        worst = (frac - p).abs().max().item()
        tol = 5 * math.sqrt(p * (1 - p) / n)
        assert worst < tol, (
            f"dropout(p={p}) of a ({rows}, {cols}) tensor: every {name} should lose a fraction {p} +- {tol:.3f} of "
            f"its elements; one lost {frac[(frac - p).abs().argmax()].item():.3f}. Hint: a mask shared by all the "
            f"{'rows' if name == 'column' else 'columns'} drops or keeps whole {name}s")
    same = (dropped[1:] == dropped[:1]).all(dim=1).double().mean().item()
    assert same < 0.5, f"{same:.0%} of the rows have the same mask as the first row: draw one number per element"


@pytest.mark.exercise("4.1")
@pytest.mark.points(1)
def test_dropout_uses_the_generator(exercise):
    """Draw the random numbers from the generator argument, so that a seeded generator gives the same mask."""
    dropout = exercise("4.1").dropout
    x = torch.ones(1000)
    a = dropout(x, 0.5, generator=_gen(7))
    b = dropout(x, 0.5, generator=_gen(7))
    c = dropout(x, 0.5, generator=_gen(8))
    _unchanged(x, torch.ones(1000))
    assert torch.equal(a, b), (
        "two calls with generators seeded alike should give the same mask: draw from the generator argument")
    assert not torch.equal(a, c), "generators with different seeds should give different masks"


@pytest.mark.exercise("4.1")
@pytest.mark.points(1)
def test_dropout_gradient_is_the_scaled_mask(exercise):
    """Build the output from x with tensor operations, so that autograd sees the mask and the scale."""
    dropout = exercise("4.1").dropout
    x = torch.randn(500, generator=_gen(4)).requires_grad_(True)
    out = dropout(x, 0.3, generator=_gen(5))
    out.sum().backward()
    mask = (out.detach() != 0).float()
    assert x.grad is not None, "no gradient reached x: build the output with tensor operations"
    assert torch.allclose(x.grad, mask / 0.7), (
        "d out / d x should be keep_mask / (1 - p): 1/0.7 where kept, 0 where dropped")


@pytest.mark.exercise("4.1")
@pytest.mark.points(1)
def test_dropout_leaves_its_input_unchanged(exercise):
    """Return a new tensor; the input x must stay as it was (no in-place operations on it)."""
    dropout = exercise("4.1").dropout
    x = torch.randn(64, 32, generator=_gen(9))
    x0 = x.clone()
    dropout(x, 0.5, generator=_gen(10))
    _unchanged(x, x0)


# ----------------------------------------------------------------------------- 4.2 l1_penalty
def _linear(weight, bias):
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


@pytest.mark.exercise("4.2")
@pytest.mark.points(1)
def test_l1_hand_computed(exercise):
    """l1 times the sum of absolute values of the weight matrices; biases do not count."""
    l1_penalty = exercise("4.2").l1_penalty
    layer = _linear([[1.0, -3.0], [0.5, 0.0]], [100.0, -100.0])
    got = l1_penalty(layer, 0.1)
    assert isinstance(got, torch.Tensor) and got.ndim == 0, f"l1_penalty should return a 0-dim tensor; got {got!r}"
    assert float(got.detach()) == pytest.approx(0.45), (
        f"l1_penalty of weights [[1, -3], [0.5, 0]] at l1=0.1 should be 0.1 * 4.5 = 0.45 (biases excluded); got "
        f"{float(got.detach())}")


@pytest.mark.exercise("4.2")
@pytest.mark.points(2)
def test_l1_on_an_mlp_skips_biases(exercise):
    """Only the weight matrices count (parameters with at least two dimensions), not the biases."""
    l1_penalty = exercise("4.2").l1_penalty
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cl.MLP(3, 2, width=8, depth=2)
    want = 1e-3 * sum(p.abs().sum() for p in model.parameters() if p.ndim >= 2).item()
    with_biases = 1e-3 * sum(p.abs().sum() for p in model.parameters()).item()
    got = float(l1_penalty(model, 1e-3).detach())
    assert got == pytest.approx(want, rel=1e-6), (
        f"l1_penalty of an MLP(3, 2, width=8, depth=2) at l1=1e-3 should be {want:.6g} (weight matrices only); got "
        f"{got:.6g}"
        + (" - that includes the biases: keep parameters with p.ndim >= 2"
           if got == pytest.approx(with_biases, rel=1e-6) else ""))


class _Odd(nn.Module):
    """A LayerNorm's 1-D 'weight' (not a matrix) and a 2-D parameter whose name has no 'weight' in it."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(3)
        self.proj = nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 4.0], [-1.0, 0.0]]))
        with torch.no_grad():
            self.norm.weight.copy_(torch.tensor([10.0, -20.0, 30.0]))
            self.norm.bias.copy_(torch.tensor([5.0, 5.0, 5.0]))


@pytest.mark.exercise("4.2")
@pytest.mark.points(2)
def test_l1_selects_matrices_by_shape_not_by_name(exercise):
    """What counts is the number of dimensions of a parameter, not its name."""
    l1_penalty = exercise("4.2").l1_penalty
    got = float(l1_penalty(_Odd(), 0.5).detach())
    want = 0.5 * 8.5  # only proj: |1| + |-2| + |0.5| + |4| + |-1| + |0|
    assert got == pytest.approx(want, rel=1e-9), (
        f"a module with a LayerNorm (1-D weight 10, -20, 30) and a 2-D parameter `proj` of absolute sum 8.5: "
        f"l1_penalty(model, 0.5) should be {want} (the 2-D parameter only); got {got}. "
        "Hint: choose the parameters by their number of dimensions, not by their name")


@pytest.mark.exercise("4.2")
@pytest.mark.points(1)
def test_l1_gradient_is_sign(exercise):
    """Return a tensor built from the weights (not a Python number), so that autograd reaches them."""
    l1_penalty = exercise("4.2").l1_penalty
    layer = _linear([[1.0, -3.0, 0.2]], [2.0])
    l1_penalty(layer, 0.5).backward()
    assert layer.weight.grad is not None, (
        "no gradient reached the weights: return a tensor built from them (no .item())")
    assert torch.allclose(layer.weight.grad, torch.tensor([[0.5, -0.5, 0.5]])), (
        f"d penalty / d W should be l1 * sign(W) = [[0.5, -0.5, 0.5]]; got {layer.weight.grad.tolist()}")
    assert layer.bias.grad is None or torch.all(layer.bias.grad == 0), (
        "the bias should get no gradient from the L1 penalty")


# ----------------------------------------------------------------------------- 4.3 choose_weight_decay
VAL_BOUND = 0.18  # no decay: 0.199; decays 0.05..8: 0.124..0.172 (torch 2.13, CPU, one thread)


def _validation_mse(weight_decay, init_seed=0):
    """Exactly the run the exercise text shows; the validation MSE at the end."""
    data = cl.make_regression(220, kind="polynomial", noise=0.3, val_fraction=0.9, seed=1)
    with _isolated():
        torch.manual_seed(init_seed)
        model = cl.MLP(1, 1, width=128, depth=2)
        cl.fit(model, data, optimizer="adamw", lr=1e-2, weight_decay=weight_decay, num_steps=1000,
               batch_size=32, eval_every=0, device="cpu", seed=0)
    model.eval()
    with torch.no_grad():
        return float(((model(data.X_val) - data.y_val) ** 2).mean())


@pytest.mark.exercise("4.3")
@pytest.mark.points(1)
def test_weight_decay_is_a_positive_number(exercise):
    """Return a number > 0 (a Python float)."""
    wd = exercise("4.3").choose_weight_decay()
    assert isinstance(wd, (int, float)) and not isinstance(wd, bool), (
        f"choose_weight_decay() should return a float; got {wd!r} ({type(wd).__module__}.{type(wd).__qualname__})")
    assert math.isfinite(wd) and wd > 0, f"the weight decay should be a finite number > 0; got {wd!r}"


@pytest.mark.exercise("4.3")
@pytest.mark.points(4)
def test_weight_decay_beats_the_bound_after_training(exercise):
    """Try a few values with the experiment cell below the exercise; notebook 04's sweep shows which decays
    help."""
    wd = float(exercise("4.3").choose_weight_decay())
    got = _validation_mse(wd)
    assert got < VAL_BOUND, (
        f"after 1000 AdamW steps with weight_decay={wd:g} the validation MSE should be below {VAL_BOUND} "
        f"(no decay: about 0.20; the noise floor: 0.09); got {got:.3f}. "
        + ("Hint: that decay shrinks the weights too hard (underfitting)" if wd > 10 else "Hint: try a stronger decay"))
