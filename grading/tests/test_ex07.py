"""Grading tests of notebook 07 (gradient statistics of Matryoshka embeddings): exercises 7.1-7.3.

Oracles: a hand loop over the heads with ``torch.nn.functional.cross_entropy`` (7.1), NumPy's
``abs().mean()`` and ``var(axis=0)`` on the same gradients (7.2), and a seeded training run of
``course_lib.matryoshka.train_matryoshka`` with the learner's weights (7.3; 5 epochs, calibrated
with c_192 = 1, seed 0 [seeds 1-2]: last-epoch ratio 1.34 [1.26-1.29] for c_96 = 0.1, 1.41
[1.35-1.39] for 0.2, 1.45 [1.40-1.44] for 0.25, 1.49 [1.45-1.49] for 0.3, 1.58 for 0.4, 1.66 for
0.5, 2.07 for 1; Adam ignores the overall scale of the loss, so (1, 5) trains like (0.2, 1)).
"""

import math

import numpy as np
import pytest
import torch
import torch._dynamo  # noqa: F401  the first optimizer of a process imports it (3-6 s): pay that here, untimed
import torch.nn.functional as F

from course_lib.grading import isolated_torch as _isolated
from course_lib.matryoshka import make_frozen_features, train_matryoshka


def _logits(sizes=3, B=8, C=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, C, generator=g) for _ in range(sizes)], torch.randint(0, C, (B,), generator=g)


def _oracle_loss(logits, y, weights):
    return sum(c * F.cross_entropy(lg, y) for c, lg in zip(weights, logits))


# ----------------------------------------------------------------------------------- 7.1 mrl_loss
@pytest.mark.exercise("7.1")
@pytest.mark.points(1)
def test_mrl_loss_with_default_weights(exercise):
    """Add the heads' cross-entropies (each the batch mean), one per size: a sum, not a mean over sizes."""
    logits, y = _logits()
    got = exercise("7.1").mrl_loss(logits, y)
    want = float(_oracle_loss(logits, y, [1.0, 1.0, 1.0]))
    assert isinstance(got, torch.Tensor) and got.ndim == 0, (
        f"mrl_loss should return a scalar tensor; got {type(got).__name__} {getattr(got, 'shape', '')}")
    assert float(got) == pytest.approx(want, rel=1e-6), f"mrl_loss(logits, y) with 3 sizes: expected {want:.6f}; got {float(got):.6f}"


@pytest.mark.exercise("7.1")
@pytest.mark.points(1)
@pytest.mark.parametrize("weights", [[0.5, 1.0, 2.0], [0.0, 3.0, 0.25]])
def test_mrl_loss_with_weights(exercise, weights):
    """Weight k multiplies the loss of head k (the same order as logits)."""
    logits, y = _logits(seed=1)
    got = float(exercise("7.1").mrl_loss(logits, y, weights))
    want = float(_oracle_loss(logits, y, weights))
    assert got == pytest.approx(want, rel=1e-6), f"mrl_loss(logits, y, weights={weights}): expected {want:.6f}; got {got:.6f}"


@pytest.mark.exercise("7.1")
@pytest.mark.points(1)
def test_mrl_loss_gradient_reaches_every_head(exercise):
    """Keep the loss a tensor (no .item(), no float()): autograd must reach every head's logits."""
    logits, y = _logits(sizes=2, seed=2)
    mine = [lg.clone().requires_grad_(True) for lg in logits]
    ref = [lg.clone().requires_grad_(True) for lg in logits]
    exercise("7.1").mrl_loss(mine, y, [1.0, 0.5]).backward()
    _oracle_loss(ref, y, [1.0, 0.5]).backward()
    for k, (a, b) in enumerate(zip(mine, ref)):
        assert a.grad is not None, f"no gradient reached logits[{k}]"
        err = float((a.grad - b.grad).abs().max())
        assert err < 1e-6, f"gradient of logits[{k}]: expected max abs diff < 1e-6 from torch's; got {err:.3g}"


# ------------------------------------------------------------------------------ 7.2 gradient_stats
def _grads(T=5, M=6, D=4, seed=0, scale=(3.0, 3.0, 1.0, 1.0, 1.0, 1.0), shift=0.5):
    g = torch.Generator().manual_seed(seed)
    s = torch.tensor(scale)[:, None]
    # A nonzero mean per element, so "mean of g" and "mean of |g|" differ.
    return [shift + s * torch.randn(M, D, generator=g) for _ in range(T)]


def _numpy_stats(grads, boundaries):
    G = np.stack([g.double().numpy() for g in grads])  # (T, M, D)
    var = G.var(axis=0)  # over the steps, ddof=0
    pairs = list(zip(boundaries, boundaries[1:]))
    return [float(np.abs(G[:, a:b]).mean()) for a, b in pairs], [float(var[a:b].mean()) for a, b in pairs]


