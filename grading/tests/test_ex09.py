"""Grading tests of notebook 09 (training with local losses): exercises 9.1-9.3.

Oracles: ``torch.autograd.grad`` (which parameters each head's loss reaches: exactly zero
across a boundary), a plain forward with no detach (the values), end-to-end backprop for one
chunk, ``torch.linalg.lstsq`` (the probe), and seeded runs of
``course_lib.local_learning.train_local`` for 9.3 (calibrated: see ``K_RULE`` below).
"""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import local_learning as ll
from course_lib.grading import isolated_torch as _isolated
from course_lib.grading import reference


def _net(K=3, seed=0, width=8):
    torch.manual_seed(seed)
    chunks = [nn.Sequential(nn.Linear(2 if j == 0 else width, width), nn.ReLU()) for j in range(K)]
    heads = [nn.Linear(width, 3) for _ in range(K)]
    g = torch.Generator().manual_seed(seed)
    return chunks, heads, torch.randn(40, 2, generator=g), torch.randint(0, 3, (40,), generator=g)


def _reach(loss, module) -> float:
    """|dL/dtheta|^2 over a module's parameters; 0.0 when the loss does not reach it at all."""
    grads = torch.autograd.grad(loss, list(module.parameters()), retain_graph=True, allow_unused=True)
    return sum(float(g.pow(2).sum()) for g in grads if g is not None)


def _logits(ns, chunks, heads, X, local):
    out = ns.chunked_logits(chunks, heads, X, local=local)
    assert isinstance(out, (list, tuple)) and len(out) == len(chunks), (
        f"chunked_logits should return a list of {len(chunks)} logits (one per head); got "
        f"{type(out).__name__} of length {len(out) if hasattr(out, '__len__') else '?'}")
    return list(out)


# ----------------------------------------------------------------------------- 9.1 chunked_logits
@pytest.mark.exercise("9.1")
@pytest.mark.points(1)
@pytest.mark.parametrize("local", [True, False])
def test_values_are_those_of_a_plain_forward(exercise, local):
    """detach() changes where gradients flow, never the numbers: head j reads chunk j's output."""
    chunks, heads, X, _ = _net()
    got = _logits(exercise("9.1"), chunks, heads, X, local)
    h, want = X, []
    for chunk, head in zip(chunks, heads):
        h = chunk(h)
        want.append(head(h))
    for j, (g, w) in enumerate(zip(got, want)):
        assert tuple(g.shape) == tuple(w.shape), f"head {j}: expected logits of shape {tuple(w.shape)}; got {tuple(g.shape)}"
        err = float((g - w).abs().max())
        assert err < 1e-5, f"head {j} (local={local}): expected the logits of a plain forward; got a max difference of {err:.3g}"


@pytest.mark.exercise("9.1")
@pytest.mark.points(2)
def test_no_gradient_crosses_a_boundary(exercise):
    """With local=True, detach each chunk's *input*: loss j must not reach any chunk k < j."""
    chunks, heads, X, y = _net(K=3)
    losses = [F.cross_entropy(z, y) for z in _logits(exercise("9.1"), chunks, heads, X, True)]
    for j, loss in enumerate(losses):
        for k in range(j):
            got = _reach(loss, chunks[k])
            assert got == 0.0, f"the loss of head {j} should not reach chunk {k} (exactly 0); got |grad|^2 = {got:.3g}"


@pytest.mark.exercise("9.1")
@pytest.mark.points(2)
def test_each_loss_still_trains_its_own_chunk(exercise):
    """Detach the chunk's input, not its output: head j's loss must still reach chunk j and head j."""
    chunks, heads, X, y = _net(K=3)
    losses = [F.cross_entropy(z, y) for z in _logits(exercise("9.1"), chunks, heads, X, True)]
    for j, loss in enumerate(losses):
        for name, module in (("chunk", chunks[j]), ("head", heads[j])):
            got = _reach(loss, module)
            assert got > 0, f"the loss of head {j} should reach {name} {j} (a nonzero gradient); got 0"


@pytest.mark.exercise("9.1")
@pytest.mark.points(1)
def test_without_local_the_last_loss_reaches_every_chunk(exercise):
    """local=False detaches nothing: end-to-end, the last head's loss reaches chunk 0."""
    chunks, heads, X, y = _net(K=3)
    last = F.cross_entropy(_logits(exercise("9.1"), chunks, heads, X, False)[-1], y)
    reached = [_reach(last, c) > 0 for c in chunks]
    assert all(reached), f"with local=False the last loss should reach chunks [0, 1, 2]; it reached {reached}"


