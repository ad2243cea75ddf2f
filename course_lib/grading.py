"""Autograding: extract the graded cells of a notebook, run the grading tests, write a gradebook.

Three ways in, one engine (pytest with the course's grading plugin):

* ``check("3.2")`` / ``check_all()`` inside a notebook: run the exercise's tests on the spot
  against the functions **as they are in the live kernel** (no saving needed) and print
  passed/failed with expected vs got and a hint. ``check("3.2", folder=".")`` grades the
  *saved* notebook instead, exactly like the batch grader does.
* ``grade(submissions_dir, out_csv, feedback_dir)`` (``make grade SUBMISSIONS=dir``,
  ``python -m course_lib.grading grade dir``): one sandboxed subprocess per submission, in
  parallel, a CSV gradebook and one feedback file per student.
* ``pytest grading/tests`` by hand: ``COURSE_SUBMISSION=exercises pytest grading/tests``.

Grading never runs a whole notebook: only the cells tagged ``setup`` and ``exercise`` are
executed (in a fresh namespace for every test, so state cannot leak from one test to the next),
and plotting/widget modules are replaced by inert stubs in the grading process, so nothing can
wait for a browser. This module itself never imports matplotlib or ipywidgets.

Robustness of the batch grader (what nbgrader's and otter's users asked for):

1. Every test runs under a timeout (pytest-timeout, signal method); a parent-side watchdog kills
   a test that ignores it, and the submission is resumed after that test: an infinite loop costs
   that one test. A cell that loops when it is defined is skipped after its first timeout.
2. A submission that crashes its process (segfault, ``os._exit``, out of memory) is resumed
   after the test (or cell) that crashed it; the row is always written, zeros with the reason.
3. Limits per process (``resource.setrlimit``): data segment (heap and anonymous maps, so
   torch's shared libraries do not count) ~1.5 GB, file size, CPU time, no core files;
   stdout/stderr go to files capped by the file-size limit and are only read back truncated.
4. The process works on a temporary copy of the notebooks; an audit hook refuses writes,
   deletes, renames and process starts outside its scratch folder; every student file is hashed
   (sha256) before and after, and :class:`SubmissionsModifiedError` is raised if anything changed.

Example:
    >>> sorted(k for k in DEFAULT_HINTS)[:3]
    ['crash', 'definition', 'exit']
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import csv
import hashlib
import importlib.abc
import importlib.util
import inspect
import io
import json
import linecache
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pluggy import HookimplMarker

from . import assign
from ._validation import check_number, check_type

__all__ = ["DEFAULT_HINTS", "CheckResult", "GradingPlugin", "LoadedExercise", "SubmissionModule",
           "SubmissionResult", "SubmissionsModifiedError", "check", "check_all", "collect_tests",
           "course_root", "exercise_loader", "grade", "isolated_torch", "load_exercises", "main"]

@contextlib.contextmanager
def isolated_torch():
    """For grading tests that train: one CPU thread (the setting their bounds were calibrated
    with) and a forked torch RNG; the caller's thread count and random state come back after.
    ``check()`` runs tests inside the student's kernel, so a test must not change either."""
    import torch  # here, not at the top: the batch grader's parent process never needs torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)


hookimpl = HookimplMarker("pytest")
_real_exit = os._exit  # the grading child ends with this even after student code patched things
_HERE = Path(__file__).resolve().parent

DEFAULT_HINTS = {
    "not_implemented": "replace the line `raise NotImplementedError(...)` with your solution, run the cell, "
                       "then check again",
    "timeout": "it did not finish in time: look for a loop that never ends (or work that grows far too fast)",
    "definition": "the cell itself fails when it runs: run it in the notebook and fix that error first",
    "exit": "remove the call to sys.exit()/exit()/quit(): a function returns its result instead",
    "memory": "it tried to allocate more memory than grading allows (about 1.5 GB)",
    "missing": "keep the exercise cell as it came (its tag and metadata tell the grader which exercise it is)",
    "crash": "the grading process died in this test (a crash, os._exit, or far too much memory)",
    "undefined": "run the exercise cell (and the setup cells above it) before checking",
}


def course_root(root: str | os.PathLike | None = None) -> Path:
    """The course folder holding ``grading/`` (argument, else ``$COURSE_ROOT``, else where
    course_lib lives, else the first parent of the current folder that has ``grading/tests``)."""
    if root is not None:
        return Path(root).resolve()
    if os.environ.get("COURSE_ROOT"):
        return Path(os.environ["COURSE_ROOT"]).resolve()
    if (_HERE.parent / "grading").is_dir():
        return _HERE.parent
    for d in [Path.cwd(), *Path.cwd().parents]:
        if (d / "grading" / "tests").is_dir():
            return d
    raise FileNotFoundError("cannot find the course's grading/ folder; pass root= or set COURSE_ROOT")


def _id_key(ex_id: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in str(ex_id).split("."))


def _clip(text: str, limit: int = 700, lines: int = 8) -> str:
    text = "\n".join(str(text).strip().splitlines()[:lines])
    return text if len(text) <= limit else text[: limit - 3] + "..."


# =============================================================================================
# 1. Extraction: the setup and graded cells of a notebook, executed in a fresh namespace
# =============================================================================================


class SubmissionModule(types.ModuleType):
    """What ``exercise("3.2")`` returns: a module holding what the notebook's cells defined.

    A missing name raises ``AttributeError`` that says where it should have come from.
    """

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        hint = self.__dict__.get("__course_hint__", "")
        raise AttributeError(f"{name!r} is not defined{hint}")


class _CellTimeout(BaseException):
    """A cell ran past its time limit while being defined (BaseException: student code's
    ``except Exception`` cannot swallow it)."""


@dataclass
class _Cell:
    index: int
    kind: str  # "setup" or "exercise"
    ex_id: str | None
    title: str
    filename: str
    source: str
    code: types.CodeType | None
    error: str | None


@dataclass
class _Notebook:
    path: Path
    cells: list
    titles: dict  # ex_id -> title
    error: str | None = None


@dataclass
class LoadedExercise:
    """One exercise of a submission after its notebook's cells ran.

    Attributes:
        id, title: the exercise.
        notebook: the notebook it came from.
        namespace: the module its notebook's cells defined (also when ``error`` is set).
        error: what went wrong while its cell ran (``None`` when it ran cleanly).
        notes: problems of other cells (setup cells) that may explain a failure.
    """

    id: str
    title: str
    notebook: Path
    namespace: SubmissionModule
    error: str | None = None
    notes: list = field(default_factory=list)


_PARSED: dict = {}        # path -> ((mtime_ns, size), _Notebook)
_SKIPPED_CELLS: dict = {}  # (path, cell index, source) -> why it is not run again (timed out / crashed)
_FILE_LABELS: dict = {}    # code filename -> "your cell of Exercise 3.2 (nb.ipynb, cell 7)"
_EVENT_SINK: Callable | None = None  # the grading child reports cell starts, to find crashing cells


def _parse(path: Path) -> _Notebook:
    path = Path(path)
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError as e:
        return _Notebook(path, [], {}, f"cannot read {path.name}: {e}")
    hit = _PARSED.get(path)
    if hit and hit[0] == stamp:
        return hit[1]
    try:
        result = _parse_cells(path, assign.read_notebook(path)["cells"])
    except Exception as e:  # broken JSON, wrong structure: the exercises of this notebook all fail
        result = _Notebook(path, [], {}, f"{path.name} is not a readable notebook ({type(e).__name__}: {e})")
    _PARSED[path] = (stamp, result)
    return result


