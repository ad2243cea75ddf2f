"""Grading tests of notebook 06 (masking objectives): exercises 6.1-6.8.

Oracles: ``torch.nn.functional.cross_entropy`` on the shifted tensors, the closed form of the
renormalised geometric pmf (mean 3.797 for p=0.2, max_len=10), binomial tolerances (5
standard deviations) for every sampled proportion, hand-worked boundary pairs and a run-length
walk (6.6), the closed form ``mu0 * (1 - lr * w)**t`` and torch's SGD (6.7), and ``2 / lr``
(6.8); never the course's own functions.
"""

import math

import pytest
import torch
import torch._dynamo  # noqa: F401  the first optimizer of a process imports it (3-6 s): pay that here, untimed
import torch.nn.functional as F

IGNORE_INDEX = -100


def span_length_distribution(p=0.2, max_len=10, truncation="renormalise"):
    """The closed form: P(l) = p (1 - p)**(l - 1), l = 1..max_len, renormalised (or with the tail clipped onto
    max_len, the wrong answer some tests name)."""
    lengths = torch.arange(1, max_len + 1, dtype=torch.float64)
    pmf = p * (1 - p) ** (lengths - 1)
    if truncation == "clip":
        pmf[-1] = (1 - p) ** (max_len - 1)  # P(L >= max_len) of the untruncated geometric
        return pmf
    return pmf / pmf.sum()


def causal_lm_loss(logits, tokens):
    """torch's cross-entropy of positions 0..T-2 against tokens 1..T-1."""
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- 6.1 next_token_pairs
@pytest.mark.exercise("6.1")
@pytest.mark.points(1)
def test_pairs_hand_example(exercise):
    """Position t of the inputs is paired with the token that follows it."""
    got = exercise("6.1").next_token_pairs(torch.tensor([[5, 6, 7, 8]]))
    assert isinstance(got, tuple) and len(got) == 2, f"next_token_pairs should return (inputs, targets); got {got!r}"
    inputs, targets = got
    assert inputs.tolist() == [[5, 6, 7]] and targets.tolist() == [[6, 7, 8]], (
        f"for tokens [[5, 6, 7, 8]] inputs should be [[5, 6, 7]] and targets [[6, 7, 8]]; got {inputs.tolist()} and "
        f"{targets.tolist()}")


@pytest.mark.exercise("6.1")
@pytest.mark.points(2)
def test_pairs_on_a_batch(exercise):
    """Shift along the time dimension, for every row of the batch."""
    tokens = torch.randint(0, 50, (4, 9), generator=_gen(0))
    inputs, targets = exercise("6.1").next_token_pairs(tokens)
    assert tuple(inputs.shape) == (4, 8) and tuple(targets.shape) == (4, 8), (
        f"for tokens of shape (4, 9) inputs and targets should both be (4, 8); got {tuple(inputs.shape)} and "
        f"{tuple(targets.shape)}")
    assert torch.equal(inputs, tokens[:, :-1]), "inputs should be every token but the last of each row"
    assert torch.equal(targets, tokens[:, 1:]), (
        "targets should be every token but the first of each row (targets[:, t] == tokens[:, t + 1])")


# ----------------------------------------------------------------------------- 6.2 next_token_loss
@pytest.mark.exercise("6.2")
@pytest.mark.points(1)
def test_loss_of_uniform_logits_is_log_v(exercise):
    """The loss is a mean over all B * (T - 1) predictions."""
    got = float(exercise("6.2").next_token_loss(torch.zeros(2, 6, 7), torch.randint(0, 7, (2, 6), generator=_gen(1))))
    assert got == pytest.approx(math.log(7), rel=1e-6), (
        f"uniform logits over V=7 tokens cost log 7 = {math.log(7):.5f} per prediction; got {got:.5f}")


