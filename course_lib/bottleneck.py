"""Masking strength as an information bottleneck (notebook 06b).

Noise on the hidden state masks information the way ``[MASK]`` masks tokens. :class:`BottleneckLM`
sends its hidden state through a Gaussian latent ``z ~ N(mu, sigma^2)`` and pays
``w * KL(q(z|x) || N(0, I))`` for what gets through: ``loss = CE + w * KL``. Small ``w``: the latent
carries the current token, CE reaches the entropy rate ``H``. Large ``w``: the latent collapses to
the prior, and the model can only predict token frequencies, CE = the unigram entropy ``U``.
:class:`BottleneckMLP` is the same idea on a regression network (the training lab's masking
strength).

References:
    Alemi et al., *Deep Variational Information Bottleneck*, 2016, arXiv 1612.00410 (CE + beta * KL).
    Kingma & Welling, *Auto-Encoding Variational Bayes*, 2013, arXiv 1312.6114 (reparameterisation).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn as nn

from ._validation import (SIZE_MAX, check_model_size, check_number, check_relation, check_seed, check_tensor,
                          check_token_ids, check_type, skip_value_checks)
from .device import resolve_device
from .language import MarkovLanguage
from .losses import causal_lm_loss, gaussian_kl
from .models import MLP

__all__ = ["BottleneckOutput", "BottleneckLM", "bottleneck_loss", "evaluate_bottleneck", "BottleneckHistory",
           "BottleneckRun", "train_bottleneck", "BottleneckMLP"]


class BottleneckOutput(NamedTuple):
    """What :class:`BottleneckLM` returns: ``logits`` (B, T, V), ``mu`` and ``logvar`` (B, T, K)."""

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


class BottleneckLM(nn.Module):
    """A tiny causal LM whose hidden state passes a Gaussian bottleneck ``z ~ N(mu, sigma^2)``.

    ``token -> embedding h (d_model) -> (mu, log sigma^2) (latent each) -> z -> next-token logits``.

    Why no attention: the course's data is a first-order Markov chain, so
    ``p(x_{t+1} | x_1..x_t) = p(x_{t+1} | x_t)``: the current token is all a causal LM needs to
    reach the entropy rate, and a transformer would only learn to ignore the rest of the
    context (at about 20x the cost per step). The embedding plays the transformer's hidden state.

    The latent is sampled with the reparameterisation ``z = mu + sigma * eps``,
    ``eps ~ N(0, I)``, so gradients flow through ``mu`` and ``sigma``. Its noise is what
    "masks" the hidden state: a large ``sigma`` drowns the token's identity.

    Args:
        vocab_size (int): V (>= 2).
        d_model (int): width of the hidden state. Default: 32.
        latent (int): size K of the latent ``z``. Default: 16.

    Shape: tokens ``(B, T)`` int64 -> :class:`BottleneckOutput` with ``logits (B, T, V)``,
    ``mu`` and ``logvar`` ``(B, T, K)``; the logits at position t predict token t + 1.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> out = BottleneckLM(vocab_size=8, latent=4)(torch.zeros(2, 5, dtype=torch.long))
        >>> out.logits.shape, out.mu.shape
        (torch.Size([2, 5, 8]), torch.Size([2, 5, 4]))

    References:
        Alemi et al., *Deep Variational Information Bottleneck*, arXiv 1612.00410.
        Kingma & Welling, *Auto-Encoding Variational Bayes*, arXiv 1312.6114.
    """

    def __init__(self, vocab_size: int, d_model: int = 32, latent: int = 16):
        super().__init__()
        where = "BottleneckLM"
        check_number("vocab_size", vocab_size, where=where, low=2, high=SIZE_MAX, integer=True)
        check_number("d_model", d_model, where=where, low=1, high=SIZE_MAX, integer=True)
        check_number("latent", latent, where=where, low=1, high=SIZE_MAX, integer=True)
        check_model_size(vocab_size * (d_model + latent + 1) + 2 * d_model * latent, where=where,
                         vocab_size=vocab_size, d_model=d_model, latent=latent)
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.to_stats = nn.Linear(d_model, 2 * latent)  # -> (mu, logvar): logvar can be any real
        self.head = nn.Linear(latent, vocab_size)
        self.config = dict(vocab_size=vocab_size, d_model=d_model, latent=latent)

    def forward(self, tokens: torch.Tensor, *, generator: torch.Generator | None = None) -> BottleneckOutput:
        check_tensor("tokens", tokens, where="BottleneckLM.forward", ndim=2, floating=False, shape_hint="(B, T)")
        check_token_ids("tokens", tokens, self.tok_emb.num_embeddings, where="BottleneckLM.forward")
        h = self.tok_emb(tokens)  # (B, T, C)
        mu, logvar = self.to_stats(h).chunk(2, dim=-1)  # (B, T, K) each
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)  # (B, T, K)
        z = mu + (0.5 * logvar).exp() * eps  # (B, T, K): the reparameterised sample
        return BottleneckOutput(self.head(z), mu, logvar)  # logits (B, T, V)


def _kl_to_prior(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per position, summed over the latent: (...,)."""
    return gaussian_kl(mu, logvar, reduction="none")


