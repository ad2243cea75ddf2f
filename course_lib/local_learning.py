"""Training with local losses: a deep network cut into K chunks, each with its own head.

End-to-end backprop sends one error signal from the last layer down to the first, so no layer
can update before the whole forward *and* backward pass is done, and every activation must be
kept until then. Laskin et al. cut the network into ``K`` chunks, give each chunk a small head
and its own loss, and stop the gradient at chunk boundaries (``h.detach()``): each chunk then
updates as soon as its own head has spoken, in parallel with the others, keeping only its own
activations. The price: early chunks no longer learn what later chunks need.

Here: the calibrated toy (:func:`make_checkerboard`), the network (:class:`LocalNet`: residual
blocks cut into chunks, run as ``"backprop"`` or ``"local"``, optionally overlapping), training
that records every head and probes every depth (:func:`train_local`, :func:`linear_probe`), the
proof that no gradient crosses a boundary (:func:`gradient_reach`) and what local updates save
(:func:`cost_table`).

References:
    Laskin, Metz, Nabarro, Saroufim, Noune, Luschi, Sohl-Dickstein, Abbeel, *Parallel Training
    of Deep Networks with Local Updates*, 2020, arXiv 2012.03837.
    Belilovsky, Eickenberg, Oyallon, *Greedy Layerwise Learning Can Scale to ImageNet*, 2019,
    arXiv 1812.11446.
    Alain, Bengio, *Understanding intermediate layers using linear classifier probes*, 2016,
    arXiv 1610.01644.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_choice, check_number, check_relation, check_seed, check_tensor, check_type
from .data import DataSplit
from .device import resolve_device

__all__ = ["MODES", "make_checkerboard", "LocalNet", "LocalHistory", "train_local", "linear_probe",
           "probe_depths", "gradient_reach", "cost_table"]

MODES = ("backprop", "local")


def make_checkerboard(n_samples: int = 4000, *, cells: int = 5, noise: float = 0.0, val_fraction: float = 0.25,
                      seed: int = 0, device=None) -> DataSplit:
    """A ``cells x cells`` checkerboard on ``[-1, 1]^2``: the label is the colour of the square.

    Why this task: each square's colour flips across every grid line, so a narrow network needs
    several layers to carve out ``cells**2`` squares, and no single layer's features make the
    colour linearly readable. That is where greedy local losses hurt (lesson 09 calibrates it).

    Args:
        n_samples (int): number of points ``N`` (>= 2), uniform on the square. Default: 4000.
        cells (int): squares per side (>= 2). Default: 5.
        noise (float): std of Gaussian jitter added to the points after labelling. Default: 0.
        val_fraction (float): share of validation points, in ``[0, 1)``. Default: 0.25.
        seed (int): seed of the points and the split. Default: 0.
        device (str or torch.device, optional): where to put the tensors. Default: None (CPU).

    Returns:
        DataSplit: ``X`` (N, 2) float32, ``y`` (N,) int64 in ``{0, 1}``; ``info['chance']`` is the
        validation share of the majority class (what a constant guess scores).

    Example:
        >>> data = make_checkerboard(100, cells=2, seed=0)
        >>> data.X_train.shape, data.y_train.unique().tolist()
        (torch.Size([75, 2]), [0, 1])
    """
    where = "make_checkerboard"
    n_samples = check_number("n_samples", n_samples, where=where, low=2, integer=True)
    cells = check_number("cells", cells, where=where, low=2, integer=True)
    noise = check_number("noise", noise, where=where, low=0)
    val_fraction = check_number("val_fraction", val_fraction, where=where, low=0, high=1, high_open=True)
    seed = check_seed(seed, where=where)
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n_samples, 2, generator=g) * 2 - 1  # (N, 2), uniform on [-1, 1]^2
    square = ((X + 1) / 2 * cells).floor().clamp(max=cells - 1).long()  # (N, 2): column, row
    y = (square[:, 0] + square[:, 1]) % 2  # (N,): the colour alternates like a chessboard
    X = X + noise * torch.randn(X.shape, generator=g)
    n_val = min(max(round(n_samples * val_fraction), 1), n_samples - 1) if val_fraction > 0 else 0
    perm = torch.randperm(n_samples, generator=g)  # (N,)
    val, train = perm[:n_val], perm[n_val:]
    chance = float(torch.bincount(y[val], minlength=2).max()) / max(n_val, 1)
    info = {"kind": "checkerboard", "cells": cells, "noise": noise, "chance": chance}
    split = DataSplit(X[train], y[train], X[val], y[val], name="checkerboard", info=info)
    return split if device is None else split.to(device)


class _Block(nn.Module):
    """``h + ReLU(W h + b)``: a residual block, as in the ResNets the paper cuts into chunks."""

    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + F.relu(self.linear(h))


class LocalNet(nn.Module):
    """A deep MLP of ``num_blocks`` blocks cut into ``num_chunks`` equal chunks, one linear
    head per chunk.

    Block 0 lifts the input to ``width`` units (``ReLU(W x + b)``); blocks 1.. are residual
    (``h + ReLU(W h + b)``). Chunk ``j`` holds blocks ``j * B/K .. (j+1) * B/K - 1`` and head
    ``j`` reads its output. ``forward`` gives every head's logits; ``mode`` only changes where
    gradients may flow, never the values:

    * ``"backprop"``: the last head's loss trains everything; earlier heads read *detached*
      features (they report, they do not shape the trunk). With ``K = 1`` this is plain backprop.
    * ``"local"``: each chunk's input is detached, so head ``j``'s loss trains chunk ``j`` (and
      head ``j``) only. ``overlap=True``: the loss of chunk ``j > 0`` also reaches back into
      chunk ``j - 1`` (the paper's overlapping variant), by re-running chunk ``j - 1`` on its own
      detached input: the same values, a graph one chunk longer.

    With ``seed`` set, the blocks and the *last* head are made first, so every ``num_chunks``
    starts from the same trunk and last head: runs that differ only in ``K`` differ only in K.

    Args:
        in_features (int): input size ``D``. Default: 2.
        n_classes (int): number of classes ``C`` (>= 2). Default: 2.
        width (int): units per block (>= 1). Default: 16.
        num_blocks (int): blocks ``B`` (>= 1). Default: 8.
        num_chunks (int): chunks ``K`` (>= 1, must divide ``B``). Default: 1.
        seed (int, optional): seeds the initial weights (the caller's random state is left as
            it was). Default: None (torch's global generator).

    Shape: ``(N, D) -> list of K tensors (N, C)``.

    Example:
        >>> net = LocalNet(2, 2, num_blocks=4, num_chunks=2, seed=0)
        >>> [tuple(z.shape) for z in net(torch.zeros(5, 2), mode="local")]
        [(5, 2), (5, 2)]

    References:
        Laskin et al., *Parallel Training of Deep Networks with Local Updates*, 2020, arXiv 2012.03837.
    """

    def __init__(self, in_features: int = 2, n_classes: int = 2, *, width: int = 16, num_blocks: int = 8,
                 num_chunks: int = 1, seed: int | None = None):
        super().__init__()
        where = "LocalNet"
        check_number("in_features", in_features, where=where, low=1, integer=True)
        check_number("n_classes", n_classes, where=where, low=2, integer=True)
        check_number("width", width, where=where, low=1, integer=True)
        check_number("num_blocks", num_blocks, where=where, low=1, integer=True)
        check_number("num_chunks", num_chunks, where=where, low=1, integer=True)
        check_seed(seed, where=where, allow_none=True)
        check_relation(num_blocks % num_chunks == 0, "'num_chunks' must divide 'num_blocks'", where=where,
                       num_blocks=num_blocks, num_chunks=num_chunks)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            # 1. The trunk, then the last head, then the other heads: this order makes the trunk
            #    and the last head the same for every K.
            first = nn.Sequential(nn.Linear(in_features, width), nn.ReLU())
            self.blocks = nn.ModuleList([first] + [_Block(width) for _ in range(num_blocks - 1)])
            last = nn.Linear(width, n_classes)
            self.heads = nn.ModuleList([nn.Linear(width, n_classes) for _ in range(num_chunks - 1)] + [last])
        self.num_chunks, self.num_blocks = num_chunks, num_blocks
        self.config = dict(in_features=in_features, n_classes=n_classes, width=width, num_blocks=num_blocks,
                           num_chunks=num_chunks, seed=seed)

    def chunk_blocks(self, j: int) -> range:
        """The block indices of chunk ``j``."""
        per = self.num_blocks // self.num_chunks
        return range(j * per, (j + 1) * per)

    def _run_chunk(self, j: int, h: torch.Tensor) -> torch.Tensor:
        for b in self.chunk_blocks(j):
            h = self.blocks[b](h)
        return h  # (N, width)

    def forward(self, X: torch.Tensor, mode: str = "local", overlap: bool = False) -> list[torch.Tensor]:
        check_choice("mode", mode, MODES, where="LocalNet.forward")
        local = mode == "local"
        h, prev_in = X, None  # prev_in: the (detached) input of the previous chunk, for overlap
        logits = []
        for j, head in enumerate(self.heads):
            # 1. The boundary. Local: nothing below this point will receive head j's gradient.
            h_in = h.detach() if local else h
            x = h_in
            if local and overlap and j > 0:
                # 2. Overlap: re-run chunk j-1 on its detached input; same value as h, but the
                #    graph now reaches exactly one chunk back (and no further).
                x = self._run_chunk(j - 1, prev_in)
            h = self._run_chunk(j, x)  # (N, width)
            # 3. The head. In backprop mode only the last head trains the trunk.
            last = j == self.num_chunks - 1
            logits.append(head(h if (local or last) else h.detach()))  # (N, C)
            prev_in = h_in.detach()
        return logits

    @torch.no_grad()
    def block_outputs(self, X: torch.Tensor) -> list[torch.Tensor]:
        """The input and every block's output: ``B + 1`` tensors, ``(N, D)`` then ``(N, width)``."""
        outs = [X]
        for block in self.blocks:
            outs.append(block(outs[-1]))
        return outs


@dataclass
class LocalHistory:
    """What :func:`train_local` recorded.

    Attributes:
        config (dict): the arguments of the run.
        step (list[int]): the steps recorded, ``0 .. n - 1``.
        head_loss (list[list[float]]): per step, the training loss of each of the K heads.
        eval_step (list[int]): the steps after which the heads were evaluated.
        head_acc (list[list[float]]): per evaluation, the validation accuracy of each head.
        probe_step (list[int]): the steps after which every depth was probed.
        probe_acc (list[list[float]]): per probing, the ``B + 1`` probe accuracies (input first).
        stop_reason (str): ``'completed'``, ``'diverged'`` (a non-finite loss; the run stopped
            there and it is the last step recorded), ``'interrupted'`` or ``'running'``.
        stop_step (int or None): the step where the run stopped early.
        seconds (float): wall time of the training loop.
        model (LocalNet or None): the trained network.
    """

    config: dict = field(default_factory=dict)
    step: list = field(default_factory=list)
    head_loss: list = field(default_factory=list)
    eval_step: list = field(default_factory=list)
    head_acc: list = field(default_factory=list)
    probe_step: list = field(default_factory=list)
    probe_acc: list = field(default_factory=list)
    stop_reason: str = "running"
    stop_step: int | None = None
    seconds: float = 0.0
    model: LocalNet | None = field(default=None, repr=False)

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"

    @property
    def final_accuracy(self) -> float:
        """Validation accuracy of the last head at the last evaluation (NaN if none)."""
        return self.head_acc[-1][-1] if self.head_acc else math.nan


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == y).float().mean())


