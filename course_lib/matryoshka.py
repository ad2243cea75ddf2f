"""Gradient statistics of Matryoshka representations: MRL against sequential MRL (SMRL).

A compression layer ``W`` of shape ``(M, D)`` maps a frozen feature ``x`` (D,) to an
embedding ``z = W x`` (M,). Matryoshka Representation Learning (MRL) asks every prefix
``z[:m]`` of a few nested sizes ``m_1 < m_2 < ... < m_K = M`` to work on its own, so that the
embedding can be truncated after training::

    loss_MRL = sum_k c_k * CE(head_k(z[:m_k]), y)          # all sizes in every step

Rows ``[0, m_1)`` of ``W`` appear in *every* prefix, so they receive a gradient from every loss.
With cosine heads the derivative of a loss with respect to ``z[:m]`` scales with
``1 / ||z[:m]||``, and ``||z[:m]|| ~ sqrt(m / M) ||z||``: the half-size prefix's loss pushes
the leading rows ``sqrt(2)`` times harder than the full-size loss, so if the two pushes were
aligned the leading rows would get ``1 + sqrt(2) ~ 2.4`` times the trailing rows' gradient
(SMEC's argument). In this toy the class vectors are unit vectors too (a 96-d one has
coordinates ``sqrt(2)`` larger than a 192-d one: a share of about 2) and the two pushes are
nearly perpendicular (``sqrt(1 + 2^2) ~ 2.2``): measured, about 2.1. Either way the leading
rows get a multiple of the trailing rows' gradient at every step, and more noise with it.

Sequential MRL (SMRL, part of SMEC) trains one size at a time, halving it in stages
(``M -> M/2 -> ...``), each stage with its own loss; rows that earlier stages trained and the
current stage drops are frozen (their gradient is exactly zero and they do not move). Inside
a stage every trained row sees one loss, so the leading and trailing slices get gradients of
the same size.

This module holds the toy of the lesson: the frozen-feature data, the layer with its nested
cosine heads, the two losses, and a recorder of the **raw** gradient ``W.grad`` per slice of
rows (mean of ``|g|`` per step, and the variance of ``g`` over the steps of an epoch), not the
optimizer's update: Adam divides by a running RMS of the gradient, so its steps hide the size
difference that the raw gradients show.

References:
    Kusupati et al., *Matryoshka Representation Learning*, NeurIPS 2022, arXiv 2205.13147.
    Zhang, Chen, Liu & Zheng, *SMEC: Rethinking Matryoshka Representation Learning for
    Retrieval Embedding Compression*, EMNLP 2025, arXiv 2510.12474 (SMRL; the figure
    "gradient size vs epochs").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_choice, check_number, check_relation, check_seed, check_tensor, check_type
from .device import resolve_device

__all__ = [
    "METHODS", "OPTIMIZERS", "make_frozen_features", "MatryoshkaLayer", "mrl_loss", "Stage", "smrl_stages",
    "SliceStats", "slice_stats", "GradientRecorder", "MatryoshkaHistory", "train_matryoshka",
]

METHODS = ("mrl", "smrl")
OPTIMIZERS = ("adam", "sgd")
_DEFAULT_LR = {"adam": 1e-3, "sgd": 1.0}  # SGD needs a larger lr: raw gradients here are ~1e-3


# -- Argument checks --------------------------------------------------------------------------

def _check_sizes(sizes, where: str, max_size: int | None = None, max_name: str = "in_features") -> tuple[int, ...]:
    """Nested sizes: a non-empty sequence of strictly increasing ints in [1, max_size]."""
    check_type("sizes", sizes, (list, tuple), where=where, expected="list or tuple of ints")
    check_relation(len(sizes) >= 1, "'sizes' must hold at least one size", where=where, sizes=sizes)
    for m in sizes:
        check_number("sizes", m, where=where, low=1, integer=True)
    sizes = tuple(int(m) for m in sizes)
    check_relation(all(a < b for a, b in zip(sizes, sizes[1:])), "'sizes' must be strictly increasing",
                   where=where, sizes=sizes)
    if max_size is not None:
        check_relation(sizes[-1] <= max_size, f"'sizes' must be <= {max_name}={max_size}",
                       where=where, sizes=sizes)
    return sizes


def _check_weights(weights, n: int, where: str) -> tuple[float, ...]:
    """Loss weights c_k: None (all 1) or n floats >= 0, not all zero."""
    if weights is None:
        return (1.0,) * n
    check_type("weights", weights, (list, tuple), where=where, expected="list or tuple of floats, or None")
    check_relation(len(weights) == n, "'weights' must have one weight per size", where=where,
                   weights=weights, num_sizes=n)
    for c in weights:
        check_number("weights", c, where=where, low=0.0)
    check_relation(sum(weights) > 0, "'weights' must not all be 0", where=where, weights=weights)
    return tuple(float(c) for c in weights)


# -- 1. Data: frozen features, class means plus noise -----------------------------------------

def make_frozen_features(num_samples: int = 4000, *, dim: int = 384, num_classes: int = 20,
                         mean_std: float = 0.35, seed: int = 0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of a frozen encoder, as a toy: ``x = mu_y + N(0, I)``.

    The class means ``mu_c ~ N(0, mean_std^2 I)`` are drawn first and depend on ``seed`` only.
    For a held-out set, draw once and split (``X[:4000]``, ``X[4000:]``).

    Args:
        num_samples (int): N, samples (>= 1). Default: 4000.
        dim (int): D, feature size (>= 1). Default: 384.
        num_classes (int): C (>= 2). Default: 20.
        mean_std (float): spread of the class means (>= 0). Default: 0.35.
        seed (int): seeds the means, the labels and the noise. Default: 0.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None (the best available).

    Returns:
        (X, y): ``X`` float32 of shape ``(N, D)``; ``y`` int64 of shape ``(N,)`` in ``[0, C)``.

    Example:
        >>> X, y = make_frozen_features(100, dim=8, num_classes=4, device="cpu")
        >>> X.shape, y.shape, int(y.max())
        (torch.Size([100, 8]), torch.Size([100]), 3)
    """
    where = "make_frozen_features"
    num_samples = check_number("num_samples", num_samples, where=where, low=1, integer=True)
    dim = check_number("dim", dim, where=where, low=1, integer=True)
    num_classes = check_number("num_classes", num_classes, where=where, low=2, integer=True)
    check_number("mean_std", mean_std, where=where, low=0.0)
    check_seed(seed, where=where)
    dev = resolve_device(device, where=where)
    # Drawn on the CPU in a fixed order (means, labels, noise): every device gets the same numbers.
    g = torch.Generator().manual_seed(seed)
    means = mean_std * torch.randn(num_classes, dim, generator=g)  # (C, D)
    y = torch.randint(0, num_classes, (num_samples,), generator=g)  # (N,)
    X = means[y] + torch.randn(num_samples, dim, generator=g)  # (N, D)
    return X.to(dev), y.to(dev)


