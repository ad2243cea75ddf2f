"""Grade the audit cases of cases.py with the real batch grader (see README.md).

A *round* is one submission: for every exercise, its k-th case in place of the solution block
(or the stub when the exercise has fewer cases), so one round grades one case of every exercise
and the number of submissions is the largest number of cases of one exercise. An exercise's
score in a round belongs to its case alone: the cases of different exercises never call each other.

    PYTHONPATH=. python grading/audit/audit.py [--ex 4.1] [--workers N]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _load_cases():
    spec = importlib.util.spec_from_file_location("course_grading_audit_cases", HERE / "cases.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up while the class is built
    spec.loader.exec_module(mod)
    return mod.CASES


def _assign():
    from course_lib.grading import assign
    return assign


def cases(ex: str | None = None) -> list:
    return [c for c in _load_cases() if ex is None or c.exercise == ex]


def build_rounds(solutions: Path, dst: Path, selected: list) -> dict:
    """Write one submission per round under ``dst``; return ``{round name: {exercise id: case}}``."""
    assign = _assign()
    by_ex: dict = defaultdict(list)
    for c in selected:
        by_ex[c.exercise].append(c)
    n_rounds = max((len(v) for v in by_ex.values()), default=0)
    masters = [(p, assign.read_notebook(p)) for p in sorted(Path(solutions).glob(assign.MASTER_GLOB))]
    rounds = {}
    for k in range(n_rounds):
        name = f"round{k:02d}"
        chosen = {ex: v[k] for ex, v in by_ex.items() if k < len(v)}
        rounds[name] = chosen

        def replace(ex_id, title, indent, solution, chosen=chosen):
            case = chosen.get(ex_id)
            if case is None:
                return [f'{indent}raise NotImplementedError("Exercise {ex_id}: not in this audit round")']
            return [indent + line if line.strip() else "" for line in case.code.splitlines()]

        folder = dst / name
        folder.mkdir(parents=True, exist_ok=True)
        for path, master in masters:
            (folder / path.name).write_text(assign.render_notebook(assign.student_copy(master, replace=replace)),
                                            encoding="utf-8")
    return rounds


def run(ex: str | None = None, *, workers: int | None = None, root: Path = ROOT, **grade_kwargs) -> list[dict]:
    """Grade every case (of exercise ``ex``); one dict per case: the case, its points, the max, the failures."""
    from course_lib import grading

    selected = cases(ex)
    with tempfile.TemporaryDirectory(prefix="course-audit-") as tmp:
        tmp = Path(tmp)
        rounds = build_rounds(root / "solutions", tmp / "subs", selected)
        results = grading.grade(tmp / "subs", tmp / "gradebook.csv", tmp / "feedback", workers=workers,
                                root=root, verbose=False, **grade_kwargs)
    out = []
    for res in results:
        for ex_id, case in rounds[res.student].items():
            failed = [f"{t['name']} ({t['points']:g}): {t['kind']}: {t['message']}"
                      for t in res.tests if t["exercise"] == ex_id and not t["passed"]]
            out.append({"case": case, "points": res.points.get(ex_id, 0.0), "max": res.max_points.get(ex_id, 0.0),
                        "failed": failed, "wall_s": res.wall_s})
    return out


def verdict(row: dict) -> bool:
    """Whether the case met its expectation."""
    pts, mx, expect = row["points"], row["max"], row["case"].expect
    if expect == "full":
        return mx > 0 and pts == mx
    if expect == "wrong":
        return pts <= mx / 2
    return pts < mx  # partial


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ex", default=None, help="only this exercise, e.g. 4.1")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("-v", "--verbose", action="store_true", help="show the failed tests of every case")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = run(args.ex, workers=args.workers)
    rows.sort(key=lambda r: (tuple(int(p) for p in r["case"].exercise.split(".")), r["case"].expect))
    for r in rows:
        c = r["case"]
        ok = "ok  " if verdict(r) else "MISS"
        print(f"{ok} {c.exercise:4} {c.expect:7} {r['points']:4g}/{r['max']:<3g} {c.name}")
        if args.verbose or not verdict(r):
            for f in r["failed"]:
                print(f"          - {f[:300]}")
    for expect in ("wrong", "partial", "full"):
        sel = [r for r in rows if r["case"].expect == expect]
        print(f"{expect}: {sum(map(verdict, sel))} / {len(sel)} as expected")
    print(f"audit: {len(rows)} cases in {time.perf_counter() - t0:.0f} s")
    return 0 if all(map(verdict, rows)) else 1


if __name__ == "__main__":
    sys.exit(main())