def linear_probe(features: torch.Tensor, y: torch.Tensor, features_val: torch.Tensor, y_val: torch.Tensor, *,
                 ridge: float = 1e-3) -> float:
    """Validation accuracy of the best *linear* read-out of frozen ``features``.

    A probe asks "is the class linearly decodable from this layer?". This one is closed form:
    ridge regression of one-hot labels on the features plus a bias, then ``argmax``
    (``W = (A^T A + ridge * N * I)^-1 A^T Y`` with ``A = [features, 1]``). It needs no learning
    rate and gives the same answer on every run.

    Args:
        features (Tensor): (N, F) training features.
        y (Tensor): (N,) int64 labels in ``[0, C)``.
        features_val (Tensor): (M, F) validation features.
        y_val (Tensor): (M,) int64 labels.
        ridge (float): L2 penalty per example (>= 0). Default: 1e-3.

    Returns:
        float: accuracy on ``(features_val, y_val)``.

    Example:
        >>> X = torch.tensor([[0.0], [1.0], [2.0], [3.0]]); y = torch.tensor([0, 0, 1, 1])
        >>> linear_probe(X, y, X, y)
        1.0

    References:
        Alain, Bengio, *Understanding intermediate layers using linear classifier probes*, 2016,
        arXiv 1610.01644.
    """
    where = "linear_probe"
    check_tensor("features", features, where=where, ndim=2, floating=True, shape_hint="(N, F)")
    check_tensor("y", y, where=where, ndim=1, floating=False, shape_hint="(N,)")
    check_tensor("features_val", features_val, where=where, ndim=2, floating=True, shape_hint="(M, F)")
    check_tensor("y_val", y_val, where=where, ndim=1, floating=False, shape_hint="(M,)")
    check_number("ridge", ridge, where=where, low=0)
    check_relation(features.shape[0] == y.shape[0], "'features' and 'y' must have the same number of rows",
                   where=where, features_rows=features.shape[0], y_rows=y.shape[0])
    n = features.shape[0]
    # 1. Float64 and a bias column: the normal equations are ill-conditioned in float32.
    A = torch.cat([features.double(), features.new_ones(n, 1, dtype=torch.float64)], dim=1)  # (N, F+1)
    Y = F.one_hot(y, int(max(y.max(), y_val.max())) + 1).double()  # (N, C)
    # 2. Solve (A^T A + ridge N I) W = A^T Y.
    eye = torch.eye(A.shape[1], dtype=torch.float64, device=A.device)
    W = torch.linalg.solve(A.T @ A + ridge * n * eye, A.T @ Y)  # (F+1, C)
    A_val = torch.cat([features_val.double(), features_val.new_ones(len(y_val), 1, dtype=torch.float64)], dim=1)
    return _accuracy(A_val @ W, y_val)