def _parse_cells(path: Path, cells: list) -> _Notebook:
    if not isinstance(cells, list):
        raise TypeError(f"'cells' is a {type(cells).__name__}, not a list")
    parsed, titles = [], {}
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        tags = assign._tags(cell)
        if "exercise" not in tags and "setup" not in tags:
            continue
        kind = "exercise" if "exercise" in tags else "setup"
        ex_id, title = assign._exercise_meta(cell) if kind == "exercise" else (None, None)
        source = assign._source(cell)
        source = source if isinstance(source, str) else ""
        label = f"Exercise {ex_id}" if ex_id else "setup cell"
        filename = f"<{path.name}, cell {index + 1}, {label}>"
        _FILE_LABELS[filename] = f"your cell of {label} ({path.name}, cell {index + 1})"
        text = assign.strip_magics(source)
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)  # tracebacks show lines
        code, error = None, None
        try:
            code = compile(text, filename, "exec")
        except (SyntaxError, ValueError) as e:
            line = f" (line {e.lineno})" if getattr(e, "lineno", None) else ""
            error = f"{type(e).__name__}: {getattr(e, 'msg', e)}{line}"
        if ex_id:
            titles[ex_id] = title if isinstance(title, str) else ""
        parsed.append(_Cell(index, kind, ex_id, titles.get(ex_id, ""), filename, source, code, error))
    return _Notebook(path, parsed, titles)


def _notebooks(folder: str | os.PathLike) -> tuple[dict, list]:
    """``{exercise id: notebook}`` for every notebook under ``folder``, and all notebooks.

    A student may keep a renamed copy next to the original: the canonical name
    (``NN_*_exercises.ipynb``) wins, then the shallowest path, then the name.
    """
    folder = Path(folder)
    paths = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != ".ipynb_checkpoints" and not d.startswith("."))
        paths += [Path(dirpath) / f for f in filenames if f.endswith(".ipynb")]

    def rank(p: Path):
        return (not p.match(assign.MASTER_GLOB), len(p.relative_to(folder).parts), p.name)

    nbs = [_parse(p) for p in sorted(paths, key=rank)]
    index = {}
    for nb in nbs:
        for ex_id in nb.titles:
            index.setdefault(ex_id, nb)
    return index, nbs


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    """Raise _CellTimeout after ``seconds`` (main thread only). An outer SIGALRM timer (pytest-timeout's)
    that would fire first is left alone; one that fires later is re-armed afterwards."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= seconds:
        yield
        return

    def on_alarm(signum, frame):
        raise _CellTimeout(seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer_left:
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - start), 1e-3))


def _is_test_outcome(e: BaseException) -> bool:
    """pytest's own control-flow exceptions (a test timeout is one): never swallowed."""
    outcomes = sys.modules.get("_pytest.outcomes")
    return bool(outcomes) and isinstance(e, outcomes.OutcomeException)


def _student_frame(tb) -> str:
    """Where in the student's code an exception came from: 'your cell of ..., line 4: `code`'."""
    found = ""
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if fn in _FILE_LABELS or "ipykernel_" in fn or fn.startswith("<ipython-input"):
            label = _FILE_LABELS.get(fn, "your notebook cell")
            line = linecache.getline(fn, tb.tb_lineno).strip()
            found = f"{label}, line {tb.tb_lineno}" + (f": `{_clip(line, 160, 1)}`" if line else "")
        tb = tb.tb_next
    return found


def _describe(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        text = f"called sys.exit()/exit() (SystemExit: {e.code!r})"
    else:
        text = f"{type(e).__name__}: {_clip(str(e), 300, 3)}"
    where = _student_frame(e.__traceback__)
    return text + (f" [{where}]" if where else "")


def _stub_names(mod) -> list:
    """Names of the plotting/widget stubs a namespace holds (``plt`` -> ``matplotlib.pyplot``)."""
    return [v.__name__ if isinstance(v, _InertModule) else v._name
            for v in list(vars(mod).values()) if isinstance(v, (_InertModule, _Inert))]


def _execute(nb: _Notebook, cell_timeout: float | None = 5.0) -> tuple[SubmissionModule, dict, list]:
    """Run the setup and graded cells of ``nb`` in order, each isolated, in a fresh module.

    Returns:
        the module, ``{exercise id: error}`` for graded cells that raised (or timed out) while
        being defined, and notes about setup cells that did.
    """
    name = "submission_" + re.sub(r"\W", "_", nb.path.stem)
    mod = SubmissionModule(name)
    mod.__dict__["__builtins__"] = builtins
    mod.__dict__["__course_hint__"] = f" by the notebook {nb.path.name} (the exercise cells should define it)"
    sys.modules[name] = mod  # pickling, dataclasses and typing look the module up by name
    errors, notes = {}, []
    for cell in nb.cells:
        key = (str(nb.path), cell.index, cell.source)
        stubs_before = _stub_names(mod)
        if cell.code is None:
            msg = cell.error
        elif key in _SKIPPED_CELLS:
            msg = _SKIPPED_CELLS[key]
        else:
            msg = None
            if _EVENT_SINK:
                _EVENT_SINK({"event": "cell", "notebook": str(nb.path), "index": cell.index})
            try:
                with _time_limit(cell_timeout):
                    exec(cell.code, mod.__dict__)
            except _CellTimeout:
                msg = (f"did not finish within {cell_timeout:g} s when the cell ran (a loop at the top level of "
                       f"the cell, or a call to a function that loops?); the grader skips this cell from now on")
                _SKIPPED_CELLS[key] = msg
            except BaseException as e:  # noqa: B036 - sys.exit, KeyboardInterrupt: all are the cell's problem
                if _is_test_outcome(e):
                    raise
                msg = _describe(e)
            if _EVENT_SINK:
                _EVENT_SINK({"event": "cell_done"})
        stubs = [n for n in _stub_names(mod) if n not in stubs_before]
        if stubs:
            notes.append(f"cell {cell.index + 1} of {nb.path.name} imports {', '.join(stubs)}: plotting and widgets "
                         f"are switched off (stubs) while grading")
        if cell.kind == "exercise" and cell.ex_id:
            if msg:
                errors[cell.ex_id] = f"cell {cell.index + 1}: {msg}"
            else:
                errors.pop(cell.ex_id, None)  # a later copy of the cell that runs cleanly wins
        elif msg:
            notes.append(f"setup cell {cell.index + 1} of {nb.path.name} failed: {msg}")
    return mod, errors, notes


def load_exercises(folder: str | os.PathLike = "solutions", *, cell_timeout: float | None = 5.0) -> dict:
    """Every exercise of the notebooks in ``folder``, its notebook's cells executed once.

    Only cells tagged ``setup`` and ``exercise`` run, in notebook order, each in its own
    ``try`` (with ``SystemExit`` caught and a time limit per cell), in one fresh module per
    notebook: a cell that raises costs only its own exercise.

    Returns:
        ``{exercise id: LoadedExercise}`` sorted by id.

    Example:
        >>> import tempfile, json, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> cells = [{"cell_type": "code", "metadata": {"tags": ["exercise"], "exercise": {"id": "1.1", "title": "t"}},
        ...           "source": "def f(x):\\n    return 2 * x\\n", "outputs": [], "execution_count": None},
        ...          {"cell_type": "code", "metadata": {"tags": ["exercise"], "exercise": {"id": "1.2", "title": "t"}},
        ...           "source": "import sys\\nsys.exit(1)\\n", "outputs": [], "execution_count": None}]
        >>> _ = (d / "01_demo_exercises.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}}))
        >>> ex = load_exercises(d)
        >>> ex["1.1"].namespace.f(3), ex["1.1"].error
        (6, None)
        >>> ex["1.2"].error
        'cell 2: called sys.exit()/exit() (SystemExit: 1) [your cell of Exercise 1.2 (01_demo_exercises.ipynb, cell 2), line 2: `sys.exit(1)`]'
    """
    index, nbs = _notebooks(folder)
    out = {}
    for nb in nbs:
        if not any(index.get(i) is nb for i in nb.titles):
            continue  # no exercises, or a duplicate copy that lost to the canonical notebook
        mod, errors, notes = _execute(nb, cell_timeout)
        for ex_id, title in nb.titles.items():
            if index[ex_id] is nb:
                out[ex_id] = LoadedExercise(ex_id, title, nb.path, mod, errors.get(ex_id), list(notes))
    return dict(sorted(out.items(), key=lambda kv: _id_key(kv[0])))


# =============================================================================================
# 2. The pytest pieces: the `exercise` fixture (used by grading/conftest.py) and the plugin
# =============================================================================================

_LIVE: SubmissionModule | None = None  # set by check() while it runs tests on a live kernel


def _cell_timeout() -> float:
    try:
        return float(os.environ.get("COURSE_CELL_TIMEOUT", "5"))
    except ValueError:
        return 5.0


def exercise_loader(request, default_folder: str | os.PathLike | None = None) -> Callable[[str], SubmissionModule]:
    """The value of the ``exercise`` fixture: ``exercise("3.2")`` -> the student's namespace.

    The namespace is built anew for every call (setup and graded cells of the notebook that holds
    the exercise), so no test sees what another test changed. The notebook folder is
    ``$COURSE_SUBMISSION``, else ``default_folder``; inside :func:`check` it is the live kernel.
    A test of an exercise whose cell failed to run fails at once with what went wrong.
    """
    import pytest

    def get(ex_id) -> SubmissionModule:
        ex_id = str(ex_id)
        if _LIVE is not None:
            return _LIVE
        folder = Path(os.environ.get("COURSE_SUBMISSION") or default_folder or "solutions")
        index, nbs = _notebooks(folder)
        nb = index.get(ex_id)
        if nb is None:
            broken = "; ".join(n.error for n in nbs if n.error)
            pytest.fail(f"Exercise {ex_id}: no cell tagged as Exercise {ex_id} in the notebooks in {folder}"
                        + (f" ({broken})" if broken else "")
                        + ". Was the notebook renamed away, or the cell's tag lost?", pytrace=False)
        mod, errors, notes = _execute(nb, _cell_timeout())
        for note in notes:
            request.node.user_properties.append(("course_note", note))
        if ex_id in errors:
            pytest.fail(f"Exercise {ex_id}: its cell failed when it ran, before any test: {errors[ex_id]}",
                        pytrace=False)
        return mod

    return get


def _first_paragraph(doc: str | None) -> str:
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()) if doc else ""


