"""The grading child: limits, sandbox, stubs; runs pytest on one submission."""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.util
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import assign, extract
from ._common import LIB_ROOT, InertModule
from .extract import notebooks_in
from .plugin import GradingPlugin, grading_test_dirs, pytest_args
from .references import use_rewritten

__all__: list[str] = []  # the grading child; started by child.py as `python -m course_lib.grading _child`

_real_exit = os._exit  # the grading child ends with this even after student code patched things

# Which isolation the grading children get: "auto" (bubblewrap when it works here, else the audit
# hook), "bwrap" (bubblewrap or an error), "audit" (the audit hook only; for tests and machines without
# user namespaces). Read by isolation().
ISOLATION_ENV = "COURSE_GRADING_ISOLATION"
BWRAP = "bubblewrap"
AUDIT = "audit-hook"


@dataclass(frozen=True)
class Isolation:
    """How grading children are isolated: ``kind`` is ``"bubblewrap"`` or ``"audit-hook"``, ``detail``
    says why (the bwrap version, or why bubblewrap is not used), ``bwrap`` is its path when used."""

    kind: str
    detail: str
    bwrap: str | None = None

    def line(self) -> str:
        if self.kind == BWRAP:
            return f"isolation: {BWRAP} ({self.detail}): each submission sees only Python, course_lib, the grading " \
                   f"tests and its own copy; private /tmp, no network"
        return (f"isolation: {AUDIT} ({self.detail}). WEAKER: an audit hook refuses reads, listings, writes and "
                f"processes outside the allowed folders, but code that goes around Python (ctypes, introspection) "
                f"can defeat it; install bubblewrap (apt-get install bubblewrap) for a real sandbox")


