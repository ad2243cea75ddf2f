"""Tests of course_lib.hypergrad: the training step against autograd and torch.nn, the three
hypergradients against a closed form and against each other, the hyper-optimiser against a
plain Adam loop, hypergradient descent against plain loops, divergence as a record, messages,
and (slow) the lesson's claims on the calibrated ridge toy."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib import hypergrad as HG

F64 = dict(dtype=torch.float64)


@pytest.fixture(scope="module")
def ridge():
    return HG.make_ridge_problem(device="cpu")  # the lesson's toy: d=50, n=40/400, noise 1, seed 0


@pytest.fixture(scope="module")
def small_ridge():
    return HG.make_ridge_problem(8, 6, 30, seed=3, device="cpu")


@pytest.fixture(scope="module")
def mlp():
    return HG.make_mlp_problem(n_train=12, n_val=40, width=6, seed=1, device="cpu")


def _rel(a, b) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


# ---------------------------------------------------------------------------------------------
# The learners
# ---------------------------------------------------------------------------------------------

def test_ridge_problem_shapes_seed_and_default_lr(small_ridge):
    p = small_ridge
    assert p.X_train.shape == (6, 8) and p.y_train.shape == (6,) and p.X_val.shape == (30, 8)
    assert p.init.shape == (8,) and not p.init.any() and p.X_train.dtype == torch.float64
    H = p.X_train.T @ p.X_train / 6
    assert p.default_lr == pytest.approx(1 / torch.linalg.eigvalsh(H).max().item(), rel=1e-12)
    again = HG.make_ridge_problem(8, 6, 30, seed=3, device="cpu")
    assert torch.equal(p.X_train, again.X_train) and torch.equal(p.y_val, again.y_val)
    assert not torch.equal(p.X_train, HG.make_ridge_problem(8, 6, 30, seed=4, device="cpu").X_train)


@pytest.mark.parametrize("problem", ["small_ridge", "mlp"])
def test_step_is_gradient_descent_on_the_penalised_training_loss(problem, request):
    p = request.getfixturevalue(problem)
    g = torch.Generator().manual_seed(0)
    s = torch.randn(len(p.init), generator=g, **F64).requires_grad_(True)
    rho = torch.tensor([0.3, -0.2][: p.num_hyper], **F64)
    lam, scale = math.exp(0.3), (math.exp(-0.2) if p.model == "mlp" else 1.0)
    # oracle: autograd on 1/2 MSE + lam/2 |s|^2, written out independently of the module
    loss = 0.5 * (p.predict(s, p.X_train) - p.y_train).pow(2).mean() + 0.5 * lam * s.pow(2).sum()
    (grad,) = torch.autograd.grad(loss, s)
    torch.testing.assert_close(p.step(s.detach(), rho, 0.05), s.detach() - 0.05 * scale * grad, rtol=1e-12, atol=1e-12)


def test_mlp_predict_matches_torch_nn(mlp):
    d, k = 1, mlp.width
    net = torch.nn.Sequential(torch.nn.Linear(d, k), torch.nn.Tanh(), torch.nn.Linear(k, 1)).double()
    W1, b1, w2, b2 = torch.split(mlp.init, [d * k, k, k, 1])
    with torch.no_grad():
        net[0].weight.copy_(W1.view(d, k).T), net[0].bias.copy_(b1 + 0.1)
        net[2].weight.copy_(w2.view(1, k)), net[2].bias.copy_(b2 - 0.2)
    s = torch.cat([W1, b1 + 0.1, w2, b2 - 0.2])
    torch.testing.assert_close(mlp.predict(s, mlp.X_val), net(mlp.X_val)[:, 0], rtol=1e-12, atol=1e-12)
    assert mlp.init.shape == (3 * k + 1,) and mlp.num_hyper == 2


# ---------------------------------------------------------------------------------------------
# The three hypergradients
# ---------------------------------------------------------------------------------------------

def test_one_step_has_zero_hypergradient_and_two_steps_match_the_closed_form(small_ridge):
    p, lr, rho = small_ridge, 0.1, 0.4
    assert HG.reverse_hypergrad(p, rho, num_steps=1, lr=lr)[1].item() == 0.0  # w_1 = lr b: no lambda in it
    # w_2 = lr b + (I - lr (H + lam I)) lr b, so dw_2/drho = -lr^2 lam b (b = X^T y / n)
    X, y, Xv, yv = p.X_train, p.y_train, p.X_val, p.y_val
    lam, b, H = math.exp(rho), X.T @ y / len(y), X.T @ X / len(y)
    w2 = lr * b + (torch.eye(8, **F64) - lr * (H + lam * torch.eye(8, **F64))) @ (lr * b)
    expected = (Xv.T @ (Xv @ w2 - yv) / len(yv)) @ (-lr**2 * lam * b)
    for fn in (HG.reverse_hypergrad, HG.forward_hypergrad, HG.ridge_forward_hypergrad):
        f, g = fn(p, rho, num_steps=2, lr=lr)
        assert g.item() == pytest.approx(expected.item(), rel=1e-12), fn.__name__
        assert f == pytest.approx(0.5 * (Xv @ w2 - yv).pow(2).mean().item(), rel=1e-12)


@pytest.mark.parametrize("rho", [-3.0, 0.0, 0.8])
@pytest.mark.parametrize("on", ["val", "train"])
def test_ridge_reverse_forward_closed_form_and_differences_agree(small_ridge, rho, on):
    kw = dict(num_steps=40, on=on)
    f_r, g_r = HG.reverse_hypergrad(small_ridge, rho, **kw)
    f_f, g_f = HG.forward_hypergrad(small_ridge, rho, **kw)
    f_c, g_c = HG.ridge_forward_hypergrad(small_ridge, rho, **kw)
    f_d, g_d = HG.finite_diff_hypergrad(small_ridge, rho, **kw)
    assert f_r == pytest.approx(f_f, rel=1e-13) and f_r == pytest.approx(f_c, rel=1e-12) and f_r == f_d
    assert _rel(g_r, g_f) < 1e-10 and _rel(g_r, g_c) < 1e-10, (g_r, g_f, g_c)
    assert _rel(g_r, g_d) < 1e-6, (g_r, g_d)


def test_mlp_two_hypergradients_reverse_forward_and_differences_agree(mlp):
    rho = [-2.0, 0.1]  # (log weight decay, log lr scale)
    f_r, g_r = HG.reverse_hypergrad(mlp, rho, num_steps=15, lr=0.3)
    f_f, g_f = HG.forward_hypergrad(mlp, rho, num_steps=15, lr=0.3)
    _, g_d = HG.finite_diff_hypergrad(mlp, rho, num_steps=15, lr=0.3)
    assert g_r.shape == (2,) and f_r == pytest.approx(f_f, rel=1e-13)
    assert _rel(g_r, g_f) < 1e-10 and _rel(g_r, g_d) < 1e-6, (g_r, g_f, g_d)


def test_hypergrad_modes_report_memory_growing_with_t_only_in_reverse(small_ridge):
    r100, r200 = (HG.hypergrad(small_ridge, 0.0, num_steps=T, mode="reverse") for T in (100, 200))
    f100, f200 = (HG.hypergrad(small_ridge, 0.0, num_steps=T, mode="forward") for T in (100, 200))
    assert r200.memory_bytes / r100.memory_bytes == pytest.approx(2.0, rel=0.05)  # O(T * state)
    assert f100.memory_bytes == f200.memory_bytes == 2 * 8 * 8                    # w and z, (d,) each
    assert r100.memory_bytes > 100 * 8 * 8                       # at least one state per step
    assert r100.mode == "reverse" and r100.seconds > 0 and not r100.diverged
    fd = HG.hypergrad(small_ridge, 0.0, num_steps=100, mode="finite_diff")
    assert _rel(fd.grad, r100.grad) < 1e-6 and fd.value == r100.value


def test_unroll_keeps_the_graph_and_response_matches_a_plain_loop(small_ridge):
    p = small_ridge
    rho = torch.tensor([0.2], **F64, requires_grad=True)
    w = HG.unroll(p, rho, num_steps=5, lr=0.1)
    assert w.requires_grad
    v = torch.zeros(8, **F64)
    for _ in range(5):  # plain loop with the gradient written out
        v = v - 0.1 * (p.X_train.T @ (p.X_train @ v - p.y_train) / 6 + math.exp(0.2) * v)
    torch.testing.assert_close(w.detach(), v, rtol=1e-13, atol=1e-13)
    assert HG.response(p, 0.2, num_steps=5, lr=0.1) == pytest.approx(0.5 * (p.X_val @ v - p.y_val).pow(2).mean().item())


# ---------------------------------------------------------------------------------------------
# Hyper-optimisation, grid and random search
# ---------------------------------------------------------------------------------------------

def test_hyper_optimize_is_adam_on_the_hypergradient(small_ridge):
    run = HG.hyper_optimize(small_ridge, -1.0, num_hyper_steps=4, hyper_lr=0.2, num_steps=30)
    rho = torch.tensor([-1.0], **F64, requires_grad=True)  # oracle: torch's Adam fed by central differences
    opt = torch.optim.Adam([rho], lr=0.2)
    for k in range(4):
        f, g = HG.finite_diff_hypergrad(small_ridge, rho.detach(), num_steps=30)
        assert run.rhos[k][0] == pytest.approx(rho.item(), abs=1e-6) and run.losses[k] == pytest.approx(f, rel=1e-8)
        rho.grad = g
        opt.step()
    assert run.rhos[4][0] == pytest.approx(rho.item(), abs=1e-6) and len(run.losses) == 5
    assert run.stop_reason == "completed" and run.config["hyper_lr"] == 0.2


def test_divergence_is_recorded_not_raised(small_ridge):
    lam_max = 1 / small_ridge.default_lr
    too_big = math.log(3 * lam_max)  # lr (lambda_max + lambda) > 2: gradient descent blows up
    run = HG.hyper_optimize(small_ridge, too_big, num_hyper_steps=5, num_steps=400)
    untrained = 0.5 * small_ridge.y_val.pow(2).mean().item()
    assert run.diverged and len(run.losses) == 1 and not run.losses[0] < 1e3 * untrained
    res = HG.grid_search(small_ridge, torch.tensor([-1.0, 0.0, too_big, 1.5 * too_big], **F64), num_steps=400)
    assert res.diverged == [False, False, True, True] and res.best_rho[0] in (-1.0, 0.0)
    assert HG.hypergrad(small_ridge, too_big, num_steps=400).diverged
    assert not HG.hypergrad(small_ridge, 0.0, num_steps=400).diverged
    # the line between: 1000 times the untrained loss (finite, but a blow-up all the same)
    assert small_ridge.blew_up(1001 * untrained) and not small_ridge.blew_up(999 * untrained)


def test_grid_search_is_one_training_per_point(small_ridge):
    rhos = torch.linspace(-3, 1, 5, **F64)
    res = HG.grid_search(small_ridge, rhos, num_steps=20)
    expected = [HG.response(small_ridge, r.item(), num_steps=20) for r in rhos]
    assert res.losses == expected and [r[0] for r in res.rhos] == rhos.tolist()
    assert res.best_loss == min(expected) and res.best_index == expected.index(min(expected))


def test_random_search_is_seeded_and_inside_its_box(mlp):
    a = HG.random_search(mlp, 3, -4.0, 1.0, num_steps=5, seed=7)
    b = HG.random_search(mlp, 3, -4.0, 1.0, num_steps=5, seed=7)
    c = HG.random_search(mlp, 3, -4.0, 1.0, num_steps=5, seed=8)
    assert a == b and a.rhos != c.rhos and len(a.rhos[0]) == 2
    assert all(-4.0 <= x <= 1.0 for r in a.rhos for x in r)


# ---------------------------------------------------------------------------------------------
# Hypergradient descent (Baydin et al.)
# ---------------------------------------------------------------------------------------------

def test_hypergradient_descent_with_beta_zero_is_plain_gradient_descent(small_ridge):
    p = small_ridge
    run = HG.hypergradient_descent(p, lr=0.05, beta=0.0, weight_decay=0.5, num_steps=10)
    w, X, y = torch.zeros(8, **F64), p.X_train, p.y_train
    for t in range(10):
        assert run.losses[t] == pytest.approx((0.5 * (X @ w - y).pow(2).mean() + 0.25 * w @ w).item(), rel=1e-12)
        w = w - 0.05 * (X.T @ (X @ w - y) / 6 + 0.5 * w)
    assert run.lrs == [0.05] * 10 and run.stop_reason == "completed"


def test_hypergradient_descent_first_update_by_hand(small_ridge):
    p, lr0, beta = small_ridge, 0.01, 0.05
    run = HG.hypergradient_descent(p, lr=lr0, beta=beta, weight_decay=0.0, num_steps=3)
    X, y = p.X_train, p.y_train
    grad = lambda w: X.T @ (X @ w - y) / 6  # noqa: E731
    g0 = grad(torch.zeros(8, **F64))
    g1 = grad(-lr0 * g0)
    assert run.lrs[:2] == [lr0, pytest.approx(lr0 + beta * (g1 @ g0).item(), rel=1e-12)]
    assert run.lrs[1] > lr0  # consecutive gradients agree: the step was too short, lr grows


def test_hypergradient_descent_records_divergence(small_ridge):
    run = HG.hypergradient_descent(small_ridge, lr=10 * small_ridge.default_lr, beta=0.0, num_steps=2000)
    assert run.diverged and len(run.lrs) < 2000 and run.losses[-1] > 1e3 * run.losses[0]


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------

def test_messages(small_ridge, mlp):
    with pytest.raises(ValueError, match=r"reverse_hypergrad\(\): 'num_steps' must be an int >= 1, got num_steps=0"):
        HG.reverse_hypergrad(small_ridge, 0.0, num_steps=0)
    with pytest.raises(ValueError, match=r"hypergrad\(\): 'lr' must be a float > 0, got lr=-0.1"):
        HG.hypergrad(small_ridge, 0.0, num_steps=5, lr=-0.1)
    with pytest.raises(ValueError, match=r"hyper_optimize\(\): 'lr' must be a float > 0, got lr=0"):
        HG.hyper_optimize(small_ridge, 0.0, num_steps=5, lr=0)
    with pytest.raises(ValueError, match=r"hypergrad\(\): 'mode' must be one of 'reverse', 'forward', "
                                         r"'finite_diff', got mode='backward'"):
        HG.hypergrad(small_ridge, 0.0, num_steps=5, mode="backward")
    with pytest.raises(ValueError, match=r"'mode' must be one of 'reverse', 'forward', got mode='finite_diff'"):
        HG.hyper_optimize(small_ridge, 0.0, mode="finite_diff")
    with pytest.raises(ValueError, match=r"'rho' must hold 2 value\(s\) for model='mlp', got rho.shape=\(1,\)"):
        HG.forward_hypergrad(mlp, 0.0, num_steps=3)
    with pytest.raises(ValueError, match=r"'on' must be one of 'val', 'train', got on='test'"):
        HG.response(small_ridge, 0.0, num_steps=3, on="test")
    with pytest.raises(ValueError, match=r"ridge_forward_hypergrad\(\): 'problem.model' must be one of 'ridge'"):
        HG.ridge_forward_hypergrad(mlp, [0.0, 0.0], num_steps=3)
    with pytest.raises(TypeError, match=r"response\(\): 'rho' must be a torch.Tensor, got rho of type str"):
        HG.response(small_ridge, "0.5", num_steps=3)
    with pytest.raises(ValueError, match=r"'rho\[1\]' must be a float, got rho\[1\]=nan"):
        HG.response(mlp, [0.0, float("nan")], num_steps=3)
    with pytest.raises(TypeError, match=r"'problem' must be a HyperProblem"):
        HG.response("ridge", 0.0, num_steps=3)
    with pytest.raises(ValueError, match=r"make_ridge_problem\(\): 'd' must be an int >= 1, got d=0"):
        HG.make_ridge_problem(0)
    with pytest.raises(ValueError, match=r"hypergradient_descent\(\): 'beta' must be a float >= 0, got beta=-1"):
        HG.hypergradient_descent(small_ridge, beta=-1.0)
    with pytest.raises(ValueError, match=r"random_search\(\): 'high' must be a float > 1"):
        HG.random_search(small_ridge, 2, 1.0, 0.5)


def test_device_argument_places_the_problem():
    p = HG.make_ridge_problem(4, 3, 5, device="cpu", dtype=torch.float32)
    assert p.X_train.device.type == "cpu" and p.init.dtype == torch.float32
    with pytest.raises(ValueError, match="'device' must be one of"):
        HG.make_ridge_problem(4, 3, 5, device="tpu")


# ---------------------------------------------------------------------------------------------
# The lesson's claims on its calibrated toy (ridge d=50, n=40/400, noise 1, lr = 1/lambda_max)
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_lesson_claims_on_the_calibrated_toy(ridge):
    T = 300
    # 1. the three hypergradients agree (measured: reverse-forward ~1e-15, reverse-differences ~1e-8)
    for rho in (-2.0, 0.0):
        r, f, d = (HG.hypergrad(ridge, rho, num_steps=T, mode=m) for m in HG.MODES)
        assert _rel(r.grad, f.grad) < 1e-10 and _rel(r.grad, d.grad) < 1e-6, (r.grad, f.grad, d.grad)
        assert r.memory_bytes > 50 * f.memory_bytes  # measured ~157x: O(T d) against O(d)
    # 2. 20 Adam hyper-steps from rho = -4 find the grid optimum (measured 2.864 -> 0.840; grid 0.837)
    grid = HG.grid_search(ridge, torch.linspace(-6, 1, 29, **F64), num_steps=T)
    run = HG.hyper_optimize(ridge, -4.0, num_hyper_steps=20, hyper_lr=0.3, num_steps=T)
    assert run.stop_reason == "completed"
    first, last, best = run.losses[0], run.losses[-1], grid.best_loss
    assert last < 0.7 * first, f"expected a drop of >= 30%; got {first:.3f} -> {last:.3f}"
    assert last < 1.10 * best, f"expected within 10% of the grid optimum {best:.3f}; got {last:.3f}"
    # 3. on the training loss the hypergradient is positive: descent pushes lambda to 0
    for rho in (-4.0, -2.0, 0.0, 1.0):
        assert HG.reverse_hypergrad(ridge, rho, num_steps=T, on="train")[1].item() > 0
    # 4. a short unroll already regularises: rho runs down at every hyper-step (T=10, lr/10)
    short = HG.hyper_optimize(ridge, 0.0, num_hyper_steps=20, num_steps=10, lr=ridge.default_lr / 10)
    assert all(b[0] < a[0] for a, b in zip(short.rhos, short.rhos[1:])) and short.rhos[-1][0] < -3.0


@pytest.mark.slow
def test_mlp_hyper_steps_tune_weight_decay_and_learning_rate_together():
    # measured (seeds 0/1/2, T=100, 10 steps): 0.0815 -> 0.0557 / 0.0798 -> 0.0724 / 0.0559 -> 0.0484,
    # weight decay driven down and the learning rate up (log lr scale +0.87 / +0.35 / +0.52)
    p = HG.make_mlp_problem(device="cpu")
    run = HG.hyper_optimize(p, [-6.0, 0.0], num_hyper_steps=10, num_steps=100)
    assert run.stop_reason == "completed" and run.losses[-1] < 0.85 * run.losses[0], run.losses
    assert run.rhos[-1][0] < -6.0 and run.rhos[-1][1] > 0.0, run.rhos[-1]


@pytest.mark.gpu
def test_cuda_matches_cpu():
    cpu, gpu = HG.make_ridge_problem(device="cpu"), HG.make_ridge_problem(device="cuda")
    assert gpu.X_train.device.type == "cuda"
    for mode in ("reverse", "forward"):
        a = HG.hypergrad(cpu, -1.0, num_steps=100, mode=mode)
        b = HG.hypergrad(gpu, -1.0, num_steps=100, mode=mode)
        assert b.grad.device.type == "cuda" and a.value == pytest.approx(b.value, rel=1e-10)
        assert _rel(b.grad.cpu(), a.grad) < 1e-9
    run_c = HG.hyper_optimize(cpu, -4.0, num_hyper_steps=5, num_steps=100)
    run_g = HG.hyper_optimize(gpu, -4.0, num_hyper_steps=5, num_steps=100)
    assert run_g.losses == pytest.approx(run_c.losses, rel=1e-8)
    mlp_c, mlp_g = HG.make_mlp_problem(device="cpu"), HG.make_mlp_problem(device="cuda")
    torch.testing.assert_close(HG.forward_hypergrad(mlp_g, [-3.0, 0.0], num_steps=20)[1].cpu(),
                               HG.reverse_hypergrad(mlp_c, [-3.0, 0.0], num_steps=20)[1], rtol=1e-9, atol=1e-12)


def test_hypergradient_descent_rescues_too_small_and_too_large_learning_rates(ridge):
    # measured on seeds 0/1/2 (beta = 1e-3, 100 steps): from lr = 0.01 the lr grows to 0.03-0.04
    # and the objective reaches its minimum to 1e-4; from lr = 0.5 (past 2 / L) lr falls to 0.28-0.32
    X, y, n = ridge.X_train, ridge.y_train, len(ridge.y_train)
    w_star = torch.linalg.solve(X.T @ X / n + torch.eye(50, **F64), X.T @ y / n)  # oracle: the ridge solution
    best = (0.5 * (X @ w_star - y).pow(2).mean() + 0.5 * w_star @ w_star).item()
    slow = HG.hypergradient_descent(ridge, lr=0.01, beta=0.0, num_steps=100)
    hd = HG.hypergradient_descent(ridge, lr=0.01, beta=1e-3, num_steps=100)
    assert hd.lrs[-1] > 2 * hd.lrs[0] and hd.losses[-1] - best < 1e-3 < slow.losses[-1] - best
    wild = HG.hypergradient_descent(ridge, lr=0.5, beta=1e-3, num_steps=100)
    assert wild.lrs[-1] < 2 * ridge.default_lr and wild.losses[-1] - best < 1e-3, (wild.lrs[-1], wild.losses[-1])
    assert HG.hypergradient_descent(ridge, lr=0.5, beta=0.0, num_steps=100).diverged  # plain GD blows up
