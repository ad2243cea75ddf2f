"""Tests of course_lib._validation (table tests and exact messages) and of the public API."""

from __future__ import annotations

import importlib
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import course_lib
from course_lib._validation import (InstanceOf, Interval, Options, Satisfies, check_choice, check_number,
                                    check_relation, check_same_shape, check_tensor, check_type, skip_value_checks,
                                    validate_params, value_checks_enabled)

ROOT = Path(__file__).resolve().parents[1]


# ---- check_number ----------------------------------------------------------------------------


@pytest.mark.parametrize("value, kw, expected", [
    (0.1, dict(low=0, low_open=True), 0.1),
    (0, dict(low=0), 0),  # closed bound: the bound itself is allowed
    (1.0, dict(low=0, high=1), 1.0),
    (0.0, dict(low=0, high=1, high_open=True), 0.0),
    (-5, dict(high=0), -5),
    (1e300, dict(), 1e300),
    (3, dict(integer=True, low=1), 3),
    (None, dict(allow_none=True, low=0), None),
    (np.float32(0.5), dict(low=0, high=1), np.float32(0.5)),
    (np.float64(2.0), dict(low=0, low_open=True), 2.0),
    (np.int64(4), dict(integer=True, low=1), 4),
    (np.int32(0), dict(integer=True, low=0), 0),
])
def test_check_number_accepts(value, kw, expected):
    out = check_number("x", value, **kw)
    assert out == expected
    if kw.get("integer"):
        assert type(out) is int  # numpy integers come back as Python ints


@pytest.mark.parametrize("value, kw, allowed", [
    (0, dict(low=0, low_open=True), "a float > 0"),
    (-0.1, dict(low=0), "a float >= 0"),
    (1.0, dict(low=0, high=1, high_open=True), "a float in [0, 1)"),
    (0.0, dict(low=0, high=1, low_open=True), "a float in (0, 1]"),
    (1.5, dict(low=0, high=1), "a float in [0, 1]"),
    (1.5, dict(low=0.0, high=1.0), "a float in [0, 1]"),  # float bounds print short: 0.0 -> 0
    (0.0, dict(low=1e-5), "a float >= 1e-05"),
    (3.0, dict(low=0.5, high=2.5), "a float in [0.5, 2.5]"),
    (5, dict(high=5, high_open=True), "a float < 5"),
    (6, dict(high=5), "a float <= 5"),
    (0, dict(integer=True, low=1), "an int >= 1"),
    (-1, dict(low=0, allow_none=True), "a float >= 0 or None"),
    (math.nan, dict(), "a float"),
    (math.inf, dict(low=0), "a float >= 0"),
    (-math.inf, dict(), "a float"),
    (np.float64("nan"), dict(), "a float"),
])
def test_check_number_rejects_values(value, kw, allowed):
    with pytest.raises(ValueError) as info:
        check_number("x", value, where="f", **kw)
    assert str(info.value) == f"f(): 'x' must be {allowed}, got x={value!r}"


@pytest.mark.parametrize("value, kw, allowed", [
    (True, dict(), "a float"),
    (False, dict(integer=True), "an int"),
    (np.bool_(True), dict(), "a float"),
    ("0.1", dict(low=0), "a float >= 0"),
    (None, dict(), "a float"),
    (2.0, dict(integer=True), "an int"),
    (np.float64(2.0), dict(integer=True), "an int"),
    (1 + 0j, dict(), "a float"),
    (torch.tensor(0.1), dict(), "a float"),
])
def test_check_number_rejects_types(value, kw, allowed):
    with pytest.raises(TypeError, match=re.escape(f"f(): 'x' must be {allowed}, got x=")) as info:
        check_number("x", value, where="f", **kw)
    assert str(info.value).endswith(f" of type {type(value).__name__}")


def test_check_number_exact_message():
    with pytest.raises(ValueError) as info:
        check_number("lr", -0.1, where="fit", low=0, low_open=True)
    assert str(info.value) == "fit(): 'lr' must be a float > 0, got lr=-0.1"


