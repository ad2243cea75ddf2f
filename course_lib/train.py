"""The course's training loop: ``fit()`` trains a model and records its loss curves.

What it records, per step: the training loss of the mini-batch, the learning rate, the gradient
norm and the wall time; every ``eval_every`` steps: the validation loss (and any metrics).
Everything lands in a :class:`History`, which the course's loss-curve plots draw and
``course_lib.curves.diagnose`` reads. Notebooks 00, 04 and 05 call it; notebook 03's training
lab runs it behind its sliders.

Three design choices worth knowing:

1. **Losses are read back from the device in batches**, not with ``loss.item()`` every step.
   ``.item()`` makes the CPU wait for the GPU each step (and costs up to 20% even on a CPU),
   so losses are kept as device tensors and copied back every ``readback_every`` steps, at
   each evaluation, or when a callback calls ``state.flush()`` (a live plot does, per frame).
2. **Divergence is a result, not a crash.** A NaN/inf loss, or one more than
   ``explode_factor`` times the first loss, stops the run cleanly; ``History.stop_reason`` and
   ``History.stop_step`` say what happened where, and the plot marks it.
3. **Hyperparameters can change while training runs.** A callback may call
   ``state.set_hyperparams(lr=..., weight_decay=..., l1=..., dropout=...)``; the change applies
   on the next step and is recorded as an event, so the plot can mark it.

References:
    Loshchilov & Hutter, Decoupled Weight Decay Regularization, 2019, arXiv 1711.05101 (``"adamw"``).
    Prechelt, Early Stopping - But When?, in Neural Networks: Tricks of the Trade, 1998 (``early_stopping``).
    Smith, Cyclical Learning Rates for Training Neural Networks, arXiv 1506.01186 (``lr_schedule``).
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn as nn

from ._loop import (FUSED, OPTIMIZERS, as_pair, check_data_values, check_first_batch, has_momentum, make_optimizer,
                    set_momentum, tensor_batches)
from ._validation import (LR_MAX, SEED_MAX, Bool, InstanceOf, Interval, Options, Satisfies, check_relation,
                          skip_value_checks, validate_params)
from .device import resolve_device
from .losses import LOSSES, get_loss

__all__ = ["History", "TrainState", "fit", "OPTIMIZERS", "STOP_REASONS"]

# "error": an exception ended a run that something else drives (the lab's training thread records it).
STOP_REASONS = ("completed", "early_stopping", "diverged", "exploded", "callback", "interrupted", "error")


@dataclass
class History:
    """Everything one training run recorded. Plain lists of Python floats, so a History can be
    saved as JSON, compared with ``==`` and replayed.

    Per training step ``i``: ``step[i]``, ``train_loss[i]`` (mini-batch loss *before* the
    update, without the L1 term), ``lr[i]``, ``time[i]`` (seconds since the start of ``fit``).
    Every ``grad_norm_every`` steps: ``grad_norm_step[k]``, ``grad_norm[k]`` (L2 norm of all
    gradients together).
    Per evaluation ``j``: ``val_step[j]``, ``val_loss[j]``, ``val_metrics[name][j]`` and, with
    ``eval_train=True``, ``train_eval_loss[j]`` (the whole training set, in eval mode).
    ``events``: dicts ``{"step", "kind", "text"}`` (hyperparameter changes, early stopping,
    divergence) for the plot to mark.
    """

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm_step: list[int] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    val_step: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_eval_loss: list[float] = field(default_factory=list)
    val_metrics: dict[str, list[float]] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    stop_reason: str = "running"
    stop_step: int | None = None
    baseline: float | None = None
    config: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.step)

    @property
    def diverged(self) -> bool:
        """True if the run stopped because the loss became NaN/inf or exploded."""
        return self.stop_reason in ("diverged", "exploded")

    @property
    def best_val_loss(self) -> float | None:
        finite = [v for v in self.val_loss if math.isfinite(v)]
        return min(finite) if finite else None

    def add_event(self, step: int, kind: str, text: str) -> None:
        self.events.append({"step": int(step), "kind": kind, "text": text})

    def to_dict(self) -> dict:
        """A JSON-serialisable copy (NaN and inf stay floats; ``json`` writes them as NaN/Infinity)."""
        return copy.deepcopy(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**copy.deepcopy(d))

    def same_curves(self, other: "History") -> bool:
        """True if two runs recorded the same losses, learning rates and gradient norms
        (wall times differ from run to run and are ignored)."""
        keys = ("step", "train_loss", "lr", "grad_norm_step", "grad_norm", "val_step", "val_loss", "train_eval_loss",
                "val_metrics", "stop_reason", "stop_step")
        return all(_nan_equal(getattr(self, k), getattr(other, k)) for k in keys)


def _nan_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_nan_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_nan_equal(a[k], b[k]) for k in a)
    return a == b


class TrainState:
    """What a callback sees: the model, the optimizer, the history so far and the current step.

    ``history`` holds the steps read back so far; call :meth:`flush` to read back the rest
    first (one device sync). ``loss`` is the current step's loss as a device tensor.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, history: History,
                 l1: float, lr_schedule: Callable[[int], float] | None):
        self.model, self.optimizer, self.history = model, optimizer, history
        self.l1 = l1
        self.lr_schedule = lr_schedule
        self.step = -1
        self.loss: torch.Tensor | None = None
        self.stop_reason: str | None = None
        self._flush_hook: Callable[[], None] = lambda: None  # fit's _Recorder.flush

    def flush(self) -> None:
        """Copy the pending per-step losses and gradient norms back from the device into
        ``history`` (and check them for divergence)."""
        self._flush_hook()

    def request_stop(self, reason: str = "callback") -> None:
        """Stop after the current step; ``history.stop_reason`` becomes ``reason``."""
        self.stop_reason = reason

    @property
    def hyperparams(self) -> dict:
        group = self.optimizer.param_groups[0]
        return {"lr": group["lr"], "weight_decay": group.get("weight_decay", 0.0), "l1": self.l1,
                "dropout": _get_dropout(self.model)}

    def set_hyperparams(self, **changes: float) -> None:
        """Change ``lr``, ``weight_decay``, ``l1`` or ``dropout`` from the next step on, and
        record each change as an event (the plot marks it on the curve).

        Example (inside a callback)::

            def on_step(state):
                if state.step == 100:
                    state.set_hyperparams(lr=0.01, weight_decay=1e-3)
        """
        where = "TrainState.set_hyperparams"
        check_relation(set(changes) <= set(_MIDRUN_PARAMS),
                       "the only hyperparameters that can change mid-run are 'lr', 'weight_decay', "
                       "'l1' and 'dropout'", where=where, names=sorted(changes))
        old = self.hyperparams
        for name, value in changes.items():
            _MIDRUN_PARAMS[name].check(name, value, where=where)
            if name == "lr":
                check_relation(self.lr_schedule is None, "'lr' cannot be set while an lr_schedule drives it",
                               where=where, lr=value)
            if name in ("lr", "weight_decay"):
                for g in self.optimizer.param_groups:
                    g[name] = float(value)
            elif name == "l1":
                self.l1 = float(value)
            else:
                _set_dropout(self.model, float(value))
            if old[name] != value:
                self.history.add_event(self.step + 1, "change", f"{name} {old[name]:.3g} -> {value:.3g}")


