"""Tests of course_lib.models: shapes, closed-form parameter counts, causality, tying, messages."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn as nn

from course_lib.losses import causal_lm_loss
from course_lib.models import ACTIVATIONS, MLP, LinearModel, TinyCausalLM, count_params


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _tokens(vocab_size, B, T, seed=0):
    return torch.randint(0, vocab_size, (B, T), generator=torch.Generator().manual_seed(seed))


# ---- shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("in_features, out_features", [(1, 1), (3, 2), (5, 10)])
def test_linear_model_shape(in_features, out_features):
    torch.manual_seed(0)
    y_hat = LinearModel(in_features, out_features)(_randn(7, in_features))
    assert y_hat.shape == (7, out_features)


def test_linear_model_is_xw_plus_b():
    # Oracle: the model is exactly X @ W.T + b with its own weights.
    torch.manual_seed(0)
    model = LinearModel(3, 2)
    X = _randn(5, 3)
    expected = X @ model.linear.weight.T + model.linear.bias
    torch.testing.assert_close(model(X), expected)


@pytest.mark.parametrize("width, depth", [(1, 0), (8, 0), (8, 1), (16, 2), (4, 5)])
def test_mlp_shape_and_layer_count(width, depth):
    torch.manual_seed(0)
    model = MLP(3, 2, width=width, depth=depth)
    assert model(_randn(6, 3)).shape == (6, 2)
    # depth hidden layers + the output layer: depth + 1 Linear modules.
    n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
    assert n_linear == depth + 1, f"depth={depth} should give {depth + 1} Linear layers, got {n_linear}"


def test_mlp_depth_zero_is_linear():
    torch.manual_seed(0)
    model = MLP(4, 3, width=99, depth=0)
    (layer,) = model.net
    X = _randn(5, 4)
    torch.testing.assert_close(model(X), X @ layer.weight.T + layer.bias)


@pytest.mark.parametrize("T", [1, 5, 8])
def test_tiny_causal_lm_shape(T):
    torch.manual_seed(0)
    lm = TinyCausalLM(vocab_size=11, d_model=16, n_layers=2, n_heads=4, context=8)
    assert lm(_tokens(11, 3, T)).shape == (3, T, 11)


# ---- parameter counts ------------------------------------------------------------------------


@pytest.mark.parametrize("in_features, out_features, width, depth",
                         [(1, 1, 8, 0), (3, 2, 8, 1), (2, 1, 16, 2), (5, 4, 7, 4)])
def test_mlp_param_count_closed_form(in_features, out_features, width, depth):
    sizes = [in_features] + [width] * depth + [out_features]
    expected = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))  # weights + biases per layer
    model = MLP(in_features, out_features, width=width, depth=depth)
    assert count_params(model) == expected


@pytest.mark.parametrize("V, d, n_layers, n_heads, context",
                         [(16, 32, 1, 2, 8), (50, 64, 2, 4, 16), (7, 8, 0, 1, 5), (100, 48, 3, 6, 32)])
def test_tiny_causal_lm_param_count_closed_form(V, d, n_layers, n_heads, context):
    lm = TinyCausalLM(V, d_model=d, n_layers=n_layers, n_heads=n_heads, context=context)
    # Per block: ln1 2d, qkv 3d^2+3d, proj d^2+d, ln2 2d, mlp (4d^2+4d) + (4d^2+d); final LN 2d.
    per_block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d)
    assert per_block == 12 * d * d + 13 * d
    non_embedding = n_layers * per_block + 2 * d
    assert lm.num_params(exclude_embeddings=True) == non_embedding
    assert lm.num_params() == non_embedding  # the default excludes embeddings, as Kaplan et al. do
    # The tied output layer adds nothing; token and position embeddings add V*d + context*d.
    assert lm.num_params(exclude_embeddings=False) == non_embedding + V * d + context * d


@pytest.mark.parametrize("make", [
    lambda: LinearModel(3, 2),
    lambda: MLP(2, 3, width=5, depth=2),
    lambda: TinyCausalLM(13, d_model=16, n_layers=1, n_heads=2, context=4),
])
def test_count_params_is_sum_of_numel(make):
    model = make()
    assert count_params(model) == sum(p.numel() for p in model.parameters())
    assert count_params(model, trainable_only=False) == sum(p.numel() for p in model.parameters())


def test_count_params_trainable_only():
    model = MLP(2, 1, width=4, depth=1)
    first = model.net[0]
    first.weight.requires_grad_(False)
    total = sum(p.numel() for p in model.parameters())
    assert count_params(model) == total - first.weight.numel()
    assert count_params(model, trainable_only=False) == total


# ---- the causal LM ---------------------------------------------------------------------------


def test_causal_lm_does_not_look_ahead():
    torch.manual_seed(0)
    V, T = 20, 10
    lm = TinyCausalLM(V, d_model=32, n_layers=2, n_heads=4, context=T).eval()
    tokens = _tokens(V, 3, T, seed=1)
    with torch.no_grad():
        logits = lm(tokens)
        for t in range(T - 1):
            changed = tokens.clone()
            changed[:, t + 1:] = (tokens[:, t + 1:] + 1 + _tokens(V - 1, 3, T - t - 1, seed=t)) % V
            assert not torch.equal(changed, tokens)
            new = lm(changed)
            assert torch.equal(new[:, :t + 1], logits[:, :t + 1]), (
                f"changing tokens after position {t} changed the logits at positions <= {t}")
            # And the future does see the change (otherwise the test would prove nothing).
            assert not torch.equal(new[:, t + 1:], logits[:, t + 1:])


def test_causal_lm_sees_positions():
    # A sequence of one repeated token: without the position embedding every position would
    # attend over identical values and give identical logits.
    torch.manual_seed(0)
    lm = TinyCausalLM(10, d_model=16, n_layers=1, n_heads=2, context=6).eval()
    with torch.no_grad():
        logits = lm(torch.full((1, 6), 3))
    assert not torch.allclose(logits[0, 0], logits[0, 1])


def test_weight_tying():
    lm = TinyCausalLM(10, d_model=8, n_layers=1, n_heads=2, context=4)
    assert lm.head.weight is lm.tok_emb.weight
    # Tied: one parameter object, counted once.
    ids = [id(p) for p in lm.parameters()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("V", [16, 64, 128])
def test_initial_loss_is_about_log_vocab(V):
    torch.manual_seed(0)
    lm = TinyCausalLM(V, d_model=32, n_layers=2, n_heads=4, context=16)
    tokens = _tokens(V, 32, 16, seed=1)
    with torch.no_grad():
        loss = causal_lm_loss(lm(tokens), tokens).item()
    assert abs(loss - math.log(V)) < 0.1, f"first loss should be about log V = {math.log(V):.3f}; got {loss:.3f}"


# ---- dropout and activations -----------------------------------------------------------------


def test_mlp_dropout_train_vs_eval():
    torch.manual_seed(0)
    model = MLP(4, 3, width=64, depth=2, dropout=0.5)
    X = _randn(8, 4)
    model.train()
    assert not torch.equal(model(X), model(X)), "dropout 0.5 in train mode should give different outputs"
    model.eval()
    assert torch.equal(model(X), model(X))


def test_mlp_without_dropout_is_deterministic_in_train_mode():
    torch.manual_seed(0)
    model = MLP(4, 3, width=16, depth=2).train()
    X = _randn(8, 4)
    assert torch.equal(model(X), model(X))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_activation_builds_and_runs(name):
    torch.manual_seed(0)
    model = MLP(3, 2, width=4, depth=2, activation=name)
    assert isinstance(model.net[1], ACTIVATIONS[name]) and isinstance(model.net[4], ACTIVATIONS[name])
    y_hat = model(_randn(5, 3))
    assert y_hat.shape == (5, 2) and torch.isfinite(y_hat).all()


# ---- messages --------------------------------------------------------------------------------


@pytest.mark.parametrize("make, error, message", [
    (lambda: MLP(2, 1, width=0), ValueError, "MLP(): 'width' must be an int in [1, 10000000], got width=0"),
    (lambda: MLP(2, 1, depth=-1), ValueError, "MLP(): 'depth' must be an int in [0, 256], got depth=-1"),
    (lambda: MLP(2, 1, width=2.5), TypeError, "MLP(): 'width' must be an int in [1, 10000000], got width=2.5 of type float"),
    (lambda: MLP(2, 1, activation="swish"), ValueError,
     "MLP(): 'activation' must be one of 'relu', 'gelu', 'tanh', 'sigmoid', 'leaky_relu', 'silu', "
     "'identity', got activation='swish'"),
    (lambda: MLP(2, 1, dropout=1.0), ValueError, "MLP(): 'dropout' must be a float in [0, 1), got dropout=1.0"),
    (lambda: LinearModel(0), ValueError, "LinearModel(): 'in_features' must be an int in [1, 10000000], got in_features=0"),
    (lambda: TinyCausalLM(10, d_model=30, n_heads=4), ValueError,
     "TinyCausalLM(): 'd_model' must be divisible by 'n_heads', got d_model=30, n_heads=4"),
    (lambda: TinyCausalLM(1), ValueError, "TinyCausalLM(): 'vocab_size' must be an int in [2, 10000000], got vocab_size=1"),
    (lambda: TinyCausalLM(10, dropout=1.0), ValueError,
     "TinyCausalLM(): 'dropout' must be a float in [0, 1), got dropout=1.0"),
])
def test_constructor_messages(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_float_tokens_message():
    lm = TinyCausalLM(10, d_model=8, n_layers=1, n_heads=2, context=4)
    with pytest.raises(TypeError, match=re.escape(
            "TinyCausalLM.forward(): 'tokens' must be an integer tensor, got tokens.dtype=torch.float32")):
        lm(torch.zeros(2, 4))


def test_tokens_wrong_ndim_message():
    lm = TinyCausalLM(10, d_model=8, n_layers=1, n_heads=2, context=4)
    with pytest.raises(ValueError, match=re.escape("'tokens' must have 2 dimension(s) (B, T), got tokens.shape=(4,)")):
        lm(torch.zeros(4, dtype=torch.long))


def test_sequence_longer_than_context_message():
    lm = TinyCausalLM(10, d_model=8, n_layers=1, n_heads=2, context=4)
    with pytest.raises(ValueError, match=re.escape(
            "TinyCausalLM.forward(): the sequence length T must be <= 'context', got T=5, context=4")):
        lm(torch.zeros(2, 5, dtype=torch.long))


# ---- the rank-d bigram of the scaling notebook --------------------------------------------------


@pytest.mark.parametrize("V, d", [(8, 1), (16, 3), (64, 64)])
def test_factorized_bigram_param_count_closed_form(V, d):
    from course_lib.models import FactorizedBigram

    m = FactorizedBigram(V, d)
    assert m.num_params == count_params(m) == 2 * V * d + V


def test_factorized_bigram_logits_and_table_agree():
    from course_lib.models import FactorizedBigram

    torch.manual_seed(0)
    m = FactorizedBigram(8, 3)
    with torch.no_grad():
        m.unembed.normal_()
    prev = torch.tensor([0, 5, 5, 7])
    table = m.log_probs()  # (V, V) float64
    assert table.shape == (8, 8) and table.dtype == torch.float64
    assert torch.allclose(table.exp().sum(1), torch.ones(8, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(table[prev], torch.log_softmax(m(prev).double(), dim=1), atol=1e-6)
    # Rank at most d: the logits table (bias removed) has rank 3.
    assert torch.linalg.matrix_rank(m.embed @ m.unembed).item() == 3


def test_full_rank_bigram_can_represent_the_chain_exactly():
    # Oracle: with d = V, embed = I and unembed = log P, the model *is* the chain, so its
    # population cross-entropy is the entropy rate.
    from course_lib.language import MarkovLanguage
    from course_lib.models import FactorizedBigram

    lang = MarkovLanguage(vocab_size=16, seed=3)
    m = FactorizedBigram(16, 16)
    with torch.no_grad():
        m.embed.copy_(torch.eye(16))
        m.unembed.copy_(lang.log_transition.float())
    assert abs(lang.population_cross_entropy(m.log_probs()) - lang.entropy_rate) < 1e-5


@pytest.mark.parametrize("kwargs, match", [
    (dict(vocab_size=1, rank=2), r"FactorizedBigram\(\): 'vocab_size' must be an int in \[2, 10000000\], got vocab_size=1"),
    (dict(vocab_size=8, rank=0), r"FactorizedBigram\(\): 'rank' must be an int in \[1, 10000000\], got rank=0"),
])
def test_factorized_bigram_bad_input(kwargs, match):
    from course_lib.models import FactorizedBigram

    with pytest.raises(ValueError, match=match):
        FactorizedBigram(**kwargs)
