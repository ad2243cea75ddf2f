"""The LR range test: sweep the learning rate upwards for a few hundred mini-batches and watch
where the loss falls fastest and where it blows up.

The test is Smith's (2017, Sec. 3.3); the recipe below is the variant fastai popularised and
pytorch-lr-finder follows (Howard & Gugger 2020). Smith raised the LR *linearly* over a few
epochs, read the validation *accuracy*, and set the cycle's ``base_lr`` to about a third or a
quarter of ``max_lr``. The exponential sweep, the EMA-smoothed loss, the 4x stop and the
suggestion rules (``steep``, ``valley``, ``minimum``, ``slide``) are fastai's. Both sweeps
are here (``step_mode``):

1. Save the model, optimizer and random state.
2. For ``i = 0 .. num_iter - 1``: set ``lr_i`` (exponential or linear from ``start_lr`` to
   ``end_lr``), take one optimizer step on a mini-batch, record the loss.
3. Smooth the loss (EMA with bias correction) and stop when it exceeds ``diverge_th`` times
   the best smoothed loss so far, or becomes NaN/inf.
4. Restore everything saved in 1: the test only *measures*; your model is untouched.
5. Suggest LRs from the smoothed curve (:func:`suggest_lrs`).

What this version does that the two libraries did not (their users' complaints):

- It **always restores** parameters, buffers, gradients, optimizer state and RNG states, bit
  for bit, also when it stops early, raises or is interrupted (pytorch-lr-finder only restores
  on an explicit ``reset()``; fastai's temporary folder is not writable everywhere: the
  snapshot stays in memory, on the model's device).
- Any batch format: pass ``loss_fn(model, batch)``; ``(X, y)`` pairs work by default.
- Validation on a *small fixed* subset, not the whole validation set every step.
- Every suggestion rule skips the first/last few points and ignores the NaN tail.

Notebook 05 (``notebooks/05_lr_range_test_and_cyclical_schedules.ipynb``) runs it on a tiny
causal transformer over the course's Markov language and trains with its suggestions;
``benchmarks/lr_finder_vs_torch_lr_finder.py`` compares it with pytorch-lr-finder.

References:
    Smith, Cyclical Learning Rates for Training Neural Networks, 2017, arXiv 1506.01186, Sec. 3.3.
    Smith, A disciplined approach to neural network hyper-parameters: Part 1, 2018, arXiv 1803.09820.
    Howard & Gugger, Fastai: A Layered API for Deep Learning, 2020, arXiv 2002.04688
    (``Learner.lr_find`` and its suggestion functions); pytorch-lr-finder (D. Silva, GitHub).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn

from ._loop import FUSED, OPTIMIZERS, as_pair, check_data_values, check_first_batch, make_optimizer, tensor_batches
from ._snapshot import Snapshot
from ._validation import (LR_MAX, as_float_array, check_choice, check_number, check_relation, check_seed, check_type,
                          skip_value_checks)
from .device import resolve_device
from .losses import LOSSES, get_loss

__all__ = ["lr_range_test", "LRFinderResult", "suggest_lrs", "lr_sweep", "SUGGESTION_RULES", "LR_FINDER_STOPS"]

SUGGESTION_RULES = ("steep", "valley", "minimum", "slide")
LR_FINDER_STOPS = ("completed", "diverged", "interrupted", "callback")


# ---------------------------------------------------------------------------------------------
# The sweep and the suggestion rules (pure functions of arrays)
# ---------------------------------------------------------------------------------------------

def lr_sweep(start_lr: float, end_lr: float, num_iter: int, step_mode: str = "exp") -> np.ndarray:
    """The learning rates of a range test: ``num_iter`` values from ``start_lr`` to ``end_lr``.

    ``exp``: ``lr_i = start_lr * (end_lr / start_lr) ** (i / (num_iter - 1))`` (equal steps in
    log lr: every decade gets the same number of iterations). ``linear``: equal steps in lr.

    Example:
        >>> lr_sweep(1e-3, 1e-1, 3).tolist()
        [0.001, 0.01, 0.1]
    """
    where = "lr_sweep"
    _check_sweep(where, start_lr, end_lr, num_iter, step_mode)
    if step_mode == "exp":
        return np.array([start_lr * (end_lr / start_lr) ** (i / (num_iter - 1)) for i in range(num_iter)])
    return np.array([start_lr + i / (num_iter - 1) * (end_lr - start_lr) for i in range(num_iter)])


def _check_sweep(where, start_lr, end_lr, num_iter, step_mode):
    check_number("start_lr", start_lr, where=where, low=0.0, high=LR_MAX, low_open=True)
    check_number("end_lr", end_lr, where=where, low=0.0, high=LR_MAX, low_open=True)
    check_relation(start_lr < end_lr, "'start_lr' must be < 'end_lr'", where=where, start_lr=start_lr, end_lr=end_lr)
    check_number("num_iter", num_iter, where=where, low=2, integer=True)
    check_choice("step_mode", step_mode, ("exp", "linear"), where=where)


def _longest_decreasing_run(losses: np.ndarray) -> tuple[int, int]:
    """fastai's ``valley``: the longest decreasing subsequence; returns its (start, end) index."""
    n = len(losses)
    lds = np.ones(n, dtype=int)          # lds[i]: longest decreasing subsequence ending at i
    max_start = max_end = 0
    for i in range(1, n):
        higher = losses[:i] > losses[i]  # earlier points this one can extend
        if higher.any():
            lds[i] = lds[:i][higher].max() + 1
        if lds[i] > lds[max_end]:
            max_end = i
            max_start = max_end - lds[max_end]
    return max_start, max_end