def probe_depths(model: LocalNet, data: DataSplit, *, ridge: float = 1e-3) -> list[float]:
    """A :func:`linear_probe` of the input and of every block's output: ``B + 1`` accuracies.

    Example:
        >>> data = make_checkerboard(200, cells=2, seed=0)
        >>> len(probe_depths(LocalNet(num_blocks=4, seed=0), data))
        5
    """
    check_type("model", model, LocalNet, where="probe_depths")
    dev = next(model.parameters()).device
    train = model.block_outputs(data.X_train.to(dev))  # B + 1 tensors (N, .)
    val = model.block_outputs(data.X_val.to(dev))
    y, y_val = data.y_train.to(dev), data.y_val.to(dev)
    return [linear_probe(a, y, b, y_val, ridge=ridge) for a, b in zip(train, val)]


def train_local(data: DataSplit, *, num_chunks: int = 4, mode: str = "local", overlap: bool = False,
                num_blocks: int = 8, width: int = 16, num_steps: int = 1000, lr: float = 1e-2,
                batch_size: int = 256, eval_every: int = 100, probe_every: int = 0, seed: int = 0, device=None,
                on_eval: Callable[[LocalHistory], None] | None = None) -> LocalHistory:
    """Train a fresh :class:`LocalNet` with Adam; record every head's loss, accuracy and probes.

    Each step: (1) draw a minibatch, (2) one forward pass giving all K heads' logits, (3) add
    the K cross-entropies and call ``backward`` once. In ``"local"`` mode the chunks' graphs
    are disjoint, so each chunk receives exactly the gradient of its own loss (see
    :func:`gradient_reach`): the same update K workers would make in parallel. (4) Adam step.
    The losses stay on the device and are read back at each evaluation; a non-finite loss stops
    the run there (``stop_reason='diverged'``), it never raises.

    Args:
        data (DataSplit): features (N, D) float, labels (N,) int64.
        num_chunks (int): chunks ``K`` (must divide ``num_blocks``). Default: 4.
        mode (str): ``'backprop'`` or ``'local'``. Default: ``'local'``.
        overlap (bool): local losses reach back one chunk. Default: False.
        num_blocks (int): blocks ``B``. Default: 8.
        width (int): units per block. Default: 16.
        num_steps (int): Adam steps (>= 1). Default: 1000.
        lr (float): Adam's learning rate (> 0). Default: 1e-2.
        batch_size (int): examples per step (>= 1; at most the training set). Default: 256.
        eval_every (int): steps between evaluations of the heads on the validation set. Default: 100.
        probe_every (int): steps between probings of every depth; 0 probes only at the end. Default: 0.
        seed (int): seeds the weights and the minibatches. Default: 0.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None (the best available).
        on_eval (callable, optional): ``f(history)`` after each evaluation (a live figure).

    Returns:
        LocalHistory: ``history.final_accuracy`` is the last head's validation accuracy.

    Example:
        >>> h = train_local(make_checkerboard(400, cells=2), num_chunks=2, num_blocks=2, num_steps=100,
        ...                 device="cpu")
        >>> h.stop_reason, len(h.head_loss), len(h.probe_acc[-1]), h.final_accuracy > 0.9
        ('completed', 100, 3, True)

    References:
        Laskin et al., *Parallel Training of Deep Networks with Local Updates*, 2020, arXiv 2012.03837.
    """
    where = "train_local"
    check_type("data", data, DataSplit, where=where)
    check_choice("mode", mode, MODES, where=where)
    check_type("overlap", overlap, bool, where=where)
    check_number("num_blocks", num_blocks, where=where, low=1, integer=True)
    check_number("num_chunks", num_chunks, where=where, low=1, integer=True)
    check_relation(num_blocks % num_chunks == 0, "'num_chunks' must divide 'num_blocks'", where=where,
                   num_blocks=num_blocks, num_chunks=num_chunks)
    check_number("num_steps", num_steps, where=where, low=1, integer=True)
    check_number("lr", lr, where=where, low=0, low_open=True)
    check_number("batch_size", batch_size, where=where, low=1, high=data.n_train, integer=True)
    check_number("eval_every", eval_every, where=where, low=1, integer=True)
    check_number("probe_every", probe_every, where=where, low=0, integer=True)
    check_seed(seed, where=where)
    check_relation(data.n_val > 0, "'data' must have a validation set", where=where, n_val=data.n_val)
    dev = resolve_device(device, where=where)
    n_classes = int(max(data.y_train.max(), data.y_val.max())) + 1
    model = LocalNet(data.X_train.shape[1], n_classes, width=width, num_blocks=num_blocks,
                     num_chunks=num_chunks, seed=seed).to(dev)
    X, y, X_val, y_val = data.X_train.to(dev), data.y_train.to(dev), data.X_val.to(dev), data.y_val.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)  # CPU generator: the same batches on every device
    h = LocalHistory(config=dict(num_chunks=num_chunks, mode=mode, overlap=overlap, num_blocks=num_blocks,
                                 width=width, num_steps=num_steps, lr=lr, batch_size=batch_size, seed=seed,
                                 device=str(dev)), model=model)
    pending: list[torch.Tensor] = []  # (K,) losses still on the device

    def flush() -> bool:  # copy the pending losses back; False at a non-finite loss
        rows = torch.stack(pending).tolist() if pending else []  # (n, K): one sync
        pending.clear()
        for row in rows:
            h.step.append(len(h.step))
            h.head_loss.append(row)
            if not all(math.isfinite(v) for v in row):
                h.stop_reason, h.stop_step = "diverged", h.step[-1]
                return False
        return True

    def probe() -> None:
        h.probe_step.append(len(h.step) - 1)
        h.probe_acc.append(probe_depths(model, DataSplit(X, y, X_val, y_val)))

    t0 = time.perf_counter()
    try:
        for step in range(num_steps):
            idx = torch.randint(0, X.shape[0], (batch_size,), generator=g).to(dev)  # (batch,)
            logits = model(X[idx], mode=mode, overlap=overlap)  # K x (batch, C)
            losses = torch.stack([F.cross_entropy(z, y[idx]) for z in logits])  # (K,)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # local: disjoint graphs, so each chunk gets only its own loss
            opt.step()
            pending.append(losses.detach())
            done = step + 1
            evaluate = done % eval_every == 0 or done == num_steps
            probing = probe_every > 0 and done % probe_every == 0
            if (evaluate or probing) and not flush():
                break
            if evaluate:
                with torch.no_grad():
                    h.eval_step.append(step)
                    h.head_acc.append([_accuracy(z, y_val) for z in model(X_val, mode=mode)])
            if probing:
                probe()
            if evaluate and on_eval is not None:
                on_eval(h)
    except KeyboardInterrupt:  # Jupyter's stop button: keep what was recorded
        flush()
        h.stop_reason, h.stop_step = "interrupted", len(h.step) - 1
    h.seconds = time.perf_counter() - t0
    if h.stop_reason == "running":
        h.stop_reason = "completed"
    if not h.diverged and (not h.probe_step or h.probe_step[-1] != len(h.step) - 1):
        probe()  # the final probe, unless the last evaluation already made it
    return h


