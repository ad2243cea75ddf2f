"""Toy models of the course: a linear model, an MLP, a tiny causal language model and a
rank-d bigram language model (the model family of the scaling-law notebook).

They are small on purpose: every notebook trains them in seconds on a laptop CPU, so a slider
can start a fresh run while the class watches.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import (DEPTH_MAX, SIZE_MAX, check_choice, check_model_size, check_number, check_relation,
                          check_tensor, check_token_ids, check_type)

__all__ = ["LinearModel", "MLP", "TinyCausalLM", "FactorizedBigram", "count_params", "ACTIVATIONS"]

# Name -> module class, so a notebook slider or a config string can pick an activation.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "identity": nn.Identity,
}


def count_params(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of any model.

    Example:
        >>> count_params(LinearModel(3, 1))
        4
    """
    check_type("model", model, nn.Module, where="count_params", expected="torch.nn.Module")
    check_type("trainable_only", trainable_only, bool, where="count_params")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class LinearModel(nn.Module):
    """``y_hat = X @ W.T + b``: linear regression, or logistic / softmax regression when its
    outputs are read as logits.

    Args:
        in_features (int): input size D.
        out_features (int): output size, default 1.

    Shape: ``(N, D) -> (N, out_features)``.

    Example:
        >>> LinearModel(2, 1)(torch.zeros(5, 2)).shape
        torch.Size([5, 1])
    """

    def __init__(self, in_features: int, out_features: int = 1):
        super().__init__()
        check_number("in_features", in_features, where="LinearModel", low=1, high=SIZE_MAX, integer=True)
        check_number("out_features", out_features, where="LinearModel", low=1, high=SIZE_MAX, integer=True)
        check_model_size(in_features * out_features, where="LinearModel", in_features=in_features,
                         out_features=out_features)
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.linear(X)


class MLP(nn.Module):
    """A multi-layer perceptron: ``depth`` hidden layers of ``width`` units.

    Each hidden layer is Linear -> activation -> Dropout. ``depth=0`` is a linear model, which
    makes "capacity" a single slider: depth and width.

    Args:
        in_features (int): input size D.
        out_features (int): output size (1 for regression, C logits for C classes).
        width (int): units per hidden layer. Default 64.
        depth (int): number of hidden layers. Default 2.
        activation (str): one of ``ACTIVATIONS``. Default ``"relu"``.
        dropout (float): dropout probability in [0, 1) after each hidden activation. Default 0.
            ``fit(dropout=...)`` can change it later, even while training runs.

    Shape: ``(N, D) -> (N, out_features)``.

    Example:
        >>> MLP(2, 1, width=8, depth=2)(torch.zeros(4, 2)).shape
        torch.Size([4, 1])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width: int = 64,
        depth: int = 2,
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__()
        where = "MLP"
        check_number("in_features", in_features, where=where, low=1, high=SIZE_MAX, integer=True)
        check_number("out_features", out_features, where=where, low=1, high=SIZE_MAX, integer=True)
        check_number("width", width, where=where, low=1, high=SIZE_MAX, integer=True)
        check_number("depth", depth, where=where, low=0, high=DEPTH_MAX, integer=True)
        n = in_features * out_features if depth == 0 else (in_features + (depth - 1) * width + out_features) * width
        check_model_size(n, where=where, in_features=in_features, out_features=out_features, width=width, depth=depth)
        check_choice("activation", activation, ACTIVATIONS, where=where)
        check_number("dropout", dropout, where=where, low=0.0, high=1.0, high_open=True)
        layers: list[nn.Module] = []
        size = in_features
        for _ in range(depth):
            layers += [nn.Linear(size, width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            size = width
        layers.append(nn.Linear(size, out_features))
        self.net = nn.Sequential(*layers)
        self.config = dict(in_features=in_features, out_features=out_features, width=width,
                           depth=depth, activation=activation, dropout=dropout)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)




class _Block(nn.Module):
    """One pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)  # 3 x (B, T, C)
        # (B, T, C) -> (B, heads, T, C/heads): each head attends in its own subspace.
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))
        # is_causal=True: position t sees positions <= t only, so it cannot peek at its target.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout.p if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        x = x + self.dropout(self.proj(y))
        return x + self.dropout(self.mlp(self.ln2(x)))