def suggest_lrs(
    lrs: Iterable[float],
    losses: Iterable[float],
    skip_start: int = 10,
    skip_end: int = 5,
    rules: Iterable[str] = SUGGESTION_RULES,
) -> dict[str, float | None]:
    """Suggest learning rates from a (smoothed) range-test curve.

    1. Cut the curve at its first NaN/inf (a diverged tail says nothing about good LRs).
    2. Drop ``skip_start`` points at the start (the EMA is still warming up) and ``skip_end``
       at the end (the loss is already blowing up).
    3. Apply each rule:

       - ``steep``: the LR where the loss falls fastest per unit of ``log(lr)``.
       - ``valley``: inside the longest decreasing run, about 1/2 of the way down (fastai's
         default since 2021: robust to a noisy minimum).
       - ``minimum``: the LR of the lowest loss divided by 10 (the minimum itself is already
         too close to divergence).
       - ``slide``: walking back from the end, the first point where the slope stops changing
         by more than 0.005 over 15 points (fastai).

    A rule that has too few points gives ``None``, never an exception.

    Args:
        lrs (sequence of float): shape (T,), increasing, > 0.
        losses (sequence of float): shape (T,); NaN/inf allowed (cut off).
        skip_start (int): points dropped at the start >= 0. Default 10.
        skip_end (int): points dropped at the end >= 0. Default 5.
        rules (sequence of str): which rules to apply. Default all four.

    Returns:
        dict: rule -> suggested lr (float) or None.

    Example:
        >>> lrs = np.logspace(-4, 0, 50)
        >>> losses = 1 + np.tanh(-(np.log10(lrs) + 2) * 2) + np.where(lrs > 0.3, 5.0, 0.0)
        >>> s = suggest_lrs(lrs, losses, skip_start=2, skip_end=2)
        >>> round(math.log10(s["steep"]), 1)
        -2.0
    """
    where = "suggest_lrs"
    lrs = as_float_array("lrs", lrs, where=where, finite=True)
    check_relation(bool((lrs > 0).all()), "'lrs' must all be > 0", where=where, **{"min(lrs)": lrs.min(initial=1.0)})
    losses = as_float_array("losses", losses, where=where)   # NaN/inf: the range test diverged there
    check_relation(lrs.ndim == 1 and lrs.shape == losses.shape, "'lrs' and 'losses' must be 1-D of the same length",
                   where=where, lrs_shape=lrs.shape, losses_shape=losses.shape)
    check_number("skip_start", skip_start, where=where, low=0, integer=True)
    check_number("skip_end", skip_end, where=where, low=0, integer=True)
    rules = list(rules)
    for r in rules:
        check_choice("rules", r, SUGGESTION_RULES, where=where)
    # 1. Cut at the first non-finite loss.
    bad = ~np.isfinite(losses) | ~np.isfinite(lrs)
    if bad.any():
        first_bad = int(np.argmax(bad))
        lrs, losses = lrs[:first_bad], losses[:first_bad]
    # 2. Skip the warm-up and the blow-up.
    stop = len(losses) - skip_end
    lrs, losses = lrs[skip_start:stop], losses[skip_start:stop]
    out: dict[str, float | None] = {r: None for r in rules}
    if len(losses) < 3:
        return out
    check_relation(bool((lrs > 0).all()), "'lrs' must all be > 0", where=where, min_lr=float(lrs.min()))
    # 3. The rules.
    if "steep" in out:
        slope = np.diff(losses) / np.diff(np.log(lrs))   # (T-1,): d loss / d log(lr)
        out["steep"] = float(lrs[int(np.argmin(slope))])
    if "valley" in out:
        start, end = _longest_decreasing_run(losses)
        sections = (end - start) / 3
        out["valley"] = float(lrs[start + int(sections) + int(sections / 2)])
    if "minimum" in out:
        out["minimum"] = float(lrs[int(np.argmin(losses))] / 10)
    if "slide" in out:
        out["slide"] = _slide(lrs, losses)
    return out


