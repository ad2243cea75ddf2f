"""Tests of course_lib.ewc: the Fisher against plain loops over examples (and against the
squared batch gradient, which must differ), the penalty against its hand formula, SGD's
stability bound against the closed form, the trainer against a hand-written loop, messages,
and (slow) the lesson's claims on the calibrated toy."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import ewc
from course_lib.data import DataSplit
from course_lib.device import fast_mode
from course_lib.models import MLP


def _net(seed=0, width=16, d=6, c=4):
    torch.manual_seed(seed)
    return MLP(d, c, width=width, depth=2)


def _batch(n=40, d=6, c=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(c, (n,), generator=g)


def _loop_grads(model, X, targets):
    """Per-example gradients of log p(t_n | x_n), one autograd call per example: (N, P)."""
    rows = []
    for x, t in zip(X, targets):
        logp = torch.log_softmax(model(x[None]), dim=1)[0, t]
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(logp, list(model.parameters()))]))
    return torch.stack(rows)


def _flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


# ---------------------------------------------------------------------------------------------
# The toy
# ---------------------------------------------------------------------------------------------

def test_permuted_tasks_are_the_same_examples_with_shuffled_features():
    A, B, C = ewc.make_tasks(3, n_train=100, n_test=40, seed=3)
    assert A.X_train.shape == (100, 50) and A.X_val.shape == (40, 50) and A.y_train.dtype == torch.int64
    assert torch.equal(A.info["permutation"], torch.arange(50))
    for T in (B, C):
        perm = T.info["permutation"]
        assert sorted(perm.tolist()) == list(range(50)) and not torch.equal(perm, torch.arange(50))
        assert torch.equal(T.X_train, A.X_train[:, perm]) and torch.equal(T.X_val, A.X_val[:, perm])
        assert torch.equal(T.y_train, A.y_train)
    assert not torch.equal(B.info["permutation"], C.info["permutation"])
    assert torch.bincount(A.y_train, minlength=10).tolist() == [10] * 10  # balanced classes


def test_tasks_are_seeded():
    a = ewc.make_tasks(2, n_train=50, n_test=20, seed=5)
    b = ewc.make_tasks(2, n_train=50, n_test=20, seed=5)
    c = ewc.make_tasks(2, n_train=50, n_test=20, seed=6)
    assert all(torch.equal(x.X_train, y.X_train) for x, y in zip(a, b))
    assert not torch.equal(a[0].X_train, c[0].X_train)


def test_class_separation_sets_the_distance_between_means():
    # Class means: the average of a class's points; their typical distance is about class_sep.
    (A,) = ewc.make_tasks(1, n_train=20000, n_test=10, class_sep=6.0, dim=50)
    means = torch.stack([A.X_train[A.y_train == c].mean(0) for c in range(10)])
    dist = torch.cdist(means, means)[~torch.eye(10, dtype=torch.bool)]
    assert 4.5 < float(dist.mean()) < 7.5


def test_class_split_tasks_deal_out_disjoint_classes():
    tasks = ewc.make_tasks(3, split="class_split", n_train=300, n_test=90, seed=0)
    seen = [set(t.y_train.tolist()) for t in tasks]
    assert [sorted(s) for s in seen] == [t.info["classes"] for t in tasks]
    assert set().union(*seen) == set(range(10)) and sum(len(s) for s in seen) == 10
    assert all(set(t.y_val.tolist()) <= set(t.info["classes"]) for t in tasks)


# ---------------------------------------------------------------------------------------------
# The Fisher
# ---------------------------------------------------------------------------------------------

def test_empirical_fisher_equals_a_loop_over_examples():
    model, (X, y) = _net(), _batch()
    G = _loop_grads(model, X, y)  # (N, P)
    fisher = ewc.fisher_diagonal(model, X, y, kind="empirical", chunk_size=7)  # chunks must not matter
    assert [f.shape for f in fisher] == [p.shape for p in model.parameters()]
    torch.testing.assert_close(_flat(fisher), G.pow(2).mean(0), rtol=1e-5, atol=1e-8)


def test_true_fisher_equals_a_loop_with_the_documented_samples():
    # Contract: one target per example, torch.multinomial on the softmax from a CPU generator
    # seeded with `seed`.
    model, (X, _) = _net(seed=2), _batch(seed=4)
    with torch.no_grad():
        t = torch.multinomial(torch.softmax(model(X), 1), 1, generator=torch.Generator().manual_seed(7)).squeeze(1)
    fisher = ewc.fisher_diagonal(model, X, kind="true", seed=7)
    torch.testing.assert_close(_flat(fisher), _loop_grads(model, X, t).pow(2).mean(0), rtol=1e-5, atol=1e-8)


def test_true_fisher_converges_to_the_expectation_over_classes():
    # Closed form of the true Fisher: sum_c p(c|x) * g_c(x)^2, averaged over x. The sampled
    # estimate on 500 copies of each input must approach it.
    model, (X, _) = _net(seed=3), _batch(n=4, seed=5)
    with torch.no_grad():
        probs = torch.softmax(model(X), 1)  # (4, C)
    exact = sum(probs[:, c, None] * _loop_grads(model, X, torch.full((4,), c)).pow(2) for c in range(4)).mean(0)
    sampled = _flat(ewc.fisher_diagonal(model, X.repeat(500, 1), kind="true", seed=0))
    assert float((sampled - exact).abs().sum() / exact.abs().sum()) < 0.08


def test_fisher_is_not_the_squared_batch_gradient():
    # mean(g^2) - mean(g)^2 is the variance of the per-example gradients: the squared batch
    # gradient misses exactly that, and it is most of the Fisher.
    model, (X, y) = _net(seed=1), _batch(n=64)
    G = _loop_grads(model, X, y)
    fisher = _flat(ewc.fisher_diagonal(model, X, y, kind="empirical"))
    model.zero_grad()
    (-F.cross_entropy(model(X), y)).backward()  # gradient of the mean log-likelihood
    batch_sq = _flat([p.grad for p in model.parameters()]).pow(2)
    torch.testing.assert_close(fisher - batch_sq, G.var(0, unbiased=False), rtol=1e-4, atol=1e-7)
    assert float(fisher.sum()) > 3 * float(batch_sq.sum())


def test_fisher_skips_frozen_parameters_and_restores_the_mode():
    model, (X, y) = _net(), _batch()
    model.net[0].weight.requires_grad_(False)
    model.train()
    fisher = ewc.fisher_diagonal(model, X, y, kind="empirical")
    assert [f.shape for f in fisher] == [p.shape for p in model.parameters() if p.requires_grad]
    assert model.training


# ---------------------------------------------------------------------------------------------
# Penalty, online Fisher, stability
# ---------------------------------------------------------------------------------------------

def test_penalty_matches_the_hand_formula_and_its_gradient():
    theta = [torch.tensor([1.0, -2.0], requires_grad=True), torch.tensor([[0.5]], requires_grad=True)]
    anchor = [torch.tensor([0.0, 1.0]), torch.tensor([[1.5]])]
    fisher = [torch.tensor([2.0, 0.25]), torch.tensor([[4.0]])]
    pen = ewc.ewc_penalty(theta, anchor, fisher, lam=3.0)
    assert float(pen.detach()) == pytest.approx(3.0 / 2 * (2.0 * 1 + 0.25 * 9 + 4.0 * 1))
    pen.backward()
    for p, a, f in zip(theta, anchor, fisher):  # d/dtheta = lam * F * (theta - anchor)
        torch.testing.assert_close(p.grad, 3.0 * f * (p.detach() - a))
    assert float(ewc.ewc_penalty(theta, anchor, fisher, lam=0.0).detach()) == 0.0


def test_online_fisher_decays_the_old_tasks():
    f1, f2 = [torch.tensor([2.0, 4.0])], [torch.tensor([1.0, 0.0])]
    run = ewc.online_fisher(None, f1)
    assert torch.equal(run[0], f1[0]) and run[0] is not f1[0]
    torch.testing.assert_close(ewc.online_fisher(run, f2, gamma=0.5)[0], torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(ewc.online_fisher(run, f2, gamma=0.0)[0], f2[0])


def test_max_stable_lam_is_the_sgd_threshold_on_the_penalty():
    lr, fisher = 0.1, [torch.tensor([0.5, 8.0])]
    bound = ewc.max_stable_lam(lr, fisher)
    assert bound == pytest.approx(2 / (lr * 8.0))
    for factor, grows in ((0.9, False), (1.1, True)):
        theta = torch.tensor([1.0, 1.0], requires_grad=True)
        opt = torch.optim.SGD([theta], lr=lr)
        for _ in range(100):
            opt.zero_grad()
            ewc.ewc_penalty([theta], [torch.zeros(2)], fisher, lam=factor * bound).backward()
            opt.step()
        # closed form along the stiff weight: (1 - lr * lam * F)^t
        expected = (1 - lr * factor * bound * 8.0) ** 100
        assert float(theta.detach()[1]) == pytest.approx(expected, rel=1e-3)
        assert (abs(float(theta.detach()[1])) > 1) == grows
    assert ewc.max_stable_lam(0.1, [torch.zeros(3)]) == math.inf


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------

def _small_tasks(k=2, seed=0):
    return ewc.make_tasks(k, dim=8, n_train=120, n_test=60, num_classes=4, seed=seed)


def test_trainer_equals_a_hand_written_loop():
    # Oracle: the documented recipe written out, with the penalty by its hand formula. Batches
    # are torch.randint draws from one seeded CPU generator; after each task a randperm of the
    # training set picks the Fisher's examples.
    tasks, lam, lr, steps, bs, seed = _small_tasks(), 5.0, 0.1, 30, 16, 3
    model = _net(width=12, d=8)
    ref = copy.deepcopy(model)
    h = ewc.train_sequential(model, tasks, lam=lam, lr=lr, num_steps=steps, batch_size=bs, eval_every=7,
                             fisher_samples=50, fisher="empirical", seed=seed, device="cpu")
    gen, anchor, fisher, params = torch.Generator().manual_seed(seed), None, None, list(ref.parameters())
    for k, t in enumerate(tasks):
        for _ in range(steps):
            idx = torch.randint(len(t.X_train), (bs,), generator=gen)
            loss = F.cross_entropy(ref(t.X_train[idx]), t.y_train[idx])
            if anchor is not None:
                loss = loss + lam / 2 * sum((f * (p - a) ** 2).sum() for p, a, f in zip(params, anchor, fisher))
            ref.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
        sub = torch.randperm(len(t.X_train), generator=gen)[:50]
        new = ewc.fisher_diagonal(ref, t.X_train[sub], t.y_train[sub], kind="empirical")
        fisher = new if fisher is None else [f + g for f, g in zip(fisher, new)]  # online EWC, gamma = 1
        anchor = [p.detach().clone() for p in params]
        torch.testing.assert_close(_flat(h.fisher[k]), _flat(fisher), rtol=1e-4, atol=1e-7)
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # record layout: evaluations at 0, every 7 steps, each task's end; every task each time
    assert h.eval_step == [0, 7, 14, 21, 28, 30, 37, 44, 51, 58, 60]
    assert h.task_start == [0, 30] and h.step == list(range(60)) and h.task == [0] * 30 + [1] * 30
    assert all(len(h.test_acc[k]) == len(h.eval_step) == len(h.test_loss[k]) for k in range(2))
    assert h.penalty[:31] == [0.0] * 31  # none on A; 0 at B's first step (theta = theta*)
    assert all(p >= 0 for p in h.penalty[31:]) and h.penalty[-1] > 0
    with torch.no_grad():
        acc = [float((ref(t.X_val).argmax(1) == t.y_val).float().mean()) for t in tasks]
    assert h.acc_matrix[1] == pytest.approx(acc) and h.stop_reason == "completed"
    assert [e["kind"] for e in h.events] == ["task", "task"] and len(h.fisher) == 2


def test_trainer_is_reproducible():
    runs = [ewc.train_sequential(_net(width=8, d=8), _small_tasks(), lam=1.0, num_steps=20, eval_every=10,
                                 seed=4, device="cpu") for _ in range(2)]
    assert runs[0].test_acc == runs[1].test_acc and runs[0].train_loss == runs[1].train_loss


def test_lam_changes_mid_run_and_a_callback_can_stop():
    seen = []

    def on_eval(state):
        seen.append((state.task, state.step))
        if state.task == 1 and state.lam == 0.0:
            state.set_lam(50.0)
        if state.task == 1 and state.step >= 55:
            state.request_stop("enough")

    h = ewc.train_sequential(_net(width=8, d=8), _small_tasks(3), lam=0.0, num_steps=30, eval_every=10,
                             on_eval=on_eval, device="cpu")
    # evaluations at 0, 10, 20, 30 on A, then 40 (lam set after it), 50, 60 on B
    assert h.lam == [0.0] * 5 + [50.0, 50.0]
    assert h.penalty[39] == 0.0 and h.penalty[40] > 0  # applied from the step after the change
    change = [e for e in h.events if e["kind"] == "change"]
    assert len(change) == 1 and change[0]["step"] == 40 and "lam 0 -> 50" in change[0]["text"]
    assert change[0]["lam"] == 50.0
    assert h.stop_reason == "enough" and h.stop_step == 59 and seen[-1] == (1, 59)
    assert math.isnan(h.acc_matrix[1][0]) and math.isnan(h.acc_matrix[2][0]) and len(h.acc_matrix) == 3


def test_skip_first_starts_from_a_model_that_already_learned_A():
    tasks = _small_tasks()
    model = _net(width=12, d=8)
    hA = ewc.train_sequential(model, tasks[:1], num_steps=40, device="cpu")
    start = copy.deepcopy(model)
    h = ewc.train_sequential(model, tasks, lam=5.0, num_steps=20, eval_every=10, skip_first=True, device="cpu")
    assert h.task_start == [0, 0] and h.step == list(range(20)) and h.eval_step == [0, 10, 20]
    assert h.acc_matrix[0][0] == pytest.approx(hA.acc_matrix[0][0])
    F_A = ewc.fisher_diagonal(start, tasks[0].X_train[torch.randperm(120, generator=torch.Generator().manual_seed(0))],
                              kind="true", seed=0)
    torch.testing.assert_close(_flat(h.fisher[0]), _flat(F_A))  # the Fisher of A at the given weights
    assert h.penalty[0] == 0.0 and h.penalty[-1] > 0


def test_divergence_is_recorded_not_raised():
    tasks = _small_tasks()
    h = ewc.train_sequential(_net(width=8, d=8), tasks, lam=1e7, lr=0.5, num_steps=40, eval_every=10, device="cpu")
    assert h.diverged and h.stop_reason == "diverged" and h.stop_step >= 40
    (event,) = [e for e in h.events if e["kind"] == "diverged"]
    assert event["step"] == h.stop_step and "lr * lam * max F" in event["text"]
    assert not math.isnan(h.acc_matrix[0][0]) and all(math.isnan(a) for a in h.acc_matrix[1])
    assert h.step[-1] == h.stop_step and h.eval_step == [0, 10, 20, 30, 40]  # none after the divergence


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------

def test_messages():
    model, tasks = _net(width=8, d=8), _small_tasks()
    p = [torch.zeros(2), torch.zeros(3)]
    with pytest.raises(ValueError, match=r"ewc_penalty\(\): 'lam' must be a float >= 0, got lam=-1"):
        ewc.ewc_penalty(p, p, p, lam=-1.0)
    with pytest.raises(ValueError, match=r"ewc_penalty\(\): the parameter lists 'params', 'anchor', 'fisher' must "
                                         r"hold the same number of tensors, got len\(params\)=2, len\(anchor\)=1"):
        ewc.ewc_penalty(p, p[:1], p, lam=1.0)
    with pytest.raises(ValueError, match=r"tensor 1 must have the same shape in every list.*fisher\[1\].shape=\(4,\)"):
        ewc.ewc_penalty(p, p, [torch.zeros(2), torch.zeros(4)], lam=1.0)
    with pytest.raises(TypeError, match=r"'anchor' must be a list of tensors"):
        ewc.ewc_penalty(p, torch.zeros(2), p, lam=1.0)
    with pytest.raises(ValueError, match=r"train_sequential\(\): 'tasks' must hold at least one task, got tasks=\[\]"):
        ewc.train_sequential(model, [], device="cpu")
    with pytest.raises(ValueError, match=r"train_sequential\(\): 'lam' must be a float >= 0, got lam=-0.5"):
        ewc.train_sequential(model, tasks, lam=-0.5, device="cpu")
    with pytest.raises(ValueError, match=r"'fisher' must be one of 'true', 'empirical', got fisher='batch'"):
        ewc.train_sequential(model, tasks, fisher="batch", device="cpu")
    with pytest.raises(TypeError, match=r"'tasks\[0\]' must be a DataSplit"):
        ewc.train_sequential(model, [(tasks[0].X_train, tasks[0].y_train)], device="cpu")
    with pytest.raises(ValueError, match=r"fisher_diagonal\(\): kind='empirical' needs the labels 'y'"):
        ewc.fisher_diagonal(model, tasks[0].X_train, kind="empirical")
    with pytest.raises(ValueError, match=r"'gamma' must be a float in \[0, 1\], got gamma=1.5"):
        ewc.online_fisher(None, p, gamma=1.5)
    with pytest.raises(ValueError, match=r"ContinualState.set_lam\(\): 'lam' must be a float >= 0"):
        ewc.ContinualState(model, ewc.ContinualHistory(), 0.0, 0.1).set_lam(-1.0)


# ---------------------------------------------------------------------------------------------
# The lesson's claims (slow) and CUDA against CPU (gpu)
# ---------------------------------------------------------------------------------------------

# The lesson's toy in fast mode (COURSE_FAST=1), as the notebook runs it: MLP 50-100-100-10
# trained on A (SGD lr 0.05, batch 64, 1,500 steps), then copies of it trained on B for 1,500
# steps (skip_first). Calibrated on seeds 0, 1, 2 (accuracy on A after B; on B):
#   permuted, lam = 0:      0.312 / 0.373 / 0.476;  B 0.964 / 0.962 / 0.952
#   permuted, lam = 100:    0.767 / 0.737 / 0.774;  B 0.939 / 0.936 / 0.922
#   permuted, lam = 1e4:    diverged at step 4 / 3 / 4 (max_stable_lam 1156 / 978 / 1361)
#   class split, lam = 100: 0.340 / 0.374 / 0.142;  B 0.990 / 0.976 / 0.982
FAST_STEPS, LAM_GOOD, LAM_HUGE = 1500, 100.0, 1e4


def _after_A(tasks, seed=0):
    torch.manual_seed(seed)
    model = MLP(50, 10, width=100, depth=2)
    h = ewc.train_sequential(model, tasks[:1], num_steps=FAST_STEPS, seed=seed, device="cpu")
    return model, h


def _on_B(model_A, tasks, lam, seed=0):
    return ewc.train_sequential(copy.deepcopy(model_A), tasks, lam=lam, num_steps=FAST_STEPS, skip_first=True,
                                seed=seed, device="cpu")


@pytest.mark.slow
def test_lesson_claims():
    """The lesson's claims on seed 0, with the margins the three calibration seeds allow."""
    tasks = ewc.make_tasks(2, seed=0)
    model_A, hA = _after_A(tasks)
    h0, h1, h2 = (_on_B(model_A, tasks, lam) for lam in (0.0, LAM_GOOD, LAM_HUGE))
    assert hA.acc_matrix[0][0] > 0.95 and h0.forgetting(0) > 0.4          # lam = 0 forgets
    assert h1.acc_matrix[1][0] - h0.acc_matrix[1][0] > 0.2                 # a moderate lam keeps much of A
    assert h1.acc_matrix[1][1] >= h0.acc_matrix[1][1] - 0.05               # ... and still learns B
    assert h2.diverged and not h1.diverged                                 # recorded, not raised
    assert LAM_HUGE > ewc.max_stable_lam(0.05, h2.fisher[0]) > LAM_GOOD    # beyond SGD's bound, 100 within
    split = ewc.make_tasks(2, split="class_split", seed=0)
    hs = _on_B(_after_A(split)[0], split, LAM_GOOD)
    assert hs.acc_matrix[1][1] > 0.9 and hs.acc_matrix[1][0] < 0.5          # the class split defeats EWC
    assert h1.acc_matrix[1][0] - hs.acc_matrix[1][0] > 0.25


@pytest.mark.gpu
def test_cuda_matches_cpu():
    tasks = _small_tasks()
    X, y = tasks[0].X_train, tasks[0].y_train
    for kind in ewc.FISHER_KINDS:
        cpu = ewc.fisher_diagonal(_net(d=8), X, y, kind=kind, seed=1)
        gpu = ewc.fisher_diagonal(_net(d=8).cuda(), X.cuda(), y.cuda(), kind=kind, seed=1)
        assert all(g.device.type == "cuda" for g in gpu)
        torch.testing.assert_close(_flat(gpu).cpu(), _flat(cpu), rtol=1e-3, atol=1e-6)
    runs = [ewc.train_sequential(_net(width=12, d=8), tasks, lam=5.0, num_steps=50, eval_every=25, device=dev)
            for dev in ("cpu", "cuda")]
    assert runs[1].config["device"].startswith("cuda")
    assert runs[0].train_loss == pytest.approx(runs[1].train_loss, rel=1e-3, abs=1e-4)
    assert runs[0].acc_matrix == pytest.approx(runs[1].acc_matrix, abs=0.02)
