"""Tests of course_lib.train.fit: oracles (a hand-written torch loop), determinism, divergence
as a result, early stopping, mid-run hyperparameter changes, and clear errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import MLP, LinearModel, MarkovLanguage, TinyCausalLM, fit, make_classification, make_regression
from course_lib.train import History


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return MLP(1, 1, width=kw.pop("width", 16), depth=kw.pop("depth", 2), **kw)


@pytest.fixture(scope="module")
def reg():
    return make_regression(256, kind="polynomial", noise=0.1, seed=0)


def _bare_loop(model, data, opt, batch_size, num_steps, seed):
    """The oracle: the loop a student writes by hand with torch only."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    X, y, n, losses = data.X_train, data.y_train, data.X_train.shape[0], []
    while len(losses) < num_steps:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            idx = perm[i:i + batch_size]
            loss = F.mse_loss(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if len(losses) == num_steps:
                break
    return losses


@pytest.mark.parametrize("optimizer,lr,wd", [("sgd", 0.05, 0.0), ("momentum", 0.02, 1e-3), ("adam", 1e-2, 0.0),
                                             ("adamw", 1e-2, 0.1)])
def test_fit_matches_a_hand_written_torch_loop(reg, optimizer, lr, wd):
    m1, m2 = _model(), _model()
    h = fit(m1, reg, optimizer=optimizer, lr=lr, weight_decay=wd, batch_size=32, num_steps=40, eval_every=0,
            device="cpu", seed=3)
    opt = {"sgd": lambda p: torch.optim.SGD(p, lr=lr, weight_decay=wd),
           "momentum": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=wd),
           "adam": lambda p: torch.optim.Adam(p, lr=lr, weight_decay=wd),
           "adamw": lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=wd)}[optimizer](m2.parameters())
    oracle = _bare_loop(m2, reg, opt, 32, 40, seed=3)
    assert h.train_loss == pytest.approx(oracle, rel=1e-6, abs=1e-7)
    for a, b in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(a, b)


def test_history_records_every_step_and_periodic_validation(reg):
    h = fit(_model(), reg, lr=1e-2, num_steps=105, eval_every=25, device="cpu")
    assert h.step == list(range(105))
    assert len(h.train_loss) == len(h.lr) == len(h.time) == 105
    assert h.grad_norm_step == list(range(0, 105, 10)) and len(h.grad_norm) == 11
    assert h.val_step == [0, 25, 50, 75, 100, 105]
    assert all(b >= a for a, b in zip(h.time, h.time[1:]))
    assert h.lr == [1e-2] * 105
    assert h.stop_reason == "completed" and h.stop_step is None


def test_grad_norm_equals_torchs_total_norm(reg):
    model = _model()
    X, y = reg.X_train[:64], reg.y_train[:64]
    loss = F.mse_loss(model(X), y)
    loss.backward()
    expected = float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]))
    model.zero_grad()
    h = fit(model, (X, y), lr=1e-3, batch_size=64, num_steps=3, eval_every=0, grad_norm_every=1, device="cpu")
    assert h.grad_norm_step == [0, 1, 2]
    assert h.grad_norm[0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "bce", "cross_entropy"])
def test_fused_losses_used_in_the_loop_equal_the_course_formulas(name):
    from course_lib.losses import get_loss
    from course_lib._loop import FUSED
    g = torch.Generator().manual_seed(0)
    if name == "cross_entropy":
        a, b = torch.randn(32, 5, generator=g), torch.randint(0, 5, (32,), generator=g)
    elif name == "bce":
        a, b = torch.randn(32, generator=g), torch.rand(32, generator=g)
    else:
        a, b = torch.randn(32, 3, generator=g), torch.randn(32, 3, generator=g)
    torch.testing.assert_close(FUSED[name](a, b), get_loss(name)(a, b))


def test_readback_batching_does_not_change_the_record(reg):
    a = fit(_model(), reg, lr=1e-2, num_steps=70, readback_every=1, device="cpu")
    b = fit(_model(), reg, lr=1e-2, num_steps=70, readback_every=256, device="cpu")
    assert a.same_curves(b)