def _classify(e: BaseException, timeout: float | None) -> tuple[str, str]:
    """(kind, message) for an exception that failed a grading test."""
    text = str(e)
    name = type(e).__name__
    if isinstance(e, NotImplementedError):
        return "not_implemented", f"not implemented yet ({name}: {_clip(text, 200, 1)})"
    if name == "Failed" and text.startswith("Timeout"):
        return "timeout", f"did not finish within {timeout:g} s" if timeout else "timed out"
    if name == "Failed" and "failed when it ran, before any test" in text:
        return "definition", _clip(text)
    if name == "Failed" and "no cell tagged as Exercise" in text:
        return "missing", _clip(text)
    if isinstance(e, AssertionError):
        custom = text.split("\nassert ")[0] if "\nassert " in text else text
        return "assertion", _clip(custom or "assertion failed")
    if isinstance(e, SystemExit):
        return "exit", f"your code called sys.exit()/exit() (SystemExit: {e.code!r})"
    if isinstance(e, MemoryError) or "can't allocate memory" in text:
        return "memory", f"{name}: out of memory ({_clip(text, 200, 1)})"
    if isinstance(e, (NameError, AttributeError)) and "is not defined" in text:
        return "undefined", f"{name}: {_clip(text, 300, 2)}"
    if name == "Failed":
        return "failed", _clip(text)
    return "error", f"{name}: {_clip(text, 400, 4)}"


class _BoundedOutput(io.TextIOBase):
    """sys.stdout/sys.stderr during a grading test: counts everything, keeps nothing past ``limit``
    characters (pytest's capture would keep every megabyte a looping print makes, in every report)."""

    encoding, errors = "utf-8", "replace"

    def __init__(self, limit: int = 4096):
        super().__init__()
        self.limit, self.size, self.kept = limit, 0, []

    def writable(self) -> bool:
        return True

    def write(self, s) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        room = self.limit - sum(map(len, self.kept))
        if room > 0:
            self.kept.append(s[:room])
        self.size += len(s)
        return len(s)


