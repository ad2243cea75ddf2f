"""Where tensors live and how runs are made repeatable.

Every training entry point of the course takes ``device=``; ``None`` means
:func:`default_device`, so the same notebook runs on a laptop CPU, an Apple GPU or a CUDA box.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from ._validation import check_seed, check_type

__all__ = ["default_device", "resolve_device", "seed_everything", "fast_mode"]


def default_device() -> torch.device:
    """The best device available: CUDA if present, else Apple's MPS, else the CPU.

    Example:
        >>> default_device().type in {"cuda", "mps", "cpu"}
        True
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None, *, where: str = "") -> torch.device:
    """Turn a ``device=`` argument (``None``, ``"cpu"``, ``"cuda:0"``, a torch.device) into a
    ``torch.device``, with a clear error when the device does not exist on this machine."""
    if device is None:
        return default_device()
    check_type("device", device, (str, torch.device), where=where, expected="str, torch.device or None")
    try:
        dev = torch.device(device)
        if dev.type not in ("cpu", "cuda", "mps"):  # torch knows more (xpu, meta...): the course doesn't
            raise RuntimeError
    except RuntimeError:
        raise ValueError(
            f"{where + '(): ' if where else ''}'device' must be one of 'cpu', 'cuda', 'cuda:N', 'mps' "
            f"or None, got device={device!r}"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{where + '(): ' if where else ''}'device' must be available on this machine "
            f"(no CUDA GPU found; use device='cpu' or None), got device={device!r}"
        )
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(
            f"{where + '(): ' if where else ''}'device' must be available on this machine "
            f"(no Apple MPS device found; use device='cpu' or None), got device={device!r}"
        )
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators (all devices) with ``seed``.

    Returns a fresh CPU ``torch.Generator`` seeded the same way, for code that prefers an
    explicit generator. Each notebook calls this once at the top.

    Example:
        >>> _ = seed_everything(0); a = torch.rand(2)
        >>> _ = seed_everything(0); torch.equal(a, torch.rand(2))
        True
    """
    seed = check_seed(seed, where="seed_everything")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators
    return torch.Generator().manual_seed(seed)


def fast_mode() -> bool:
    """True when ``COURSE_FAST`` is set to a true value (``1``, ``true``, ``yes``).

    The one switch for every notebook: the test suite sets ``COURSE_FAST=1`` so each notebook
    runs in well under a minute; in class it is unset and the notebooks run at full size.
    """
    return os.environ.get("COURSE_FAST", "").strip().lower() in {"1", "true", "yes", "on"}
