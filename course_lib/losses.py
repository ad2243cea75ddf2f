"""Loss functions of the course, each written out from its formula rather than calling
``torch.nn.functional``, so the slide and the code match (and the tests against torch are real
oracle tests). :func:`get_loss` turns a config name (``"huber"``) into one of them.

* **Stability.** ``exp`` overflows near 89 (float32). Losses on logits subtract the row maximum
  first (the *log-sum-exp trick*): mathematically a no-op, but every ``exp`` is then ``<= 1``.
* **Reduction.** One value per element (or sample), then ``reduction`` picks ``'mean'`` (default,
  what you train on), ``'sum'`` or ``'none'`` (per element, for plots), exactly as torch does.

Notebook 01 (``notebooks/01_loss_functions.ipynb``) compares MSE, MAE and Huber and what each
does to a line fit with outliers; the later notebooks train with these losses through
``fit(loss_fn=...)``. Each function's docstring cites its source.
"""

from __future__ import annotations

from typing import Callable

import torch

from ._validation import (check_choice, check_number, check_relation, check_same_shape, check_tensor, check_type,
                          value_checks_enabled)

__all__ = [
    "mse_loss", "mae_loss", "huber_loss", "bce_with_logits_loss", "log_softmax", "cross_entropy_loss",
    "hinge_loss", "multiclass_hinge_loss", "kl_div_loss", "kl_divergence", "gaussian_kl",
    "causal_lm_loss", "get_loss", "LOSSES",
]

_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- helpers
def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply an already-validated ``reduction`` to per-element losses."""
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


# Checking *values* (labels in range, probabilities in [0, 1]) is a device sync: ``fit`` checks
# its data once and runs its steps inside ``_validation.skip_value_checks()``, where the checks
# below are skipped.


def _check_pair(name_a: str, a, name_b: str, b, where: str) -> None:
    """Both float tensors of the same shape: the contract of element-wise losses."""
    if not value_checks_enabled():  # inside fit's loop: checked once on the whole data set already
        return
    check_tensor(name_a, a, where=where, floating=True)
    check_tensor(name_b, b, where=where, floating=True)
    check_same_shape(name_a, a, name_b, b, where=where)


def _check_values(ok_fn, name: str, t: torch.Tensor, rule: str, where: str) -> None:
    """Raise a ValueError naming the first entry of ``t`` where the mask ``ok_fn()`` is False."""
    if not value_checks_enabled():
        return
    ok = ok_fn()
    if bool(ok.all()):
        return
    idx = tuple(int(i) for i in (~ok).nonzero()[0])
    key = f"{name}[{', '.join(map(str, idx))}]" if idx else name
    check_relation(False, rule, where=where, **{key: t[idx].item()})


def _check_class_target(name: str, target, num_classes: int, where: str, symbol: str = "C") -> None:
    """Class targets are integer indices in [0, C): a float target is a type error, not a label."""
    check_tensor(name, target, where=where, floating=False)
    rule = f"'{name}' must hold class indices in [0, {symbol}) = [0, {num_classes})"
    _check_values(lambda: (target >= 0) & (target < num_classes), name, target, rule, where)


# ----------------------------------------------------------------------------- regression
def mse_loss(y_hat: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error ``(y_hat - y)**2``; its minimiser is the mean.

    Args:
        y_hat (Tensor): predictions, shape ``(*)``, floating.
        y (Tensor): targets, shape ``(*)``.
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Returns:
        Tensor: a scalar, or shape ``(*)`` for ``'none'``.

    Example:
        >>> mse_loss(torch.tensor([1., 2.]), torch.tensor([1., 4.])).item()
        2.0
    """
    check_choice("reduction", reduction, _REDUCTIONS, where="mse_loss")
    _check_pair("y_hat", y_hat, "y", y, where="mse_loss")
    return _reduce((y_hat - y) ** 2, reduction)


