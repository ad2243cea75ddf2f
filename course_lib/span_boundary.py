"""SpanBERT's span boundary objective (SBO): predict a masked span from the tokens around it.

SpanBERT masks contiguous spans (:func:`course_lib.masking.span_mask`) and adds a second loss to
BERT's masked LM. Each masked token ``x_i`` of a span ``x_s .. x_e`` is predicted a second time,
from the encoder's outputs at the two **boundary** tokens just outside the span, ``x_{s-1}`` and
``x_{e+1}``, plus an embedding of its position inside the span, ``p_{i-s+1}``:

    h0 = [x_{s-1}; x_{e+1}; p_{i-s+1}]
    h1 = LayerNorm(GeLU(W1 h0))
    y  = LayerNorm(GeLU(W2 h1))            -> logits over the vocabulary

and the loss of the token is ``L_MLM(x_i) + L_SBO(x_i)``. The boundary outputs must therefore
carry what the whole span holds: the paper's argument for better span representations.

Here a "span" is a maximal run of masked positions: two touching spans are one span, as
:func:`course_lib.masking.span_mask` merges them. Sequences of the course have no ``[CLS]`` or
``[SEP]`` at their ends, so a span at an edge has its boundary *outside* the sequence (index -1
or T); :class:`SpanBoundaryHead` reads a learned edge vector there, the part those tokens play
in SpanBERT.

References:
    Joshi et al., *SpanBERT: Improving Pre-training by Representing and Predicting Spans*, 2019,
    arXiv 1907.10529, section 3.2 (the SBO head, eq. 1-2).
    Devlin et al., *BERT*, 2018, arXiv 1810.04805 (masked LM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_number, check_relation, check_seed, check_tensor, check_type
from .device import resolve_device
from .language import MarkovLanguage
from .masking import IGNORE_INDEX, span_mask

__all__ = ["SpanTargets", "span_boundary_pairs", "SpanBoundaryHead", "SpanEncoder", "mlm_sbo_loss",
           "span_posterior_loss", "SpanMLMHistory", "train_span_mlm"]


class SpanTargets(NamedTuple):
    """The boundary-pair inputs of the SBO, one entry per masked token (all int64, shape ``(N,)``).

    Attributes:
        batch (Tensor): the row of the masked token.
        position (Tensor): its position ``i``.
        left (Tensor): ``s - 1``, the position just before its span (-1 if the span starts the row).
        right (Tensor): ``e + 1``, the position just after its span (T if the span ends the row).
        offset (Tensor): ``i - s``, its place inside the span (0 for the span's first token); the
            paper's relative position ``p_{i-s+1}`` counts from 1, so ``offset`` is that minus one.
    """

    batch: torch.Tensor
    position: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    offset: torch.Tensor


def span_boundary_pairs(masked: torch.Tensor) -> SpanTargets:
    """The boundary positions and in-span offset of every masked token.

    A span is a maximal run of masked positions. For a masked position ``i`` inside the span
    ``s .. e``: ``left = s - 1``, ``right = e + 1``, ``offset = i - s``. Entries come in row-major
    order (row by row, left to right), the order of ``labels[masked]``.

    Args:
        masked (Tensor): bool, ``(T,)`` or ``(B, T)``: True where a token was masked (for a
            :class:`~course_lib.masking.MaskedTokens` ``out``: ``out.labels != -100``).

    Returns:
        SpanTargets: ``batch``, ``position``, ``left``, ``right``, ``offset``, each ``(N,)``
        with N the number of masked tokens (``batch`` is all 0 for a ``(T,)`` input).

    Example:
        >>> m = torch.tensor([False, True, True, False, True])
        >>> t = span_boundary_pairs(m)
        >>> t.position.tolist(), t.left.tolist(), t.right.tolist(), t.offset.tolist()
        ([1, 2, 4], [0, 0, 3], [3, 3, 5], [0, 1, 0])

    References:
        Joshi et al., *SpanBERT*, arXiv 1907.10529, section 3.2.
    """
    where = "span_boundary_pairs"
    check_tensor("masked", masked, where=where, ndim=(1, 2), shape_hint="(T,) or (B, T)")
    check_relation(masked.dtype == torch.bool, "'masked' must be a bool tensor (True where a token was masked)",
                   where=where, dtype=masked.dtype)
    rows = masked.view(1, -1) if masked.ndim == 1 else masked  # (B, T)
    B, T = rows.shape
    idx = torch.arange(T, device=rows.device).expand(B, T)  # (B, T)
    # 1. Left boundary: the last unmasked position at or before i (a running max; -1 if none).
    left = torch.where(rows, torch.full_like(idx, -1), idx).cummax(dim=1).values  # (B, T)
    # 2. Right boundary: the first unmasked position at or after i (a running min from the right; T if none).
    right = torch.where(rows, torch.full_like(idx, T), idx).flip(1).cummin(dim=1).values.flip(1)  # (B, T)
    b, i = rows.nonzero(as_tuple=True)  # (N,) each, row-major
    left, right = left[b, i], right[b, i]
    return SpanTargets(b, i, left, right, i - left - 1)


class SpanBoundaryHead(nn.Module):
    """SpanBERT's SBO head: a masked token from its span's two boundary outputs and its offset.

    ``h0 = [x_{s-1}; x_{e+1}; p_offset]`` (``2 * d_model + position_dim``), then two layers of
    ``Linear -> GeLU -> LayerNorm`` (width ``d_model``) and a linear decoder to the vocabulary.
    A boundary outside the sequence (-1 or T) reads a learned edge vector (``edge[0]`` on the
    left, ``edge[1]`` on the right).

    Args:
        d_model (int): width of the encoder's outputs.
        vocab_size (int): V, the number of classes of the decoder.
        max_span_len (int): offsets ``0 .. max_span_len - 1`` have a position embedding. Default: 32.
        position_dim (int, optional): width of the position embedding. Default: ``d_model``.
        decoder (nn.Module, optional): maps ``(N, d_model)`` to logits ``(N, V)``; pass the MLM's
            output layer to share it, as SpanBERT does. Default: a new ``nn.Linear(d_model, V)``.

    Shape: ``hidden (B, T, d_model)`` and :class:`SpanTargets` with N entries -> logits ``(N, V)``.

    Example:
        >>> head = SpanBoundaryHead(d_model=8, vocab_size=5)
        >>> targets = span_boundary_pairs(torch.tensor([[False, True, True, False]]))
        >>> head(torch.randn(1, 4, 8), targets).shape
        torch.Size([2, 5])

    References:
        Joshi et al., *SpanBERT*, arXiv 1907.10529, section 3.2, eq. 1-2.
    """

    def __init__(self, d_model: int, vocab_size: int, max_span_len: int = 32, position_dim: int | None = None,
                 decoder: nn.Module | None = None):
        super().__init__()
        where = "SpanBoundaryHead"
        check_number("d_model", d_model, where=where, low=1, integer=True)
        check_number("vocab_size", vocab_size, where=where, low=2, integer=True)
        check_number("max_span_len", max_span_len, where=where, low=1, integer=True)
        position_dim = d_model if position_dim is None else check_number("position_dim", position_dim, where=where,
                                                                           low=1, integer=True)
        check_type("decoder", decoder, (nn.Module, type(None)), where=where, expected="nn.Module or None")
        self.max_span_len = max_span_len
        self.position = nn.Embedding(max_span_len, position_dim)
        # Stand-ins for the encoder output just outside the sequence ([CLS] / [SEP] in SpanBERT).
        self.edge = nn.Parameter(0.02 * torch.randn(2, d_model))
        self.ffn = nn.Sequential(
            nn.Linear(2 * d_model + position_dim, d_model), nn.GELU(), nn.LayerNorm(d_model),
            nn.Linear(d_model, d_model), nn.GELU(), nn.LayerNorm(d_model),
        )
        self.decoder = nn.Linear(d_model, vocab_size) if decoder is None else decoder

    def forward(self, hidden: torch.Tensor, targets: SpanTargets) -> torch.Tensor:
        where = "SpanBoundaryHead.forward"
        check_tensor("hidden", hidden, where=where, ndim=3, floating=True, shape_hint="(B, T, d_model)")
        check_type("targets", targets, SpanTargets, where=where, expected="SpanTargets (from span_boundary_pairs)")
        if targets.offset.numel():
            check_relation(int(targets.offset.max()) < self.max_span_len,
                           "every span must be shorter than 'max_span_len'", where=where,
                           longest_offset=int(targets.offset.max()), max_span_len=self.max_span_len)
        B, _, C = hidden.shape
        check_relation(C == self.edge.shape[1], "'hidden' must have d_model features", where=where,
                       features=C, d_model=self.edge.shape[1])
        # 1. Pad the sequence with the two edge vectors: position p of the sequence is p + 1 here.
        edges = self.edge.to(hidden.dtype)
        padded = torch.cat([edges[0].expand(B, 1, C), hidden, edges[1].expand(B, 1, C)], dim=1)  # (B, T + 2, C)
        x_left = padded[targets.batch, targets.left + 1]  # (N, C): x_{s-1}
        x_right = padded[targets.batch, targets.right + 1]  # (N, C): x_{e+1}
        # 2. h0 = [x_{s-1}; x_{e+1}; p], then the two-layer FFN and the decoder.
        h0 = torch.cat([x_left, x_right, self.position(targets.offset)], dim=-1)  # (N, 2C + P)
        return self.decoder(self.ffn(h0))  # (N, V)


class SpanEncoder(nn.Module):
    """A tiny bidirectional transformer encoder with a masked-LM output layer.

    Token + position embeddings, ``n_layers`` pre-LayerNorm encoder layers (every position sees
    every other: no causal mask), a final LayerNorm; ``forward`` returns the hidden states, and
    ``mlm_head`` turns them into logits over the ``vocab_size`` real tokens.

    Args:
        vocab_size (int): number of real tokens V; the input ids may also be ``V`` (``[MASK]``).
        d_model (int): width. Default: 32.
        n_layers (int): encoder layers. Default: 2.
        n_heads (int): attention heads, dividing ``d_model``. Default: 2.
        context (int): longest sequence. Default: 64.

    Shape: tokens ``(B, T)`` int64 in ``[0, V]`` -> hidden ``(B, T, d_model)``.

    Example:
        >>> enc = SpanEncoder(vocab_size=8, d_model=16)
        >>> h = enc(torch.full((2, 6), 8))     # all [MASK]
        >>> h.shape, enc.mlm_head(h).shape
        (torch.Size([2, 6, 16]), torch.Size([2, 6, 8]))
    """

    def __init__(self, vocab_size: int, d_model: int = 32, n_layers: int = 2, n_heads: int = 2, context: int = 64):
        super().__init__()
        where = "SpanEncoder"
        check_number("vocab_size", vocab_size, where=where, low=2, integer=True)
        check_number("d_model", d_model, where=where, low=1, integer=True)
        check_number("n_layers", n_layers, where=where, low=1, integer=True)
        check_number("n_heads", n_heads, where=where, low=1, integer=True)
        check_number("context", context, where=where, low=2, integer=True)
        check_relation(d_model % n_heads == 0, "'d_model' must be divisible by 'n_heads'",
                       where=where, d_model=d_model, n_heads=n_heads)
        self.tok_emb = nn.Embedding(vocab_size + 1, d_model)  # + 1: the [MASK] id, vocab_size
        self.pos_emb = nn.Embedding(context, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, 4 * d_model, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(d_model)
        self.mlm_head = nn.Linear(d_model, vocab_size)
        self.config = dict(vocab_size=vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                           context=context)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        where = "SpanEncoder.forward"
        check_tensor("tokens", tokens, where=where, ndim=2, floating=False, shape_hint="(B, T)")
        check_relation(tokens.shape[1] <= self.config["context"], "the sequence length T must be <= 'context'",
                       where=where, T=tokens.shape[1], context=self.config["context"])
        pos = torch.arange(tokens.shape[1], device=tokens.device)  # (T,)
        return self.ln_f(self.layers(self.tok_emb(tokens) + self.pos_emb(pos)))  # (B, T, C)


class _Losses(NamedTuple):
    loss: torch.Tensor
    mlm: torch.Tensor
    sbo: torch.Tensor


def mlm_sbo_loss(mlm_logits: torch.Tensor, sbo_logits: torch.Tensor, labels: torch.Tensor, targets: SpanTargets,
                 sbo_weight: float = 1.0) -> _Losses:
    """SpanBERT's loss: ``MLM + sbo_weight * SBO``, each the mean cross-entropy over the masked tokens.

    Args:
        mlm_logits (Tensor): ``(B, T, V)``, the masked LM's logits at every position.
        sbo_logits (Tensor): ``(N, V)``, :class:`SpanBoundaryHead`'s logits, one row per masked token.
        labels (Tensor): int64 ``(B, T)``: the original token where masked, -100 elsewhere.
        targets (SpanTargets): from ``span_boundary_pairs(labels != -100)``.
        sbo_weight (float): weight of the SBO term (>= 0); SpanBERT adds the two: 1. Default: 1.0.

    Returns:
        ``(loss, mlm, sbo)``: three scalar tensors; ``loss`` carries the gradient.

    Example:
        >>> labels = torch.tensor([[-100, 3, 1, -100]])
        >>> t = span_boundary_pairs(labels != -100)
        >>> out = mlm_sbo_loss(torch.zeros(1, 4, 5), torch.zeros(2, 5), labels, t)
        >>> [round(float(v), 4) for v in out]     # uniform logits: log 5 each
        [3.2189, 1.6094, 1.6094]
    """
    where = "mlm_sbo_loss"
    check_tensor("mlm_logits", mlm_logits, where=where, ndim=3, floating=True, shape_hint="(B, T, V)")
    check_tensor("sbo_logits", sbo_logits, where=where, ndim=2, floating=True, shape_hint="(N, V)")
    check_tensor("labels", labels, where=where, ndim=2, floating=False, shape_hint="(B, T)")
    check_type("targets", targets, SpanTargets, where=where, expected="SpanTargets (from span_boundary_pairs)")
    check_number("sbo_weight", sbo_weight, where=where, low=0.0)
    check_relation(sbo_logits.shape[0] == targets.position.numel(), "'sbo_logits' needs one row per masked token",
                   where=where, rows=sbo_logits.shape[0], masked_tokens=targets.position.numel())
    V = mlm_logits.shape[-1]
    mlm = F.cross_entropy(mlm_logits.reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE_INDEX)
    sbo = F.cross_entropy(sbo_logits, labels[targets.batch, targets.position])
    return _Losses(mlm + sbo_weight * sbo, mlm, sbo)


def span_posterior_loss(language: MarkovLanguage, tokens: torch.Tensor, masked: torch.Tensor) -> float:
    """The floor of the masked LM when whole spans are hidden: the mean ``-log p(x_i | everything visible)``.

    On a first-order Markov chain only the two boundary tokens matter, and the posterior of a
    token ``x_i`` inside the span ``s .. e`` is exact:
    ``p(x_i = y | x_{s-1} = a, x_{e+1} = b) ∝ P^(i-s+1)[a, y] * P^(e+1-i)[y, b]``, with the
    stationary ``pi[y]`` in place of the first factor at the left edge and 1 in place of the
    second at the right edge. No model that predicts each masked token on its own can beat it.
    It assumes every masked token shows ``[MASK]`` (no random or kept tokens).

    Args:
        language (MarkovLanguage): the language ``tokens`` was sampled from.
        tokens (Tensor): int64 ``(B, T)``, the original tokens.
        masked (Tensor): bool ``(B, T)``, True where hidden.

    Returns:
        float: nats per masked token.

    Example:
        >>> lang = MarkovLanguage(vocab_size=8, seed=0)
        >>> x = lang.sample(1, 3, seed=0)
        >>> m = torch.tensor([[False, True, False]])
        >>> p = lang.transition
        >>> a, y, b = x[0].tolist()
        >>> exact = -math.log(p[a, y] * p[y, b] / (p[a] * p[:, b]).sum())
        >>> abs(span_posterior_loss(lang, x, m) - exact) < 1e-12
        True
    """
    where = "span_posterior_loss"
    check_type("language", language, MarkovLanguage, where=where)
    check_tensor("tokens", tokens, where=where, ndim=2, floating=False, shape_hint="(B, T)")
    check_tensor("masked", masked, where=where, ndim=2, shape_hint="(B, T)")
    targets = span_boundary_pairs(masked)
    check_relation(masked.shape == tokens.shape, "'masked' must have the shape of 'tokens'", where=where,
                   masked_shape=tuple(masked.shape), tokens_shape=tuple(tokens.shape))
    if targets.position.numel() == 0:
        return float("nan")
    P, pi = language.transition, language.stationary  # float64 (V, V), (V,)
    T = tokens.shape[1]
    powers = [torch.eye(P.shape[0], dtype=P.dtype)]
    for _ in range(T + 1):
        powers.append(powers[-1] @ P)  # powers[k] = P^k
    x = tokens.cpu()
    total = 0.0
    for b, i, s1, e1 in zip(*(t.cpu().tolist() for t in targets[:4])):
        y = x[b, i].item()
        # 1. How the left boundary (or the stationary start) leads to every candidate y.
        left = powers[i - s1][x[b, s1]] if s1 >= 0 else pi  # (V,)
        # 2. How every candidate y leads to the right boundary (nothing to match at the right edge).
        right = powers[e1 - i][:, x[b, e1]] if e1 < T else torch.ones_like(pi)  # (V,)
        post = left * right
        total -= math.log(post[y] / post.sum())
    return total / targets.position.numel()


@dataclass
class SpanMLMHistory:
    """What :func:`train_span_mlm` recorded: plain lists and floats (JSON-serialisable).

    ``step``, ``mlm``, ``sbo`` per step (mini-batch values); ``eval_mlm`` and ``eval_sbo``: the
    two losses on a fixed held-out set after training; ``floor``: :func:`span_posterior_loss`
    on that set; ``config``: the arguments.
    """

    step: list[int] = field(default_factory=list)
    mlm: list[float] = field(default_factory=list)
    sbo: list[float] = field(default_factory=list)
    eval_mlm: float | None = None
    eval_sbo: float | None = None
    floor: float | None = None
    config: dict = field(default_factory=dict)


def _mask_pool(num_rows: int, seq_len: int, mask_ratio: float, seed: int) -> torch.Tensor:
    """SpanBERT's masks for ``num_rows`` sequences, bool ``(num_rows, seq_len)``.

    Where the spans fall does not depend on the tokens, so a run draws its masks once and picks
    rows from them at every step: span masking's loop costs more than a training step.
    """
    out = span_mask(torch.zeros(num_rows, seq_len, dtype=torch.int64), 1, 2, mask_ratio, seed=seed)
    return out.labels != IGNORE_INDEX


def train_span_mlm(language: MarkovLanguage, *, sbo_weight: float = 1.0, num_steps: int = 600, batch_size: int = 32,
                   seq_len: int = 16, mask_ratio: float = 0.3, d_model: int = 32, n_layers: int = 2, lr: float = 5e-3,
                   eval_size: int = 256, seed: int = 0, device=None) -> SpanMLMHistory:
    """Train a :class:`SpanEncoder` on span-masked text with ``MLM + sbo_weight * SBO``.

    With ``sbo_weight=0`` the SBO term adds no gradient: the plain masked LM (its SBO head stays
    untrained, so its ``eval_sbo`` is only a reference). The same ``seed`` gives both runs the same initial encoder,
    text and masks, so they differ only in the objective.

    Args:
        language (MarkovLanguage): the text.
        sbo_weight (float): weight of the SBO loss (>= 0). Default: 1.0 (SpanBERT).
        num_steps (int): AdamW steps (>= 1). Default: 600.
        batch_size (int): sequences per step. Default: 32.
        seq_len (int): tokens per sequence (>= 2). Default: 16.
        mask_ratio (float): share of each sequence hidden in spans, in (0, 1). Default: 0.3.
        d_model (int): width of encoder and head. Default: 32.
        n_layers (int): encoder layers. Default: 2.
        lr (float): learning rate (> 0). Default: 5e-3.
        eval_size (int): sequences in the held-out set. Default: 256.
        seed (int): seeds the weights, the text and the masks. Default: 0.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None (the default device).

    Returns:
        SpanMLMHistory: per-step losses, held-out ``eval_mlm``/``eval_sbo`` and the ``floor``.

    Example:
        >>> lang = MarkovLanguage(vocab_size=8, seed=0)
        >>> h = train_span_mlm(lang, num_steps=3, batch_size=4, seq_len=8, eval_size=4, device="cpu")
        >>> len(h.mlm), h.eval_mlm > h.floor
        (3, True)

    References:
        Joshi et al., *SpanBERT*, arXiv 1907.10529 (MLM + SBO).
    """
    where = "train_span_mlm"
    check_type("language", language, MarkovLanguage, where=where)
    check_number("sbo_weight", sbo_weight, where=where, low=0.0)
    check_number("num_steps", num_steps, where=where, low=1, integer=True)
    check_number("batch_size", batch_size, where=where, low=1, integer=True)
    check_number("seq_len", seq_len, where=where, low=2, integer=True)
    check_number("mask_ratio", mask_ratio, where=where, low=0.0, high=1.0, low_open=True, high_open=True)
    check_number("d_model", d_model, where=where, low=2, integer=True)
    check_number("lr", lr, where=where, low=0.0, low_open=True)
    check_number("eval_size", eval_size, where=where, low=1, integer=True)
    check_seed(seed, where=where)
    dev = resolve_device(device, where=where)
    V = language.vocab_size
    with torch.random.fork_rng(devices=[]):  # the same initial weights for every sbo_weight
        torch.manual_seed(seed)
        encoder = SpanEncoder(V, d_model=d_model, n_layers=n_layers, context=seq_len)
        head = SpanBoundaryHead(d_model, V, max_span_len=seq_len, decoder=encoder.mlm_head)  # shared decoder
    encoder, head = encoder.to(dev), head.to(dev)
    # The decoder is shared, so it appears in both lists: a set of ids keeps one copy.
    params = {id(p): p for p in [*encoder.parameters(), *head.parameters()]}
    opt = torch.optim.AdamW(list(params.values()), lr=lr)
    history = SpanMLMHistory(config=dict(sbo_weight=sbo_weight, num_steps=num_steps, batch_size=batch_size,
                                         seq_len=seq_len, mask_ratio=mask_ratio, d_model=d_model, n_layers=n_layers,
                                         lr=lr, seed=seed))
    batches = language.batches(batch_size, seq_len, seed=seed, device=dev)

    pool = _mask_pool(max(256, 8 * batch_size), seq_len, mask_ratio, seed).to(dev)  # (P, T)
    pick = torch.Generator().manual_seed(seed)

    def losses(tokens, masked):
        # Every masked token shows [MASK] (id V): no random or kept tokens, so the floor is exact.
        inputs = torch.where(masked, torch.full_like(tokens, V), tokens)
        labels = torch.where(masked, tokens, torch.full_like(tokens, IGNORE_INDEX))
        targets = span_boundary_pairs(masked)
        hidden = encoder(inputs)  # (B, T, C)
        # With sbo_weight 0 the SBO term adds nothing to the gradient: the plain masked LM.
        return mlm_sbo_loss(encoder.mlm_head(hidden), head(hidden, targets), labels, targets, sbo_weight)

    encoder.train()
    for step in range(num_steps):
        tokens = next(batches)
        rows = torch.randint(0, pool.shape[0], (tokens.shape[0],), generator=pick).to(dev)
        loss, mlm, sbo = losses(tokens, pool[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.step.append(step)
        history.mlm.append(float(mlm.detach()))
        history.sbo.append(float(sbo.detach()))
    # Held-out text, sampled with a seed the training stream never uses.
    encoder.eval()
    eval_tokens = language.sample(eval_size, seq_len, seed=seed + 7919, device=dev)
    with torch.no_grad():
        masked = _mask_pool(eval_size, seq_len, mask_ratio, seed + 104729).to(dev)  # masks training never saw
        _, mlm, sbo = losses(eval_tokens, masked)
    history.eval_mlm, history.eval_sbo = float(mlm), float(sbo)
    history.floor = span_posterior_loss(language, eval_tokens, masked)
    return history

