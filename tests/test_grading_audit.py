"""The grading tests' self-audit (grading/audit/) and the load test of the batch grader.

* The audit is the course's own mutation test: every wrong answer in grading/audit/cases.py loses
  at least half of its exercise's points (``wrong``) or some points (``partial``), and every correct
  alternative gets full marks (``full``), graded by the real batch grader with the hidden tests.
* The load test grades the solutions of exercise 4.3 (its tests train four 1,000-step runs: the
  most expensive, and the one that timed out under load before) with a budget of 2.5 times their
  measured CPU cost, while two CPU hogs per core run beside the grader: full marks three runs in a
  row. Each test then takes about 2.5 to 3 times longer on the wall clock, so a wall-clock budget
  of that size would run out; CPU seconds hardly change with what else runs (+7% measured).
"""

import ast
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from course_lib import grading
from course_lib.grading import assign
from course_lib.grading._common import id_key

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


audit = _load(ROOT / "grading" / "audit" / "audit.py", "course_grading_audit")


def test_every_exercise_has_its_audit_cases():
    masters = {e.id for e in assign.collect_masters(ROOT / "solutions")}
    counts = Counter((c.exercise, c.expect) for c in audit.cases())
    short = {ex: (counts[ex, "wrong"], counts[ex, "full"]) for ex in sorted(masters, key=id_key)
             if counts[ex, "wrong"] < 4 or counts[ex, "full"] < 1}
    assert short == {}, f"exercises with fewer than 4 wrong answers or no correct alternative: {short}"
    unknown = {c.exercise for c in audit.cases()} - masters
    assert unknown == set(), f"audit cases for exercises no master has: {sorted(unknown)}"
    names = Counter((c.exercise, c.name) for c in audit.cases())
    assert [k for k, n in names.items() if n > 1] == [], "two audit cases of one exercise share a name"


def test_every_audit_case_is_valid_python_at_the_solution_blocks_indent():
    for c in audit.cases():
        body = "\n".join("    " + ln if ln.strip() else "" for ln in c.code.splitlines())
        ast.parse(f"def f():\n{body}\n")  # raises SyntaxError with the line


@pytest.fixture(scope="module")
def audited():
    t = time.perf_counter()
    rows = audit.run()
    return rows, time.perf_counter() - t


@pytest.mark.slow
def test_the_audit_catches_every_wrong_answer_and_accepts_every_correct_one(audited):
    rows, elapsed = audited
    misses = [f"{r['case'].exercise} {r['case'].expect} '{r['case'].name}': {r['points']:g} / {r['max']:g}"
              + "".join(f"\n    - {f[:200]}" for f in r["failed"])
              for r in rows if not audit.verdict(r)]
    rate = {e: f"{sum(audit.verdict(r) for r in rows if r['case'].expect == e)} / "
               f"{sum(r['case'].expect == e for r in rows)}" for e in ("wrong", "partial", "full")}
    assert misses == [], f"audit ({rate}, {elapsed:.0f} s):\n" + "\n".join(misses)
    broken = [f"{r['case'].exercise} '{r['case'].name}'" for r in rows if any(": definition:" in f for f in r["failed"])]
    assert broken == [], f"audit cases whose cell does not even run (they test nothing): {broken}"
    assert len(rows) == len(audit.cases())


# ---- the load test -------------------------------------------------------------------------------

LOADED = ["4.3"]  # its tests train the longest (the hidden one timed out under load before CPU budgets)


@contextlib.contextmanager
def cpu_hogs(n: int):
    """``n`` processes that keep a core busy each, for as long as the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
             for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


@pytest.mark.slow
def test_marks_do_not_depend_on_machine_load(tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(ROOT / "solutions", subs / "solutions")
    # 1. The solutions' cost, alone: CPU seconds of the most expensive test.
    quiet = grading.grade(subs, tmp_path / "gb0.csv", tmp_path / "fb0", exercises=LOADED, verbose=False)[0]
    assert quiet.total == quiet.max_total > 0, [t["message"] for t in quiet.tests if not t["passed"]]
    heaviest = max(t["cpu_s"] for t in quiet.tests)
    budget = max(2.5 * heaviest, 1.0)
    # 2. Three runs while every core is busy twice over: a wall-clock budget of 2.5x would run out.
    with cpu_hogs(2 * (os.cpu_count() or 1)):
        for run in range(3):
            t0 = time.perf_counter()
            res = grading.grade(subs, tmp_path / f"gb{run + 1}.csv", tmp_path / f"fb{run + 1}",
                                exercises=LOADED, timeout_per_test=budget, verbose=False)[0]
            wall = time.perf_counter() - t0
            lost = [f"{t['name']}: {t['kind']}: {t['message']}" for t in res.tests if not t["passed"]]
            assert res.total == res.max_total and lost == [], (
                f"run {run + 1} under load (budget {budget:.2f} CPU s, heaviest test {heaviest:.2f} s alone, "
                f"{wall:.0f} s wall): {lost}")
