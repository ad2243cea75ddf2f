"""Tests of course_lib.language: the Markov-chain language and its exactly known entropy."""

import math

import numpy as np
import pytest
import torch

from course_lib.language import MarkovLanguage


@pytest.fixture(scope="module")
def lang():
    return MarkovLanguage()  # the course's default: V = 64, exponent 1, seed 0


@pytest.fixture(scope="module")
def long_sample(lang):
    # Many short sequences: the sampler loops over time only, so this is quick.
    return lang.sample(2000, 200, seed=1)  # (2000, 200): 400k tokens


# ---- the chain itself --------------------------------------------------------------------------


def test_shapes_dtypes_and_rows_sum_to_one(lang):
    P, pi = lang.transition, lang.stationary
    assert P.shape == (64, 64) and pi.shape == (64,) and lang.vocab_size == 64
    assert P.dtype == pi.dtype == torch.float64
    assert torch.allclose(P.sum(dim=1), torch.ones(64, dtype=torch.float64), rtol=0, atol=1e-12)
    assert torch.allclose(lang.log_transition.exp(), P, rtol=0, atol=1e-15)


def test_pi_is_stationary(lang):
    pi = lang.stationary
    assert (pi > 0).all() and abs(pi.sum().item() - 1) < 1e-12
    assert torch.allclose(pi @ lang.transition, pi, rtol=0, atol=1e-12)


def test_entropies_against_an_independent_numpy_computation(lang):
    P = lang.transition.numpy()
    # Oracle: pi is the left eigenvector of P for eigenvalue 1 (Perron-Frobenius).
    eigvals, eigvecs = np.linalg.eig(P.T)
    v = np.real(eigvecs[:, np.argmin(np.abs(eigvals - 1))])
    pi = v / v.sum()
    np.testing.assert_allclose(lang.stationary.numpy(), pi, rtol=0, atol=1e-12)
    H = -np.sum(pi[:, None] * P * np.log(P))
    assert lang.entropy_rate == pytest.approx(H, rel=1e-10)
    assert lang.unigram_entropy == pytest.approx(-np.sum(pi * np.log(pi)), rel=1e-10)


def test_entropy_ordering(lang):
    # Knowing the previous token helps (H < unigram); the unigram is not uniform (< log V).
    assert 0 < lang.entropy_rate < lang.unigram_entropy < math.log(64)


def test_empirical_loss_of_the_true_model_matches_the_entropy_rate(lang, long_sample):
    x = long_sample
    nll = -lang.log_transition[x[:, :-1], x[:, 1:]]  # (B, T - 1): -log P[x_t, x_{t+1}]
    per_sequence = nll.mean(dim=1)  # independent sequences: an honest standard error
    mean, se = per_sequence.mean().item(), per_sequence.std().item() / math.sqrt(len(per_sequence))
    assert abs(mean - lang.entropy_rate) < 4 * se
    assert lang.sequence_cross_entropy_floor(200) == lang.entropy_rate


def test_sample_unigram_frequencies_match_pi(lang, long_sample):
    freq = torch.bincount(long_sample.flatten(), minlength=64).double() / long_sample.numel()
    assert (freq - lang.stationary).abs().max() < 5e-3
    # The first token is drawn from pi too (that is what makes every position stationary).
    first = lang.sample(40_000, 1, seed=2).squeeze(1)
    freq0 = torch.bincount(first, minlength=64).double() / 40_000
    assert (freq0 - lang.stationary).abs().max() < 1e-2


def test_sample_pair_frequencies_match_the_joint_distribution():
    # A small chain so that every (x, y) cell is well populated: catches off-by-one in the CDF.
    small = MarkovLanguage(vocab_size=6, scale=3.0, seed=1)
    x = small.sample(4000, 51, seed=0)
    pairs = (x[:, :-1] * 6 + x[:, 1:]).flatten()
    freq = torch.bincount(pairs, minlength=36).double().view(6, 6) / pairs.numel()
    joint = small.stationary[:, None] * small.transition
    assert 0.5 * (freq - joint).abs().sum() < 0.01  # total variation distance