class _Loss(NamedTuple):
    loss: torch.Tensor
    ce: torch.Tensor
    kl: torch.Tensor


def bottleneck_loss(output: BottleneckOutput, tokens: torch.Tensor, strength: float) -> _Loss:
    """``loss = CE + strength * KL``, both in nats per predicted token; returns all three.

    ``CE`` is the next-token cross-entropy (:func:`course_lib.losses.causal_lm_loss`), ``KL``
    is ``KL(q(z|x_t) || N(0, I))`` averaged over the positions that predict a token (all but
    the last), so ``strength`` is an exchange rate: how many nats of prediction one nat of
    information through the bottleneck must buy to be worth it. Above 1 no information is
    worth it (a latent cannot tell more about ``x_{t+1}`` than it carries): the latent collapses.

    Args:
        output (BottleneckOutput): the model's ``(logits, mu, logvar)`` for ``tokens``.
        tokens (Tensor): int64 ``(B, T)``, ``T >= 2``.
        strength (float): the masking strength ``w >= 0``.

    Returns:
        ``(loss, ce, kl)``: three scalar tensors; ``loss`` carries the gradient.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> tokens = torch.randint(0, 8, (4, 6))
        >>> loss, ce, kl = bottleneck_loss(BottleneckLM(8)(tokens), tokens, strength=0.5)
        >>> torch.allclose(loss, ce + 0.5 * kl)
        True
    """
    where = "bottleneck_loss"
    check_type("output", output, tuple, where=where, expected="BottleneckOutput (logits, mu, logvar)")
    check_number("strength", strength, where=where, low=0.0)
    logits, mu, logvar = output
    ce = causal_lm_loss(logits, tokens)  # checks shapes and T >= 2
    kl = _kl_to_prior(mu[:, :-1], logvar[:, :-1]).mean()  # (B, T-1) -> scalar
    return _Loss(ce + strength * kl, ce, kl)


@torch.no_grad()
def evaluate_bottleneck(model: BottleneckLM, language: MarkovLanguage, *, num_samples: int = 256,
                        seed: int = 0) -> tuple[float, float]:
    """The population CE and KL of a :class:`BottleneckLM` on a Markov language.

    Exact over tokens, Monte Carlo over the latent noise only:
    ``CE = E_z[ sum_x pi_x sum_y P_xy * (-log q(y | z(x))) ]`` and ``KL = sum_x pi_x KL_x``.
    ``E_z`` can go inside because the population CE is linear in ``log q``. No sampled text,
    so these numbers are far less noisy than the training curves.

    Args:
        model (BottleneckLM): the trained model (any device).
        language (MarkovLanguage): the language it was trained on.
        num_samples (int): latent samples per token (>= 1). Default: 256.
        seed (int): seed of the latent noise. Default: 0.

    Returns:
        ``(ce, kl)``: floats, nats per token.

    Example:
        >>> lang = MarkovLanguage(vocab_size=8)
        >>> ce, kl = evaluate_bottleneck(BottleneckLM(8), lang, num_samples=4)
        >>> ce > lang.entropy_rate and kl >= 0
        True
    """
    where = "evaluate_bottleneck"
    check_type("model", model, BottleneckLM, where=where)
    check_type("language", language, MarkovLanguage, where=where)
    check_number("num_samples", num_samples, where=where, low=1, integer=True)
    check_seed(seed, where=where)
    V = language.vocab_size
    check_relation(model.config["vocab_size"] == V, "the model's 'vocab_size' must equal the language's",
                   where=where, model_vocab_size=model.config["vocab_size"], language_vocab_size=V)
    dev = next(model.parameters()).device
    g = torch.Generator(device=dev).manual_seed(seed)
    # Every token once per row: the model looks at one token at a time, so a row needs no order.
    x = torch.arange(V, device=dev).expand(num_samples, V)  # (S, V)
    logits, mu, logvar = model(x, generator=g)  # (S, V, V), (S, V, K), (S, V, K)
    # float64 on the CPU: exact sums, and MPS has no float64.
    log_q = torch.log_softmax(logits.cpu().double(), dim=-1).mean(dim=0)  # (V, V): E_z log q(y | x)
    joint = language.stationary[:, None] * language.transition  # (V, V): p(x_t = x, x_{t+1} = y)
    ce = float(-(joint * log_q).sum())
    kl_x = _kl_to_prior(mu[0].cpu().double(), logvar[0].cpu().double())  # (V,): row 0, as every row has the same mu
    kl = float(language.stationary @ kl_x)
    return ce, kl