def _slide(lrs: np.ndarray, losses: np.ndarray, lr_diff: int = 15, thresh: float = 0.005) -> float | None:
    """fastai's ``slide``: from the end, slide a window of ``lr_diff`` points to the left until
    the loss gradient at both ends agrees within ``thresh``: the start of the flat-bottomed part."""
    if len(losses) <= lr_diff:
        return None
    grad = np.gradient(losses)
    r_idx, l_idx = -1, -1 - lr_diff
    local_min_lr = lrs[l_idx]
    while l_idx >= -len(losses) and abs(grad[r_idx] - grad[l_idx]) > thresh:
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    return float(local_min_lr)


# ---------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------

@dataclass
class LRFinderResult:
    """What a range test measured. Plain lists, so it prints, saves and compares easily.

    Attributes:
        lrs (list of float): the LR of each iteration run, shape (T,).
        raw_losses (list of float): the training loss of each iteration (mean over
            accumulated micro-batches), shape (T,), unsmoothed.
        val_losses (list of float or None): loss on the fixed validation subset after each
            iteration, when ``val_data`` was given.
        smoothed_losses (list of float): EMA of the monitored loss (validation if given, else
            training), bias-corrected; what the stop rule and the suggestions read.
        suggestions (dict): rule -> suggested LR or None (see :func:`suggest_lrs`).
        stop_reason (str): one of ``LR_FINDER_STOPS``; ``stop_iter`` the iteration it stopped at.
        config (dict): the settings, for the plot's title and for reproducing the run.
    """

    lrs: list[float] = field(default_factory=list)
    raw_losses: list[float] = field(default_factory=list)
    smoothed_losses: list[float] = field(default_factory=list)
    val_losses: list[float] | None = None
    suggestions: dict[str, float | None] = field(default_factory=dict)
    stop_reason: str = "running"
    stop_iter: int | None = None
    best_loss: float = math.inf
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    _stop_requested: bool = field(default=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.lrs)

    @property
    def suggested_lr(self) -> float | None:
        """The ``valley`` suggestion (fastai's default rule)."""
        return self.suggestions.get("valley")

    @property
    def monitored_losses(self) -> list[float]:
        """The curve that was smoothed: validation losses if measured, else training losses."""
        return self.val_losses if self.val_losses is not None else self.raw_losses

    def request_stop(self) -> None:
        """Called from an ``on_step`` callback: stop after the current iteration."""
        self._stop_requested = True


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------

def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _cycled(loader: Iterable, where: str) -> Iterator:
    """Batches from ``loader`` forever: a re-iterable loader (DataLoader, list) starts over
    when it runs out, as the range test may need more batches than one epoch has."""
    reiterable = not isinstance(loader, Iterator)  # a list or DataLoader starts over; a generator cannot
    while True:
        n = 0
        for batch in loader:
            n += 1
            yield batch
        if n == 0:
            raise ValueError(f"{where}(): 'data' must yield at least one batch, got an empty "
                             f"{type(loader).__name__}")
        if not reiterable:
            raise ValueError(f"{where}(): 'data' ran out after {n} batches; pass a re-iterable loader "
                             f"(a DataLoader or a list) or a larger one, or lower num_iter")