def test_flatter_spectrum_changes_the_entropy():
    steep, flat = MarkovLanguage(exponent=1.0, seed=0), MarkovLanguage(exponent=0.75, seed=0)
    assert abs(steep.entropy_rate - flat.entropy_rate) > 0.05
    assert torch.allclose(flat.spectrum[:1], steep.spectrum[:1])  # same leading value, slower decay


def test_same_seed_same_language_different_seed_different_language():
    assert torch.equal(MarkovLanguage(seed=3).transition, MarkovLanguage(seed=3).transition)
    assert MarkovLanguage(seed=3).entropy_rate != MarkovLanguage(seed=4).entropy_rate


def test_repr_reports_the_entropies(lang):
    text = repr(lang)
    assert "vocab_size=64" in text and f"{lang.entropy_rate:.4f}" in text and f"{lang.unigram_entropy:.4f}" in text


# ---- sampling ----------------------------------------------------------------------------------


def test_sample_shape_range_and_determinism(lang):
    a = lang.sample(5, 7, seed=0)
    assert a.shape == (5, 7) and a.dtype == torch.int64 and a.device.type == "cpu"
    assert a.min() >= 0 and a.max() < 64
    assert torch.equal(a, lang.sample(5, 7, seed=0))
    assert not torch.equal(a, lang.sample(5, 7, seed=1))
    assert lang.sample(3, 1).shape == (3, 1)
    assert lang.sample(2, 4, device="cpu").device.type == "cpu"


def test_sample_leaves_the_global_rng_alone(lang):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    lang.sample(4, 4, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_batches_are_fresh_and_deterministic(lang):
    first, second = lang.batches(4, 8, seed=5), lang.batches(4, 8, seed=5)
    a = [next(first) for _ in range(3)]
    b = [next(second) for _ in range(3)]
    assert all(x.shape == (4, 8) and x.dtype == torch.int64 for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], a[1])  # fresh data every step
    assert not torch.equal(a[0], next(lang.batches(4, 8, seed=6)))


# ---- population cross-entropy ------------------------------------------------------------------


def test_population_cross_entropy_of_the_true_model_is_the_entropy_rate(lang):
    assert lang.population_cross_entropy(lang.log_transition) == pytest.approx(lang.entropy_rate, abs=1e-12)
    # float32 model outputs are accepted
    assert lang.population_cross_entropy(lang.log_transition.float()) == pytest.approx(lang.entropy_rate, abs=1e-5)


def test_any_other_model_pays_more(lang):
    g = torch.Generator().manual_seed(0)
    for size in [1e-3, 0.1, 1.0]:
        noise = size * torch.randn(64, 64, generator=g, dtype=torch.float64)
        log_q = torch.log_softmax(lang.log_transition + noise, dim=1)
        assert lang.population_cross_entropy(log_q) > lang.entropy_rate  # Gibbs' inequality


def test_unigram_model_pays_the_unigram_entropy(lang):
    # -sum_x pi_x sum_y P_xy log pi_y = -sum_y (pi P)_y log pi_y = -sum_y pi_y log pi_y.
    log_q = lang.stationary.log().expand(64, 64)  # every row = log pi
    assert lang.population_cross_entropy(log_q) == pytest.approx(lang.unigram_entropy, abs=1e-12)


def test_uniform_model_pays_log_v(lang):
    assert lang.population_cross_entropy(torch.full((64, 64), -math.log(64))) == pytest.approx(math.log(64))


def test_population_cross_entropy_matches_a_sampled_estimate(lang, long_sample):
    log_q = torch.log_softmax(lang.log_transition * 0.5, dim=1)  # a deliberately poor model
    x = long_sample
    estimate = -log_q[x[:, :-1], x[:, 1:]].mean().item()
    assert estimate == pytest.approx(lang.population_cross_entropy(log_q), rel=0.01)