# -- 2. The layer: one compression matrix, one cosine head per nested size --------------------

class MatryoshkaLayer(nn.Module):
    """A linear compression layer ``z = x W^T`` with a cosine-classifier head per nested prefix.

    Head ``k`` scores the L2-normalised prefix ``z[:m_k]`` against L2-normalised class vectors:
    ``logits_k = scale * normalize(z[:m_k]) @ normalize(H_k)^T``. Normalising is what makes the
    gradient of a short prefix large: it scales with ``1 / ||z[:m_k]||`` (and a unit class
    vector of ``m_k`` coordinates has entries of about ``1 / sqrt(m_k)``).

    Args:
        in_features (int): D, the feature size. Default: 384.
        sizes (tuple of int): nested sizes ``m_1 < ... < m_K <= D``; the layer has
            ``M = m_K`` rows. Default: (96, 192).
        num_classes (int): C. Default: 20.
        scale (float): the cosine heads' temperature (> 0). Default: 10.
        generator (torch.Generator, optional): CPU generator for the initial weights
            (``W ~ N(0, 1/D)``, ``H_k ~ N(0, 1)``).

    Attributes:
        weight (Parameter): ``W``, shape ``(M, D)``. heads (ParameterList): ``H_k``, shape ``(C, m_k)``.

    Example:
        >>> layer = MatryoshkaLayer(8, sizes=(2, 4), num_classes=3)
        >>> [tuple(l.shape) for l in layer(torch.randn(5, 8))]
        [(5, 3), (5, 3)]
    """

    def __init__(self, in_features: int = 384, sizes: Sequence[int] = (96, 192), num_classes: int = 20,
                 scale: float = 10.0, generator: torch.Generator | None = None):
        super().__init__()
        where = "MatryoshkaLayer"
        in_features = check_number("in_features", in_features, where=where, low=1, integer=True)
        self.sizes = _check_sizes(sizes, where, in_features)
        num_classes = check_number("num_classes", num_classes, where=where, low=2, integer=True)
        self.scale = float(check_number("scale", scale, where=where, low=0.0, low_open=True))
        check_type("generator", generator, (torch.Generator, type(None)), where=where,
                   expected="torch.Generator or None")
        M = self.sizes[-1]
        self.weight = nn.Parameter(torch.randn(M, in_features, generator=generator) / math.sqrt(in_features))
        self.heads = nn.ParameterList(
            [nn.Parameter(torch.randn(num_classes, m, generator=generator)) for m in self.sizes])

    def forward(self, x: torch.Tensor, sizes: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Logits ``(B, C)`` for each size in ``sizes`` (default: all of ``self.sizes``)."""
        z = x @ self.weight.T  # (B, M): computed once, each head reads a prefix of it
        out = []
        for m in sizes or self.sizes:
            h = self.heads[self.sizes.index(m)]  # (C, m)
            out.append(self.scale * F.normalize(z[:, :m], dim=-1) @ F.normalize(h, dim=-1).T)  # (B, C)
        return out


# -- 3. The two objectives --------------------------------------------------------------------

def mrl_loss(logits: Sequence[torch.Tensor], y: torch.Tensor, weights: Sequence[float] | None = None) -> torch.Tensor:
    """Matryoshka loss: ``sum_k c_k * CE(logits_k, y)``, one term per nested size.

    Args:
        logits (list of Tensor): one ``(B, C)`` tensor per size, smallest first.
        y (Tensor): class labels, shape ``(B,)``, int64.
        weights (list of float, optional): ``c_k >= 0``, one per size. Default: all 1 (MRL's).

    Returns:
        Tensor: the scalar loss.

    Example:
        >>> logits = [torch.zeros(2, 4), torch.zeros(2, 4)]
        >>> round(float(mrl_loss(logits, torch.tensor([0, 3]), weights=[1.0, 0.5])), 4)  # 1.5 * ln 4
        2.0794

    References:
        Kusupati et al., *Matryoshka Representation Learning*, arXiv 2205.13147 (eq. 1).
    """
    where = "mrl_loss"
    check_type("logits", logits, (list, tuple), where=where, expected="list or tuple of tensors")
    check_relation(len(logits) >= 1, "'logits' must hold at least one tensor", where=where, logits=logits)
    for t in logits:
        check_tensor("logits", t, where=where, ndim=2, floating=True, shape_hint="(B, C)")
    check_tensor("y", y, where=where, ndim=1, floating=False, shape_hint="(B,)")
    weights = _check_weights(weights, len(logits), where)
    return sum(c * F.cross_entropy(t, y) for c, t in zip(weights, logits))


class Stage(NamedTuple):
    """One SMRL stage: train prefix ``size``; rows ``frozen = (start, stop)`` of ``W`` stay fixed."""

    size: int
    frozen: tuple[int, int]


def smrl_stages(sizes: Sequence[int]) -> list[Stage]:
    """The SMRL schedule for nested ``sizes``: largest first, each stage halving (or shrinking)
    the trained prefix; the rows an earlier stage trained and this one drops are frozen.

    The course reads SMRL as: stage ``k`` trains ``W[:m_k]`` and head ``k`` with head ``k``'s loss
    alone, and keeps ``W[m_k:M]`` (trained by the earlier stages) fixed.

    Args:
        sizes (tuple of int): nested sizes, increasing, e.g. ``(96, 192)``.

    Returns:
        list of Stage: e.g. ``[Stage(192, (192, 192)), Stage(96, (96, 192))]`` for 384 -> 192 -> 96.

    Example:
        >>> smrl_stages((96, 192))
        [Stage(size=192, frozen=(192, 192)), Stage(size=96, frozen=(96, 192))]

    References:
        Zhang et al., *SMEC*, arXiv 2510.12474 (Sequential Matryoshka Representation Learning).
    """
    sizes = _check_sizes(sizes, "smrl_stages")
    M = sizes[-1]
    return [Stage(m, (m, M)) for m in reversed(sizes)]


# -- 4. Gradient statistics per slice of rows -------------------------------------------------

class SliceStats(NamedTuple):
    """Statistics of one epoch's gradients, one entry per slice ``[b_i, b_{i+1})`` of rows.

    mean_abs: mean over steps and elements of ``|g|``; var: per-element variance over the steps
    (``ddof=0``), averaged over the slice's elements; var_all: the same over all rows.
    """

    mean_abs: list[float]
    var: list[float]
    var_all: float


def _check_boundaries(boundaries, where: str) -> tuple[int, ...]:
    check_type("boundaries", boundaries, (list, tuple), where=where, expected="list or tuple of ints")
    for b in boundaries:
        check_number("boundaries", b, where=where, low=0, integer=True)
    check_relation(len(boundaries) >= 2 and all(a < b for a, b in zip(boundaries, boundaries[1:])),
                   "'boundaries' must be >= 2 strictly increasing row indices", where=where, boundaries=boundaries)
    return tuple(int(b) for b in boundaries)


def slice_stats(grads: Sequence[torch.Tensor] | torch.Tensor, boundaries: Sequence[int]) -> SliceStats:
    """Per-slice statistics of a list of gradients of ``W`` (the definition; the recorder
    computes the same numbers step by step).

    Args:
        grads (list of Tensor or Tensor): T gradients of shape ``(M, D)``, or one ``(T, M, D)`` tensor.
        boundaries (tuple of int): slice edges ``0 = b_0 < b_1 < ... = M``, e.g. ``(0, 96, 192)``.

    Returns:
        SliceStats: ``mean_abs`` and ``var`` per slice, ``var_all`` over rows ``[b_0, b_last)``.

    Example:
        >>> g = [torch.tensor([[2.0], [1.0]]), torch.tensor([[-2.0], [3.0]])]  # T=2 steps, M=2 rows
        >>> slice_stats(g, (0, 1, 2))
        SliceStats(mean_abs=[2.0, 2.0], var=[4.0, 1.0], var_all=2.5)
    """
    where = "slice_stats"
    if isinstance(grads, (list, tuple)):
        check_relation(len(grads) >= 1, "'grads' must hold at least one gradient", where=where, grads=grads)
        for g in grads:
            check_tensor("grads", g, where=where, ndim=2, floating=True, shape_hint="(M, D)")
        grads = torch.stack(list(grads))
    check_tensor("grads", grads, where=where, ndim=3, floating=True, shape_hint="(T, M, D)")
    b = _check_boundaries(boundaries, where)
    check_relation(b[-1] <= grads.shape[1], "'boundaries' must end at or before row M", where=where,
                   boundaries=b, M=grads.shape[1])
    G = grads.double()  # (T, M, D): float64, so this definition is also the tests' reference
    var = G.var(dim=0, unbiased=False)  # (M, D): variance over the steps
    mean_abs = [float(G[:, lo:hi].abs().mean()) for lo, hi in zip(b, b[1:])]
    return SliceStats(mean_abs, [float(var[lo:hi].mean()) for lo, hi in zip(b, b[1:])], float(var[b[0]:b[-1]].mean()))


class GradientRecorder:
    """Records the raw gradient of ``W`` at every step and summarises each epoch per slice.

    ``record(grad)`` keeps, on the gradient's device: the step's mean ``|g|`` per slice, and a
    running mean and sum of squared deviations per element (Welford's update: one pass, no list
    of gradients, no ``E[g^2] - E[g]^2`` cancellation). ``end_epoch()`` copies the numbers back
    once and starts the next epoch. The numbers equal :func:`slice_stats` on the same gradients.

    Args:
        boundaries (tuple of int): slice edges, e.g. ``(0, 96, 192)``.

    Example:
        >>> rec = GradientRecorder((0, 1, 2))
        >>> rec.record(torch.tensor([[2.0], [1.0]])); rec.record(torch.tensor([[-2.0], [3.0]]))
        >>> rec.end_epoch()
        SliceStats(mean_abs=[2.0, 2.0], var=[4.0, 1.0], var_all=2.5)
    """

    def __init__(self, boundaries: Sequence[int]):
        self.boundaries = _check_boundaries(boundaries, "GradientRecorder")
        self.step_mean_abs: list[list[float]] = []  # every step of every finished epoch, per slice
        self._reset()

    def _reset(self) -> None:
        self._n, self._mean, self._m2, self._abs = 0, None, None, []

    def record(self, grad: torch.Tensor) -> None:
        """Add one step's gradient ``(M, D)`` (raw ``W.grad``, before the optimizer step)."""
        b = self.boundaries
        g = grad.detach()[b[0]:b[-1]].float()  # (rows, D)
        self._abs.append(torch.stack([g[lo - b[0]:hi - b[0]].abs().mean() for lo, hi in zip(b, b[1:])]))  # (S,)
        self._n += 1
        if self._mean is None:
            self._mean, self._m2 = g.clone(), torch.zeros_like(g)
            return
        delta = g - self._mean  # Welford: mean_n = mean_{n-1} + delta / n; M2 += delta * (g - mean_n)
        self._mean += delta / self._n
        self._m2 += delta * (g - self._mean)

    def end_epoch(self) -> SliceStats:
        """The epoch's :class:`SliceStats` (one device-to-host copy); resets for the next epoch."""
        assert self._n > 0, "end_epoch() before any record()"
        b = self.boundaries
        var = self._m2 / self._n  # (rows, D), ddof=0
        per_slice = torch.stack([var[lo - b[0]:hi - b[0]].mean() for lo, hi in zip(b, b[1:])])  # (S,)
        steps = torch.stack(self._abs)  # (T, S)
        values = torch.cat([steps.mean(0), per_slice, var.mean()[None]]).tolist()  # one sync
        self.step_mean_abs += steps.tolist()
        S = len(b) - 1
        self._reset()
        return SliceStats(values[:S], values[S:2 * S], values[-1])


# -- 5. Training: MRL (all sizes at once) or SMRL (one size per stage) ----------------------

@dataclass
class MatryoshkaHistory:
    """What :func:`train_matryoshka` recorded, per epoch (plain lists, JSON-serialisable).

    ``boundaries``: slice edges, e.g. ``[0, 96, 192]``. Per epoch ``e``: ``stage[e]`` (index into
    ``config["stages"]``; always 0 for MRL), ``mean_abs[e]``/``var[e]`` (one value per slice,
    raw ``W.grad``), ``var_all[e]``, ``update_abs[e]`` (mean ``|step of W|`` per slice: what the
    optimizer did with the gradient), ``loss[e]`` (mean training loss). ``step_mean_abs``: per
    step, per slice. ``accuracy``: ``{size: accuracy}`` on ``eval_data`` at the end.
    ``stop_reason``: ``"completed"``, ``"stopped"`` (``on_epoch`` returned False),
    ``"interrupted"`` (KeyboardInterrupt) or ``"diverged"`` (a non-finite loss or gradient,
    found at the end of an epoch; that epoch is the last one recorded).
    """

    boundaries: list[int]
    config: dict = field(default_factory=dict)
    stage: list[int] = field(default_factory=list)
    mean_abs: list[list[float]] = field(default_factory=list)
    var: list[list[float]] = field(default_factory=list)
    var_all: list[float] = field(default_factory=list)
    update_abs: list[list[float]] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    step_mean_abs: list[list[float]] = field(default_factory=list)
    accuracy: dict = field(default_factory=dict)
    stop_reason: str = "running"
    seconds: float = 0.0

    @property
    def ratio(self) -> list[float]:
        """Per epoch: mean ``|g|`` of the first slice over the last (NaN where the last is 0)."""
        return [a[0] / a[-1] if a[-1] > 0 else math.nan for a in self.mean_abs]

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"


def _train_epoch(layer, opt, X, y, perm, batch_size, train_sizes, c, frozen, recorder):
    """One epoch of steps; returns the mean loss and the mean ``|step of W|`` per slice (on the device)."""
    W, (lo, hi), b = layer.weight, frozen, recorder.boundaries
    losses, moved = [], []
    for i in range(len(X) // batch_size):  # the incomplete last batch is dropped
        idx = perm[i * batch_size:(i + 1) * batch_size]  # (B,)
        loss = mrl_loss(layer(X[idx], train_sizes), y[idx], c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        W.grad[lo:hi] = 0.0  # freeze the rows an earlier stage trained (an empty slice for MRL)
        recorder.record(W.grad)  # the raw gradient, before the optimizer sees it
        before = W.detach().clone()
        opt.step()
        step = (W.detach() - before).abs()  # (M, D): what the optimizer made of the gradient
        moved.append(torch.stack([step[p:q].mean() for p, q in zip(b, b[1:])]))  # (S,)
        losses.append(loss.detach())
    return torch.stack(losses).mean(), torch.stack(moved).mean(0)


def train_matryoshka(X: torch.Tensor, y: torch.Tensor, *, method: str = "mrl", sizes: Sequence[int] = (96, 192),
                     weights: Sequence[float] | None = None, optimizer: str = "adam", lr: float | None = None,
                     batch_size: int = 128, num_epochs: int = 10, scale: float = 10.0,
                     layer: MatryoshkaLayer | None = None,
                     eval_data: tuple[torch.Tensor, torch.Tensor] | None = None,
                     on_epoch: Callable[[MatryoshkaHistory], bool | None] | None = None,
                     seed: int = 0, device=None) -> MatryoshkaHistory:
    """Train a :class:`MatryoshkaLayer` with MRL or SMRL and record its raw gradient statistics.

    Each step: (1) a mini-batch (reshuffled each epoch, incomplete last batch dropped, so every
    step averages the same number of samples), (2) the stage's loss, (3) backward, (4) zero the
    frozen rows' gradient (SMRL), (5) record ``W.grad`` per slice, (6) optimizer step, and record
    how far each slice moved. Statistics are copied back once per epoch. A non-finite loss or
    gradient ends the run with ``stop_reason="diverged"``; it never raises.

    Args:
        X (Tensor): features, shape ``(N, D)``. y (Tensor): labels, shape ``(N,)``, in ``[0, C)``.
        method (str): ``"mrl"`` (every size's loss at every step) or ``"smrl"`` (one stage per
            size, largest first, :func:`smrl_stages`). Default: ``"mrl"``.
        sizes (tuple of int): nested sizes; the slices are ``[0, m_1), [m_1, m_2), ...``. Default: (96, 192).
        weights (list of float, optional): MRL's ``c_k`` (None: all 1). SMRL uses one loss per stage.
        optimizer (str): ``"adam"`` or ``"sgd"``. Default: ``"adam"``.
        lr (float, optional): learning rate; None: 1e-3 for Adam, 1.0 for SGD.
        batch_size (int): Default: 128. num_epochs (int): epochs per stage (SMRL) or in all (MRL). Default: 10.
        scale (float): cosine heads' scale. Default: 10.
        layer (MatryoshkaLayer, optional): the layer to train, in place (its ``sizes`` must equal
            ``sizes``); None makes a new one from ``seed``. Pass one to look at it afterwards.
        eval_data ((X, y), optional): held-out data for ``history.accuracy`` per size.
        on_epoch (callable, optional): ``f(history)`` after each epoch (e.g. redraw a figure);
            returning False stops the run.
        seed (int): seeds the initial weights and the shuffling. Default: 0.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None (the best available).

    Returns:
        MatryoshkaHistory

    Example:
        >>> X, y = make_frozen_features(512, dim=32, num_classes=4, device="cpu")
        >>> h = train_matryoshka(X, y, sizes=(8, 16), batch_size=64, num_epochs=2, device="cpu")
        >>> h.stop_reason, len(h.mean_abs), h.ratio[0] > 1.5   # leading rows: more gradient
        ('completed', 2, True)

    References:
        Kusupati et al., arXiv 2205.13147 (MRL); Zhang et al., arXiv 2510.12474 (SMRL).
    """
    where = "train_matryoshka"
    check_tensor("X", X, where=where, ndim=2, floating=True, shape_hint="(N, D)")
    check_tensor("y", y, where=where, ndim=1, floating=False, shape_hint="(N,)")
    check_relation(len(X) == len(y), "'X' and 'y' must have the same number of rows", where=where,
                   X_rows=len(X), y_rows=len(y))
    check_choice("method", method, METHODS, where=where)
    sizes = _check_sizes(sizes, where, X.shape[1], "X.shape[1]")
    check_relation(method == "mrl" or weights is None, "'weights' must be None for method='smrl' "
                   "(one loss per stage)", where=where, weights=weights)
    weights = _check_weights(weights, len(sizes), where)
    check_choice("optimizer", optimizer, OPTIMIZERS, where=where)
    lr = _DEFAULT_LR[optimizer] if lr is None else check_number("lr", lr, where=where, low=0.0, low_open=True)
    batch_size = check_number("batch_size", batch_size, where=where, low=1, high=len(X), integer=True)
    num_epochs = check_number("num_epochs", num_epochs, where=where, low=1, integer=True)
    check_seed(seed, where=where)
    check_type("on_epoch", on_epoch, (Callable, type(None)), where=where, expected="callable or None")
    if eval_data is not None:
        check_type("eval_data", eval_data, tuple, where=where, expected="tuple (X, y) or None")
        check_tensor("eval_data[0]", eval_data[0], where=where, ndim=2, floating=True, shape_hint="(N, D)")
        check_tensor("eval_data[1]", eval_data[1], where=where, ndim=1, floating=False, shape_hint="(N,)")
    dev = resolve_device(device, where=where)

    # 1. The same initial weights and batch order on every device: both come from a CPU generator.
    g = torch.Generator().manual_seed(seed)
    if layer is None:
        layer = MatryoshkaLayer(X.shape[1], sizes, max(int(y.max()) + 1, 2), scale, generator=g)
    check_type("layer", layer, MatryoshkaLayer, where=where, expected="MatryoshkaLayer or None")
    check_relation(layer.sizes == sizes, "'layer.sizes' must equal 'sizes'", where=where,
                   layer_sizes=layer.sizes, sizes=sizes)
    layer.to(dev)
    X, y = X.to(dev), y.to(dev)
    stages = [Stage(sizes[-1], (sizes[-1], sizes[-1]))] if method == "mrl" else smrl_stages(sizes)
    boundaries = (0,) + sizes
    h = MatryoshkaHistory(list(boundaries), config=dict(
        method=method, sizes=list(sizes), weights=list(weights), optimizer=optimizer, lr=lr,
        batch_size=batch_size, num_epochs=num_epochs, scale=scale, seed=seed, device=str(dev),
        stages=[s.size for s in stages]))
    recorder = GradientRecorder(boundaries)
    t0 = time.perf_counter()

    try:
        for k, stage in enumerate(stages):
            # 2. What this stage trains: MRL all sizes with weights c; SMRL one size, weight 1.
            train_sizes, c = (sizes, weights) if method == "mrl" else ((stage.size,), (1.0,))
            params = [layer.weight, *(layer.heads[sizes.index(m)] for m in train_sizes)]
            # A fresh optimizer per stage: with no state and a zero gradient, Adam and SGD leave
            # the frozen rows exactly where the earlier stage put them.
            opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.SGD(params, lr=lr)
            for _ in range(num_epochs):
                perm = torch.randperm(len(X), generator=g).to(dev)  # (N,): reshuffled each epoch
                loss, moved = _train_epoch(layer, opt, X, y, perm, batch_size, train_sizes, c, stage.frozen, recorder)
                # 3. End of epoch: one copy back, then check for divergence (stop, record, mark).
                stats = recorder.end_epoch()
                h.stage.append(k)
                h.mean_abs.append(stats.mean_abs)
                h.var.append(stats.var)
                h.var_all.append(stats.var_all)
                h.update_abs.append(moved.tolist())
                h.loss.append(float(loss))
                h.step_mean_abs = recorder.step_mean_abs
                if not all(math.isfinite(v) for v in [h.loss[-1], stats.var_all, *stats.mean_abs]):
                    h.stop_reason = "diverged"
                elif on_epoch is not None and on_epoch(h) is False:
                    h.stop_reason = "stopped"
                if h.stop_reason != "running":
                    break
            if h.stop_reason != "running":
                break
    except KeyboardInterrupt:  # Jupyter's stop button: keep what was recorded
        h.stop_reason = "interrupted"

    # 4. Accuracy of each truncated embedding, through its own head (what retrieval would keep).
    if eval_data is not None and not h.diverged:
        with torch.no_grad():
            logits = layer(eval_data[0].to(dev))
        h.accuracy = {m: float((lg.argmax(-1) == eval_data[1].to(dev)).float().mean()) for m, lg in zip(sizes, logits)}
    if h.stop_reason == "running":
        h.stop_reason = "completed"
    h.seconds = time.perf_counter() - t0
    return h