def test_check_number_type_message_and_no_where():
    with pytest.raises(TypeError) as info:
        check_number("lr", "0.1", low=0, low_open=True)
    assert str(info.value) == "'lr' must be a float > 0, got lr='0.1' of type str"


# ---- check_choice ----------------------------------------------------------------------------


@pytest.mark.parametrize("value, choices", [
    ("adam", ("sgd", "adam")),
    ("relu", {"relu": 1, "gelu": 2}),  # a dict offers its keys
    (2, [1, 2, 3]),
])
def test_check_choice_accepts(value, choices):
    assert check_choice("x", value, choices) == value


def test_check_choice_exact_message():
    with pytest.raises(ValueError) as info:
        check_choice("optimizer", "rmsprop", ("sgd", "momentum", "adam", "adamw"), where="fit")
    assert str(info.value) == (
        "fit(): 'optimizer' must be one of 'sgd', 'momentum', 'adam', 'adamw', got optimizer='rmsprop'")


def test_check_choice_accepts_a_generator_of_choices():
    with pytest.raises(ValueError, match=re.escape("'mode' must be one of 'a', 'b', got mode='c'")):
        check_choice("mode", "c", (c for c in "ab"))


# ---- check_type ------------------------------------------------------------------------------


@pytest.mark.parametrize("value, types", [(1, int), (1.0, (int, float)), (torch.zeros(1), torch.Tensor)])
def test_check_type_accepts(value, types):
    assert check_type("x", value, types) is value


@pytest.mark.parametrize("value, types, kw, message", [
    ("a", int, dict(where="f"), "f(): 'x' must be a int, got x='a' of type str"),
    ("a", (int, float), dict(), "'x' must be a int or float, got x='a' of type str"),
    (3, torch.nn.Module, dict(where="fit", expected="torch.nn.Module"),
     "fit(): 'x' must be a torch.nn.Module, got x=3 of type int"),
    (torch.zeros(2, 3), list, dict(),
     "'x' must be a list, got x=Tensor(shape=(2, 3), dtype=torch.float32) of type Tensor"),
])
def test_check_type_messages(value, types, kw, message):
    with pytest.raises(TypeError) as info:
        check_type("x", value, types, **kw)
    assert str(info.value) == message


# ---- check_relation --------------------------------------------------------------------------


def test_check_relation_passes():
    assert check_relation(True, "'a' must be < 'b'", a=2, b=1) is None


@pytest.mark.parametrize("rule, where, values, message", [
    ("'max_lr' must be > 'base_lr'", "cyclic_lr", dict(max_lr=0.01, base_lr=0.1),
     "cyclic_lr(): 'max_lr' must be > 'base_lr', got max_lr=0.01, base_lr=0.1"),
    ("'x' must be short", "", dict(x="abc"), "'x' must be short, got x='abc'"),
    ("'X' must be 2-D", "f", dict(X=torch.zeros(3, dtype=torch.int64)),
     "f(): 'X' must be 2-D, got X=Tensor(shape=(3,), dtype=torch.int64)"),
])
def test_check_relation_messages(rule, where, values, message):
    with pytest.raises(ValueError) as info:
        check_relation(False, rule, where=where, **values)
    assert str(info.value) == message


# ---- check_tensor ----------------------------------------------------------------------------


@pytest.mark.parametrize("value, kw", [
    (torch.zeros(2, 3), dict(ndim=2, floating=True)),
    (torch.zeros(2, 3), dict(ndim=(1, 2))),
    (torch.zeros(4, dtype=torch.long), dict(ndim=[1], floating=False)),
    (torch.zeros(4, dtype=torch.int32), dict(floating=False)),
    (torch.zeros(4, dtype=torch.float64), dict(floating=True)),
    (torch.zeros(4, dtype=torch.bool), dict()),
])
def test_check_tensor_accepts(value, kw):
    assert check_tensor("t", value, **kw) is value