@pytest.mark.exercise("6.2")
@pytest.mark.points(1)
@pytest.mark.parametrize("B, T, V", [(3, 8, 11), (2, 5, 4), (1, 2, 5)])
def test_loss_matches_torch(exercise, B, T, V):
    """The logits of the last position predict nothing and the first token is never predicted; the mean over the
    remaining B * (T - 1) predictions."""
    g = _gen(2)
    logits = 2 * torch.randn(B, T, V, generator=g, dtype=torch.float64)
    tokens = torch.randint(0, V, (B, T), generator=g)
    want = causal_lm_loss(logits, tokens).item()
    got = exercise("6.2").next_token_loss(logits, tokens)
    assert isinstance(got, torch.Tensor) and got.ndim == 0, f"next_token_loss should return a 0-dim tensor; got {got!r}"
    assert float(got) == pytest.approx(want, rel=1e-9), (
        f"next_token_loss on random logits of shape {(B, T, V)}: expected {want:.8g} (F.cross_entropy of the shifted "
        "tensors); "
        f"got {float(got):.8g}")


@pytest.mark.exercise("6.2")
@pytest.mark.points(1)
def test_loss_shifts_in_the_right_direction(exercise):
    """The logits at position t predict the token at t + 1, not the token at t."""
    f = exercise("6.2").next_token_loss
    tokens = torch.tensor([[1, 4, 2, 0, 3, 3, 1]])
    V = 5
    knows_next = torch.zeros(1, 7, V)
    knows_next[0, torch.arange(6), tokens[0, 1:]] = 20.0
    copies_current = 20.0 * F.one_hot(tokens, V).float()
    good, bad = float(f(knows_next, tokens)), float(f(copies_current, tokens))
    assert good < 1e-6, f"a model with a large logit on the *next* token should have a loss near 0; got {good:.4g}"
    assert bad > 5, (
        f"a model that copies the *current* token should have a large loss; got {bad:.4g}. "
        "Hint: logits at position t go with the token at t + 1")


@pytest.mark.exercise("6.2")
@pytest.mark.points(1)
def test_last_position_gets_no_gradient(exercise):
    """The logits of the last position have no next token to predict, so they must not enter the loss."""
    logits = torch.randn(2, 5, 6, generator=_gen(3), requires_grad=True)
    tokens = torch.randint(0, 6, (2, 5), generator=_gen(4))
    exercise("6.2").next_token_loss(logits, tokens).backward()
    assert logits.grad is not None, "no gradient reached the logits"
    last = logits.grad[:, -1].abs().max().item()
    assert last == 0.0, (
        f"the logits of the last position predict nothing, so their gradient should be 0; got max |grad| {last:.3g}")


# ----------------------------------------------------------------------------- 6.3 span_length_pmf
@pytest.mark.exercise("6.3")
@pytest.mark.points(1)
def test_pmf_shape_and_sum(exercise):
    """A float64 tensor of max_len probabilities that sums to 1."""
    got = exercise("6.3").span_length_pmf()
    assert isinstance(got, torch.Tensor) and tuple(got.shape) == (10,), (
        f"span_length_pmf() should be a tensor of shape (10,); got {got!r}")
    assert got.dtype == torch.float64, f"span_length_pmf should return float64; got {got.dtype}"
    assert float(got.sum()) == pytest.approx(1.0, abs=1e-12), (
        f"the probabilities should sum to 1; got {float(got.sum())}")


@pytest.mark.exercise("6.3")
@pytest.mark.points(1)
@pytest.mark.parametrize("p, max_len", [(0.2, 10), (0.5, 4), (0.05, 30)])
def test_pmf_is_the_renormalised_geometric(exercise, p, max_len):
    """The geometric probabilities of lengths 1..max_len, renormalised to sum to 1 (not with the tail piled onto
    max_len)."""
    got = exercise("6.3").span_length_pmf(p, max_len)
    want = span_length_distribution(p, max_len, truncation="renormalise")
    clipped = span_length_distribution(p, max_len, truncation="clip")
    err = (got.double() - want).abs().max().item()
    hint = " - that is the clipped distribution: renormalise instead" if torch.allclose(got.double(), clipped) else ""
    assert err < 1e-12, (
        f"span_length_pmf({p}, {max_len}) should be {[round(v, 4) for v in want.tolist()]}; got "
        f"{[round(v, 4) for v in got.tolist()]}{hint}")


