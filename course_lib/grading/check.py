"""``check()`` and ``check_all()`` inside a notebook: the exercise's tests against the live kernel."""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from .._validation import check_number
from . import assign
from . import plugin as plugin_module
from ._common import PointTotals, course_root, fmt_points, id_key, is_hidden, shown_to_student, summarise
from .batch import exercise_titles, grade_folder
from .child import Limits
from .extract import SubmissionModule, notebooks_in
from .plugin import GradingPlugin, grading_test_dirs, pytest_args

__all__ = ["CheckResult", "check", "check_all"]


@dataclass
class CheckResult(PointTotals):
    """What :func:`check` / :func:`check_all` found: ``points`` and ``max_points`` per exercise, every test."""

    points: dict
    max_points: dict
    tests: list
    report: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.tests) and all(t["passed"] for t in self.tests)

    def __repr__(self) -> str:
        ids = ", ".join(self.max_points) or "nothing"
        return f"<CheckResult {ids}: {fmt_points(self.total)} / {fmt_points(self.max_total)} points>"

    def _ipython_display_(self) -> None:
        """In a notebook, ``check(...)`` as a cell's last line shows the report it printed and nothing else
        (no repr repeating the score)."""


def _run_live(namespace: dict, ids: list, root: Path, timeout: float, hidden: bool) -> list:
    """Run the tests of ``ids`` in this process against ``namespace`` (the notebook's globals)."""
    import pytest

    mod = SubmissionModule("__course_live__")
    mod.__dict__.update(namespace)
    mod.__dict__["__course_hint__"] = " in this notebook's kernel: run the exercise cell (and the setup cells above it)"
    events: list = []
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        timeout = 0  # pytest-timeout's thread method would end the whole kernel; no timeout instead
    # CPU seconds, as in the batch grader (a busy laptop gives the same result), with a wide wall-clock backstop.
    plugin = GradingPlugin(events.append, ids=ids, timeout=timeout, cpu_timeout=True)
    wall = max(4 * timeout, timeout + 20) if timeout else 0
    args = pytest_args(root, wall, grading_test_dirs(root, hidden), ["-p", "no:faulthandler"])
    grading_dir = str(root / "grading") + os.sep
    saved_path, saved_modules = sys.path[:], dict(sys.modules)
    in_main = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")
    saved_alarm = (signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)) if in_main else None
    saved_prof = signal.getsignal(signal.SIGPROF) if in_main else None
    buf = io.StringIO()
    plugin_module.LIVE = mod
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            code = pytest.main(args, plugins=[plugin])
    finally:
        plugin_module.LIVE = None
        sys.path[:] = saved_path
        for name, module in list(sys.modules.items()):  # re-import edited test files next time
            if (getattr(module, "__file__", None) or "").startswith(grading_dir):
                if name in saved_modules:
                    sys.modules[name] = saved_modules[name]  # e.g. a "conftest" that was there before
                else:
                    del sys.modules[name]
        if saved_alarm:  # the kernel's (or an outer pytest's) alarm, as it was
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, saved_prof if saved_prof is not None else signal.SIG_DFL)
            signal.signal(signal.SIGALRM, saved_alarm[0])
            if saved_alarm[1][0]:
                signal.setitimer(signal.ITIMER_REAL, *saved_alarm[1])
    if int(code) in (3, 4):  # internal or usage error (2: interrupted, keep what ran)
        raise RuntimeError(f"running the grading tests failed (pytest exit {int(code)}):\n{buf.getvalue()[-3000:]}")
    return [e for e in events if e["event"] == "result"]


def _check_report(ex_id: str, title: str, tests: list, points: float, max_points: float) -> str:
    head = f"Exercise {ex_id}" + (f" ({title})" if title else "") + f": {fmt_points(points)} / {fmt_points(max_points)} points"
    if not tests:
        return head + "\n  no grading tests found for this exercise"
    lines = [head]
    for t in map(shown_to_student, tests):
        if t["passed"]:
            lines.append(f"  passed  {t['name']} ({fmt_points(t['points'])} pt)")
            continue
        lines.append(f"  FAILED  {t['name']} ({fmt_points(t['points'])} pt)")
        label = "expected vs got" if t["kind"] == "assertion" and not is_hidden(t) else "what happened"
        lines.append(f"          {label}: " + t["message"].replace("\n", "\n          "))
        if t.get("where"):
            lines.append(f"          where: {t['where']}")
        if t.get("hint"):
            lines.append(f"          hint: {t['hint']}")
        for note in t.get("notes", []):
            lines.append(f"          note: {note}")
    return "\n".join(lines)


def _run_folder(folder: Path, ids: list | None, root: Path, timeout: float, hidden: bool) -> tuple[list, list]:
    tmp = Path(tempfile.mkdtemp(prefix="course-check-"))
    try:
        limits = Limits(timeout, None, hidden=hidden, ids=ids)
        res = grade_folder(folder, folder.name, tmp, root, None, limits)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res.tests, res.notes


def _caller_globals(depth: int = 2) -> dict:
    frame = inspect.currentframe()
    for _ in range(depth):
        frame = frame.f_back
    return frame.f_globals


