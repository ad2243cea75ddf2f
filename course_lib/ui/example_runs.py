"""A lesson's example runs, trained once and then read from disk.

A lesson shows finished runs next to its lab (lesson 03: six curves to diagnose, and a plateau).
Training them is most of the time a lesson takes to run from the top: about 20 of 35 seconds for
lesson 03 on a 2-core laptop, and every page of ``make present`` runs the lesson in a new kernel.
The runs are seeded, so their curves never change unless the code, the settings or torch do;
:func:`cached_run` stores each one under a hash of exactly those (``course_lib._run_cache``), and
an old result is simply never found again.

Where: ``$COURSE_CACHE_DIR`` or ``.course_cache/`` in the course folder (delete it to start cold).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .. import _run_cache
from .._validation import check_number, check_type
from ..device import resolve_device
from ..train import History
from .lab import TrainingLab

__all__ = ["cached_run"]

_LIBRARY = Path(__file__).resolve().parents[1]


def _code_hash() -> str:
    """Every source file of course_lib and the torch version: any edit anywhere makes a new key
    (coarser than needed, and never stale)."""
    h = hashlib.sha256(torch.__version__.encode())
    for path in sorted(_LIBRARY.rglob("*.py")):
        h.update(path.relative_to(_LIBRARY).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cached_run(lab: TrainingLab, settings: str, steps: int, *, cache_dir: str | Path | None = None,
               use_cache: bool = True) -> History:
    """Run ``lab`` from ``settings`` for ``steps`` steps, or read that run from disk if it was run before.

    The lab takes the settings either way (its ``baseline`` and data are the run's); after a run read
    from disk its model is untrained. Use it for runs a lesson only shows, not for a lab on the page.

    Args:
        lab (TrainingLab): the lab that trains the run (usually one that is never shown).
        settings (str): a settings string, as :meth:`TrainingLab.apply_settings` takes.
        steps (int): the run's length (``lab.max_steps``), >= 1.
        cache_dir (str | Path | None): the cache folder. Default: ``$COURSE_CACHE_DIR``, else
            ``.course_cache/`` in the course folder.
        use_cache (bool): False trains every time (and stores nothing).

    Returns:
        History: the run, equal to what ``lab.run()`` returns (wall times are those of the first run).

    Example:
        >>> lab = TrainingLab(device="cpu", eval_every=25)
        >>> h = cached_run(lab, "task=regression&lr=0.01", 50, cache_dir="/tmp/course-doc-cache")
        >>> len(h.train_loss)
        50

    Reference: the cache's keys and files are ``course_lib._run_cache``'s, as the scaling sweep's.
    """
    check_type("lab", lab, TrainingLab, where="cached_run")
    check_type("settings", settings, str, where="cached_run")
    check_number("steps", steps, where="cached_run", low=1, integer=True)
    lab.max_steps = steps
    lab.apply_settings(settings)
    if not use_cache:
        return lab.run()
    # The key: what was asked, what the lab made of it (its defaults filled in), and how it trains.
    config = {"lab": type(lab).__name__, "settings": settings, "resolved": lab.settings_string(),
              "steps": int(steps), "eval_every": int(lab.eval_every), "device": str(resolve_device(lab.device, where="cached_run"))}
    folder = Path(cache_dir) if cache_dir is not None else _run_cache.default_cache_dir()
    path = _run_cache.entry_path(folder / "example_runs", config, _code_hash())
    stored = _run_cache.read(path, config)
    if stored is not None:
        return History.from_dict(stored)
    history = lab.run()
    if history.stop_reason != "error":           # an error is shown as it happens, never replayed from disk
        _run_cache.write(path, config, history.to_dict())
    return history