def test_same_seed_gives_identical_histories_on_cpu(reg):
    kw = dict(lr=1e-2, num_steps=80, eval_every=20, dropout=0.2, device="cpu", seed=5)
    a, b = fit(_model(), reg, **kw), fit(_model(), reg, **kw)
    assert a.same_curves(b)
    c = fit(_model(), reg, **{**kw, "seed": 6})
    assert not a.same_curves(c)


@pytest.mark.parametrize("lr", [10.0, 1e3])
def test_divergence_stops_cleanly_and_is_recorded(reg, lr):
    h = fit(_model(), reg, optimizer="sgd", lr=lr, num_steps=500, device="cpu")
    assert h.diverged and h.stop_reason in ("diverged", "exploded")
    assert h.stop_step == h.step[-1] < 499
    assert h.events[-1]["kind"] == h.stop_reason and h.events[-1]["step"] == h.stop_step


def test_non_finite_loss_is_diverged_not_an_exception(reg):
    h = fit(_model(), reg, optimizer="sgd", lr=1e3, explode_factor=None, num_steps=300, device="cpu")
    assert h.stop_reason == "diverged"
    assert not math.isfinite(h.train_loss[-1])
    assert all(math.isfinite(v) for v in h.train_loss[:-1])


def test_early_stopping_stops_and_restores_the_best_weights():
    small = make_regression(24, kind="polynomial", noise=0.3, seed=1)
    torch.manual_seed(0)
    model = MLP(1, 1, width=128, depth=3)
    h = fit(model, small, lr=3e-3, num_steps=3000, eval_every=20, batch_size=16, early_stopping=5, device="cpu")
    assert h.stop_reason == "early_stopping" and len(h) < 3000
    with torch.no_grad():
        restored = float(F.mse_loss(model(small.X_val), small.y_val))
    assert restored == pytest.approx(h.best_val_loss, rel=1e-5)


def test_on_step_can_change_hyperparameters_mid_run(reg):
    def on_step(state):
        if state.step == 9:
            state.set_hyperparams(lr=0.05, weight_decay=0.01, l1=1e-4, dropout=0.3)

    model = _model(dropout=0.0)
    h = fit(model, reg, optimizer="sgd", lr=0.01, num_steps=20, on_step=on_step, device="cpu")
    assert h.lr[:10] == [0.01] * 10 and h.lr[10:] == [0.05] * 10
    assert [e["step"] for e in h.events] == [10, 10, 10, 10]
    assert {e["text"].split()[0] for e in h.events} == {"lr", "weight_decay", "l1", "dropout"}
    assert all(m.p == 0.3 for m in model.modules() if isinstance(m, torch.nn.Dropout))


def test_callbacks_request_stop_and_interrupt(reg):
    h = fit(_model(), reg, num_steps=100, on_step=lambda s: s.step == 14 and s.request_stop(), device="cpu")
    assert len(h) == 15 and h.stop_reason == "callback"

    def interrupt(state):
        if state.step == 7:
            raise KeyboardInterrupt

    h = fit(_model(), reg, num_steps=100, on_step=interrupt, device="cpu")
    assert h.stop_reason == "interrupted" and len(h) == 8


def test_on_eval_and_flush_give_callbacks_fresh_numbers(reg):
    seen = []

    def on_eval(state):
        seen.append((state.step, len(state.history.train_loss), state.history.val_loss[-1]))

    fit(_model(), reg, num_steps=60, eval_every=30, on_eval=on_eval, device="cpu")
    assert [s[1] for s in seen] == [0, 30, 60]  # the history was read back before each evaluation


def test_l1_shrinks_weights_and_dropout_is_set(reg):
    plain, sparse = _model(), _model()
    fit(plain, reg, lr=1e-2, num_steps=200, device="cpu")
    fit(sparse, reg, lr=1e-2, num_steps=200, l1=1e-2, dropout=0.1, device="cpu")
    l1 = lambda m: sum(p.abs().sum() for p in m.parameters() if p.ndim >= 2)
    assert l1(sparse) < 0.7 * l1(plain)
    assert all(m.p == 0.1 for m in sparse.modules() if isinstance(m, torch.nn.Dropout))


