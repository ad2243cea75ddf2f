"""The one parameter-validation helper of the course (scikit-learn style).

Every public function checks its arguments with these helpers, so every bad input gets the
same kind of message, naming the function, the parameter, what is allowed and what came in::

    fit(): 'lr' must be a float in (0, 1e+06], got lr=-0.1
    cyclic_lr(): 'max_lr' must be > 'base_lr', got max_lr=0.01, base_lr=0.1
    fit(): 'optimizer' must be one of 'sgd', 'momentum', 'adam', 'adamw', got optimizer='rmsprop'

``ValueError`` for a bad value, ``TypeError`` for a bad type; ``assert`` is kept for internal
invariants only. Checking early matters in a course: a traceback from deep inside torch
teaches nothing.

A function with many parameters (``fit``) declares them in one table instead of one call per
parameter, as scikit-learn's ``validate_params`` does::

    _FIT_PARAMS = {"lr": Interval(float, 0, None, closed="neither"), "optimizer": Options(OPTIMIZERS), ...}
    validate_params(_FIT_PARAMS, locals(), where="fit")

Each constraint produces exactly the message of the ``check_*`` call it stands for.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
from typing import Any, Iterable, Mapping

import torch

__all__: list[str] = []  # private module: imported by name inside course_lib only


def _prefix(where: str) -> str:
    return f"{where}(): " if where else ""


def _fmt(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    if isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value):
        inner = ", ".join(_fmt(v) for v in value)       # tensors by shape, never their numbers
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    text = repr(value)
    # A pasted document or a 400-digit int would drown the message: its start and its length.
    return text if len(text) <= 200 else f"{text[:80]}... ({len(text)} characters)"


def _num(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)  # 0.0 -> "0", 1e-05 stays short


def _describe_range(kind: str, low, high, low_open: bool, high_open: bool) -> str:
    low, high = (None if low is None else _num(low)), (None if high is None else _num(high))
    if low is not None and high is not None:
        left, right = ("(" if low_open else "["), (")" if high_open else "]")
        return f"{kind} in {left}{low}, {high}{right}"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {high}"
    return kind


def check_number(
    name: str,
    value: Any,
    *,
    where: str = "",
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    allow_none: bool = False,
):
    """Return ``value`` if it is a real number (an int if ``integer``) inside the range.

    Bools are rejected (``True`` is an int in Python, never a learning rate); so are NaN and inf.
    """
    if value is None and allow_none:
        return None
    kind = "an int" if integer else "a float"
    allowed = _describe_range(kind, low, high, low_open, high_open)
    if allow_none:
        allowed += " or None"
    ok_type = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(
        value, bool
    )
    if not ok_type:
        raise TypeError(
            f"{_prefix(where)}'{name}' must be {allowed}, got {name}={_fmt(value)} "
            f"of type {type(value).__name__}"
        )
    # No course parameter accepts NaN or inf: a learning rate of inf is always a mistake.
    bad = not isinstance(value, numbers.Integral) and not math.isfinite(value)  # huge ints overflow isfinite
    if not bad and not integer and isinstance(value, numbers.Integral):
        bad = abs(value) > 1.7e308                # 10**400 is an int, but no float: torch would overflow
    if not bad and low is not None:
        bad = value <= low if low_open else value < low
    if not bad and high is not None:
        bad = value >= high if high_open else value > high
    if bad:
        raise ValueError(f"{_prefix(where)}'{name}' must be {allowed}, got {name}={_fmt(value)}")
    return int(value) if integer else value


# torch.Generator.manual_seed and torch.manual_seed take a signed 64-bit seed: larger ints
# overflow deep inside torch ("Overflow when unpacking long long").
SEED_MAX = 2**63 - 1

# Learning rates and decay coefficients: a finite ceiling. Past ~10 every course model diverges
# (a recorded result); past ~3e38 torch cannot even store the value as a float32 and raises.
LR_MAX = 1e6

# Sizes. A model must fit in a laptop's memory: past MAX_PARAMS parameters (2 GB in float32) building
# it is an out-of-memory crash, not a lesson. SIZE_MAX bounds any one size and DEPTH_MAX a layer
# count, so that nothing loops for hours building layers nor overflows torch's 64-bit shapes.
MAX_PARAMS = 500_000_000
SIZE_MAX = 10**7
DEPTH_MAX = 256


def check_model_size(n_params: int, *, where: str, **sizes: Any) -> None:
    """Raise ``ValueError`` naming ``sizes`` if a model would have more than ``MAX_PARAMS`` parameters."""
    check_relation(n_params <= MAX_PARAMS, f"the model would have {n_params:.3g} parameters, more than "
                   f"{MAX_PARAMS:.0e} (2 GB) fit in a laptop's memory", where=where, **sizes)


def check_seed(seed: Any, *, where: str = "", allow_none: bool = False):
    """Return ``seed`` if it is an int in [0, 2**63 - 1] (``None`` too if ``allow_none``)."""
    return check_number("seed", seed, where=where, low=0, high=SEED_MAX, integer=True, allow_none=allow_none)


def check_choice(name: str, value: Any, choices: Iterable[Any], *, where: str = ""):
    """Return ``value`` if it is one of ``choices`` (compared with ``==``)."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{_prefix(where)}'{name}' must be one of {listed}, got {name}={_fmt(value)}")
    return value