def _fixed_subset(X: torch.Tensor, y: torch.Tensor, size: int, seed: int):
    """The same ``size`` validation rows at every iteration (a seeded choice)."""
    if X.shape[0] <= size:
        return X, y
    idx = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))[:size]
    return X[idx.to(X.device)], y[idx.to(y.device)]


# ---------------------------------------------------------------------------------------------
# The range test
# ---------------------------------------------------------------------------------------------

def lr_range_test(
    model: nn.Module,
    data,
    *,
    loss_fn: str | Callable = "mse",
    optimizer: str | torch.optim.Optimizer = "adam",
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    step_mode: str = "exp",
    smooth_beta: float = 0.98,
    diverge_th: float = 4.0,
    stop_div: bool = True,
    accumulation_steps: int = 1,
    batch_size: int = 64,
    val_data=None,
    val_size: int = 256,
    skip_start: int | None = None,
    skip_end: int = 5,
    on_step: Callable[[LRFinderResult], None] | None = None,
    readback_every: int = 8,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> LRFinderResult:
    """Run an LR range test on ``model`` and restore it afterwards, whatever happens.

    Args:
        model (nn.Module): the model; its state is restored bit for bit at the end.
        data: a ``DataSplit`` or a tuple ``(X, y)`` of tensors (shuffled mini-batches of
            ``batch_size``), or any re-iterable of batches (a ``DataLoader``, a list), cycled
            if shorter than ``num_iter * accumulation_steps``.
        loss_fn (str, loss module or callable): a loss name (``"mse"``, ``"cross_entropy"``,
            ...) or a torch loss module such as ``nn.CrossEntropyLoss()``, applied as
            ``loss_fn(model(X), y)`` to ``(X, y)`` batches; or any other callable
            ``loss_fn(model, batch) -> scalar tensor`` for batches of another shape. Default ``"mse"``.
        optimizer (str or Optimizer): ``"sgd"``, ``"momentum"``, ``"adam"``, ``"adamw"``, or
            your optimizer over ``model``'s parameters (a scheduler may be attached: it is not
            stepped, and everything is restored). Default ``"adam"``.
        start_lr, end_lr (float): the sweep's range, ``0 < start_lr < end_lr``. Default 1e-7, 10.
        num_iter (int): iterations (optimizer steps) >= 2. Default 100.
        step_mode (str): ``"exp"`` (equal steps in log lr) or ``"linear"``. Default ``"exp"``.
        smooth_beta (float): EMA factor in [0, 1) with bias correction (fastai: 0.98; pytorch-lr-finder's
            ``smooth_f=0.05`` is a beta of 0.95 without it). Default 0.98.
        diverge_th (float): stop when the smoothed loss exceeds ``diverge_th`` x the best, > 1.
            Default 4 (fastai; pytorch-lr-finder uses 5).
        stop_div (bool): apply that stop. A NaN/inf loss always stops. Default True.
        accumulation_steps (int): micro-batches per optimizer step >= 1 (the loss of each is
            divided by it, so the gradient is that of the mean). Default 1.
        batch_size (int): mini-batch size for tensor data >= 1. Default 64.
        val_data: ``(X_val, y_val)`` or a ``DataSplit``: if given, after each step the loss on
            a fixed subset of ``val_size`` rows is recorded and *it* is smoothed and suggested on.
        val_size (int): rows of that subset >= 1. Default 256.
        skip_start (int or None): points the suggestions ignore at the start; None means
            ``num_iter // 10`` (fastai). skip_end (int): at the end, default 5.
        on_step (callable): ``f(result)`` every ``readback_every`` iterations with the partial
            result (for a live plot); it may call ``result.request_stop()``.
        readback_every (int): iterations between device->host copies of the losses >= 1. Default 8.
        seed (int): seeds the batch order and dropout. Default 0.
        device: ``"cpu"``, ``"cuda"``, ``"mps"``; default CUDA if present, else MPS, else CPU.
            The model goes back to its own device afterwards.

    Returns:
        LRFinderResult: ``lrs``, ``raw_losses``, ``smoothed_losses``, ``suggestions``,
        ``stop_reason``; the course's plotting layer draws it (``plot_lr_finder(result)``).

    Example:
        >>> import course_lib as cl
        >>> data = cl.make_regression(256, noise=0.1, seed=0)
        >>> model = cl.MLP(1, 1, width=16)
        >>> before = [p.clone() for p in model.parameters()]
        >>> r = cl.lr_range_test(model, data, start_lr=1e-5, end_lr=100, num_iter=100, device="cpu")
        >>> r.stop_reason, 1e-5 < r.suggestions["valley"] < 100
        ('diverged', True)
        >>> all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
        True

    References:
        Smith, Cyclical Learning Rates for Training Neural Networks, 2017, arXiv 1506.01186, Sec. 3.3
        (the test: a linear LR increase, read on the accuracy). Howard & Gugger, Fastai: A Layered API
        for Deep Learning, 2020, arXiv 2002.04688 (the exponential sweep, EMA, 4x stop and suggestions).
    """
    where = "lr_range_test"
    # 1. Check every argument before touching anything.
    check_type("model", model, nn.Module, where=where)
    _check_sweep(where, start_lr, end_lr, num_iter, step_mode)
    check_number("smooth_beta", smooth_beta, where=where, low=0.0, high=1.0, high_open=True)
    check_number("diverge_th", diverge_th, where=where, low=1.0, low_open=True)
    check_type("stop_div", stop_div, bool, where=where)
    check_number("accumulation_steps", accumulation_steps, where=where, low=1, integer=True)
    check_number("batch_size", batch_size, where=where, low=1, integer=True)
    check_number("val_size", val_size, where=where, low=1, integer=True)
    check_number("skip_start", skip_start, where=where, low=0, integer=True, allow_none=True)
    check_number("skip_end", skip_end, where=where, low=0, integer=True)
    check_number("readback_every", readback_every, where=where, low=1, integer=True)
    check_seed(seed, where=where)
    check_relation(on_step is None or callable(on_step), "'on_step' must be a function f(result) or None",
                   where=where, on_step=on_step)
    if isinstance(optimizer, str):
        check_choice("optimizer", optimizer, OPTIMIZERS, where=where)
    else:
        check_type("optimizer", optimizer, torch.optim.Optimizer, where=where,
                   expected="optimizer name or torch.optim.Optimizer")
    criterion = _criterion(loss_fn, where)
    dev = resolve_device(device, where=where)
    skip_start = num_iter // 10 if skip_start is None else skip_start
    batches, val = _prepare_data(data, val_data, batch_size, val_size, seed, dev, where)

    lrs = lr_sweep(start_lr, end_lr, num_iter, step_mode).tolist()
    result = LRFinderResult(val_losses=[] if val is not None else None, config=dict(
        start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, step_mode=step_mode, smooth_beta=smooth_beta,
        diverge_th=diverge_th if stop_div else None, accumulation_steps=accumulation_steps,
        skip_start=skip_start, skip_end=skip_end, seed=seed, device=str(dev),
        optimizer=optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        monitored="val" if val is not None else "train"))

    # 2. Save everything the test will touch (the optimizer only if it is the caller's).
    snapshot = Snapshot(model, None if isinstance(optimizer, str) else optimizer)
    t0 = time.perf_counter()
    try:
        model.to(dev)
        if isinstance(optimizer, str):
            opt = make_optimizer(optimizer, model.parameters(), start_lr, 0.9, 0.0)
        else:
            opt = optimizer
            # Existing optimizer state (e.g. Adam's moments) moves with the model; torch's own
            # load_state_dict knows which entries stay on the CPU.
            if opt.state:
                opt.load_state_dict(opt.state_dict())
        if isinstance(loss_fn, str):
            # The same checks as fit, on the first batch: NaN data, dtypes, feature counts and labels,
            # said plainly (eval mode and no gradient: nothing moves, no RNG is drawn).
            first = next(batches)
            X0, y0 = as_pair(first)
            check_data_values(where, X=X0, y=y0)
            model.eval()
            with torch.no_grad():
                check_first_batch(model, X0, y0, get_loss(loss_fn), where)
            batches = _prepend(first, batches)
        torch.manual_seed(seed)  # dropout masks
        model.train()
        _run(model, opt, criterion, batches, val, lrs, dev, accumulation_steps, smooth_beta,
             diverge_th if stop_div else math.inf, readback_every, on_step, result, skip_start, skip_end)
    except KeyboardInterrupt:
        # A lecturer pressing "stop": keep what was measured (the restore below still runs).
        result.stop_reason = "interrupted"
    finally:
        # 4. Restore, whatever happened above.
        snapshot.restore()
    result.seconds = time.perf_counter() - t0
    if result.stop_iter is None and result.lrs:
        result.stop_iter = len(result.lrs) - 1
    # 5. Suggestions from the smoothed curve.
    result.suggestions = suggest_lrs(result.lrs, result.smoothed_losses, skip_start, skip_end)
    return result


# torch's loss modules (nn.MSELoss, nn.CrossEntropyLoss, ...: the public names of torch.nn's
# loss module) take (y_hat, y), where any other callable here takes (model, batch).
_TORCH_LOSSES = tuple(getattr(nn.modules.loss, name) for name in nn.modules.loss.__all__)


def _criterion(loss_fn, where: str) -> Callable[[nn.Module, Any], torch.Tensor]:
    """Turn ``loss_fn`` into ``f(model, batch) -> loss``."""
    if isinstance(loss_fn, str) or isinstance(loss_fn, _TORCH_LOSSES):
        if isinstance(loss_fn, str):
            check_choice("loss_fn", loss_fn, LOSSES, where=where)
            checked = get_loss(loss_fn)
            fn = FUSED.get(loss_fn, checked)  # the same torch kernels fit() uses
        else:
            fn = loss_fn

        def pair_loss(model: nn.Module, batch) -> torch.Tensor:
            X, y = as_pair(batch)
            return fn(model(X), y)
        return pair_loss
    check_relation(callable(loss_fn), "'loss_fn' must be a loss name, a torch loss module, or a function "
                   "loss_fn(model, batch) -> scalar tensor", where=where, loss_fn=loss_fn)
    return loss_fn


def _prepare_data(data, val_data, batch_size: int, val_size: int, seed: int, dev: torch.device, where: str):
    """Return (an iterator of batches forever, the fixed validation subset or None)."""
    gen = torch.Generator().manual_seed(seed)
    val = None
    if hasattr(data, "X_train"):  # a DataSplit
        batches = tensor_batches(data.X_train.to(dev), data.y_train.to(dev), batch_size, gen)
    elif isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        X, y = data
        check_relation(X.shape[0] == y.shape[0] and X.shape[0] > 0,
                       "'data' must be (X, y) with the same number of rows (at least one)",
                       where=where, X_rows=X.shape[0], y_rows=y.shape[0])
        batches = tensor_batches(X.to(dev), y.to(dev), batch_size, gen)  # on the device once
    elif isinstance(data, tuple):
        # A tuple is (X, y) of tensors (a list is a list of batches). Anything else in a tuple, X alone
        # or numpy arrays, would otherwise train X -> X or fail deep inside torch.
        kinds = ", ".join(type(t).__name__ for t in data)
        raise TypeError(f"{where}(): 'data' must be a DataSplit, (X, y) tensors, or a re-iterable of (X, y) "
                        f"batches, got a {type(data).__name__} of {len(data)} item(s): {kinds}")
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, torch.Tensor)):
        batches = _cycled(data, where)
        first = next(batches)  # fail now, with the course's message, if the loader is empty
        batches = _prepend(first, batches)
    else:
        raise TypeError(f"{where}(): 'data' must be a DataSplit, a tuple (X, y) of tensors, or a re-iterable "
                        f"of batches (a DataLoader or a list), got data of type {type(data).__name__}")
    if val_data is not None:
        if hasattr(val_data, "X_val"):
            X_val, y_val = val_data.X_val, val_data.y_val
        elif isinstance(val_data, (tuple, list)) and len(val_data) == 2:
            X_val, y_val = val_data
        else:
            raise TypeError(f"{where}(): 'val_data' must be a DataSplit or a tuple (X_val, y_val), "
                            f"got val_data of type {type(val_data).__name__}")
        check_relation(X_val is not None and len(X_val) > 0, "'val_data' must hold at least one row",
                       where=where, val_rows=0 if X_val is None else len(X_val))
        val = tuple(t.to(dev) for t in _fixed_subset(X_val, y_val, val_size, seed))
    return batches, val