@pytest.mark.exercise("6.3")
@pytest.mark.points(1)
def test_pmf_mean_is_3_797(exercise):
    """Renormalise over 1..10; clipping the tail onto 10 gives the wrong mean 4.463."""
    got = exercise("6.3").span_length_pmf()
    mean = float((torch.arange(1, 11, dtype=torch.float64) * got).sum())
    assert mean == pytest.approx(3.797, abs=5e-4), (
        f"the mean span length for p=0.2, max_len=10 should be 3.797 (4.463 if clipped); got {mean:.4f}")


# ----------------------------------------------------------------------------- 6.4 sample_span_lengths
N_DRAWS = 200_000


@pytest.mark.exercise("6.4")
@pytest.mark.points(1)
def test_samples_type_and_range(exercise):
    """Lengths are int64 in 1..max_len; a draw of an index counts from 0."""
    got = exercise("6.4").sample_span_lengths(1000, generator=_gen(5))
    assert isinstance(got, torch.Tensor) and tuple(got.shape) == (1000,), (
        f"sample_span_lengths(1000) should be a tensor of shape (1000,); got {got!r}")
    assert got.dtype == torch.int64, f"the lengths should be int64; got {got.dtype}"
    lo, hi = int(got.min()), int(got.max())
    assert lo >= 1 and hi <= 10, (
        f"lengths should lie in 1..10; got min {lo}, max {hi}. Hint: multinomial gives indices 0..9: add 1")


@pytest.mark.exercise("6.4")
@pytest.mark.points(2)
def test_samples_mean_is_3_80(exercise):
    """Draw with replacement from the renormalised probabilities of 6.3."""
    got = exercise("6.4").sample_span_lengths(N_DRAWS, generator=_gen(6)).double()
    pmf = span_length_distribution()
    lengths = torch.arange(1, 11, dtype=torch.float64)
    mean = float((lengths * pmf).sum())
    std = float(((lengths - mean) ** 2 * pmf).sum().sqrt())
    tol = 5 * std / math.sqrt(N_DRAWS)
    assert abs(got.mean().item() - mean) < tol, (
        f"the mean of {N_DRAWS} draws should be {mean:.3f} +- {tol:.3f}; got {got.mean().item():.3f}"
        + (" - about 4.46 means the tail was clipped onto 10 instead of renormalised"
           if got.mean().item() > 4.3 else ""))


@pytest.mark.exercise("6.4")
@pytest.mark.points(1)
def test_samples_frequencies_match_the_pmf(exercise):
    """Use the p and max_len arguments when you build the probabilities."""
    p, max_len = 0.5, 4
    got = exercise("6.4").sample_span_lengths(N_DRAWS, p, max_len, generator=_gen(7))
    assert isinstance(got, torch.Tensor) and got.shape == (N_DRAWS,), (
        f"sample_span_lengths({N_DRAWS}, {p}, {max_len}) should be a tensor of shape ({N_DRAWS},); got "
        f"{type(got).__qualname__} of shape {tuple(getattr(got, 'shape', ()))}")
    assert not got.is_floating_point() and int(got.min()) >= 0, (
        f"lengths are whole numbers >= 1 (int64); got dtype {got.dtype}, min {got.min().item()}")
    freq = torch.bincount(got.long(), minlength=max_len + 1)[1:].double() / N_DRAWS
    pmf = span_length_distribution(p, max_len)
    assert tuple(freq.shape) == (max_len,) and int(got.max()) <= max_len, (
        f"with max_len={max_len} no length should exceed {max_len}; got max {int(got.max())}")
    tol = 5 * (pmf * (1 - pmf) / N_DRAWS).sqrt()
    assert ((freq - pmf).abs() < tol).all(), (
        f"with p={p}, max_len={max_len} the frequencies of lengths 1..{max_len} should be "
        f"{[round(v, 4) for v in pmf.tolist()]}; "
        f"got {[round(v, 4) for v in freq.tolist()]}")


