"""Tests of course_lib.device: device choice (with CUDA/MPS faked by monkeypatch), seeding, fast mode."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import torch

from course_lib.device import default_device, fast_mode, resolve_device, seed_everything


def _fake(monkeypatch, *, cuda: bool, mps: bool):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


# ---- default_device --------------------------------------------------------------------------


@pytest.mark.parametrize("cuda, mps, expected", [
    (False, False, "cpu"),
    (True, False, "cuda"),
    (True, True, "cuda"),  # CUDA wins over MPS
    (False, True, "mps"),
])
def test_default_device(monkeypatch, cuda, mps, expected):
    _fake(monkeypatch, cuda=cuda, mps=mps)
    dev = default_device()
    assert isinstance(dev, torch.device) and dev == torch.device(expected)


# ---- resolve_device --------------------------------------------------------------------------


@pytest.mark.parametrize("cuda, mps", [(False, False), (True, False), (False, True)])
def test_resolve_none_is_default_device(monkeypatch, cuda, mps):
    _fake(monkeypatch, cuda=cuda, mps=mps)
    assert resolve_device(None) == default_device()


def test_resolve_none_real_machine():
    assert resolve_device(None) == default_device()


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_resolve_cpu(device):
    assert resolve_device(device) == torch.device("cpu")


@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_resolve_cuda_when_available(monkeypatch, device):
    _fake(monkeypatch, cuda=True, mps=False)
    assert resolve_device(device).type == "cuda"  # only a torch.device: nothing is allocated


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_resolve_cuda_unavailable_message(monkeypatch, device):
    _fake(monkeypatch, cuda=False, mps=False)
    with pytest.raises(ValueError, match=re.escape(
            f"fit(): 'device' must be available on this machine (no CUDA GPU found; use device='cpu' or None), "
            f"got device='{device}'")):
        resolve_device(device, where="fit")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_resolve_cuda_unavailable_real_machine():
    with pytest.raises(ValueError, match="no CUDA GPU found"):
        resolve_device("cuda")


def test_resolve_mps_unavailable_message(monkeypatch):
    _fake(monkeypatch, cuda=False, mps=False)
    with pytest.raises(ValueError, match=re.escape("'device' must be available on this machine (no Apple MPS device")):
        resolve_device("mps")


@pytest.mark.parametrize("device", ["tpu", "banana", ""])
def test_resolve_unknown_device_message(device):
    with pytest.raises(ValueError, match=re.escape(
            f"fit(): 'device' must be one of 'cpu', 'cuda', 'cuda:N', 'mps' or None, got device={device!r}")):
        resolve_device(device, where="fit")


@pytest.mark.parametrize("device", [0, 1.5, ["cpu"]])
def test_resolve_wrong_type_message(device):
    with pytest.raises(TypeError, match=re.escape(
            f"'device' must be a str, torch.device or None, got device={device!r} of type {type(device).__name__}")):
        resolve_device(device)


# ---- seed_everything -------------------------------------------------------------------------


def _draw():
    return torch.rand(3), np.random.rand(3), random.random()


@pytest.mark.parametrize("seed", [0, 1, 2**40])
def test_seed_everything_repeats_all_generators(seed):
    seed_everything(seed)
    t1, n1, r1 = _draw()
    seed_everything(seed)
    t2, n2, r2 = _draw()
    assert torch.equal(t1, t2)
    np.testing.assert_array_equal(n1, n2)
    assert r1 == r2


def test_different_seeds_differ():
    seed_everything(0)
    t1, n1, r1 = _draw()
    seed_everything(1)
    t2, n2, r2 = _draw()
    assert not torch.equal(t1, t2) and not np.array_equal(n1, n2) and r1 != r2


def test_seed_everything_returns_a_seeded_generator():
    gen = seed_everything(7)
    assert isinstance(gen, torch.Generator)
    assert gen.initial_seed() == 7
    torch.testing.assert_close(torch.rand(4, generator=gen), torch.rand(4, generator=torch.Generator().manual_seed(7)))


@pytest.mark.parametrize("seed, error, message", [
    (-1, ValueError, "seed_everything(): 'seed' must be an int in [0, 9223372036854775807], got seed=-1"),
    (1.5, TypeError,
     "seed_everything(): 'seed' must be an int in [0, 9223372036854775807], got seed=1.5 of type float"),
    (0.0, TypeError, "got seed=0.0 of type float"),
    (True, TypeError, "got seed=True of type bool"),
    ("0", TypeError, "got seed='0' of type str"),
])
def test_seed_everything_messages(seed, error, message):
    with pytest.raises(error, match=re.escape(message)):
        seed_everything(seed)


# ---- fast_mode -------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("1", True), ("true", True), ("YES", True), ("on", True), (" True ", True),
    ("", False), ("0", False), ("false", False), ("no", False), ("2", False),
])
def test_fast_mode(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_FAST", value)
    assert fast_mode() is expected


def test_fast_mode_unset(monkeypatch):
    monkeypatch.delenv("COURSE_FAST", raising=False)
    assert fast_mode() is False


@pytest.mark.parametrize("name", ["xpu", "meta"])
def test_device_types_outside_the_course_are_rejected(name):
    with pytest.raises(ValueError, match=rf"'device' must be one of 'cpu', 'cuda', 'cuda:N', 'mps' or None, got device='{name}'"):
        resolve_device(name)
