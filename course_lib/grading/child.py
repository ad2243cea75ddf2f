"""The grading child as seen from the parent: start one (a fresh Python, or a fork of a warm zygote),
watch it (per-test wall-clock backstop, the submission's deadline), read its progress, say how it ended."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import sandbox as sandbox_module
from ._common import LIB_ROOT

__all__ = ["Limits", "Progress", "Zygote", "child_env", "copy_grading_tests", "describe_exit", "output_tail", "run_child"]

class Progress:
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


def describe_exit(status: int, bwrapped: bool = False) -> str:
    code = os.waitstatus_to_exitcode(status)
    if bwrapped and 128 < code < 128 + 65:  # bubblewrap exits with 128 + the signal that killed its child
        code = 128 - code
    if code >= 0:
        return f"the grading process exited with code {code}"
    sig = -code
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
    why = {"SIGSEGV": "a crash (segmentation fault)", "SIGKILL": "killed (out of memory or time)",
           "SIGXCPU": "its CPU time limit", "SIGABRT": "an abort"}.get(name, "a signal")
    return f"the grading process died from {name} ({why})"


def child_env(root: Path, submission: Path, work: Path, cell_timeout: float) -> dict:
    keep = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "TZ", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    pythonpath = [str(LIB_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env.update({
        "PYTHONPATH": os.pathsep.join(pythonpath), "COURSE_ROOT": str(root), "COURSE_SUBMISSION": str(submission),
        "COURSE_GRADING": "1", "COURSE_CELL_TIMEOUT": f"{cell_timeout:g}", "HOME": str(work),
        "TMPDIR": str(work / "tmp"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8",
        "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": "",  # graded on the CPU: same numbers everywhere
    })
    return env


@dataclass
class Limits:
    timeout_per_test: float = 10.0  # CPU seconds: the same budget on a busy machine as on a quiet one
    timeout_per_submission: float | None = None
    memory_mb: float = 1536
    file_size_mb: float = 16
    hidden: bool = True
    ids: list | None = None
    isolation: sandbox_module.Isolation | None = None  # None: sandbox.isolation() (bubblewrap when it works)
    hide: tuple = ()  # folders no child may see besides the course (the submissions, the batch's scratch folder)
    zygote: object = None  # a callable giving this thread's Zygote; None: a fresh process per child
    warm_files: set | None = None  # the test files (``tests/test_ex04.py``) whose references a zygote warms; None: all
    skip_after_timeout: bool = True  # an exercise's later tests fail at once after one timed out (see batch._retry_timeouts)

    def iso(self) -> sandbox_module.Isolation:
        if self.isolation is None:
            self.isolation = sandbox_module.isolation()
        return self.isolation

    @property
    def wall_per_test(self) -> float:
        """The wall-clock backstop of a test (code that sleeps or blocks uses no CPU time): wide enough
        that a test within its CPU budget meets it even when other work takes most of the machine."""
        return max(4 * self.timeout_per_test, self.timeout_per_test + 20)


class Zygote:
    """The parent's handle on one warm zygote (see zygote.py): one grading child at a time."""

    def __init__(self, root: Path, workdir: Path, limits: Limits, share: tuple = (0, 1)):
        """Start a zygote and wait until it is ready; with ``share = (k, n)``, n > 1, until it computed its
        share of the reference results (``self.exchange``: the file that holds them): :meth:`finish` then
        hands it the other zygotes' files."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        warm = workdir / "warm"  # the zygote computes the tests' reference results from it, then deletes it
        copy_grading_tests(root, warm, limits.hidden)
        if limits.warm_files is not None:  # grading some exercises only: the other files' runs are not needed
            for path in (warm / "grading").glob("*/test_*.py"):
                if f"{path.parent.name}/{path.name}" not in limits.warm_files:
                    path.unlink()
        cmd = [sys.executable, "-m", "course_lib.grading", "_zygote", "--warm", str(warm)]
        self.exchange = workdir / f"warm-share-{share[0]}.pkl" if share[1] > 1 else None
        if self.exchange:
            cmd += ["--share", f"{share[0]}/{share[1]}", "--exchange", str(self.exchange)]
        iso = limits.iso()
        if iso.kind == sandbox_module.BWRAP:
            hide = [str(root)] + [str(h) for h in limits.hide] + [str(workdir.parent)]
            cmd = sandbox_module.bwrap_command(iso, cmd + ["--sandboxed"], workdir, workdir, hide)
        env = child_env(root, workdir, workdir, 5.0)
        self.stderr = open(workdir / "zygote-stderr.txt", "ab")
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, start_new_session=True, bufsize=0)
        self.buf = b""
        ready = self._read(600)  # imports and reference trainings: about 10 s of CPU, minutes on a crowded machine
        shutil.rmtree(warm, ignore_errors=True)
        self.waiting = bool(self.exchange and ready and "warmed" in ready)
        if not self.waiting:
            self._ready(ready)

    def finish(self, others: list) -> None:
        """Give this zygote the other zygotes' shares of the reference results (their ``exchange`` files,
        copied into its folder: the only one its sandbox shows) and wait until it is ready."""
        if not self.waiting:
            return
        self.waiting, names = False, []
        for i, path in enumerate(others):
            with contextlib.suppress(OSError):
                shutil.copyfile(path, self.workdir / f"warm-in-{i}.pkl")
                names.append(str(self.workdir / f"warm-in-{i}.pkl"))
        self._send({"load": names})
        self._ready(self._read(600))

    def _ready(self, ready: dict | None) -> None:
        self.warm = (ready or {}).get("warm", {})
        self.startup_cpu_s = (ready or {}).get("cpu_s", 0.0)  # imports and reference runs, once per worker
        if not ready or "ready" not in ready:
            self.close()
            raise RuntimeError(f"the grading zygote did not start: {output_tail(self.workdir / 'zygote-stderr.txt')}")

    def _read(self, timeout: float) -> dict | None:
        import select
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(end - time.monotonic(), 0))
            if not ready:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return {"eof": True}
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def _send(self, msg: dict) -> bool:
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def start(self, argv: list, env: dict, cwd: Path, stdout: Path, stderr: Path) -> bool:
        ok = self._send({"argv": argv, "env": env, "cwd": str(cwd), "stdout": str(stdout), "stderr": str(stderr)})
        reply = self._read(60) if ok else None
        return bool(reply and "pid" in reply)

    def poll(self) -> tuple | None:
        """(wait status, peak RSS in MB, CPU seconds) once the child ended, else None. A zygote that died
        reports SIGKILL."""
        reply = self._read(0)
        if reply is None:
            return None
        if "eof" in reply:
            return (signal.SIGKILL, 0.0, 0.0)
        return (reply["status"], reply["rss_kb"] / 1024, reply.get("cpu_s", 0.0))

    def kill(self) -> None:
        self._send({"kill": True})

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.stdin.close()
        with contextlib.suppress(Exception):
            self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.proc.wait(10)
        self.stderr.close()


def copy_grading_tests(root: Path, course: Path, hidden: bool) -> None:
    """A fresh copy of the grading tests this run needs (the shipped ones, the hidden ones when graded) in
    the child's own folder: the child sees no other file of the course, and deletes its copy of the
    hidden tests once pytest has imported them."""
    dst = course / "grading"
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    src = root / "grading"
    for name in ("conftest.py", "pytest.ini"):
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    for d in ["tests"] + (["hidden"] if hidden else []):
        if (src / d).is_dir():
            shutil.copytree(src / d, dst / d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


def run_child(root: Path, base: Path, attempt: int, limits: Limits, deadline: float, skip: dict) -> dict:
    """One grading child; returns its events, how it ended, its peak memory and the CPU seconds it used."""
    work = base / "work"
    progress_path, skip_path = base / f"progress-{attempt}.jsonl", base / "skip.json"
    skip_path.write_text(json.dumps(skip))
    course = base / "course"
    copy_grading_tests(root, course, limits.hidden)
    hide = [str(root)] + [str(h) for h in limits.hide] + [str(base.parent)]
    cpu_s = max(deadline - time.monotonic(), 1.0) + 10
    cmd = [sys.executable, "-m", "course_lib.grading", "_child", "--root", str(course), "--progress", str(progress_path),
           "--work", str(work), "--timeout", f"{limits.timeout_per_test:g}", "--skip-file", str(skip_path),
           "--wall-timeout", f"{limits.wall_per_test:g}", "--base", str(base), "--hide", os.pathsep.join(hide),
           "--memory-mb", f"{limits.memory_mb:g}", "--file-size-mb", f"{limits.file_size_mb:g}", "--cpu-s", f"{cpu_s:.0f}"]
    cmd += (["--hidden"] if limits.hidden else []) + (["--ids", ",".join(limits.ids)] if limits.ids else [])
    cmd += ["--skip-after-timeout"] if limits.skip_after_timeout else []
    iso = limits.iso()
    env = child_env(course, base / "submission", work, max(min(5.0, limits.timeout_per_test / 2), 0.5))
    zygote = limits.zygote() if limits.zygote else None
    if zygote is not None:  # forked from the warm zygote: same child, same limits, no interpreter start-up
        if not zygote.start(cmd[4:], env, work, base / "stdout.txt", base / "stderr.txt"):
            raise RuntimeError(f"the grading zygote did not start a child: {output_tail(zygote.workdir / 'zygote-stderr.txt')}")
        poll, kill = zygote.poll, zygote.kill
    else:
        if iso.kind == sandbox_module.BWRAP:
            cmd = sandbox_module.bwrap_command(iso, cmd, base, work, hide)
        with open(base / "stdout.txt", "ab") as out, open(base / "stderr.txt", "ab") as err:
            proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)

        def poll():
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            return (status, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime) if pid else None

        def kill():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    bwrapped = iso.kind == sandbox_module.BWRAP and zygote is None
    reader, killed, current, since, cell = Progress(progress_path), None, None, 0.0, None
    wall, grace = limits.wall_per_test, max(5.0, limits.timeout_per_test)  # pytest-timeout stops a test first
    while True:
        ended = poll()
        if ended:
            status, rss_mb, used_cpu = ended
            break
        for ev in reader.poll():
            if ev["event"] == "start":
                current, since = ev["nodeid"], time.monotonic()
            elif ev["event"] == "result":
                current = None
        now = time.monotonic()
        if killed is None and current and now - since > wall + grace:
            killed = (f"the test ran past {limits.timeout_per_test:g} s and ignored the timeout; it was killed after "
                      f"{wall + grace:g} s (wall clock)")
        elif killed is None and now > deadline:
            killed = "the submission used up its time (timeout_per_submission); the grader killed it"
        if killed:
            kill()
        time.sleep(0.05)
    reader.poll()
    for ev in reader.events:
        if ev["event"] == "cell":
            cell = (ev["notebook"], ev["index"])
        elif ev["event"] == "cell_done":
            cell = None
    exit_code = next((e["code"] for e in reader.events if e["event"] == "exit"), None)
    used_cpu = max([used_cpu] + [e.get("cpu_s", 0.0) for e in reader.events if e["event"] == "exit"])
    tail = output_tail(progress_path.with_suffix(".pytest.txt")) or output_tail(base / "stderr.txt")
    return {"events": reader.events, "ended": exit_code is not None, "exit_code": exit_code,
            "reason": killed or describe_exit(status, bwrapped), "killed": killed is not None,
            "rss_mb": rss_mb, "cpu_s": used_cpu, "cell": cell, "tail": tail}


def output_tail(path: Path, size: int = 16384) -> str:
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