def _set_dropout(model: nn.Module, p: float) -> None:
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = p


def _get_dropout(model: nn.Module) -> float | None:
    ps = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    return ps[0] if ps else None


# fit's arguments and what each may be, checked in fit's order (scikit-learn's validate_params
# idea: one table instead of one check call per argument). The others are checked where they
# are used: ``loss_fn`` by get_loss, ``device`` by resolve_device, ``data`` when it is unpacked.
_FIT_PARAMS = {
    "model": InstanceOf(nn.Module, expected="torch.nn.Module"),
    "loss_fn": Options(LOSSES, or_type=Callable, expected="loss name or function f(y_hat, y) -> scalar tensor"),
    "optimizer": Options(OPTIMIZERS, or_type=torch.optim.Optimizer, expected="optimizer name or torch.optim.Optimizer"),
    "lr": Interval(float, 0, LR_MAX, closed="right"),
    "momentum": Interval(float, 0, 1, closed="left"),
    "weight_decay": Interval(float, 0, LR_MAX),
    "l1": Interval(float, 0, LR_MAX),
    "dropout": Interval(float, 0, 1, closed="left", allow_none=True),
    "batch_size": Interval(int, 1, None),
    "num_steps": Interval(int, 1, None, allow_none=True),
    "num_epochs": Interval(int, 1, None, allow_none=True),
    "eval_every": Interval(int, 0, None),
    "eval_train": Bool(),
    "metrics": Satisfies(lambda m: isinstance(m, dict) and all(isinstance(k, str) and callable(f)
                                                               for k, f in m.items()),
                         "'metrics' must be a dict name -> f(y_hat, y) -> float", allow_none=True),
    "val_data": Satisfies(lambda v: isinstance(v, torch.Tensor) or (isinstance(v, (tuple, list)) and len(v) == 2
                                                                    and all(isinstance(t, torch.Tensor) for t in v)),
                          "'val_data' must be (X_val, y_val) tensors or a token tensor", allow_none=True),
    "early_stopping": Interval(int, 1, None, allow_none=True),
    "min_delta": Interval(float, 0, None),
    "restore_best": Bool(),
    "lr_schedule": Satisfies(callable, "'lr_schedule' must be a function step -> lr or a Schedule", allow_none=True),
    "grad_clip": Interval(float, 0, None, closed="neither", allow_none=True),
    "explode_factor": Interval(float, 1, None, closed="neither", allow_none=True),
    "readback_every": Interval(int, 1, None),
    "grad_norm_every": Interval(int, 1, None),
    "on_step": InstanceOf(Callable, expected="callable or list of callables", allow_none=True, each=True),
    "on_eval": InstanceOf(Callable, expected="callable or list of callables", allow_none=True, each=True),
    "baseline": Interval(float, allow_none=True),
    "seed": Interval(int, 0, SEED_MAX),
}
# What a callback may change mid-run (TrainState.set_hyperparams), checked as fit checks it.
_MIDRUN_PARAMS = {"lr": _FIT_PARAMS["lr"], "weight_decay": _FIT_PARAMS["weight_decay"], "l1": _FIT_PARAMS["l1"],
                  "dropout": Interval(float, 0, 1, closed="left")}