@pytest.mark.parametrize("value, kw, error, message", [
    ([1, 2], dict(where="f", shape_hint="(N, C)"), TypeError,
     "f(): 't' must be a torch.Tensor of shape (N, C), got t of type list"),
    (np.zeros(3), dict(), TypeError, "'t' must be a torch.Tensor, got t of type ndarray"),
    (torch.zeros(3), dict(where="f", ndim=2, shape_hint="(N, C)"), ValueError,
     "f(): 't' must have 2 dimension(s) (N, C), got t.shape=(3,)"),
    (torch.zeros(3), dict(ndim=(2, 3)), ValueError, "'t' must have 2 or 3 dimension(s), got t.shape=(3,)"),
    (torch.zeros(3, dtype=torch.long), dict(where="f", floating=True), TypeError,
     "f(): 't' must be a floating-point tensor, got t.dtype=torch.int64"),
    (torch.zeros(3), dict(floating=False), TypeError, "'t' must be an integer tensor, got t.dtype=torch.float32"),
    (torch.zeros(3, dtype=torch.bool), dict(floating=False), TypeError,
     "'t' must be an integer tensor, got t.dtype=torch.bool"),
    (torch.zeros(3, dtype=torch.complex64), dict(floating=False), TypeError,
     "'t' must be an integer tensor, got t.dtype=torch.complex64"),
])
def test_check_tensor_messages(value, kw, error, message):
    with pytest.raises(error) as info:
        check_tensor("t", value, **kw)
    assert str(info.value) == message


# ---- check_same_shape ------------------------------------------------------------------------


def test_check_same_shape_passes():
    assert check_same_shape("a", torch.zeros(2, 3), "b", torch.ones(2, 3)) is None


@pytest.mark.parametrize("a, b", [(torch.zeros(2, 3), torch.zeros(3, 2)), (torch.zeros(4), torch.zeros(4, 1))])
def test_check_same_shape_message(a, b):
    with pytest.raises(ValueError) as info:
        check_same_shape("y_hat", a, "y", b, where="mse_loss")
    assert str(info.value) == (f"mse_loss(): 'y_hat' and 'y' must have the same shape, "
                               f"got y_hat.shape={tuple(a.shape)}, y.shape={tuple(b.shape)}")


# ---- the declarative table: each constraint gives exactly its check_* call's message -------------

def _message(call):
    try:
        call()
    except (TypeError, ValueError) as e:
        return type(e), str(e)
    return None


@pytest.mark.parametrize("constraint, kw, values", [
    (Interval(float, 0, None, closed="neither"), dict(low=0, low_open=True), [0.1, 0, -1, float("nan"), "x", True]),
    (Interval(float, 0, 1, closed="left"), dict(low=0, high=1, high_open=True), [0.0, 1.0, 0.5, None]),
    (Interval(float, 0, 1, closed="left", allow_none=True), dict(low=0, high=1, high_open=True, allow_none=True),
     [None, 1.0, -0.1]),
    (Interval(float, 0, 1, closed="right"), dict(low=0, high=1, low_open=True), [0.0, 1.0]),
    (Interval(int, 1, None), dict(low=1, integer=True), [1, 0, 2.5, np.int64(3)]),
    (Interval(int, 1, None, allow_none=True), dict(low=1, integer=True, allow_none=True), [None, 0]),
    (Interval(float, None, 0), dict(high=0), [-1.0, 0.5]),
])
def test_interval_gives_check_numbers_message(constraint, kw, values):
    for v in values:
        assert _message(lambda: constraint.check("p", v, where="f")) == \
            _message(lambda: check_number("p", v, where="f", **kw)), v


def test_options_instance_of_and_satisfies_give_their_checks_messages():
    opt = Options(("sgd", "adam"), or_type=torch.optim.Optimizer, expected="optimizer name or torch.optim.Optimizer")
    assert _message(lambda: opt.check("optimizer", "rmsprop", where="fit")) == \
        _message(lambda: check_choice("optimizer", "rmsprop", ("sgd", "adam"), where="fit"))
    assert _message(lambda: opt.check("optimizer", 3, where="fit")) == (
        TypeError, "fit(): 'optimizer' must be a optimizer name or torch.optim.Optimizer, got optimizer=3 of type int")
    assert _message(lambda: Options(("a",)).check("x", 3, where="f")) == (
        ValueError, "f(): 'x' must be one of 'a', got x=3")
    cbs = InstanceOf(type(len), expected="builtin", allow_none=True, each=True)
    assert _message(lambda: cbs.check("on_step", None, where="fit")) is None
    assert _message(lambda: cbs.check("on_step", [len, abs], where="fit")) is None
    assert _message(lambda: cbs.check("on_step", [len, 3], where="fit")) == \
        _message(lambda: check_type("on_step", 3, type(len), where="fit", expected="builtin"))
    rule = Satisfies(callable, "'fn' must be a function", allow_none=True)
    assert _message(lambda: rule.check("fn", None, where="f")) is None
    assert _message(lambda: rule.check("fn", 2, where="f")) == \
        _message(lambda: check_relation(False, "'fn' must be a function", where="f", fn=2))