def gradient_reach(model: LocalNet, X: torch.Tensor, y: torch.Tensor, *, mode: str = "local",
                   overlap: bool = False) -> torch.Tensor:
    """Which blocks each head's loss sends gradient to: ``reach[j, b] = ||dL_j / d theta_b||``.

    In ``"local"`` mode ``reach[j, b]`` is exactly 0 for every block ``b`` before chunk ``j``
    (before chunk ``j - 1`` with ``overlap``): no gradient crosses a boundary. In
    ``"backprop"`` mode the last head reaches every block.

    Args:
        model (LocalNet): the network (its ``.grad`` fields are not touched).
        X (Tensor): (N, D) inputs.
        y (Tensor): (N,) int64 labels.
        mode (str): ``'backprop'`` or ``'local'``. Default: ``'local'``.
        overlap (bool): the overlapping variant. Default: False.

    Returns:
        Tensor: (K, B) float64 gradient norms, on the CPU.

    Example:
        >>> net = LocalNet(num_blocks=4, num_chunks=2, seed=0)
        >>> X, y = torch.randn(8, 2), torch.tensor([0, 1] * 4)
        >>> (gradient_reach(net, X, y)[1, :2] == 0).all().item()
        True

    References:
        Laskin et al., *Parallel Training of Deep Networks with Local Updates*, 2020, arXiv 2012.03837.
    """
    where = "gradient_reach"
    check_type("model", model, LocalNet, where=where)
    check_tensor("X", X, where=where, ndim=2, floating=True, shape_hint="(N, D)")
    check_tensor("y", y, where=where, ndim=1, floating=False, shape_hint="(N,)")
    check_choice("mode", mode, MODES, where=where)
    losses = [F.cross_entropy(z, y) for z in model(X, mode=mode, overlap=overlap)]
    reach = torch.zeros(model.num_chunks, model.num_blocks, dtype=torch.float64)  # (K, B)
    for j, loss in enumerate(losses):
        for b, block in enumerate(model.blocks):
            # allow_unused: a parameter outside the loss's graph has no gradient at all (None).
            grads = torch.autograd.grad(loss, list(block.parameters()), retain_graph=True, allow_unused=True)
            reach[j, b] = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads if g is not None))
    return reach