class GradingPlugin:
    """pytest plugin that validates the markers, selects tests and reports each test's result.

    Every grading test needs ``@pytest.mark.exercise("3.2")``; ``@pytest.mark.points(n)`` is
    optional (default 1). Each event (``catalog``, ``start``, ``result``, ``end``) goes to
    ``sink(dict)``: the grading child writes them as JSON lines, so a parent still knows every
    finished test when the child dies.

    Args:
        sink: callable receiving each event dict.
        ids: run only the tests of these exercise ids (``None``: all).
        skip: node ids not to run (already graded before a restart).
        timeout: the per-test timeout, for messages.
        contain_interrupts: a ``KeyboardInterrupt`` raised by a test fails that test instead of
            ending the session (the grading child has no keyboard: only student code raises it).
    """

    def __init__(self, sink: Callable[[dict], None], *, ids=None, skip=(), timeout: float | None = None,
                 contain_interrupts: bool = False):
        self.sink, self.timeout, self.contain_interrupts = sink, timeout, contain_interrupts
        self.ids = {str(i) for i in ids} if ids is not None else None
        self.skip = set(skip)
        self.meta: dict = {}
        self._state: dict = {}

    @hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        import pytest
        problems, keep, drop = [], [], []
        for item in items:
            ex = item.get_closest_marker("exercise")
            pts = item.get_closest_marker("points")
            ex_id = str(ex.args[0]) if ex is not None and ex.args else None
            points = pts.args[0] if pts is not None and pts.args else 1
            if ex_id is None:
                problems.append(f"{item.nodeid}: no @pytest.mark.exercise('N.M') marker")
                continue
            if isinstance(points, bool) or not isinstance(points, (int, float)) or not (0 < points < math.inf):
                problems.append(f"{item.nodeid}: @pytest.mark.points needs a number > 0, got {points!r}")
                continue
            self.meta[item.nodeid] = {"nodeid": item.nodeid, "name": item.name, "exercise": ex_id,
                                      "points": float(points),
                                      "hint": _first_paragraph(getattr(getattr(item, "obj", None), "__doc__", None))}
            (keep if (self.ids is None or ex_id in self.ids) and item.nodeid not in self.skip else drop).append(item)
        if problems:
            raise pytest.UsageError("grading tests with bad markers:\n" + "\n".join(problems))
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        self.sink({"event": "catalog", "tests": [self.meta[i.nodeid] for i in keep]})

    @hookimpl
    def pytest_runtest_logstart(self, nodeid, location):
        out = _BoundedOutput()
        self._state[nodeid] = {"outcome": "passed", "kind": "", "message": "", "where": "", "notes": [],
                               "called": False, "t0": time.perf_counter(), "out": out,
                               "saved": (sys.stdout, sys.stderr)}
        self.sink({"event": "start", "nodeid": nodeid})
        sys.stdout = sys.stderr = out  # what the student's code prints, bounded

    @hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        try:
            return (yield)
        except KeyboardInterrupt as e:
            if not self.contain_interrupts:
                raise
            raise RuntimeError("your code raised KeyboardInterrupt").with_traceback(e.__traceback__) from None

    @hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        st = self._state.get(item.nodeid)
        if st is not None and call.excinfo is not None and report.failed and not st["message"]:
            e = call.excinfo.value
            st["kind"], st["message"] = _classify(e, self.timeout)
            st["where"] = _student_frame(call.excinfo.tb)
        return report

    @hookimpl
    def pytest_runtest_logreport(self, report):
        st = self._state.get(report.nodeid)
        if st is None:
            return
        if report.when == "call":
            st["called"] = True
        if report.failed:
            st["outcome"] = "failed"
            if not st["message"]:
                st["kind"], st["message"] = "error", _clip(report.longreprtext)
        elif report.skipped and st["outcome"] == "passed":
            st["outcome"] = "skipped"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            st["kind"], st["message"] = "skipped", _clip(f"skipped: {reason}")
        for key, value in report.user_properties:
            if key == "course_note" and value not in st["notes"]:
                st["notes"].append(value)

    @hookimpl
    def pytest_runtest_logfinish(self, nodeid, location):
        st = self._state.pop(nodeid, None)
        if st is None:
            return
        sys.stdout, sys.stderr = st.pop("saved")
        printed = st.pop("out").size
        if printed > 2**20:
            st["notes"].append(f"the code printed {printed / 2**20:.1f} MB during this test (not kept; printing "
                               f"that much slows everything down)")
        meta = self.meta.get(nodeid, {"nodeid": nodeid, "name": nodeid, "exercise": "?", "points": 1.0, "hint": ""})
        passed = st["outcome"] == "passed" and st["called"]
        result = {**meta, "event": "result", "passed": passed, "outcome": "passed" if passed else st["outcome"],
                  "kind": "" if passed else st["kind"], "message": "" if passed else st["message"],
                  "where": "" if passed else st["where"], "notes": st["notes"],
                  "duration": round(time.perf_counter() - st["t0"], 3)}
        if passed:
            result["hint"] = ""
        elif result["kind"] in DEFAULT_HINTS:  # the test's docstring is the hint for wrong answers
            result["hint"] = DEFAULT_HINTS[result["kind"]]
        self.sink(result)

    @hookimpl
    def pytest_sessionfinish(self, session, exitstatus):
        self.sink({"event": "end", "exitstatus": int(exitstatus)})


def _test_dirs(root: Path, hidden: bool) -> list[Path]:
    dirs = [root / "grading" / "tests"] + ([root / "grading" / "hidden"] if hidden else [])
    return [d for d in dirs if d.is_dir()]


def _pytest_args(root: Path, timeout: float | None, tests: list[Path], extra=()) -> list[str]:
    grading_dir = root / "grading"
    ini = grading_dir / "pytest.ini"
    args = (["-c", str(ini)] if ini.is_file() else []) + [
        "--rootdir", str(grading_dir), "-q", "--no-header", "-p", "no:cacheprovider", "-p", "no:xdist",
        "--tb=no", "-rN", "--capture=no", "-W", "ignore",
        f"--timeout={timeout or 0:g}", "--timeout-method=signal", "--timeout-disable-debugger-detection",
    ]
    return args + list(extra) + [str(t) for t in tests]


# =============================================================================================
# 3. The grading child: limits, sandbox, stubs; runs pytest on one submission
# =============================================================================================


class _Inert:
    """Stands in for anything from a plotting/widget module while grading: calls do nothing."""

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert(f"{self._name}.{name}")

    def __call__(self, *args, **kwargs):
        return _Inert(f"{self._name}()")

    def __iter__(self):
        raise TypeError(f"{self._name} is a stub while grading (plotting and widgets are switched off); "
                        f"keep plotting out of exercise and setup cells")

    def __getitem__(self, key):
        return _Inert(f"{self._name}[...]")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __bool__(self):
        return False

    def __repr__(self):
        return f"<grading stub {self._name}>"


