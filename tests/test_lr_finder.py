"""The LR range test: the sweep, the losses (against pytorch-lr-finder and a hand-written loop),
smoothing, stopping, bit-exact restoration whatever happens, suggestion rules (against fastai's
code, transcribed), bad input."""

import math
import random

import numpy as np
import pytest
import torch
import torch.nn as nn

import course_lib as cl
from course_lib.lr_finder import lr_range_test, lr_sweep, suggest_lrs


# --- helpers ----------------------------------------------------------------------------------

class _Net(nn.Module):
    """Parameters, buffers (BatchNorm running stats, num_batches_tracked) and dropout: every kind
    of state a range test can disturb."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))

    def forward(self, X):
        return self.body(X)


def _setup(opt_kind: str):
    """A model, an optimizer with some state, maybe a scheduler: built identically each call."""
    torch.manual_seed(0)
    data = cl.make_classification(256, kind="moons", seed=0)
    model = _Net()
    if opt_kind == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        sched = None
    elif opt_kind == "sgd_momentum":
        opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, weight_decay=1e-4)
        sched = None
    else:  # AdamW driven by torch's OneCycleLR: a scheduler already attached
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=100)
    # A few real steps so the optimizer has state (moments, momentum buffers, step counts).
    for i in range(5):
        X, y = data.X_train[i * 32:(i + 1) * 32], data.y_train[i * 32:(i + 1) * 32]
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
        if sched is not None:
            sched.step()
    model.eval()  # an unusual mode on purpose: it must come back as it was
    return data, model, opt, sched


def _train(data, model, opt, sched, steps=20):
    """What the caller does after the range test; dropout draws from the global RNG."""
    model.train()
    out = []
    for i in range(steps):
        j = (i * 37) % 200
        X, y = data.X_train[j:j + 32], data.y_train[j:j + 32]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        out.append(loss.item())
    return out


def _state(model, opt, sched):
    """Everything that must be restored, in comparable form."""
    return dict(
        tensors={k: v.clone() for k, v in model.state_dict().items()},
        grads=[None if p.grad is None else p.grad.clone() for p in model.parameters()],
        modes=[m.training for m in model.modules()],
        opt=_deep_clone(opt.state_dict()),  # state_dict() holds live tensors: copy them
        opt_called=getattr(opt, "_opt_called", "missing"),
        sched=None if sched is None else _deep_clone(sched.state_dict()),
        rng=(torch.get_rng_state().clone(), random.getstate(), np.random.get_state()),
    )


def _deep_clone(x):
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, dict):
        return {k: _deep_clone(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_deep_clone(v) for v in x)
    return x


def _assert_same(a, b):
    assert a["tensors"].keys() == b["tensors"].keys()
    for k in a["tensors"]:
        assert a["tensors"][k].dtype == b["tensors"][k].dtype
        assert torch.equal(a["tensors"][k], b["tensors"][k]), f"model tensor {k} changed"
    for ga, gb in zip(a["grads"], b["grads"]):
        assert (ga is None) == (gb is None) and (ga is None or torch.equal(ga, gb)), "a gradient changed"
    assert a["modes"] == b["modes"], "train/eval modes changed"
    _assert_same_nested(a["opt"], b["opt"], "optimizer")
    assert a["opt_called"] == b["opt_called"]
    _assert_same_nested(a["sched"], b["sched"], "scheduler")
    assert torch.equal(a["rng"][0], b["rng"][0]), "torch RNG state changed"
    assert a["rng"][1] == b["rng"][1], "python RNG state changed"
    na, nb = a["rng"][2], b["rng"][2]
    assert na[0] == nb[0] and np.array_equal(na[1], nb[1]) and na[2:] == nb[2:], "numpy RNG state changed"


def _assert_same_nested(x, y, where):
    if isinstance(x, torch.Tensor):
        assert isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y), where
    elif isinstance(x, dict):
        assert isinstance(y, dict) and x.keys() == y.keys(), f"{where}: keys {x.keys()} vs {y.keys()}"
        for k in x:
            _assert_same_nested(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, (list, tuple)):
        assert type(x) is type(y) and len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y)):
            _assert_same_nested(u, v, f"{where}[{i}]")
    else:
        assert x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)), f"{where}: {x!r} != {y!r}"


class _Boom(RuntimeError):
    pass


def _run_scenario(scenario, data, model, opt):
    kw = dict(loss_fn="cross_entropy", optimizer=opt, start_lr=1e-4, end_lr=1.0, num_iter=40, batch_size=32,
              device="cpu", readback_every=4)
    if scenario == "completed":
        r = lr_range_test(model, data, stop_div=False, **kw)
        assert r.stop_reason == "completed" and len(r) == 40
    elif scenario == "diverged":
        kw.update(end_lr=1e4)
        r = lr_range_test(model, data, **kw)
        assert r.stop_reason == "diverged" and len(r) < 40
    elif scenario == "raises":
        calls = []

        def loss_fn(m, batch):
            calls.append(1)
            if len(calls) == 7:
                raise _Boom("a bug in the caller's loss")
            return nn.functional.cross_entropy(m(batch[0]), batch[1])

        kw["loss_fn"] = loss_fn
        with pytest.raises(_Boom):
            lr_range_test(model, data, **kw)
    elif scenario == "interrupted":
        def on_step(result):
            if len(result) >= 8:
                raise KeyboardInterrupt
        r = lr_range_test(model, data, on_step=on_step, **kw)
        assert r.stop_reason == "interrupted" and len(r) == 8
    elif scenario == "callback_stop":
        r = lr_range_test(model, data, on_step=lambda res: res.request_stop(), **kw)
        assert r.stop_reason == "callback" and len(r) == 4
    else:  # validation subset, accumulation and val-based smoothing on top
        r = lr_range_test(model, data, val_data=data, val_size=50, accumulation_steps=2, **kw)
        assert len(r.val_losses) == len(r)


SCENARIOS = ["completed", "diverged", "raises", "interrupted", "callback_stop", "val_and_accumulation"]


@pytest.mark.parametrize("opt_kind", ["adam", "sgd_momentum", "adamw_with_scheduler"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_restores_everything_bit_exactly(scenario, opt_kind):
    data, model, opt, sched = _setup(opt_kind)
    torch.manual_seed(123); random.seed(1); np.random.seed(2)
    before = _state(model, opt, sched)
    _run_scenario(scenario, data, model, opt)
    _assert_same(before, _state(model, opt, sched))
    # The proof users asked for: training afterwards is exactly what it would have been.
    after_test = _train(data, model, opt, sched)
    data2, model2, opt2, sched2 = _setup(opt_kind)
    torch.manual_seed(123); random.seed(1); np.random.seed(2)
    control = _train(data2, model2, opt2, sched2)
    assert after_test == control
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)


def test_restores_parameters_the_model_does_not_own():
    model = nn.Linear(2, 1)
    extra = nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([{"params": model.parameters()}, {"params": [extra]}], lr=0.1)

    def loss_fn(m, batch):
        return nn.functional.mse_loss(m(batch[0]), batch[1]) + extra.square().sum()

    data = (torch.randn(64, 2), torch.randn(64, 1))
    lr_range_test(model, data, loss_fn=loss_fn, optimizer=opt, num_iter=10, device="cpu")
    assert torch.equal(extra, torch.ones(3)) and extra.grad is None


def test_a_fresh_named_optimizer_leaves_the_model_untouched():
    data = cl.make_regression(128, seed=0)
    model = cl.MLP(1, 1, width=8, dropout=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    lr_range_test(model, data, optimizer="momentum", num_iter=30, device="cpu")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in model.parameters())


# --- the sweep and the losses -----------------------------------------------------------------

def test_sweep_matches_the_closed_forms():
    exp = lr_sweep(1e-7, 10.0, 100, "exp")
    assert np.allclose(exp, np.geomspace(1e-7, 10.0, 100), rtol=1e-12, atol=0)
    lin = lr_sweep(1e-3, 1.0, 50, "linear")
    assert np.allclose(lin, np.linspace(1e-3, 1.0, 50), rtol=1e-12, atol=0)
    assert exp[0] == 1e-7 and exp[-1] == pytest.approx(10.0, rel=1e-15)


def _batches(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(32, 2, generator=g), torch.randn(32, 1, generator=g)) for _ in range(n)]


def test_raw_losses_equal_a_hand_written_loop_and_loader_is_cycled():
    batches = _batches(7)  # shorter than num_iter: the loader starts over
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    ref = [p.detach().clone() for p in model.parameters()]
    r = lr_range_test(model, batches, optimizer=torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9),
                      start_lr=1e-3, end_lr=1.0, num_iter=20, stop_div=False, device="cpu")
    # The oracle: the textbook loop, written out.
    torch.manual_seed(0)
    model2 = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    assert all(torch.equal(a, b) for a, b in zip(ref, model2.parameters()))
    opt = torch.optim.SGD(model2.parameters(), lr=1.0, momentum=0.9)
    want = []
    for i, lr in enumerate(np.geomspace(1e-3, 1.0, 20)):
        opt.param_groups[0]["lr"] = float(lr)
        X, y = batches[i % 7]
        opt.zero_grad()
        loss = nn.functional.mse_loss(model2(X), y)
        loss.backward()
        opt.step()
        want.append(loss.item())
    assert r.raw_losses == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert r.smoothed_losses == pytest.approx(cl.ema(r.raw_losses, 0.98).tolist(), rel=1e-12)


def test_raw_losses_equal_pytorch_lr_finder_on_the_same_batches():
    from torch_lr_finder import LRFinder
    import contextlib
    import io

    loader = torch.utils.data.DataLoader(_batches(40), batch_size=None)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    ours = lr_range_test(model, loader, optimizer=torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9),
                         start_lr=1e-5, end_lr=0.5, num_iter=40, stop_div=False, device="cpu")
    model.load_state_dict(init)
    finder = LRFinder(model, torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9), nn.MSELoss(), device="cpu")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(loader, start_lr=1e-5, end_lr=0.5, num_iter=40, smooth_f=0.0, diverge_th=1e30)
    assert ours.lrs == pytest.approx(finder.history["lr"], rel=1e-12)
    assert ours.raw_losses == pytest.approx(finder.history["loss"], rel=1e-6, abs=1e-7)


def test_gradient_accumulation_equals_one_big_batch():
    g = torch.Generator().manual_seed(1)
    big = [(torch.randn(64, 2, generator=g), torch.randn(64, 1, generator=g)) for _ in range(10)]
    halves = [(X[i:i + 32], y[i:i + 32]) for X, y in big for i in (0, 32)]
    runs = []
    for batches, acc in ((big, 1), (halves, 2)):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        runs.append(lr_range_test(model, batches, optimizer="sgd", accumulation_steps=acc, start_lr=1e-3,
                                  end_lr=0.5, num_iter=10, stop_div=False, device="cpu"))
    assert runs[1].raw_losses == pytest.approx(runs[0].raw_losses, rel=1e-5)


def test_validation_uses_a_small_fixed_subset():
    data = cl.make_regression(2000, noise=0.1, seed=0)
    seen = []

    def loss_fn(model, batch):
        X, y = batch
        if not torch.is_grad_enabled():  # the validation pass
            seen.append(X.shape[0])
            seen_rows.append(X[:3].clone())
        return nn.functional.mse_loss(model(X), y)

    seen_rows = []
    r = lr_range_test(cl.MLP(1, 1, width=8), data, loss_fn=loss_fn, val_data=data, val_size=64, num_iter=15,
                      stop_div=False, device="cpu")
    assert seen == [64] * 15                               # 64 rows, not the whole validation set
    assert all(torch.equal(rows, seen_rows[0]) for rows in seen_rows)  # the same rows each time
    assert r.config["monitored"] == "val"
    assert r.smoothed_losses == pytest.approx(cl.ema(r.val_losses, 0.98).tolist(), rel=1e-12)


def test_any_batch_format_through_loss_fn():
    batches = [{"inputs": X, "targets": y} for X, y in _batches(5)]
    r = lr_range_test(nn.Linear(2, 1), batches, loss_fn=lambda m, b: nn.functional.mse_loss(m(b["inputs"]), b["targets"]),
                      num_iter=12, device="cpu")
    assert len(r) >= 2 and all(math.isfinite(v) for v in r.raw_losses[:2])


def test_torch_loss_module_is_a_criterion():
    r = lr_range_test(nn.Linear(2, 1), _batches(5), loss_fn=nn.MSELoss(), num_iter=5, skip_start=0, skip_end=0,
                      device="cpu")
    assert len(r) == 5


# --- stopping -----------------------------------------------------------------------------------

def test_stops_when_the_smoothed_loss_passes_threshold_times_the_best():
    data = cl.make_regression(512, noise=0.1, seed=0)
    r = lr_range_test(cl.MLP(1, 1, width=16), data, optimizer="sgd", start_lr=1e-4, end_lr=1e3, num_iter=200,
                      diverge_th=4.0, device="cpu")
    s = r.smoothed_losses
    assert r.stop_reason == "diverged" and r.stop_iter == len(s) - 1 < 199
    assert not math.isfinite(s[-1]) or s[-1] > 4.0 * min(s[:-1])
    # ...and not one iteration earlier.
    assert all(s[i] <= 4.0 * min(s[:i + 1]) for i in range(len(s) - 1))


def test_nan_loss_stops_and_suggestions_ignore_it():
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        loss = nn.functional.mse_loss(model(batch[0]), batch[1])
        return loss * float("nan") if len(calls) == 30 else loss

    r = lr_range_test(nn.Linear(2, 1), _batches(10), loss_fn=loss_fn, num_iter=50, readback_every=1, device="cpu")
    assert r.stop_reason == "diverged" and r.stop_iter == 29 and math.isnan(r.raw_losses[-1])
    assert all(v is None or math.isfinite(v) for v in r.suggestions.values())
    assert r.suggestions["minimum"] is not None


def test_readback_every_does_not_change_the_result():
    data = cl.make_regression(256, noise=0.1, seed=0)
    torch.manual_seed(0)
    model = cl.MLP(1, 1, width=8)
    a = lr_range_test(model, data, end_lr=100, readback_every=1, device="cpu")
    b = lr_range_test(model, data, end_lr=100, readback_every=16, device="cpu")  # restored: same start
    assert a.raw_losses == b.raw_losses and a.stop_iter == b.stop_iter and a.suggestions == b.suggestions


# --- suggestion rules ---------------------------------------------------------------------------

def _fastai_valley(lrs, losses):
    """fastai.callback.schedule.valley, transcribed (the oracle)."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx])