def check_type(name: str, value: Any, types, *, where: str = "", expected: str | None = None):
    """Return ``value`` if ``isinstance(value, types)``; else raise ``TypeError``."""
    if not isinstance(value, types):
        if expected is None:
            tup = types if isinstance(types, tuple) else (types,)
            expected = " or ".join(t.__name__ for t in tup)
        raise TypeError(
            f"{_prefix(where)}'{name}' must be a {expected}, got {name}={_fmt(value)} "
            f"of type {type(value).__name__}"
        )
    return value


def check_relation(ok: bool, rule: str, *, where: str = "", **values: Any) -> None:
    """Raise ``ValueError`` unless ``ok``; ``rule`` reads like "'max_lr' must be > 'base_lr'"."""
    if not ok:
        got = ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())
        raise ValueError(f"{_prefix(where)}{rule}, got {got}")


def check_tensor(
    name: str,
    value: Any,
    *,
    where: str = "",
    ndim: int | Iterable[int] | None = None,
    floating: bool | None = None,
    shape_hint: str = "",
) -> torch.Tensor:
    """Return ``value`` if it is a tensor with the allowed number of dims and dtype kind.

    Args:
        ndim: allowed ``value.ndim`` (an int or several).
        floating: ``True`` requires a floating dtype, ``False`` an integer dtype.
        shape_hint: the expected shape in words, e.g. ``"(N, C)"``, used in the message.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{_prefix(where)}'{name}' must be a torch.Tensor{' of shape ' + shape_hint if shape_hint else ''}, "
            f"got {name} of type {type(value).__name__}"
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            dims = " or ".join(str(d) for d in allowed)
            hint = f" {shape_hint}" if shape_hint else ""
            raise ValueError(
                f"{_prefix(where)}'{name}' must have {dims} dimension(s){hint}, "
                f"got {name}.shape={tuple(value.shape)}"
            )
    if floating is True and not value.is_floating_point():
        raise TypeError(
            f"{_prefix(where)}'{name}' must be a floating-point tensor, got {name}.dtype={value.dtype}"
        )
    if floating is False and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise TypeError(f"{_prefix(where)}'{name}' must be an integer tensor, got {name}.dtype={value.dtype}")
    return value


def as_float_array(name: str, values: Any, *, where: str = "", ndim: int | None = 1, finite: bool = False):
    """``values`` (a list, an array, a tensor) as a float64 numpy array, or the course's message.

    Args:
        ndim: the required number of dimensions (None: any). finite: refuse NaN and inf, naming the first.
    """
    import numpy as np   # numpy is torch's dependency; imported here so this module stays light

    try:
        if isinstance(values, (str, bytes, dict, set)) or values is None:
            raise TypeError
        arr = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{_prefix(where)}'{name}' must be an array-like of numbers, got {name}={_fmt(values)} "
                        f"of type {type(values).__name__}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{_prefix(where)}'{name}' must have {ndim} dimension(s), got {name}.shape={arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr)) if finite else ()
    if len(bad):
        raise ValueError(f"{_prefix(where)}'{name}' must be finite, got {name}[{bad[0]}]={arr.flat[bad[0]]}")
    return arr


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor, *, where: str = "") -> None:
    """Raise ``ValueError`` unless two tensors have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{_prefix(where)}'{name_a}' and '{name_b}' must have the same shape, "
            f"got {name_a}.shape={tuple(a.shape)}, {name_b}.shape={tuple(b.shape)}"
        )


# ---- the declarative table --------------------------------------------------------------------

class Interval:
    """A real number in a range (scikit-learn's ``Interval``): ``check_number`` as a table entry.

    Args:
        kind (type): ``int`` (an integer) or ``float`` (any real number).
        low, high (number or None): the bounds; None means unbounded.
        closed (str): which bounds belong to the range: ``"both"``, ``"left"``, ``"right"`` or
            ``"neither"``. Default ``"both"``.
        allow_none (bool): None is allowed too (it means "off" or "the default").

    Example:
        >>> Interval(float, 0, 1, closed="left").check("dropout", 1.0, where="fit")
        Traceback (most recent call last):
        ...
        ValueError: fit(): 'dropout' must be a float in [0, 1), got dropout=1.0
    """

    def __init__(self, kind: type, low=None, high=None, *, closed: str = "both", allow_none: bool = False):
        assert kind in (int, float) and closed in ("both", "left", "right", "neither")
        self.kind, self.low, self.high, self.allow_none = kind, low, high, allow_none
        self.low_open = closed in ("right", "neither")
        self.high_open = closed in ("left", "neither")

    def check(self, name: str, value: Any, *, where: str = "") -> None:
        check_number(name, value, where=where, low=self.low, high=self.high, low_open=self.low_open,
                     high_open=self.high_open, integer=self.kind is int, allow_none=self.allow_none)


