"""How fast does the batch grader go, and how much memory does one grading process take?

Generates N submissions from the masters in ``solutions/`` (a class-like mix: mostly correct or
half right, some wrong answers and untouched stubs, and broken ones: a syntax error, sys.exit,
an infinite loop, a memory hog, a print flood, a file vandal), grades them with
``course_lib.grading.grade`` (one sandboxed subprocess per submission, ``--workers`` at a time)
and reports throughput and the peak resident memory of a grading process. Infinite loops cost
their tests' timeouts, so the mix and ``--timeout-per-test`` drive the throughput.

The same submissions are graded twice, side by side in one run: with a fresh Python per grading
child (``processes="fresh"``, the old way) and with children forked from a warm zygote per worker
(``processes="zygote"``, the default), both under the same isolation; the two gradebooks must agree.

Run: ``.venv/bin/python benchmarks/grading.py [--n 30] [--workers W] [--timeout-per-test 10] [--repeat R] [--demo]``
(``--demo`` grades the tiny demo course of the test suite instead of the real exercises; ``--repeat R`` grades
the batch R times each way, fresh first in odd rounds and zygote first in even ones, and sums the times:
``speedup_each_round`` then shows how much a shared machine's changing load moves the wall-clock ratio).
Also the CPU seconds of both runs (``fresh_cpu_s``, ``cpu_s``: the grading processes, the zygotes'
imports and reference trainings included; ``cpu_speedup_vs_fresh_process`` is their ratio, which a busy
machine changes far less than the wall clock) and the median CPU seconds of one submission in each mode.
Where the zygote mode's time goes: ``zygote_startup_cpu_s`` (the zygotes' imports and reference runs, paid
once per worker), ``cpu_speedup_without_startup`` (the CPU ratio once that start-up is spread over a large
class of this mix), ``cpu_by_kind`` (median CPU of one submission of each kind, fresh -> zygote, start-up
excluded) and ``zygote_cpu_by_exercise`` (CPU seconds of each exercise's tests per submission in a zygote's
child, largest first: the trainings with the student's own values). ``load_avg_*``: the machine's 1-minute load
before and after each mode (the wall-clock figures only mean something next to it).
Last lines: ``submissions_per_minute: X`` (zygote), ``fresh_submissions_per_minute: F``,
``speedup_vs_fresh_process: X/F`` (wall clock), ``max_rss_mb: M`` (peak resident memory of the largest grading
process; ``median_rss_mb`` is the typical one, ``grader_rss_mb`` the parent's) and ``isolation: ...``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from course_lib import grading

ROOT = Path(__file__).resolve().parents[1]
MIX = ["all_correct", "half_right", "all_correct", "wrong", "untouched", "all_correct", "syntax_error", "half_right",
       "sys_exit", "all_correct", "infinite_loop", "memory_hog", "half_right", "print_flood", "file_vandal"]


def _builder():
    path = ROOT / "tests" / "fixtures" / "submissions" / "make_submissions.py"
    spec = importlib.util.spec_from_file_location("make_submissions", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30, help="number of submissions (default 30)")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="parallel grading processes (default: cores)")
    ap.add_argument("--timeout-per-test", type=float, default=10.0)
    ap.add_argument("--demo", action="store_true", help="grade the test suite's tiny demo course")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of both modes, in alternating order (default 1)")
    args = ap.parse_args(argv)
    ms = _builder()
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        tmp = Path(tmp)
        root = ms.build_demo_course(tmp / "course") if args.demo else ROOT
        masters = ms._masters(root / "solutions")
        lasts = ms.last_exercises(root / "solutions")
        kinds = [MIX[i % len(MIX)] for i in range(args.n)]
        for i, kind in enumerate(kinds):
            ms.make_submission(kind, masters, tmp / "subs" / f"s{i:02d}_{kind}", victim=lasts[i % len(lasts)],
                               decoy=tmp / "decoy.txt")
        # Each round grades the batch both ways; the order alternates between rounds, so that load from other
        # work that comes or goes during a run does not always fall on the same mode.
        walls, cpus, books, runs, loads = ({"fresh": [], "zygote": []} for _ in range(5))
        for r in range(args.repeat):
            for mode in ("fresh", "zygote") if r % 2 == 0 else ("zygote", "fresh"):
                load0, t0 = os.getloadavg()[0], time.perf_counter()
                res = grading.grade(tmp / "subs", tmp / f"gradebook-{mode}.csv", tmp / f"feedback-{mode}",
                                    workers=args.workers, timeout_per_test=args.timeout_per_test, root=root,
                                    processes=mode, verbose=False)
                walls[mode].append(time.perf_counter() - t0)
                loads[mode].append(f"{load0:.1f} -> {os.getloadavg()[0]:.1f}")
                runs[mode] += res
                cpus[mode].append(sum(x.cpu_s for x in res))  # the grading processes (zygotes' start-up included)
                books[mode].append((tmp / f"gradebook-{mode}.csv").read_text())
        each = [round(f / z, 2) for f, z in zip(walls["fresh"], walls["zygote"])]
        walls, cpus = {m: sum(v) for m, v in walls.items()}, {m: sum(v) for m, v in cpus.items()}
    results, fresh = runs["zygote"], runs["fresh"]
    n_tests = len(results[0].tests) if results else 0
    startup = sum(r.startup_cpu_s for r in results)
    by_kind = {}
    for kind in dict.fromkeys(kinds):
        f = [r.cpu_s for r in fresh if r.student.split("_", 1)[1] == kind]  # folders are s00_<kind>, ...
        z = [r.cpu_s - r.startup_cpu_s for r in results if r.student.split("_", 1)[1] == kind]
        by_kind[kind] = f"{statistics.median(f):.1f} -> {statistics.median(z):.1f}"
    by_exercise = {}
    for r in results:
        for t in r.tests:
            by_exercise[t["exercise"]] = by_exercise.get(t["exercise"], 0.0) + t.get("cpu_s", 0.0) / len(results)
    top = sorted(by_exercise.items(), key=lambda kv: -kv[1])[:8]
    out = {
        "fresh_wall_s": round(walls["fresh"], 1),
        "wall_s": round(walls["zygote"], 1),
        "median_submission_s": round(statistics.median(r.wall_s for r in results), 2),
        "fresh_median_submission_cpu_s": round(statistics.median(r.cpu_s for r in fresh), 2),
        "median_submission_cpu_s": round(statistics.median(r.cpu_s for r in results), 2),
        "fresh_cpu_s": round(cpus["fresh"], 1),
        "cpu_s": round(cpus["zygote"], 1),
        "cpu_speedup_vs_fresh_process": round(cpus["fresh"] / cpus["zygote"], 2),
        "zygote_startup_cpu_s": round(startup, 1),
        "cpu_speedup_without_startup": round(cpus["fresh"] / max(cpus["zygote"] - startup, 1e-9), 2),
        "cpu_by_kind": ", ".join(f"{k} {v}" for k, v in by_kind.items()),
        "zygote_cpu_by_exercise": ", ".join(f"{k} {v:.2f}" for k, v in top),
        "load_avg_fresh": ", ".join(loads["fresh"]),
        "load_avg_zygote": ", ".join(loads["zygote"]),
        "speedup_each_round": ", ".join(map(str, each)),
        "median_rss_mb": round(statistics.median(r.max_rss_mb for r in results), 1),
        "grader_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "same_gradebook": len(set(books["fresh"] + books["zygote"])) == 1,
        "fresh_submissions_per_minute": round(len(fresh) / walls["fresh"] * 60, 2),
        "submissions_per_minute": round(len(results) / walls["zygote"] * 60, 2),
        "speedup_vs_fresh_process": round(walls["fresh"] / walls["zygote"], 2),
        "max_rss_mb": round(max(r.max_rss_mb for r in results), 1),
        "isolation": results[0].isolation if results else "none",
    }
    print(f"course: {'demo' if args.demo else root} ({n_tests} tests per submission)")
    mix = ", ".join(f"{k} x{kinds.count(k)}" for k in dict.fromkeys(kinds))
    print(f"submissions: {len(kinds)} x {args.repeat} round(s) ({mix})")
    print(f"workers: {args.workers}, timeout_per_test: {args.timeout_per_test:g} s")
    for key, value in out.items():
        print(f"{key}: {value}")
    return out


if __name__ == "__main__":
    main()