class TinyCausalLM(nn.Module):
    """A tiny GPT: token + position embeddings, ``n_layers`` causal transformer blocks, and an
    output layer tied to the token embedding.

    Args:
        vocab_size (int): V, number of tokens.
        d_model (int): width of the residual stream. Default 64.
        n_layers (int): number of blocks. Default 2.
        n_heads (int): attention heads; must divide ``d_model``. Default 4.
        context (int): longest sequence the position embedding covers. Default 64.
        dropout (float): dropout in [0, 1). Default 0.

    Shape: tokens ``(B, T)`` int64 with ``T <= context`` -> logits ``(B, T, V)``; the logits at
    position t predict token t + 1 (see ``course_lib.losses.causal_lm_loss``).

    Example:
        >>> lm = TinyCausalLM(vocab_size=16, d_model=32, n_layers=1, n_heads=2, context=8)
        >>> lm(torch.zeros(3, 8, dtype=torch.long)).shape
        torch.Size([3, 8, 16])

    References:
        Radford et al., Language Models are Unsupervised Multitask Learners (GPT-2), 2019.
        Kaplan et al., Scaling Laws for Neural Language Models, arXiv 2001.08361 (how N is counted).
    """

    def __init__(self, vocab_size: int, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 context: int = 64, dropout: float = 0.0):
        super().__init__()
        where = "TinyCausalLM"
        check_number("vocab_size", vocab_size, where=where, low=2, high=SIZE_MAX, integer=True)
        check_number("d_model", d_model, where=where, low=1, high=SIZE_MAX, integer=True)
        check_number("n_layers", n_layers, where=where, low=0, high=DEPTH_MAX, integer=True)
        check_number("n_heads", n_heads, where=where, low=1, high=d_model, integer=True)
        check_number("context", context, where=where, low=1, high=SIZE_MAX, integer=True)
        check_model_size((vocab_size + context + 12 * n_layers * d_model) * d_model, where=where,
                         vocab_size=vocab_size, d_model=d_model, n_layers=n_layers, context=context)
        check_number("dropout", dropout, where=where, low=0.0, high=1.0, high_open=True)
        check_relation(d_model % n_heads == 0, "'d_model' must be divisible by 'n_heads'",
                       where=where, d_model=d_model, n_heads=n_heads)
        self.context = context
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(context, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, dropout) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying, as in GPT-2
        # GPT-2's init (std 0.02): with N(0, 1) embeddings the tied output layer would start
        # with huge logits and a first loss far above log V, the loss of a uniform guess.
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        self.config = dict(vocab_size=vocab_size, d_model=d_model, n_layers=n_layers,
                           n_heads=n_heads, context=context, dropout=dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tensor("tokens", tokens, where="TinyCausalLM.forward", ndim=2, floating=False, shape_hint="(B, T)")
        check_token_ids("tokens", tokens, self.tok_emb.num_embeddings, where="TinyCausalLM.forward")
        B, T = tokens.shape
        check_relation(T <= self.context, "the sequence length T must be <= 'context'",
                       where="TinyCausalLM.forward", T=T, context=self.context)
        pos = torch.arange(T, device=tokens.device)  # (T,)
        x = self.drop(self.tok_emb(tokens) + self.pos_emb(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))  # (B, T, V)

    def num_params(self, exclude_embeddings: bool = True) -> int:
        """Parameter count N. With ``exclude_embeddings=True`` (the default) the token and
        position embeddings are left out, as Kaplan et al. count N; the output layer is tied
        to the token embedding, so it is left out with it. N is then about
        ``12 * n_layers * d_model**2``.
        """
        n = count_params(self)  # tied weights are counted once by .parameters()
        if exclude_embeddings:
            n -= self.tok_emb.weight.numel() + self.pos_emb.weight.numel()
        return n


class FactorizedBigram(nn.Module):
    """A rank-``d`` bigram language model: ``logits[x] = embed[x] @ unembed + bias``.

    It predicts the next token from the previous one only, through a ``d``-dimensional
    bottleneck: the (V, V) table of logits has rank at most ``d`` (plus a bias row). That makes
    ``d`` a clean "model size" knob for the scaling-law notebook: on ``MarkovLanguage`` a
    rank-``d`` model can capture only about the first ``d`` directions of the chain's logit
    spectrum, and with ``d = V`` it can represent the chain exactly. Because the whole model is
    a (V, V) table, its loss on infinitely much data is computed exactly by
    ``MarkovLanguage.population_cross_entropy(model.log_probs())``.

    Args:
        vocab_size (int): V (>= 2).
        rank (int): d (>= 1), the width of the bottleneck.

    Shape: previous tokens ``(...)`` int64 -> logits ``(..., V)``.

    Attributes:
        num_params (int): ``N = 2 V d + V`` (embedding, unembedding, bias).

    Example:
        >>> m = FactorizedBigram(vocab_size=8, rank=2)
        >>> m(torch.tensor([0, 3])).shape, m.num_params, m.log_probs().shape
        (torch.Size([2, 8]), 40, torch.Size([8, 8]))

    References:
        Bengio et al., A Neural Probabilistic Language Model, JMLR 2003 (low-rank next-token tables).
    """

    def __init__(self, vocab_size: int, rank: int):
        super().__init__()
        where = "FactorizedBigram"
        V = check_number("vocab_size", vocab_size, where=where, low=2, high=SIZE_MAX, integer=True)
        d = check_number("rank", rank, where=where, low=1, high=SIZE_MAX, integer=True)
        check_model_size(V * (2 * d + 1), where=where, vocab_size=V, rank=d)
        self.embed = nn.Parameter(torch.randn(V, d))  # (V, d), one vector per previous token
        # Zero unembedding: the model starts at a uniform guess (loss log V) whatever d is,
        # so models of different sizes start from the same loss.
        self.unembed = nn.Parameter(torch.zeros(d, V))  # (d, V)
        self.bias = nn.Parameter(torch.zeros(V))  # (V,), learns the unigram frequencies
        self.config = dict(vocab_size=V, rank=d)

    @property
    def num_params(self) -> int:
        return count_params(self)

    def forward(self, prev: torch.Tensor) -> torch.Tensor:
        check_tensor("prev", prev, where="FactorizedBigram.forward", floating=False, shape_hint="(...,) token ids")
        check_token_ids("prev", prev, self.embed.shape[0], where="FactorizedBigram.forward")
        return self.embed[prev] @ self.unembed + self.bias  # (..., d) @ (d, V) -> (..., V)

    @torch.no_grad()
    def log_probs(self) -> torch.Tensor:
        """The whole model as a table: (V, V) float64 ``log q(next | prev)``, row = prev."""
        logits = self.embed.double() @ self.unembed.double() + self.bias.double()  # (V, V)
        return torch.log_softmax(logits, dim=1).cpu()
