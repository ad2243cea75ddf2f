"""Reading loss curves: EMA smoothing with bias correction, and a rule-based diagnosis.

``diagnose(history)`` names what a loss curve shows, the way an experienced practitioner
reads it, and returns the numbers behind the verdict so a student can check the reasoning:

====================  ==========================================================  ==========================
verdict               what the curves do                                          usual cure
====================  ==========================================================  ==========================
``diverged``          the loss became NaN/inf or exploded                         lower the LR, clip grads
``oscillating``       the loss jumps up and down, visibly, instead of settling    lower the LR
``overfitting``       validation loss turns up while training loss keeps falling  regularize, more data, stop early
                      far below its reference (the model fits its training set)
``plateau``           both curves flat from the start: nothing is being learned   check init/LR, less regularization
``underfitting``      the loss is still high: falling slowly, stuck high, or      train longer, raise LR, more capacity;
                      pushed back up (a model that had learned, then lost it)     less regularization
``healthy``           the loss fell well below its reference and settled; at the  --
                      floor, what wobble remains is mini-batch noise
====================  ==========================================================  ==========================

The rules are checked in that order. Every threshold is a keyword argument with the value
used in the course's tests (calibrated on real seeded runs, see ``tests/test_curves.py``).

References:
    Google, Machine Learning Crash Course: "Interpreting loss curves".
    Smith, A disciplined approach to neural network hyper-parameters, arXiv 1803.09820.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.signal import lfilter

from ._validation import Bool, Interval, Satisfies, as_float_array, check_number, check_relation, validate_params

__all__ = ["ema", "diagnose", "Diagnosis", "VERDICTS"]

VERDICTS = ("healthy", "underfitting", "overfitting", "plateau", "oscillating", "diverged")


def ema(values: Sequence[float], beta: float = 0.98, bias_correction: bool = True) -> np.ndarray:
    """Exponential moving average ``s_t = beta * s_{t-1} + (1 - beta) * x_t``, with ``s_0 = 0``.

    Starting from 0 drags the first values towards 0; dividing by ``1 - beta**t`` (bias
    correction, as Adam does) removes that drag exactly. NaN/inf values are passed through
    (the average is not poisoned: later finite values are averaged without them).

    Args:
        values (sequence of float): shape (T,).
        beta (float): in [0, 1). 0 returns the values unchanged; 0.98 averages about the last 50.
        bias_correction (bool): divide by ``1 - beta**t``. Default True.

    Returns:
        np.ndarray: shape (T,), float64.

    Example:
        >>> ema([1.0, 1.0, 1.0], beta=0.9).tolist()
        [1.0, 1.0, 1.0]
        >>> ema([1.0, 1.0], beta=0.9, bias_correction=False).round(3).tolist()
        [0.1, 0.19]

    References:
        Kingma & Ba, Adam, arXiv 1412.6980, Sec. 3 (the bias correction).
    """
    check_number("beta", beta, where="ema", low=0.0, high=1.0, high_open=True)
    Bool().check("bias_correction", bias_correction, where="ema")
    x = as_float_array("values", values, where="ema", ndim=None)
    check_relation(x.ndim == 1, "'values' must be one-dimensional", where="ema", shape=x.shape)
    if np.isfinite(x).all():
        # The same recursion as the loop below, run by scipy's IIR filter: a live plot smooths
        # thousands of points per frame, and a Python loop would cost milliseconds.
        s = lfilter([1 - beta], [1, -beta], x)
        return s / (1 - beta ** np.arange(1, len(x) + 1)) if bias_correction else s
    out = np.empty_like(x)
    s, n = 0.0, 0  # n counts the finite values averaged so far
    for t, v in enumerate(x):
        if not math.isfinite(v):
            out[t] = v
            continue
        n += 1
        s = beta * s + (1 - beta) * v
        out[t] = s / (1 - beta**n) if bias_correction else s
    return out


@dataclass
class Diagnosis:
    """The verdict, the numbers behind it, and one sentence for the learner."""

    verdict: str
    evidence: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def __str__(self) -> str:
        nums = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.evidence.items())
        return f"{self.verdict}: {self.message} ({nums})"


def _smoothing_beta(n: int) -> float:
    # About n/20 points in the window: smooth enough to hide mini-batch noise, short enough
    # to keep the shape of a curve with only a few hundred points.
    return min(0.98, max(0.5, 1.0 - 20.0 / max(n, 1)))


def _log_swing(values: np.ndarray) -> tuple[float, float, float]:
    """Median |change of log loss| between consecutive points, the fraction of direction
    changes, and the median |change| itself. All are large when a curve zig-zags, small when it
    trends. The median, not the mean: one jump (a slider moved mid-run) is a step, not a zig-zag."""
    d = np.diff(np.log(np.maximum(values, 1e-12)))
    if len(d) < 2:
        return 0.0, 0.0, 0.0
    flips = np.mean(np.sign(d[1:]) != np.sign(d[:-1]))
    return float(np.median(np.abs(d))), float(flips), float(np.median(np.abs(np.diff(values))))


# What diagnose reads, checked first (any object with a train_loss list: a History, or a replay).
_DIAGNOSE_PARAMS = {
    "history": Satisfies(lambda h: isinstance(getattr(h, "train_loss", None), (list, tuple)),
                         "'history' must be a History (or have a train_loss list)"),
    "baseline": Interval(float, 0, None, allow_none=True),
    "min_steps": Interval(int, 1, None),
}


def diagnose(
    history,
    *,
    baseline: float | None = None,
    floor: float = 0.0,
    min_steps: int = 20,
    swing_threshold: float = 0.15,
    swing_visible: float = 0.01,
    overfit_rise: float = 0.10,
    overfit_visible: float = 0.02,
    high_ratio: float = 0.5,
    flat_tol: float = 0.02,
    plateau_progress: float = 0.10,
) -> Diagnosis:
    """Say what a training run's loss curves show.

    Args:
        history: a ``course_lib.train.History`` (or anything with ``train_loss``, ``val_loss``
            and ``stop_reason`` attributes).
        baseline (float or None): the loss of a trivial predictor (the mean, the class prior,
            the unigram distribution). Defaults to ``history.baseline``, else the first loss.
        floor (float): the irreducible loss if known (noise variance, entropy rate). Default 0.
            Progress is measured on the excess loss ``loss - floor``.
        min_steps (int): fewer recorded steps raise ``ValueError``. Default 20.
        swing_threshold (float): median |change of log loss| between evaluations above which a
            zig-zagging curve is ``oscillating``. Default 0.15.
        swing_visible (float): ... and the median jump must exceed this fraction of the
            reference's height above the floor (visible on the plot). Near its floor a run's
            validation loss jitters by 20% of a tiny number: mini-batch noise, not a too-high
            learning rate. Default 0.01.
        overfit_rise (float): relative rise of the (lightly smoothed) validation loss above its
            minimum that counts as ``overfitting`` while the training loss still falls by more
            than ``flat_tol`` over the last half and ends below ``high_ratio`` of its reference
            (a model that fits its training set; one flattened to the baseline does not). Default 0.10.
        overfit_visible (float): the rise must also exceed this fraction of the validation
            loss's earlier drop (visible on the plot, not jitter at the floor). Default 0.02.
        high_ratio (float): excess loss above this fraction of the reference is "still high".
            Default 0.5.
        flat_tol (float): relative change over the last half below which a curve is "flat".
        plateau_progress (float): a flat curve that removed less than this fraction of the
            reference loss is a ``plateau``.

    Returns:
        Diagnosis: ``verdict`` (one of ``VERDICTS``), ``evidence`` (the numbers), ``message``.

    Example:
        >>> from types import SimpleNamespace
        >>> h = SimpleNamespace(train_loss=[1.0, 2.0, float("nan")] + [1.0] * 20, val_loss=[],
        ...                     stop_reason="diverged", stop_step=2, baseline=None)
        >>> diagnose(h).verdict
        'diverged'
    """
    where = "diagnose"
    validate_params(_DIAGNOSE_PARAMS, {"history": history, "baseline": baseline, "min_steps": min_steps}, where=where)
    train = np.asarray(getattr(history, "train_loss"), dtype=np.float64)
    val = np.asarray(getattr(history, "val_loss", []) or [], dtype=np.float64)
    check_number("floor", floor, where=where)
    stop_reason = getattr(history, "stop_reason", "completed")

    # 1. Diverged: a non-finite loss, or the training loop stopped for an explosion.
    bad = np.flatnonzero(~np.isfinite(train))
    if stop_reason in ("diverged", "exploded") or len(bad) or not np.all(np.isfinite(val)):
        step = getattr(history, "stop_step", None)
        step = int(bad[0]) if step is None and len(bad) else step
        last = float(train[bad[0]]) if len(bad) else float(train[-1])
        return Diagnosis("diverged", {"stop_step": step if step is not None else -1, "last_loss": last},
                         f"the loss blew up at step {step}: lower the learning rate or clip gradients")

    # Every other verdict reads the shape of a curve, which needs some length.
    check_relation(len(train) >= min_steps, f"'history' must have at least min_steps={min_steps} recorded steps",
                   where=where, recorded_steps=len(train))
    smooth = ema(train, beta=_smoothing_beta(len(train)))
    if baseline is None:
        baseline = getattr(history, "baseline", None)
    ref = float(baseline) if baseline is not None else float(np.mean(train[: max(1, len(train) // 50)]))
    half = len(smooth) // 2
    end, mid = float(smooth[-1]), float(smooth[half])
    excess_ratio = (end - floor) / max(ref - floor, 1e-12)  # 1 = no better than the reference
    late_change = (mid - end) / max(abs(mid), 1e-12)  # > 0: still falling over the last half
    ev: dict[str, float] = {"final_loss": end, "reference_loss": ref, "excess_ratio": excess_ratio,
                            "late_change": late_change}

    # 2. Oscillating: the curve zig-zags. Read it on the validation loss (a fixed set, so no
    #    mini-batch noise) when there are enough evaluations, else on the smoothed train loss.
    if len(val) >= 8:
        swing, flips, jump = _log_swing(val[len(val) // 2:])
    else:
        stride = max(1, len(smooth) // 40)
        swing, flips, jump = _log_swing(smooth[half::stride])
    jump_of_ref = jump / max(ref - floor, 1e-12)   # the jumps' size on the plot, against the reference
    ev.update(swing=swing, direction_flips=flips, jump_of_reference=jump_of_ref)
    zigzag = swing > swing_threshold and flips > 0.3
    if zigzag and jump_of_ref > swing_visible:
        return Diagnosis("oscillating", ev, f"the loss jumps by {swing:.0%} between checks instead of "
                         "settling: the learning rate is too high, lower it")

    # 3. Overfitting: validation loss rose clearly above its minimum while training loss kept
    #    falling. Both read on a lightly smoothed validation curve: near convergence the
    #    validation loss jitters by 10-20% around the floor, which is noise, not overfitting.
    if len(val) >= 4:
        val_s = ema(val, beta=0.5)
        i_min = int(np.argmin(val_s))
        rise = (float(val_s[-1]) - float(val_s[i_min])) / max(float(val_s[i_min]), 1e-12)
        ev.update(val_min=float(val_s[i_min]), val_final=float(val_s[-1]), val_rise=rise,
                  gap_ratio=float(val_s[-1]) / max(end, 1e-12))
        # ... and visible on the plot: a rise of a few thousandths after a drop from 1.0 is
        # jitter at the noise floor, however large it is relative to the (tiny) minimum.
        drop = max(float(val_s[0]) - float(val_s[i_min]), 1e-12)
        ev["rise_of_drop"] = (float(val_s[-1]) - float(val_s[i_min])) / drop
        if (rise > overfit_rise and ev["rise_of_drop"] > overfit_visible and i_min < len(val) - 1
                and late_change > flat_tol and excess_ratio < high_ratio):
            return Diagnosis("overfitting", ev, f"validation loss is {rise:.0%} above its minimum while the "
                             "training loss keeps falling: regularize, add data, or stop earlier")

    # 4. Still high: flat from the start (plateau) or learning too slowly/too little (underfitting).
    progress = 1.0 - excess_ratio
    ev["progress"] = progress
    #    A model whose validation loss had fallen far below its reference and is now back up with
    #    the training loss has been pushed back (weight decay raised mid-run flattens it to the
    #    baseline): that is underfitting from the cure, not overfitting and not a plateau.
    if excess_ratio > high_ratio and len(val) >= 4 and (ev["val_min"] - floor) < high_ratio * (ref - floor):
        return Diagnosis("underfitting", ev, f"the loss went back up to {excess_ratio:.0%} of its reference "
                         f"after validation had reached {ev['val_min']:.3g}: the model lost what it had learned; "
                         "weaken the regularization (or lower a learning rate that throws it off)")
    if abs(late_change) < flat_tol and progress < plateau_progress:
        return Diagnosis("plateau", ev, f"both curves are flat and only {max(progress, 0):.0%} of the "
                         "reference loss was removed: nothing is being learned (check the learning rate, "
                         "the initialisation, or too much regularization)")
    if excess_ratio > high_ratio:
        return Diagnosis("underfitting", ev, f"the loss is still {excess_ratio:.0%} of its reference level: "
                         "train longer, raise the learning rate, or use a bigger model")
    noise = "; what wobble remains is mini-batch noise at the floor" if zigzag else ""
    return Diagnosis("healthy", ev, f"the loss fell to {excess_ratio:.1%} of its reference level and settled{noise}")