class _InertModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert(f"{self.__name__}.{name}")


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of plotting/widget modules get an inert stub: nothing can open a window or wait for a browser."""

    def find_spec(self, fullname, path=None, target=None):
        if any(fullname == m or fullname.startswith(m + ".") for m in assign.PLOTTING_MODULES):
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _InertModule(spec.name)

    def exec_module(self, module):
        pass  # the stub needs no code; _stub_names() finds it in namespaces


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
                "os.setxattr", "os.removexattr", "os.chflags", "os.lchflags", "shutil.rmtree", "os.rename",
                "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.move",
                "shutil.chown"}
_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                   "os.forkpty", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "os.link",
                   "os.symlink"}


def _install_sandbox(writable: list[Path]) -> None:
    """An audit hook (cannot be removed): writes, deletes and renames only inside ``writable``;
    no processes started, no signals sent, no links made."""
    roots = [os.path.realpath(p) for p in writable]

    def inside(p) -> bool:
        if isinstance(p, int):
            return True  # an already open descriptor
        try:
            full = os.path.realpath(os.path.join(os.getcwd(), os.fsdecode(p)))
        except Exception:
            return False
        return full == "/dev/null" or any(full == r or full.startswith(r + os.sep) for r in roots)

    def hook(event, args):
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, 0))[:3]
            if (isinstance(flags, int) and flags & _WRITE_FLAGS or mode and any(c in str(mode) for c in "wax+")) \
                    and not inside(path):
                raise PermissionError(f"grading sandbox: writing to {path!r} is not allowed (only the current folder)")
        elif event in _PATH_EVENTS:
            paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
            bad = [p for p in paths if not inside(p)]
            if bad:
                raise PermissionError(f"grading sandbox: {event} on {bad[0]!r} is not allowed (only the current folder)")
        elif event in _PROCESS_EVENTS:
            raise PermissionError(f"grading sandbox: {event} is not allowed while grading")

    sys.addaudithook(hook)


def _apply_limits(memory_mb: float, file_size_mb: float, cpu_s: float) -> None:
    import resource

    def cap(res, soft, hard=None):
        hard = soft if hard is None else hard
        old_soft, old_hard = resource.getrlimit(res)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        resource.setrlimit(res, (int(soft), int(hard)))

    # RLIMIT_DATA (heap + private anonymous maps, Linux >= 4.7) rather than RLIMIT_AS: shared
    # libraries (torch's are large, CUDA builds larger) do not count, student allocations do.
    cap(resource.RLIMIT_DATA, memory_mb * 2**20)
    cap(resource.RLIMIT_FSIZE, file_size_mb * 2**20)
    cap(resource.RLIMIT_CPU, cpu_s, cpu_s + 5)  # SIGXCPU at the soft limit, SIGKILL at the hard one
    cap(resource.RLIMIT_CORE, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too-large writes fail with OSError instead of killing


def _no_exit(*args, **kwargs):
    raise SystemExit(f"os._exit{args!r} is not allowed while grading")


def _child_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="course_lib.grading _child")
    ap.add_argument("--root", required=True)
    ap.add_argument("--progress", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--ids", default="")
    ap.add_argument("--skip-file", default="")
    ap.add_argument("--hidden", action="store_true")
    ap.add_argument("--collect-only", action="store_true")
    ap.add_argument("--memory-mb", type=float, default=1536)
    ap.add_argument("--file-size-mb", type=float, default=16)
    ap.add_argument("--cpu-s", type=float, default=600)
    args = ap.parse_args(argv)
    global _EVENT_SINK
    progress = open(args.progress, "a", encoding="utf-8")  # opened before the sandbox closes the door

    def sink(event):
        progress.write(json.dumps(event, ensure_ascii=False) + "\n")
        progress.flush()

    skip, skip_cells = set(), {}
    if args.skip_file and os.path.exists(args.skip_file):
        saved = json.loads(Path(args.skip_file).read_text())
        skip = set(saved.get("tests", []))
        for path, index, why in saved.get("cells", []):
            skip_cells[(path, index)] = why
    root = Path(args.root)
    if not args.collect_only:
        # pytest's own output gets a file of its own: student code that floods fd 1/2 (capped by the
        # file-size limit) can then break neither pytest's terminal nor the results.
        term = open(Path(args.progress).with_suffix(".pytest.txt"), "a", encoding="utf-8", errors="replace")
        sys.stdout = sys.stderr = term
        _apply_limits(args.memory_mb, args.file_size_mb, args.cpu_s)
        for name in ("numpy", "torch", "course_lib"):  # imported once, before the student's code
            with contextlib.suppress(Exception):
                __import__(name)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        sys.meta_path.insert(0, _StubFinder())
        os.chdir(args.work)
        _install_sandbox([Path(args.work)])
        os._exit, os.abort = _no_exit, _no_exit
        _EVENT_SINK = sink
        if skip_cells:  # cells that crashed an earlier child: do not run them again
            index, _ = _notebooks(os.environ.get("COURSE_SUBMISSION", "."))
            for nb in {id(n): n for n in index.values()}.values():
                for cell in nb.cells:
                    why = skip_cells.get((str(nb.path), cell.index))
                    if why:
                        _SKIPPED_CELLS[(str(nb.path), cell.index, cell.source)] = why
    import pytest

    ids = [i for i in args.ids.split(",") if i] or None
    plugin = GradingPlugin(sink, ids=ids, skip=skip, timeout=args.timeout, contain_interrupts=True)
    extra = ["--collect-only"] if args.collect_only else ["--basetemp", str(Path(args.work) / "pytest-tmp")]
    code = pytest.main(_pytest_args(root, args.timeout, _test_dirs(root, args.hidden), extra), plugins=[plugin])
    sink({"event": "exit", "code": int(code)})
    progress.close()
    sys.stdout.flush()
    sys.stderr.flush()
    _real_exit(0)  # skip atexit handlers the student's code may have registered


# =============================================================================================
# 4. The parent: one child per submission, a watchdog, resume after crashes, gradebook, feedback
# =============================================================================================


class SubmissionsModifiedError(RuntimeError):
    """Student files changed while they were being graded (this must never happen)."""


@dataclass
class SubmissionResult:
    """The grade of one submission.

    Attributes:
        student: the submission folder's name.
        points, max_points: ``{exercise id: points}`` earned and possible.
        tests: one dict per grading test (nodeid, exercise, points, passed, kind, message, hint, where, notes).
        notes: what happened to the grading process (crashes, restarts, output volume).
        wall_s: seconds spent on this submission; max_rss_mb: peak memory of its grading process(es).
    """

    student: str
    points: dict
    max_points: dict
    tests: list
    notes: list
    wall_s: float = 0.0
    max_rss_mb: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.points.values())

    @property
    def max_total(self) -> float:
        return sum(self.max_points.values())


class _Progress:
    """Reads the JSON lines a child appends, including while it runs (only whole lines)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.events = path, 0, []

    def poll(self) -> list:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        new = []
        for line in data[:end].splitlines():
            with contextlib.suppress(ValueError):
                new.append(json.loads(line))
        self.events += new
        return new


