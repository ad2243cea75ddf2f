"""Cyclical learning-rate schedules, written as plain functions of the step.

A schedule here is just ``step -> lr`` (and ``step -> momentum``): you can print it, plot it
before training (``preview_schedule`` in the course's plotting layer) and pass it to ``fit(lr_schedule=...)``.
One adapter, :func:`attach_schedule`, drives any torch optimizer with it.

Policies (Smith 2017; Smith & Topin 2017):

- ``triangular``: the LR climbs linearly from ``base_lr`` to ``max_lr`` in ``step_size_up``
  steps, falls back in ``step_size_down`` steps, and repeats.
- ``triangular2``: the same, with the amplitude halved every cycle.
- ``exp_range``: the amplitude shrinks by ``gamma ** step``.
- one-cycle: one warm-up from ``max_lr / div_factor`` to ``max_lr`` over ``pct_start`` of the
  run, then annealing (cosine or linear) down to ``initial / final_div_factor``; with
  ``three_phase=True`` it first returns symmetrically to the initial LR and anneals afterwards.

Momentum cycles *opposite* to the LR (high LR, low momentum): a large step size and a large
momentum together make the effective step too big. For Adam the "momentum" is ``beta1``.

The formulas follow ``torch.optim.lr_scheduler.CyclicLR`` / ``OneCycleLR`` operation for
operation, so the course's tests can compare them to torch within 1e-12. Notebook 05
(``notebooks/05_lr_range_test_and_cyclical_schedules.ipynb``) trains with them; its exercises
write ``triangular_lr`` and ``one_cycle_lr`` by hand.

References:
    Smith, Cyclical Learning Rates for Training Neural Networks, arXiv 1506.01186 (WACV 2017).
    Smith & Topin, Super-Convergence, arXiv 1708.07120.
    Smith, A disciplined approach to neural network hyper-parameters: Part 1, arXiv 1803.09820.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ._loop import has_momentum, set_momentum
from ._validation import check_choice, check_number, check_relation, check_type

__all__ = [
    "CYCLIC_MODES", "ANNEAL_STRATEGIES", "Schedule",
    "cyclic_lr", "cyclic_momentum", "one_cycle_lr", "one_cycle_momentum",
    "cyclic_schedule", "one_cycle_schedule", "attach_schedule",
]

CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
ANNEAL_STRATEGIES = ("cos", "linear")


# ---------------------------------------------------------------------------------------------
# Cyclical (CLR) policy
# ---------------------------------------------------------------------------------------------

def _cyclic_position(step: int, step_size_up: int, step_size_down: int) -> tuple[int, float]:
    """Return ``(cycle, height)``: the 1-based cycle number and where we are inside it as a
    fraction of the full amplitude (0 at the bottom, 1 at the peak)."""
    total = float(step_size_up + step_size_down)
    up_ratio = step_size_up / total
    cycle = math.floor(1 + step / total)          # 1, 1, ..., 2, 2, ...
    x = 1.0 + step / total - cycle                # position inside the cycle, in [0, 1)
    if x <= up_ratio:
        return cycle, x / up_ratio                # climbing
    return cycle, (x - 1) / (up_ratio - 1)        # falling


def _cyclic_scale(mode: str, gamma: float, cycle: int, step: int) -> float:
    """How much of the amplitude is left: 1 (triangular), 1/2^(cycle-1) (triangular2),
    gamma^step (exp_range)."""
    if mode == "triangular":
        return 1.0
    if mode == "triangular2":
        return math.ldexp(1.0, 1 - cycle)   # 2**-(cycle-1); reaches 0.0 and stays (1/2.0**1024 overflows)
    return gamma ** step


def _check_cyclic(where, step, step_size_up, step_size_down, mode, gamma):
    check_number("step", step, where=where, low=0, integer=True)
    check_number("step_size_up", step_size_up, where=where, low=1, integer=True)
    check_number("step_size_down", step_size_down, where=where, low=1, integer=True, allow_none=True)
    check_choice("mode", mode, CYCLIC_MODES, where=where)
    check_number("gamma", gamma, where=where, low=0.0, high=1.0, low_open=True)


def cyclic_lr(
    step: int,
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> float:
    """The cyclical learning rate at ``step`` (0-based): between ``base_lr`` and ``max_lr``.

    Triangular policy, with half-cycle ``s``: ``cycle = floor(1 + t / 2s)``,
    ``x = |t/s - 2 cycle + 1|``, ``lr = base_lr + (max_lr - base_lr) * max(0, 1 - x)``.

    Args:
        step (int): the training step >= 0.
        base_lr (float): the lowest LR > 0 (the start of every cycle).
        max_lr (float): the peak LR, > ``base_lr``.
        step_size_up (int): steps from ``base_lr`` up to ``max_lr``, >= 1. Default 2000.
        step_size_down (int or None): steps back down; None means ``step_size_up``.
        mode (str): ``"triangular"``, ``"triangular2"`` or ``"exp_range"``. Default ``"triangular"``.
        gamma (float): in (0, 1]; ``exp_range`` scales the amplitude by ``gamma ** step``.

    Returns:
        float: the learning rate.

    Example:
        >>> [round(cyclic_lr(t, base_lr=0.1, max_lr=0.5, step_size_up=2), 6) for t in range(5)]
        [0.1, 0.3, 0.5, 0.3, 0.1]

    References:
        Smith, Cyclical Learning Rates for Training Neural Networks, arXiv 1506.01186, Sec. 3.1.
    """
    where = "cyclic_lr"
    _check_cyclic(where, step, step_size_up, step_size_down, mode, gamma)
    _check_lr_pair(where, base_lr, max_lr)
    return _cyclic_lr(step, base_lr, max_lr, step_size_up, step_size_down or step_size_up, mode, gamma)


def _cyclic_lr(step, base_lr, max_lr, step_size_up, step_size_down, mode, gamma) -> float:
    cycle, height = _cyclic_position(step, step_size_up, step_size_down)
    return base_lr + (max_lr - base_lr) * height * _cyclic_scale(mode, gamma, cycle, step)


def cyclic_momentum(
    step: int,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> float:
    """The momentum that goes with :func:`cyclic_lr`: it moves *opposite* to the LR, from
    ``max_momentum`` (at ``base_lr``) down to ``base_momentum`` (at ``max_lr``).

    Args:
        step (int): the training step >= 0.
        base_momentum (float): momentum at the LR's peak, in [0, 1). Default 0.8.
        max_momentum (float): momentum at the LR's bottom, in [0, 1), >= ``base_momentum``. Default 0.9.
        step_size_up, step_size_down, mode, gamma: as in :func:`cyclic_lr`.

    Example:
        >>> [round(cyclic_momentum(t, step_size_up=2), 3) for t in range(5)]
        [0.9, 0.85, 0.8, 0.85, 0.9]
    """
    where = "cyclic_momentum"
    _check_cyclic(where, step, step_size_up, step_size_down, mode, gamma)
    _check_momentum_pair(where, base_momentum, max_momentum)
    return _cyclic_momentum(step, base_momentum, max_momentum, step_size_up,
                            step_size_down or step_size_up, mode, gamma)


def _cyclic_momentum(step, base_momentum, max_momentum, step_size_up, step_size_down, mode, gamma) -> float:
    cycle, height = _cyclic_position(step, step_size_up, step_size_down)
    return max_momentum - (max_momentum - base_momentum) * height * _cyclic_scale(mode, gamma, cycle, step)


# ---------------------------------------------------------------------------------------------
# One-cycle policy
# ---------------------------------------------------------------------------------------------

def _anneal(start: float, end: float, pct: float, strategy: str) -> float:
    """Go from ``start`` (pct=0) to ``end`` (pct=1) along half a cosine, or a straight line."""
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


def _one_cycle_phases(total_steps: int, pct_start: float, three_phase: bool):
    """The phases as ``(end_step, lr_from, lr_to, momentum_from, momentum_to)``, where the
    names refer to the three LR levels (initial, max, min) and two momentum levels."""
    if three_phase:
        return [
            (float(pct_start * total_steps) - 1, "initial", "max", "max", "base"),   # warm up
            (float(2 * pct_start * total_steps) - 2, "max", "initial", "base", "max"),  # back down
            (total_steps - 1, "initial", "min", "max", "max"),                       # anneal
        ]
    return [
        (float(pct_start * total_steps) - 1, "initial", "max", "max", "base"),       # warm up
        (total_steps - 1, "max", "min", "base", "max"),                             # anneal
    ]


def _one_cycle_value(step, total_steps, pct_start, three_phase, strategy, levels, which) -> float:
    # 1. find the phase that contains `step`; 2. interpolate between its two levels.
    start_step = 0.0
    phases = _one_cycle_phases(total_steps, pct_start, three_phase)
    for i, (end_step, lr_from, lr_to, m_from, m_to) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            a, b = (lr_from, lr_to) if which == "lr" else (m_from, m_to)
            return _anneal(levels[a], levels[b], pct, strategy)
        start_step = end_step
    raise AssertionError("unreachable: the last phase always matches")


def _check_one_cycle(where, step, total_steps, pct_start, anneal_strategy, three_phase):
    check_number("total_steps", total_steps, where=where, low=2, integer=True)
    check_number("step", step, where=where, low=0, high=total_steps, integer=True)
    check_number("pct_start", pct_start, where=where, low=0.0, high=1.0, low_open=True, high_open=True)
    check_choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES, where=where)
    check_type("three_phase", three_phase, bool, where=where)
    # Each phase needs at least one step, or the interpolation divides by zero.
    n_phase_steps = pct_start * total_steps - 1
    check_relation(n_phase_steps >= 1 and (not three_phase or total_steps - 1 > 2 * pct_start * total_steps - 2),
                   f"'pct_start' * 'total_steps' must leave at least one step to every phase "
                   f"({'three' if three_phase else 'two'} phases)",
                   where=where, pct_start=pct_start, total_steps=total_steps)
    if not three_phase:
        check_relation(total_steps - 1 > n_phase_steps, "'pct_start' must leave at least one annealing step",
                       where=where, pct_start=pct_start, total_steps=total_steps)


def one_cycle_lr(
    step: int,
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> float:
    """The one-cycle learning rate at ``step``: warm up from ``max_lr / div_factor`` to
    ``max_lr`` over the first ``pct_start`` of the run, then anneal to
    ``max_lr / div_factor / final_div_factor``.

    Args:
        step (int): the training step, in [0, total_steps].
        max_lr (float): the peak LR > 0.
        total_steps (int): the length of the run >= 2.
        pct_start (float): fraction of the run spent warming up, in (0, 1). Default 0.3.
        anneal_strategy (str): ``"cos"`` or ``"linear"``. Default ``"cos"``.
        div_factor (float): initial LR = ``max_lr / div_factor``, >= 1. Default 25.
        final_div_factor (float): final LR = initial LR / ``final_div_factor``, >= 1. Default 1e4.
        three_phase (bool): warm up, come back down to the initial LR symmetrically, then
            anneal to the final LR (Smith's original one-cycle). Default False (fastai's form).

    Example:
        >>> [round(one_cycle_lr(t, max_lr=1.0, total_steps=10, pct_start=0.2, anneal_strategy="linear"), 3)
        ...  for t in (0, 1, 9)]
        [0.04, 1.0, 0.0]

    References:
        Smith & Topin, Super-Convergence, arXiv 1708.07120.
    """
    where = "one_cycle_lr"
    _check_one_cycle(where, step, total_steps, pct_start, anneal_strategy, three_phase)
    check_number("max_lr", max_lr, where=where, low=0.0, low_open=True)
    check_number("div_factor", div_factor, where=where, low=1.0)
    check_number("final_div_factor", final_div_factor, where=where, low=1.0)
    return _one_cycle_value(step, total_steps, pct_start, three_phase, anneal_strategy,
                            _lr_levels(max_lr, div_factor, final_div_factor), "lr")


def _lr_levels(max_lr, div_factor, final_div_factor) -> dict:
    initial = max_lr / div_factor
    return {"initial": initial, "max": max_lr, "min": initial / final_div_factor}


def one_cycle_momentum(
    step: int,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> float:
    """The momentum that goes with :func:`one_cycle_lr`: ``max_momentum`` while the LR is low,
    ``base_momentum`` at the LR's peak.

    Example:
        >>> [round(one_cycle_momentum(t, total_steps=10, pct_start=0.2, anneal_strategy="linear"), 3)
        ...  for t in (0, 1, 9)]
        [0.95, 0.85, 0.95]
    """
    where = "one_cycle_momentum"
    _check_one_cycle(where, step, total_steps, pct_start, anneal_strategy, three_phase)
    _check_momentum_pair(where, base_momentum, max_momentum)
    return _one_cycle_value(step, total_steps, pct_start, three_phase, anneal_strategy,
                            {"base": base_momentum, "max": max_momentum}, "momentum")


# ---------------------------------------------------------------------------------------------
# Schedules: the two functions bound to their settings, checked once
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule (and optionally a momentum schedule) as functions of the step.

    Calling it gives the LR, so it can be passed wherever ``step -> lr`` is expected
    (``fit(lr_schedule=...)``; ``fit`` also applies ``momentum`` when present).

    Attributes:
        lr (callable): ``step -> lr``.
        momentum (callable or None): ``step -> momentum`` (``beta1`` for Adam), or None.
        name (str): e.g. ``"triangular"`` or ``"one_cycle"``.
        num_steps (int): a natural preview length (one-cycle: the run; cyclic: three cycles).
        params (dict): the arguments it was built with.
    """

    lr: Callable[[int], float]
    momentum: Callable[[int], float] | None
    name: str
    num_steps: int
    params: dict = field(default_factory=dict)

    def __call__(self, step: int) -> float:
        return self.lr(step)

    def values(self, num_steps: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(lrs, momenta)`` for steps ``0 .. num_steps - 1`` (a dry run, no training):
        shapes ``(num_steps,)``; ``momenta`` is None without momentum cycling."""
        n = self.num_steps if num_steps is None else check_number(
            "num_steps", num_steps, where="Schedule.values", low=1, integer=True)
        if self.name == "one_cycle":
            check_relation(n <= self.num_steps + 1, "'num_steps' must be <= total_steps + 1 for a one-cycle schedule",
                           where="Schedule.values", num_steps=n, total_steps=self.num_steps)
        lrs = np.array([self.lr(t) for t in range(n)])
        moms = None if self.momentum is None else np.array([self.momentum(t) for t in range(n)])
        return lrs, moms


def cyclic_schedule(
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    cycle_momentum: bool = True,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> Schedule:
    """A cyclical LR :class:`Schedule` with the arguments (and defaults) of torch's ``CyclicLR``.

    Example:
        >>> s = cyclic_schedule(base_lr=1e-3, max_lr=1e-2, step_size_up=4)
        >>> [round(s(t), 6) for t in (0, 2, 4, 8)]
        [0.001, 0.0055, 0.01, 0.001]
        >>> s.momentum(4)
        0.8
    """
    where = "cyclic_schedule"
    _check_cyclic(where, 0, step_size_up, step_size_down, mode, gamma)
    _check_lr_pair(where, base_lr, max_lr)
    check_type("cycle_momentum", cycle_momentum, bool, where=where)
    if cycle_momentum:
        _check_momentum_pair(where, base_momentum, max_momentum)
    down = step_size_down or step_size_up
    args = (step_size_up, down, mode, gamma)
    params = dict(base_lr=base_lr, max_lr=max_lr, step_size_up=step_size_up, step_size_down=down,
                  mode=mode, gamma=gamma, cycle_momentum=cycle_momentum,
                  base_momentum=base_momentum, max_momentum=max_momentum)
    return Schedule(
        lr=lambda t: _cyclic_lr(t, base_lr, max_lr, *args),
        momentum=(lambda t: _cyclic_momentum(t, base_momentum, max_momentum, *args)) if cycle_momentum else None,
        name=mode, num_steps=3 * (step_size_up + down), params=params)


def one_cycle_schedule(
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
    cycle_momentum: bool = True,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> Schedule:
    """A one-cycle :class:`Schedule` with the arguments (and defaults) of torch's ``OneCycleLR``.

    fastai's ``fit_one_cycle`` uses ``pct_start=0.25, div_factor=25, final_div_factor=1e5``
    and momenta ``(0.95, 0.85, 0.95)``.

    Example:
        >>> s = one_cycle_schedule(max_lr=0.1, total_steps=100)
        >>> round(s(0), 6), round(s(29), 6), s.momentum(29)
        (0.004, 0.1, 0.85)
    """
    where = "one_cycle_schedule"
    _check_one_cycle(where, 0, total_steps, pct_start, anneal_strategy, three_phase)
    check_number("max_lr", max_lr, where=where, low=0.0, low_open=True)
    check_number("div_factor", div_factor, where=where, low=1.0)
    check_number("final_div_factor", final_div_factor, where=where, low=1.0)
    check_type("cycle_momentum", cycle_momentum, bool, where=where)
    if cycle_momentum:
        _check_momentum_pair(where, base_momentum, max_momentum)
    lr_levels = _lr_levels(max_lr, div_factor, final_div_factor)
    m_levels = {"base": base_momentum, "max": max_momentum}
    args = (total_steps, pct_start, three_phase, anneal_strategy)

    def lr(t: int) -> float:
        # torch raises past total_steps; say so in the course's words instead.
        check_number("step", t, where="one_cycle_schedule.lr", low=0, high=total_steps, integer=True)
        return _one_cycle_value(t, *args, lr_levels, "lr")

    def momentum(t: int) -> float:
        check_number("step", t, where="one_cycle_schedule.momentum", low=0, high=total_steps, integer=True)
        return _one_cycle_value(t, *args, m_levels, "momentum")

    params = dict(max_lr=max_lr, total_steps=total_steps, pct_start=pct_start, anneal_strategy=anneal_strategy,
                  div_factor=div_factor, final_div_factor=final_div_factor, three_phase=three_phase,
                  cycle_momentum=cycle_momentum, base_momentum=base_momentum, max_momentum=max_momentum)
    return Schedule(lr=lr, momentum=momentum if cycle_momentum else None, name="one_cycle",
                    num_steps=total_steps, params=params)


# ---------------------------------------------------------------------------------------------
# The adapter: drive any torch optimizer
# ---------------------------------------------------------------------------------------------

class _FunctionScheduler(torch.optim.lr_scheduler.LRScheduler):
    """A torch LR scheduler whose LR (and momentum) at step ``t`` come from plain functions."""

    def __init__(self, optimizer, lr_fn, momentum_fn, last_epoch=-1):
        self.lr_fn, self.momentum_fn = lr_fn, momentum_fn
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t = self.last_epoch
        if self.momentum_fn is not None:
            set_momentum(self.optimizer, self.momentum_fn(t))
        return [self.lr_fn(t) for _ in self.optimizer.param_groups]


def attach_schedule(optimizer: torch.optim.Optimizer, schedule: Schedule | Callable[[int], float]):
    """Drive ``optimizer`` with ``schedule``: returns a torch ``LRScheduler``; call its
    ``step()`` after each ``optimizer.step()``, exactly as with torch's own schedulers.

    Args:
        optimizer (torch.optim.Optimizer): any optimizer; momentum cycling needs one with
            ``momentum`` (SGD, RMSprop) or ``betas`` (Adam, AdamW).
        schedule (Schedule or callable): a :class:`Schedule`, or a plain ``step -> lr`` function.

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> sched = attach_schedule(opt, cyclic_schedule(0.01, 0.1, step_size_up=5))
        >>> opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]
        (0.01, 0.9)
    """
    where = "attach_schedule"
    check_type("optimizer", optimizer, torch.optim.Optimizer, where=where)
    if isinstance(schedule, Schedule):
        lr_fn, momentum_fn = schedule.lr, schedule.momentum
    else:
        check_relation(callable(schedule), "'schedule' must be a Schedule or a function step -> lr",
                       where=where, schedule=schedule)
        lr_fn, momentum_fn = schedule, None
    if momentum_fn is not None:
        check_relation(has_momentum(optimizer),
                       "momentum cycling needs an optimizer with 'momentum' or 'betas' "
                       "(build the schedule with cycle_momentum=False)",
                       where=where, optimizer=type(optimizer).__name__)
    return _FunctionScheduler(optimizer, lr_fn, momentum_fn)


def _check_lr_pair(where: str, base_lr, max_lr) -> None:
    check_number("base_lr", base_lr, where=where, low=0.0, low_open=True)
    check_number("max_lr", max_lr, where=where, low=0.0, low_open=True)
    check_relation(max_lr > base_lr, "'max_lr' must be > 'base_lr'", where=where, max_lr=max_lr, base_lr=base_lr)


def _check_momentum_pair(where: str, base_momentum, max_momentum) -> None:
    check_number("base_momentum", base_momentum, where=where, low=0.0, high=1.0, high_open=True)
    check_number("max_momentum", max_momentum, where=where, low=0.0, high=1.0, high_open=True)
    check_relation(max_momentum >= base_momentum, "'max_momentum' must be >= 'base_momentum'",
                   where=where, max_momentum=max_momentum, base_momentum=base_momentum)