@lru_cache(maxsize=None)
def _probe_bwrap(bwrap: str) -> str | None:
    """None when ``bwrap`` can build a sandbox here (user namespaces allowed), else why not."""
    try:
        out = subprocess.run([bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                              "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "true"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return f"{bwrap} cannot run: {e}"
    if out.returncode != 0:
        return f"{bwrap} cannot build a sandbox here: {(out.stderr or out.stdout).strip()[-200:]}"
    return None


@lru_cache(maxsize=None)
def _bwrap_version(bwrap: str) -> str:
    try:
        return subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "bwrap"


def isolation(choice: str | None = None) -> Isolation:
    """The isolation grading children get on this machine (``choice``: ``"auto"``, ``"bwrap"`` or
    ``"audit"``; default ``$COURSE_GRADING_ISOLATION``, else ``"auto"``).

    Raises:
        RuntimeError: ``"bwrap"`` was asked for and bubblewrap does not work here.
        ValueError: an unknown choice.
    """
    choice = (choice or os.environ.get(ISOLATION_ENV) or "auto").strip().lower()
    if choice not in ("auto", "bwrap", "audit"):
        raise ValueError(f"grading isolation must be 'auto', 'bwrap' or 'audit' (${ISOLATION_ENV}), got {choice!r}")
    if choice == "audit":
        return Isolation(AUDIT, f"forced by {ISOLATION_ENV}=audit" if os.environ.get(ISOLATION_ENV) else "asked for")
    bwrap = shutil.which("bwrap")
    why = "bwrap is not installed" if bwrap is None else _probe_bwrap(bwrap)
    if why is None:
        return Isolation(BWRAP, _bwrap_version(bwrap), bwrap)
    if choice == "bwrap":
        raise RuntimeError(f"grading isolation 'bwrap' was asked for, but {why}")
    return Isolation(AUDIT, why)


def _python_dirs() -> list[str]:
    """What the interpreter and the installed packages need, read-only: prefixes, stdlib, site-packages."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), os.path.dirname(os.path.abspath(sys.executable))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            paths.add(sysconfig.get_paths()[key])
    with contextlib.suppress(AttributeError):
        paths.update(site.getsitepackages())
    out = set()
    for p in paths:
        if p and os.path.isdir(p):
            out.add(os.path.abspath(p))
            out.add(os.path.realpath(p))
    return sorted(out)


_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def visible_roots(base: Path, hide: list) -> tuple[list, list, list, list]:
    """(system folders, other read-only folders, hidden folders, read-write folders) of one grading child.

    System: /usr and the /lib folders (read-only), minus the hidden ones. Read-only: the interpreter and
    site-packages (never a folder that holds a hidden one), and course_lib. Hidden: each folder of
    ``hide`` (the course, the submissions, the batch's scratch folder) that lies inside a system folder
    (a course checked out under /usr/local). Read-write: ``base``, this submission's scratch folder
    (its copy, its work folder, its grading tests).
    """
    hide = [os.path.realpath(str(h)) for h in hide]
    python = [p for p in _python_dirs() if not any(_inside(h, p) for h in hide)]
    system = [d for d in _SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d) and not any(_inside(h, d) and h == d
                                                                                                 for h in hide)]
    hidden = sorted({h for h in hide if any(_inside(h, r) for r in system)})
    readonly = [p for p in python if p not in system] + [str(LIB_ROOT / "course_lib")]
    return system, readonly, hidden, [str(base)]


def bwrap_command(iso: Isolation, cmd: list, base: Path, work: Path, hide: list) -> list:
    """``cmd`` wrapped in bubblewrap: only the interpreter, site-packages, course_lib and ``base``
    (this submission's copy, work folder and grading tests) are visible; private /tmp, /proc and /dev;
    every namespace unshared (no network); no capabilities; the sandbox dies with its parent."""
    args = [iso.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
    system, readonly, hidden, readwrite = visible_roots(base, hide)
    for r in system:
        args += ["--ro-bind", r, r]
    for f in _SYSTEM_FILES:
        args += ["--ro-bind-try", f, f]
    for h in hidden:
        args += ["--tmpfs", h]  # hides a course (or submissions) folder that lies inside a system folder
    for r in readonly:
        args += ["--ro-bind", r, r]
    for r in readwrite:
        args += ["--bind", r, r]
    return args + ["--chdir", str(work), "--"] + list(cmd)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
                "os.setxattr", "os.removexattr", "os.chflags", "os.lchflags", "shutil.rmtree", "os.rename",
                "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.move",
                "shutil.chown"}
_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                   "os.forkpty", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "os.link",
                   "os.symlink"}
class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of plotting/widget modules get an inert stub: nothing can open a window or wait for a browser."""

    def find_spec(self, fullname, path=None, target=None):
        if any(fullname == m or fullname.startswith(m + ".") for m in assign.PLOTTING_MODULES):
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return InertModule(spec.name)

    def exec_module(self, module):
        pass  # the stub needs no code; _stub_names() finds it in namespaces


_NETWORK_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo"}
_LIST_EVENTS = {"os.listdir", "os.scandir"}  # glob, os.walk and pathlib list through these
_SYSTEM_READS = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/proc/self", "/proc/thread-self",
                 "/sys/devices/system/cpu", "/sys/fs/cgroup")


def _install_sandbox(writable: list[Path], readable: tuple | None = None) -> None:
    """An audit hook (cannot be removed): writes, deletes and renames only inside ``writable``;
    no processes started, no signals sent, no links made. With ``readable`` = (system, roots, hidden):
    files are opened for reading, and folders listed, only inside ``writable``, ``roots`` and the
    ``system`` folders minus ``hidden``; no libraries loaded through ctypes (what bubblewrap shows)."""
    roots = [os.path.realpath(p) for p in writable]
    read_system = [os.path.realpath(p) for p in readable[0]] if readable else []
    read_roots = [os.path.realpath(p) for p in readable[1]] + list(_SYSTEM_READS) if readable else None
    read_hidden = [os.path.realpath(p) for p in readable[2]] if readable else []

    def full_path(p):
        return os.path.realpath(os.path.join(os.getcwd(), os.fsdecode(p)))

    def inside(p) -> bool:
        if isinstance(p, int):
            return True  # an already open descriptor
        try:
            full = full_path(p)
        except Exception:
            return False
        return full == "/dev/null" or any(full == r or full.startswith(r + os.sep) for r in roots)

    def may_read(p) -> bool:
        if read_roots is None or inside(p):
            return True
        try:
            full = full_path("." if p is None else p)
        except Exception:
            return False
        return (any(_inside(full, r) for r in read_roots)
                or any(_inside(full, r) for r in read_system) and not any(_inside(full, h) for h in read_hidden))

    def hook(event, args):
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, 0))[:3]
            if (isinstance(flags, int) and flags & _WRITE_FLAGS or mode and any(c in str(mode) for c in "wax+")) \
                    and not inside(path):
                raise PermissionError(f"grading sandbox: writing to {path!r} is not allowed (only the current folder)")
            if path is not None and not may_read(path):
                raise PermissionError(f"grading sandbox: reading {path!r} is not allowed (only this submission, "
                                      f"Python and course_lib)")
        elif event in _LIST_EVENTS and read_roots is not None:
            path = args[0] if args else None
            if not isinstance(path, int) and not may_read("." if path is None else path):
                raise PermissionError(f"grading sandbox: listing {path!r} is not allowed (only this submission)")
        elif event in _NETWORK_EVENTS:
            raise PermissionError(f"grading sandbox: {event} is not allowed while grading (no network)")
        elif event in ("ctypes.dlopen", "ctypes.dlsym") and read_roots is not None:
            raise PermissionError(f"grading sandbox: {event} is not allowed while grading")
        elif event in _PATH_EVENTS:
            paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
            bad = [p for p in paths if not inside(p)]
            if bad:
                raise PermissionError(f"grading sandbox: {event} on {bad[0]!r} is not allowed (only the current folder)")
        elif event in _PROCESS_EVENTS:
            raise PermissionError(f"grading sandbox: {event} is not allowed while grading")

    sys.addaudithook(hook)


def _apply_limits(memory_mb: float, file_size_mb: float, cpu_s: float) -> None:
    import resource

    def cap(res, soft, hard=None):
        hard = soft if hard is None else hard
        old_soft, old_hard = resource.getrlimit(res)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        resource.setrlimit(res, (int(soft), int(hard)))

    # RLIMIT_DATA (heap + private anonymous maps, Linux >= 4.7) rather than RLIMIT_AS: shared
    # libraries (torch's are large, CUDA builds larger) do not count, student allocations do.
    cap(resource.RLIMIT_DATA, memory_mb * 2**20)
    cap(resource.RLIMIT_FSIZE, file_size_mb * 2**20)
    cap(resource.RLIMIT_CPU, cpu_s, cpu_s + 5)  # SIGXCPU at the soft limit, SIGKILL at the hard one
    cap(resource.RLIMIT_CORE, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too-large writes fail with OSError instead of killing


def _no_exit(*args, **kwargs):
    raise SystemExit(f"os._exit{args!r} is not allowed while grading")


class _ForgetHiddenTests:
    """Deletes this child's copy of the hidden tests once pytest has imported them, before any student
    code runs (cells run inside the tests): no student code can read their files, whatever it prints."""

    def __init__(self, folder: Path):
        self.folder = folder

    def pytest_collection_finish(self, session):
        shutil.rmtree(self.folder, ignore_errors=True)


def child_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="course_lib.grading _child")
    ap.add_argument("--root", required=True)
    ap.add_argument("--progress", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--timeout", type=float, default=10.0, help="CPU seconds per test")
    ap.add_argument("--wall-timeout", type=float, default=None, help="wall-clock backstop per test (seconds)")
    ap.add_argument("--ids", default="")
    ap.add_argument("--skip-file", default="")
    ap.add_argument("--hidden", action="store_true")
    ap.add_argument("--collect-only", action="store_true")
    ap.add_argument("--memory-mb", type=float, default=1536)
    ap.add_argument("--file-size-mb", type=float, default=16)
    ap.add_argument("--cpu-s", type=float, default=600)
    ap.add_argument("--base", default="", help="this submission's scratch folder (readable and writable)")
    ap.add_argument("--hide", default="", help="folders never readable (os.pathsep-separated)")
    ap.add_argument("--skip-after-timeout", action="store_true",
                    help="an exercise's tests after one that timed out fail at once (GradingPlugin)")
    args = ap.parse_args(argv)
    progress = open(args.progress, "a", encoding="utf-8")  # opened before the sandbox closes the door

    def sink(event):
        progress.write(json.dumps(event, ensure_ascii=False) + "\n")
        progress.flush()

    skip, skip_cells, timed_out = set(), {}, {}
    if args.skip_file and os.path.exists(args.skip_file):
        saved = json.loads(Path(args.skip_file).read_text())
        skip, timed_out = set(saved.get("tests", [])), saved.get("timed_out", {})
        for path, index, why in saved.get("cells", []):
            skip_cells[(path, index)] = why
    root = Path(args.root)
    if not args.collect_only:
        # pytest's own output gets a file of its own: student code that floods fd 1/2 (capped by the
        # file-size limit) can then break neither pytest's terminal nor the results.
        term = open(Path(args.progress).with_suffix(".pytest.txt"), "a", encoding="utf-8", errors="replace")
        sys.stdout = sys.stderr = term
        _apply_limits(args.memory_mb, args.file_size_mb, args.cpu_s)
        for name in ("numpy", "torch", "course_lib"):  # imported once, before the student's code
            with contextlib.suppress(Exception):
                __import__(name)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        sys.meta_path.insert(0, _StubFinder())
        os.chdir(args.work)
        if args.base:  # writes in the work folder and the tests' copy; reads in this submission's folder only
            system, readonly, hidden, readwrite = visible_roots(Path(args.base),
                                                                [h for h in args.hide.split(os.pathsep) if h])
            _install_sandbox([Path(args.work), root / "grading"], (system, readonly + readwrite, hidden))
        else:
            _install_sandbox([Path(args.work)])
        os._exit, os.abort = _no_exit, _no_exit
        extract.EVENT_SINK = sink
        if skip_cells:  # cells that crashed an earlier child: do not run them again
            index, _ = notebooks_in(os.environ.get("COURSE_SUBMISSION", "."))
            for nb in {id(n): n for n in index.values()}.values():
                for cell in nb.cells:
                    why = skip_cells.get((str(nb.path), cell.index))
                    if why:
                        extract.SKIPPED_CELLS[(str(nb.path), cell.index, cell.source)] = why
    import pytest

    ids = [i for i in args.ids.split(",") if i] or None
    plugin = GradingPlugin(sink, ids=ids, skip=skip, timeout=args.timeout, contain_interrupts=True, cpu_timeout=True,
                           skip_after_timeout=args.skip_after_timeout, timed_out=timed_out)
    extra = ["--collect-only"] if args.collect_only else ["--basetemp", str(Path(args.work) / "pytest-tmp")]
    wall = args.wall_timeout or args.timeout
    plugins = [plugin] + ([_ForgetHiddenTests(root / "grading" / "hidden")] if args.base and args.hidden
                          and not args.collect_only else [])
    use_rewritten()  # forked from a zygote: the test files' asserts are already rewritten
    code = pytest.main(pytest_args(root, wall, grading_test_dirs(root, args.hidden), extra), plugins=plugins)
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)  # bubblewrap's exit status carries no CPU time: say it here
    sink({"event": "exit", "code": int(code), "cpu_s": usage.ru_utime + usage.ru_stime})
    progress.close()
    sys.stdout.flush()
    sys.stderr.flush()
    _real_exit(0)  # skip atexit handlers the student's code may have registered