def _describe_exit(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"the grading process exited with code {code}"
    sig = -code
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
    why = {"SIGSEGV": "a crash (segmentation fault)", "SIGKILL": "killed (out of memory or time)",
           "SIGXCPU": "its CPU time limit", "SIGABRT": "an abort"}.get(name, "a signal")
    return f"the grading process died from {name} ({why})"


def _child_env(root: Path, submission: Path, work: Path, cell_timeout: float) -> dict:
    keep = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "TZ", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    pythonpath = [str(_HERE.parent)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env.update({
        "PYTHONPATH": os.pathsep.join(pythonpath), "COURSE_ROOT": str(root), "COURSE_SUBMISSION": str(submission),
        "COURSE_GRADING": "1", "COURSE_CELL_TIMEOUT": f"{cell_timeout:g}", "HOME": str(work),
        "TMPDIR": str(work / "tmp"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8",
        "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": "",  # graded on the CPU: same numbers everywhere
    })
    return env


@dataclass
class _Limits:
    timeout_per_test: float = 10.0
    timeout_per_submission: float | None = None
    memory_mb: float = 1536
    file_size_mb: float = 16
    hidden: bool = True
    ids: list | None = None


def _run_child(root: Path, base: Path, attempt: int, limits: _Limits, deadline: float, skip: dict) -> dict:
    """One grading child; returns its events, how it ended and its peak memory."""
    work = base / "work"
    progress_path, skip_path = base / f"progress-{attempt}.jsonl", base / "skip.json"
    skip_path.write_text(json.dumps(skip))
    cpu_s = max(deadline - time.monotonic(), 1.0) + 10
    cmd = [sys.executable, "-m", "course_lib.grading", "_child", "--root", str(root), "--progress", str(progress_path),
           "--work", str(work), "--timeout", f"{limits.timeout_per_test:g}", "--skip-file", str(skip_path),
           "--memory-mb", f"{limits.memory_mb:g}", "--file-size-mb", f"{limits.file_size_mb:g}", "--cpu-s", f"{cpu_s:.0f}"]
    cmd += (["--hidden"] if limits.hidden else []) + (["--ids", ",".join(limits.ids)] if limits.ids else [])
    env = _child_env(root, base / "submission", work, max(min(5.0, limits.timeout_per_test / 2), 0.5))
    with open(base / "stdout.txt", "ab") as out, open(base / "stderr.txt", "ab") as err:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
    reader, killed, current, since, cell = _Progress(progress_path), None, None, 0.0, None
    grace = max(5.0, limits.timeout_per_test)  # pytest-timeout gets the first chance to stop a test
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        for ev in reader.poll():
            if ev["event"] == "start":
                current, since = ev["nodeid"], time.monotonic()
            elif ev["event"] == "result":
                current = None
        now = time.monotonic()
        if killed is None and current and now - since > limits.timeout_per_test + grace:
            killed = f"the test ran past {limits.timeout_per_test:g} s and ignored the timeout; it was killed"
        elif killed is None and now > deadline:
            killed = "the submission used up its time (timeout_per_submission); the grader killed it"
        if killed:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.poll()
    for ev in reader.events:
        if ev["event"] == "cell":
            cell = (ev["notebook"], ev["index"])
        elif ev["event"] == "cell_done":
            cell = None
    exit_code = next((e["code"] for e in reader.events if e["event"] == "exit"), None)
    tail = _tail(progress_path.with_suffix(".pytest.txt")) or _tail(base / "stderr.txt")
    return {"events": reader.events, "ended": exit_code is not None, "exit_code": exit_code,
            "reason": killed or _describe_exit(status), "killed": killed is not None,
            "rss_mb": usage.ru_maxrss / 1024, "cell": cell, "tail": tail}


def _tail(path: Path, size: int = 16384) -> str:
    """The end of a (possibly huge) output file, for the instructor's notes; for a crash, the
    fatal error and the student's frames from faulthandler's dump."""
    try:
        with open(path, "rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - size, 0))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    fatal = [i for i, ln in enumerate(lines) if "Fatal Python error" in ln]  # after pytest's progress dots
    if fatal:
        dump = lines[fatal[-1]:]
        first = dump[0][dump[0].index("Fatal Python error"):]
        return " | ".join([first] + [ln for ln in dump if ln.startswith('File "<') and '<frozen' not in ln][:3])
    return " | ".join(lines[-8:])[-600:]


def _copy_notebooks(src: Path, dst: Path, notes: list) -> int:
    n = 0
    for dirpath, dirnames, filenames in os.walk(src):  # never follows links
        dirnames[:] = sorted(d for d in dirnames if d != ".ipynb_checkpoints" and not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not name.endswith(".ipynb") or p.is_symlink():
                continue
            if p.stat().st_size > 64 * 2**20:
                notes.append(f"{p.relative_to(src)} is larger than 64 MB and was not graded")
                continue
            target = dst / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)
            n += 1
    return n


def _output_note(base: Path) -> list:
    notes = []
    for name in ("stdout.txt", "stderr.txt"):
        p = base / name
        size = p.stat().st_size if p.exists() else 0
        if size > 2**20:
            notes.append(f"the code wrote {size / 2**20:.1f} MB straight to the grading process's {name[:-4]} "
                         f"(file descriptor {1 if name == 'stdout.txt' else 2}); it is capped and not kept")
    return notes


def _failed(meta: dict, kind: str, message: str) -> dict:
    return {**meta, "event": "result", "passed": False, "outcome": "failed", "kind": kind, "message": message,
            "where": "", "notes": [], "duration": 0.0, "hint": DEFAULT_HINTS.get(kind, meta.get("hint", ""))}


def _grade_folder(folder: Path, name: str, base: Path, root: Path, catalog: list | None, limits: _Limits) -> SubmissionResult:
    """Grade one submission folder in a sandboxed child, resuming after crashes and kills."""
    t0 = time.monotonic()
    notes: list = []
    (base / "work" / "tmp").mkdir(parents=True, exist_ok=True)
    (base / "submission").mkdir(parents=True, exist_ok=True)
    copied = _copy_notebooks(folder, base / "submission", notes)
    budget = limits.timeout_per_submission or (60 + (len(catalog or []) or 50) * (limits.timeout_per_test + 1))
    deadline = t0 + budget
    done: dict = {}
    skip = {"tests": [], "cells": []}
    rss, attempt = 0.0, 0
    if not copied:
        notes.append(f"no notebooks (.ipynb) found in {name}/: nothing to grade")
    while copied:
        remaining = [t for t in catalog if t["nodeid"] not in done] if catalog is not None else None
        if remaining == []:
            break
        if time.monotonic() >= deadline:
            notes.append("the submission used up its time before every test ran")
            break
        skip["tests"] = sorted(done)
        run = _run_child(root, base, attempt, limits, deadline, skip)
        attempt += 1
        rss = max(rss, run["rss_mb"])
        if catalog is None:  # check(): the catalog comes from the first run
            cats = [e for e in run["events"] if e["event"] == "catalog"]
            catalog = cats[0]["tests"] if cats else []
        metas = {t["nodeid"]: t for t in catalog}
        started = None
        for ev in run["events"]:
            if ev["event"] == "start":
                started = ev["nodeid"]
            elif ev["event"] == "result" and ev["nodeid"] in metas:
                done[ev["nodeid"]] = ev
                started = None
        progress = any(e["event"] == "result" for e in run["events"])
        if run["ended"] and not run["killed"]:
            run["reason"] = ("the test ended the test session (pytest.exit or an interrupt)" if started else
                             f"pytest stopped early (exit code {run['exit_code']}): {run['tail'][-400:]}")
        elif not run["killed"] and run["tail"]:
            run["reason"] += f"; its last output: {run['tail'][-300:]}"
        if run["ended"] and not started:
            if any(t["nodeid"] not in done for t in catalog) and not progress:
                notes.append(run["reason"])
                break
            continue
        # The child died (or was killed) in the middle: blame the running test, resume after it.
        if started and started in metas:
            kind = "timeout" if run["killed"] and "ignored the timeout" in run["reason"] else "crash"
            done[started] = _failed(metas[started], kind, f"the grading process stopped during this test: {run['reason']}")
        if run["cell"]:
            path, index = run["cell"]
            skip["cells"].append([path, index, f"crashed the grading process when it ran ({run['reason']}); skipped"])
        if not (started or run["cell"] or progress):
            notes.append(run["reason"])
            break
        notes.append(f"{run['reason']}" + (f" during {started}" if started else "")
                     + "; the grader went on with the remaining tests")
    catalog = catalog or []
    tests = []
    for t in catalog:
        r = done.get(t["nodeid"])
        if r is None:
            why = notes[-1] if notes else "not run"
            r = _failed(t, "missing" if not copied else "crash", f"not graded: {why}")
        tests.append(r)
    notes += _output_note(base)
    notes += [n for r in tests for n in r.get("notes", []) if not n.startswith("the code printed")]
    printed = [float(m.group(1)) for r in tests for n in r.get("notes", [])
               for m in [re.match(r"the code printed ([\d.]+) MB", n)] if m]
    if printed:
        notes.append(f"the code printed up to {max(printed):.1f} MB in one test ({len(printed)} test(s) printed over "
                     f"1 MB); output is not kept while grading")
    max_points, points = {}, {}
    for r in tests:
        max_points[r["exercise"]] = max_points.get(r["exercise"], 0.0) + r["points"]
        points[r["exercise"]] = points.get(r["exercise"], 0.0) + (r["points"] if r["passed"] else 0.0)
    order = sorted(max_points, key=_id_key)
    return SubmissionResult(name, {k: points[k] for k in order}, {k: max_points[k] for k in order}, tests,
                            list(dict.fromkeys(notes)), round(time.monotonic() - t0, 2), round(rss, 1))


def _run_collect(root: Path, hidden: bool) -> list:
    with tempfile.TemporaryDirectory(prefix="course-collect-") as tmp:
        progress = Path(tmp) / "catalog.jsonl"
        cmd = [sys.executable, "-m", "course_lib.grading", "_child", "--root", str(root), "--progress", str(progress),
               "--work", tmp, "--collect-only"] + (["--hidden"] if hidden else [])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_HERE.parent)] + (
            [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])), "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
        events = _Progress(progress)
        events.poll()
    cats = [e for e in events.events if e["event"] == "catalog"]
    code = next((e["code"] for e in events.events if e["event"] == "exit"), None)
    if not cats or code not in (0, 5):
        raise RuntimeError(f"collecting the grading tests in {root / 'grading'} failed (exit {code}, rc "
                           f"{proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return cats[0]["tests"]


def collect_tests(root: str | os.PathLike | None = None, *, hidden: bool = True) -> list[dict]:
    """Every grading test with its exercise id, points and hint (collected in a subprocess).

    Raises:
        RuntimeError: if collection fails, e.g. a test lacks ``@pytest.mark.exercise``.
    """
    return _run_collect(course_root(root), hidden)


def _hash_tree(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(2**20), b""):
                    h.update(chunk)
            out[rel] = h.hexdigest()
    return out


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.3g}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).strip("._") or "student"


