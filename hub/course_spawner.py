"""The spawners of the course's hub: JupyterHub's local-process spawners with the per-student
limits enforced, not only advertised.

JupyterHub's ``LocalProcessSpawner`` passes ``mem_limit`` and ``cpu_limit`` to the server as
environment variables and enforces neither (only container spawners can). Here each student's
server, and every kernel it starts, gets a data limit per process (``RLIMIT_DATA``: heap and
anonymous maps; torch's shared libraries do not count), ``ceil(cpu_limit)`` cores of its own
(CPU affinity, chosen from the student's name) and a lower CPU priority, so one student's
runaway cell cannot take the machine from the rest of the room.
"""

from __future__ import annotations

import hashlib
import math
import os
import resource

from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner


def _cores_for(name: str, cpu_limit: float | None) -> set[int] | None:
    """``ceil(cpu_limit)`` cores for this student, chosen from their name (stable across restarts,
    spread over the machine). The course's sweeps size their process pools from the CPU affinity,
    so a student's notebook 11 uses its own core(s) instead of every core of the server."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not cpu_limit or not cores:
        return None
    n = min(len(cores), max(1, math.ceil(cpu_limit)))
    start = int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(cores)
    return {cores[(start + k) % len(cores)] for k in range(n)}


def _limited(preexec, mem_bytes: int | None, cores: set[int] | None):
    def run():
        if preexec is not None:
            preexec()
        if mem_bytes:
            resource.setrlimit(resource.RLIMIT_DATA, (mem_bytes, mem_bytes))
        if cores:
            os.sched_setaffinity(0, cores)
        os.nice(5)  # the hub and the proxy stay responsive when every kernel is busy
    return run


class CourseSpawner(LocalProcessSpawner):
    """One system user per student (``useradd`` them first, see the README); homes are theirs alone."""

    def make_preexec_fn(self, name):
        return _limited(super().make_preexec_fn(name), self.mem_limit, _cores_for(name, self.cpu_limit))


class SharedUserSpawner(SimpleLocalProcessSpawner):
    """Every student's server runs as the hub's own user, each in a home folder of its own.

    For the integration test and a quick demo only: HTTP access is per student (the hub refuses
    anyone else), but code in one student's kernel could read another's files.
    """

    def make_preexec_fn(self, name):
        return _limited(super().make_preexec_fn(name), self.mem_limit, _cores_for(name, self.cpu_limit))
