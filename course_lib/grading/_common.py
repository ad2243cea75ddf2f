"""What every stage of the grader shares: where the course is, the hints, the one sort key of
exercise ids, point formatting, the inert stand-ins for plotting modules, and ``isolated_torch``
for grading tests that train. A private module: the stages import from here, never from each other's
``_private`` names."""

from __future__ import annotations

import contextlib
import os
import types
from pathlib import Path

__all__: list[str] = []  # private: shared by the stages of the grader only


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


# The folder that holds course_lib (the course's root in a checkout): grading children import
# course_lib from here, whatever the current folder is.
LIB_ROOT = Path(__file__).resolve().parents[2]

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
    if (LIB_ROOT / "grading").is_dir():
        return LIB_ROOT
    for d in [Path.cwd(), *Path.cwd().parents]:
        if (d / "grading" / "tests").is_dir():
            return d
    raise FileNotFoundError("cannot find the course's grading/ folder; pass root= or set COURSE_ROOT")


def id_key(ex_id: str) -> tuple:
    """Sort key of an exercise id: "10.2" after "9.1", "3.10" after "3.9"."""
    return tuple(int(p) if p.isdigit() else p for p in str(ex_id).split("."))


def clip(text: str, limit: int = 700, lines: int = 8) -> str:
    text = "\n".join(str(text).strip().splitlines()[:lines])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fmt_points(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.3g}"


HIDDEN_PREFIX = "hidden/"  # node ids of grading/hidden's tests


def is_hidden(test: dict) -> bool:
    return str(test.get("nodeid", "")).startswith(HIDDEN_PREFIX)


def shown_to_student(test: dict) -> dict:
    """What a student may see of a test's result. A hidden test shows its name, pass/fail, points and its
    public hint (its docstring, or the grader's hint for its kind of failure) only: no message, no place
    in the code, no notes, since its text (or what the student's code printed or raised in it) could
    give the hidden test away. A shipped test shows everything."""
    if not is_hidden(test):
        return test
    shown = {k: test[k] for k in ("nodeid", "name", "exercise", "points", "passed", "kind") if k in test}
    shown.update(message="a hidden test (its details are not shown)", where="", notes=[],
                 hint="" if test.get("passed") else (test.get("hint") or ""))
    return shown


def summarise(tests: list, ids: list) -> tuple[dict, dict]:
    points, max_points = {}, {}
    for ex_id in ids:
        points[ex_id], max_points[ex_id] = 0.0, 0.0
    for t in tests:
        max_points[t["exercise"]] = max_points.get(t["exercise"], 0.0) + t["points"]
        points[t["exercise"]] = points.get(t["exercise"], 0.0) + (t["points"] if t["passed"] else 0.0)
    order = sorted(max_points, key=id_key)
    return {k: points[k] for k in order}, {k: max_points[k] for k in order}


class Inert:
    """Stands in for anything from a plotting/widget module while grading: calls do nothing."""

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Inert(f"{self._name}.{name}")

    def __call__(self, *args, **kwargs):
        return Inert(f"{self._name}()")

    def __iter__(self):
        raise TypeError(f"{self._name} is a stub while grading (plotting and widgets are switched off); "
                        f"keep plotting out of exercise and setup cells")

    def __getitem__(self, key):
        return Inert(f"{self._name}[...]")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __bool__(self):
        return False

    def __repr__(self):
        return f"<grading stub {self._name}>"


class InertModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Inert(f"{self.__name__}.{name}")


class PointTotals:
    """``total`` and ``max_total`` of a result that holds ``points`` and ``max_points`` per exercise."""

    @property
    def total(self) -> float:
        return sum(self.points.values())

    @property
    def max_total(self) -> float:
        return sum(self.max_points.values())
