"""What the two training loops share: ``fit`` (``train.py``) and the LR range test (``lr_finder.py``).

A private module: nothing here is part of the course's API, so the names carry no leading
underscore and the two loops import them by name. Three things:

1. **Batches**: :func:`tensor_batches` (shuffled mini-batches forever, a new permutation per
   epoch) and :func:`as_pair` (a batch is ``(X, y)``; a token tensor is its own target).
2. **Optimizers**: :func:`make_optimizer` builds one of :data:`OPTIMIZERS` by name;
   :func:`has_momentum` / :func:`set_momentum` reach SGD's ``momentum`` or Adam's ``beta1``,
   which a cyclical schedule moves opposite to the learning rate (``schedules.py``).
3. **Fused losses**: :data:`FUSED` maps a loss name to torch's fused kernel of the same formula.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

__all__: list[str] = []  # private module: imported by name inside course_lib only

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")

# Named losses run torch's fused kernel inside the loops: the same formula as
# course_lib.losses (tests/test_train.py checks each against the course's own function), one
# kernel instead of three, ~5% of a tiny model's step. Names missing here ("causal_lm", ...)
# use the course's function.
FUSED = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.huber_loss,
         "bce": F.binary_cross_entropy_with_logits, "cross_entropy": F.cross_entropy}


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------

def as_pair(batch):
    """A batch is ``(X, y)``; a bare token tensor ``(B, T)`` is its own target (causal LM)."""
    return (batch, batch) if isinstance(batch, torch.Tensor) else (batch[0], batch[1])


def tensor_batches(X: torch.Tensor, y: torch.Tensor, batch_size: int,
                   gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled mini-batches forever, a new permutation each epoch (sampling without
    replacement inside an epoch, as a ``DataLoader`` with ``shuffle=True`` does).

    Example:
        >>> X = torch.arange(6.).unsqueeze(1); y = 2 * X
        >>> batches = tensor_batches(X, y, 4, torch.Generator().manual_seed(0))
        >>> [tuple(next(batches)[0].shape) for _ in range(3)]  # 6 rows: one batch of 4 per epoch
        [(4, 1), (4, 1), (4, 1)]
    """
    n = X.shape[0]
    if batch_size >= n:  # full-batch gradient descent: no indexing needed
        while True:
            yield X, y
    while True:
        perm = torch.randperm(n, generator=gen).to(X.device)  # (n,)
        for i in range(0, n - batch_size + 1, batch_size):   # drop the ragged last batch
            idx = perm[i:i + batch_size]                       # (batch_size,)
            yield X[idx], y[idx]


# ---------------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------------

def make_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    """One of :data:`OPTIMIZERS` over ``params`` (``name`` is checked by the caller).

    ``"adam"`` adds ``weight_decay * w`` to the gradient (L2); ``"adamw"`` decays the weights
    directly (decoupled: Loshchilov & Hutter, Decoupled Weight Decay Regularization, 2019,
    arXiv 1711.05101). For SGD the two are the same thing.
    """
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def has_momentum(optimizer: torch.optim.Optimizer) -> bool:
    """True if ``optimizer`` has a momentum to cycle: SGD's (or RMSprop's) ``momentum``, or
    Adam's ``beta1``."""
    return "momentum" in optimizer.defaults or "betas" in optimizer.defaults


def set_momentum(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Set SGD's ``momentum`` or Adam's ``beta1`` in every parameter group."""
    for g in optimizer.param_groups:
        if "betas" in g:
            g["betas"] = (value, *g["betas"][1:])
        else:
            g["momentum"] = value