def fit(
    model: nn.Module,
    data,
    *,
    loss_fn: str | Callable = "mse",
    optimizer: str | torch.optim.Optimizer = "adam",
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    l1: float = 0.0,
    dropout: float | None = None,
    batch_size: int = 64,
    num_steps: int | None = None,
    num_epochs: int | None = None,
    eval_every: int = 50,
    eval_train: bool = False,
    metrics: dict[str, Callable] | None = None,
    val_data=None,
    early_stopping: int | None = None,
    min_delta: float = 0.0,
    restore_best: bool = True,
    lr_schedule: Callable[[int], float] | None = None,
    grad_clip: float | None = None,
    explode_factor: float | None = 1e3,
    readback_every: int = 256,
    grad_norm_every: int = 10,
    on_step: Callable[[TrainState], None] | Iterable[Callable] | None = None,
    on_eval: Callable[[TrainState], None] | Iterable[Callable] | None = None,
    baseline: float | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> History:
    """Train ``model`` on ``data`` and return the :class:`History` of the run.

    Args:
        model (nn.Module): the model; moved to ``device``.
        data: a ``DataSplit`` (its validation part is used for ``val_loss``), a tuple
            ``(X, y)`` or ``(X, y, X_val, y_val)`` of tensors, or an iterator of batches
            (``(X, y)`` pairs, or token tensors ``(B, T)`` for a causal LM: their own targets).
        loss_fn (str or callable): a name from ``course_lib.losses.LOSSES`` (``"mse"``,
            ``"cross_entropy"``, ``"causal_lm"``, ...) or ``f(y_hat, y) -> scalar``. Default ``"mse"``.
        optimizer (str or Optimizer): ``"sgd"``, ``"momentum"``, ``"adam"``, ``"adamw"``, or a
            ready torch optimizer over ``model``'s parameters. Default ``"adam"``.
        lr (float): learning rate > 0. Default 1e-3.
        momentum (float): for ``"momentum"``, in [0, 1). Default 0.9.
        weight_decay (float): L2 (sgd, momentum, adam) or decoupled (adamw) decay >= 0. Default 0.
        l1 (float): coefficient of ``l1 * sum(|w|)`` over weight matrices (not biases) >= 0.
        dropout (float or None): sets ``p`` of every ``nn.Dropout`` in the model; None keeps it.
        batch_size (int): mini-batch size >= 1; >= the data size means full-batch GD. Default 64.
        num_steps (int): optimizer steps (default 1000). Or give ``num_epochs`` instead.
        eval_every (int): steps between validation passes; 0 disables them. Default 50.
        eval_train (bool): also evaluate the whole training set at each evaluation.
        metrics (dict): ``name -> f(y_hat, y) -> float`` evaluated on the validation set.
        val_data: ``(X_val, y_val)`` (or a token tensor) overriding the validation part of ``data``.
        early_stopping (int or None): stop after this many evaluations without an improvement
            of the validation loss by more than ``min_delta``; ``restore_best`` reloads the best weights.
        lr_schedule (callable): ``step -> lr``, a plain function of the step, applied before each
            step. A :class:`course_lib.schedules.Schedule` with momentum cycling also sets the
            momentum (SGD's ``momentum``, Adam's ``beta1``) each step.
        grad_clip (float or None): clip the gradient norm to this value.
        explode_factor (float or None): stop when the loss exceeds this times the first loss.
        readback_every (int): steps between copies of the losses from the device. Default 256.
        grad_norm_every (int): record the gradient norm every this many steps. Default 10:
            on the course's tiny models computing it costs ~15% of a step; 1 records every step.
        on_step, on_eval: callbacks ``f(state: TrainState)`` after each step / evaluation.
        baseline (float or None): a reference loss stored in the history (e.g. predicting the mean).
        seed (int): seeds the batch order and dropout. Model initialisation is the caller's.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None (:func:`course_lib.device.default_device`).

    Returns:
        History: the recorded run. ``history.stop_reason`` is one of ``STOP_REASONS``.

    Example:
        >>> from course_lib.models import LinearModel
        >>> X = torch.linspace(-1, 1, 64).unsqueeze(1); y = 3 * X + 1
        >>> _ = torch.manual_seed(0)
        >>> h = fit(LinearModel(1), (X, y), lr=0.1, optimizer="sgd", num_steps=200, device="cpu")
        >>> h.stop_reason, h.train_loss[-1] < 1e-3
        ('completed', True)
    """
    # 1. Check every argument before any work (the table _FIT_PARAMS above), so a mistake gets
    #    a plain message rather than a traceback from inside torch.
    validate_params(_FIT_PARAMS, locals(), where="fit")
    check_relation(num_steps is None or num_epochs is None, "give 'num_steps' or 'num_epochs', not both",
                   where="fit", num_steps=num_steps, num_epochs=num_epochs)
    check_relation(any(p.requires_grad for p in model.parameters()), "'model' must have trainable parameters",
                   where="fit", model=model)
    if not isinstance(optimizer, str):  # a ready optimizer: over this model's parameters, or nothing trains
        own = {id(p) for p in model.parameters()}
        theirs = [p for g in optimizer.param_groups for p in g["params"]]
        check_relation(bool(theirs) and all(id(p) in own for p in theirs),
                       "'optimizer' must update the parameters of 'model' (build it from model.parameters())",
                       where="fit", optimizer=optimizer)
    # Named losses run torch's fused kernel of the same formula in the steps (_loop.FUSED);
    # the label check and the evaluations use the course's function, which checks its inputs.
    loss_name, loss_fn = loss_fn, get_loss(loss_fn)
    step_loss = FUSED.get(loss_name, loss_fn) if isinstance(loss_name, str) else loss_fn
    dev = resolve_device(device, where="fit")
    on_step, on_eval = _as_list(on_step), _as_list(on_eval)

    # 2. Data on the device once; a seeded generator decides the batch order.
    X_train, y_train, X_val, y_val, batches = _prepare_data(data, val_data, batch_size, num_epochs, seed, dev)
    check_data_values("fit", X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val)
    if num_steps is None:
        per_epoch = 1 if X_train is None else max(1, X_train.shape[0] // batch_size)
        num_steps = per_epoch * num_epochs if num_epochs is not None else 1000
    has_val = eval_every > 0 and X_val is not None
    check_relation(early_stopping is None or has_val, "'early_stopping' needs validation data (a DataSplit with a "
                   "validation part, (X, y, X_val, y_val) or val_data) and eval_every > 0", where="fit",
                   early_stopping=early_stopping, has_validation_data=X_val is not None, eval_every=eval_every)

    # 3. Model, optimizer, bookkeeping.
    model.to(dev)
    if dropout is not None:
        _set_dropout(model, dropout)
    if isinstance(optimizer, str):
        opt = make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
    else:
        opt = optimizer  # the caller's, over the model's parameters
    momentum_schedule = getattr(lr_schedule, "momentum", None)  # a Schedule may cycle momentum too
    if momentum_schedule is not None:
        check_relation(has_momentum(opt), "a Schedule that cycles momentum needs an optimizer with 'momentum' "
                       "or 'betas'", where="fit", optimizer=type(opt).__name__)
    weights = [p for p in model.parameters() if p.ndim >= 2 and p.requires_grad]  # L1 acts on these
    params = [p for p in model.parameters() if p.requires_grad]
    history = History(baseline=baseline, config=dict(
        loss_fn=getattr(loss_fn, "__name__", str(loss_fn)), optimizer=optimizer if isinstance(optimizer, str)
        else type(optimizer).__name__, lr=lr, momentum=momentum, weight_decay=weight_decay, l1=l1,
        dropout=_get_dropout(model), batch_size=batch_size, num_steps=num_steps, seed=seed, device=str(dev)))
    state = TrainState(model, opt, history, l1, lr_schedule)
    recorder = _Recorder(state, explode_factor, readback_every)
    evaluate = _Evaluator(state, loss_fn, X_val, y_val, metrics=metrics or {},
                          train_set=(X_train, y_train) if eval_train and X_train is not None else None,
                          early_stopping=early_stopping, min_delta=min_delta, restore_best=restore_best,
                          on_eval=on_eval)

    # 4. Check the labels once, on all the training data (or the first batch of a stream), so a
    #    bad label gets a clear message; the steps then skip these checks (each one is a sync).
    #    Eval mode and before seeding: the check must not draw dropout masks from the RNG.
    first = next(batches, None) if X_train is None else (X_train, y_train)
    check_relation(first is not None, "'data' must yield at least one batch", where="fit", data=data)
    model.eval()
    with torch.no_grad():
        check_first_batch(model, first[0], first[1], loss_fn, "fit")
    if X_train is None:
        batches = itertools.chain([first], batches)
    torch.manual_seed(seed)  # dropout masks
    model.train()

    # 5. The loop.
    t0 = time.perf_counter()
    try:
        if has_val:
            evaluate(0)
        with skip_value_checks():
            for step in range(num_steps):
                if state.stop_reason is not None:
                    break
                X, y = next(batches)
                # (a) The learning rate (and momentum) of this step, from the schedule.
                if lr_schedule is not None:
                    lr_step = lr_schedule(step)
                    if not (isinstance(lr_step, numbers.Real) and 0 <= lr_step <= LR_MAX):  # NaN fails too
                        check_relation(False, f"'lr_schedule' must return a float in [0, {LR_MAX:g}]", where="fit",
                                       **{f"lr_schedule({step})": lr_step})
                    for g in opt.param_groups:
                        g["lr"] = lr_step
                    if momentum_schedule is not None:
                        set_momentum(opt, momentum_schedule(step))
                lr_now = opt.param_groups[0]["lr"]
                # (b) Forward and loss; the L1 penalty is trained on but not recorded.
                y_hat = model(X)
                loss = step_loss(y_hat, y)
                total = loss + state.l1 * sum(w.abs().sum() for w in weights) if state.l1 > 0 else loss
                # (c) Backward.
                opt.zero_grad(set_to_none=True)
                total.backward()
                # (d) Gradient norm: clipping computes it every step anyway; otherwise it costs
                #     ~15% of a tiny model's step, so only every grad_norm_every steps.
                if grad_clip is not None:
                    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip).detach()
                elif step % grad_norm_every == 0:
                    grad_norm = _total_grad_norm(params)
                else:
                    grad_norm = None
                # (e) Update.
                opt.step()
                # (f) Record on the device (read back in batches), then the callbacks.
                state.step, state.loss = step, loss.detach()
                recorder.add(step, state.loss, grad_norm, lr_now, time.perf_counter() - t0)
                for cb in on_step:
                    cb(state)
                # (g) A validation pass every eval_every steps (and early stopping).
                if has_val and (step + 1) % eval_every == 0 and state.stop_reason is None:
                    evaluate(step + 1)
    except KeyboardInterrupt:  # the stop button in Jupyter: keep what was recorded
        state.request_stop("interrupted")
    recorder.flush()

    # 6. Finish: a final evaluation, the stop reason, the best weights.
    if has_val and not history.diverged and (not history.val_step or history.val_step[-1] != len(history.step)):
        evaluate(len(history.step))
    if history.stop_reason == "running":
        reason = state.stop_reason or "completed"
        history.stop_reason = reason
        if reason != "completed":
            history.stop_step = history.step[-1] if history.step else 0
            history.add_event(history.stop_step, reason, reason.replace("_", " "))
    if history.stop_reason == "early_stopping":
        evaluate.restore_best_weights()
    return history


class _Recorder:
    """Keeps each step's record on the device and copies it into the History in batches.

    ``loss.item()`` every step would make the CPU wait for the device every step, so losses and
    gradient norms stay device tensors until :meth:`flush`: one ``stack(...).tolist()`` for many
    steps. The readback is also where divergence is found: a NaN/inf loss, or a loss above
    ``explode_factor`` times the first one, stops the run and is recorded with its step.
    """

    def __init__(self, state: TrainState, explode_factor: float | None, readback_every: int):
        self.state, self.history = state, state.history
        self.explode_factor = math.inf if explode_factor is None else explode_factor
        self.readback_every = readback_every
        self.pending: list[tuple[int, torch.Tensor, torch.Tensor | None, float, float]] = []
        self.first_loss: float | None = None  # the reference for explode_factor, set at the first readback
        state._flush_hook = self.flush

    def add(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor | None, lr: float, t: float) -> None:
        self.pending.append((step, loss, grad_norm, lr, t))
        if len(self.pending) >= self.readback_every:
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        history = self.history
        if not pending or history.diverged:
            return
        losses = torch.stack([p[1] for p in pending]).tolist()  # one device -> host copy for all these steps
        measured = [(p[0], p[2]) for p in pending if p[2] is not None]
        if measured:
            history.grad_norm_step.extend(s for s, _ in measured)
            history.grad_norm.extend(torch.stack([n for _, n in measured]).tolist())
        for (step, _, _, lr, t), loss in zip(pending, losses):
            history.step.append(step)
            history.train_loss.append(loss)
            history.lr.append(lr)
            history.time.append(t)
            if self.first_loss is None and math.isfinite(loss):
                self.first_loss = max(abs(loss), 1e-12)
            # Divergence: keep the offending step in the record, then stop.
            if not math.isfinite(loss):
                self._stop(step, "diverged", f"loss = {loss} at step {step}")
                return
            if self.first_loss is not None and loss > self.explode_factor * self.first_loss:
                self._stop(step, "exploded", f"loss {loss:.3g} > {self.explode_factor:g} x first loss "
                                             f"{self.first_loss:.3g} at step {step}")
                return

    def _stop(self, step: int, reason: str, text: str) -> None:
        self.history.stop_reason, self.history.stop_step = reason, step
        self.history.add_event(step, reason, text)
        self.state.request_stop(reason)


class _Evaluator:
    """A validation pass (loss, metrics, optionally the whole training set) and early stopping:
    stop after ``early_stopping`` evaluations without an improvement of more than ``min_delta``,
    keeping a copy of the best weights to restore."""

    def __init__(self, state: TrainState, loss_fn: Callable, X_val, y_val, *, metrics: dict[str, Callable],
                 train_set: tuple | None, early_stopping: int | None, min_delta: float, restore_best: bool,
                 on_eval: list[Callable]):
        self.state, self.loss_fn, self.X_val, self.y_val = state, loss_fn, X_val, y_val
        self.metrics, self.train_set, self.on_eval = metrics, train_set, on_eval
        self.early_stopping, self.min_delta, self.restore_best = early_stopping, min_delta, restore_best
        self.best_loss, self.evals_since, self.best_weights = math.inf, 0, None

    def __call__(self, step: int) -> None:
        state, history, model = self.state, self.state.history, self.state.model
        state.flush()  # the callbacks see every step up to this one
        if history.diverged:  # the readback just found a blow-up: no point evaluating after it
            return
        model.eval()
        with torch.no_grad():
            y_hat = model(self.X_val)
            history.val_step.append(step)
            history.val_loss.append(float(self.loss_fn(y_hat, self.y_val)))
            for name, fn in self.metrics.items():
                history.val_metrics.setdefault(name, []).append(float(fn(y_hat, self.y_val)))
            if self.train_set is not None:
                history.train_eval_loss.append(float(self.loss_fn(model(self.train_set[0]), self.train_set[1])))
        model.train()
        v = history.val_loss[-1]
        if v < self.best_loss - self.min_delta:
            self.best_loss, self.evals_since = v, 0
            if self.early_stopping is not None and self.restore_best:
                self.best_weights = {k: t.detach().clone() for k, t in model.state_dict().items()}
        else:
            self.evals_since += 1
        for cb in self.on_eval:
            cb(state)
        if self.early_stopping is not None and self.evals_since >= self.early_stopping:
            state.request_stop("early_stopping")

    def restore_best_weights(self) -> None:
        if self.best_weights is not None:
            self.state.model.load_state_dict(self.best_weights)


def _prepare_data(data, val_data, batch_size: int, num_epochs: int | None, seed: int, dev: torch.device):
    """``(X_train, y_train, X_val, y_val, batches)``, tensors on ``dev``; for a stream of batches
    ``X_train`` and ``y_train`` are None. ``batches`` yields ``(X, y)`` forever."""
    X_val = y_val = None
    if hasattr(data, "X_train"):  # a course_lib.data.DataSplit
        X_train, y_train = data.X_train, data.y_train
        X_val, y_val = getattr(data, "X_val", None), getattr(data, "y_val", None)
    elif isinstance(data, (tuple, list)) and len(data) in (2, 4) and all(isinstance(t, torch.Tensor) for t in data):
        X_train, y_train, X_val, y_val = data if len(data) == 4 else (*data, None, None)
    elif isinstance(data, Iterator):
        check_relation(num_epochs is None, "'num_epochs' needs tensor data (an iterator has no epochs)",
                       where="fit", num_epochs=num_epochs)
        X_train = y_train = None
        batches = (tuple(t.to(dev) for t in as_pair(b)) for b in data)
    else:
        raise TypeError("fit(): 'data' must be a DataSplit, a tuple (X, y) or (X, y, X_val, y_val) of tensors, "
                        f"or an iterator of batches, got data of type {type(data).__name__}")
    if X_train is not None:
        X_train, y_train, X_val, y_val = (None if t is None else t.to(dev) for t in (X_train, y_train, X_val, y_val))
        check_relation(X_train.shape[0] == y_train.shape[0], "X and y must have the same number of rows",
                       where="fit", X_rows=X_train.shape[0], y_rows=y_train.shape[0])
        batches = tensor_batches(X_train, y_train, batch_size, torch.Generator().manual_seed(seed))
    if val_data is not None:
        X_val, y_val = (t.to(dev) for t in as_pair(val_data))
    return X_train, y_train, X_val, y_val, batches


def _total_grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of all gradients together, as a device tensor (no sync: it is read back with
    the losses). A parameter the loss does not reach counts as a zero gradient."""
    grads = [torch.zeros((), device=p.device) if p.grad is None else p.grad for p in params]
    return torch.nn.utils.get_total_norm(grads)


def _as_list(callbacks) -> list[Callable]:
    """``on_step``/``on_eval`` as a list: None, one function, or a list of them."""
    if callbacks is None:
        return []
    return list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
