"""A toy language with an exactly known entropy: a stationary first-order Markov chain.

Scaling laws (Kaplan et al. 2020; Hoffmann et al. 2022) fit the loss of a language model as
``L(N, D) = E + A / N**alpha + B / D**beta``. The constant ``E`` is the *irreducible* loss: the
entropy of the text itself, which no model, however large, can beat. On natural text ``E`` is
unknown and must be fitted. On this toy language it is known exactly, so a notebook can put a
horizontal line at ``E`` and check that the fitted constant lands on it.

Why the entropy rate is the floor: a model that predicts token ``x_{t+1}`` from the past with
probabilities ``q`` pays the cross-entropy ``E[-log q(x_{t+1} | past)]``. By Gibbs' inequality
this is smallest when ``q`` is the true conditional distribution, and for a first-order Markov
chain the true conditional given the whole past is the row ``P[x_t]``. Its expected loss is the
entropy rate ``H = -sum_x pi_x sum_y P_xy log P_xy``. Any extra loss is the model's fault
(capacity ``N``) or the data's (only ``D`` tokens seen); ``H`` itself belongs to the language.

The chain: transition logits ``U diag(s) V^T`` with ``U``, ``V`` random orthogonal and a
power-law spectrum ``s_k = scale * k**-exponent``. A small model (a rank-``d`` bigram) can only
capture the first ``d`` directions, so the spectrum sets how fast the loss falls with model
size: the data, not the model, sets the scaling exponent (notebook 11; Sharma & Kaplan, *Scaling Laws
from the Data Manifold Dimension*, 2020, arXiv 2004.10802).

References:
    Kaplan et al., *Scaling Laws for Neural Language Models*, arXiv 2001.08361 (2020).
    Hoffmann et al., *Training Compute-Optimal Large Language Models*, arXiv 2203.15556 (2022).
    Cover & Thomas, *Elements of Information Theory*, ch. 4 (entropy rates of Markov chains).
"""

from __future__ import annotations

from typing import Iterator

import torch

from ._validation import check_number, check_relation, check_seed, check_tensor
from .device import resolve_device

__all__ = ["MarkovLanguage"]


