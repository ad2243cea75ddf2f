"""A disk cache for results of deterministic runs, keyed so that it is never stale.

A result is stored under a hash of (1) the run's full configuration, (2) a hash of the code
that produced it, and (3) this file format's version. Change any setting, or edit the code,
and the key changes: an old result is simply never found. Each file also stores a checksum of
its payload, so a result edited by hand is detected and treated as missing (the run is then
repeated and the file rewritten). Files are written atomically, so parallel writers and a
reader never see half a file.

Used by :mod:`course_lib.sweep`; the values are plain JSON (dicts of numbers and strings).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__: list[str] = []  # private module: imported by name inside course_lib only

_FORMAT = 1


def default_cache_dir() -> Path:
    """Where results are cached: ``$COURSE_CACHE_DIR`` if set, else ``.course_cache/`` in the
    course folder (git-ignored; delete it to start cold), else ``~/.cache/loss-scaling``."""
    env = os.environ.get("COURSE_CACHE_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").exists() and os.access(repo, os.W_OK):
        return repo / ".course_cache"
    return Path.home() / ".cache" / "loss-scaling"


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def entry_path(folder: Path, config: dict, code: str) -> Path:
    """The file of one run: ``folder/<hash of config, code and format>.json``."""
    return folder / f"{_digest({'config': config, 'code': code, 'format': _FORMAT})[:32]}.json"


def read(path: Path, config: dict) -> dict | None:
    """The stored values, or None if absent, unreadable, edited by hand, or for another config."""
    try:
        stored = json.loads(path.read_text())
        payload = stored["payload"]
        if stored["checksum"] != _digest(payload) or payload["config"] != config:
            return None
        return payload["values"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(path: Path, config: dict, values: dict) -> None:
    """Store ``values`` (JSON-able) for ``config``, atomically."""
    payload = {"config": config, "values": values}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"payload": payload, "checksum": _digest(payload)}, indent=1))
    os.replace(tmp, path)  # atomic: a reader never sees half a file
