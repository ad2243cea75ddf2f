"""Bad input gets the course's message (the parameter, what is allowed, what came in), never a torch
traceback or a silent wrong run: one test per case that a fuzz of the public API found.

Cases covered so far: data whose dtype or feature count does not fit the model (fit and the LR
range test), the LR range test's data and loss checks (the same as fit's), NaN/inf or empty data,
and seeds past torch's 64-bit range.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import course_lib as cl

X = torch.randn(64, 2)
y = X.sum(dim=1, keepdim=True)


@pytest.mark.parametrize("train", ["fit", "lr_range_test"])
def test_float64_data_for_a_float32_model_names_both_dtypes(train):
    with pytest.raises(TypeError, match=rf"{train}\(\): 'data' X is float64 while the model's parameters are float32"):
        _run(train, cl.MLP(2, 1), (X.double(), y.double()))


@pytest.mark.parametrize("train", ["fit", "lr_range_test"])
def test_a_model_that_expects_other_features_says_how_many(train):
    with pytest.raises(ValueError, match=rf"{train}\(\): 'data' does not fit the model: the model expects 2 input "
                                         r"features, got X of shape \(64, 1\)"):
        _run(train, cl.MLP(2, 1), (X[:, :1], y))


@pytest.mark.parametrize("train", ["fit", "lr_range_test"])
@pytest.mark.parametrize("where", ["X", "y"])
def test_nan_or_inf_in_the_data_is_refused_before_training_with_its_row(train, where):
    Xb, yb = X.clone(), y.clone()
    (Xb if where == "X" else yb)[3, 0] = float("nan") if train == "fit" else float("inf")
    name = f"{where}_train" if train == "fit" else where
    with pytest.raises(ValueError, match=rf"{train}\(\): 'data' {name} contains NaN or inf \(row 3\)"):
        _run(train, cl.MLP(2, 1), (Xb, yb))


def test_nan_in_the_validation_targets_is_refused_too():
    yv = y[:8].clone()
    yv[5] = float("nan")
    with pytest.raises(ValueError, match=r"fit\(\): 'data' y_val contains NaN or inf \(row 5\)"):
        cl.fit(cl.MLP(2, 1), (X, y, X[:8], yv), num_steps=2, device="cpu")


def test_empty_data_is_refused():
    with pytest.raises(ValueError, match=r"fit\(\): 'data' X_train must have at least one row"):
        cl.fit(cl.MLP(2, 1), (X[:0], y[:0]), num_steps=2, device="cpu")


@pytest.mark.parametrize("loss_fn, target, match", [
    ("cross_entropy", y, r"lr_range_test\(\): "),       # regression targets for a classification loss
    ("bce", y * 10, r"lr_range_test\(\): "),             # targets outside [0, 1]
])
def test_lr_range_test_checks_its_loss_and_labels_as_fit_does(loss_fn, target, match):
    model = cl.MLP(2, 3 if loss_fn == "cross_entropy" else 1)
    with pytest.raises((ValueError, TypeError)) as lr_err:
        cl.lr_range_test(model, (X, target), loss_fn=loss_fn, num_iter=5, device="cpu")
    with pytest.raises((ValueError, TypeError)) as fit_err:
        cl.fit(model, (X, target), loss_fn=loss_fn, num_steps=2, device="cpu")
    assert str(lr_err.value).split("(): ", 1)[1] == str(fit_err.value).split("(): ", 1)[1]


def test_lr_range_test_leaves_the_model_as_it_was_after_a_refused_batch():
    model = cl.MLP(2, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError):
        cl.lr_range_test(model, (X[:, :1], y), num_iter=5, device="cpu")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and model.training


@pytest.mark.parametrize("data", [(X,), (X, y, y), (X.numpy(), y.numpy())], ids=["X only", "three tensors", "numpy"])
def test_lr_range_test_data_must_be_x_and_y(data):
    with pytest.raises(TypeError, match=r"lr_range_test\(\): 'data' must be a DataSplit, \(X, y\) tensors"):
        cl.lr_range_test(cl.MLP(2, 1), data, num_iter=5, device="cpu")


@pytest.mark.parametrize("call", [
    lambda s: cl.make_regression(10, seed=s), lambda s: cl.fit(cl.MLP(1, 1), cl.make_regression(10), seed=s),
    lambda s: cl.MarkovLanguage(vocab_size=4, seed=s), lambda s: cl.seed_everything(s),
    lambda s: cl.mask_tokens(torch.zeros(2, 4, dtype=torch.long), mask_token_id=5, vocab_size=6, seed=s),
], ids=["make_regression", "fit", "MarkovLanguage", "seed_everything", "mask_tokens"])
def test_seeds_past_64_bits_are_named(call):
    with pytest.raises(ValueError, match=r"'seed' must be an int in \[0, 9223372036854775807\], got seed=" + str(2**64)):
        call(2**64)


def _run(train, model, data):
    if train == "fit":
        return cl.fit(model, data, num_steps=2, device="cpu")
    return cl.lr_range_test(model, data, num_iter=5, device="cpu")


# -- the training lab: settings strings and scheduled changes are checked when they arrive -----

def _lab(**kw):
    import matplotlib
    matplotlib.use("Agg")
    from course_lib.ui.lab import TrainingLab
    kw.setdefault("max_steps", 60)
    kw.setdefault("eval_every", 20)
    return TrainingLab(device="cpu", **kw)


@pytest.fixture
def lab():
    import matplotlib.pyplot as plt
    lab = _lab()
    yield lab
    lab.reset()
    plt.close("all")


@pytest.mark.parametrize("call, error, match", [
    (lambda lab: lab.apply_settings("changes=5:lr=-1"), ValueError, r"'lr' must be a float in \[1e-05, 10\], got lr=-1.0"),
    (lambda lab: lab.schedule(3, lr=-5), ValueError, r"'lr' must be a float in \[1e-05, 10\], got lr=-5"),
    (lambda lab: lab.schedule(3, dropout=float("nan")), ValueError, r"'dropout' must be a float in \[0, 0.9\], got dropout=nan"),
    (lambda lab: lab.schedule(3, lr="0.1"), TypeError, r"'lr' must be a float in \[1e-05, 10\], got lr='0.1' of type str"),
], ids=["settings string", "schedule", "nan", "string"])
def test_bad_scheduled_values_are_refused_when_they_arrive(lab, call, error, match):
    with pytest.raises(error, match=r"TrainingLab\.(apply_settings|schedule)\(\): " + match):
        call(lab)
    assert not lab._scheduled
    assert lab.run().stop_reason == "completed"          # the run itself is untouched


@pytest.mark.parametrize("text, step", [("changes=0:lr=0.1", 0), ("changes=-5:lr=0.1", -5), ("changes=61:lr=0.1", 61)])
def test_a_change_step_must_be_inside_the_run(lab, text, step):
    with pytest.raises(ValueError, match=rf"'step' must be an int in \[1, 60\], got step={step}"):
        lab.apply_settings(text)
    with pytest.raises(ValueError, match=rf"'step' must be an int in \[1, 60\], got step={step}"):
        lab.schedule(step, lr=0.1)


def test_a_change_scheduled_after_a_finished_run_is_applied_to_the_next_run(lab):
    assert lab.run().stop_reason == "completed"
    lab.schedule(3, lr=0.1)
    h = lab.run()
    assert h.lr[2] == 0.01 and h.lr[3] == 0.1              # applied at step 3 of the new run


def test_a_step_the_run_has_passed_is_refused_not_dropped(lab):
    lab.run(30)
    with pytest.raises(ValueError, match=r"TrainingLab\.schedule\(\): 'step' must be an int in \[31, 60\], got step=10"):
        lab.schedule(10, lr=0.1)


@pytest.mark.parametrize("text, error, match", [
    ("width=32.0", TypeError, r"'width' must be an int in \[1, 256\], got width='32.0' of type str"),
    ("lr=abc", TypeError, r"'lr' must be a float in \[1e-05, 10\], got lr='abc' of type str"),
    ("changes=5:lr=abc", TypeError, r"'lr' must be a float in \[1e-05, 10\], got lr='abc' of type str"),
    ("changes=x:lr=0.1", TypeError, r"'step' must be an int >= 1, got step='x' of type str"),
    ("changes=5lr0.1", ValueError, r"each change must read step:name=value, got change='5lr0.1'"),
    ("lr=100", ValueError, r"'lr' must be a float in \[1e-05, 10\], got lr=100.0"),
    ("width=1000", ValueError, r"'width' must be an int in \[1, 256\], got width=1000"),
    ("depth=7", ValueError, r"'depth' must be an int in \[0, 6\], got depth=7"),
    ("lr=0.1&lr=0.2", ValueError, r"each key may appear once in the settings string, got repeated=\['lr'\]"),
    ("a" * 100_000, ValueError, r"'text' must be at most 20000 characters, got len\(text\)=100000"),
    ("lr0.1", ValueError, r"'text' must be key=value pairs joined by '&', got text='lr0.1'"),
    (None, TypeError, r"'text' must be a str, got text=None"),
], ids=["int as float", "not a number", "change not a number", "step not a number", "change without =",
        "lr above slider", "width above slider", "depth above slider", "repeated key", "huge", "no =", "None"])
def test_settings_strings_name_the_key_and_keep_to_the_sliders(lab, text, error, match):
    before = dict(lab.settings)
    with pytest.raises(error, match=r"TrainingLab\.apply_settings\(\): " + match):
        lab.apply_settings(text)
    assert lab.settings == before                           # nothing was reset by a refused string


def test_the_lab_table_has_the_sliders_ranges():
    import ipywidgets as W
    from course_lib.ui.lab_settings import SETTING_RULES
    lab = _lab()
    for name, w in lab.sliders.items():
        rule = SETTING_RULES[name]
        if isinstance(w, W.Dropdown):
            assert tuple(w.options) == rule.choices
        elif isinstance(w, W.FloatLogSlider):
            assert (rule.low, rule.high) == pytest.approx((w.base ** w.min, w.base ** w.max))
        elif isinstance(w, W.SelectionSlider):
            assert (rule.low, rule.high) == (w.options[0][1], w.options[-1][1])
        else:
            assert (rule.low, rule.high) == (w.min, w.max)


def test_an_error_in_the_training_thread_is_shown_and_recorded():
    def boom(value):
        raise RuntimeError("the task could not apply it")
    lab = _lab(live_settings={"strength": (__import__("ipywidgets").FloatSlider(min=0, max=1), boom)})
    lab.schedule(5, strength=0.5)
    h = lab.run()
    assert h.stop_reason == "error" and h.stop_step == 5
    assert h.events[-1] == {"step": 5, "kind": "error", "text": "RuntimeError: the task could not apply it"}
    assert lab.status.value == "stopped by an error at step 5: RuntimeError: the task could not apply it"
    assert isinstance(lab.error, RuntimeError)
    with pytest.raises(ValueError, match=r"'strength' must be a float in \[0, 1\], got strength=2"):
        lab.schedule(5, strength=2)                      # a task's own control keeps to its range too
    assert lab.run().stop_reason == "completed"          # the next run starts clean


# -- huge numbers, schedules that outlive float range, and each fit parameter named ------------

@pytest.mark.parametrize("kw", [{"lr": 1e39}, {"lr": 10**400}, {"weight_decay": 1e39}, {"l1": 1e39}],
                         ids=["lr", "lr int", "weight_decay", "l1"])
def test_huge_rates_get_a_finite_upper_bound(kw):
    (name, value), = kw.items()
    with pytest.raises(ValueError, match=rf"fit\(\): '{name}' must be a float in (\(|\[)0, 1e\+06\], got {name}={re.escape(str(value)[:50])}"):
        cl.fit(cl.MLP(2, 1), (X, y), num_steps=2, device="cpu", **kw)


def test_a_rate_just_under_the_bound_is_a_recorded_divergence():
    assert cl.fit(cl.MLP(2, 1), (X, y), lr=1e6, optimizer="sgd", num_steps=5, device="cpu").diverged


def test_a_schedule_that_returns_a_huge_rate_is_named_with_its_step():
    with pytest.raises(ValueError, match=r"fit\(\): 'lr_schedule' must return a float in \[0, 1e\+06\], "
                                         r"got lr_schedule\(3\)=inf"):
        cl.fit(cl.MLP(2, 1), (X, y), lr_schedule=lambda s: 0.01 if s < 3 else float("inf"), num_steps=5, device="cpu")


def test_triangular2_with_one_step_cycles_halves_to_zero_and_stays():
    sched = cl.cyclic_schedule(1e-3, 1e-2, step_size_up=1, mode="triangular2")
    h = cl.fit(cl.MLP(2, 1), (X, y), lr_schedule=sched, num_steps=2100, device="cpu", eval_every=0)
    assert h.stop_reason == "completed"
    # Closed form (Smith 2017, arXiv 1506.01186): lr = base + (max - base) * max(0, 1 - |x|) / 2**(cycle - 1);
    # with step_size_up = step_size_down = 1 the odd steps are the peaks of cycles (step + 1) / 2.
    for step in (1, 3, 5, 2047, 2049, 2099):
        cycle = (step + 1) // 2
        assert h.lr[step] == pytest.approx(1e-3 + 9e-3 * 2.0 ** -(cycle - 1), rel=1e-12, abs=0)
    assert h.lr[2099] == 1e-3 and h.lr[2098] == 1e-3                      # the amplitude reached 0 and stays


def test_triangular2_agrees_with_torch_cycliclr_while_torch_can_count():
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    ref = torch.optim.lr_scheduler.CyclicLR(opt, 1e-3, 1e-2, step_size_up=3, mode="triangular2", cycle_momentum=False)
    ours = cl.cyclic_schedule(1e-3, 1e-2, step_size_up=3, mode="triangular2")
    for step in range(60):
        assert ours(step) == pytest.approx(ref.get_last_lr()[0], rel=1e-9)
        opt.step()
        ref.step()


_OTHER = cl.MLP(2, 1)


@pytest.mark.parametrize("kw, error, match", [
    ({"optimizer": torch.optim.SGD(_OTHER.parameters(), lr=0.1)}, ValueError,
     r"'optimizer' must update the parameters of 'model' \(build it from model.parameters\(\)\), got optimizer=SGD"),
    ({"early_stopping": 2}, ValueError, r"'early_stopping' needs validation data .*got early_stopping=2, "
                                        r"has_validation_data=False, eval_every=50"),
    ({"loss_fn": "bogus"}, ValueError, r"'loss_fn' must be one of 'mse', .*got loss_fn='bogus'"),
    ({"loss_fn": 3}, TypeError, r"'loss_fn' must be a loss name or function f\(y_hat, y\) -> scalar tensor, got loss_fn=3"),
    ({"val_data": (X,)}, ValueError, r"'val_data' must be \(X_val, y_val\) tensors or a token tensor, "
                                     r"got val_data=\(Tensor\(shape=\(64, 2\)"),
    ({"metrics": {"acc": 1}}, ValueError, r"'metrics' must be a dict name -> f\(y_hat, y\) -> float, got metrics=\{'acc': 1\}"),
], ids=["optimizer of another model", "early_stopping without validation", "loss name", "loss type", "val_data",
        "metrics"])
def test_each_fit_parameter_is_named(kw, error, match):
    with pytest.raises(error, match=r"fit\(\): " + match):
        cl.fit(cl.MLP(2, 1), (X, y), num_steps=2, device="cpu", **kw)


def test_a_model_without_parameters_and_an_empty_iterator_are_named():
    with pytest.raises(ValueError, match=r"fit\(\): 'model' must have trainable parameters, got model=Identity\(\)"):
        cl.fit(torch.nn.Identity(), (X, X), num_steps=2, device="cpu")
    with pytest.raises(ValueError, match=r"fit\(\): 'data' must yield at least one batch, got data=<list_iterator"):
        cl.fit(cl.MLP(2, 1), iter([]), num_steps=2, device="cpu")


def test_lr_range_test_names_the_signature_a_fit_style_loss_needs():
    with pytest.raises(TypeError, match=r"lr_range_test\(\): 'loss_fn' must be .* a function loss_fn\(model, batch\) "
                                        r"-> scalar tensor \(fit's f\(y_hat, y\) becomes lambda model, batch: "
                                        r"f\(model\(batch\[0\]\), batch\[1\]\)\), got loss_fn=<function"):
        cl.lr_range_test(cl.MLP(2, 1), (X, y), loss_fn=lambda y_hat, t: ((y_hat - t) ** 2).mean(), num_iter=5,
                         device="cpu")
    r = cl.lr_range_test(cl.MLP(2, 1), (X, y), loss_fn=lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), num_iter=5,
                         device="cpu")
    assert r.stop_reason in ("completed", "diverged")


@pytest.mark.parametrize("start", [(float("nan"), 0.0), (1e200, 1e200)], ids=["nan", "huge"])
def test_optimizer_path_from_a_start_without_a_finite_loss_diverges_at_step_0(start):
    from course_lib.surfaces import optimizer_path
    path = optimizer_path("quadratic", start=start, num_steps=5)
    assert path.stop_reason == "diverged" and path.stop_step == 0 and path.diverged
    assert path.xy.shape == (0, 2) and path.losses.shape == (0,) and path.num_steps == 0


# -- the scaling fits ----------------------------------------------------------------------------

def test_fit_power_law_needs_distinct_sizes():
    with pytest.raises(ValueError, match=r"fit_power_law\(\): 'x' needs at least 3 distinct values to fit its "
                                         r"exponent, got distinct x=\[5.0\]"):
        cl.fit_power_law([5.0] * 5, [1, 2, 3, 4, 5], n_bootstrap=0)


def test_fit_chinchilla_needs_distinct_token_counts():
    N = np.geomspace(1e6, 1e8, 8)
    with pytest.raises(ValueError, match=r"fit_chinchilla\(\): 'D' needs at least 2 distinct values .*"
                                         r"got distinct D=\[1000000000.0\]"):
        cl.fit_chinchilla(N, np.full(8, 1e9), 2.0 + 50 * N ** -0.3, n_bootstrap=0)


def test_losses_that_rise_with_size_warn_that_the_exponent_sits_on_its_bound():
    with pytest.warns(RuntimeWarning, match=r"fit_power_law\(\): the exponent 'alpha' sits on its bound 0 "
                                            r"\(allowed \[0, 5\]\), got alpha="):
        fit = cl.fit_power_law([1, 2, 4, 8, 16], [1, 2, 3, 4, 5], n_bootstrap=0)
    assert fit.alpha == pytest.approx(0, abs=1e-6)


def test_a_power_law_fit_of_a_real_law_does_not_warn():
    import warnings
    x = np.geomspace(1e3, 1e6, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cl.fit_power_law(x, 2.0 + 50.0 * x ** -0.5, n_bootstrap=0)


def test_a_tiny_huber_delta_is_named():
    with pytest.raises(ValueError, match=r"fit_power_law\(\): 'huber_delta' must be a float >= 1e-08, got huber_delta=1e-200"):
        cl.fit_power_law([1, 2, 4, 8], [4, 3, 2.5, 2.2], huber_delta=1e-200)


def test_a_chinchilla_law_with_a_negative_coefficient_is_named():
    with pytest.raises(ValueError, match=r"ChinchillaFit\(\): 'A' must be a float > 0, got A=-400"):
        cl.scaling.ChinchillaFit(E=1.69, A=-400, B=410.7, alpha=0.34, beta=0.28)


# -- smaller findings ----------------------------------------------------------------------------

@pytest.mark.parametrize("make, call", [
    (lambda: cl.TinyCausalLM(8, d_model=8, n_layers=1, n_heads=2, context=8), lambda m, t: m(t)),
    (lambda: cl.BottleneckLM(8, d_model=8, latent=4), lambda m, t: m(t)),
    (lambda: cl.FactorizedBigram(8, 2), lambda m, t: m(t[0])),
], ids=["TinyCausalLM", "BottleneckLM", "FactorizedBigram"])
@pytest.mark.parametrize("bad", [8, -1])
def test_token_ids_out_of_range_are_named(make, call, bad):
    tokens = torch.zeros(2, 4, dtype=torch.long)
    tokens[0, 1] = bad
    with pytest.raises(ValueError, match=r"\.forward\(\): '(tokens|prev)' must be token ids in \[0, 7\], got "):
        call(make(), tokens)


def test_bottleneck_mlp_checks_out_features():
    from course_lib.bottleneck import BottleneckMLP
    with pytest.raises(ValueError, match=r"BottleneckMLP\(\): 'out_features' must be an int in \[1, 10000000\], "
                                         r"got out_features=0"):
        BottleneckMLP(2, 0)


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall"])
def test_metrics_refuse_labels_past_the_classes_and_score_nan_logits_as_nan(metric):
    fn = getattr(cl.metrics, metric)
    logits = torch.randn(6, 3)
    with pytest.raises(ValueError, match=rf"{metric}\(\): 'y' must hold labels in \[0, 2\], got y.min\(\)=0, y.max\(\)=5"):
        fn(logits, torch.tensor([0, 1, 2, 5, 0, 1]))
    logits[2, 1] = float("nan")
    assert math.isnan(fn(logits, torch.tensor([0, 1, 2, 2, 0, 1])))


def test_markov_language_and_model_sizes_have_upper_bounds():
    with pytest.raises(ValueError, match=r"MarkovLanguage\(\): 'vocab_size' must be an int in \[2, 2048\], got vocab_size=4096"):
        cl.MarkovLanguage(vocab_size=4096)
    with pytest.raises(ValueError, match=r"MLP\(\): 'depth' must be an int in \[0, 256\], got depth=1000000000000"):
        cl.MLP(2, 1, depth=10**12)
    with pytest.raises(ValueError, match=r"TinyCausalLM\(\): 'n_layers' must be an int in \[0, 256\], got n_layers=1000"):
        cl.TinyCausalLM(8, n_layers=1000)
    with pytest.raises(ValueError, match=r"MLP\(\): the model would have 1e\+10 parameters, more than 5e\+08 \(2 GB\) fit "
                                         r"in a laptop's memory, got in_features=2, out_features=1, width=100000, depth=2"):
        cl.MLP(2, 1, width=100_000, depth=2)


@pytest.mark.parametrize("call", [
    lambda v: cl.fit(cl.MLP(2, 1), (X, y), num_steps=2, device="cpu", eval_train=v),
    lambda v: cl.ema([1.0, 2.0], bias_correction=v),
    lambda v: cl.count_params(cl.MLP(2, 1), trainable_only=v),
], ids=["fit eval_train", "ema bias_correction", "count_params trainable_only"])
@pytest.mark.parametrize("value", [1, "yes", None])
def test_bool_flags_take_only_bools(call, value):
    with pytest.raises(TypeError, match=r"\(\): '\w+' must be a bool, got \w+=" + re.escape(repr(value))):
        call(value)
