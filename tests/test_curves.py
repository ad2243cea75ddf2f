"""Tests of course_lib.curves: EMA against pandas (an independent implementation), and
diagnose() on real, seeded training runs made to show each failure mode."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import MLP, diagnose, ema, fit, make_regression
from course_lib.curves import VERDICTS


# ---------------------------------------------------------------- EMA
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.98])
def test_bias_corrected_ema_equals_pandas_adjusted_ewm(beta):
    # pandas' ewm(adjust=True) is the bias-corrected EMA written as a weighted mean.
    x = np.random.default_rng(0).normal(1.0, 0.3, size=300)
    expected = pd.Series(x).ewm(alpha=1 - beta, adjust=True).mean().to_numpy()
    np.testing.assert_allclose(ema(x, beta=beta), expected, rtol=1e-10)


def test_uncorrected_ema_is_the_plain_recurrence():
    x = [2.0, 4.0, 6.0]
    s, out = 0.0, []
    for v in x:
        s = 0.9 * s + 0.1 * v
        out.append(s)
    np.testing.assert_allclose(ema(x, beta=0.9, bias_correction=False), out)


def test_ema_passes_nan_through_without_poisoning_later_values():
    out = ema([1.0, float("nan"), 1.0, 1.0], beta=0.9)
    assert math.isnan(out[1]) and out[[0, 2, 3]].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("kwargs,match", [({"beta": 1.0}, r"ema\(\): 'beta' must be a float in \[0, 1\), got beta=1.0"),
                                          ({"beta": -0.1}, r"'beta' must be a float in \[0, 1\)")])
def test_ema_rejects_bad_beta(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ema([1.0, 2.0], **kwargs)


def test_ema_rejects_2d_input():
    with pytest.raises(ValueError, match=r"'values' must be one-dimensional"):
        ema(np.zeros((2, 2)))


# ---------------------------------------------------------------- diagnose on real runs
@pytest.fixture(scope="module")
def reg():
    return make_regression(200, kind="polynomial", noise=0.1, seed=0)


def _run(data, *, width=32, depth=2, **kw):
    torch.manual_seed(0)
    return fit(MLP(1, 1, width=width, depth=depth), data, device="cpu", seed=0, eval_every=25,
               baseline=data.baseline_loss("mse"), **kw)


# Each failure mode produced the way it happens in practice (see the verdict table in curves.py).
RUNS = {
    "healthy": lambda reg: _run(reg, lr=1e-2, num_steps=600),
    # Learning rate far too small: the loss barely moves (Smith 2017's underfitting by small LR).
    "underfitting": lambda reg: _run(reg, lr=1e-5, num_steps=600),
    # Weight decay so strong the weights are pinned near 0: flat at the trivial predictor's loss.
    "plateau": lambda reg: _run(reg, optimizer="sgd", lr=0.05, weight_decay=3.0, num_steps=600),
    # A big network on 24 noisy points, trained long: validation turns up.
    "overfitting": lambda reg: _run(make_regression(30, kind="polynomial", noise=0.3, seed=1), width=256, depth=3,
                                    lr=3e-3, num_steps=1500, batch_size=32),
    # SGD just below its stability limit: the loss jumps around.
    "oscillating": lambda reg: _run(reg, optimizer="sgd", lr=0.3, num_steps=600),
    "diverged": lambda reg: _run(reg, optimizer="sgd", lr=10.0, num_steps=600),
}


@pytest.mark.parametrize("expected", list(RUNS))
def test_diagnose_names_each_failure_mode_of_a_real_run(reg, expected):
    history = RUNS[expected](reg)
    d = diagnose(history)
    assert d.verdict == expected, str(d)
    assert d.verdict in VERDICTS and d.message and d.evidence


def test_diagnose_evidence_carries_the_numbers_behind_the_verdict(reg):
    d = diagnose(RUNS["overfitting"](reg))
    assert d.evidence["val_rise"] > 0.1 and d.evidence["val_final"] > d.evidence["val_min"]
    d = diagnose(RUNS["oscillating"](reg))
    assert d.evidence["swing"] > 0.15
    assert "diverged" in str(diagnose(RUNS["diverged"](reg)))


def test_the_welcome_run_at_its_noise_floor_is_healthy_not_oscillating():
    # Notebook 00's run in class mode, exactly: at step 3000 its loss is 0.2% of the reference
    # above the noise floor, and its validation loss jitters by ~20% of 0.012 between checks.
    # That is mini-batch noise at the floor; the old rule called it "lower the learning rate".
    from course_lib import seed_everything
    seed_everything(0)
    data = make_regression(400, kind="polynomial", noise=0.1, seed=0)
    model = MLP(1, 1, width=64, depth=2)
    history = fit(model, data, lr=1e-2, num_steps=3000, eval_every=25, baseline=data.baseline_loss("mse"),
                  device="cpu")
    d = diagnose(history, floor=data.info["irreducible_mse"])
    assert d.evidence["excess_ratio"] < 0.01, str(d)          # the run is at its floor ...
    assert d.evidence["swing"] > 0.15, str(d)                  # ... with a relative wobble that once fooled the rule
    assert d.verdict == "healthy" and "noise" in d.message, str(d)


def test_a_model_that_weight_decay_flattened_to_the_baseline_is_not_overfitting():
    # Notebook 04's lab: a network that had fitted the data (validation 0.1), then weight decay 1
    # from step 201 pins its weights and both losses climb back to the baseline. Validation is
    # far above its minimum, but the training loss is no lower: the model lost what it learned.
    import matplotlib
    matplotlib.use("Agg")
    from course_lib.ui.lab import TrainingLab
    lab = TrainingLab("regression", n_samples=220, train_fraction=0.1, noise=0.3, width=128, depth=2,
                      batch_size=32, masking=0.001, max_steps=600, device="cpu")
    lab.schedule(201, weight_decay=1.0)
    h = lab.run()
    for n in (300, 400, 500, 600):                              # what the lab's live diagnosis reads as it goes
        cut = SimpleNamespace(train_loss=h.train_loss[:n], val_loss=h.val_loss[:n // 25], stop_reason="completed",
                              stop_step=None, baseline=lab.baseline)
        d = diagnose(cut, baseline=lab.baseline)
        assert d.verdict == "underfitting" and "lost what it had learned" in d.message, (n, str(d))
        assert d.evidence["val_rise"] > 5 and d.evidence["excess_ratio"] > 1.0, (n, str(d))


# ---------------------------------------------------------------- diagnose on hand-made curves
def _hist(train, val=(), stop_reason="completed", baseline=None):
    return SimpleNamespace(train_loss=list(train), val_loss=list(val), stop_reason=stop_reason,
                           stop_step=None, baseline=baseline)


def test_diagnose_hand_made_curves():
    t = np.arange(200)
    falling = 1.0 * np.exp(-t / 30) + 0.01
    assert diagnose(_hist(falling)).verdict == "healthy"
    assert diagnose(_hist(np.full(200, 0.7))).verdict == "plateau"
    assert diagnose(_hist(1.0 - 0.001 * t)).verdict == "underfitting"
    val_u = 0.2 + 0.002 * (np.arange(20) - 8) ** 2  # minimum at the 9th evaluation, then up
    assert diagnose(_hist(falling, val_u)).verdict == "overfitting"
    zigzag = 0.5 + 0.4 * (np.arange(20) % 2)
    assert diagnose(_hist(falling, zigzag)).verdict == "oscillating"
    with_nan = list(falling[:50]) + [float("inf")]
    assert diagnose(_hist(with_nan)).verdict == "diverged"
    # Flattened to the baseline while still drifting down a little: validation far above its
    # minimum, training loss "still falling", yet nothing is fitted: not overfitting.
    pushed_back = np.concatenate([falling[:100], 1.2 - 0.0003 * t[:100]])
    val_back = np.r_[np.linspace(1.0, 0.1, 5), [0.1] * 4, [1.2] * 11]
    d = diagnose(_hist(pushed_back, val_back, baseline=1.0))
    assert d.verdict == "underfitting", str(d)
    # Zig-zags of 20% around a tiny loss at the floor are not visible on the plot: healthy.
    jitter = np.r_[[1.0, 0.3, 0.05], 0.011 + 0.002 * (np.arange(20) % 2)]
    assert diagnose(_hist(falling, jitter, baseline=1.0), floor=0.01).verdict == "healthy"
    # One jump (a slider moved mid-run), then flat, is a step, not an oscillation.
    step_up = np.r_[[0.1] * 10, [1.2] * 10]
    assert diagnose(_hist(falling, step_up, baseline=1.0)).verdict != "oscillating"


def test_floor_makes_progress_relative_to_the_irreducible_loss():
    t = np.arange(200)
    curve = 1.0 + 0.5 * np.exp(-t / 20)  # settles at 1.0
    assert diagnose(_hist(curve)).verdict == "underfitting"  # 1.0 is 2/3 of the start: high
    assert diagnose(_hist(curve), floor=0.99).verdict == "healthy"  # but it is the floor


def test_diagnose_too_short_history_is_a_clear_error():
    with pytest.raises(ValueError, match=r"diagnose\(\): 'history' must have at least min_steps=20 recorded steps, "
                                         r"got recorded_steps=5"):
        diagnose(_hist([1.0] * 5))