def mae_loss(y_hat: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error ``|y_hat - y|`` (torch's ``l1_loss``); its minimiser is the median.

    Args:
        y_hat (Tensor): predictions, shape ``(*)``, floating.
        y (Tensor): targets, shape ``(*)``.
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Returns:
        Tensor: a scalar, or shape ``(*)`` for ``'none'``.

    Example:
        >>> mae_loss(torch.tensor([1., 2.]), torch.tensor([1., 4.])).item()
        1.0
    """
    check_choice("reduction", reduction, _REDUCTIONS, where="mae_loss")
    _check_pair("y_hat", y_hat, "y", y, where="mae_loss")
    return _reduce((y_hat - y).abs(), reduction)


def huber_loss(y_hat: torch.Tensor, y: torch.Tensor, delta: float = 1.0,
               reduction: str = "mean") -> torch.Tensor:
    """Huber loss: ``0.5 r**2`` if ``|r| < delta`` else ``delta (|r| - 0.5 delta)``, ``r = y_hat - y``.

    Quadratic near 0 (smooth like MSE), linear for outliers (robust like MAE); the pieces meet
    with equal value and slope at ``|r| = delta``.

    Args:
        y_hat (Tensor): predictions, shape ``(*)``, floating.
        y (Tensor): targets, shape ``(*)``.
        delta (float): where the quadratic turns linear, ``> 0``. Default: ``1.0``.
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Returns:
        Tensor: a scalar, or shape ``(*)`` for ``'none'``.

    Example:
        >>> huber_loss(torch.tensor([0.5, 2.0]), torch.zeros(2), reduction="none").tolist()
        [0.125, 1.5]

    References:
        P. J. Huber, "Robust Estimation of a Location Parameter", Ann. Math. Statist., 1964.
    """
    check_choice("reduction", reduction, _REDUCTIONS, where="huber_loss")
    delta = check_number("delta", delta, where="huber_loss", low=0, low_open=True)
    _check_pair("y_hat", y_hat, "y", y, where="huber_loss")
    r = (y_hat - y).abs()
    # Both branches are finite everywhere, so torch.where is safe for the gradient too.
    return _reduce(torch.where(r < delta, 0.5 * r**2, delta * (r - 0.5 * delta)), reduction)


# ----------------------------------------------------------------------------- classification
def bce_with_logits_loss(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy on logits, in the stable form ``log(1 + exp(x)) - x*y``.

    Equal to ``-(y log sigmoid(x) + (1-y) log(1 - sigmoid(x)))``. ``log(1 + exp(x))`` is
    computed as ``logaddexp(0, x)``, which never overflows (``exp`` only sees values <= 0
    inside it) and, unlike the textbook ``max(x, 0) - x*y + log(1 + exp(-|x|))``, has the right
    gradient ``sigmoid(x) - y`` at ``x = 0`` too (autograd takes one side of the kinks of
    ``max`` and ``|x|`` there, giving 0 or 1 instead of 0.5).

    Args:
        logits (Tensor): raw scores ``x``, shape ``(*)``, floating.
        y (Tensor): targets in ``[0, 1]`` (soft labels allowed), shape ``(*)``, floating.
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Returns:
        Tensor: a scalar, or shape ``(*)`` for ``'none'``.

    Example:
        >>> round(bce_with_logits_loss(torch.zeros(3), torch.ones(3)).item(), 4)  # log 2
        0.6931
    """
    check_choice("reduction", reduction, _REDUCTIONS, where="bce_with_logits_loss")
    _check_pair("logits", logits, "y", y, where="bce_with_logits_loss")
    _check_values(lambda: (y >= 0) & (y <= 1), "y", y, "'y' must hold probabilities in [0, 1]", "bce_with_logits_loss")
    loss = torch.logaddexp(torch.zeros_like(logits), logits) - logits * y
    return _reduce(loss, reduction)


def log_softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Stable ``log(softmax(logits))`` along ``dim``: ``z - m - log(sum(exp(z - m)))``, ``m = max z``.

    ``m`` cancels mathematically but makes every ``exp`` argument ``<= 0``: logits of ``1e4``
    give finite values instead of ``inf - inf = nan``.

    Args:
        logits (Tensor): e.g. ``(N, C)``, floating.
        dim (int): the class dimension. Default: ``-1``.

    Returns:
        Tensor: same shape as ``logits``; its ``exp`` sums to 1 along ``dim``.

    Example:
        >>> [round(v, 4) for v in log_softmax(torch.tensor([1e4, 1e4])).tolist()]
        [-0.6931, -0.6931]
    """
    check_tensor("logits", logits, where="log_softmax", floating=True)
    n = max(logits.ndim, 1)
    check_number("dim", dim, where="log_softmax", low=-n, high=n - 1, integer=True)
    # The shift is a constant for the maths; detach it so autograd does not route through argmax.
    m = logits.amax(dim=dim, keepdim=True).detach()  # (N, 1)
    shifted = logits - m  # (N, C), all <= 0
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy on class indices: ``-log_softmax(logits)[target]`` per sample.

    Args:
        logits (Tensor): ``(N, C)``, or ``(N, C, d1, ...)`` for a class per position, floating.
        target (Tensor): int64 class indices in ``[0, C)``, ``(N,)`` or ``(N, d1, ...)``.
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Returns:
        Tensor: a scalar, or the shape of ``target`` for ``'none'``.

    Example:
        >>> round(cross_entropy_loss(torch.zeros(2, 4), torch.tensor([0, 3])).item(), 4)  # log 4
        1.3863
    """
    where = "cross_entropy_loss"
    check_choice("reduction", reduction, _REDUCTIONS, where=where)
    check_tensor("logits", logits, where=where, floating=True, shape_hint="(N, C, ...)")
    check_relation(logits.ndim >= 2, "'logits' must have shape (N, C) or (N, C, d1, ...)", where=where,
                   **{"logits.shape": tuple(logits.shape)})
    check_tensor("target", target, where=where, floating=False)
    expected = (logits.shape[0],) + tuple(logits.shape[2:])  # logits without the class dim
    rule = f"'target' must have shape {expected} (logits.shape without C)"
    check_relation(tuple(target.shape) == expected, rule, where=where, **{"target.shape": tuple(target.shape)})
    _check_class_target("target", target, logits.shape[1], where)
    logp = log_softmax(logits, dim=1)  # (N, C, ...)
    nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1)  # (N, ...): the true class's log-prob
    return _reduce(nll, reduction)


def hinge_loss(scores: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Binary hinge loss ``max(0, 1 - y * s)`` of a linear SVM: zero once the margin ``y*s >= 1``.

    Args:
        scores (Tensor): real-valued scores ``s``, ``(N,)``, floating.
        y (Tensor): labels in ``{-1, +1}`` (not ``{0, 1}``), ``(N,)``.
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Returns:
        Tensor: a scalar, or ``(N,)`` for ``'none'``.

    Example:
        >>> hinge_loss(torch.tensor([2., 0.5, -1.]), torch.tensor([1, 1, 1]), reduction="none").tolist()
        [0.0, 0.5, 2.0]
    """
    check_choice("reduction", reduction, _REDUCTIONS, where="hinge_loss")
    check_tensor("scores", scores, where="hinge_loss", floating=True)
    check_tensor("y", y, where="hinge_loss")
    check_relation(not y.is_complex(), "'y' must be a real tensor of labels -1 and +1", where="hinge_loss",
                   **{"y.dtype": y.dtype})
    check_same_shape("scores", scores, "y", y, where="hinge_loss")
    rule = "'y' must hold labels in {-1, +1} (map {0, 1} labels with 2*y - 1)"
    _check_values(lambda: (y == 1) | (y == -1), "y", y, rule, "hinge_loss")
    return _reduce((1 - y * scores).clamp(min=0), reduction)


def multiclass_hinge_loss(scores: torch.Tensor, target: torch.Tensor, margin: float = 1.0,
                          reduction: str = "mean") -> torch.Tensor:
    """Multiclass hinge ``sum_{j != y} max(0, margin - s_y + s_j) / C``, as torch's ``multi_margin_loss``.

    This is the Weston-Watkins form (every wrong class within ``margin`` of the true one is
    penalised), **divided by C** as torch does. Crammer-Singer takes the max over ``j`` instead.

    Args:
        scores (Tensor): ``(N, C)``, floating.
        target (Tensor): int64 class indices in ``[0, C)``, ``(N,)``.
        margin (float): required gap between the true score and each other one, ``>= 0``. Default: ``1.0``.
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Returns:
        Tensor: a scalar, or ``(N,)`` for ``'none'``.

    Example:
        >>> round(multiclass_hinge_loss(torch.tensor([[2., 1.5, 0.]]), torch.tensor([0])).item(), 4)
        0.1667

    References:
        J. Weston, C. Watkins, "Multi-Class Support Vector Machines", ESANN 1999;
        K. Crammer, Y. Singer, "On the Algorithmic Implementation of Multiclass ...", JMLR 2001.
    """
    where = "multiclass_hinge_loss"
    check_choice("reduction", reduction, _REDUCTIONS, where=where)
    margin = check_number("margin", margin, where=where, low=0)
    check_tensor("scores", scores, where=where, ndim=2, floating=True, shape_hint="(N, C)")
    check_tensor("target", target, where=where, ndim=1, floating=False, shape_hint="(N,)")
    check_relation(target.shape[0] == scores.shape[0], "'target' must have one entry per row of 'scores'",
                   where=where, **{"scores.shape": tuple(scores.shape), "target.shape": tuple(target.shape)})
    _check_class_target("target", target, scores.shape[1], where)
    true = scores.gather(1, target.unsqueeze(1))  # (N, 1)
    viol = (margin - true + scores).clamp(min=0)  # (N, C)
    viol = viol.scatter(1, target.unsqueeze(1), 0.0)  # the true class is not its own rival
    return _reduce(viol.sum(dim=1) / scores.shape[1], reduction)


# ----------------------------------------------------------------------------- divergences
def kl_div_loss(input_log_probs: torch.Tensor, target: torch.Tensor, reduction: str = "batchmean",
                log_target: bool = False) -> torch.Tensor:
    """``KL(target || model)`` pointwise as ``target * (log target - input)``, like torch's ``kl_div``.

    Mind the order: the *model* comes first, as **log**-probabilities; the target as probabilities
    (log-probabilities if ``log_target``). ``0 * log 0`` counts as 0. ``'batchmean'`` (sum / N)
    is the true KL per sample; ``'mean'`` also divides by the number of classes.

    Args:
        input_log_probs (Tensor): model log-probabilities, ``(N, *)``, floating.
        target (Tensor): target distribution, ``(N, *)``, floating.
        reduction (str): ``'batchmean'`` | ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'batchmean'``.
        log_target (bool): ``target`` holds log-probabilities. Default: ``False``.

    Returns:
        Tensor: a scalar, or ``(N, *)`` for ``'none'``.

    Example:
        >>> round(kl_div_loss(torch.tensor([[0.25, 0.75]]).log(), torch.tensor([[0.5, 0.5]])).item(), 4)
        0.1438

    References:
        S. Kullback, R. A. Leibler, "On Information and Sufficiency", Ann. Math. Statist., 1951.
    """
    where = "kl_div_loss"
    check_choice("reduction", reduction, ("batchmean",) + _REDUCTIONS, where=where)
    check_type("log_target", log_target, bool, where=where)
    _check_pair("input_log_probs", input_log_probs, "target", target, where=where)
    check_relation(target.ndim >= 1, "'target' must have a batch dimension (N, *)", where=where,
                   **{"target.shape": tuple(target.shape)})
    if log_target:
        loss = target.exp() * (target - input_log_probs)
    else:
        rule = "'target' must hold probabilities >= 0 (pass log_target=True for log-probabilities)"
        _check_values(lambda: target >= 0, "target", target, rule, where)
        # Double-where: log(1) = 0 where target == 0, so 0 * log 0 is 0 with a finite gradient.
        safe = torch.where(target > 0, target, torch.ones_like(target))
        loss = target * safe.log() - target * input_log_probs
    return loss.sum() / target.shape[0] if reduction == "batchmean" else _reduce(loss, reduction)


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """``KL(P || Q) = sum_c p_c (log p_c - log q_c)`` per row, for categoricals given by logits.

    Args:
        p_logits (Tensor): logits of ``P``, ``(N, C)``, floating.
        q_logits (Tensor): logits of ``Q``, ``(N, C)``.

    Returns:
        Tensor: ``(N,)``, each ``>= 0``, and ``0`` only where ``P == Q``.

    Example:
        >>> kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)).tolist()
        [0.0, 0.0]
    """
    _check_pair("p_logits", p_logits, "q_logits", q_logits, where="kl_divergence")
    log_p, log_q = log_softmax(p_logits), log_softmax(q_logits)  # (N, C) each
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)  # (N,)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, 1))`` summed over the last dim: the VAE regulariser.

    Per dimension ``0.5 * (exp(logvar) + mu**2 - 1 - logvar)``. Encoders output ``logvar``, not
    the variance, so that any real number is a valid output.

    Args:
        mu (Tensor): means, ``(..., D)``, floating.
        logvar (Tensor): log-variances, ``(..., D)``.
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'`` over the leading dims. Default: ``'mean'``.

    Returns:
        Tensor: a scalar, or ``(...,)`` (the last dim summed away) for ``'none'``.

    Example:
        >>> gaussian_kl(torch.ones(1, 2), torch.zeros(1, 2)).item()
        1.0

    References:
        D. P. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014, Appendix B.
    """
    check_choice("reduction", reduction, _REDUCTIONS, where="gaussian_kl")
    _check_pair("mu", mu, "logvar", logvar, where="gaussian_kl")
    # exp(lv) - 1 written as expm1(lv): near a collapsed latent (lv ~ 1e-4) the naive form
    # loses every digit in float32 and can come out negative.
    kl = 0.5 * (torch.expm1(logvar) - logvar + mu**2).sum(dim=-1)  # (...,)
    return _reduce(kl, reduction)


