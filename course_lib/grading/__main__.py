"""The command line: ``python -m course_lib.grading grade|check|collect|assign|release ...`` (and the
grading child). ``assign`` and ``release`` are reached through here rather than as
``python -m course_lib.grading.assign``: running a module of a package that the package's own
``__init__`` already imported makes runpy warn that it was "found in sys.modules"."""

from __future__ import annotations

import argparse
import os
import sys

from .batch import SubmissionsModifiedError, grade
from .check import check, check_all
from .collect import collect_submissions, hub_students
from .sandbox import child_main

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.grading grade SUBMISSIONS [--out gradebook.csv] [--feedback feedback/]``,
    ``python -m course_lib.grading check FOLDER [IDS...]``, ``python -m course_lib.grading assign [--check]``
    (exercises/ from solutions/), ``python -m course_lib.grading release OUT`` (the students' edition)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        child_main(argv[1:])
        return 0
    if argv[:1] in (["assign"], ["release"]):  # their own options: handed over untouched
        from . import assign, release
        module = assign if argv[0] == "assign" else release
        return module.main(argv[1:], prog=f"python -m course_lib.grading {argv[0]}")
    if argv[:1] == ["_zygote"]:
        from .zygote import zygote_main
        zygote_main(argv[1:])
        return 0
    ap = argparse.ArgumentParser(prog="python -m course_lib.grading", description="Grade exercise notebooks.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grade", help="grade a folder of submissions (one folder per student)")
    g.add_argument("submissions")
    g.add_argument("--out", default="gradebook.csv")
    g.add_argument("--feedback", default="feedback")
    g.add_argument("--workers", type=int, default=None)
    g.add_argument("--timeout-per-test", type=float, default=10.0, help="CPU seconds per test (default 10)")
    g.add_argument("--timeout-per-submission", type=float, default=None)
    g.add_argument("--no-hidden", action="store_true", help="leave out grading/hidden")
    g.add_argument("--root", default=None, help="the course folder (default: found automatically)")
    g.add_argument("--exercises", default=None, help="grade only these exercise ids, comma-separated (e.g. 4.3,5.4)")
    g.add_argument("--isolation", choices=("auto", "bwrap", "audit"), default=None,
                   help="bubblewrap sandbox or the weaker audit hook (default: $COURSE_GRADING_ISOLATION, else auto: "
                        "bubblewrap when it works here); the one used is printed")
    g.add_argument("--run-every-test", action="store_true",
                   help="run every test of an exercise even after one ran out of time (slower with loops; for a "
                        "function that loops on some inputs only)")
    g.add_argument("--fresh-processes", action="store_true",
                   help="start a fresh Python for every grading child instead of forking it from a warm zygote (slower)")
    sub.add_parser("assign", add_help=False, help="write exercises/ from solutions/ (--check: only compare)")
    sub.add_parser("release", add_help=False, help="write the students' edition of the course into OUT")
    h = sub.add_parser("collect", help="copy every hub student's exercise notebooks into a submissions folder")
    h.add_argument("out")
    h.add_argument("--hub", default=os.environ.get("COURSE_HUB_URL", "http://127.0.0.1:8000"))
    h.add_argument("--homes", default="/home/{username}", help="a student's home, with {username}")
    c = sub.add_parser("check", help="grade the saved notebooks of one folder and print the report")
    c.add_argument("folder")
    c.add_argument("ids", nargs="*")
    c.add_argument("--hidden", action="store_true")
    c.add_argument("--root", default=None)
    args = ap.parse_args(argv)
    if args.cmd == "collect":
        token = os.environ.get("COURSE_HUB_TOKEN")
        if not token:
            print("collect needs an admin token of the hub in COURSE_HUB_TOKEN (the hub's /hub/token page)",
                  file=sys.stderr)
            return 2
        found = collect_submissions(hub_students(args.hub, token), args.out, homes=args.homes)
        for name, notebooks in found.items():
            print(f"{name}: {len(notebooks)} notebook(s)" + ("" if notebooks else " (nothing found: a zero row)"))
        print(f"{len(found)} student(s) collected into {args.out}; grade them with: make grade SUBMISSIONS={args.out}")
        return 0
    if args.cmd == "grade":
        try:
            results = grade(args.submissions, args.out, args.feedback, workers=args.workers,
                            timeout_per_test=args.timeout_per_test, timeout_per_submission=args.timeout_per_submission,
                            hidden=not args.no_hidden, root=args.root,
                            exercises=args.exercises.split(",") if args.exercises else None,
                            isolation=args.isolation, processes="fresh" if args.fresh_processes else "zygote",
                            skip_after_timeout=not args.run_every_test)
        except SubmissionsModifiedError as e:
            print(e, file=sys.stderr)
            return 3
        except RuntimeError as e:  # bubblewrap asked for and not working
            print(e, file=sys.stderr)
            return 2
        used = results[0].isolation if results else "none"
        print(f"{len(results)} submission(s) graded with isolation {used}: {args.out}, feedback in {args.feedback}/")
        return 0
    if args.ids:
        results = [check(i, folder=args.folder, hidden=args.hidden, root=args.root) for i in args.ids]
        return 0 if all(r.passed for r in results) else 1
    return 0 if check_all(folder=args.folder, hidden=args.hidden, root=args.root).passed else 1



if __name__ == "__main__":
    sys.exit(main())