def test_validate_params_reports_the_first_bad_entry_in_table_order():
    table = {"a": Interval(int, 0, None), "b": Interval(int, 0, None)}
    validate_params(table, {"a": 1, "b": 2, "unlisted": object()}, where="f")
    with pytest.raises(ValueError, match=r"^f\(\): 'a' must be an int >= 0, got a=-1$"):
        validate_params(table, {"a": -1, "b": -2}, where="f")


def test_skip_value_checks_is_scoped_and_restored():
    assert value_checks_enabled()
    with skip_value_checks():
        assert not value_checks_enabled()
    assert value_checks_enabled()
    with pytest.raises(RuntimeError), skip_value_checks():
        raise RuntimeError
    assert value_checks_enabled()


# ---- the public API --------------------------------------------------------------------------


def test_public_api_names_exist():
    assert len(course_lib.__all__) == len(set(course_lib.__all__)), "duplicate names in course_lib.__all__"
    missing = [name for name in course_lib.__all__ if not hasattr(course_lib, name)]
    assert missing == [], f"course_lib.__all__ names that course_lib does not define: {missing}"


# Every public compute module (flat, not _private): new lessons' modules are covered as they arrive.
COMPUTE_MODULES = sorted(p.stem for p in (ROOT / "course_lib").glob("[a-z]*.py"))


def test_the_top_level_api_is_small():
    """The verbs and models a notebook calls, no more (about 40-50 names); the rest is reached
    as ``cl.<module>.<name>``."""
    assert len(course_lib.__all__) <= 50, f"course_lib.__all__ has {len(course_lib.__all__)} names; at most 50"


@pytest.mark.parametrize("module", COMPUTE_MODULES)
def test_compute_modules_are_reachable_and_top_level_names_are_theirs(module):
    mod = importlib.import_module(f"course_lib.{module}")
    assert getattr(course_lib, module) is mod
    for name in set(mod.__all__) & set(course_lib.__all__):
        assert getattr(course_lib, name) is getattr(mod, name)


def test_every_name_is_exported_from_one_place_only():
    """An object is exported by the module that defines it and re-exported at most by course_lib
    itself: ``scaling`` does not re-export ``sweep``'s runs, ``data`` not ``language``'s class.
    (Two modules may each define their own constant of the same name, e.g. ``OPTIMIZERS``.)"""
    owners: dict = {}
    for module in COMPUTE_MODULES:
        mod = importlib.import_module(f"course_lib.{module}")
        for name in mod.__all__:
            owners.setdefault((name, id(getattr(mod, name))), []).append(module)
    twice = {name: m for (name, _), m in owners.items() if len(m) > 1}
    assert twice == {}, f"objects exported by two modules: {twice}"


def test_ui_and_grading_are_imported_lazily():
    code = ("import sys, course_lib as cl; a = 'course_lib.ui' in sys.modules; "
            "ui = cl.ui; print(a, 'course_lib.ui' in sys.modules, ui.setup_notebook.__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "setup_notebook"]


def test_import_does_not_pull_in_plotting_libraries():
    code = "import course_lib, sys; print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False", f"expected 'False False'; got {out.stdout.strip()!r}"


def test_huge_ints_are_a_value_error_not_an_overflow():
    from course_lib._validation import check_number
    with pytest.raises(ValueError, match=r"'seed' must be an int in \[0, 9223372036854775807\]"):
        check_number("seed", 2**1100, where="seed_everything", low=0, high=2**63 - 1, integer=True)