@dataclass
class BottleneckHistory:
    """Everything a :class:`BottleneckRun` recorded: plain lists, JSON-serialisable.

    Per step ``i``: ``step[i]``, ``ce[i]`` (next-token cross-entropy of the mini-batch),
    ``kl[i]`` (its KL term), ``strength[i]`` (the ``w`` used), ``loss[i] = ce + w * kl``.
    ``events``: ``{"step", "kind", "text"}`` dicts: strength changes (``"change"``) and
    divergence (``"diverged"``). ``eval_ce``/``eval_kl``: population values from
    :func:`evaluate_bottleneck` when :func:`train_bottleneck` finished (None if it diverged).
    """

    step: list[int] = field(default_factory=list)
    ce: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    strength: list[float] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    stop_reason: str = "running"
    stop_step: int | None = None
    eval_ce: float | None = None
    eval_kl: float | None = None
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.step)

    @property
    def loss(self) -> list[float]:
        return [c + w * k for c, w, k in zip(self.ce, self.strength, self.kl)]

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"

    def add_event(self, step: int, kind: str, text: str) -> None:
        self.events.append({"step": int(step), "kind": kind, "text": text})

    def to_dict(self) -> dict:
        """A JSON-serialisable copy (NaN stays a float; ``json`` writes it as NaN)."""
        return copy.deepcopy(self.__dict__)


