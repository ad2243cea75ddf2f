"""Frames a learner sees: the training lab in JupyterLab, in headless Chromium, while it trains.

Called by ``live_plot.py`` when Chromium and Playwright are present. One JupyterLab server and one
page (the harness of ``tests/test_browser.py``); a notebook written to ``test-artifacts/bench/``
shows a :class:`~course_lib.ui.lab.TrainingLab` and starts a thread in the kernel that alternates,
``repeats`` times (default 36), a window of training with the live plot (the lab's Play, ``window``
seconds, default 3) and the same number of steps as a plain ``fit`` with no plot (same data, model,
seed), and reports steps/s of both. Many short pairs, in alternating order, rather than a few long
ones: on this kind of machine the speed of the same training drifts by 10-20% from one second to the
next (measured with no plot at all: pairs from 0.87 to 1.19), and a ratio of medians over 12 pairs
moves far less than one over 5.

Frames are counted in the page (see ``_COUNT_FRAMES``): every redraw of the lab's curves, which
the page draws from the SVG the kernel sends. Counted during the live windows.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-artifacts" / "bench"

# Counts the frames the page shows: the lab's curves are SVG the page redraws (a DOM change
# inside ``.course-live-curves``); other live figures are ipympl canvases (a ``drawImage``).
# Changes less than one display refresh (16 ms) apart reach the screen as one frame. The phases
# of the measurement (``on 3``, ``off 3``, ...) are time-stamped by the page too, when the kernel's
# text arrives, so frames per second are counted between the page's own times (textContent: no
# layout forced).
_COUNT_FRAMES = """
(() => {
  window.__frames = [];
  window.__phases = [];
  const frame = () => {
    const now = performance.now(), f = window.__frames;
    if (!f.length || now - f[f.length - 1] > 16) f.push(now);
  };
  const draw = CanvasRenderingContext2D.prototype.drawImage;
  CanvasRenderingContext2D.prototype.drawImage = function (...args) {
    if (this.canvas && this.canvas.closest && this.canvas.closest('.jupyter-matplotlib-canvas-div')) frame();
    return draw.apply(this, args);
  };
  new MutationObserver((records) => {
    if (records.some((r) => r.target.closest && r.target.closest('.course-live-curves'))) frame();
    const phase = records.map((r) => r.target.closest && r.target.closest('.bench-phase')).find((e) => e);
    if (phase) window.__phases.push([performance.now(), phase.textContent]);
  }).observe(document, {childList: true, subtree: true, characterData: true});
})();
"""

# Frames per second in each live window, from the page's time stamps (see _COUNT_FRAMES).
_FPS_BY_WINDOW = """(repeats) => {
  const ph = window.__phases, f = window.__frames, out = [];
  for (let i = 0; i < repeats; i++) {
    const k = ph.findIndex((p) => p[1].trim() === `on ${i}`);
    if (k < 0 || k + 1 >= ph.length) { out.push(null); continue; }
    const t0 = ph[k][0], t1 = ph[k + 1][0];
    out.push(f.filter((t) => t >= t0 && t < t1).length / ((t1 - t0) / 1000));
  }
  return out;
}"""

_PHASE = "document.querySelector('.bench-phase').textContent.trim()"
# How often the harness looks at the page for the next phase. Its looks are work for the page too:
# every 20 ms, they kept Chromium's renderer at 0.16 of a core during the no-plot windows (0.04 at
# 200 ms), which slowed the no-plot side the ratio divides by. The window times that matter come
# from the page (see _COUNT_FRAMES); this only decides when the harness reads the CPU counters.
_POLL_MS = 100
_TICK = os.sysconf("SC_CLK_TCK")


def _group(pid: int, cmdline: str) -> str:
    """Which part of the set-up a process belongs to (by its command line)."""
    if "ipykernel" in cmdline:
        return "kernel"
    if "jupyter-lab" in cmdline or "jupyterlab" in cmdline or "jupyter_server" in cmdline or "jupyter-server" in cmdline:
        return "server"
    if "chrom" in cmdline:
        return "chromium"
    if pid == os.getpid() or "playwright" in cmdline or "node" in cmdline.split(" ")[0]:
        return "harness"
    return "other"


def _cpu_by_group() -> tuple[float, dict]:
    """(now, {group: CPU seconds used so far}) of every process on the machine (Linux /proc)."""
    out: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        group = _group(int(entry), cmd)
        out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
    return time.perf_counter(), out


def _cores(a: tuple, b: tuple) -> dict:
    """CPU cores each group used between two samples of :func:`_cpu_by_group` (a process that ended in
    between is left out of the later sample: its group can look smaller, never larger)."""
    wall = max(b[0] - a[0], 1e-9)
    return {g: (b[1].get(g, 0.0) - a[1].get(g, 0.0)) / wall for g in sorted(set(a[1]) | set(b[1]))}

_SETUP = """\
from course_lib import ui
from course_lib.ui.lab import TrainingLab
FAST, DEVICE = ui.setup_notebook(seed=0)
lab = TrainingLab(**{settings!r}, max_steps=10**7, device="cpu")
lab.show()"""

# The lab with its frames switched off (``frames=False``): the same Play, callbacks and widgets, no
# frame until the window ends. Splits the live windows' cost into the lab's own loop and its frames.
_NO_FRAMES = """
lab.view.min_interval = lab.view.max_wait = 3600.0"""

# The kernel's side: windows of live training (Play) and of the same training without a plot.
_MEASURE = """\
import json, threading, time, ipywidgets as W
import torch
from course_lib import fit
from course_lib.models import MLP
bench = W.HTML("waiting"); bench.add_class("bench-phase"); display(bench)