@pytest.mark.exercise("6.4")
@pytest.mark.points(1)
def test_samples_use_the_generator(exercise):
    """Every random draw comes from the generator argument."""
    f = exercise("6.4").sample_span_lengths
    a, b, c = f(500, generator=_gen(8)), f(500, generator=_gen(8)), f(500, generator=_gen(9))
    assert torch.equal(a, b), (
        "two calls with generators seeded alike should give the same lengths: pass generator=generator")
    assert not torch.equal(a, c), "generators with different seeds should give different lengths"


# ----------------------------------------------------------------------------- 6.5 bert_mask
V_BIG, MASK_ID = 1000, 1000


def _masked(exercise, seed=10, shape=(200, 1000), mask_prob=0.15):
    tokens = torch.randint(0, V_BIG, shape, generator=_gen(seed))
    inputs, labels = exercise("6.5").bert_mask(tokens, MASK_ID, V_BIG, mask_prob, generator=_gen(seed + 1))
    return tokens, inputs, labels


def _within(got, p, n, what):
    tol = 5 * math.sqrt(p * (1 - p) / n)
    assert abs(got - p) < tol, f"{what} should be {p:.4f} +- {tol:.4f}; got {got:.4f}"


@pytest.mark.exercise("6.5")
@pytest.mark.points(1)
def test_bert_labels_and_unselected_positions(exercise):
    """Labels hold the original token where a position is selected and -100 elsewhere; unselected positions keep
    their token in the inputs."""
    tokens, inputs, labels = _masked(exercise)
    assert inputs.shape == tokens.shape and labels.shape == tokens.shape, (
        f"inputs and labels should have the shape of tokens {tuple(tokens.shape)}; got {tuple(inputs.shape)}, "
        f"{tuple(labels.shape)}")
    sel = labels != IGNORE_INDEX
    assert torch.equal(labels[sel], tokens[sel]), "at selected positions the label should be the original token"
    assert torch.equal(inputs[~sel], tokens[~sel]), (
        "positions that were not selected (label -100) must keep their token")
    assert not (inputs[~sel] == MASK_ID).any(), "[MASK] should only appear at selected positions"


@pytest.mark.exercise("6.5")
@pytest.mark.points(1)
def test_bert_selects_15_percent(exercise):
    """Each position is selected on its own, with probability mask_prob."""
    tokens, inputs, labels = _masked(exercise)
    _within((labels != IGNORE_INDEX).double().mean().item(), 0.15, tokens.numel(), "the fraction of selected positions")


@pytest.mark.exercise("6.5")
@pytest.mark.points(2)
@pytest.mark.parametrize("mask_prob", [0.15, 0.5])
def test_bert_80_10_10(exercise, mask_prob):
    """Only selected positions change: 80% of them become [MASK], 10% a random token, 10% stay as they are."""
    tokens, inputs, labels = _masked(exercise, mask_prob=mask_prob)
    sel = labels != IGNORE_INDEX
    _within(sel.double().mean().item(), mask_prob, tokens.numel(), f"the fraction of selected positions (mask_prob={mask_prob})")
    assert inputs.shape == tokens.shape and torch.equal(inputs[~sel], tokens[~sel]), (
        "the 80/10/10 rule applies to the selected positions only: unselected ones must keep their token")
    n = int(sel.sum())
    got_in, got_tok = inputs[sel], tokens[sel]
    masked = (got_in == MASK_ID).double().mean().item()
    unchanged = (got_in == got_tok).double().mean().item()
    random = ((got_in != MASK_ID) & (got_in != got_tok)).double().mean().item()
    # A random replacement is uniform over the whole vocabulary, so 1/V of them show the original token.
    _within(masked, 0.8, n, "among selected positions, the share replaced by [MASK]")
    _within(random, 0.1 * (1 - 1 / V_BIG), n, "among selected positions, the share replaced by a different token")
    _within(unchanged, 0.1 + 0.1 / V_BIG, n, "among selected positions, the share left unchanged")
    assert int(got_in[got_in != MASK_ID].max()) < V_BIG, "random replacements should be ids in [0, vocab_size)"


