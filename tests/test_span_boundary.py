"""Tests of course_lib.span_boundary: SpanBERT's span boundary objective.

Oracles: boundary pairs worked out by hand and by a plain loop over each row; the head's forward
against the same weights composed with torch.nn.functional; cross-entropy from torch; the span
posterior against brute-force enumeration of every hidden sequence of a tiny Markov chain.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.language import MarkovLanguage
from course_lib.span_boundary import (SpanBoundaryHead, SpanEncoder, SpanTargets, mlm_sbo_loss, span_boundary_pairs,
                                      span_posterior_loss, train_span_mlm)


def _mask(s: str) -> torch.Tensor:
    """'.xx.x' -> a bool row, x = masked."""
    return torch.tensor([c == "x" for c in s])


# ---- span_boundary_pairs -----------------------------------------------------------------------

@pytest.mark.parametrize("row, positions, left, right, offset", [
    ("..xxx..", [2, 3, 4], [1, 1, 1], [5, 5, 5], [0, 1, 2]),          # one span inside the row
    ("xx.....", [0, 1], [-1, -1], [2, 2], [0, 1]),                    # at the start: left edge is -1
    (".....xx", [5, 6], [4, 4], [7, 7], [0, 1]),                      # at the end: right edge is T = 7
    ("x.x", [0, 2], [-1, 1], [1, 3], [0, 0]),                         # single tokens at both edges
    (".xx.x.", [1, 2, 4], [0, 0, 3], [3, 3, 5], [0, 1, 0]),           # two spans one token apart
    ("xxxx", [0, 1, 2, 3], [-1] * 4, [4] * 4, [0, 1, 2, 3]),          # everything masked
    ("....", [], [], [], []),                                         # nothing masked
])
def test_boundary_pairs_by_hand(row, positions, left, right, offset):
    t = span_boundary_pairs(_mask(row))
    assert t.position.tolist() == positions
    assert t.left.tolist() == left
    assert t.right.tolist() == right
    assert t.offset.tolist() == offset
    assert t.batch.tolist() == [0] * len(positions)
    assert all(v.dtype == torch.int64 for v in t)


def _loop_pairs(masked: torch.Tensor):
    """The definition, one token at a time: walk left and right to the first unmasked position."""
    out = []
    for b, row in enumerate(masked.tolist()):
        for i, m in enumerate(row):
            if m:
                s = i
                while s > 0 and row[s - 1]:
                    s -= 1
                e = i
                while e < len(row) - 1 and row[e + 1]:
                    e += 1
                out.append((b, i, s - 1, e + 1, i - s))
    return out


def test_boundary_pairs_match_the_definition_on_random_batches():
    g = torch.Generator().manual_seed(0)
    for p in (0.1, 0.5, 0.9):
        masked = torch.rand(16, 23, generator=g) < p
        t = span_boundary_pairs(masked)
        assert list(zip(*(v.tolist() for v in t))) == _loop_pairs(masked)


def test_boundary_pairs_are_in_the_order_of_labels_masked():
    labels = torch.tensor([[-100, 5, 6, -100], [7, -100, -100, 8]])
    t = span_boundary_pairs(labels != -100)
    assert labels[t.batch, t.position].tolist() == labels[labels != -100].tolist() == [5, 6, 7, 8]


@pytest.mark.parametrize("bad, error, match", [
    (torch.zeros(2, 3, dtype=torch.int64), ValueError, r"'masked' must be a bool tensor"),
    (torch.zeros(2, 3, 4, dtype=torch.bool), ValueError, r"'masked' must have 1 or 2 dimension"),
    ([True, False], TypeError, r"'masked' must be a torch.Tensor"),
])
def test_boundary_pairs_messages(bad, error, match):
    with pytest.raises(error, match=r"span_boundary_pairs\(\): " + match):
        span_boundary_pairs(bad)


# ---- SpanBoundaryHead --------------------------------------------------------------------------

def _plain_head(head: SpanBoundaryHead, hidden: torch.Tensor, t: SpanTargets) -> torch.Tensor:
    """The paper's eq. 1-2 with torch.nn.functional and the head's own weights."""
    def side(pos, edge):
        inside = (pos >= 0) & (pos < hidden.shape[1])
        gathered = hidden[t.batch, pos.clamp(0, hidden.shape[1] - 1)]
        return torch.where(inside[:, None], gathered, edge.expand_as(gathered))

    lin1, _, ln1, lin2, _, ln2 = head.ffn
    h0 = torch.cat([side(t.left, head.edge[0]), side(t.right, head.edge[1]), head.position.weight[t.offset]], dim=1)
    h1 = F.layer_norm(F.gelu(F.linear(h0, lin1.weight, lin1.bias)), ln1.normalized_shape, ln1.weight, ln1.bias)
    y = F.layer_norm(F.gelu(F.linear(h1, lin2.weight, lin2.bias)), ln2.normalized_shape, ln2.weight, ln2.bias)
    return F.linear(y, head.decoder.weight, head.decoder.bias)


def _trained_looking_head(C=6, V=7, P=4, seed=0):
    torch.manual_seed(seed)
    head = SpanBoundaryHead(C, V, max_span_len=8, position_dim=P)
    with torch.no_grad():  # move LayerNorm off its (1, 0) start, so its affine part is tested too
        for m in head.ffn:
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.normal_()
                m.bias.normal_()
    return head


def test_head_forward_matches_a_plain_torch_composition():
    head = _trained_looking_head()
    masked = torch.stack([_mask("xx..xxx.x"), _mask(".x.xx...x")])
    hidden = torch.randn(2, 9, 6)
    t = span_boundary_pairs(masked)
    got = head(hidden, t)
    assert got.shape == (int(masked.sum()), 7)
    torch.testing.assert_close(got, _plain_head(head, hidden, t))


def test_head_is_a_two_layer_linear_gelu_layernorm_ffn():
    head = _trained_looking_head()
    kinds = [type(m).__name__ for m in head.ffn]
    assert kinds == ["Linear", "GELU", "LayerNorm", "Linear", "GELU", "LayerNorm"]
    assert head.ffn[0].in_features == 2 * 6 + 4  # [x_{s-1}; x_{e+1}; p]


def test_gradients_reach_the_encoder_only_at_the_boundary_positions():
    head = _trained_looking_head()
    masked = torch.stack([_mask("..xxx...x."), _mask("xx.....x..")])
    hidden = torch.randn(2, 10, 6, requires_grad=True)
    t = span_boundary_pairs(masked)
    head(hidden, t).pow(2).sum().backward()
    touched = hidden.grad.abs().sum(dim=2) > 0  # (B, T)
    want = torch.zeros(2, 10, dtype=torch.bool)
    want[0, [1, 5, 7, 9]] = True   # spans 2..4 and 8: boundaries 1, 5 and 7, 9
    want[1, [2, 6, 8]] = True      # span 0..1 (left is the edge) and span 7: boundaries 2 and 6, 8
    assert torch.equal(touched, want), f"gradient at {touched.nonzero().tolist()}, want {want.nonzero().tolist()}"
    assert head.edge.grad is not None and head.edge.grad[0].abs().sum() > 0  # the left edge was read (row 1)
    assert head.edge.grad[1].abs().sum() == 0  # no span touches the right end


def test_head_shares_a_decoder_it_is_given():
    enc = SpanEncoder(vocab_size=5, d_model=8)
    head = SpanBoundaryHead(8, 5, decoder=enc.mlm_head)
    assert head.decoder is enc.mlm_head


def test_head_messages():
    head = SpanBoundaryHead(4, 3, max_span_len=2)
    t = span_boundary_pairs(_mask(".xxx."))
    with pytest.raises(ValueError, match=r"SpanBoundaryHead.forward\(\): every span must be shorter than "
                                         r"'max_span_len'.*longest_offset=2.*max_span_len=2"):
        head(torch.randn(1, 5, 4), t)
    with pytest.raises(ValueError, match=r"'hidden' must have d_model features.*features=3"):
        head(torch.randn(1, 5, 3), span_boundary_pairs(_mask(".x...")))
    with pytest.raises(ValueError, match=r"SpanBoundaryHead\(\): 'd_model' must be an int >= 1, got d_model=0"):
        SpanBoundaryHead(0, 3)


# ---- losses ------------------------------------------------------------------------------------

def test_mlm_sbo_loss_is_the_sum_of_two_torch_cross_entropies():
    g = torch.Generator().manual_seed(1)
    labels = torch.full((2, 6), -100)
    labels[0, 1:3] = torch.tensor([1, 4])
    labels[1, 5] = 2
    t = span_boundary_pairs(labels != -100)
    mlm_logits, sbo_logits = torch.randn(2, 6, 5, generator=g), torch.randn(3, 5, generator=g)
    loss, mlm, sbo = mlm_sbo_loss(mlm_logits, sbo_logits, labels, t, sbo_weight=0.5)
    want_mlm = F.cross_entropy(mlm_logits[labels != -100], labels[labels != -100])
    want_sbo = F.cross_entropy(sbo_logits, torch.tensor([1, 4, 2]))
    torch.testing.assert_close(mlm, want_mlm)
    torch.testing.assert_close(sbo, want_sbo)
    torch.testing.assert_close(loss, want_mlm + 0.5 * want_sbo)
    with pytest.raises(ValueError, match=r"mlm_sbo_loss\(\): 'sbo_logits' needs one row per masked token.*rows=2"):
        mlm_sbo_loss(mlm_logits, sbo_logits[:2], labels, t)


def _brute_force_posterior_loss(lang, tokens, masked):
    """-log p(x_i | visible tokens), by summing the chain's probability over every filling of the masks."""
    P, pi = lang.transition, lang.stationary
    total, n = 0.0, 0
    for b in range(tokens.shape[0]):
        x, m = tokens[b].tolist(), masked[b].tolist()
        hidden = [i for i, v in enumerate(m) if v]
        joint = {}
        for fill in itertools.product(range(lang.vocab_size), repeat=len(hidden)):
            seq = list(x)
            for i, v in zip(hidden, fill):
                seq[i] = v
            p = float(pi[seq[0]]) * math.prod(float(P[a, c]) for a, c in zip(seq, seq[1:]))
            joint[fill] = p
        z = sum(joint.values())
        for k, i in enumerate(hidden):
            marg = sum(p for fill, p in joint.items() if fill[k] == x[i])
            total -= math.log(marg / z)
            n += 1
    return total / n


