"""Bad input gets the course's message (the parameter, what is allowed, what came in), never a torch
traceback or a silent wrong run: one test per case that a fuzz of the public API found.

Cases covered so far: data whose dtype or feature count does not fit the model (fit and the LR
range test), the LR range test's data and loss checks (the same as fit's), NaN/inf or empty data,
and seeds past torch's 64-bit range.
"""

from __future__ import annotations

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
