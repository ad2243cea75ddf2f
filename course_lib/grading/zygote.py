"""A warm grading process: imports Python, torch and pytest once, then forks one grading child per run.

Starting Python and importing torch costs seconds; a fork costs milliseconds. The batch grader
starts one zygote per worker (inside bubblewrap when it is used: the zygote's sandbox shows only the
interpreter, site-packages, course_lib and the worker's scratch folder, which holds one submission
at a time) and asks it for a child per grading run. Each child is the same grading child as a fresh
process (``sandbox.child_main``): limits, audit hook, stubs and timeouts are applied after the fork.

Before it says it is ready, the zygote runs the grading tests' reference helpers once (references.py;
``--warm FOLDER``: a copy of the grading tests the parent made, deleted right after). With
``--share k/n --exchange FILE`` the batch's n zygotes split that work: each computes its share, pickles it
to FILE, says ``{"warmed": pid}`` and waits for ``{"load": [files]}`` (the others' shares, copied into
its folder by the parent), all before any child exists.

Protocol (JSON lines; the zygote reads stdin, writes stdout):
  -> ``{"argv": [...], "env": {...}, "cwd": ..., "stdout": path, "stderr": path}``  <- ``{"pid": n}``
  -> ``{"kill": true}`` (optional)                                                   <- ``{"status": s, "rss_kb": k, "cpu_s": c}``
Before each fork the zygote kills whatever an earlier child left running in its sandbox, and the
parent deletes the earlier submission's folder: nothing of one submission is alive or on disk when
the next one starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import traceback

__all__: list[str] = []  # started by child.py as `python -m course_lib.grading _zygote`

_real_exit = os._exit  # the child patches os._exit (student code must not call it); the zygote's own exits use this

# torch._dynamo: the first optimizer a process builds imports it (about 1.2-1.9 s of CPU, 3-6 s on a busy machine):
# every grading child would pay that again.
PRELOAD = ("numpy", "pandas", "torch", "torch.nn", "torch.nn.functional", "torch._dynamo", "pytest", "_pytest.main",
           "_pytest.python", "_pytest.fixtures", "_pytest.terminal", "pytest_timeout", "pluggy", "course_lib",
           "course_lib.train", "course_lib.data", "course_lib.models", "course_lib.losses", "course_lib.grading.sandbox",
           "course_lib.grading.plugin", "course_lib.grading.extract", "course_lib.grading.assign",
           "course_lib.grading.references")


class _Lines:
    """Whole lines from a file descriptor, without blocking when asked not to."""

    def __init__(self, fd: int):
        self.fd, self.buf, self.eof = fd, b"", False

    def get(self, timeout: float | None) -> dict | None:
        while b"\n" not in self.buf:
            if self.eof:
                return None
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def _say(msg: dict) -> None:
    os.write(1, (json.dumps(msg) + "\n").encode())


def _clear_leftovers(me: int) -> None:
    """Kill every process of this sandbox but its init (pid 1) and the zygote. Only called inside
    bubblewrap (a pid namespace of its own): elsewhere /proc lists the whole machine. (Its /tmp is not
    emptied: the worker's folder is mounted below it; the children's audit hook refuses writes there.)"""
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in (1, me):
            with contextlib.suppress(OSError):
                os.kill(int(name), signal.SIGKILL)


def _child(req: dict) -> None:
    """In the forked child: its own session, its own output files, the request's environment, then the
    grading child proper. Never returns."""
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (null, out, err):
            os.close(fd)
        os.environ.clear()
        os.environ.update(req["env"])
        import tempfile
        tempfile.tempdir = None  # TMPDIR is the child's own
        os.chdir(req["cwd"])
        from .sandbox import child_main
        child_main(req["argv"])
    except BaseException:  # noqa: B036 - whatever happens, the child must not return into the zygote's loop
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
        _real_exit(70)
    _real_exit(0)


def _not_dumpable() -> None:
    """PR_SET_DUMPABLE 0: a grading child (same user) cannot read or write the zygote's memory."""
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)


def _warm(folder: str, share: tuple) -> dict:
    """The grading tests' reference results (this zygote's ``share`` of them) and their assertion-rewritten
    code (references.py), computed once for every child this zygote forks; then the copy of the tests is
    deleted (hidden ones included) before any child exists."""
    from .references import rewrite_once, warm_references
    folders = [os.path.join(folder, "grading", "tests"), os.path.join(folder, "grading", "hidden")]
    try:
        with contextlib.suppress(Exception):
            return {**warm_references(folders, share), "rewritten": rewrite_once(folders)}
        return {}
    finally:
        import gc
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
        gc.collect()  # the warm-up's test modules: not carried into every child


def zygote_main(argv: list[str]) -> None:
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            __import__(name)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    share = tuple(int(v) for v in argv[argv.index("--share") + 1].split("/")) if "--share" in argv else (0, 1)
    warmed = _warm(argv[argv.index("--warm") + 1], share) if "--warm" in argv else {}
    lines = _Lines(0)
    keys = warmed.pop("keys", [])
    if "--exchange" in argv:  # the batch's zygotes split the reference runs: hand ours over, take theirs
        from .references import load_results, save_results
        mine = argv[argv.index("--exchange") + 1]
        warmed["shared"] = save_results(mine, keys)
        _say({"warmed": os.getpid()})
        req = lines.get(None) or {}
        warmed["loaded"] = load_results(req.get("load", []))
        with contextlib.suppress(OSError):
            os.unlink(mine)  # the parent copied it before sending "load"; no child may find it
    _not_dumpable()
    import gc
    gc.collect()
    gc.freeze()  # what is here now is never collected: a child's collections skip it (and leave its pages shared)
    me, sandboxed = os.getpid(), "--sandboxed" in argv
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _say({"ready": me, "warm": warmed, "cpu_s": usage.ru_utime + usage.ru_stime})
    while True:
        req = lines.get(None)
        if req is None:
            break
        if "argv" not in req:
            continue  # a late kill for a child that already ended
        if sandboxed:
            _clear_leftovers(me)
        pid = os.fork()
        if pid == 0:
            _child(req)
        _say({"pid": pid})
        while True:
            cmd = lines.get(0.02)
            if cmd is not None and cmd.get("kill") or lines.eof:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            wpid, status, usage = os.wait4(pid, os.WNOHANG)
            if wpid:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)  # anything the child left in its group
                _say({"status": status, "rss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime})
                break
        if lines.eof:
            break
    _real_exit(0)