def test_span_posterior_loss_matches_brute_force_enumeration():
    lang = MarkovLanguage(vocab_size=3, scale=3.0, seed=1)
    tokens = lang.sample(3, 6, seed=2)
    masked = torch.stack([_mask(".xx.x."), _mask("xx..xx"), _mask("..xxx.")])  # middle, both edges, a long span
    assert span_posterior_loss(lang, tokens, masked) == pytest.approx(
        _brute_force_posterior_loss(lang, tokens, masked), rel=1e-10)


# ---- the experiment ----------------------------------------------------------------------------

def test_train_span_mlm_is_reproducible_and_weight_zero_leaves_the_head_untrained():
    lang = MarkovLanguage(vocab_size=8, seed=0)
    kw = dict(num_steps=4, batch_size=8, seq_len=10, eval_size=8, device="cpu", seed=3)
    a, b = train_span_mlm(lang, sbo_weight=1.0, **kw), train_span_mlm(lang, sbo_weight=1.0, **kw)
    assert a.mlm == b.mlm and a.eval_mlm == b.eval_mlm
    plain = train_span_mlm(lang, sbo_weight=0.0, **kw)
    assert plain.mlm[0] == a.mlm[0]  # same start: same weights, text and masks
    assert plain.mlm[1:] != a.mlm[1:]  # then the objectives differ
    assert a.floor == plain.floor and a.floor < math.log(8)


def test_train_span_mlm_messages():
    lang = MarkovLanguage(vocab_size=8, seed=0)
    with pytest.raises(ValueError, match=r"train_span_mlm\(\): 'sbo_weight' must be a float >= 0, got sbo_weight=-1"):
        train_span_mlm(lang, sbo_weight=-1)
    with pytest.raises(ValueError, match=r"train_span_mlm\(\): 'mask_ratio' must be a float in \(0, 1\)"):
        train_span_mlm(lang, mask_ratio=1.0)