def check(ex_id, folder: str | os.PathLike | None = None, *, timeout: float = 10.0, hidden: bool = False,
          root: str | os.PathLike | None = None, namespace: dict | None = None) -> CheckResult:
    """Run the grading tests of one exercise now and print passed/failed, expected vs got and a hint.

    By default the tests use the functions **as they are in this kernel** (the caller's globals):
    no need to save, and what you ran is what is tested. Re-run a cell after editing it.
    ``folder="."`` instead grades the saved notebook file(s) in that folder in a sandboxed
    subprocess, exactly as the final grading does (save with Ctrl+S first: unsaved edits are not seen).

    Args:
        ex_id (str): the exercise, e.g. ``"3.2"``.
        folder: grade the saved notebooks in this folder instead of the live kernel.
        timeout (float): CPU seconds per test (a wide wall-clock backstop catches code that sleeps). Default: 10.
        hidden (bool): also run the instructors' hidden tests. Default: False.
        root: the course folder (default: :func:`course_root`).
        namespace (dict): the globals to test (default: the caller's).

    Returns:
        CheckResult (its repr is a one-line summary; the report is printed).
    """
    ex_id = str(ex_id)
    check_number("timeout", timeout, where="check", low=0, low_open=True)
    root = course_root(root)
    if folder is None:
        tests = _run_live(namespace if namespace is not None else _caller_globals(), [ex_id], root, timeout, hidden)
        notes, source = [], "the functions in this kernel; re-run a cell after you edit it"
    else:
        tests, notes = _run_folder(Path(folder).resolve(), [ex_id], root, timeout, hidden)
        source = f"the SAVED notebook(s) in {folder}; save the notebook (Ctrl+S) first, unsaved edits are not seen"
    points, max_points = summarise(tests, [ex_id])
    title = exercise_titles(root).get(ex_id, "")
    report = _check_report(ex_id, title, tests, points[ex_id], max_points[ex_id]) + f"\n  (tested: {source})"
    report += "".join(f"\n  note: {n}" for n in notes)
    print(report)
    return CheckResult(points, max_points, tests, report)


def _live_ids(namespace: dict, root: Path, notebook: str | None) -> list:
    infos = []
    for folder in ("exercises", "solutions"):
        for p in sorted((root / folder).glob(assign.MASTER_GLOB)):
            with contextlib.suppress(Exception):
                infos += assign.parse_master(p)[0]
        if infos:
            break
    if notebook is None:
        session = namespace.get("__session__") or os.environ.get("JPY_SESSION_NAME") or ""
        if re.match(r"\d\d_", Path(session).name):
            notebook = Path(session).name[:2]
    if notebook is not None:
        return [e.id for e in infos if e.notebook.name.startswith(str(notebook))]
    here = namespace.get("__name__")

    def defined(name):
        obj = namespace.get(name)
        return callable(obj) and getattr(obj, "__module__", None) == here

    present = {e.notebook.name for e in infos if any(defined(n) for n in e.names)}
    return [e.id for e in infos if e.notebook.name in present]


def check_all(folder: str | os.PathLike | None = None, *, notebook: str | None = None, timeout: float = 10.0,
              hidden: bool = False, root: str | os.PathLike | None = None, namespace: dict | None = None) -> CheckResult:
    """Run the grading tests of every exercise of this notebook and print a score table.

    In the live kernel (default) the notebook is found from the session name when Jupyter gives
    one, else from the exercise functions this kernel defines; ``notebook="03"`` names it.
    ``folder="."`` grades every saved exercise notebook in that folder instead.
    """
    check_number("timeout", timeout, where="check_all", low=0, low_open=True)
    root = course_root(root)
    if folder is None:
        ns = namespace if namespace is not None else _caller_globals()
        ids = _live_ids(ns, root, notebook)
        if not ids:
            print("check_all(): no exercise functions found in this kernel: run the exercise cells first "
                  "(or use check_all(folder='.') to grade the saved notebooks)")
            return CheckResult({}, {}, [], "")
        tests, notes = _run_live(ns, ids, root, timeout, hidden), []
    else:
        folder = Path(folder).resolve()
        index, _ = notebooks_in(folder)
        ids = sorted(index, key=id_key)
        tests, notes = _run_folder(folder, ids, root, timeout, hidden) if ids else ([], [])
    points, max_points = summarise(tests, ids)
    titles = exercise_titles(root)
    width = max([len(titles.get(i, "")) for i in points] + [5])
    lines = [f"{'exercise':<9} {'title':<{width}}  points"]
    lines += [f"{i:<9} {titles.get(i, ''):<{width}}  {fmt_points(points[i])} / {fmt_points(max_points[i])}" for i in points]
    lines.append(f"{'total':<9} {'':<{width}}  {fmt_points(sum(points.values()))} / {fmt_points(sum(max_points.values()))}")
    failing = [t for t in tests if not t["passed"]]
    if failing:
        lines.append(f"\n{len(failing)} test(s) failing; check('<id>') shows what was expected and a hint.")
    lines += [f"note: {n}" for n in notes]
    report = "\n".join(lines)
    print(report)
    return CheckResult(points, max_points, tests, report)