def _prepend(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def _run(model, opt, criterion, batches, val, lrs, dev, accumulation_steps, beta, diverge_th,
         readback_every, on_step, result: LRFinderResult, skip_start, skip_end) -> None:
    """The loop of the range test (step 2 and 3 of the module docstring)."""
    pending: list[torch.Tensor] = []          # per-iteration losses still on the device
    pending_val: list[torch.Tensor] = []
    smooth = {"avg": 0.0, "n": 0}
    num_iter = len(lrs)

    def readback() -> bool:
        """Copy pending losses to the host, smooth them, check the stop rule. True = stop."""
        raws = torch.stack(pending).tolist()
        vals = torch.stack(pending_val).tolist() if pending_val else [None] * len(raws)
        pending.clear()
        pending_val.clear()
        for raw, v in zip(raws, vals):
            i = len(result.lrs)
            result.lrs.append(lrs[i])
            result.raw_losses.append(raw)
            if v is not None:
                result.val_losses.append(v)
            x = raw if v is None else v
            if not math.isfinite(x):                      # NaN/inf: diverged, nothing to smooth
                result.smoothed_losses.append(x)
                result.stop_reason, result.stop_iter = "diverged", i
                return True
            smooth["n"] += 1
            smooth["avg"] = beta * smooth["avg"] + (1 - beta) * x
            s = smooth["avg"] / (1 - beta ** smooth["n"])  # bias correction
            result.smoothed_losses.append(s)
            result.best_loss = min(result.best_loss, s)
            if s > diverge_th * result.best_loss:
                result.stop_reason, result.stop_iter = "diverged", i
                return True
        return False

    with skip_value_checks():  # labels were not checked per step: keep the loop lean
        for i in range(num_iter):
            # 2a. This iteration's LR, in every parameter group.
            for g in opt.param_groups:
                g["lr"] = lrs[i]
            # 2b. One optimizer step on `accumulation_steps` micro-batches.
            opt.zero_grad(set_to_none=True)
            total = None
            for _ in range(accumulation_steps):
                batch = _to_device(next(batches), dev)
                try:
                    loss = criterion(model, batch)
                except TypeError as err:
                    if i > 0 or total is not None:
                        raise
                    # The first call: most likely fit's loss_fn(y_hat, y) given where (model, batch) is called.
                    raise TypeError(
                        "lr_range_test(): 'loss_fn' must be a loss name, a torch loss module, or a function "
                        "loss_fn(model, batch) -> scalar tensor (fit's f(y_hat, y) becomes "
                        f"lambda model, batch: f(model(batch[0]), batch[1])), got loss_fn={criterion!r}, "
                        f"which raised TypeError: {err}") from err
                if i == 0 and total is None:
                    _check_loss_value(loss)
                loss = loss / accumulation_steps
                loss.backward()
                total = loss.detach() if total is None else total + loss.detach()
            opt.step()
            pending.append(total)
            # 2c. The fixed validation subset, in eval mode.
            if val is not None:
                model.eval()
                with torch.no_grad():
                    pending_val.append(criterion(model, val).detach())
                model.train()
            # 3. Read back in batches of iterations (one device sync each), then check the stop.
            last = i == num_iter - 1
            if len(pending) >= readback_every or last:
                if readback():
                    return
                if on_step is not None:
                    result.suggestions = suggest_lrs(result.lrs, result.smoothed_losses, skip_start, skip_end)
                    on_step(result)
                    if result._stop_requested:
                        result.stop_reason, result.stop_iter = "callback", len(result.lrs) - 1
                        return
    result.stop_reason = "completed"


def _check_loss_value(loss) -> None:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(
            "lr_range_test(): 'loss_fn' must return a scalar tensor, got "
            + (f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else f"{type(loss).__name__}"))
