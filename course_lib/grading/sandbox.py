"""The grading child: limits, sandbox, stubs; runs pytest on one submission."""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.util
import json
import os
import signal
import sys
from pathlib import Path

from . import assign, extract
from ._common import InertModule
from .extract import notebooks_in
from .plugin import GradingPlugin, grading_test_dirs, pytest_args

__all__: list[str] = []  # the grading child; started by batch.py as `python -m course_lib.grading _child`

_real_exit = os._exit  # the grading child ends with this even after student code patched things


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


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
                "os.setxattr", "os.removexattr", "os.chflags", "os.lchflags", "shutil.rmtree", "os.rename",
                "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.move",
                "shutil.chown"}
_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                   "os.forkpty", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "os.link",
                   "os.symlink"}


def _install_sandbox(writable: list[Path]) -> None:
    """An audit hook (cannot be removed): writes, deletes and renames only inside ``writable``;
    no processes started, no signals sent, no links made."""
    roots = [os.path.realpath(p) for p in writable]

    def inside(p) -> bool:
        if isinstance(p, int):
            return True  # an already open descriptor
        try:
            full = os.path.realpath(os.path.join(os.getcwd(), os.fsdecode(p)))
        except Exception:
            return False
        return full == "/dev/null" or any(full == r or full.startswith(r + os.sep) for r in roots)

    def hook(event, args):
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, 0))[:3]
            if (isinstance(flags, int) and flags & _WRITE_FLAGS or mode and any(c in str(mode) for c in "wax+")) \
                    and not inside(path):
                raise PermissionError(f"grading sandbox: writing to {path!r} is not allowed (only the current folder)")
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
    args = ap.parse_args(argv)
    progress = open(args.progress, "a", encoding="utf-8")  # opened before the sandbox closes the door

    def sink(event):
        progress.write(json.dumps(event, ensure_ascii=False) + "\n")
        progress.flush()

    skip, skip_cells = set(), {}
    if args.skip_file and os.path.exists(args.skip_file):
        saved = json.loads(Path(args.skip_file).read_text())
        skip = set(saved.get("tests", []))
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
    plugin = GradingPlugin(sink, ids=ids, skip=skip, timeout=args.timeout, contain_interrupts=True, cpu_timeout=True)
    extra = ["--collect-only"] if args.collect_only else ["--basetemp", str(Path(args.work) / "pytest-tmp")]
    wall = args.wall_timeout or args.timeout
    code = pytest.main(pytest_args(root, wall, grading_test_dirs(root, args.hidden), extra), plugins=[plugin])
    sink({"event": "exit", "code": int(code)})
    progress.close()
    sys.stdout.flush()
    sys.stderr.flush()
    _real_exit(0)  # skip atexit handlers the student's code may have registered