@pytest.mark.exercise("9.1")
@pytest.mark.points(1)
def test_one_chunk_local_is_end_to_end_backprop(exercise):
    """With a single chunk, local=True must train it exactly like plain backprop."""
    chunks, heads, X, y = _net(K=1)
    loss = F.cross_entropy(_logits(exercise("9.1"), chunks, heads, X, True)[0], y)
    got = torch.autograd.grad(loss, list(chunks[0].parameters()))
    want = torch.autograd.grad(F.cross_entropy(heads[0](chunks[0](X)), y), list(chunks[0].parameters()))
    err = max(float((g - w).abs().max()) for g, w in zip(got, want))
    assert err < 1e-6, f"one chunk: expected the gradients of end-to-end backprop; got a max difference of {err:.3g}"


# ----------------------------------------------------------------------------- 9.2 probe_accuracy
def _lstsq_probe(F_train, y, F_val, y_val, ridge=1e-3):
    """The oracle: torch.linalg.lstsq on [features, 1] against one-hot labels, the ridge as extra rows
    ([A; sqrt(ridge N) I] W = [Y; 0] has the same solution as (A^T A + ridge N I) W = A^T Y)."""
    C, N = int(max(y.max(), y_val.max())) + 1, len(F_train)
    A = torch.cat([F_train.double(), torch.ones(N, 1, dtype=torch.float64)], 1)
    A_aug = torch.cat([A, (ridge * N) ** 0.5 * torch.eye(A.shape[1], dtype=torch.float64)])
    Y_aug = torch.cat([F.one_hot(y, C).double(), torch.zeros(A.shape[1], C, dtype=torch.float64)])
    W = torch.linalg.lstsq(A_aug, Y_aug).solution
    A_val = torch.cat([F_val.double(), torch.ones(len(F_val), 1, dtype=torch.float64)], 1)
    return float(((A_val @ W).argmax(1) == y_val).double().mean())


def _probe(ns, *args) -> float:
    got = ns.probe_accuracy(*args)
    assert isinstance(got, float) and not isinstance(got, bool), (
        f"probe_accuracy should return a Python float; got {type(got).__name__}")
    return got


@pytest.mark.exercise("9.2")
@pytest.mark.points(2)
def test_probe_matches_least_squares(exercise):
    """Ridge least squares from [features, 1] to one-hot labels, then argmax on the validation features."""
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 6, generator=g)
    y, y_val = torch.randint(0, 3, (300,), generator=g), torch.randint(0, 3, (200,), generator=g)
    feats = centers[y] + 1.2 * torch.randn(300, 6, generator=g)
    feats_val = centers[y_val] + 1.2 * torch.randn(200, 6, generator=g)
    want = _lstsq_probe(feats, y, feats_val, y_val)
    got = _probe(exercise("9.2"), feats, y, feats_val, y_val)
    assert abs(got - want) <= 0.01, f"expected a validation accuracy of {want:.3f} (least squares probe); got {got:.3f}"


@pytest.mark.exercise("9.2")
@pytest.mark.points(1)
def test_probe_has_a_bias(exercise):
    """Without the column of ones, a class boundary away from 0 cannot be found."""
    x = torch.linspace(5.0, 6.0, 100)[:, None]  # one feature, far from 0
    y = (x[:, 0] > 5.5).long()
    got = _probe(exercise("9.2"), x, y, x, y, 0.0)
    assert got == 1.0, (f"features in [5, 6] with the boundary at 5.5, ridge=0: expected accuracy 1.0 (needs a bias); "
                        f"got {got:.3f}")


@pytest.mark.exercise("9.2")
@pytest.mark.points(1)
def test_probe_uses_the_ridge(exercise):
    """Add ridge * N to the diagonal of A^T A (bias included): a large ridge changes the answer."""
    g = torch.Generator().manual_seed(2)
    y = (torch.rand(200, generator=g) < 0.25).long()  # imbalanced: 1 in 4
    feats = torch.randn(200, 3, generator=g) + 1.5 * y[:, None]
    y_val = (torch.rand(200, generator=g) < 0.25).long()
    feats_val = torch.randn(200, 3, generator=g) + 1.5 * y_val[:, None]
    want, plain = _lstsq_probe(feats, y, feats_val, y_val, ridge=10.0), _lstsq_probe(feats, y, feats_val, y_val)
    assert abs(want - plain) > 0.05  # the test means something (0.820 against 0.905)
    got = exercise("9.2").probe_accuracy(feats, y, feats_val, y_val, ridge=10.0)
    assert abs(float(got) - want) <= 0.01, f"with ridge=10.0 expected a validation accuracy of {want:.3f}; got {float(got):.3f}"


