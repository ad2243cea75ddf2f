"""Losses you can look at, for notebook 01: the loss of *one* prediction and its gradient, and a
line fitted under an outlier.

* **1-D:** the loss of one prediction (or logit) and its gradient, for each loss of
  :mod:`course_lib.losses` (:func:`loss_curve`). The gradient is what autograd gets from the
  course's own loss functions, so the picture and the training code can never disagree.
* **Fitting under a loss:** a line (or a constant) fitted to data with one outlier under MSE,
  MAE and Huber (:func:`make_outlier_data`, :func:`fit_line`): mean vs median vs Huber's
  M-estimate.

Example:
    >>> from course_lib.loss_shapes import loss_curve
    >>> x, loss = loss_curve("mse", [0.0, 2.0])
    >>> loss.tolist()
    [0.0, 4.0]

References:
    Huber, *Robust Estimation of a Location Parameter*, Annals of Mathematical Statistics, 1964.
"""

from __future__ import annotations

import numpy as np
import torch

from ._validation import (
    check_choice,
    check_number,
    check_relation,
    check_tensor,
    check_type,
)
from .losses import (
    bce_with_logits_loss,
    cross_entropy_loss,
    hinge_loss,
    huber_loss,
    mae_loss,
    mse_loss,
)

__all__ = ["LOSS_CURVES", "loss_curve", "FIT_LOSSES", "make_outlier_data", "fit_line"]


_DTYPE = torch.float64  # 2-D toys cost nothing in float64, and theory checks then hold to 1e-12


_REGRESSION = ("mse", "mae", "huber")


_CLASSIFICATION = ("bce", "cross_entropy", "hinge", "zero_one")


LOSS_CURVES = _REGRESSION + _CLASSIFICATION


def _as_tensor(name: str, x, where: str) -> torch.Tensor:
    """Floats, lists, NumPy arrays and tensors alike become a 1-D float64 tensor (a copy)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        x = [float(x)]
    if isinstance(x, (list, tuple, np.ndarray)):
        x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    check_tensor(name, x, where=where, floating=True)
    return x.detach().to(_DTYPE).reshape(-1).clone()


def loss_curve(loss: str, x, *, y: float = 0.0, delta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of one prediction and its gradient, at each point of ``x``.

    Regression losses (``"mse"``, ``"mae"``, ``"huber"``) read ``x`` as predictions
    ``y_hat`` against the target ``y``. Classification losses read ``x`` as the **margin**
    ``m = label * score`` of a binary example with label in ``{-1, +1}``: ``"bce"`` is
    ``bce_with_logits_loss(m, 1) = log(1 + exp(-m))``, ``"cross_entropy"`` the two-class
    cross-entropy on logits ``(0, m)`` (the same numbers: a sanity check), ``"hinge"`` is
    ``max(0, 1 - m)``, ``"zero_one"`` is the error count ``[m <= 0]`` (gradient 0 everywhere:
    why nobody trains on it).

    Args:
        loss (str): one of :data:`LOSS_CURVES`.
        x (float, list, array or Tensor): predictions or margins, shape ``(N,)`` (or a single number).
        y (float): the regression target. Default: ``0.0``.
        delta (float): Huber's threshold, ``> 0``. Default: ``1.0``.

    Returns:
        tuple: ``(values, grads)``, float64 tensors of shape ``(N,)``; ``grads`` is
        ``d loss / d x`` from autograd.

    Example:
        >>> values, grads = loss_curve("mse", [0.0, 1.0, 3.0], y=1.0)
        >>> values.tolist(), grads.tolist()
        ([1.0, 0.0, 4.0], [-2.0, 0.0, 4.0])
        >>> loss_curve("huber", [3.0], delta=1.0)[1].tolist()   # the gradient is capped at delta
        [1.0]
    """
    where = "loss_curve"
    check_choice("loss", loss, LOSS_CURVES, where=where)
    y = check_number("y", y, where=where)
    delta = check_number("delta", delta, where=where, low=0.0, low_open=True)
    x = _as_tensor("x", x, where).requires_grad_(True)  # (N,)
    target = torch.full_like(x, float(y))  # (N,)
    ones = torch.ones_like(x)
    if loss == "mse":
        values = mse_loss(x, target, reduction="none")
    elif loss == "mae":
        values = mae_loss(x, target, reduction="none")
    elif loss == "huber":
        values = huber_loss(x, target, delta=delta, reduction="none")
    elif loss == "bce":
        values = bce_with_logits_loss(x, ones, reduction="none")
    elif loss == "cross_entropy":
        logits = torch.stack([torch.zeros_like(x), x], dim=1)  # (N, 2): class 1 has logit m
        values = cross_entropy_loss(logits, torch.ones(len(x), dtype=torch.long), reduction="none")
    elif loss == "hinge":
        values = hinge_loss(x, ones, reduction="none")
    else:  # zero_one: a step has no slope, so autograd has nothing to pass back
        values = (x.detach() <= 0).to(_DTYPE)
    if values.requires_grad:
        # Each value depends on its own x only, so the gradient of the sum is the per-point slope.
        (grads,) = torch.autograd.grad(values.sum(), x)
    else:
        grads = torch.zeros_like(x)
    return values.detach(), grads.detach()