def _random_orthogonal(n: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal (n, n) float64 matrix: QR of a Gaussian matrix, sign-fixed."""
    A = torch.randn(n, n, generator=generator, dtype=torch.float64)  # (n, n)
    Q, R = torch.linalg.qr(A)
    # Without the sign fix QR's convention biases Q; multiplying each column by sign(R_kk)
    # makes the result uniformly distributed over orthogonal matrices.
    return Q * torch.sign(torch.diagonal(R))


def _stationary_distribution(P: torch.Tensor) -> torch.Tensor:
    """Solve pi P = pi, sum(pi) = 1 exactly (a linear solve, float64)."""
    V = P.shape[0]
    # 1. pi P = pi  <=>  (P^T - I) pi = 0; these V equations have rank V - 1.
    A = P.T - torch.eye(V, dtype=P.dtype)  # (V, V)
    # 2. Replace the redundant last equation by the normalisation sum(pi) = 1.
    A[-1] = 1.0
    b = torch.zeros(V, dtype=P.dtype)
    b[-1] = 1.0
    pi = torch.linalg.solve(A, b)  # (V,)
    # All P_xy > 0 (a softmax), so pi is unique and positive; a huge 'scale' can still leave
    # entries of about -1e-17 from round-off, which we clip.
    pi = pi.clamp(min=0)
    pi = pi / pi.sum()
    residual = float((pi @ P - pi).abs().max())  # about 3e-16 for the course's chains
    assert residual < 1e-12, f"pi is not stationary: max |pi P - pi| = {residual:.3g}"
    return pi


def _to(tensor: torch.Tensor, device, where: str) -> torch.Tensor:
    # device=None leaves data on the CPU, where the generator made it.
    return tensor if device is None else tensor.to(resolve_device(device, where=where))


class MarkovLanguage:
    """A stationary first-order Markov chain over ``vocab_size`` tokens with known entropy.

    Args:
        vocab_size (int): number of tokens ``V`` (>= 2). Default: 64.
        exponent (float): decay of the logit spectrum ``s_k = scale * k**-exponent`` (>= 0);
            smaller means flatter, i.e. more directions matter. Default: 1.0.
        scale (float): size of the leading singular value of the logits (> 0); larger means
            more predictable text (lower entropy rate). Default: 120.0.
        seed (int): seed of the random orthogonal matrices. Default: 0.

    Attributes:
        transition (Tensor): ``P``, (V, V) float64, row ``x`` is p(next | x).
        log_transition (Tensor): ``log P``, (V, V) float64.
        stationary (Tensor): ``pi``, (V,) float64, with ``pi @ P == pi``.
        entropy_rate (float): ``H``, nats per token: the irreducible next-token loss.
        unigram_entropy (float): ``-sum pi log pi``: the loss of the best model that ignores
            the previous token (the "baseline" line of a loss plot).

    Example:
        >>> import math
        >>> lang = MarkovLanguage(vocab_size=16, seed=0)
        >>> lang.sample(4, 10).shape
        torch.Size([4, 10])
        >>> 0 < lang.entropy_rate < lang.unigram_entropy < math.log(16)
        True
        >>> abs(lang.population_cross_entropy(lang.log_transition) - lang.entropy_rate) < 1e-12
        True

    References:
        Kaplan et al., arXiv 2001.08361; Hoffmann et al., arXiv 2203.15556.
    """

    def __init__(self, vocab_size: int = 64, exponent: float = 1.0, scale: float = 120.0, seed: int = 0):
        where = "MarkovLanguage"
        # The transition table is V x V and built row by row: 4,096 took 20 s, 2,048 a few.
        V = check_number("vocab_size", vocab_size, where=where, low=2, high=2048, integer=True)
        self.exponent = check_number("exponent", exponent, where=where, low=0)
        self.scale = check_number("scale", scale, where=where, low=0, low_open=True)
        self.seed = check_seed(seed, where=where)
        g = torch.Generator().manual_seed(self.seed)
        # 1. Random orthogonal bases and a power-law spectrum.
        U, W = _random_orthogonal(V, g), _random_orthogonal(V, g)  # (V, V) each
        k = torch.arange(1, V + 1, dtype=torch.float64)
        self.spectrum = self.scale * k ** (-self.exponent)  # (V,)
        # 2. Logits U diag(s) W^T, then a row-wise softmax gives the transition matrix.
        logits = (U * self.spectrum) @ W.T  # (V, V)
        self.log_transition = torch.log_softmax(logits, dim=1)  # (V, V), exact even where P is tiny
        self.transition = self.log_transition.exp()  # (V, V)
        # Exact zeros (exp underflow at a huge scale) could split the chain into pieces with
        # no unique stationary distribution; refuse them instead of returning nonsense.
        check_relation(
            bool((self.transition > 0).all()),
            "'scale' must be small enough that every transition probability is > 0 in float64",
            where=where, scale=scale, vocab_size=V, exponent=exponent,
        )
        # 3. The stationary distribution, solved exactly.
        self.stationary = _stationary_distribution(self.transition)  # (V,)
        self._cdf = self.transition.cumsum(dim=1)  # (V, V), rows of the inverse-CDF sampler
        self._cdf_first = self.stationary.cumsum(dim=0)  # (V,)

    @property
    def vocab_size(self) -> int:
        return self.transition.shape[0]

    @property
    def entropy_rate(self) -> float:
        """``H = -sum_x pi_x sum_y P_xy log P_xy`` in nats: the irreducible loss."""
        return self.population_cross_entropy(self.log_transition)

    @property
    def unigram_entropy(self) -> float:
        """``-sum_x pi_x log pi_x`` in nats: the loss of predicting from token frequencies."""
        pi = self.stationary
        return float(-torch.special.xlogy(pi, pi).sum())  # xlogy: 0 log 0 = 0

    def __repr__(self) -> str:
        return (
            f"MarkovLanguage(vocab_size={self.vocab_size}, exponent={self.exponent}, "
            f"entropy_rate={self.entropy_rate:.4f} nats, unigram_entropy={self.unigram_entropy:.4f} nats)"
        )

    def _sample(self, num_sequences: int, seq_len: int, g: torch.Generator) -> torch.Tensor:
        # Inverse-CDF sampling: token = first index whose cumulative probability exceeds u.
        # Time-major (T, B) so that the slice for one time step is contiguous.
        u = torch.rand(seq_len, num_sequences, generator=g, dtype=torch.float64)  # (T, B)
        tokens = torch.empty(seq_len, num_sequences, dtype=torch.int64)  # (T, B)
        top = self.vocab_size - 1
        # 1. The first token from pi, so every position is distributed as pi (stationarity).
        tokens[0] = torch.searchsorted(self._cdf_first, u[0], right=True).clamp_(max=top)
        # 2. Each next token from the row of its predecessor; vectorised over sequences.
        for t in range(1, seq_len):
            rows = self._cdf[tokens[t - 1]]  # (B, V)
            nxt = torch.searchsorted(rows, u[t].unsqueeze(1), right=True)  # (B, 1)
            # A row's last cumulative value can round to 1 - 1e-16 < u: clamp to the last token.
            tokens[t] = nxt.squeeze(1).clamp_(max=top)
        return tokens.T.contiguous()  # (B, T)

    def sample(self, num_sequences: int, seq_len: int, *, seed: int = 0, device=None) -> torch.Tensor:
        """Draw ``num_sequences`` independent sequences of ``seq_len`` tokens.

        Args:
            num_sequences (int): ``B`` (>= 1).
            seq_len (int): ``T`` (>= 1).
            seed (int): seed of the sampler. Default: 0.
            device (str or torch.device, optional): where to put the result. Default: None (CPU).

        Returns:
            Tensor: (B, T) int64 tokens in ``[0, V)``.

        Example:
            >>> lang = MarkovLanguage(vocab_size=8)
            >>> torch.equal(lang.sample(2, 5, seed=1), lang.sample(2, 5, seed=1))
            True
        """
        where = "sample"
        num_sequences = check_number("num_sequences", num_sequences, where=where, low=1, integer=True)
        seq_len = check_number("seq_len", seq_len, where=where, low=1, integer=True)
        seed = check_seed(seed, where=where)
        tokens = self._sample(num_sequences, seq_len, torch.Generator().manual_seed(seed))
        return _to(tokens, device, where)

    def batches(self, batch_size: int, seq_len: int, *, seed: int = 0, device=None) -> Iterator[torch.Tensor]:
        """An endless stream of fresh (batch_size, seq_len) batches: single-pass training.

        Every batch is new data, so there is no overfitting: the loss measured on a batch
        before the step is an unbiased estimate of the population loss.

        Args:
            batch_size (int): ``B`` (>= 1).
            seq_len (int): ``T`` (>= 1).
            seed (int): seed of the stream; the same seed gives the same stream. Default: 0.
            device (str or torch.device, optional): where to put each batch. Default: None (CPU).

        Returns:
            Iterator[Tensor]: (B, T) int64 batches, forever.

        Example:
            >>> stream = MarkovLanguage(vocab_size=8).batches(3, 4)
            >>> next(stream).shape
            torch.Size([3, 4])
        """
        where = "batches"
        # Validate now, not at the first next(): a generator function would check too late.
        batch_size = check_number("batch_size", batch_size, where=where, low=1, integer=True)
        seq_len = check_number("seq_len", seq_len, where=where, low=1, integer=True)
        seed = check_seed(seed, where=where)
        if device is not None:
            device = resolve_device(device, where=where)
        return self._stream(batch_size, seq_len, torch.Generator().manual_seed(seed), device)

    def _stream(self, batch_size, seq_len, g, device) -> Iterator[torch.Tensor]:
        while True:
            yield _to(self._sample(batch_size, seq_len, g), device, "batches")

    def sample_bigrams(self, num_pairs: int, *, seed: int = 0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``num_pairs`` independent (previous, next) token pairs from the stationary chain.

        In a stationary chain every consecutive pair ``(x_t, x_{t+1})`` has the joint law
        ``pi_x P_xy``. Drawing the pairs independently from that law (instead of reading them
        off one long sequence) keeps exactly what a bigram model learns from and removes the
        correlation between neighbouring pairs: every pair is fresh information, which is what
        a single-pass scaling run assumes.

        Args:
            num_pairs (int): number of pairs ``D`` (>= 1): the token budget of a bigram run.
            seed (int): seed of the sampler; the first ``k`` pairs do not depend on
                ``num_pairs``, so budgets with one seed are nested. Default: 0.
            device (str or torch.device, optional): where to put the result. Default: None (CPU).

        Returns:
            tuple[Tensor, Tensor]: ``(prev, next)``, each (D,) int64 in ``[0, V)``.

        Example:
            >>> lang = MarkovLanguage(vocab_size=8)
            >>> prev, nxt = lang.sample_bigrams(1000, seed=1)
            >>> prev.shape, bool(torch.equal(lang.sample_bigrams(10, seed=1)[0], prev[:10]))
            (torch.Size([1000]), True)
        """
        where = "sample_bigrams"
        num_pairs = check_number("num_pairs", num_pairs, where=where, low=1, integer=True)
        seed = check_seed(seed, where=where)
        V = self.vocab_size
        if not hasattr(self, "_cdf_joint"):
            self._cdf_joint = (self.stationary[:, None] * self.transition).flatten().cumsum(0)  # (V*V,)
        # Inverse-CDF sampling over the V*V cells of the joint, in float64 like the sequence sampler.
        u = torch.rand(num_pairs, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)  # (D,)
        cell = torch.searchsorted(self._cdf_joint, u, right=True).clamp_(max=V * V - 1)  # (D,)
        return _to(cell // V, device, where), _to(cell % V, device, where)

    def population_cross_entropy(self, log_q: torch.Tensor) -> float:
        """Exact expected next-token loss of a bigram model, in nats.

        ``sum_x pi_x sum_y P_xy * (-log_q[x, y])``: the loss on infinitely much fresh data,
        with no sampling noise. It equals ``entropy_rate`` for ``log_q = log P`` and is larger
        for any other model (Gibbs' inequality); the gap is the model's excess loss.

        Args:
            log_q (Tensor): (V, V) next-token log-probabilities, row = previous token, e.g.
                ``torch.log_softmax(logits, dim=1)``. Rows must be normalised.

        Returns:
            float: the population cross-entropy in nats.

        Example:
            >>> import math
            >>> lang = MarkovLanguage(vocab_size=8)
            >>> uniform = torch.full((8, 8), -math.log(8))
            >>> round(lang.population_cross_entropy(uniform), 6) == round(math.log(8), 6)
            True
        """
        where = "population_cross_entropy"
        V = self.vocab_size
        check_tensor("log_q", log_q, where=where, ndim=2, floating=True, shape_hint=f"({V}, {V})")
        check_relation(
            tuple(log_q.shape) == (V, V), f"'log_q' must have shape ({V}, {V})", where=where, shape=tuple(log_q.shape)
        )
        log_q = log_q.detach().to("cpu", torch.float64)
        # Raw logits instead of log-probabilities would give a meaningless number: refuse them.
        row_sums = log_q.exp().sum(dim=1)  # (V,)
        worst = float((row_sums - 1).abs().max())
        check_relation(
            worst < 1e-3,
            "'log_q' must hold log-probabilities (each row of exp(log_q) sums to 1; "
            "use torch.log_softmax(logits, dim=1))",
            where=where,
            max_row_sum_error=worst,
        )
        joint = self.stationary[:, None] * self.transition  # (V, V), p(x_t = x, x_{t+1} = y)
        # Where p(x, y) = 0 the term is 0 even if log_q = -inf there (0 * log 0 = 0).
        return float(-torch.where(joint > 0, joint * log_q, 0.0).sum())

    def sequence_cross_entropy_floor(self, seq_len: int) -> float:
        """Expected per-token loss of the ideal predictor on a causal-LM sequence of ``seq_len``.

        A causal LM predicts positions ``1..T-1`` from the tokens before them (the first token
        has no context and is not predicted). For a first-order chain the ideal prediction at
        position ``t`` is ``P[x_{t-1}]``, and ``x_{t-1}`` is distributed as ``pi`` at every
        position (the first token is drawn from ``pi``), so every predicted position costs
        exactly ``entropy_rate``: the floor does not depend on ``T``. (Averaging over all ``T``
        positions, with position 0 predicted from ``pi``, would instead give
        ``(unigram_entropy + (T - 1) * entropy_rate) / T``.)

        Args:
            seq_len (int): ``T`` (>= 2, so that at least one position is predicted).

        Returns:
            float: the floor in nats per predicted token.

        Example:
            >>> lang = MarkovLanguage(vocab_size=8)
            >>> lang.sequence_cross_entropy_floor(32) == lang.entropy_rate
            True
        """
        check_number("seq_len", seq_len, where="sequence_cross_entropy_floor", low=2, integer=True)
        return self.entropy_rate