class BottleneckRun:
    """A resumable training run of a :class:`BottleneckLM` whose masking strength can change
    while it trains.

    ``run.strength`` is read at **every** step: set it from a slider's observer, a callback or
    another thread, and the next step uses it; the change is recorded as an event
    ``{"step", "kind": "change", "text"}`` so the plot can mark it. ``train(n)`` can be called
    again to continue (same model, optimizer state and data stream).

    Each step: (1) draw a fresh batch of text, (2) forward with a fresh latent sample,
    (3) ``loss = CE + w * KL``, (4) Adam step, (5) keep ``CE``/``KL`` as device tensors, copied
    back every ``readback_every`` steps (a per-step ``.item()`` would make a GPU wait each step).
    A NaN/inf loss found at a readback stops the run cleanly: ``history.stop_reason ==
    "diverged"``, the offending step is the last one recorded; it never raises.

    Args:
        language (MarkovLanguage): the data.
        strength (float): initial masking strength ``w >= 0``. Default: 0.5.
        model (BottleneckLM, optional): the model to train (moved to ``device``); None makes
            ``BottleneckLM(V, d_model, latent)`` initialised from ``seed``.
        batch_size (int): sequences per step. Default: 128.
        seq_len (int): tokens per sequence (>= 2). Default: 16.
        lr (float): Adam's learning rate. Default: 1e-2.
        d_model, latent (int): sizes of a new model. Default: 32, 16.
        readback_every (int): steps between copies of the losses from the device. Default: 50.
        seed (int): seeds the model's initialisation, the text stream and the latent noise.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None (:func:`course_lib.device.default_device`).

    Attributes:
        model, optimizer, history (BottleneckHistory), step (int: steps done so far).

    Example:
        >>> run = BottleneckRun(MarkovLanguage(vocab_size=8), strength=0.1, seed=0, device="cpu")
        >>> h = run.train(20)
        >>> run.strength = 1.0          # e.g. from a slider: used from the next step on
        >>> h = run.train(10)
        >>> len(h), h.strength[19:21], h.events[0]["text"]
        (30, [0.1, 1.0], 'strength 0.1 -> 1')
    """

    def __init__(self, language: MarkovLanguage, *, strength: float = 0.5, model: BottleneckLM | None = None,
                 batch_size: int = 128, seq_len: int = 16, lr: float = 1e-2, d_model: int = 32, latent: int = 16,
                 readback_every: int = 50, seed: int = 0, device=None):
        where = "BottleneckRun"
        check_type("language", language, MarkovLanguage, where=where)
        check_number("strength", strength, where=where, low=0.0)
        check_type("model", model, (BottleneckLM, type(None)), where=where, expected="BottleneckLM or None")
        check_number("batch_size", batch_size, where=where, low=1, integer=True)
        check_number("seq_len", seq_len, where=where, low=2, integer=True)
        check_number("lr", lr, where=where, low=0.0, low_open=True)
        check_number("readback_every", readback_every, where=where, low=1, integer=True)
        check_seed(seed, where=where)
        self.device = resolve_device(device, where=where)
        if model is None:
            # The initial weights from `seed`: the same for every strength of a sweep. fork_rng
            # leaves the caller's global random state as it was.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = BottleneckLM(language.vocab_size, d_model=d_model, latent=latent)
        check_relation(model.config["vocab_size"] == language.vocab_size,
                       "the model's 'vocab_size' must equal the language's", where=where,
                       model_vocab_size=model.config["vocab_size"], language_vocab_size=language.vocab_size)
        self.language = language
        self.model = model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self._batches = language.batches(batch_size, seq_len, seed=seed, device=self.device)
        self._noise = torch.Generator(device=self.device).manual_seed(seed)
        self._strength = float(strength)
        self._last_strength = float(strength)
        self._pending: list[tuple[int, float, torch.Tensor, torch.Tensor]] = []
        self._stop: str | None = None
        self.readback_every = readback_every
        self.step = 0
        self.history = BottleneckHistory(config=dict(
            strength=float(strength), batch_size=batch_size, seq_len=seq_len, lr=lr,
            latent=model.config["latent"], d_model=model.config["d_model"], seed=seed, device=str(self.device)))

    @property
    def strength(self) -> float:
        """The masking strength ``w`` the next step will use (settable, >= 0)."""
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        self._strength = float(check_number("strength", value, where="BottleneckRun.strength", low=0.0))

    def request_stop(self) -> None:
        """Stop after the current step (from a callback, a button, or another thread)."""
        self._stop = "callback"

    def flush(self) -> None:
        """Copy the pending per-step CE and KL into ``history``; stop the run at a NaN/inf."""
        pending, self._pending = self._pending, []
        if not pending or self.history.diverged:
            return
        values = torch.stack([torch.stack((ce, kl)) for _, _, ce, kl in pending]).tolist()  # (n, 2): one sync
        h = self.history
        for (step, w, _, _), (ce, kl) in zip(pending, values):
            h.step.append(step)
            h.ce.append(ce)
            h.kl.append(kl)
            h.strength.append(w)
            if not (math.isfinite(ce) and math.isfinite(kl)):
                # Keep the offending step in the record, drop what came after it, stop.
                h.stop_reason, h.stop_step = "diverged", step
                h.add_event(step, "diverged", f"loss is not finite (CE = {ce}, KL = {kl}) at step {step}")
                self._stop = "diverged"
                return

    def train(self, num_steps: int, on_step: Callable[["BottleneckRun"], None] | None = None) -> BottleneckHistory:
        """Train ``num_steps`` more steps (fewer if stopped or diverged); returns ``history``.

        Args:
            num_steps (int): steps to add (>= 0).
            on_step (callable, optional): ``f(run)`` after every step; it may set
                ``run.strength``, call ``run.flush()`` (to read ``run.history``) or
                ``run.request_stop()``.
        """
        where = "BottleneckRun.train"
        check_number("num_steps", num_steps, where=where, low=0, integer=True)
        check_type("on_step", on_step, (Callable, type(None)), where=where, expected="callable or None")
        h = self.history
        if h.diverged:  # a NaN model stays NaN: nothing to continue
            return h
        h.stop_reason, h.stop_step, self._stop = "running", None, None
        t0 = time.perf_counter()
        self.model.train()
        try:
            with skip_value_checks():  # the language emits valid ids; checking them each step is a sync
                for _ in range(num_steps):
                    if self._stop is not None:
                        break
                    w = self._strength  # read once: the whole step uses one w, even if a thread sets it now
                    if w != self._last_strength:
                        h.add_event(self.step, "change", f"strength {self._last_strength:.3g} -> {w:.3g}")
                        self._last_strength = w
                    tokens = next(self._batches)  # (B, T)
                    loss, ce, kl = bottleneck_loss(self.model(tokens, generator=self._noise), tokens, w)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                    self._pending.append((self.step, w, ce.detach(), kl.detach()))
                    self.step += 1
                    if len(self._pending) >= self.readback_every:
                        self.flush()
                    if on_step is not None:
                        on_step(self)
        except KeyboardInterrupt:  # Jupyter's stop button: keep what was recorded
            self._stop = "interrupted"
        self.flush()
        h.seconds += time.perf_counter() - t0
        if not h.diverged:
            h.stop_reason = self._stop or "completed"
            if self._stop is not None:
                h.stop_step = self.step - 1
                h.add_event(self.step - 1, self._stop, "stopped" if self._stop == "callback" else self._stop)
        return h

    def evaluate(self, num_samples: int = 256) -> tuple[float, float]:
        """Population ``(CE, KL)`` of the model now (:func:`evaluate_bottleneck`)."""
        return evaluate_bottleneck(self.model, self.language, num_samples=num_samples)