FIT_LOSSES = ("mse", "mae", "huber")


def make_outlier_data(n: int = 10, *, outlier_y: float = 12.0, outlier_x: float | None = None,
                      slope: float = 0.5, intercept: float = 1.0, noise: float = 0.4,
                      seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points near the line ``y = slope * x + intercept``, plus one outlier, last.

    Args:
        n (int): inliers, ``>= 2``, at ``x = 0, 1, ..., n - 1``. Default: ``10``.
        outlier_y (float): the outlier's ``y``. Default: ``12.0``.
        outlier_x (float or None): its ``x``; None puts it at ``n - 1``, the right end, where
            it pulls hardest on a line's slope. Default: None.
        slope, intercept (float): the true line. Use ``slope=0`` to fit a constant. Defaults 0.5, 1.0.
        noise (float): standard deviation of the inliers' Gaussian noise, ``>= 0``. Default: ``0.4``.
        seed (int): seed of the noise (the same inliers whatever the outlier). Default: ``0``.

    Returns:
        tuple: ``(x, y)``, float64 tensors of shape ``(n + 1,)``; index ``-1`` is the outlier.

    Example:
        >>> x, y = make_outlier_data(5, outlier_y=20.0, noise=0.0)
        >>> x.tolist(), y.tolist()
        ([0.0, 1.0, 2.0, 3.0, 4.0, 4.0], [1.0, 1.5, 2.0, 2.5, 3.0, 20.0])
    """
    where = "make_outlier_data"
    n = check_number("n", n, where=where, low=2, integer=True)
    outlier_y = check_number("outlier_y", outlier_y, where=where)
    outlier_x = check_number("outlier_x", outlier_x, where=where, allow_none=True)
    slope = check_number("slope", slope, where=where)
    intercept = check_number("intercept", intercept, where=where)
    noise = check_number("noise", noise, where=where, low=0.0)
    seed = check_number("seed", seed, where=where, low=0, integer=True)
    gen = torch.Generator().manual_seed(seed)
    x = torch.arange(n, dtype=_DTYPE)  # (n,)
    y = slope * x + intercept + noise * torch.randn(n, generator=gen, dtype=_DTYPE)  # (n,)
    ox = float(n - 1) if outlier_x is None else float(outlier_x)
    return torch.cat([x, x.new_tensor([ox])]), torch.cat([y, y.new_tensor([outlier_y])])


def fit_line(x: torch.Tensor, y: torch.Tensor, loss: str = "mse", *, delta: float = 1.0,
             slope: bool = True, num_steps: int = 300) -> tuple[float, float]:
    """Fit ``y_hat = w * x + b`` (or the constant ``b``) by minimising a mean loss.

    MSE has a closed form (least squares: for a constant, the **mean**). MAE and Huber do not:
    they are minimised with ``num_steps`` steps of full-batch gradient descent
    (``torch.optim.SGD``) on the course's own loss functions, starting from a robust guess, with
    the LR decaying to zero (MAE's gradient never shrinks near the minimum, so a constant LR
    would hop around it forever). For a constant the answers are the mean, the **median** and
    Huber's M-estimate, which lies between them.

    Args:
        x (Tensor): inputs, ``(N,)``, floating.
        y (Tensor): targets, ``(N,)``, floating.
        loss (str): ``"mse"``, ``"mae"`` or ``"huber"``. Default: ``"mse"``.
        delta (float): Huber's threshold, ``> 0``. Default: ``1.0``.
        slope (bool): fit a line; False fits a constant (``w = 0``). Default: True.
        num_steps (int): gradient steps for MAE and Huber, ``>= 1``. Default: ``300`` (on the
            lessons' data that lands within 1e-4 of the lowest mean loss).

    Returns:
        tuple: ``(w, b)`` as floats.

    Example:
        >>> y = torch.tensor([1., 2., 3., 4., 100.])
        >>> fit_line(torch.zeros(5), y, "mse", slope=False)      # the mean follows the outlier
        (0.0, 22.0)
        >>> round(fit_line(torch.zeros(5), y, "mae", slope=False)[1], 2)   # the median does not
        3.0

    References:
        P. J. Huber, "Robust Estimation of a Location Parameter", Ann. Math. Statist., 1964.
    """
    where = "fit_line"
    check_choice("loss", loss, FIT_LOSSES, where=where)
    delta = check_number("delta", delta, where=where, low=0.0, low_open=True)
    check_type("slope", slope, bool, where=where)
    num_steps = check_number("num_steps", num_steps, where=where, low=1, integer=True)
    check_tensor("x", x, where=where, ndim=1, floating=True, shape_hint="(N,)")
    check_tensor("y", y, where=where, ndim=1, floating=True, shape_hint="(N,)")
    check_relation(len(x) == len(y) and len(x) >= 2, "'x' and 'y' must hold the same number N >= 2 of points",
                   where=where, **{"x.shape": tuple(x.shape), "y.shape": tuple(y.shape)})
    x, y = x.detach().to(_DTYPE), y.detach().to(_DTYPE)
    if slope:
        check_relation(bool(x.max() > x.min()), "a line needs at least two different values in 'x' "
                       "(use slope=False to fit a constant)", where=where, **{"x.min()": float(x.min())})
    # 1. Centre and scale x: then slope and intercept have curvatures of the same size, and one
    #    LR suits both (a badly scaled x makes the problem ill-conditioned, as in lesson 02).
    x_mean, x_std = x.mean(), x.std().clamp(min=1e-12)
    u = (x - x_mean) / x_std if slope else torch.zeros_like(x)  # (N,)
    # 2. Least squares in closed form: for u centred, b = mean(y) and w = cov(u, y) / var(u).
    b0 = y.mean()
    w0 = (u * (y - b0)).mean() / (u * u).mean() if slope else y.new_zeros(())
    if loss != "mse":
        # 3. Gradient descent, LR falling linearly to 0, from a robust first guess: least squares
        #    has already been dragged by the outlier. The guess: the median of the slopes between
        #    all pairs of points (Theil-Sen) and the median residual. MAE's steps are sized by the
        #    median absolute residual, a spread that no outlier can inflate; Huber's gradient is
        #    at most delta and its curvature at most 1, so an LR of 1 suits it.
        if slope:
            du, dy = u[None, :] - u[:, None], y[None, :] - y[:, None]  # (N, N) pairwise differences
            pairs = du.abs() > 1e-12
            w0 = (dy[pairs] / du[pairs]).median() if bool(pairs.any()) else w0
        b0 = (y - w0 * u).median()
        spread = float((y - w0 * u - b0).abs().median())
        params = torch.stack([w0, b0]).clone().requires_grad_(True)  # (2,): w, b
        lr0 = 0.5 * max(spread, 1e-6 * (1.0 + float(y.abs().max()))) if loss == "mae" else 1.0
        opt = torch.optim.SGD([params], lr=lr0)
        fn = mae_loss if loss == "mae" else (lambda a, b: huber_loss(a, b, delta=delta))
        for step in range(num_steps):
            opt.param_groups[0]["lr"] = lr0 * (1 - step / num_steps)
            opt.zero_grad()
            y_hat = params[0] * u + params[1] if slope else params[1].expand_as(y)  # (N,)
            fn(y_hat, y).backward()
            if not slope:
                params.grad[0] = 0.0  # the slope stays 0 for a constant fit
            opt.step()
        w0, b0 = params.detach()
    # 4. Back to the original x: y = w0 * (x - mean) / std + b0.
    w = float(w0 / x_std) if slope else 0.0
    return w, float(b0 - w * x_mean) if slope else float(b0)
