"""How long ``make present NB=03`` takes to give an interactive page, and where the time goes.

1. Where: the lesson run in a fresh kernel as Voila runs it (lecture theme, class mode unless
   ``--fast``), cell by cell with nbclient: kernel start, then each code cell's seconds.
2. How long: ``python -m course_lib.ui.present NB`` (what ``make present`` runs, preheated kernel
   included) on a free port; headless Chromium opens the page at once and waits for the lab's
   slider (``first_page_s``, from the command's start); then, once the server has run the lesson
   again in its spare kernel, a second visitor's page (``next_page_s``, from that page's request).
   Lesson 03's example runs are read from the cache (``ui.example_runs``) where it has them: pass
   ``--cache-dir`` an empty folder for a first launch, the same one again for a later launch.

Run: ``.venv/bin/python benchmarks/present_startup.py [--fast] [--nb 03] [--skip-cells]``.
Prints ``key: value`` lines and the machine's load average (timings on a busy machine stretch).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
HANDLE = ".lr-slider .noUi-handle"   # the lab's lr slider: the page is interactive when it shows


def cell_times(nb_path: Path, env: dict) -> list[tuple[str, float]]:
    """(what, seconds): the kernel's start, then every code cell, in a fresh kernel."""
    import nbformat
    from nbclient import NotebookClient

    old = dict(os.environ)
    os.environ.update(env)             # the kernel inherits this process's environment
    try:
        nb = nbformat.read(nb_path, as_version=4)
        client = NotebookClient(nb, kernel_name="loss-scaling", timeout=1800,
                                resources={"metadata": {"path": str(nb_path.parent)}})
        t0 = time.perf_counter()
        out = []
        with client.setup_kernel():
            out.append(("kernel start", time.perf_counter() - t0))
            for i, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    t = time.perf_counter()
                    client.execute_cell(cell, i)
                    first = (cell.source.strip().splitlines() or [""])[0][:50]
                    out.append((f"cell {i}: {first}", time.perf_counter() - t))
        return out
    finally:
        os.environ.clear()
        os.environ.update(old)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_times(nb: str, env: dict) -> dict:
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS

    port = _free_port()
    log = open(ROOT / "test-artifacts" / "bench" / "present.log", "w")  # noqa: SIM115 - closed below
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "course_lib.ui.present", nb, "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    out = {}
    try:
        url = next(ln.strip() for ln in proc.stdout if "token=" in ln)
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.2)
        out["listening_s"] = round(time.perf_counter() - t0, 1)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(url, wait_until="commit", timeout=60_000)
            page.locator(HANDLE).first.wait_for(state="visible", timeout=900_000)
            out["first_page_s"] = round(time.perf_counter() - t0, 1)
            page.close()
            # The server now runs the lesson again in a spare kernel; wait for as long as the first took.
            time.sleep(out["first_page_s"] + 10)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            t1 = time.perf_counter()
            page.goto(url, wait_until="commit", timeout=60_000)
            page.locator(HANDLE).first.wait_for(state="visible", timeout=900_000)
            out["next_page_s"] = round(time.perf_counter() - t1, 1)
            browser.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nb", default="03")
    parser.add_argument("--fast", action="store_true", help="COURSE_FAST=1 (the test suite's quick run)")
    parser.add_argument("--skip-cells", action="store_true", help="only the page timings")
    parser.add_argument("--cache-dir", help="COURSE_CACHE_DIR for the lesson's kernels (default: the course's own)")
    args = parser.parse_args(argv)
    from course_lib.ui.present import lesson_path

    (ROOT / "test-artifacts" / "bench").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, COURSE_LECTURE="1", PYTHONPATH=str(ROOT))
    env.pop("MPLBACKEND", None)
    if args.cache_dir:
        env["COURSE_CACHE_DIR"] = str(Path(args.cache_dir).resolve())
    if args.fast:
        env["COURSE_FAST"] = "1"
    else:
        env.pop("COURSE_FAST", None)
    results = {"load_average_1min_before": os.getloadavg()[0]}
    if not args.skip_cells:
        times = cell_times(lesson_path(args.nb), env)
        for what, s in times:
            print(f"{re.sub(r'[:]', '', what)}: {s:.2f}")
        results["run_all_s"] = round(sum(s for _, s in times), 1)
    results.update(page_times(args.nb, env))
    results["load_average_1min_after"] = os.getloadavg()[0]
    for k, v in results.items():
        print(f"{k}: {v}")
    return results


if __name__ == "__main__":
    main()