@pytest.mark.exercise("6.5")
@pytest.mark.points(1)
def test_bert_uses_the_generator_and_mask_prob(exercise):
    """Every random number comes from the generator argument, and mask_prob is used."""
    f = exercise("6.5").bert_mask
    tokens = torch.randint(0, 50, (8, 64), generator=_gen(12))
    a = f(tokens, 50, 50, 0.3, generator=_gen(13))
    b = f(tokens, 50, 50, 0.3, generator=_gen(13))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), "generators seeded alike should give the same masking"
    inputs, labels = f(tokens, 50, 50, 0.0, generator=_gen(14))
    assert torch.equal(inputs, tokens) and (labels == IGNORE_INDEX).all(), (
        "with mask_prob=0 nothing should be selected or changed")
    inputs, labels = f(tokens, 50, 50, 1.0, generator=_gen(15))
    assert (labels == tokens).all(), "with mask_prob=1 every position should be selected (labels == tokens)"


@pytest.mark.exercise("6.5")
@pytest.mark.points(1)
def test_bert_leaves_tokens_unchanged(exercise):
    """Build new tensors for inputs and labels: the tokens passed in must stay as they were."""
    tokens = torch.randint(0, 50, (16, 64), generator=_gen(16))
    before = tokens.clone()
    inputs, labels = exercise("6.5").bert_mask(tokens, 50, 50, 0.3, generator=_gen(17))
    assert torch.equal(tokens, before), (
        "bert_mask modified its input tokens in place (tokens changed while it ran): copy them before writing the "
        "[MASK] and random ids")


# ----------------------------------------------------------------------------- 6.6 boundary_pairs
def _runs_oracle(masked):
    """The definition through run lengths: each maximal run s..e of True gives, for i in s..e, (s - 1, e + 1, i - s)."""
    left, right, offset = [], [], []
    for row in masked.tolist():
        i = 0
        while i < len(row):
            if not row[i]:
                i += 1
                continue
            s = i
            while i < len(row) and row[i]:
                i += 1
            e = i - 1
            for j in range(s, e + 1):
                left.append(s - 1)
                right.append(e + 1)
                offset.append(j - s)
    return left, right, offset


def _row(s):
    return torch.tensor([[c == "x" for c in s]])


def _pairs(exercise, masked):
    got = exercise("6.6").boundary_pairs(masked)
    assert isinstance(got, tuple) and len(got) == 3, f"boundary_pairs should return (left, right, offset); got {got!r}"
    for name, t in zip(("left", "right", "offset"), got):
        assert isinstance(t, torch.Tensor) and t.ndim == 1, f"'{name}' should be a 1-D tensor; got {t!r}"
    return [t.tolist() for t in got]


@pytest.mark.exercise("6.6")
@pytest.mark.points(1)
def test_pairs_hand_example_of_the_text(exercise):
    """The example of the exercise text: a span of two and a span of one."""
    got = _pairs(exercise, _row(".xx.x"))
    assert got == [[0, 0, 3], [3, 3, 5], [0, 1, 0]], (
        f"for the row . x x . x (left, right, offset) should be ([0, 0, 3], [3, 3, 5], [0, 1, 0]); got {got}")