def test_metrics_eval_train_num_epochs_and_baseline():
    data = make_classification(200, kind="moons", noise=0.1, seed=0)
    torch.manual_seed(0)
    acc = lambda logits, y: (logits.argmax(1) == y).float().mean()
    h = fit(MLP(2, 2, width=32), data, loss_fn="cross_entropy", lr=1e-2, num_epochs=20, batch_size=32,
            eval_every=50, eval_train=True, metrics={"accuracy": acc}, baseline=data.baseline_loss(), device="cpu")
    assert len(h) == 20 * (data.n_train // 32)
    assert len(h.val_metrics["accuracy"]) == len(h.val_loss) == len(h.train_eval_loss)
    assert h.val_metrics["accuracy"][-1] > 0.85
    assert h.baseline == pytest.approx(math.log(2), abs=0.05)


def test_causal_lm_on_a_token_stream_learns_towards_the_entropy():
    lang = MarkovLanguage(vocab_size=16, scale=30.0, seed=0)
    torch.manual_seed(0)
    lm = TinyCausalLM(16, d_model=32, n_layers=1, n_heads=2, context=16)
    h = fit(lm, lang.batches(32, 16, seed=1), loss_fn="causal_lm", lr=3e-3, num_steps=200,
            val_data=lang.sample(64, 16, seed=2), eval_every=100, device="cpu")
    assert h.stop_reason == "completed"
    assert h.val_loss[0] == pytest.approx(math.log(16), abs=0.15)
    assert h.val_loss[-1] < lang.unigram_entropy  # better than unigram statistics: it uses the context


def test_history_round_trips_through_a_dict(reg):
    h = fit(_model(), reg, num_steps=30, device="cpu")
    assert History.from_dict(h.to_dict()).same_curves(h)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"lr": -0.1}, ValueError, r"fit\(\): 'lr' must be a float in \(0, 1e\+06\], got lr=-0.1"),
    ({"lr": 0}, ValueError, r"'lr' must be a float in \(0, 1e\+06\], got lr=0"),
    ({"optimizer": "rmsprop"}, ValueError, r"'optimizer' must be one of 'sgd', 'momentum', 'adam', 'adamw', got optimizer='rmsprop'"),
    ({"batch_size": 0}, ValueError, r"'batch_size' must be an int >= 1, got batch_size=0"),
    ({"num_steps": 10, "num_epochs": 2}, ValueError, r"give 'num_steps' or 'num_epochs', not both"),
    ({"dropout": 1.0}, ValueError, r"'dropout' must be a float in \[0, 1\) or None, got dropout=1.0"),
    ({"weight_decay": float("nan")}, ValueError, r"'weight_decay' must be a float in \[0, 1e\+06\], got weight_decay=nan"),
    ({"loss_fn": "mse2"}, ValueError, r"mse2"),
    ({"on_step": 3}, TypeError, r"'on_step' must be a callable"),
    ({"device": "banana"}, ValueError, r"'device' must be one of"),
])
def test_bad_arguments_get_clear_messages(reg, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fit(_model(), reg, **kwargs)


def test_the_argument_table_lists_fit_parameters_in_signature_order():
    import inspect
    from course_lib.train import _FIT_PARAMS, _MIDRUN_PARAMS
    params = list(inspect.signature(fit).parameters)
    assert list(_FIT_PARAMS) == [p for p in params if p in _FIT_PARAMS]
    assert set(_MIDRUN_PARAMS) <= set(_FIT_PARAMS)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"optimizer": 3}, TypeError, r"^fit\(\): 'optimizer' must be a optimizer name or torch.optim.Optimizer, got optimizer=3"),
    ({"lr_schedule": 3}, ValueError, r"^fit\(\): 'lr_schedule' must be a function step -> lr or a Schedule, got lr_schedule=3$"),
    ({"on_eval": [print, 3]}, TypeError, r"^fit\(\): 'on_eval' must be a callable or list of callables, got on_eval=3"),
    ({"num_steps": 2.0}, TypeError, r"^fit\(\): 'num_steps' must be an int >= 1 or None, got num_steps=2.0 of type float$"),
    ({"grad_clip": 0.0}, ValueError, r"^fit\(\): 'grad_clip' must be a float > 0 or None, got grad_clip=0.0$"),
    ({"explode_factor": 1}, ValueError, r"^fit\(\): 'explode_factor' must be a float > 1 or None, got explode_factor=1$"),
    ({"momentum": 1.0}, ValueError, r"^fit\(\): 'momentum' must be a float in \[0, 1\), got momentum=1.0$"),
    ({"eval_every": -1}, ValueError, r"^fit\(\): 'eval_every' must be an int >= 0, got eval_every=-1$"),
])
def test_table_driven_checks_keep_the_per_argument_messages(reg, kwargs, exc, match):
    model = _model()
    with pytest.raises(exc, match=match):
        fit(model, reg, **kwargs)


