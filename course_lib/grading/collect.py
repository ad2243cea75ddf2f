"""Collect the exercise notebooks of a class from a JupyterHub: one submission folder per student.

On the course's hub every student has their own copy of the course, pulled by nbgitpuller into
``<home>/loss-scaling``. The student names come from the hub itself (its REST API, with an admin
token), so nobody types a class list; each student's exercise notebooks are copied (never moved:
student files are never modified) into ``<out>/<student>/``, which ``make grade`` then grades.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

from . import assign

__all__ = ["hub_students", "collect_submissions"]


def hub_students(hub_url: str, token: str) -> list[str]:
    """The names of the hub's users who are not admins (the students), sorted."""
    req = urllib.request.Request(hub_url.rstrip("/") + "/hub/api/users", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        users = json.loads(r.read())
    return sorted(u["name"] for u in users if not u.get("admin"))


def collect_submissions(students: list[str], out: str | os.PathLike, *, homes: str = "/home/{username}",
                        course_dir: str = "loss-scaling") -> dict[str, list[str]]:
    """Copy each student's exercise notebooks into ``out/<student>/``.

    Args:
        students (list of str): user names.
        out (path): the submissions folder to fill (created; a student's old folder is replaced).
        homes (str): where a student's home is, with ``{username}``. Default ``/home/{username}``.
        course_dir (str): the course's folder inside a home (nbgitpuller's target). Default ``loss-scaling``.

    Returns:
        dict: student -> the notebook names copied (an empty list: nothing to grade, a zero row).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[str]] = {}
    for name in students:
        src = Path(homes.format(username=name)) / course_dir / "exercises"
        dst = out / name
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True)
        found[name] = []
        for nb in sorted(src.glob(assign.MASTER_GLOB)) if src.is_dir() else []:
            shutil.copy2(nb, dst / nb.name)  # copy: the student's file stays as it is
            found[name].append(nb.name)
    return found