# ----------------------------------------------------------------------------- language models
def causal_lm_loss(logits: torch.Tensor, tokens: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy: position ``t`` predicts token ``t + 1``.

    The last position has no next token and the first token is never predicted, so this is
    ``cross_entropy(logits[:, :-1], tokens[:, 1:])`` over ``B * (T - 1)`` predictions.

    Args:
        logits (Tensor): ``(B, T, V)``, floating.
        tokens (Tensor): int64 token ids in ``[0, V)``, ``(B, T)``, with ``T >= 2``.
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``.

    Returns:
        Tensor: a scalar, or ``(B, T - 1)`` for ``'none'``.

    Example:
        >>> round(causal_lm_loss(torch.zeros(1, 3, 5), torch.tensor([[1, 2, 3]])).item(), 4)  # log 5
        1.6094
    """
    where = "causal_lm_loss"
    check_choice("reduction", reduction, _REDUCTIONS, where=where)
    check_tensor("logits", logits, where=where, ndim=3, floating=True, shape_hint="(B, T, V)")
    check_tensor("tokens", tokens, where=where, ndim=2, floating=False, shape_hint="(B, T)")
    shapes = {"logits.shape": tuple(logits.shape), "tokens.shape": tuple(tokens.shape)}
    check_relation(tokens.shape == logits.shape[:2], "'tokens' must have shape (B, T) = logits.shape[:2]",
                   where=where, **shapes)
    check_relation(tokens.shape[1] >= 2, "'tokens' needs T >= 2 positions (with T = 1 there is no next token)",
                   where=where, **shapes)
    _check_class_target("tokens", tokens, logits.shape[2], where, symbol="V")
    B, T, V = logits.shape
    pred = logits[:, :-1].reshape(-1, V)  # (B*(T-1), V): positions 0..T-2 ...
    nxt = tokens[:, 1:].reshape(-1)  # (B*(T-1),): ... predict tokens 1..T-1
    loss = cross_entropy_loss(pred, nxt, reduction="none").view(B, T - 1)  # (B, T-1)
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------- registry
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "mse": mse_loss, "mae": mae_loss, "huber": huber_loss, "bce": bce_with_logits_loss,
    "cross_entropy": cross_entropy_loss, "hinge": hinge_loss, "multiclass_hinge": multiclass_hinge_loss,
    "kl": kl_div_loss, "causal_lm": causal_lm_loss,
}


def get_loss(name_or_callable: str | Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Look a loss up by name in :data:`LOSSES`; a callable (your own loss) passes through.

    Args:
        name_or_callable (str or callable): a key of ``LOSSES``, or a function.

    Returns:
        callable: the loss function.

    Example:
        >>> get_loss("huber") is huber_loss
        True
    """
    if callable(name_or_callable):
        return name_or_callable
    check_choice("name_or_callable", name_or_callable, LOSSES, where="get_loss")
    return LOSSES[name_or_callable]