def test_bad_model_data_and_labels_get_clear_messages(reg):
    with pytest.raises(TypeError, match=r"'model' must be a torch.nn.Module"):
        fit("mlp", reg)
    with pytest.raises(TypeError, match=r"'data' must be a DataSplit"):
        fit(_model(), [1, 2, 3])
    with pytest.raises(ValueError, match=r"X and y must have the same number of rows"):
        fit(_model(), (torch.zeros(10, 1), torch.zeros(9, 1)))
    data = make_classification(100, seed=0)
    bad_y = data.y_train.clone()
    bad_y[3] = 5
    with pytest.raises(ValueError, match=r"'target' must hold class indices in \[0, C\) = \[0, 2\), got target\[3\]=5"):
        fit(MLP(2, 2), (data.X_train, bad_y), loss_fn="cross_entropy", device="cpu")


def test_cuda_unavailable_is_a_clear_error(reg, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a laptop without a GPU
    with pytest.raises(ValueError, match=r"no CUDA GPU found"):
        fit(_model(), reg, device="cuda")


@pytest.mark.gpu
def test_fit_on_cuda_matches_cpu(reg):
    h_cpu = fit(_model(), reg, lr=1e-2, num_steps=50, device="cpu")
    h_gpu = fit(_model(), reg, lr=1e-2, num_steps=50, device="cuda")
    assert h_gpu.config["device"].startswith("cuda")
    assert h_gpu.train_loss == pytest.approx(h_cpu.train_loss, rel=1e-3, abs=1e-5)


def test_linear_model_reaches_the_noise_floor():
    data = make_regression(500, kind="linear", n_features=3, noise=0.2, seed=0)
    torch.manual_seed(0)
    h = fit(LinearModel(3), data, optimizer="sgd", lr=0.1, batch_size=500, num_steps=300, device="cpu")
    assert h.val_loss[-1] == pytest.approx(0.2**2, rel=0.3)


def test_no_validation_point_is_recorded_after_a_divergence():
    data = make_regression(64, seed=0)
    torch.manual_seed(0)
    h = fit(MLP(1, 1, width=8), data, optimizer="sgd", lr=10.0, num_steps=60, eval_every=10, device="cpu")
    assert h.diverged
    assert all(s <= h.stop_step for s in h.val_step)
    assert all(math.isfinite(v) for v in h.val_loss)


def test_dropout_masks_depend_only_on_the_seed_not_on_the_data_check(reg):
    # The up-front label check must not consume the RNG that draws the dropout masks:
    # the first step's loss equals a hand-computed step with the same seed.
    model, oracle = _model(dropout=0.5), _model(dropout=0.5)
    h = fit(model, (reg.X_train[:32], reg.y_train[:32]), batch_size=32, num_steps=1, eval_every=0,
            seed=7, device="cpu")
    torch.manual_seed(7)
    oracle.train()
    with torch.no_grad():
        expected = float(F.mse_loss(oracle(reg.X_train[:32]), reg.y_train[:32]))
    assert h.train_loss[0] == pytest.approx(expected, rel=1e-6)
