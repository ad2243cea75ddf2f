"""The pytest pieces: the ``exercise`` fixture (used by grading/conftest.py) and the grading plugin."""

from __future__ import annotations

import inspect
import io
import math
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from pluggy import HookimplMarker

from ._common import DEFAULT_HINTS, clip
from .extract import SubmissionModule, execute_cells, notebooks_in, student_frame

__all__ = ["GradingPlugin", "exercise_loader"]

hookimpl = HookimplMarker("pytest")


LIVE: SubmissionModule | None = None  # set by check() while it runs tests on a live kernel


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
        if LIVE is not None:
            return LIVE
        folder = Path(os.environ.get("COURSE_SUBMISSION") or default_folder or "solutions")
        index, nbs = notebooks_in(folder)
        nb = index.get(ex_id)
        if nb is None:
            broken = "; ".join(n.error for n in nbs if n.error)
            pytest.fail(f"Exercise {ex_id}: no cell tagged as Exercise {ex_id} in the notebooks in {folder}"
                        + (f" ({broken})" if broken else "")
                        + ". Was the notebook renamed away, or the cell's tag lost?", pytrace=False)
        mod, errors, notes = execute_cells(nb, _cell_timeout())
        for note in notes:
            request.node.user_properties.append(("course_note", note))
        if ex_id in errors:
            pytest.fail(f"Exercise {ex_id}: its cell failed when it ran, before any test: {errors[ex_id]}",
                        pytrace=False)
        return mod

    return get


def _first_paragraph(doc: str | None) -> str:
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()) if doc else ""


_CPU_TIMEOUT = "Timeout (CPU time)"
_AFTER_TIMEOUT = "Not run after a timeout"  # GradingPlugin(skip_after_timeout=True): "<prefix>: <name of the test>"
_STUB_MESSAGE = re.compile(r"Exercise \d+(\.\d+)*\b")  # assign's stub: raise NotImplementedError("Exercise 3.2: ...")


def _is_stub(e: BaseException) -> bool:
    """The stub's own ``raise NotImplementedError("Exercise 3.2: ...")`` (or a bare one), not an error
    of the same class from a library ("bincount_cpu" not implemented for 'Float')."""
    return isinstance(e, NotImplementedError) and (not str(e) or bool(_STUB_MESSAGE.match(str(e))))


