"""Classification metrics for learning curves: accuracy, precision and recall from logits.

The loss is what training minimises; these are what a person reads. They can disagree: a
model can lower its cross-entropy (more confident on what it already gets right) while its
accuracy stays flat.

Precision and recall are macro-averaged: computed per class and then averaged, so every
class counts the same, however rare.
"""

from __future__ import annotations

import torch

from ._validation import check_relation, check_tensor

__all__ = ["accuracy", "precision", "recall", "CLASSIFICATION_METRICS"]


def _predictions(logits: torch.Tensor, y: torch.Tensor, where: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    check_tensor("logits", logits, where=where, ndim=(1, 2), floating=True, shape_hint="(N, C) or (N,)")
    check_tensor("y", y, where=where, ndim=1, floating=False, shape_hint="(N,)")
    check_relation(logits.shape[0] == y.shape[0], "'logits' and 'y' must have the same number of rows",
                   where=where, logits_rows=logits.shape[0], y_rows=y.shape[0])
    n_classes = 2 if logits.ndim == 1 or logits.shape[1] == 1 else logits.shape[1]
    if y.numel():   # a label past the classes would be scored as a plain miss
        lo, hi = int(y.min()), int(y.max())
        check_relation(lo >= 0 and hi < n_classes, f"'y' must hold labels in [0, {n_classes - 1}]", where=where,
                       **{"y.min()": lo, "y.max()": hi})
    if n_classes == 2 and (logits.ndim == 1 or logits.shape[1] == 1):   # one logit: binary, positive if > 0
        return (logits.reshape(-1) > 0).long(), y, 2
    return logits.argmax(dim=1), y, n_classes


def _nan_in(logits: torch.Tensor) -> bool:
    """NaN logits (a diverged model) score NaN: an arg-max of NaN would be a made-up class."""
    return bool(torch.isnan(logits).any())


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose arg-max class is the label.

    Args:
        logits (Tensor): (N, C) class scores, or (N,) / (N, 1) for a binary logit.
        y (Tensor): (N,) integer labels.

    Example:
        >>> round(accuracy(torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), torch.tensor([0, 1, 1])), 4)
        0.6667
    """
    pred, y, _ = _predictions(logits, y, "accuracy")
    return float("nan") if _nan_in(logits) else float((pred == y).float().mean())


def _per_class(logits, y, where):
    pred, y, n_classes = _predictions(logits, y, where)
    classes = torch.arange(n_classes, device=pred.device)
    hit = (pred[:, None] == classes) & (y[:, None] == classes)          # (N, C) true positives
    tp = hit.sum(0).float()
    predicted = (pred[:, None] == classes).sum(0).float()               # (C,) TP + FP
    actual = (y[:, None] == classes).sum(0).float()                     # (C,) TP + FN
    return tp, predicted, actual


def precision(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Macro precision: per class TP / (TP + FP), averaged over the classes that were predicted
    at least once (a class never predicted has no precision to speak of).

    Example:
        >>> precision(torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), torch.tensor([0, 1, 1]))
        0.75
    """
    tp, predicted, _ = _per_class(logits, y, "precision")
    if _nan_in(logits):
        return float("nan")
    seen = predicted > 0
    return float((tp[seen] / predicted[seen]).mean()) if seen.any() else 0.0


def recall(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Macro recall: per class TP / (TP + FN), averaged over the classes present in ``y``.

    Example:
        >>> recall(torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), torch.tensor([0, 1, 1]))
        0.75
    """
    tp, _, actual = _per_class(logits, y, "recall")
    if _nan_in(logits):
        return float("nan")
    seen = actual > 0
    return float((tp[seen] / actual[seen]).mean()) if seen.any() else 0.0


CLASSIFICATION_METRICS = {"accuracy": accuracy, "precision": precision, "recall": recall}