def _fastai_slide(lrs, losses, lr_diff=15, thresh=.005):
    """fastai.callback.schedule.slide, transcribed."""
    loss_grad = np.gradient(losses)
    r_idx = -1
    l_idx = r_idx - lr_diff
    local_min_lr = lrs[l_idx]
    while (l_idx >= -len(losses)) and (abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh):
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    return float(local_min_lr)


def _fastai_steep(lrs, losses):
    grads = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
    return float(lrs[grads.argmin()])


@pytest.mark.parametrize("seed", range(8))
def test_rules_equal_fastai_on_random_curves(seed):
    rng = np.random.default_rng(seed)
    lrs = np.geomspace(1e-6, 10, 100)
    x = np.log10(lrs)
    losses = 2 - np.tanh(x + 3) + np.exp(x) + rng.normal(0, 0.05, 100).cumsum() * 0.1
    got = suggest_lrs(lrs, losses, skip_start=10, skip_end=5)
    lrs_c, losses_c = lrs[10:-5], losses[10:-5]
    assert got["valley"] == _fastai_valley(lrs_c, losses_c)
    assert got["slide"] == _fastai_slide(lrs_c, losses_c)
    assert got["steep"] == _fastai_steep(lrs_c, losses_c)
    assert got["minimum"] == lrs_c[np.argmin(losses_c)] / 10