# ---- error messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(vocab_size=1), ValueError, r"MarkovLanguage\(\): 'vocab_size' must be an int in \[2, 2048\], got vocab_size=1"),
        (dict(vocab_size=8.0), TypeError, r"'vocab_size' must be an int in \[2, 2048\]"),
        (dict(exponent=-0.5), ValueError, r"'exponent' must be a float >= 0, got exponent=-0.5"),
        (dict(scale=0.0), ValueError, r"'scale' must be a float > 0, got scale=0.0"),
        (dict(scale=1e6), ValueError, r"'scale' must be small enough that every transition probability is > 0"),
        (dict(seed=-1), ValueError, r"'seed' must be an int in \[0, 9223372036854775807\], got seed=-1"),
    ],
)
def test_constructor_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        MarkovLanguage(**kwargs)


def test_sampling_messages(lang):
    with pytest.raises(ValueError, match=r"sample\(\): 'num_sequences' must be an int >= 1, got num_sequences=0"):
        lang.sample(0, 5)
    with pytest.raises(ValueError, match=r"sample\(\): 'seq_len' must be an int >= 1, got seq_len=0"):
        lang.sample(2, 0)
    with pytest.raises(ValueError, match=r"sample\(\): 'seed' must be an int in \[0, 9223372036854775807\], got seed=-2"):
        lang.sample(2, 2, seed=-2)
    # batches() checks at once, not at the first next()
    with pytest.raises(ValueError, match=r"batches\(\): 'batch_size' must be an int >= 1, got batch_size=0"):
        lang.batches(0, 5)
    with pytest.raises(ValueError, match=r"batches\(\): 'seq_len' must be an int >= 1, got seq_len=-1"):
        lang.batches(2, -1)
    with pytest.raises(ValueError, match=r"sequence_cross_entropy_floor\(\): 'seq_len' must be an int >= 2"):
        lang.sequence_cross_entropy_floor(1)


def test_population_cross_entropy_messages(lang):
    where = r"population_cross_entropy\(\): "
    with pytest.raises(ValueError, match=where + r"'log_q' must have shape \(64, 64\), got shape=\(64, 63\)"):
        lang.population_cross_entropy(torch.zeros(64, 63))
    with pytest.raises(ValueError, match=where + r"'log_q' must have 2 dimension\(s\)"):
        lang.population_cross_entropy(torch.zeros(64))
    with pytest.raises(TypeError, match=where + r"'log_q' must be a torch.Tensor"):
        lang.population_cross_entropy(np.zeros((64, 64)))
    with pytest.raises(TypeError, match=where + r"'log_q' must be a floating-point tensor"):
        lang.population_cross_entropy(torch.zeros(64, 64, dtype=torch.int64))
    with pytest.raises(ValueError, match=where + r"'log_q' must hold log-probabilities"):
        lang.population_cross_entropy(torch.randn(64, 64))  # raw logits, not log_softmax


# ---- independent bigram pairs (the scaling sweep's data) ---------------------------------------


def test_sample_bigrams_follow_the_joint_law(lang):
    prev, nxt = lang.sample_bigrams(1_000_000, seed=2)
    assert prev.shape == nxt.shape == (1_000_000,) and prev.dtype == torch.int64
    counts = torch.zeros(64 * 64, dtype=torch.float64).index_add_(0, prev * 64 + nxt, torch.ones(len(prev), dtype=torch.float64))
    joint = (lang.stationary[:, None] * lang.transition).flatten()  # (V*V,) the oracle: pi_x P_xy
    # Each cell's count is binomial: |freq - p| <= 5 standard errors everywhere.
    se = (joint * (1 - joint) / len(prev)).sqrt()
    assert ((counts / len(prev) - joint).abs() <= 5 * se + 1e-9).all()


def test_sample_bigrams_prefixes_are_nested_and_seeded(lang):
    a_prev, a_next = lang.sample_bigrams(500, seed=7)
    b_prev, b_next = lang.sample_bigrams(50, seed=7)
    assert torch.equal(a_prev[:50], b_prev) and torch.equal(a_next[:50], b_next)
    assert not torch.equal(lang.sample_bigrams(50, seed=8)[0], b_prev)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_pairs=0), r"sample_bigrams\(\): 'num_pairs' must be an int >= 1, got num_pairs=0"),
    (dict(num_pairs=10, seed=-1), r"'seed' must be an int in \[0, 9223372036854775807\], got seed=-1"),
])
def test_sample_bigrams_bad_input(lang, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lang.sample_bigrams(**kwargs)
