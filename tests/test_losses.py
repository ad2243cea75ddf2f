"""Tests of course_lib.losses: oracle tests against torch, stability, hand-computed tables, messages."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Normal, kl_divergence as torch_kl

from course_lib import losses as L

DTYPES = [torch.float64, torch.float32]
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}
REDUCTIONS = ["mean", "sum", "none"]


def _randn(*shape, seed=0, dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)


def _randint(high, *shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, shape, generator=g)


def _close(a, b, dtype):
    torch.testing.assert_close(a, b, **TOL[dtype])


def _compare_with_grad(ours, theirs, inputs, dtype, grad_args=None, **kw):
    """Value and gradient of ``ours(*inputs)`` vs ``theirs(*inputs)``.

    Gradients are compared for the inputs at ``grad_args`` (default: every float input).
    """
    if grad_args is None:
        grad_args = [i for i, x in enumerate(inputs) if x.is_floating_point()]
    results = []
    for fn in (ours, theirs):
        leaves = [x.detach().clone().requires_grad_(i in grad_args) for i, x in enumerate(inputs)]
        out = fn(*leaves, **kw)
        out.sum().backward()  # .sum() so 'none' outputs have a gradient too
        results.append((out.detach(), [x.grad for x in leaves if x.requires_grad]))
    (v1, g1), (v2, g2) = results
    assert v1.shape == v2.shape
    _close(v1, v2, dtype)
    for a, b in zip(g1, g2):
        _close(a, b, dtype)


# ----------------------------------------------------------------------------- oracle tests
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "ours, theirs, kw",
    [
        (L.mse_loss, F.mse_loss, {}),
        (L.mae_loss, F.l1_loss, {}),
        (L.huber_loss, F.huber_loss, {}),
        (L.huber_loss, F.huber_loss, {"delta": 0.3}),
    ],
    ids=["mse", "mae", "huber", "huber-delta0.3"],
)
def test_regression_losses_match_torch(ours, theirs, kw, dtype):
    y_hat, y = _randn(4, 5, seed=1, dtype=dtype), _randn(4, 5, seed=2, dtype=dtype)
    for reduction in REDUCTIONS:
        _compare_with_grad(ours, theirs, [y_hat, y], dtype, reduction=reduction, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_matches_torch(dtype):
    x = _randn(6, 3, seed=3, dtype=dtype, scale=3.0)
    y = torch.rand(6, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64).to(dtype)
    y[0] = torch.tensor([0.0, 1.0, 1.0], dtype=dtype)  # hard labels too
    for reduction in REDUCTIONS:
        _compare_with_grad(L.bce_with_logits_loss, F.binary_cross_entropy_with_logits, [x, y], dtype,
                           reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_log_softmax_matches_torch(dim, dtype):
    x = _randn(3, 4, 5, seed=5, dtype=dtype, scale=4.0)
    _compare_with_grad(lambda z: L.log_softmax(z, dim=dim), lambda z: torch.log_softmax(z, dim=dim), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 4), (3, 4, 5), (2, 4, 3, 2)], ids=["NC", "NCd", "NCdd"])
def test_cross_entropy_matches_torch(shape, dtype):
    logits = _randn(*shape, seed=6, dtype=dtype, scale=2.0)
    target = _randint(shape[1], shape[0], *shape[2:], seed=7)
    for reduction in REDUCTIONS:
        _compare_with_grad(L.cross_entropy_loss, F.cross_entropy, [logits, target], dtype, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_multiclass_hinge_matches_multi_margin_loss(margin, dtype):
    scores, target = _randn(8, 5, seed=8, dtype=dtype), _randint(5, 8, seed=9)
    for reduction in REDUCTIONS:
        _compare_with_grad(L.multiclass_hinge_loss, F.multi_margin_loss, [scores, target], dtype,
                           margin=margin, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_loss_matches_torch(log_target, dtype):
    inp = torch.log_softmax(_randn(5, 4, seed=10, dtype=dtype), dim=-1)
    target = torch.softmax(_randn(5, 4, seed=11, dtype=dtype), dim=-1)
    if log_target:
        target = target.log()
    else:
        target[0, 1] = 0.0  # 0 * log 0 must count as 0
    with warnings.catch_warnings():  # torch warns that 'mean' is not the true KL; we document it
        warnings.simplefilter("ignore")
        for reduction in ["batchmean", "mean", "sum", "none"]:
            # Gradient w.r.t. the model only: torch's target-gradient is NaN where target == 0.
            _compare_with_grad(L.kl_div_loss, F.kl_div, [inp, target], dtype, grad_args=[0],
                               reduction=reduction, log_target=log_target)


def test_kl_div_loss_target_gradient_is_finite_at_zero():
    # d/dt [t log t - t x] = log t + 1 - x for t > 0; at t = 0 the double-where makes the
    # t log t part contribute 0 (torch's own kl_div gives NaN there), leaving -x.
    target = torch.tensor([[0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    x = torch.log(torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    L.kl_div_loss(x, target, reduction="sum").backward()
    expected = torch.tensor([[-x[0, 0].item(), 1.0 - x[0, 1].item()]], dtype=torch.float64)
    torch.testing.assert_close(target.grad, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_divergence_matches_categorical(dtype):
    p, q = _randn(6, 5, seed=12, dtype=dtype, scale=2.0), _randn(6, 5, seed=13, dtype=dtype, scale=2.0)
    ours = L.kl_divergence(p, q)
    assert ours.shape == (6,)
    _close(ours, torch_kl(Categorical(logits=p), Categorical(logits=q)), dtype)
    assert (ours >= 0).all() and L.kl_divergence(p, p).abs().max() < 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_kl_matches_normal(dtype):
    mu, logvar = _randn(2, 3, 4, seed=14, dtype=dtype), _randn(2, 3, 4, seed=15, dtype=dtype)

    def oracle(m, lv, reduction):
        zero = torch.zeros_like(m)
        kl = torch_kl(Normal(m, (0.5 * lv).exp()), Normal(zero, zero + 1)).sum(-1)  # (2, 3)
        return {"mean": kl.mean(), "sum": kl.sum(), "none": kl}[reduction]

    for reduction in REDUCTIONS:
        _compare_with_grad(L.gaussian_kl, oracle, [mu, logvar], dtype, reduction=reduction)
    assert L.gaussian_kl(mu, logvar, reduction="none").shape == (2, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_causal_lm_loss_matches_shifted_cross_entropy(dtype):
    B, T, V = 3, 6, 7
    logits, tokens = _randn(B, T, V, seed=16, dtype=dtype), _randint(V, B, T, seed=17)

    def oracle(lg, tk, reduction):
        out = F.cross_entropy(lg[:, :-1].reshape(-1, V), tk[:, 1:].reshape(-1), reduction=reduction)
        return out.view(B, T - 1) if reduction == "none" else out

    for reduction in REDUCTIONS:
        _compare_with_grad(L.causal_lm_loss, oracle, [logits, tokens], dtype, reduction=reduction)
    assert L.causal_lm_loss(logits, tokens, reduction="none").shape == (B, T - 1)


def test_causal_lm_loss_ignores_last_logit_and_first_token():
    logits, tokens = _randn(2, 4, 5, seed=18), _randint(5, 2, 4, seed=19)
    base = L.causal_lm_loss(logits, tokens)
    logits2, tokens2 = logits.clone(), tokens.clone()
    logits2[:, -1] += 100.0  # the last position predicts nothing
    tokens2[:, 0] = (tokens2[:, 0] + 1) % 5  # the first token is never a target
    torch.testing.assert_close(L.causal_lm_loss(logits2, tokens2), base)


# ----------------------------------------------------------------------------- stability
@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_and_cross_entropy_finite_for_huge_logits(dtype):
    logits = torch.tensor([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, 0.0]], dtype=dtype)
    ours = L.log_softmax(logits)
    assert torch.isfinite(ours).all()
    _close(ours, torch.log_softmax(logits, dim=-1), dtype)
    target = torch.tensor([2, 0, 1])
    ce = L.cross_entropy_loss(logits, target, reduction="none")
    assert torch.isfinite(ce).all()
    _close(ce, F.cross_entropy(logits, target, reduction="none"), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_finite_for_huge_logits(dtype):
    x = torch.tensor([100.0, -100.0, 100.0, -100.0], dtype=dtype, requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    out = L.bce_with_logits_loss(x, y, reduction="none")
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    _close(out.detach(), F.binary_cross_entropy_with_logits(x.detach(), y, reduction="none"), dtype)
    assert out[2].item() == pytest.approx(100.0) and out[0].item() == pytest.approx(0.0, abs=1e-30)


# ----------------------------------------------------------------------------- hand-computed tables
@pytest.mark.parametrize(
    "r, delta, expected",
    [(0.5, 1.0, 0.125), (-0.5, 1.0, 0.125), (2.0, 1.0, 1.5), (1.0, 1.0, 0.5), (3.0, 2.0, 4.0), (0.0, 1.0, 0.0)],
)
def test_huber_table(r, delta, expected):
    out = L.huber_loss(torch.tensor([r]), torch.zeros(1), delta=delta)
    assert out.item() == pytest.approx(expected)


def test_mse_mae_table():
    y_hat, y = torch.tensor([1.0, 2.0, -1.0]), torch.tensor([1.0, 4.0, 0.0])
    assert L.mse_loss(y_hat, y, reduction="none").tolist() == [0.0, 4.0, 1.0]
    assert L.mae_loss(y_hat, y, reduction="sum").item() == 3.0


def test_hinge_table():
    s = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -2.0])
    y = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
    expected = [0.0, 0.0, 0.5, 1.0, 0.0, 3.0]
    assert L.hinge_loss(s, y, reduction="none").tolist() == expected
    assert L.hinge_loss(s, y, reduction="sum").item() == pytest.approx(4.5)
    assert L.hinge_loss(s, y).item() == pytest.approx(0.75)
    assert L.hinge_loss(s, y.long(), reduction="none").tolist() == expected  # int labels work too


def test_hinge_is_twice_two_class_multi_margin():
    s, y = _randn(10, seed=20), torch.tensor([1, -1] * 5)
    # Scores (0, s) with class 1 for y=+1: multi_margin gives max(0, 1 - y*s) / 2.
    two_class = torch.stack([torch.zeros_like(s), s], dim=1)
    torch.testing.assert_close(L.hinge_loss(s, y), 2 * F.multi_margin_loss(two_class, (y > 0).long()))


def test_multiclass_hinge_table():
    # true class 0 scores 2; class 1 at 1.5 violates the margin by 0.5, class 2 at 0 does not; / C=3.
    out = L.multiclass_hinge_loss(torch.tensor([[2.0, 1.5, 0.0]]), torch.tensor([0]), reduction="none")
    assert out.tolist() == pytest.approx([0.5 / 3])


def test_gaussian_kl_zero_at_standard_normal():
    assert L.gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4), reduction="sum").item() == 0.0


# ----------------------------------------------------------------------------- get_loss
def test_get_loss_names_and_callables():
    assert set(L.LOSSES) == {"mse", "mae", "huber", "bce", "cross_entropy", "hinge", "multiclass_hinge", "kl",
                             "causal_lm"}
    for name, fn in L.LOSSES.items():
        assert L.get_loss(name) is fn
    assert L.get_loss("cross_entropy") is L.cross_entropy_loss

    def my_loss(a, b):
        return (a - b).abs().max()

    assert L.get_loss(my_loss) is my_loss


def test_public_api_is_listed():
    for name in L.__all__:
        assert hasattr(L, name)


# ----------------------------------------------------------------------------- messages
A, B = torch.zeros(3), torch.zeros(4)
LOGITS, TARGET = torch.zeros(2, 3), torch.tensor([0, 2])


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: L.mse_loss(A, B), ValueError,
         r"mse_loss\(\): 'y_hat' and 'y' must have the same shape.*\(3,\).*\(4,\)"),
        (lambda: L.huber_loss(A, B), ValueError, r"huber_loss\(\): 'y_hat' and 'y' must have the same shape"),
        (lambda: L.mae_loss(A, A, reduction="avg"), ValueError,
         r"mae_loss\(\): 'reduction' must be one of 'mean', 'sum', 'none', got reduction='avg'"),
        (lambda: L.kl_div_loss(LOGITS, LOGITS, reduction="max"), ValueError,
         r"'reduction' must be one of 'batchmean', 'mean', 'sum', 'none', got reduction='max'"),
        (lambda: L.huber_loss(A, A, delta=0), ValueError,
         r"huber_loss\(\): 'delta' must be a float > 0, got delta=0"),
        (lambda: L.huber_loss(A, A, delta=-1.5), ValueError, r"'delta' must be a float > 0, got delta=-1.5"),
        (lambda: L.huber_loss(A, A, delta="1"), TypeError, r"'delta' must be a float > 0"),
        (lambda: L.mse_loss([1.0], A), TypeError, r"'y_hat' must be a torch.Tensor, got y_hat of type list"),
        (lambda: L.mse_loss(A, torch.zeros(3, dtype=torch.long)), TypeError,
         r"'y' must be a floating-point tensor"),
        (lambda: L.cross_entropy_loss(LOGITS, TARGET.float()), TypeError,
         r"cross_entropy_loss\(\): 'target' must be an integer tensor, got target.dtype=torch.float32"),
        (lambda: L.cross_entropy_loss(LOGITS, torch.tensor([0, 3])), ValueError,
         r"cross_entropy_loss\(\): 'target' must hold class indices in \[0, C\) = \[0, 3\), got target\[1\]=3"),
        (lambda: L.cross_entropy_loss(LOGITS, torch.tensor([-1, 0])), ValueError,
         r"in \[0, C\) = \[0, 3\), got target\[0\]=-1"),
        (lambda: L.cross_entropy_loss(LOGITS, torch.tensor([0, 1, 2])), ValueError,
         r"'target' must have shape \(2,\).*got target.shape=\(3,\)"),
        (lambda: L.cross_entropy_loss(torch.zeros(3), torch.tensor(0)), ValueError,
         r"'logits' must have shape \(N, C\) or \(N, C, d1, ...\), got logits.shape=\(3,\)"),
        (lambda: L.multiclass_hinge_loss(LOGITS, torch.tensor([0, 5])), ValueError,
         r"multiclass_hinge_loss\(\): 'target' must hold class indices in \[0, C\) = \[0, 3\), "
         r"got target\[1\]=5"),
        (lambda: L.multiclass_hinge_loss(LOGITS, TARGET.double()), TypeError,
         r"'target' must be an integer tensor"),
        (lambda: L.multiclass_hinge_loss(LOGITS, TARGET, margin=-1.0), ValueError,
         r"'margin' must be a float >= 0"),
        (lambda: L.hinge_loss(torch.zeros(3), torch.tensor([1.0, 0.0, 1.0])), ValueError,
         r"hinge_loss\(\): 'y' must hold labels in \{-1, \+1\}.*got y\[1\]=0.0"),
        (lambda: L.hinge_loss(torch.zeros(2), torch.tensor([1, 2])), ValueError,
         r"\{-1, \+1\}.*got y\[1\]=2"),
        (lambda: L.bce_with_logits_loss(A, torch.tensor([0.0, 1.5, 1.0])), ValueError,
         r"bce_with_logits_loss\(\): 'y' must hold probabilities in \[0, 1\], got y\[1\]=1.5"),
        (lambda: L.kl_div_loss(LOGITS, -LOGITS - 1), ValueError,
         r"'target' must hold probabilities >= 0.*log_target"),
        (lambda: L.kl_div_loss(LOGITS, LOGITS, log_target=1), TypeError, r"'log_target' must be a bool"),
        (lambda: L.causal_lm_loss(torch.zeros(2, 1, 5), torch.zeros(2, 1, dtype=torch.long)), ValueError,
         r"causal_lm_loss\(\): 'tokens' needs T >= 2 positions.*tokens.shape=\(2, 1\)"),
        (lambda: L.causal_lm_loss(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long)), ValueError,
         r"'tokens' must have shape \(B, T\) = logits.shape\[:2\]"),
        (lambda: L.causal_lm_loss(torch.zeros(1, 3, 5), torch.tensor([[1, 2, 5]])), ValueError,
         r"'tokens' must hold class indices in \[0, V\) = \[0, 5\), got tokens\[0, 2\]=5"),
        (lambda: L.causal_lm_loss(torch.zeros(3, 5), torch.zeros(3, dtype=torch.long)), ValueError,
         r"'logits' must have 3 dimension\(s\) \(B, T, V\)"),
        (lambda: L.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError,
         r"gaussian_kl\(\): 'mu' and 'logvar' must have the same shape"),
        (lambda: L.log_softmax(torch.zeros(2, 3), dim=2), ValueError,
         r"log_softmax\(\): 'dim' must be an int in \[-2, 1\]"),
        (lambda: L.get_loss("l2"), ValueError,
         r"get_loss\(\): 'name_or_callable' must be one of 'mse', .*'causal_lm', got name_or_callable='l2'"),
        (lambda: L.get_loss(3), ValueError, r"'name_or_callable' must be one of .* got name_or_callable=3"),
    ],
)
def test_bad_input_messages(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_bce_gradient_at_a_zero_logit_is_sigmoid_minus_y():
    # The oracle: torch's fused kernel; the closed form: sigmoid(0) - y = 0.5 - y.
    for y in (0.0, 1.0, 0.3):
        x = torch.zeros(1, requires_grad=True)
        L.bce_with_logits_loss(x, torch.full((1,), y)).backward()
        x2 = torch.zeros(1, requires_grad=True)
        torch.nn.functional.binary_cross_entropy_with_logits(x2, torch.full((1,), y)).backward()
        assert x.grad.item() == pytest.approx(0.5 - y) == pytest.approx(x2.grad.item())
