"""Hidden grading tests of notebook 06 (instructors only; not shipped to students).

The functions on shapes and parameters the exercise text allows but the shipped tests do
not use: 1-D token tensors for BERT masking, other span-length parameters, corner cases of
boundary pairs (all masked, T = 1, nothing masked, spans at the ends of two rows), other SGD
starts and learning rates.
"""

import math

import pytest
import torch
import torch._dynamo  # noqa: F401  the first optimizer of a process imports it (3-6 s): pay that here, untimed


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


def _runs(masked):
    """(left, right, offset) from the maximal runs of True, row by row."""
    out = ([], [], [])
    for row in masked.tolist():
        i = 0
        while i < len(row):
            if row[i]:
                s = i
                while i < len(row) and row[i]:
                    i += 1
                for j in range(s, i):
                    out[0].append(s - 1)
                    out[1].append(i)
                    out[2].append(j - s)
            else:
                i += 1
    return [list(v) for v in out]


@pytest.mark.exercise("6.6")
@pytest.mark.points(1)
@pytest.mark.parametrize("masked", [
    torch.ones(2, 5, dtype=torch.bool),                       # every token masked: left -1, right T
    torch.tensor([[True]]),                                   # T = 1
    torch.zeros(3, 4, dtype=torch.bool),                      # nothing masked: three empty tensors
    torch.tensor([[True, False, True], [True, True, True]]),  # spans never run from one row into the next
], ids=["all-masked", "T=1", "none-masked", "rows-apart"])
def test_boundary_pairs_corner_cases(exercise, masked):
    """Spans are runs inside one row; boundaries may be -1 or T."""
    got = [t.tolist() for t in exercise("6.6").boundary_pairs(masked)]
    want = _runs(masked)
    assert got == want, f"for masked={masked.tolist()} (left, right, offset) should be {want}; got {got}"


@pytest.mark.exercise("6.7")
@pytest.mark.points(1)
def test_kl_path_with_zero_steps_and_a_negative_start(exercise):
    """num_steps=0 gives only the start; a negative mu0 shrinks towards 0 the same way."""
    f = exercise("6.7").kl_sgd_path
    assert f(1.0, 0.1, mu0=-3.0, logvar0=2.0, num_steps=0).tolist() == [-3.0], "num_steps=0 should give [mu0]"
    got = f(0.8, 0.5, mu0=-3.0, logvar0=2.0, num_steps=5).double()
    want = torch.tensor([-3.0 * 0.6**t for t in range(6)], dtype=torch.float64)
    assert torch.allclose(got, want, rtol=1e-9), f"mu should be {want.tolist()}; got {got.tolist()}"


@pytest.mark.exercise("6.8")
@pytest.mark.points(1)
@pytest.mark.parametrize("lr", [1e-3, 7.0])
def test_stable_strength_for_other_learning_rates(exercise, lr):
    """2 / lr for any learning rate."""
    got = float(exercise("6.8").largest_stable_strength(lr))
    assert got == pytest.approx(2.0 / lr, rel=1e-9), f"for lr={lr} the answer is {2 / lr:g}; got {got:g}"