def _feedback_text(res: SubmissionResult, titles: dict) -> str:
    lines = [f"# Feedback for {res.student}", "", f"**Total: {_fmt(res.total)} / {_fmt(res.max_total)} points**", "",
             "| exercise | title | points |", "|---|---|---|"]
    for ex_id in res.max_points:
        lines.append(f"| {ex_id} | {titles.get(ex_id, '')} | {_fmt(res.points[ex_id])} / {_fmt(res.max_points[ex_id])} |")
    for ex_id in res.max_points:
        lines += ["", f"## Exercise {ex_id}" + (f": {titles[ex_id]}" if titles.get(ex_id) else "")
                  + f" ({_fmt(res.points[ex_id])} / {_fmt(res.max_points[ex_id])} points)", ""]
        for t in (t for t in res.tests if t["exercise"] == ex_id):
            mark, pts = ("PASS", t["points"]) if t["passed"] else ("FAIL", 0)
            lines.append(f"- {mark} `{t['name']}` ({_fmt(pts)} / {_fmt(t['points'])})")
            if not t["passed"]:
                label = "expected vs got" if t["kind"] == "assertion" else "what happened"
                lines.append(f"  - {label}: {t['message']}".replace("\n", "\n    "))
                if t.get("where"):
                    lines.append(f"  - where: {t['where']}")
                if t.get("hint"):
                    lines.append(f"  - hint: {t['hint']}")
                for note in t.get("notes", []):
                    lines.append(f"  - note: {note}")
    if res.notes:
        lines += ["", "## Notes from the grader", ""] + [f"- {n}" for n in res.notes]
    return "\n".join(lines) + "\n"


def _titles(root: Path) -> dict:
    titles = {}
    for folder in ("exercises", "solutions"):
        for p in sorted((root / folder).glob(assign.MASTER_GLOB)):
            with contextlib.suppress(Exception):
                for ex in assign.parse_master(p)[0]:
                    titles.setdefault(ex.id, ex.title)
    return titles


def grade(submissions_dir: str | os.PathLike, out_csv: str | os.PathLike = "gradebook.csv",
          feedback_dir: str | os.PathLike = "feedback", *, workers: int | None = None,
          timeout_per_test: float = 10.0, timeout_per_submission: float | None = None, hidden: bool = True,
          memory_mb: float = 1536, file_size_mb: float = 16, root: str | os.PathLike | None = None,
          verbose: bool = True) -> list[SubmissionResult]:
    """Grade every submission folder and write the gradebook and one feedback file per student.

    Args:
        submissions_dir: one folder per student, each a copy of ``exercises/`` (``<student>/NN_*_exercises.ipynb``).
        out_csv: the gradebook: ``student, ex<id>..., total, max``, one row per folder, sorted by name.
        feedback_dir: ``<student>.md`` per student: every test, what was expected and what came back, a hint.
        workers (int): submissions graded at the same time, one subprocess each. Default: ``os.cpu_count()``.
        timeout_per_test (float): seconds per grading test; an infinite loop costs that test only. Default: 10.
        timeout_per_submission (float): seconds for one submission, restarts included. Default:
            ``60 + n_tests * (timeout_per_test + 1)``.
        hidden (bool): include ``grading/hidden``. Default: True.
        memory_mb, file_size_mb: per-process limits (data segment; largest file written). Defaults: 1536, 16.
        root: the course folder (default: :func:`course_root`).

    Returns:
        one :class:`SubmissionResult` per submission, sorted by student.

    Raises:
        SubmissionsModifiedError: a student file changed while grading (after writing the outputs).
    """
    where = "grade"
    workers = (os.cpu_count() or 1) if workers is None else check_number("workers", workers, where=where, low=1,
                                                                        integer=True)
    check_number("timeout_per_test", timeout_per_test, where=where, low=0, low_open=True)
    check_number("timeout_per_submission", timeout_per_submission, where=where, low=0, low_open=True, allow_none=True)
    check_number("memory_mb", memory_mb, where=where, low=64)
    check_number("file_size_mb", file_size_mb, where=where, low=1)
    check_type("submissions_dir", submissions_dir, (str, os.PathLike), where=where, expected="folder path")
    subs_dir = Path(submissions_dir).resolve()
    if not subs_dir.is_dir():
        raise ValueError(f"grade(): 'submissions_dir' must be an existing folder, got submissions_dir={str(submissions_dir)!r}")
    out_csv, feedback_dir = Path(out_csv).resolve(), Path(feedback_dir).resolve()
    for pname, p in (("out_csv", out_csv), ("feedback_dir", feedback_dir)):
        if p == subs_dir or subs_dir in p.parents:
            raise ValueError(f"grade(): '{pname}' must be outside 'submissions_dir' (student files are never "
                             f"touched), got {pname}={str(p)!r}")
    root = course_root(root)
    students = sorted(d for d in subs_dir.iterdir()
                      if d.is_dir() and not d.is_symlink() and not d.name.startswith((".", "__")))
    before = _hash_tree(subs_dir)
    catalog = _run_collect(root, hidden)
    if not catalog:
        raise ValueError(f"grade(): no grading tests in {root / 'grading'}")
    limits = _Limits(timeout_per_test, timeout_per_submission, memory_mb, file_size_mb, hidden)
    tmp = Path(tempfile.mkdtemp(prefix="course-grading-"))

    def one(i_d):
        i, d = i_d
        try:
            res = _grade_folder(d, d.name, tmp / f"{i:04d}", root, catalog, limits)
        except Exception as e:  # e.g. an unreadable file: this row gets zeros, the batch goes on
            tests = [_failed(t, "crash", f"not graded: the grader failed on this submission ({e!r})") for t in catalog]
            res = SubmissionResult(d.name, *_summarise(tests, []), tests, [f"the grader failed: {e!r}"])
        if verbose:
            print(f"graded {res.student}: {_fmt(res.total)} / {_fmt(res.max_total)} ({res.wall_s:.1f} s)",
                  file=sys.stderr, flush=True)
        return res

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, enumerate(students)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ex_ids = sorted({t["exercise"] for t in catalog}, key=_id_key)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["student", *[f"ex{e}" for e in ex_ids], "total", "max"])
        for r in results:
            w.writerow([r.student, *[_fmt(r.points.get(e, 0.0)) for e in ex_ids], _fmt(r.total), _fmt(r.max_total)])
    feedback_dir.mkdir(parents=True, exist_ok=True)
    titles, used = _titles(root), set()
    for r in results:
        name = _safe_name(r.student)
        while name in used:
            name += "_"
        used.add(name)
        (feedback_dir / f"{name}.md").write_text(_feedback_text(r, titles), encoding="utf-8")
    after = _hash_tree(subs_dir)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        raise SubmissionsModifiedError(
            f"grade(): {len(changed)} student file(s) changed during grading (this must never happen; the gradebook "
            f"may be wrong): " + ", ".join(changed[:20]))
    return results