@pytest.mark.exercise("6.6")
@pytest.mark.points(2)
@pytest.mark.parametrize("row, want", [
    ("xx....", ([-1, -1], [2, 2], [0, 1])),
    ("....xx", ([3, 3], [6, 6], [0, 1])),
    ("x.x", ([-1, 1], [1, 3], [0, 0])),
])
def test_pairs_at_the_edges_of_a_row(exercise, row, want):
    """A span that starts the row has left = -1; one that ends it has right = T (outside the row, not clamped)."""
    got = _pairs(exercise, _row(row))
    assert got == [list(w) for w in want], (
        f"for the row {' '.join(row)} (x = masked, T = {len(row)}) (left, right, offset) should be {want}; got "
        f"{tuple(got)}. The boundaries are the positions just outside the span, even where that is -1 or T")


@pytest.mark.exercise("6.6")
@pytest.mark.points(1)
def test_pairs_long_spans_count_offsets_from_zero(exercise):
    """Every token of a span shares its boundaries; the offset counts 0, 1, 2, ... from the span's first token."""
    got = _pairs(exercise, _row("..xxxx.."))
    assert got == [[1] * 4, [6] * 4, [0, 1, 2, 3]], (
        f"for the row . . x x x x . . (left, right, offset) should be ([1, 1, 1, 1], [6, 6, 6, 6], [0, 1, 2, 3]); got "
        f"{tuple(got)}")


@pytest.mark.exercise("6.6")
@pytest.mark.points(1)
def test_pairs_on_random_batches(exercise):
    """Row by row, left to right, as masked.nonzero() lists the positions; int64 tensors."""
    g = torch.Generator().manual_seed(20)
    masked = torch.rand(12, 17, generator=g) < 0.4
    out = exercise("6.6").boundary_pairs(masked)
    assert all(isinstance(t, torch.Tensor) and t.dtype == torch.int64 for t in out), (
        f"left, right and offset should be int64 tensors; got {[getattr(t, 'dtype', type(t)) for t in out]}")
    want = _runs_oracle(masked)
    got = [t.tolist() for t in out]
    names = ("left", "right", "offset")
    bad = [n for n, a, b in zip(names, got, want) if a != b]
    assert not bad, (f"on a random (12, 17) batch {bad} differ from the definition (first values: want "
                     f"{[w[:6] for w in want]}, got {[a[:6] for a in got]})")


# ----------------------------------------------------------------------------- 6.7 kl_sgd_path
def _torch_sgd_mu(strength, lr, mu0, logvar0, num_steps):
    """torch's SGD on strength * KL(N(mu, exp(logvar)) || N(0, 1)), written out: the oracle."""
    mu = torch.tensor(mu0, dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor(logvar0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([mu, logvar], lr=lr)
    path = [mu0]
    for _ in range(num_steps):
        opt.zero_grad()
        (strength * 0.5 * (mu**2 + logvar.exp() - logvar - 1)).backward()
        opt.step()
        path.append(mu.item())
    return path


def _path(exercise, *args, **kw):
    got = exercise("6.7").kl_sgd_path(*args, **kw)
    assert isinstance(got, torch.Tensor) and got.ndim == 1, f"kl_sgd_path should return a 1-D tensor; got {got!r}"
    return got.double()


@pytest.mark.exercise("6.7")
@pytest.mark.points(1)
def test_kl_path_starts_at_mu0_and_has_num_steps_plus_one_values(exercise):
    """The start, then one value after each step."""
    got = _path(exercise, 0.5, 0.1, mu0=2.0, logvar0=0.0, num_steps=7)
    assert got.shape == (8,), (
        f"kl_sgd_path(..., num_steps=7) should have 8 values (the start and 7 steps); got {got.shape[0]}")
    assert got[0].item() == 2.0, f"the first value should be mu0 = 2.0; got {got[0].item()}"


@pytest.mark.exercise("6.7")
@pytest.mark.points(2)
@pytest.mark.parametrize("strength, lr", [(1.0, 0.5), (3.0, 0.2), (0.25, 2.0)])
def test_kl_path_is_plain_gradient_descent(exercise, strength, lr):
    """Along mu, strength * KL is strength * mu**2 / 2: each SGD step multiplies mu by (1 - lr * strength)."""
    got = _path(exercise, strength, lr, mu0=1.5, logvar0=0.3, num_steps=12)
    want = torch.tensor([1.5 * (1 - lr * strength) ** t for t in range(13)], dtype=torch.float64)
    assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-9, atol=1e-12), (
        f"with strength={strength}, lr={lr} mu should follow 1.5 * (1 - lr * strength)**t = "
        f"{[round(v, 4) for v in want[:5].tolist()]} ...; got {[round(v, 4) for v in got[:5].tolist()]} ... "
        "(plain SGD, no momentum; the loss is strength * KL with KL = (mu^2 + sigma^2 - log sigma^2 - 1) / 2)")


@pytest.mark.exercise("6.7")
@pytest.mark.points(1)
def test_kl_path_matches_torch_sgd_where_it_oscillates(exercise):
    """Above the limit mu flips sign with a growing amplitude; the path is still exactly SGD's."""
    want = torch.tensor(_torch_sgd_mu(2.5, 1.0, 0.1, -1.0, 20), dtype=torch.float64)
    got = _path(exercise, 2.5, 1.0, mu0=0.1, logvar0=-1.0, num_steps=20)
    assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-9), (
        f"with strength=2.5, lr=1 mu should grow as {[round(v, 3) for v in want[-3:].tolist()]} at the end; got "
        f"{[round(v, 3) for v in got[-3:].tolist()]}")