def cost_table(num_blocks: int = 8, num_chunks: int = 4, *, width: int = 16, batch_size: int = 256,
               overlap: bool = False) -> dict:
    """What one update costs, backprop against local losses, in layers and activations.

    Counted per *worker*, each chunk on its own worker. ``backward_layers``: blocks one loss's
    backward pass goes through (``B`` for backprop, ``B/K`` local, ``2B/K`` with overlap).
    ``update_wait``: block passes (forward + backward) before the slowest block can update
    (``2B`` for backprop, where block 1 waits for the whole network; ``2B/K`` for local chunks
    in a pipeline, ``+ B/K`` to re-run the previous chunk with overlap).
    ``activation_floats``: the ``(batch_size, width)`` block outputs a worker keeps until its
    backward pass, ``backward_layers * batch_size * width``.

    Args:
        num_blocks (int): blocks ``B``. Default: 8.
        num_chunks (int): chunks ``K`` (must divide ``B``). Default: 4.
        width (int): units per block. Default: 16.
        batch_size (int): examples per step. Default: 256.
        overlap (bool): the overlapping variant. Default: False.

    Returns:
        dict: ``{"backprop": {...}, "local": {...}}``, each with ``backward_layers``,
        ``update_wait``, ``activation_floats``, and ``local["memory_ratio"]``: local over backprop.

    Example:
        >>> t = cost_table(8, 4)
        >>> t["backprop"]["backward_layers"], t["local"]["backward_layers"], t["local"]["memory_ratio"]
        (8, 2, 0.25)

    References:
        Laskin et al., *Parallel Training of Deep Networks with Local Updates*, 2020, arXiv 2012.03837.
    """
    where = "cost_table"
    check_number("num_blocks", num_blocks, where=where, low=1, integer=True)
    check_number("num_chunks", num_chunks, where=where, low=1, integer=True)
    check_number("width", width, where=where, low=1, integer=True)
    check_number("batch_size", batch_size, where=where, low=1, integer=True)
    check_type("overlap", overlap, bool, where=where)
    check_relation(num_blocks % num_chunks == 0, "'num_chunks' must divide 'num_blocks'", where=where,
                   num_blocks=num_blocks, num_chunks=num_chunks)
    per = num_blocks // num_chunks
    reach = per * (2 if overlap and num_chunks > 1 else 1)  # the previous chunk joins the backward
    rows = {
        "backprop": dict(backward_layers=num_blocks, update_wait=2 * num_blocks),
        "local": dict(backward_layers=reach, update_wait=2 * per + (reach - per)),
    }
    for row in rows.values():
        row["activation_floats"] = row["backward_layers"] * batch_size * width
    rows["local"]["memory_ratio"] = rows["local"]["activation_floats"] / rows["backprop"]["activation_floats"]
    return rows