def _off(steps):
    s = lab.settings
    torch.manual_seed(s["seed"])
    model = MLP(2, 3, width=s["width"], depth=s["depth"])
    t = time.perf_counter()
    fit(model, lab.data, loss_fn="cross_entropy", optimizer=s["optimizer"], lr=s["lr"],
        batch_size=s["batch_size"], num_steps=steps, eval_every=lab.eval_every, metrics=lab.metrics,
        baseline=lab.baseline, seed=s["seed"], device="cpu")
    return steps / (time.perf_counter() - t)

def _measure():
    time.sleep(3.0)                                   # the page shows the lab; first frames
    on, off, sent, steps = [], [], [], None
    for i in range({repeats}):
        # The order alternates (live first in even pairs, no plot first in odd ones): a machine
        # that speeds up or slows down during the run favours neither side.
        off_first = i % 2 == 1
        if off_first:
            bench.value = f"before {{i}}"
            off.append(_off(steps))
        lab.play()
        for _ in range(600):                          # the run's first step (slow on a busy machine)
            if lab.state is not None:
                break
            time.sleep(0.05)
        time.sleep(1.5 if i == 0 else 0.5)            # warm: the first frames of a run lay it out
        s0, t0, f0 = lab.state.step, time.perf_counter(), lab.view.frames
        bench.value = f"on {{i}}"
        time.sleep({window})
        s1, t1, f1 = lab.state.step, time.perf_counter(), lab.view.frames
        sent.append((f1 - f0) / (t1 - t0))
        bench.value = f"off {{i}}"
        lab.pause(); lab.wait(10)
        on.append((s1 - s0) / (t1 - t0))
        steps = max(200, s1 - s0)                     # the no-plot run: as many steps as this window
        if not off_first:
            off.append(_off(steps))
    bench.value = "done " + json.dumps({{"on": on, "off": off, "kernel_frames_per_second": sent}})

def _guarded():
    try:
        _measure()
    except Exception as err:                          # shown to the benchmark, which stops
        bench.value = f"failed {{type(err).__name__}}: {{err}}"

threading.Thread(target=_guarded, daemon=True).start()"""


def _notebook(settings: dict, repeats: int, window: float, kernel: str, frames: bool = True) -> Path:
    setup = _SETUP.format(settings=settings) + ("" if frames else _NO_FRAMES)
    cells = [setup, _MEASURE.format(repeats=repeats, window=window)]
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
                    for c in cells],
          "metadata": {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "live_bench.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    return path


def measure(settings: dict, repeats: int = 36, window: float = 3.0, frames: bool = True) -> dict:
    """``{"browser_frames_per_second": [...], "on": [...], "off": [...], "cores_on": [...], "cores_off": [...]}``
    per live window (``cores_*``: CPU cores each group of processes used in that window: the kernel, the
    Jupyter server, Chromium, this harness, the rest of the machine). ``frames=False``: the lab draws no
    frame during the live windows (see ``_NO_FRAMES``)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import tempfile

    from playwright.sync_api import sync_playwright
    from test_browser import _RUN_ALL_DONE, CHROMIUM, CHROMIUM_ARGS, KERNEL, LabServer, open_notebook, run_all

    with tempfile.TemporaryDirectory() as tmp:
        server = LabServer(Path(tmp))
        try:
            server.wait_ready()
            kernel = KERNEL if KERNEL in server.api("GET", "/api/kernelspecs")["kernelspecs"] else "python3"
            rel = _notebook(settings, repeats, window, kernel, frames).relative_to(ROOT).as_posix()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                page.add_init_script(_COUNT_FRAMES)
                open_notebook(page, server, rel)
                run_all(page)
                page.wait_for_function(_RUN_ALL_DONE, timeout=120_000, polling=250)
                phase = page.locator(".bench-phase").first
                phase.wait_for(timeout=30_000)
                page.locator(".course-live, .jupyter-matplotlib-figure canvas").first.scroll_into_view_if_needed()
                cores_on, cores_off, off_start = [], [], None
                for i in range(repeats):
                    page.wait_for_function(f"() => /^(on {i}|failed)/.test({_PHASE})", timeout=60_000,
                                           polling=_POLL_MS)
                    if phase.inner_text().startswith("failed"):
                        raise RuntimeError(f"the measurement in the kernel {phase.inner_text()}")
                    on_start = _cpu_by_group()
                    if off_start is not None:
                        cores_off.append(_cores(off_start, on_start))
                    page.wait_for_function(f"() => !{_PHASE}.startsWith('on {i}')", timeout=60_000,
                                           polling=_POLL_MS)
                    off_start = _cpu_by_group()
                    cores_on.append(_cores(on_start, off_start))
                page.wait_for_function(f"() => {_PHASE}.startsWith('done')", timeout=120_000, polling=_POLL_MS)
                cores_off.append(_cores(off_start, _cpu_by_group()))
                fps = page.evaluate(_FPS_BY_WINDOW, repeats)
                if None in fps:
                    raise RuntimeError(f"the page missed a phase of the measurement: {fps}")
                result = json.loads(phase.inner_text().split("done", 1)[1])
                page.screenshot(path=str(OUT / "live_bench.png"))
                browser.close()
        finally:
            server.stop()
    result["browser_frames_per_second"] = fps
    result["cores_on"], result["cores_off"] = cores_on, cores_off
    return result


if __name__ == "__main__":
    t = time.perf_counter()
    print(measure({"task": "spirals", "width": 64, "depth": 2, "noise": 0.05, "n_samples": 1000,
                   "train_fraction": 0.8, "lr": 0.01}), f"{time.perf_counter() - t:.0f} s")
