"""Hidden grading tests of notebook 01 (instructors only; not shipped to students).

They check what the exercise text asks for but the shipped tests do not exercise directly:
masked (-inf) logits, other dtypes and leading batch dimensions.
"""

import math

import pytest
import torch
import torch.nn.functional as F


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
def test_log_softmax_with_a_masked_class(exercise):
    """A masked class (logit -inf) has probability 0, so log-probability -inf; the others are unaffected."""
    log_softmax = exercise("1.3").log_softmax
    z = torch.tensor([[2.0, float("-inf"), 0.5, 1e4], [0.0, float("-inf"), 0.0, 0.0]], dtype=torch.float64)
    got = log_softmax(z)
    want = torch.log_softmax(z, dim=-1)
    assert torch.isneginf(got[:, 1]).all(), (
        f"a logit of -inf (a masked class) should get log-probability -inf; got {got[:, 1].tolist()}")
    finite = torch.isfinite(want)
    assert torch.isfinite(got[finite]).all() and torch.allclose(got[finite], want[finite], atol=1e-10), (
        f"the other classes should be finite and equal torch.log_softmax's {want.tolist()}; got {got.tolist()}")


@pytest.mark.exercise("1.3")
@pytest.mark.points(1)
def test_log_softmax_keeps_float32_and_shape(exercise):
    """Reduce along dim and keep the input's dtype."""
    log_softmax = exercise("1.3").log_softmax
    z = 1e3 * torch.randn(2, 3, 7, generator=torch.Generator().manual_seed(0))
    got = log_softmax(z, dim=1)
    assert got.dtype == torch.float32 and got.shape == z.shape, (
        f"expected float32 of shape {tuple(z.shape)}; got {got.dtype}, {tuple(got.shape)}")
    atol = 8 * torch.finfo(torch.float32).eps * z.abs().max().item()  # float32's resolution at the logits' size
    err = (got - torch.log_softmax(z, dim=1)).abs().max().item()
    assert err <= atol, (
        f"log_softmax(z, dim=1) differs from torch's on large float32 logits by {err:.3g} (more than float32's "
        f"resolution there, {atol:.2g})")


@pytest.mark.exercise("1.4")
@pytest.mark.points(1)
def test_cross_entropy_large_batch_mixed_scales(exercise):
    """Rows of very different scales: each row needs its own stabilising shift."""
    cross_entropy = exercise("1.4").cross_entropy
    g = torch.Generator().manual_seed(1)
    scale = torch.logspace(-2, 4, 512).unsqueeze(1)  # rows from tiny to huge logits
    logits = scale * torch.randn(512, 20, generator=g)
    target = torch.randint(0, 20, (512,), generator=g)
    want = F.cross_entropy(logits, target).item()
    got = float(cross_entropy(logits, target))
    assert math.isfinite(got) and got == pytest.approx(want, rel=1e-5), (
        f"expected {want:.6g} (F.cross_entropy); got {got:.6g}")


@pytest.mark.exercise("1.5")
@pytest.mark.points(1)
def test_kl_with_leading_batch_dimensions(exercise):
    """Reduce over the last dimension only; leading dimensions are batches."""
    kl = exercise("1.5").kl_divergence
    g = torch.Generator().manual_seed(2)
    p = torch.randn(2, 3, 5, generator=g, dtype=torch.float64).softmax(-1)
    q = torch.randn(2, 3, 5, generator=g, dtype=torch.float64).softmax(-1)
    got = kl(p, q)
    want = (p * (p.log() - q.log())).sum(-1)
    assert tuple(got.shape) == (2, 3), (
        f"kl_divergence of (2, 3, 5) inputs should have shape (2, 3); got {tuple(got.shape)}")
    assert torch.allclose(got, want, atol=1e-12), f"expected {want.tolist()}; got {got.tolist()}"