def _classify(e: BaseException, timeout: float | None) -> tuple[str, str]:
    """(kind, message) for an exception that failed a grading test."""
    text = str(e)
    name = type(e).__name__
    if _is_stub(e):
        return "not_implemented", f"not implemented yet ({name}: {clip(text, 200, 1)})"
    if name == "Failed" and text.startswith(_AFTER_TIMEOUT):
        first = text.split(": ", 1)[-1]
        return "timeout", (f"not run: `{first}` of this exercise did not finish within {timeout:g} s of CPU time, so its "
                           f"other tests were not run (each would have waited as long)")
    if name == "Failed" and text.startswith(_CPU_TIMEOUT):
        return "timeout", f"did not finish within {timeout:g} s of CPU time" if timeout else "timed out"
    if name == "Failed" and text.startswith("Timeout"):
        return "timeout", f"did not finish within {timeout:g} s" if timeout else "timed out"
    if name == "Failed" and "failed when it ran, before any test" in text:
        return "definition", clip(text)
    if name == "Failed" and "no cell tagged as Exercise" in text:
        return "missing", clip(text)
    if isinstance(e, AssertionError):
        custom = text.split("\nassert ")[0] if "\nassert " in text else text
        return "assertion", clip(custom or "assertion failed")
    if isinstance(e, SystemExit):
        return "exit", f"your code called sys.exit()/exit() (SystemExit: {e.code!r})"
    if isinstance(e, MemoryError) or "can't allocate memory" in text:
        return "memory", f"{name}: out of memory ({clip(text, 200, 1)})"
    if isinstance(e, (NameError, AttributeError)) and "is not defined" in text:
        return "undefined", f"{name}: {clip(text, 300, 2)}"
    if name == "Failed":
        return "failed", clip(text)
    return "error", f"{name}: {clip(text, 400, 4)}"


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
        cpu_timeout: if set, ``timeout`` is a budget of CPU seconds (this process's user + system
            time, ``ITIMER_PROF``) rather than of wall-clock seconds: a test then needs the same
            budget on a busy machine as on a quiet one. Wall-clock time is left to pytest-timeout
            as a wide backstop (for code that sleeps or blocks). Main thread only.
        skip_after_timeout: once a test of an exercise timed out, fail that exercise's later tests
            at once (kind ``timeout``, "not run"; the result's ``after_timeout`` names the test that
            timed out) instead of letting each wait out its own budget: a loop that never ends then
            costs one budget per exercise, not one per test. The batch grader runs the timed-out
            test again alone and, if it passes then, runs the others after all.
        timed_out (dict): ``{exercise id: node id}`` of tests that timed out in an earlier process
            of the same submission (with ``skip_after_timeout``).
    """

    def __init__(self, sink: Callable[[dict], None], *, ids=None, skip=(), timeout: float | None = None,
                 contain_interrupts: bool = False, cpu_timeout: bool = False, skip_after_timeout: bool = False,
                 timed_out: dict | None = None):
        self.sink, self.timeout, self.contain_interrupts = sink, timeout, contain_interrupts
        self.cpu_timeout = bool(cpu_timeout and timeout and threading.current_thread() is threading.main_thread())
        self.ids = {str(i) for i in ids} if ids is not None else None
        self.skip = set(skip)
        self.skip_after_timeout = skip_after_timeout
        self.timed_out = {str(k): v for k, v in (timed_out or {}).items()}  # exercise id -> node id
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
                               "called": False, "t0": time.perf_counter(), "cpu0": time.process_time(), "out": out,
                               "saved": (sys.stdout, sys.stderr)}
        self.sink({"event": "start", "nodeid": nodeid})
        sys.stdout = sys.stderr = out  # what the student's code prints, bounded
        if self.cpu_timeout:  # setup, call and teardown share the budget, as with pytest-timeout
            signal.signal(signal.SIGPROF, self._on_cpu_timeout)
            signal.setitimer(signal.ITIMER_PROF, self.timeout)

    @hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        ex_id = self.meta.get(item.nodeid, {}).get("exercise")
        if self.skip_after_timeout and ex_id in self.timed_out:
            import pytest

            first = self.timed_out[ex_id]
            self._state.get(item.nodeid, {})["after_timeout"] = first
            pytest.fail(f"{_AFTER_TIMEOUT}: {self.meta.get(first, {}).get('name', first)}", pytrace=False)

    def _on_cpu_timeout(self, signum, frame):
        import pytest

        signal.setitimer(signal.ITIMER_PROF, 0)
        pytest.fail(f"{_CPU_TIMEOUT}: more than {self.timeout:g} s", pytrace=False)

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
            st["where"] = student_frame(call.excinfo.tb)
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
                st["kind"], st["message"] = "error", clip(report.longreprtext)
        elif report.skipped and st["outcome"] == "passed":
            st["outcome"] = "skipped"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            st["kind"], st["message"] = "skipped", clip(f"skipped: {reason}")
        for key, value in report.user_properties:
            if key == "course_note" and value not in st["notes"]:
                st["notes"].append(value)

    @hookimpl
    def pytest_runtest_logfinish(self, nodeid, location):
        if self.cpu_timeout:
            signal.setitimer(signal.ITIMER_PROF, 0)
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
                  "duration": round(time.perf_counter() - st["t0"], 3),
                  "cpu_s": round(time.process_time() - st["cpu0"], 3)}
        if st.get("after_timeout"):
            result["after_timeout"] = st["after_timeout"]
        elif result["kind"] == "timeout":
            self.timed_out.setdefault(meta["exercise"], nodeid)
        if passed:
            result["hint"] = ""
        elif result["kind"] in DEFAULT_HINTS:  # the test's docstring is the hint for wrong answers
            result["hint"] = DEFAULT_HINTS[result["kind"]]
        self.sink(result)

    @hookimpl
    def pytest_sessionfinish(self, session, exitstatus):
        self.sink({"event": "end", "exitstatus": int(exitstatus)})


def grading_test_dirs(root: Path, hidden: bool) -> list[Path]:
    dirs = [root / "grading" / "tests"] + ([root / "grading" / "hidden"] if hidden else [])
    return [d for d in dirs if d.is_dir()]


def pytest_args(root: Path, timeout: float | None, tests: list[Path], extra=()) -> list[str]:
    grading_dir = root / "grading"
    ini = grading_dir / "pytest.ini"
    args = (["-c", str(ini)] if ini.is_file() else []) + [
        "--rootdir", str(grading_dir), "-q", "--no-header", "-p", "no:cacheprovider", "-p", "no:xdist",
        # plugins of other packages that grading tests never use: importing them (hypothesis, anyio's event
        # loops) cost every grading process about a second of CPU
        "-p", "no:xdist.looponfail", "-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:platformdirs",
        # pytest's log capture adds and removes handlers around every phase of every test (a tenth of a
        # grading child's own CPU time); no grading test reads logs (caplog), and what the student's code
        # logs goes to stderr, which the plugin bounds like prints
        "-p", "no:logging",
        "--tb=no", "-rN", "--capture=no", "-W", "ignore",
        f"--timeout={timeout or 0:g}", "--timeout-method=signal", "--timeout-disable-debugger-detection",
    ]
    return args + list(extra) + [str(t) for t in tests]
