"""Extraction: the setup and graded cells of a notebook, executed in a fresh namespace."""

from __future__ import annotations

import builtins
import contextlib
import linecache
import os
import re
import signal
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import assign
from ._common import Inert, InertModule, clip, id_key

__all__ = ["SubmissionModule", "LoadedExercise", "load_exercises"]


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
SKIPPED_CELLS: dict = {}  # (path, cell index, source) -> why it is not run again (timed out / crashed)
_FILE_LABELS: dict = {}    # code filename -> "your cell of Exercise 3.2 (nb.ipynb, cell 7)"
EVENT_SINK: Callable | None = None  # the grading child reports cell starts, to find crashing cells


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
        tags = assign.cell_tags(cell)
        if "exercise" not in tags and "setup" not in tags:
            continue
        kind = "exercise" if "exercise" in tags else "setup"
        ex_id, title = assign.exercise_meta(cell) if kind == "exercise" else (None, None)
        source = assign.cell_source(cell)
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


def notebooks_in(folder: str | os.PathLike) -> tuple[dict, list]:
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


def student_frame(tb) -> str:
    """Where in the student's code an exception came from: 'your cell of ..., line 4: `code`'."""
    found = ""
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if fn in _FILE_LABELS or "ipykernel_" in fn or fn.startswith("<ipython-input"):
            label = _FILE_LABELS.get(fn, "your notebook cell")
            line = linecache.getline(fn, tb.tb_lineno).strip()
            found = f"{label}, line {tb.tb_lineno}" + (f": `{clip(line, 160, 1)}`" if line else "")
        tb = tb.tb_next
    return found


def _describe(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        text = f"called sys.exit()/exit() (SystemExit: {e.code!r})"
    else:
        text = f"{type(e).__name__}: {clip(str(e), 300, 3)}"
    where = student_frame(e.__traceback__)
    return text + (f" [{where}]" if where else "")


def _stub_names(mod) -> list:
    """Names of the plotting/widget stubs a namespace holds (``plt`` -> ``matplotlib.pyplot``)."""
    return [v.__name__ if isinstance(v, InertModule) else v._name
            for v in list(vars(mod).values()) if isinstance(v, (InertModule, Inert))]


def execute_cells(nb: _Notebook, cell_timeout: float | None = 5.0) -> tuple[SubmissionModule, dict, list]:
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
        elif key in SKIPPED_CELLS:
            msg = SKIPPED_CELLS[key]
        else:
            msg = None
            if EVENT_SINK:
                EVENT_SINK({"event": "cell", "notebook": str(nb.path), "index": cell.index})
            try:
                with _time_limit(cell_timeout):
                    exec(cell.code, mod.__dict__)
            except _CellTimeout:
                msg = (f"did not finish within {cell_timeout:g} s when the cell ran (a loop at the top level of "
                       f"the cell, or a call to a function that loops?); the grader skips this cell from now on")
                SKIPPED_CELLS[key] = msg
            except BaseException as e:  # noqa: B036 - sys.exit, KeyboardInterrupt: all are the cell's problem
                if _is_test_outcome(e):
                    raise
                msg = _describe(e)
            if EVENT_SINK:
                EVENT_SINK({"event": "cell_done"})
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
    index, nbs = notebooks_in(folder)
    out = {}
    for nb in nbs:
        if not any(index.get(i) is nb for i in nb.titles):
            continue  # no exercises, or a duplicate copy that lost to the canonical notebook
        mod, errors, notes = execute_cells(nb, cell_timeout)
        for ex_id, title in nb.titles.items():
            if index[ex_id] is nb:
                out[ex_id] = LoadedExercise(ex_id, title, nb.path, mod, errors.get(ex_id), list(notes))
    return dict(sorted(out.items(), key=lambda kv: id_key(kv[0])))
