"""Hidden grading tests of notebook 06 (instructors only; not shipped to students).

The functions on shapes and parameters the exercise text allows but the shipped tests do
not use: 1-D token tensors for BERT masking, other span-length parameters.
"""

import math

import pytest
import torch


def span_length_distribution(p, max_len):
    """The closed form: p (1 - p)**(l - 1), l = 1..max_len, renormalised."""
    pmf = p * (1 - p) ** torch.arange(max_len, dtype=torch.float64)
    return pmf / pmf.sum()


@pytest.mark.exercise("6.5")
@pytest.mark.points(1)
def test_bert_mask_on_a_1d_sequence(exercise):
    """Every draw has the shape of tokens, so any shape works."""
    tokens = torch.randint(0, 500, (100_000,), generator=torch.Generator().manual_seed(0))
    inputs, labels = exercise("6.5").bert_mask(tokens, 500, 500, 0.15, generator=torch.Generator().manual_seed(1))
    assert inputs.shape == tokens.shape and labels.shape == tokens.shape, (
        "bert_mask should accept a (T,) tensor and keep its shape")
    sel = labels != -100
    frac = sel.double().mean().item()
    assert abs(frac - 0.15) < 5 * math.sqrt(0.15 * 0.85 / tokens.numel()), (
        f"selected fraction should be 0.15; got {frac:.4f}")
    assert torch.equal(inputs[~sel], tokens[~sel]), "unselected positions must keep their token"
    masked = (inputs[sel] == 500).double().mean().item()
    assert abs(masked - 0.8) < 5 * math.sqrt(0.16 / int(sel.sum())), (
        f"share of [MASK] among selected should be 0.8; got {masked:.4f}")


@pytest.mark.exercise("6.4")
@pytest.mark.points(1)
def test_sample_mean_for_other_parameters(exercise):
    """Use the p and max_len arguments."""
    p, max_len, n = 0.1, 20, 200_000
    got = exercise("6.4").sample_span_lengths(n, p, max_len, generator=torch.Generator().manual_seed(2)).double()
    pmf = span_length_distribution(p, max_len)
    lengths = torch.arange(1, max_len + 1, dtype=torch.float64)
    mean = float((lengths * pmf).sum())
    std = float(((lengths - mean) ** 2 * pmf).sum().sqrt())
    assert abs(got.mean().item() - mean) < 5 * std / math.sqrt(n), (
        f"mean length for p={p}, max_len={max_len} should be {mean:.3f}; got {got.mean().item():.3f}")
    assert int(got.max()) <= max_len and int(got.min()) >= 1, f"lengths should lie in 1..{max_len}"
