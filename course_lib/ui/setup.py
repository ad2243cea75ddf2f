"""One call that sets up a lesson notebook, so every lesson starts the same way."""

from __future__ import annotations

import os

import torch

from .._loop import import_optimizer_machinery
from .._validation import check_number, check_seed, check_type
from ..device import default_device, fast_mode, seed_everything
from .live import use_live_backend
from .panels import show_page_style
from .plotting import set_course_theme

__all__ = ["setup_notebook"]


def setup_notebook(seed: int = 0, *, threads: int | None = 1, lecture: bool | None = None,
                   verbose: bool = True) -> tuple[bool, torch.device]:
    """Set up a lesson notebook: plot backend, theme, seed, threads, fast mode, device.

    1. Plots: ipympl (``%matplotlib widget``) where it works, so figures redraw in place; else inline.
    2. The course theme (colour-blind-safe palette); ``lecture=True``, or the environment variable
       ``COURSE_LECTURE=1`` (what ``make present`` sets), gives the projector theme.
    3. Python's, NumPy's and torch's generators seeded with ``seed``.
    4. torch's CPU threads: the course's models are tiny, and one thread is as fast as two while
       leaving a core to the browser and the Jupyter server (on a busy 2-core machine two
       threads were about 12x slower). ``threads=None`` keeps torch's default.
    5. Fast mode (``COURSE_FAST=1``: the test suite's quick run) and the best device.
    6. What the first optimizer of a process imports (1.5-1.9 s), now rather than at the first
       Play of a lab, which otherwise showed nothing for about two seconds.

    Args:
        seed (int): the seed for every generator. Default 0.
        threads (int or None): torch's CPU thread count; None leaves it as it is. Default 1.
        lecture (bool or None): the projector theme (``ui.set_course_theme("lecture")``): larger
            text and lines, high contrast, the Okabe-Ito palette. None or False: on exactly when
            ``COURSE_LECTURE=1`` is set. Default None.
        verbose (bool): print what was chosen. Default True.

    Returns:
        (fast, device): whether fast mode is on, and the ``torch.device`` to train on.

    Example:
        >>> fast, device = setup_notebook(seed=0, verbose=False)
        >>> device.type in {"cuda", "mps", "cpu"}
        True
    """
    check_seed(seed, where="setup_notebook")
    check_number("threads", threads, where="setup_notebook", low=1, integer=True, allow_none=True)
    if lecture is not None:
        check_type("lecture", lecture, bool, where="setup_notebook", expected="bool or None")
    lecture = bool(lecture) or os.environ.get("COURSE_LECTURE", "") == "1"
    backend = use_live_backend()
    show_page_style()
    set_course_theme("lecture" if lecture else "default")
    seed_everything(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    fast, device = fast_mode(), default_device()
    import_optimizer_machinery()
    if verbose:
        print(f"device: {device}, plots: {backend}, fast mode: {fast}, seed: {seed}, "
              f"torch threads: {torch.get_num_threads()}" + (", theme: lecture" if lecture else ""))
    return fast, device

