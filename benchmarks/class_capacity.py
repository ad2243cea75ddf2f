"""How many students one machine holds: peak memory and CPU of a student's kernel per lesson.

Each lesson notebook runs in its own fresh kernel, in class mode (COURSE_FAST unset) unless
``--fast``, exactly as a student's Run All would; the kernel's resident memory (RSS, the kernel
process and its children) is sampled every 0.1 s. From the worst lesson's peak it prints how many
students fit in 8, 16 and 64 GB, keeping 2 GB for the system and the hub, and the per-student
limits the hub configurations use (the peak plus a 50% margin, rounded up to 256 MB).

Run: ``.venv/bin/python benchmarks/class_capacity.py [--fast] [notebooks/NN_*.ipynb ...]``
Prints ``key: value`` lines.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_RESERVE_GB = 2.0


def _rss_tree(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measure(path: Path, fast: bool) -> dict:
    """Run one notebook in a fresh kernel; its peak RSS (MB), CPU seconds and wall seconds."""
    env_fast = os.environ.pop("COURSE_FAST", None)
    if fast:
        os.environ["COURSE_FAST"] = "1"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=900, resources={"metadata": {"path": str(path.parent)}})
    peak, stop = [0], threading.Event()

    def sample(pid: int):
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_tree(pid))
            time.sleep(0.1)

    t0 = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid  # the kernel process
        kernel = psutil.Process(pid)
        sampler = threading.Thread(target=sample, args=(pid,), daemon=True)
        sampler.start()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        cpu = kernel.cpu_times()
        stop.set()
        sampler.join()
    if env_fast is not None:
        os.environ["COURSE_FAST"] = env_fast
    elif not fast:
        os.environ.pop("COURSE_FAST", None)
    return {"peak_mb": peak[0] / 2**20, "cpu_s": cpu.user + cpu.system, "wall_s": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--fast", action="store_true", help="fast mode (the test suite's sizes) instead of class mode")
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))  # 02b, 06b too
    print(f"mode: {'fast' if args.fast else 'class'}")
    worst = 0.0
    for path in paths:
        r = measure(path, args.fast)
        worst = max(worst, r["peak_mb"])
        print(f"{path.stem}_peak_rss_mb: {r['peak_mb']:.0f}")
        print(f"{path.stem}_cpu_s: {r['cpu_s']:.1f}")
        print(f"{path.stem}_wall_s: {r['wall_s']:.1f}", flush=True)
    limit_mb = 256 * math.ceil(worst * 1.5 / 256)
    print(f"worst_peak_rss_mb: {worst:.0f}")
    print(f"per_student_mem_limit_mb: {limit_mb}")
    for gb in (8, 16, 64):
        print(f"students_per_{gb}gb_machine: {int((gb - SYSTEM_RESERVE_GB) * 1024 // limit_mb)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