def test_steep_is_per_log_lr_and_finds_the_known_steepest_point():
    lrs = np.geomspace(1e-5, 1, 201)
    losses = 2 - np.tanh(np.log10(lrs) + 2.5)  # steepest at lr = 10**-2.5 in log space
    assert math.log10(suggest_lrs(lrs, losses, 0, 0)["steep"]) == pytest.approx(-2.5, abs=0.03)


def test_suggestions_are_nan_safe_and_need_enough_points():
    lrs = np.geomspace(1e-4, 1, 40)
    losses = np.linspace(2, 1, 40)
    losses[25] = np.nan
    got = suggest_lrs(lrs, losses, skip_start=2, skip_end=2)
    assert got["minimum"] <= lrs[24] / 10 + 1e-15                      # nothing after the NaN counts
    assert suggest_lrs(lrs[:5], losses[:5], skip_start=2, skip_end=2) == dict.fromkeys(cl.SUGGESTION_RULES)
    assert suggest_lrs([], []) == dict.fromkeys(cl.SUGGESTION_RULES)


# --- bad input ----------------------------------------------------------------------------------

_X, _Y = torch.randn(32, 2), torch.randn(32, 1)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(start_lr=1.0, end_lr=0.1), ValueError,
     r"lr_range_test\(\): 'start_lr' must be < 'end_lr', got start_lr=1.0, end_lr=0.1"),
    (dict(start_lr=0.1, end_lr=0.1), ValueError, r"'start_lr' must be < 'end_lr'"),
    (dict(start_lr=0.0), ValueError, r"'start_lr' must be a float in \(0, 1e\+06\], got start_lr=0.0"),
    (dict(end_lr=-1.0), ValueError, r"'end_lr' must be a float in \(0, 1e\+06\], got end_lr=-1.0"),
    (dict(num_iter=1), ValueError, r"lr_range_test\(\): 'num_iter' must be an int >= 2, got num_iter=1"),
    (dict(step_mode="log"), ValueError, r"'step_mode' must be one of 'exp', 'linear', got step_mode='log'"),
    (dict(diverge_th=1.0), ValueError, r"'diverge_th' must be a float > 1, got diverge_th=1.0"),
    (dict(smooth_beta=1.0), ValueError, r"'smooth_beta' must be a float in \[0, 1\), got smooth_beta=1.0"),
    (dict(accumulation_steps=0), ValueError, r"'accumulation_steps' must be an int >= 1"),
    (dict(optimizer="rmsprop"), ValueError, r"'optimizer' must be one of 'sgd', 'momentum', 'adam', 'adamw'"),
    (dict(loss_fn="mse_loss"), ValueError, r"'loss_fn' must be one of"),
    (dict(data=[]), ValueError, r"lr_range_test\(\): 'data' must yield at least one batch, got an empty list"),
    (dict(data=torch.utils.data.DataLoader(torch.utils.data.TensorDataset(_X[:0], _Y[:0]), batch_size=4)),
     ValueError, r"'data' must yield at least one batch, got an empty DataLoader"),
    (dict(data=iter([(_X, _Y)]), num_iter=5), ValueError, r"'data' ran out after 1 batches; pass a re-iterable"),
    (dict(data="moons"), TypeError, r"'data' must be a DataSplit, a tuple \(X, y\) of tensors, or a re-iterable"),
    (dict(loss_fn=lambda m, b: m(b[0])), TypeError, r"'loss_fn' must return a scalar tensor, got a tensor of shape \(32, 1\)"),
])
def test_bad_input_messages(kwargs, exc, match):
    kw = dict(data=(_X, _Y), device="cpu")
    kw.update(kwargs)
    model = nn.Linear(2, 1)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(exc, match=match):
        lr_range_test(model, **kw)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.gpu
def test_runs_on_cuda_and_returns_the_model_to_the_cpu_exactly():
    data, model, opt, sched = _setup("adam")
    before = _state(model, opt, sched)
    r = lr_range_test(model, data, loss_fn="cross_entropy", optimizer=opt, num_iter=30, device="cuda")
    assert r.config["device"].startswith("cuda") and len(r) > 2
    assert all(p.device.type == "cpu" for p in model.parameters())
    _assert_same(before, _state(model, opt, sched))