class Options:
    """One of a fixed set of names (``check_choice``); with ``or_type``, a value that is not a
    string may instead be an instance of that type (a ready optimizer instead of its name)."""

    def __init__(self, choices: Iterable[Any], *, or_type: type | None = None, expected: str | None = None):
        self.choices, self.or_type, self.expected = tuple(choices), or_type, expected

    def check(self, name: str, value: Any, *, where: str = "") -> None:
        if self.or_type is None or isinstance(value, str):
            check_choice(name, value, self.choices, where=where)
        else:
            check_type(name, value, self.or_type, where=where, expected=self.expected)


class InstanceOf:
    """An instance of ``types`` (``check_type``). ``allow_none``: None passes; ``each``: a list
    or tuple passes if each of its items does (callbacks: one function or several)."""

    def __init__(self, types, *, expected: str | None = None, allow_none: bool = False, each: bool = False):
        self.types, self.expected, self.allow_none, self.each = types, expected, allow_none, each

    def check(self, name: str, value: Any, *, where: str = "") -> None:
        if value is None and self.allow_none:
            return
        items = value if self.each and isinstance(value, (list, tuple)) else [value]
        for item in items:
            check_type(name, item, self.types, where=where, expected=self.expected)


class Bool:
    """True or False, nothing else (``check_type``): 0, 1, "yes" and None are refused, since
    ``if flag:`` would read each of them silently as one or the other.

    Example:
        >>> Bool().check("eval_train", 1, where="fit")
        Traceback (most recent call last):
        ...
        TypeError: fit(): 'eval_train' must be a bool, got eval_train=1 of type int
    """

    def check(self, name: str, value: Any, *, where: str = "") -> None:
        check_type(name, value, bool, where=where)


class Satisfies:
    """Any other rule on one value, as a predicate and the rule in words (``check_relation``):
    ``Satisfies(callable, "'lr_schedule' must be a function step -> lr", allow_none=True)``."""

    def __init__(self, predicate, rule: str, *, allow_none: bool = False):
        self.predicate, self.rule, self.allow_none = predicate, rule, allow_none

    def check(self, name: str, value: Any, *, where: str = "") -> None:
        if value is None and self.allow_none:
            return
        check_relation(bool(self.predicate(value)), self.rule, where=where, **{name: value})


def validate_params(table: Mapping[str, Any], values: Mapping[str, Any], *, where: str) -> None:
    """Check ``values[name]`` against ``table[name]`` for every entry of ``table``, in the
    table's order (so the first bad argument in that order is the one reported).

    Example:
        >>> table = {"lr": Interval(float, 0, None, closed="neither"), "mode": Options(("exp", "linear"))}
        >>> validate_params(table, {"lr": 0.1, "mode": "exp"}, where="sweep")
        >>> validate_params(table, {"lr": 0.1, "mode": "log"}, where="sweep")
        Traceback (most recent call last):
        ...
        ValueError: sweep(): 'mode' must be one of 'exp', 'linear', got mode='log'
    """
    for name, constraint in table.items():
        constraint.check(name, values[name], where=where)


# ---- value checks inside a training loop --------------------------------------------------------

# Checking *values* (labels in range, probabilities in [0, 1]) reads a tensor back from the
# device: a sync. Fine for a call by hand; in a training loop it would stall a GPU every step
# (and the shape checks cost a few microseconds a step on a CPU), so ``fit`` and the LR range
# test check the data once, then run their steps inside ``skip_value_checks()``; the losses ask
# ``value_checks_enabled()`` before checking.
_VALUE_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar("value_checks", default=True)


def value_checks_enabled() -> bool:
    """False inside :func:`skip_value_checks`."""
    return _VALUE_CHECKS.get()


def check_token_ids(name: str, tokens: torch.Tensor, vocab_size: int, *, where: str) -> None:
    """Refuse ids outside ``[0, vocab_size)`` (torch says only "index out of range in self", or on a
    GPU a device-side assert). A value check: skipped inside :func:`skip_value_checks`."""
    if value_checks_enabled() and tokens.numel():
        lo, hi = int(tokens.min()), int(tokens.max())
        check_relation(lo >= 0 and hi < vocab_size, f"'{name}' must be token ids in [0, {vocab_size - 1}]",
                       where=where, **{f"{name}.min()": lo, f"{name}.max()": hi})


@contextlib.contextmanager
def skip_value_checks():
    """Inside this block the course's losses skip their per-call input checks (already done once)."""
    token = _VALUE_CHECKS.set(False)
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)