@pytest.mark.exercise("9.2")
@pytest.mark.points(1)
def test_probe_scores_the_validation_set(exercise):
    """Fit on (features, y); measure on (features_val, y_val)."""
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]]).repeat(5, 1)
    y = (x[:, 0] > 1.5).long()
    got = _probe(exercise("9.2"), x, y, x, 1 - y)  # validation labels flipped: a correct probe scores 0
    assert got == 0.0, f"with the validation labels flipped the probe should score 0.0 on them; got {got:.3f}"


@pytest.mark.exercise("9.2")
@pytest.mark.points(1)
def test_probe_uses_one_hot_targets(exercise):
    """Regress the one-hot labels (one score per class, argmax), not the class index."""
    corners = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # class k sits at corner k
    g = torch.Generator().manual_seed(1)
    y = torch.arange(4).repeat(25)
    x = corners[y] + 0.1 * torch.randn(100, 2, generator=g)
    want = _lstsq_probe(x, y, x, y)
    got = _probe(exercise("9.2"), x, y, x, y)
    assert abs(got - want) <= 0.02, f"four classes at a square's corners: expected accuracy {want:.3f}; got {got:.3f}"


# ----------------------------------------------------------------------------- 9.3 CHOSEN_K
# The rule: the largest K in (1, 2, 4, 8) whose last head ends within BOUND of backprop's accuracy,
# on RUN (full-batch Adam, seed 0). Calibrated on seeds 0, 1, 2 of this configuration: backprop
# 0.916 / 0.888 / 0.928; gaps to backprop K = 2: 0.044 / 0.000 / 0.062, K = 4: 0.100 / 0.200 / 0.160,
# K = 8: 0.222 / 0.278 / 0.250. The answer is 2 on every seed; on seed 0 the margins are 0.031 and 0.025.
BOUND = 0.075
RUN = dict(num_steps=400, batch_size=1500, seed=0, device="cpu")


@reference(warm=[(1,), (2,), (4,), (8,)])  # the same four runs for every student: the batch grader runs them once
def _accuracy(K: int) -> float:
    """Final accuracy of the lesson's 8-block network with K chunks (one run per K per grading process)."""
    data = ll.make_checkerboard(2000, cells=5, seed=0)
    with _isolated():
        h = ll.train_local(data, num_chunks=K, mode="backprop" if K == 1 else "local", **RUN)
    return h.final_accuracy


def _chosen_k(ns) -> int:
    K = ns.CHOSEN_K
    assert isinstance(K, int) and not isinstance(K, bool) and K in (1, 2, 4, 8), (
        f"CHOSEN_K should be one of the ints 1, 2, 4, 8; got {K!r}")
    return K


@pytest.mark.exercise("9.3")
@pytest.mark.points(1)
def test_chosen_k_stays_within_the_bound(exercise):
    """Train K = 1 and your K with the settings of the exercise; compare the last heads."""
    K = _chosen_k(exercise("9.3"))
    backprop, got = _accuracy(1), _accuracy(K)
    assert got >= backprop - BOUND, (
        f"K = {K} should end within {BOUND} of backprop's {backprop:.3f}, i.e. at {backprop - BOUND:.3f} or more; "
        f"got {got:.3f} (a gap of {backprop - got:.3f}): choose fewer chunks")


@pytest.mark.exercise("9.3")
@pytest.mark.points(1)
def test_twice_as_many_chunks_break_the_bound(exercise):
    """The largest such K: with 2K chunks the gap must exceed the bound (K = 8 is the largest allowed)."""
    K = _chosen_k(exercise("9.3"))
    if K == 8:
        return  # no larger K to try; the first test decides
    backprop, more = _accuracy(1), _accuracy(2 * K)
    assert more < backprop - BOUND, (
        f"with K = {2 * K} the last head should end more than {BOUND} below backprop's {backprop:.3f}, i.e. below "
        f"{backprop - BOUND:.3f}, for K = {K} to be the largest; got {more:.3f}: try more chunks")
