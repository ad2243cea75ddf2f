"""Masking objectives: BERT's random token masking and SpanBERT's span masking.

1. **Masked language modelling (MLM, BERT).** Hide some input tokens and train the model to
   restore them. Each token is selected with probability ``mask_prob`` (15%); a selected token
   becomes ``[MASK]`` 80% of the time, a random token 10%, and stays unchanged 10%. The last
   two exist because ``[MASK]`` never appears at fine-tuning time: the model must build a good
   representation of *every* token, not only of the ``[MASK]`` ones.
2. **Span masking (SpanBERT).** Mask contiguous spans instead of single tokens, so that the
   model must rebuild a whole piece of text from its context instead of filling single gaps
   from the neighbour on each side. Span lengths come
   from a geometric distribution ``Geo(p=0.2)`` **renormalised** over 1..10 (mean 3.797), masking
   stops at a 15% budget, and 80/10/10 is decided once per span.

Masked positions follow torch's convention: ``labels`` holds ``-100`` (``IGNORE_INDEX``, the
default ``ignore_index`` of ``torch.nn.functional.cross_entropy``) where nothing was masked.

References:
    Devlin et al., *BERT*, 2018, arXiv 1810.04805 (masked LM, 80/10/10).
    Joshi et al., *SpanBERT: Improving Pre-training by Representing and Predicting Spans*, 2019,
    arXiv 1907.10529 (geometric span lengths, per-span 80/10/10).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._validation import SIZE_MAX, check_choice, check_number, check_relation, check_seed, check_tensor, check_type

__all__ = ["IGNORE_INDEX", "MASK_KINDS", "MaskedTokens", "mask_tokens", "span_length_distribution",
           "sample_span_lengths", "span_mask"]


IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index: positions that were not masked


# What happened to each position, as the codes in ``MaskedTokens.kinds`` (index into this tuple).
MASK_KINDS = ("none", "mask", "random", "keep")


_NONE, _MASK, _RANDOM, _KEEP = range(4)  # codes of MaskedTokens.kinds, in MASK_KINDS order


class MaskedTokens(NamedTuple):
    """The result of :func:`mask_tokens` and :func:`span_mask` (all three share ``tokens``' shape).

    Attributes:
        inputs (Tensor): what the model sees: ``tokens`` with ``[MASK]``/random replacements.
        labels (Tensor): the original token where a position was selected, ``-100`` elsewhere.
        kinds (Tensor): int64 codes, ``MASK_KINDS[k]``: 0 not selected, 1 ``[MASK]``,
            2 random token, 3 selected but kept unchanged.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    kinds: torch.Tensor


def _generator(seed, generator, where: str) -> torch.Generator:
    """A CPU generator from ``seed`` or the caller's own; one or the other, never both."""
    check_relation(seed is None or generator is None, "give 'seed' or 'generator', not both",
                   where=where, seed=seed, generator=generator)
    if generator is not None:
        return check_type("generator", generator, torch.Generator, where=where, expected="torch.Generator or None")
    seed = 0 if seed is None else check_seed(seed, where=where)
    return torch.Generator().manual_seed(seed)  # reproducible by default: no seed means seed 0


def _check_masking_args(where, tokens, mask_token_id, vocab_size, mask_replace_prob, random_replace_prob):
    check_tensor("tokens", tokens, where=where, ndim=(1, 2), floating=False, shape_hint="(T,) or (B, T)")
    check_number("mask_token_id", mask_token_id, where=where, low=0, integer=True)
    check_number("vocab_size", vocab_size, where=where, low=1, high=SIZE_MAX, integer=True)
    check_number("mask_replace_prob", mask_replace_prob, where=where, low=0.0, high=1.0)
    check_number("random_replace_prob", random_replace_prob, where=where, low=0.0, high=1.0)
    check_relation(mask_replace_prob + random_replace_prob <= 1.0,
                   "'mask_replace_prob' + 'random_replace_prob' must be <= 1", where=where,
                   mask_replace_prob=mask_replace_prob, random_replace_prob=random_replace_prob)
    if tokens.numel():
        lo, hi = int(tokens.min()), int(tokens.max())
        check_relation(lo >= 0 and hi < vocab_size, f"'tokens' must hold ids in [0, vocab_size) = [0, {vocab_size})",
                       where=where, min_token=lo, max_token=hi)


def _replace(tokens, selected, u, mask_token_id, vocab_size, mask_replace_prob, random_replace_prob, g):
    """Apply the 80/10/10 rule: ``u`` (CPU, same shape, uniform in [0, 1)) picks what a
    selected position becomes. ``u`` is per token for BERT and shared by a span for SpanBERT."""
    kinds = torch.zeros(tokens.shape, dtype=torch.int64)  # (B, T) codes, on the CPU like u
    kinds[selected & (u < mask_replace_prob)] = _MASK
    kinds[selected & (u >= mask_replace_prob) & (u < mask_replace_prob + random_replace_prob)] = _RANDOM
    kinds[selected & (u >= mask_replace_prob + random_replace_prob)] = _KEEP
    # Random tokens are uniform over the whole vocabulary, the original included, as in BERT's
    # and SpanBERT's code: about 1/V of the "random" positions show their own token.
    random_tokens = torch.randint(0, vocab_size, tokens.shape, generator=g)  # (B, T)
    kinds = kinds.to(tokens.device)
    inputs = torch.where(kinds == _MASK, torch.full_like(tokens, mask_token_id), tokens)
    inputs = torch.where(kinds == _RANDOM, random_tokens.to(tokens.device, tokens.dtype), inputs)
    labels = torch.where(kinds != _NONE, tokens, torch.full_like(tokens, IGNORE_INDEX))
    return MaskedTokens(inputs, labels, kinds)


def mask_tokens(
    tokens: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    mask_prob: float = 0.15,
    *,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> MaskedTokens:
    """Random token masking for a masked LM (BERT's 80/10/10 rule).

    1. Select each position independently with probability ``mask_prob``.
    2. For each selected position draw ``u ~ U[0, 1)``: ``u < 0.8`` -> ``[MASK]``,
       ``0.8 <= u < 0.9`` -> a uniformly random token, otherwise keep the token.
    3. Labels: the original token at selected positions, ``-100`` elsewhere.

    Selection is per token (as in Hugging Face's ``DataCollatorForLanguageModeling``), so the
    number masked varies around ``mask_prob * T``; BERT's original script masked exactly
    ``round(mask_prob * T)``.

    Args:
        tokens (Tensor): int64 ids in ``[0, vocab_size)``, shape ``(T,)`` or ``(B, T)``.
        mask_token_id (int): the id written at ``[MASK]`` positions (>= 0; often ``vocab_size``,
            an extra id the embedding must have room for).
        vocab_size (int): random replacements are drawn from ``[0, vocab_size)``.
        mask_prob (float): probability that a position is selected, in [0, 1]. Default: 0.15.
        mask_replace_prob (float): share of selected positions set to ``[MASK]``. Default: 0.8.
        random_replace_prob (float): share replaced by a random token. Default: 0.1.
        seed (int, optional): seed of a fresh generator. Default: None (seed 0).
        generator (torch.Generator, optional): a CPU generator to draw from instead of ``seed``.

    Returns:
        MaskedTokens: ``inputs``, ``labels`` (``-100`` where not selected) and ``kinds``, each
        shaped like ``tokens``.

    Example:
        >>> tokens = torch.arange(20).view(2, 10)
        >>> out = mask_tokens(tokens, mask_token_id=99, vocab_size=20, mask_prob=0.3, seed=0)
        >>> bool(((out.labels == -100) | (out.labels == tokens)).all())
        True
        >>> bool((out.inputs[out.kinds == 1] == 99).all())
        True

    References:
        Devlin et al., *BERT: Pre-training of Deep Bidirectional Transformers for Language
        Understanding*, arXiv 1810.04805, section 3.1.
    """
    where = "mask_tokens"
    _check_masking_args(where, tokens, mask_token_id, vocab_size, mask_replace_prob, random_replace_prob)
    check_number("mask_prob", mask_prob, where=where, low=0.0, high=1.0)
    g = _generator(seed, generator, where)
    # Draws on the CPU generator, then moved: the same masks on every device for one seed.
    selected = torch.rand(tokens.shape, generator=g) < mask_prob  # (B, T) bool
    u = torch.rand(tokens.shape, generator=g)  # (B, T): one 80/10/10 draw per token
    return _replace(tokens, selected, u, mask_token_id, vocab_size, mask_replace_prob, random_replace_prob, g)


def span_length_distribution(p: float = 0.2, max_len: int = 10, truncation: str = "renormalise") -> torch.Tensor:
    """Exact probabilities of SpanBERT's span lengths ``1..max_len``.

    A geometric distribution ``P(l) = p (1 - p)**(l - 1)`` has no upper limit; SpanBERT caps it
    at ``max_len``. There are two ways to cap, with different means (p = 0.2, max_len = 10):

    - ``"renormalise"`` (SpanBERT's code, and the paper's mean of 3.8): drop lengths above
      ``max_len`` and divide by the remaining mass ``1 - (1 - p)**max_len``: mean 3.797.
    - ``"clip"`` (what "clip at 10" literally says): lengths above ``max_len`` become
      ``max_len``, piling the whole tail ``(1 - p)**(max_len - 1)`` onto it: mean 4.463.

    Args:
        p (float): success probability of the geometric distribution, in (0, 1]. Default: 0.2.
        max_len (int): longest span (>= 1). Default: 10.
        truncation (str): ``"renormalise"`` or ``"clip"``. Default: ``"renormalise"``.

    Returns:
        Tensor: float64, shape ``(max_len,)``; entry ``k`` is ``P(length = k + 1)``; sums to 1.

    Example:
        >>> probs = span_length_distribution()
        >>> lengths = torch.arange(1, 11, dtype=torch.float64)
        >>> round(float((lengths * probs).sum()), 3)
        3.797
        >>> round(float((lengths * span_length_distribution(truncation="clip")).sum()), 3)
        4.463

    References:
        Joshi et al., *SpanBERT*, arXiv 1907.10529, section 3.1 (and its ``masking.py``).
    """
    where = "span_length_distribution"
    check_number("p", p, where=where, low=0.0, high=1.0, low_open=True)
    check_number("max_len", max_len, where=where, low=1, integer=True)
    check_choice("truncation", truncation, ("renormalise", "clip"), where=where)
    lengths = torch.arange(1, max_len + 1, dtype=torch.float64)  # (L,)
    probs = p * (1.0 - p) ** (lengths - 1)  # (L,): geometric, unnormalised over 1..L
    if truncation == "renormalise":
        return probs / probs.sum()
    probs[-1] = (1.0 - p) ** (max_len - 1)  # P(l >= max_len): the whole tail lands on max_len
    return probs


def sample_span_lengths(
    n: int,
    p: float = 0.2,
    max_len: int = 10,
    *,
    truncation: str = "renormalise",
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` span lengths from :func:`span_length_distribution`.

    Args:
        n (int): how many (>= 0).
        p (float): geometric parameter in (0, 1]. Default: 0.2.
        max_len (int): longest span (>= 1). Default: 10.
        truncation (str): ``"renormalise"`` or ``"clip"``. Default: ``"renormalise"``.
        seed (int, optional): seed of a fresh generator. Default: None (seed 0).
        generator (torch.Generator, optional): a CPU generator to draw from instead.

    Returns:
        Tensor: int64, shape ``(n,)``, values in ``[1, max_len]``.

    Example:
        >>> lengths = sample_span_lengths(100_000, seed=0)
        >>> int(lengths.min()), int(lengths.max()), round(lengths.double().mean().item(), 1)
        (1, 10, 3.8)
    """
    where = "sample_span_lengths"
    check_number("n", n, where=where, low=0, integer=True)
    probs = span_length_distribution(p, max_len, truncation)
    g = _generator(seed, generator, where)
    if n == 0:
        return torch.zeros(0, dtype=torch.int64)
    return torch.multinomial(probs, n, replacement=True, generator=g) + 1  # index k -> length k + 1


def _span_mask_row(T: int, budget: int, probs: torch.Tensor, g: torch.Generator) -> list[list[int]]:
    """SpanBERT's loop for one sequence: the merged spans ``[start, end]`` (inclusive)."""
    masked = torch.zeros(T, dtype=torch.bool)  # (T,)
    count, spans = 0, []
    while count < budget:
        # 1. A length from the renormalised geometric, a start uniform over the sequence.
        length = int(torch.multinomial(probs, 1, generator=g)) + 1
        start = int(torch.randint(0, T, (1,), generator=g))
        # 2. A start inside an earlier span is rejected (SpanBERT's "if anchor in mask").
        if masked[start]:
            continue
        # 3. Grow the span to the right: stop at its length, the end of the sequence, or the
        #    budget (so exactly `budget` positions end up masked).
        end = start
        for i in range(start, min(start + length, T)):
            if count >= budget:
                break
            if not masked[i]:
                masked[i] = True
                count += 1
            end = i
        spans.append([start, end])
    # 4. Merge overlapping and touching spans: a merged span gets a single 80/10/10 decision.
    spans.sort()
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged


def span_mask(
    tokens: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    mask_ratio: float = 0.15,
    p: float = 0.2,
    max_len: int = 10,
    *,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> MaskedTokens:
    """SpanBERT's span masking: contiguous spans until ``mask_ratio`` of each sequence is masked.

    Per sequence of length ``T``:

    1. The budget is ``ceil(mask_ratio * T)`` positions.
    2. Until the budget is used: draw a length ``l`` from the renormalised ``Geo(p)`` over
       ``1..max_len`` (:func:`span_length_distribution`) and a start uniform in ``[0, T)``;
       reject a start that is already masked; mask ``start .. start + l - 1``, stopping early
       at the end of the sequence or when the budget is reached.
    3. Merge overlapping or touching spans, then apply 80/10/10 **per span**: one draw decides
       whether the whole span becomes ``[MASK]``, random tokens (each position its own), or
       stays unchanged.

    In SpanBERT a span counts whole words; here every token is a word.

    Args:
        tokens (Tensor): int64 ids in ``[0, vocab_size)``, shape ``(T,)`` or ``(B, T)``.
        mask_token_id (int): the id written at ``[MASK]`` positions (>= 0).
        vocab_size (int): random replacements are drawn from ``[0, vocab_size)``.
        mask_ratio (float): share of each sequence to mask, in (0, 1). Default: 0.15.
        p (float): geometric parameter of span lengths, in (0, 1]. Default: 0.2.
        max_len (int): longest span (>= 1). Default: 10.
        mask_replace_prob (float): share of spans set to ``[MASK]``. Default: 0.8.
        random_replace_prob (float): share of spans replaced by random tokens. Default: 0.1.
        seed (int, optional): seed of a fresh generator. Default: None (seed 0).
        generator (torch.Generator, optional): a CPU generator to draw from instead.

    Returns:
        MaskedTokens: ``inputs``, ``labels`` (``-100`` outside spans) and ``kinds``, each shaped
        like ``tokens``. Exactly ``ceil(mask_ratio * T)`` positions per sequence are selected.

    Example:
        >>> tokens = torch.arange(40).view(2, 20)
        >>> out = span_mask(tokens, mask_token_id=99, vocab_size=40, seed=0)
        >>> (out.labels != -100).sum(dim=1).tolist()   # ceil(0.15 * 20) = 3 per sequence
        [3, 3]

    References:
        Joshi et al., *SpanBERT: Improving Pre-training by Representing and Predicting Spans*,
        arXiv 1907.10529, section 3.1.
    """
    where = "span_mask"
    _check_masking_args(where, tokens, mask_token_id, vocab_size, mask_replace_prob, random_replace_prob)
    check_number("mask_ratio", mask_ratio, where=where, low=0.0, high=1.0, low_open=True, high_open=True)
    probs = span_length_distribution(p, max_len)  # validates p and max_len
    g = _generator(seed, generator, where)
    rows = tokens.view(1, -1) if tokens.ndim == 1 else tokens  # (B, T)
    B, T = rows.shape
    # round() first: 0.15 * 20 is 3.0000000000000004 in floating point, and ceil would give 4.
    budget = math.ceil(round(mask_ratio * T, 9))
    selected = torch.zeros(B, T, dtype=torch.bool)  # (B, T)
    u = torch.zeros(B, T)  # (B, T): the 80/10/10 draw, shared by all positions of a span
    for b in range(B):
        for s, e in _span_mask_row(T, budget, probs, g):
            selected[b, s:e + 1] = True
            u[b, s:e + 1] = float(torch.rand((), generator=g))
    out = _replace(rows, selected, u, mask_token_id, vocab_size, mask_replace_prob, random_replace_prob, g)
    if tokens.ndim == 1:
        return MaskedTokens(*(t.view(-1) for t in out))
    return out