@pytest.mark.exercise("6.7")
@pytest.mark.points(1)
def test_kl_path_records_a_divergence_and_stops(exercise):
    """A value that overflows is kept as the last one: divergence is a result, not an error."""
    got = _path(exercise, 3.0, 1.0, mu0=1e300, logvar0=0.0, num_steps=200)
    finite = torch.isfinite(got)
    assert not finite[-1] and finite[:-1].all(), (
        "starting at mu0=1e300 with strength=3, lr=1, |mu| doubles each step and overflows: the path should end "
        f"with the first non-finite value and stop there; got {got.shape[0]} values, last {got[-1].item()}")
    assert got.shape[0] < 201, "after the first non-finite value the loop should stop"


# ----------------------------------------------------------------------------- 6.8 largest_stable_strength
@pytest.mark.exercise("6.8")
@pytest.mark.points(2)
@pytest.mark.parametrize("lr", [1.0, 0.25, 3.0])
def test_stable_strength_is_two_over_lr(exercise, lr):
    """The largest curvature of w * KL at its minimum is w (along mu); SGD converges while lr * curvature < 2."""
    got = exercise("6.8").largest_stable_strength(lr)
    assert isinstance(got, (float, int)) or (isinstance(got, torch.Tensor) and got.numel() == 1), (
        f"largest_stable_strength should return a number; got {got!r}")
    got = float(got)
    assert got == pytest.approx(2.0 / lr, rel=1e-9), (
        f"for lr={lr} the critical strength should be 2 / lr = {2.0 / lr:g}; got {got:g}"
        + (" - that is the limit along logvar, whose curvature is only w / 2: mu goes unstable first"
           if got == pytest.approx(4.0 / lr) else ""))


@pytest.mark.exercise("6.8")
@pytest.mark.points(1)
def test_stable_strength_separates_converging_from_diverging_runs(exercise):
    """Just below the answer torch's SGD converges; just above, |mu| grows."""
    lr = 0.4
    w_star = float(exercise("6.8").largest_stable_strength(lr))
    below = _torch_sgd_mu(0.95 * w_star, lr, 1.0, 0.0, 200)
    above = _torch_sgd_mu(1.05 * w_star, lr, 1.0, 0.0, 200)
    assert abs(below[-1]) < 1e-3 and abs(above[-1]) > 10, (
        f"with lr={lr}, SGD at 0.95 * {w_star:g} should converge and at 1.05 * {w_star:g} diverge; got |mu| after "
        f"200 steps {abs(below[-1]):.3g} and {abs(above[-1]):.3g}")