def _as_floats(values, what):
    assert isinstance(values, (list, tuple)), f"{what} should be a list of floats; got {type(values).__name__}"
    return [float(v) for v in values]


@pytest.mark.exercise("7.2")
@pytest.mark.points(1)
def test_mean_abs_per_slice(exercise):
    """mean |g|: the absolute value first, then the mean over all steps and all elements of the slice."""
    grads = _grads()
    want, _ = _numpy_stats(grads, (0, 2, 6))  # before the call: the inputs are not to be changed
    mean_abs, _ = exercise("7.2").gradient_stats(grads, (0, 2, 6))
    got = _as_floats(mean_abs, "mean_abs")
    assert got == pytest.approx(want, rel=1e-5), f"mean |g| per slice of (0, 2, 6): expected {np.round(want, 5).tolist()}; got {np.round(got, 5).tolist()}"


@pytest.mark.exercise("7.2")
@pytest.mark.points(2)
def test_variance_over_steps_per_slice(exercise):
    """Variance of each element over the T steps (divide by T), then the mean over the slice."""
    grads = _grads(T=4)
    _, want = _numpy_stats(grads, (0, 2, 6))
    _, var = exercise("7.2").gradient_stats(grads, (0, 2, 6))
    got = _as_floats(var, "var")
    assert got == pytest.approx(want, rel=1e-5), f"variance per slice of (0, 2, 6) over T=4 steps: expected {np.round(want, 5).tolist()}; got {np.round(got, 5).tolist()}"


@pytest.mark.exercise("7.2")
@pytest.mark.points(1)
def test_three_slices_not_starting_at_zero(exercise):
    """Use every pair of neighbouring boundaries, whatever their number, and only those rows."""
    grads = _grads(T=6, M=8, scale=(4.0, 4.0, 2.0, 2.0, 1.0, 1.0, 1.0, 9.0), seed=3)
    b = (1, 3, 5, 7)  # row 0 and row 7 are outside every slice
    want_abs, want_var = _numpy_stats(grads, b)
    mean_abs, var = exercise("7.2").gradient_stats(grads, b)
    assert _as_floats(mean_abs, "mean_abs") == pytest.approx(want_abs, rel=1e-5), (
        f"mean |g| for boundaries {b}: expected {np.round(want_abs, 5).tolist()}; got {np.round(mean_abs, 5).tolist()}")
    assert _as_floats(var, "var") == pytest.approx(want_var, rel=1e-5), (
        f"variance for boundaries {b}: expected {np.round(want_var, 5).tolist()}; got {np.round(var, 5).tolist()}")


# ------------------------------------------------------------------------------ 7.3 choose_weights
def _check_weights(weights):
    assert isinstance(weights, (list, tuple)) and len(weights) == 2, (
        f"choose_weights() should return two floats (c_96, c_192); got {weights!r}")
    c96, c192 = (float(c) for c in weights)
    assert min(c96, c192) > 0 and min(c96, c192) >= 0.1 * max(c96, c192) and math.isfinite(c96 + c192), (
        f"both sizes must still train: each weight at least a tenth of the other (and > 0); got {weights!r}")
    return c96, c192


def _last_ratio(weights, seed=0):
    X, y = make_frozen_features(4000, seed=0, device="cpu")
    with _isolated():
        h = train_matryoshka(X, y, sizes=(96, 192), weights=list(weights), optimizer="adam", num_epochs=5,
                             seed=seed, device="cpu")
    return h.ratio[-1] if h.stop_reason == "completed" else float("nan")


@pytest.mark.exercise("7.3")
@pytest.mark.points(1)
def test_weights_keep_both_sizes_training(exercise):
    """Return (c_96, c_192) with each weight at least a tenth of the other: (0, 1) drops the 96-d loss."""
    _check_weights(exercise("7.3").choose_weights())


@pytest.mark.exercise("7.3")
@pytest.mark.points(2)
def test_weights_bring_the_ratio_under_1_5(exercise):
    """Train with your weights in notebook 07's panel and read the last epoch, not the first: the ratio
    climbs during training. The 96-d loss pushes rows 0-95 about twice as hard as the 192-d loss."""
    weights = _check_weights(exercise("7.3").choose_weights())
    got = _last_ratio(weights)
    assert got < 1.5, (
        f"MRL with weights {weights}, Adam, 5 epochs, seed 0: expected a last-epoch gradient ratio "
        f"(rows 0-95 / rows 96-191) below 1.5; got {got:.3f}")