def train_bottleneck(language: MarkovLanguage, *, strength: float = 0.5, num_steps: int = 1000,
                     on_step: Callable[[BottleneckRun], None] | None = None, **kwargs) -> BottleneckHistory:
    """Train a fresh :class:`BottleneckLM` at masking strength ``strength``; returns its history.

    One call for a sweep over strengths: the same ``seed`` gives every strength the same initial
    weights and the same text, so the runs differ only in ``w``. At the end the population CE
    and KL are stored in ``history.eval_ce`` and ``history.eval_kl``.

    Args:
        language (MarkovLanguage): the data.
        strength (float): masking strength ``w >= 0``. Default: 0.5.
        num_steps (int): Adam steps (>= 1). Default: 1000.
        on_step (callable, optional): ``f(run)`` after every step (see :class:`BottleneckRun`).
        **kwargs: the other arguments of :class:`BottleneckRun` (``batch_size``, ``seq_len``,
            ``lr``, ``latent``, ``seed``, ``device``, ...).

    Returns:
        BottleneckHistory: per-step ``ce``, ``kl``, ``strength``; ``eval_ce``, ``eval_kl``.

    Example:
        >>> lang = MarkovLanguage(vocab_size=32, scale=50.0, seed=0)
        >>> h = train_bottleneck(lang, strength=10.0, num_steps=150, seed=0, device="cpu")
        >>> h.stop_reason, abs(h.eval_ce - lang.unigram_entropy) < 0.05   # collapsed: frequencies only
        ('completed', True)
    """
    check_number("num_steps", num_steps, where="train_bottleneck", low=1, integer=True)
    run = BottleneckRun(language, strength=strength, **kwargs)
    history = run.train(num_steps, on_step=on_step)
    if not history.diverged:
        history.eval_ce, history.eval_kl = run.evaluate()
    return history


class BottleneckMLP(nn.Module):
    """An MLP whose last hidden layer passes a Gaussian bottleneck: the training lab's model
    for *masking strength* on a hidden representation.

    ``X -> MLP body -> (mu, log sigma^2) (latent each) -> z = mu + sigma * eps -> logits``.
    The loss adds ``strength * KL(N(mu, sigma^2) || N(0, I))``: a large strength pushes the
    latent towards pure noise (the input is "masked" from the head) and the loss towards the
    baseline of a model that ignores ``X``. In eval mode ``z = mu`` (no noise).

    After each forward, ``self.kl`` holds the batch-mean KL (a scalar tensor), so a loss
    function can read it.

    Args:
        in_features, out_features, width, depth, activation, dropout: as :class:`MLP`.
        latent (int): size K of the bottleneck. Default 8.

    Example:
        >>> m = BottleneckMLP(2, 3, width=8, latent=4)
        >>> m(torch.zeros(5, 2)).shape, m.kl.ndim
        (torch.Size([5, 3]), 0)

    References:
        Alemi et al., Deep Variational Information Bottleneck, arXiv 1612.00410.
    """

    def __init__(self, in_features: int, out_features: int, width: int = 64, depth: int = 2,
                 activation: str = "relu", dropout: float = 0.0, latent: int = 8):
        super().__init__()
        check_number("latent", latent, where="BottleneckMLP", low=1, high=SIZE_MAX, integer=True)
        check_number("out_features", out_features, where="BottleneckMLP", low=1, high=SIZE_MAX, integer=True)
        self.body = MLP(in_features, 2 * latent, width=width, depth=depth, activation=activation, dropout=dropout)
        self.head = nn.Linear(latent, out_features)
        self.kl = torch.zeros(())
        self.config = dict(self.body.config, out_features=out_features, latent=latent)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.body(X).chunk(2, dim=-1)                      # (N, K) each
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu) if self.training else mu
        self.kl = gaussian_kl(mu, logvar)  # summed over the latent, mean over the batch
        return self.head(z)                                            # (N, out_features)