# =============================================================================================
# 5. check() and check_all() inside a notebook
# =============================================================================================


@dataclass
class CheckResult:
    """What :func:`check` / :func:`check_all` found: ``points`` and ``max_points`` per exercise, every test."""

    points: dict
    max_points: dict
    tests: list
    report: str = ""

    @property
    def total(self) -> float:
        return sum(self.points.values())

    @property
    def max_total(self) -> float:
        return sum(self.max_points.values())

    @property
    def passed(self) -> bool:
        return bool(self.tests) and all(t["passed"] for t in self.tests)

    def __repr__(self) -> str:
        ids = ", ".join(self.max_points) or "nothing"
        return f"<CheckResult {ids}: {_fmt(self.total)} / {_fmt(self.max_total)} points>"


def _run_live(namespace: dict, ids: list, root: Path, timeout: float, hidden: bool) -> list:
    """Run the tests of ``ids`` in this process against ``namespace`` (the notebook's globals)."""
    global _LIVE
    import pytest

    mod = SubmissionModule("__course_live__")
    mod.__dict__.update(namespace)
    mod.__dict__["__course_hint__"] = " in this notebook's kernel: run the exercise cell (and the setup cells above it)"
    events: list = []
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        timeout = 0  # pytest-timeout's thread method would end the whole kernel; no timeout instead
    plugin = GradingPlugin(events.append, ids=ids, timeout=timeout)
    args = _pytest_args(root, timeout, _test_dirs(root, hidden), ["-p", "no:faulthandler"])
    grading_dir = str(root / "grading") + os.sep
    saved_path, saved_modules = sys.path[:], dict(sys.modules)
    in_main = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")
    saved_alarm = (signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)) if in_main else None
    buf = io.StringIO()
    _LIVE = mod
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            code = pytest.main(args, plugins=[plugin])
    finally:
        _LIVE = None
        sys.path[:] = saved_path
        for name, module in list(sys.modules.items()):  # re-import edited test files next time
            if (getattr(module, "__file__", None) or "").startswith(grading_dir):
                if name in saved_modules:
                    sys.modules[name] = saved_modules[name]  # e.g. a "conftest" that was there before
                else:
                    del sys.modules[name]
        if saved_alarm:  # the kernel's (or an outer pytest's) alarm, as it was
            signal.signal(signal.SIGALRM, saved_alarm[0])
            if saved_alarm[1][0]:
                signal.setitimer(signal.ITIMER_REAL, *saved_alarm[1])
    if int(code) in (3, 4):  # internal or usage error (2: interrupted, keep what ran)
        raise RuntimeError(f"running the grading tests failed (pytest exit {int(code)}):\n{buf.getvalue()[-3000:]}")
    return [e for e in events if e["event"] == "result"]


def _summarise(tests: list, ids: list) -> tuple[dict, dict]:
    points, max_points = {}, {}
    for ex_id in ids:
        points[ex_id], max_points[ex_id] = 0.0, 0.0
    for t in tests:
        max_points[t["exercise"]] = max_points.get(t["exercise"], 0.0) + t["points"]
        points[t["exercise"]] = points.get(t["exercise"], 0.0) + (t["points"] if t["passed"] else 0.0)
    order = sorted(max_points, key=_id_key)
    return {k: points[k] for k in order}, {k: max_points[k] for k in order}


def _check_report(ex_id: str, title: str, tests: list, points: float, max_points: float) -> str:
    head = f"Exercise {ex_id}" + (f" ({title})" if title else "") + f": {_fmt(points)} / {_fmt(max_points)} points"
    if not tests:
        return head + "\n  no grading tests found for this exercise"
    lines = [head]
    for t in tests:
        if t["passed"]:
            lines.append(f"  passed  {t['name']} ({_fmt(t['points'])} pt)")
            continue
        lines.append(f"  FAILED  {t['name']} ({_fmt(t['points'])} pt)")
        label = "expected vs got" if t["kind"] == "assertion" else "what happened"
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
        limits = _Limits(timeout, None, hidden=hidden, ids=ids)
        res = _grade_folder(folder, folder.name, tmp, root, None, limits)
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
        timeout (float): seconds per test. Default: 10.
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
    points, max_points = _summarise(tests, [ex_id])
    title = _titles(root).get(ex_id, "")
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
        index, _ = _notebooks(folder)
        ids = sorted(index, key=_id_key)
        tests, notes = _run_folder(folder, ids, root, timeout, hidden) if ids else ([], [])
    points, max_points = _summarise(tests, ids)
    titles = _titles(root)
    width = max([len(titles.get(i, "")) for i in points] + [5])
    lines = [f"{'exercise':<9} {'title':<{width}}  points"]
    lines += [f"{i:<9} {titles.get(i, ''):<{width}}  {_fmt(points[i])} / {_fmt(max_points[i])}" for i in points]
    lines.append(f"{'total':<9} {'':<{width}}  {_fmt(sum(points.values()))} / {_fmt(sum(max_points.values()))}")
    failing = [t for t in tests if not t["passed"]]
    if failing:
        lines.append(f"\n{len(failing)} test(s) failing; check('<id>') shows what was expected and a hint.")
    lines += [f"note: {n}" for n in notes]
    report = "\n".join(lines)
    print(report)
    return CheckResult(points, max_points, tests, report)


# =============================================================================================
# 6. Command line
# =============================================================================================


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.grading grade SUBMISSIONS [--out gradebook.csv] [--feedback feedback/]``,
    ``python -m course_lib.grading check FOLDER [IDS...]``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        _child_main(argv[1:])
        return 0
    ap = argparse.ArgumentParser(prog="python -m course_lib.grading", description="Grade exercise notebooks.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grade", help="grade a folder of submissions (one folder per student)")
    g.add_argument("submissions")
    g.add_argument("--out", default="gradebook.csv")
    g.add_argument("--feedback", default="feedback")
    g.add_argument("--workers", type=int, default=None)
    g.add_argument("--timeout-per-test", type=float, default=10.0)
    g.add_argument("--timeout-per-submission", type=float, default=None)
    g.add_argument("--no-hidden", action="store_true", help="leave out grading/hidden")
    g.add_argument("--root", default=None, help="the course folder (default: found automatically)")
    c = sub.add_parser("check", help="grade the saved notebooks of one folder and print the report")
    c.add_argument("folder")
    c.add_argument("ids", nargs="*")
    c.add_argument("--hidden", action="store_true")
    c.add_argument("--root", default=None)
    args = ap.parse_args(argv)
    if args.cmd == "grade":
        try:
            results = grade(args.submissions, args.out, args.feedback, workers=args.workers,
                            timeout_per_test=args.timeout_per_test, timeout_per_submission=args.timeout_per_submission,
                            hidden=not args.no_hidden, root=args.root)
        except SubmissionsModifiedError as e:
            print(e, file=sys.stderr)
            return 3
        print(f"{len(results)} submission(s) graded: {args.out}, feedback in {args.feedback}/")
        return 0
    if args.ids:
        results = [check(i, folder=args.folder, hidden=args.hidden, root=args.root) for i in args.ids]
        return 0 if all(r.passed for r in results) else 1
    return 0 if check_all(folder=args.folder, hidden=args.hidden, root=args.root).passed else 1


if __name__ == "__main__":
    # Delegate to the imported module: the fixture (grading/conftest.py) imports course_lib.grading, and
    # its state (labels of student files, the event sink) must be the state the plugin reads.
    from course_lib import grading as _grading

    sys.exit(_grading.main())
