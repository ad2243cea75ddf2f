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
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_relation

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

def import_optimizer_machinery() -> None:
    """Import now what the first optimizer of a process imports: ``torch._dynamo`` (torch.optim
    loads it when the first optimizer is built), 1.5-1.9 s of CPU on a laptop-class core. Called
    while a lesson or a lab is being set up; otherwise a lab's first Play sat still for about two
    seconds before its first step and frame. Later calls cost nothing."""
    try:
        import torch._dynamo  # noqa: F401
    except Exception:  # noqa: BLE001, S110 - only a head start: torch.optim imports (or reports) it itself
        pass


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


# ---------------------------------------------------------------------------------------------
# The first batch: data that does not fit the model, said plainly
# ---------------------------------------------------------------------------------------------

def check_data_values(where: str, **tensors) -> None:
    """Refuse NaN or inf in float data before training: a diverged run would blame the learning rate."""
    for name, t in tensors.items():
        if not (isinstance(t, torch.Tensor) and t.is_floating_point()):
            continue
        check_relation(t.shape[0] > 0 if t.ndim else True, f"'data' {name} must have at least one row", where=where,
                       **{f"{name}_rows": t.shape[0] if t.ndim else 1})
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            row = int(bad.reshape(t.shape[0], -1).any(dim=1).nonzero()[0]) if t.ndim else 0
            got = t[row].tolist() if t.ndim else t.item()
            raise ValueError(f"{where}(): 'data' {name} contains NaN or inf (row {row}); "
                             f"clean the data before training, got {name}[{row}]={got}")


def check_first_batch(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn, where: str) -> None:
    """Run ``model`` and the course's checked ``loss_fn`` once on ``(X, y)`` (the caller sets eval mode
    and no_grad), turning torch's errors about dtypes and shapes into the course's message: a label out of
    range, a float64 X for a float32 model, or a model that expects another number of features."""
    dtypes = sorted({str(p.dtype).replace("torch.", "") for p in model.parameters() if p.is_floating_point()})
    if X.is_floating_point() and dtypes and str(X.dtype).replace("torch.", "") not in dtypes:
        raise TypeError(f"{where}(): 'data' X is {str(X.dtype).replace('torch.', '')} while the model's parameters "
                        f"are {', '.join(dtypes)}; convert one of them (X.float() or model.double()), "
                        f"got X.dtype={X.dtype}")
    try:
        y_hat = model(X)
    except RuntimeError as err:
        text = str(err)
        if not any(s in text for s in ("mat1 and mat2", "shapes cannot be multiplied", "size mismatch",
                                       "Expected", "expected input")):
            raise
        first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
        expects = (f"the model expects {first.in_features} input features" if first is not None
                   else "the model does not accept this shape")
        raise ValueError(f"{where}(): 'data' does not fit the model: {expects}, got X of shape "
                         f"{tuple(X.shape)}") from None
    loss_fn(y_hat, y)
