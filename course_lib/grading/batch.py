"""The batch grader: one child per submission (child.py starts and watches it), resume after crashes,
gradebook, feedback."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .._validation import check_number, check_type
from . import assign
from . import sandbox as sandbox_module
from .child import Limits, Progress, Zygote, run_child
from ._common import (DEFAULT_HINTS, LIB_ROOT, PointTotals, course_root, fmt_points, id_key, is_hidden, shown_to_student,
                      summarise)

__all__ = ["SubmissionResult", "SubmissionsModifiedError", "collect_tests", "grade"]


class SubmissionsModifiedError(RuntimeError):
    """Student files changed while they were being graded (this must never happen)."""


@dataclass
class SubmissionResult(PointTotals):
    """The grade of one submission.

    Attributes:
        student: the submission folder's name.
        points, max_points: ``{exercise id: points}`` earned and possible.
        tests: one dict per grading test (nodeid, exercise, points, passed, kind, message, hint, where, notes).
        notes: what happened to the grading process (crashes, restarts, output volume).
        wall_s: seconds spent on this submission; max_rss_mb: peak memory of its grading process(es);
        cpu_s: CPU seconds its grading process(es) used (what a busy machine does not change); with
            ``processes="zygote"`` the first submission of each worker also carries its zygote's start-up.
        startup_cpu_s: the part of ``cpu_s`` that is that start-up (imports, reference runs); 0 for the others.
        isolation: how its grading processes were isolated (``"bubblewrap"`` or ``"audit-hook"``).
    """

    student: str
    points: dict
    max_points: dict
    tests: list
    notes: list
    wall_s: float = 0.0
    max_rss_mb: float = 0.0
    isolation: str = ""
    cpu_s: float = 0.0
    startup_cpu_s: float = 0.0


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


def _timed_out(done: dict) -> dict:
    """``{exercise id: node id}`` of the tests that ran out of time themselves (not those failed after one)."""
    out = {}
    for nodeid, r in done.items():
        if r.get("kind") == "timeout" and not r.get("after_timeout"):
            out.setdefault(r["exercise"], nodeid)
    return out


def _retry_timeouts(root: Path, base: Path, limits: Limits, deadline: float, skip: dict, catalog: list, done: dict,
                    attempt: int) -> float:
    """Run every test that timed out once more, alone, in a fresh child, before it is scored as a
    timeout: a test slowed down by what else ran (its neighbours, the machine) gets a second,
    quiet chance; a loop that never ends costs its budget twice. The second result is final.

    With ``limits.skip_after_timeout`` the exercise's later tests were failed at once ("not run") when
    the first one timed out. If the retried test passes now, they are run after all (in one child);
    if it times out again they keep "not run": a loop costs two budgets per exercise, not two per test.
    Returns the CPU seconds these children used."""
    cpu = 0.0
    queue = [t["nodeid"] for t in catalog
             if done.get(t["nodeid"], {}).get("kind") == "timeout" and not done[t["nodeid"]].get("after_timeout")]
    everything = [t["nodeid"] for t in catalog]
    while queue:
        nodeid = queue.pop(0)
        if time.monotonic() >= deadline:
            break
        alone = {"tests": sorted(n for n in everything if n != nodeid), "cells": skip["cells"]}
        run = run_child(root, base, attempt, limits, deadline, alone)
        attempt, cpu = attempt + 1, cpu + run["cpu_s"]
        again = next((e for e in run["events"] if e["event"] == "result" and e["nodeid"] == nodeid), None)
        if again is None:  # the child died or was killed again: still a timeout, with the first reason
            again = dict(done[nodeid])
        done[nodeid] = {**again, "retried": True}
        waiting = [n for n in everything if done.get(n, {}).get("after_timeout") == nodeid]
        if not waiting or done[nodeid].get("kind") == "timeout" or time.monotonic() >= deadline:
            continue
        # Not a loop after all: the tests that were not run because of it run now.
        rest = {"tests": sorted(n for n in everything if n not in waiting), "cells": skip["cells"]}
        run = run_child(root, base, attempt, limits, deadline, rest)
        attempt, cpu = attempt + 1, cpu + run["cpu_s"]
        for e in run["events"]:
            if e["event"] == "result" and e["nodeid"] in waiting:
                done[e["nodeid"]] = e
                if e.get("kind") == "timeout" and not e.get("after_timeout"):
                    queue.append(e["nodeid"])
    return cpu


def grade_folder(folder: Path, name: str, base: Path, root: Path, catalog: list | None, limits: Limits) -> SubmissionResult:
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
    rss, cpu, attempt = 0.0, 0.0, 0
    if not copied:
        notes.append(f"no notebooks (.ipynb) found in {name}/: nothing to grade")
    while copied:
        remaining = [t for t in catalog if t["nodeid"] not in done] if catalog is not None else None
        if remaining == []:
            break
        if time.monotonic() >= deadline:
            notes.append("the submission used up its time before every test ran")
            break
        skip["tests"], skip["timed_out"] = sorted(done), _timed_out(done)
        run = run_child(root, base, attempt, limits, deadline, skip)
        attempt += 1
        rss, cpu = max(rss, run["rss_mb"]), cpu + run["cpu_s"]
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
    cpu += _retry_timeouts(root, base, limits, deadline, skip, catalog, done, attempt)
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
    order = sorted(max_points, key=id_key)
    return SubmissionResult(name, {k: points[k] for k in order}, {k: max_points[k] for k in order}, tests,
                            list(dict.fromkeys(notes)), round(time.monotonic() - t0, 2), round(rss, 1), limits.iso().kind,
                            round(cpu, 2))


def _run_collect(root: Path, hidden: bool) -> list:
    with tempfile.TemporaryDirectory(prefix="course-collect-") as tmp:
        progress = Path(tmp) / "catalog.jsonl"
        cmd = [sys.executable, "-m", "course_lib.grading", "_child", "--root", str(root), "--progress", str(progress),
               "--work", tmp, "--collect-only"] + (["--hidden"] if hidden else [])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(LIB_ROOT)] + (
            [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])), "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
        events = Progress(progress)
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


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).strip("._") or "student"


def _feedback_text(res: SubmissionResult, titles: dict) -> str:
    lines = [f"# Feedback for {res.student}", "", f"**Total: {fmt_points(res.total)} / {fmt_points(res.max_total)} points**", "",
             "| exercise | title | points |", "|---|---|---|"]
    for ex_id in res.max_points:
        lines.append(f"| {ex_id} | {titles.get(ex_id, '')} | {fmt_points(res.points[ex_id])} / {fmt_points(res.max_points[ex_id])} |")
    for ex_id in res.max_points:
        lines += ["", f"## Exercise {ex_id}" + (f": {titles[ex_id]}" if titles.get(ex_id) else "")
                  + f" ({fmt_points(res.points[ex_id])} / {fmt_points(res.max_points[ex_id])} points)", ""]
        for t in (shown_to_student(t) for t in res.tests if t["exercise"] == ex_id):
            mark, pts = ("PASS", t["points"]) if t["passed"] else ("FAIL", 0)
            lines.append(f"- {mark} `{t['name']}` ({fmt_points(pts)} / {fmt_points(t['points'])})")
            if not t["passed"]:
                label = "expected vs got" if t["kind"] == "assertion" and not is_hidden(t) else "what happened"
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


def exercise_titles(root: Path) -> dict:
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
          exercises: list | None = None, isolation: str | None = None, processes: str = "zygote",
          skip_after_timeout: bool = True, verbose: bool = True) -> list[SubmissionResult]:
    """Grade every submission folder and write the gradebook and one feedback file per student.

    Args:
        submissions_dir: one folder per student, each a copy of ``exercises/`` (``<student>/NN_*_exercises.ipynb``).
        out_csv: the gradebook: ``student, ex<id>..., total, max``, one row per folder, sorted by name.
        feedback_dir: ``<student>.md`` per student: every test, what was expected and what came back, a hint.
        workers (int): submissions graded at the same time, one subprocess each. Default: ``os.cpu_count()``.
        timeout_per_test (float): CPU seconds per grading test (the same on a busy machine as on a quiet
            one; a wide wall-clock backstop catches code that sleeps); an infinite loop costs that test only,
            and a test that runs out is run once more, alone, at the end before it counts as a timeout. Default: 10.
        timeout_per_submission (float): seconds for one submission, restarts included. Default:
            ``60 + n_tests * (timeout_per_test + 1)``.
        hidden (bool): include ``grading/hidden``. Default: True.
        memory_mb, file_size_mb: per-process limits (data segment; largest file written). Defaults: 1536, 16.
        root: the course folder (default: :func:`course_root`).
        exercises (list of str): grade only these exercise ids, e.g. ``["4.3"]``. Default: all.
        isolation (str): ``"auto"`` (bubblewrap when it works on this machine, else the weaker audit hook),
            ``"bwrap"`` (bubblewrap or an error) or ``"audit"``. Default: ``$COURSE_GRADING_ISOLATION``, else
            ``"auto"``. The one used is printed (``verbose``) and written in the gradebook's last column.
        processes (str): ``"zygote"``: each worker keeps one warm process (Python, torch and pytest imported,
            inside the same isolation) that forks a grading child per submission; ``"fresh"``: a new Python
            per child (slower: seconds of start-up each). Limits, timeouts and the watchdog are the same.
            Default: ``"zygote"``.
        skip_after_timeout (bool): once a test of an exercise ran out of time, that exercise's later tests
            are not run (they fail as timeouts, "not run") rather than each waiting out its budget; the
            test that timed out is run again alone, and if it passes then, the others run after all. A loop
            that never ends then costs two budgets per exercise instead of two per test. False: every
            test runs (for a function that loops on some inputs only). Default: True.

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
    if processes not in ("zygote", "fresh"):
        raise ValueError(f"grade(): 'processes' must be 'zygote' or 'fresh', got processes={processes!r}")
    ids = None if exercises is None else [str(i) for i in exercises]
    iso = sandbox_module.isolation(isolation)
    if verbose:
        print(iso.line(), file=sys.stderr, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="course-grading-"))
    local, zygotes, lock, spare = threading.local(), [], threading.Lock(), []

    def new_zygote(share=(0, 1)):
        with lock:
            workdir = tmp / f"worker-{len(zygotes)}"
            zygotes.append(workdir)
        z = Zygote(root, workdir, limits, share)
        with lock:
            zygotes[zygotes.index(workdir)] = z
        return z

    def this_threads_zygote():
        z = getattr(local, "zygote", None)
        if z is None or not z.alive:
            if z is not None:
                z.close()
            with lock:
                z = spare.pop() if spare else None
            z = local.zygote = z if z is not None and z.alive else new_zygote()
            if verbose and z.warm.get("failed"):  # the children compute (or fail on) these themselves
                print(f"grading tests' reference results not precomputed: {'; '.join(z.warm['failed'])[:2000]}",
                      file=sys.stderr, flush=True)
        return z

    limits = Limits(timeout_per_test, timeout_per_submission, memory_mb, file_size_mb, hidden, ids, iso,
                    (str(subs_dir),), this_threads_zygote if processes == "zygote" else None,
                    skip_after_timeout=bool(skip_after_timeout))

    def start_zygotes(n):
        """n zygotes at once, each computing 1/n of the reference results, then sharing them: the start-up's
        trainings are paid once per batch, not once per worker. Any failure: each worker starts its own."""
        with ThreadPoolExecutor(max_workers=n) as p:
            started = [p.submit(new_zygote, (k, n)) for k in range(n)]
        zs = [f.result() for f in started if f.exception() is None]
        try:
            if len(zs) < n:
                raise RuntimeError("a zygote did not start")
            for z in zs:
                z.finish([o.exchange for o in zs if o is not z])
            spare.extend(zs)
        except Exception:  # noqa: BLE001 - the lazy path below starts (and reports) zygotes one by one
            for z in zs:
                z.close()

    n_zygotes = min(workers, len(students))
    warming = threading.Thread(target=start_zygotes, args=(n_zygotes,), daemon=True)
    if processes == "zygote" and n_zygotes > 1 and ids is None:
        warming.start()  # while the tests are collected (with ``exercises``: once the files they need are known)
    try:
        catalog = _run_collect(root, hidden)
        if ids is not None:
            catalog = [t for t in catalog if t["exercise"] in ids]
        if not catalog:
            raise ValueError(f"grade(): no grading tests in {root / 'grading'}" + (f" for exercises {ids}" if ids else ""))
    except BaseException:
        if warming.ident:
            warming.join()
        for z in zygotes:
            if isinstance(z, Zygote):
                z.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if warming.ident:
        warming.join()
    if ids is not None:  # the zygotes warm only the references of the files these exercises' tests are in
        limits.warm_files = {t["nodeid"].split("::")[0] for t in catalog}
        if processes == "zygote" and n_zygotes > 1:
            start_zygotes(n_zygotes)

    def one(i_d):
        i, d = i_d
        base = tmp / f"{i:04d}"
        if processes == "zygote":  # inside this worker's folder: the only folder its zygote's sandbox shows
            base = this_threads_zygote().workdir / f"{i:04d}"
            shutil.rmtree(base, ignore_errors=True)  # nothing an earlier child of this worker may have put there
        try:
            res = grade_folder(d, d.name, base, root, catalog, limits)
            if processes == "zygote":
                z = this_threads_zygote()
                res.startup_cpu_s = round(getattr(z, "startup_cpu_s", 0.0), 2)
                res.cpu_s = round(res.cpu_s + res.startup_cpu_s, 2)
                z.startup_cpu_s = 0.0  # counted once
        except Exception as e:  # e.g. an unreadable file: this row gets zeros, the batch goes on
            tests = [_failed(t, "crash", f"not graded: the grader failed on this submission ({e!r})") for t in catalog]
            res = SubmissionResult(d.name, *summarise(tests, []), tests, [f"the grader failed: {e!r}"],
                                   isolation=iso.kind)
        finally:
            if processes == "zygote":  # the next submission of this worker must not find this one's files
                shutil.rmtree(base, ignore_errors=True)
        if verbose:
            print(f"graded {res.student}: {fmt_points(res.total)} / {fmt_points(res.max_total)} ({res.wall_s:.1f} s)",
                  file=sys.stderr, flush=True)
        return res

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, enumerate(students)))
    finally:
        for z in zygotes:
            if isinstance(z, Zygote):
                z.close()
        shutil.rmtree(tmp, ignore_errors=True)
    ex_ids = sorted({t["exercise"] for t in catalog}, key=id_key)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["student", *[f"ex{e}" for e in ex_ids], "total", "max", "isolation"])
        for r in results:
            w.writerow([r.student, *[fmt_points(r.points.get(e, 0.0)) for e in ex_ids], fmt_points(r.total),
                        fmt_points(r.max_total), r.isolation or iso.kind])
    feedback_dir.mkdir(parents=True, exist_ok=True)
    titles, used = exercise_titles(root), set()
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
