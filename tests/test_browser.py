"""A real browser on the live training lab: JupyterLab + headless Chromium driven by Playwright.

What the issue asks (marker ``browser``): start JupyterLab on 127.0.0.1 with a token, open
notebook 03 (``03_reading_loss_curves``), Run All, move the LR slider with the keyboard while
training runs, and check that the loss plot really animates (at least 3 distinct frames) and that
the plot after the slider moved differs from the one before. Screenshots are kept as artifacts in
``test-artifacts/browser/<case>/`` (frames, full pages at key moments, a summary, the server log).

Skipped when Chromium (Debian's ``chromium``) or the ``playwright`` package is missing, unless
``REQUIRE_BROWSER=1`` (``.ci/run`` sets it): then missing pieces fail the test, so CI can never
skip it silently.

Frames are detected from the outside only: an element screenshot of the plot (the ipympl canvas,
or the ``ipywidgets.Image`` that ``course_lib.ui.live.LiveFigure`` falls back to) every ~150 ms,
hashed; two frames are the same iff their PNG bytes are (Chromium's encoder is deterministic).
At least 3 distinct frames while the status line says "step N", at least 2 of them before the
slider is touched (a frozen plot redraws once or twice when the page changes, see the assertion).

The notebook's contract (notebook 03 and the stand-in ``browser_fixtures/live_stub.ipynb``):
- a training-lab panel in one cell holding an ``ipywidgets.FloatLogSlider`` with CSS class
  ``lr-slider`` and the live loss plot, ``.jupyter-matplotlib-figure canvas`` (ipympl) or
  ``.widget-image`` (PNG fallback);
- training that keeps running in the background after Run All returns (the kernel stays idle and
  responsive, a slider change takes effect mid-run) for several seconds;
- a Play button with class ``lab-play`` (clicked only if training does not start by itself) and a
  status line with class ``lab-status`` whose text contains "step N".
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
KERNEL = "loss-scaling"  # what `make env` registers in .venv and the course notebooks name
NB03 = ROOT / "notebooks" / "03_reading_loss_curves.ipynb"
STUB = ROOT / "tests" / "browser_fixtures" / "live_stub.ipynb"

# The issue requires notebook 03. Until it exists the stand-in runs alone so the harness itself is
# tested; afterwards the stand-in stays as a second case on the same server (about 12 s more):
# it always exercises the ipympl path with a known-good panel, so a failure on 03 alone points at
# the notebook, a failure on both at the browser stack (JupyterLab, ipympl, Chromium, Playwright).
CASES = ([NB03] if NB03.exists() else []) + [STUB]

CHROMIUM = "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else shutil.which("chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # platform.md
REQUIRED = os.environ.get("REQUIRE_BROWSER") == "1"
MISSING = "; ".join(
    ([] if CHROMIUM else ["no Chromium at /usr/bin/chromium or on PATH (as root: apt-get install -y chromium; "
                          ".ci/run does it)"])
    + ([] if importlib.util.find_spec("playwright") else ["the 'playwright' package is not installed (make env)"])
)

PLOT = ".course-live, .jupyter-matplotlib-figure canvas, .widget-image"  # a lab's view (still picture + SVG curves), an ipympl canvas, or a PNG frame
HANDLE = ".lr-slider .noUi-handle"   # ipywidgets 8 sliders are noUiSlider: arrow keys move one step
READOUT = ".lr-slider .widget-readout"
FRAME_EVERY = 0.15    # s between plot screenshots
MIN_FRAMES = 3        # distinct frames while training runs (the number)
MIN_UNTOUCHED = 2     # distinct frames before anything in the page was touched (see the assertion)
# Capture windows (min s, max s): a window ends once it lasted min s and its condition holds, or at
# max s. The slack is for slow or bursty frame rates (notebook 03's lab draws from a training thread;
# its frames reached this browser in bursts up to 3 s apart).
BEFORE_S = (2.0, 6.0)
AFTER_S = (3.0, 8.0)  # at least 3 s after the slider moved, so the change shows

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING) and not REQUIRED,
                       reason=f"real-browser test: {MISSING}. REQUIRE_BROWSER=1 makes this a failure."),
]


# ---------------------------------------------------------------- JupyterLab server (one per module)

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` from the interpreter running the suite (.venv), isolated from the user's
    Jupyter config, settings and workspaces; talks to its REST API with the token."""

    def __init__(self, tmp: Path):
        self.port, self.token = _free_port(), secrets.token_urlsafe(24)
        self.base = f"http://127.0.0.1:{self.port}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        # One log per server: under `make test` each of the two workers may start one.
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        self.log_path = ARTIFACTS / (f"jupyter-server-{worker}.log" if worker else "jupyter-server.log")
        # User settings of this server only: autosave off (the browser's copy of the notebook holds
        # outputs, and a save would write them into the repository, where notebooks are committed
        # without outputs); start the notebook's kernel without asking (JupyterLab 4.6 otherwise
        # opens a "Select Kernel" dialog over the page); render every cell, also off-screen ones
        # (the default, content-visibility, leaves widgets far down a long notebook unrendered).
        tracker = {"autoStartDefaultKernel": True, "windowingMode": "none"}
        for plugin, values in {"docmanager-extension/plugin": {"autosave": False},
                               "notebook-extension/tracker": tracker}.items():
            f = tmp / "user-settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        env = dict(os.environ, COURSE_FAST="1", JUPYTER_CONFIG_DIR=str(tmp / "config"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
        env.pop("MPLBACKEND", None)  # the notebooks choose their backend (ipympl)
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={ROOT}",
               f"--LabApp.user_settings_dir={tmp / 'user-settings'}",
               f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
               # JupyterLab checkpoints a notebook when it opens it: not into notebooks/.ipynb_checkpoints
               f"--FileCheckpoints.checkpoint_dir={tmp / 'checkpoints'}"]
        if os.geteuid() == 0:  # JupyterLab refuses to run as root without it (as the Makefile does)
            cmd.append("--allow-root")
        self._log = open(self.log_path, "w")
        # Own process group: kernels are its children, and teardown can end them all.
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def api(self, method: str, path: str, timeout: float = 5.0):
        req = urllib.request.Request(self.base + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 25) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def wait_ready(self, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.proc.returncode} during start-up; "
                                   f"log tail:\n{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):  # not listening yet / not answering yet
                self.api("GET", "/api/status", timeout=2)
                return
            time.sleep(0.25)
        raise RuntimeError(f"jupyter lab's API did not answer within {timeout:.0f} s; log tail:\n{self.log_tail()}")

    def wait_kernel_idle(self, path: str, timeout: float = 30.0) -> None:
        """Until the kernel of the session on ``path`` (relative to the root) has started and is idle."""
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            seen = self.api("GET", "/api/sessions")
            if any(s["path"] == path and (s.get("kernel") or {}).get("execution_state") == "idle" for s in seen):
                return
            time.sleep(0.25)
        raise RuntimeError(f"no idle kernel for {path} within {timeout:.0f} s; sessions: "
                           f"{[(s['path'], (s.get('kernel') or {}).get('execution_state')) for s in seen]}")

    def delete_sessions(self) -> None:
        """End every session (and its kernel) this server holds: ours alone, the server is ours."""
        with contextlib.suppress(OSError, ValueError):
            for s in self.api("GET", "/api/sessions"):
                with contextlib.suppress(OSError, ValueError):
                    self.api("DELETE", f"/api/sessions/{s['id']}", timeout=10)

    def stop(self) -> None:
        self.delete_sessions()
        with contextlib.suppress(OSError, ValueError):
            self.api("POST", "/api/shutdown")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if MISSING:  # only reachable with REQUIRE_BROWSER=1: the skipif above let the test through
        pytest.fail(f"REQUIRE_BROWSER=1 but the browser test cannot run: {MISSING}", pytrace=False)
    server = LabServer(tmp_path_factory.mktemp("jupyter"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # Playwright's own browser download does not work offline: Debian's Chromium instead.
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()


def _notebook_to_open(lab: LabServer, path: Path, outdir: Path) -> Path:
    """The notebook itself if the server knows its kernel (``loss-scaling``, registered by
    ``make env``); otherwise a copy whose kernelspec says ``python3`` (the server's own
    interpreter, so the same environment), written next to the artifacts. JupyterLab would
    otherwise stop at a kernel-selection dialog. The copy runs with the artifacts folder as its
    working directory, which the notebooks do not depend on (they import course_lib)."""
    nb = json.loads(path.read_text())
    wanted = nb.get("metadata", {}).get("kernelspec", {}).get("name", KERNEL)
    if wanted in lab.api("GET", "/api/kernelspecs")["kernelspecs"]:
        return path
    nb.setdefault("metadata", {})["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                                   "language": "python"}
    copy = outdir / path.name
    copy.write_text(json.dumps(nb, indent=1))
    print(f"kernel {wanted!r} is not registered (run `make env`); using python3 on a copy: {copy}")
    return copy


# ---------------------------------------------------------------- the test

class Steps:
    """Named steps: a failure says which step failed, after how long, and where the screenshot is."""

    def __init__(self, page, outdir: Path, lab: LabServer):
        self.page, self.outdir, self.lab = page, outdir, lab
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        try:
            yield
        except Exception as err:  # noqa: BLE001 - re-raised as a test failure with context
            shot = self.outdir / f"FAILED-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.png"
            with contextlib.suppress(Exception):
                self.page.screenshot(path=str(shot), timeout=5_000)
            raise pytest.fail.Exception(f"browser step '{name}' failed after {time.perf_counter() - t:.1f} s: "
                                        f"{type(err).__name__}: {err}\nscreenshot: {shot}\n"
                                        f"jupyter server log tail:\n{self.lab.log_tail(10)}", pytrace=False) from None
        self.timings[name] = round(time.perf_counter() - t, 2)


def _outputs(path: Path) -> list[int]:
    """Indices of code cells that have outputs or execution counts in the file on disk."""
    cells = json.loads(path.read_text())["cells"]
    return [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]


def _step_number(cell) -> int | None:
    """N from the panel's status line ("... step N ..."), or None without one (or before training)."""
    status = cell.locator(".lab-status")
    if not status.count():
        return None
    m = re.search(r"step\s+(\d+)", status.first.inner_text(timeout=2_000))
    return int(m.group(1)) if m else None


# True once Run All is over: the toolbar's execution indicator is idle and no cell shows "[*]".
_RUN_ALL_DONE = """() => {
    const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
    const busy = [...document.querySelectorAll('.jp-Notebook .jp-InputPrompt')].some(p => p.textContent.includes('*'));
    return !busy && (!ind || ind.getAttribute('data-status') === 'idle');
}"""


def open_notebook(page, server: "LabServer", rel: str) -> None:
    """Open ``rel`` (a path under the server's root) in JupyterLab and wait until its kernel is idle."""
    page.goto(f"{server.base}/lab/tree/{rel}?reset&token={server.token}", wait_until="domcontentloaded",
              timeout=30_000)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=45_000)
    server.wait_kernel_idle(rel)


def run_all(page) -> None:
    """Run All Cells, from the Run menu, as a learner does (returns at once: see _RUN_ALL_DONE)."""
    page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(r"^Run All Cells$")).click()


@pytest.mark.timeout(360)          # waits for Run All on a busy machine (see below)
@pytest.mark.parametrize("notebook", CASES, ids=lambda p: p.stem)
def test_lr_slider_moves_live_plot_in_jupyterlab(notebook, lab, chromium):
    outdir = ARTIFACTS / notebook.stem
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    target = _notebook_to_open(lab, notebook, outdir)
    rel = target.relative_to(ROOT).as_posix()
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    step = Steps(page, outdir, lab)
    frames: list[dict] = []
    t0 = time.perf_counter()
    has_status, old, new = False, None, None

    def save() -> dict:
        """Frames as PNG files and summary.json, on success and on failure alike."""
        for i, f in enumerate(frames):
            if "png" in f:
                (outdir / f"frame-{i:02d}-{f['phase']}-{f['sha']}.png").write_bytes(f.pop("png"))
        counts = {"before": distinct("before"), "after": distinct("after"), "while_training": distinct(running=True)}
        summary = {"notebook": rel, "lr_readout": [old, new], "distinct_frames": counts,
                   "screenshots": len(frames), "frames": frames, "step_seconds": step.timings,
                   "total_s": round(time.perf_counter() - t0, 1)}
        (outdir / "summary.json").write_text(json.dumps(summary, indent=1))
        print(json.dumps({k: v for k, v in summary.items() if k != "frames"}))
        return counts

    def distinct(phase=None, running=False) -> int:
        """Distinct frames in a window (or all), only those shot while the status said "step N"
        with ``running`` (all of them when the panel has no status line)."""
        return len({f["sha"] for f in frames if phase in (None, f["phase"])
                    and not (running and has_status and f["step"] is None)})

    def capture(cell, plot, window: tuple[float, float], phase: str, enough) -> None:
        start = time.perf_counter()
        while True:
            t = time.perf_counter()
            if t - start >= window[1] or (t - start >= window[0] and enough()):
                return
            png = plot.screenshot(timeout=5_000, animations="disabled")
            frames.append({"t": round(t - t0, 2), "phase": phase, "png": png, "step": _step_number(cell),
                           "sha": hashlib.sha1(png).hexdigest()[:12]})
            time.sleep(max(0.0, FRAME_EVERY - (time.perf_counter() - t)))

    try:
        with step("open the notebook, its kernel starts"):
            open_notebook(page, lab, rel)
            assert not page.locator(".jp-Dialog").count(), \
                f"a dialog is open: {page.locator('.jp-Dialog').first.inner_text()!r}"

        with step("Run All Cells from the Run menu"):
            run_all(page)

        with step("the lr-slider and the live plot render in one cell"):
            # Waits, not timings: Run All took 74 s at load 12 on 2 cores, and 60 s timed out.
            page.locator(HANDLE).first.wait_for(state="attached", timeout=150_000)
            cell = page.locator(".jp-Cell").filter(has=page.locator(".lr-slider")).first  # the training lab
            cell.locator(HANDLE).first.scroll_into_view_if_needed()
            plot = cell.locator(PLOT).first
            plot.wait_for(state="visible", timeout=20_000)

        with step("Run All finishes (the kernel is free; training goes on in the background)"):
            page.wait_for_function(_RUN_ALL_DONE, timeout=150_000, polling=250)
            page.screenshot(path=str(outdir / "page-1-after-run-all.png"))
            plot.scroll_into_view_if_needed()

        with step("training runs (status 'step N' advances; Play is clicked only if it does not)"):
            def advancing(first, seconds):
                end = time.perf_counter() + seconds
                while time.perf_counter() < end:
                    if _step_number(cell) not in (None, first):
                        return True
                    time.sleep(0.2)
                return False

            has_status = cell.locator(".lab-status").count() > 0
            if has_status:
                first = _step_number(cell)
                if not advancing(first, 3) and cell.locator(".lab-play").count():
                    cell.locator(".lab-play").first.click()
                    first = _step_number(cell)
                    advancing(first, 10)
                assert _step_number(cell) not in (None, first), \
                    f"training does not run: the status line stays at {cell.locator('.lab-status').first.inner_text()!r}"

        with step("capture frames before the slider moves"):
            capture(cell, plot, BEFORE_S, "before", lambda: distinct("before") >= MIN_UNTOUCHED)
            last_before = frames[-1]

        with step("move the lr-slider with the keyboard, while training runs"):
            if has_status and _step_number(cell) is None:
                raise AssertionError(
                    f"training ended before the slider could move (status: "
                    f"{cell.locator('.lab-status').first.inner_text()!r}); the notebook must keep training "
                    f"in the background for several seconds after Run All: this test needs about "
                    f"{BEFORE_S[0] + AFTER_S[0] + 2:.0f} s")
            readout = cell.locator(READOUT).first
            old = readout.inner_text()
            cell.locator(HANDLE).first.focus()
            for _ in range(5):
                page.keyboard.press("ArrowRight")
                time.sleep(0.05)
            if readout.inner_text() == old:  # already at its maximum: the other way
                for _ in range(10):
                    page.keyboard.press("ArrowLeft")
                    time.sleep(0.05)
            new = readout.inner_text()
            assert new != old, f"the lr readout stayed at {old!r} after 5 ArrowRight and 10 ArrowLeft"
            page.screenshot(path=str(outdir / "page-2-slider-moved.png"))

        with step("capture frames after the slider moved"):
            capture(cell, plot, AFTER_S, "after",
                    lambda: distinct(running=True) >= MIN_FRAMES and frames[-1]["sha"] != last_before["sha"])
            page.screenshot(path=str(outdir / "page-3-end.png"))

        counts, final = save(), frames[-1]
        steps_seen = f"status steps {frames[0]['step']} -> {last_before['step']} (slider) -> {final['step']}"

        assert counts["while_training"] >= MIN_FRAMES, (
            f"{notebook.name}: only {counts['while_training']} distinct plot frame(s) while training ran "
            f"({len(frames)} screenshots, {steps_seen}): the plot does not update live (frames in {outdir})")
        # A frozen plot still changes once or twice when the slider moves (ipympl redraws on its
        # own then: a stand-in that never redraws gave 1 frame before and 2 after), so the count
        # above alone could pass without any live update. Before the slider moved nothing in the
        # page was touched: there the plot must change by itself.
        assert counts["before"] >= MIN_UNTOUCHED, (
            f"{notebook.name}: the plot did not change in the {BEFORE_S[1]:.0f} s before the slider moved "
            f"({counts['before']} distinct frame(s), {steps_seen}): no live update (frames in {outdir})")
        assert final["sha"] != last_before["sha"], (
            f"{notebook.name}: the plot after the lr slider moved ({old} -> {new}) is the same as before it "
            f"moved ({steps_seen}; frames in {outdir})")
        # Autosave is off; this proves it. (Not a byte comparison: on a shared checkout someone
        # else may save the notebook meanwhile, without outputs.)
        assert not _outputs(target), f"{rel} was saved with outputs during the test: {_outputs(target)}"
    finally:
        if frames and "png" in frames[-1]:  # a step failed: keep what was captured
            with contextlib.suppress(Exception):
                save()
        with contextlib.suppress(Exception):
            context.close()
        lab.delete_sessions()


def _settled_lr_changes(settings, quiet_s: float = 1.0, limit_s: float = 20.0) -> int:
    """The number of lr changes in a lab's settings string once it has stopped growing for ``quiet_s``.
    A fixed wait was not enough: with the grading tests busy on both cores, the keyboard's last change
    reached the string after the drag had started, and the drag seemed to record two."""
    count, since, end = settings.input_value().count(":lr="), time.perf_counter(), time.perf_counter() + limit_s
    while time.perf_counter() < end:
        time.sleep(0.1)
        now = settings.input_value().count(":lr=")
        if now != count:
            count, since = now, time.perf_counter()
        elif time.perf_counter() - since >= quiet_s:
            break
    return count


# ---------------------------------------------------------------- every lesson notebook (issue 12)
#
# Run All on every notebook in notebooks/ (by glob: new lessons are covered when they land) at a
# laptop's 1280x800, in fast mode, on the one server above. Per notebook:
# - it opens clean (the tab is not marked modified once the kernel is up);
# - no error output;
# - no canvas or image wider than its output area, no control overlapping a canvas (boxes from the page),
#   at 1280x800, then at 1600x900 and on a projector (1280x720 at 150% zoom) on the same page;
# - every training lab keeps its run: its run label still says "run 1" (a displayed lab is never
#   restarted by code in a lesson, so a higher number means the browser's values restarted it);
# - in each panel (an output with a slider and a canvas) the first slider, moved with the
#   keyboard, changes the figure (element screenshots compared by hash); a lab that waits for
#   Play (as every lesson's does) gets Play pressed first;
# - in each lab, one mouse drag of the lr slider records one change (its settings string).
# Screenshots: test-artifacts/browser/notebooks/<notebook>/.

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
VIEWPORT = {"width": 1280, "height": 800}
# After the checks at 1280x800 the same page is resized and the geometry checked again (no second
# Run All): a wide window, and a projector, 1280x720 at 150% zoom = 853x480 CSS px at a device
# pixel ratio of 1.5 (set through the DevTools protocol, which Playwright's viewport cannot change
# on an open page). Figures and panels lay themselves out again when the page's width changes.
WIDE = {"width": 1600, "height": 900}
PROJECTOR = (853, 480, 1.5)   # CSS px wide, high, device pixel ratio

# Boxes of every output with a figure, its canvases/images and its controls; overlaps and overflow.
_GEOMETRY = """() => {
    const box = e => { const r = e.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; };
    const controls = '.widget-slider, .widget-hslider, .widget-dropdown, .widget-button, .widget-checkbox, '
        + '.widget-text, .widget-readout, .widget-html, .widget-label';
    const out = [];
    document.querySelectorAll('.jp-Cell').forEach((cell, ci) => {
        cell.querySelectorAll('.jp-OutputArea-output').forEach((o, oi) => {
            const figs = [...o.querySelectorAll('.jupyter-matplotlib-figure canvas, img, .widget-image')]
                .filter(e => e.getBoundingClientRect().width > 0);
            if (!figs.length) return;
            const ctl = [...o.querySelectorAll(controls)].filter(e => e.getBoundingClientRect().width > 0
                && !e.closest('.jupyter-matplotlib-figure') && !e.closest('.course-live'));  // a lab's SVG layer is the figure
            // cut: a button's or a label's text ends in an ellipsis (its text is wider than its box)
            const cut = e => (e.matches('.widget-button, .widget-label') && e.scrollWidth > e.clientWidth + 1)
                ? e.innerText : null;
            out.push({cell: ci, output: oi, area: box(o), figures: figs.map(box),
                      controls: ctl.map(e => ({cls: e.className.split(' ').filter(c => c.startsWith('widget-')
                          || c.endsWith('-slider')).join(' '), cut: cut(e), ...box(e)}))});
        });
    });
    return out;
}"""


def _overlap(a: dict, b: dict) -> float:
    w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return max(0.0, w) * max(0.0, h)


def _geometry_problems(outputs: list[dict]) -> list[str]:
    problems = []
    for o in outputs:
        area, where = o["area"], f"cell {o['cell']} output {o['output']}"
        for f in o["figures"]:
            if f["w"] > area["w"] + 1 or f["x"] + f["w"] > area["x"] + area["w"] + 1:
                problems.append(f"{where}: a figure {f['w']:.0f} px wide ends at {f['x'] + f['w']:.0f}, "
                                f"its output area ends at {area['x'] + area['w']:.0f}")
            for c in o["controls"]:
                if _overlap(f, c) > 4:
                    problems.append(f"{where}: control '{c['cls']}' overlaps a figure")
        for c in o["controls"]:
            if c.get("cut"):
                problems.append(f"{where}: the text of control '{c['cls']}' is cut: {c['cut']!r}")
    return problems


# Scrolls output [cell, output] to the top of the notebook's view; its box, cut to the viewport.
_SCROLL_TO_OUTPUT = """([ci, oi]) => {
    const o = document.querySelectorAll('.jp-Cell')[ci].querySelectorAll('.jp-OutputArea-output')[oi];
    o.scrollIntoView({block: 'start'});
    const r = o.getBoundingClientRect(), x = Math.max(0, r.left), y = Math.max(0, r.top);
    return {x, y, w: Math.min(innerWidth, r.right) - x, h: Math.min(innerHeight, r.bottom) - y};
}"""


def _where(outputs: list[dict]) -> list[str]:
    """'cell C output O: N figure(s)' for each output with figures."""
    return [f"cell {o['cell']} output {o['output']}: {len(o['figures'])} figure(s)" for o in outputs]


def _cdp_shot(cdp, path: Path, box: dict | None = None) -> None:
    """A screenshot through the DevTools protocol (keeps the emulated size): the viewport, or
    ``box`` in it (CSS px)."""
    params: dict = {"format": "png"}
    if box is not None:
        if box["w"] < 1 or box["h"] < 1:
            return
        params["clip"] = {"x": box["x"], "y": box["y"], "width": box["w"], "height": box["h"], "scale": 1}
    with contextlib.suppress(Exception):
        path.write_bytes(base64.b64decode(cdp.send("Page.captureScreenshot", params)["data"]))


def _settle(page, quiet: float = 0.6, timeout: float = 8.0) -> None:
    """Until every figure has a size and none has changed size for ``quiet`` s (after a resize a
    responsive canvas is redrawn by the kernel at its new size, a round trip), or ``timeout`` s."""
    sizes = "() => [...document.querySelectorAll('.jupyter-matplotlib-figure canvas, .widget-image')]" \
            ".map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })"
    end, last, since = time.perf_counter() + timeout, None, time.perf_counter()
    while time.perf_counter() < end:
        now = page.evaluate(sizes)
        if now != last:
            last, since = now, time.perf_counter()
        elif time.perf_counter() - since >= quiet and all(w > 0 for w, _ in now):   # every figure has its image
            return
        time.sleep(0.15)


def _wait_changed(locator, before: bytes, timeout: float = 20.0) -> bytes:
    end = time.perf_counter() + timeout
    png = before
    while time.perf_counter() < end:
        png = locator.screenshot(timeout=5_000, animations="disabled")
        if png != before:
            return png
        time.sleep(0.2)
    return png


@pytest.mark.timeout(480)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_runs_clean_and_fits_in_jupyterlab(notebook, lab, chromium):
    outdir = ARTIFACTS / "notebooks" / notebook.stem
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    target = _notebook_to_open(lab, notebook, outdir)
    rel = target.relative_to(ROOT).as_posix()
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(15_000)
    step = Steps(page, outdir, lab)
    t0 = time.perf_counter()
    report: dict = {"notebook": rel}
    try:
        with step("open the notebook, its kernel starts, it is not marked modified"):
            open_notebook(page, lab, rel)
            time.sleep(1.0)
            assert not page.locator(".jp-Dialog").count(), \
                f"a dialog is open: {page.locator('.jp-Dialog').first.inner_text()!r}"
            dirty = page.locator(".lm-TabBar-tab.jp-mod-dirty").count()
            assert not dirty, f"{notebook.name} is marked modified right after opening it"

        with step("Run All Cells"):
            run_all(page)
            page.wait_for_function("() => document.querySelectorAll('.jp-Notebook .jp-InputPrompt').length > 0")
            time.sleep(1.0)
            page.wait_for_function(_RUN_ALL_DONE, timeout=300_000, polling=500)
            time.sleep(2.0)                            # the browser's first values reach the kernel
            report["run_all_s"] = round(time.perf_counter() - t0, 1)

        with step("no error output"):
            errors = page.evaluate("""() => [...document.querySelectorAll(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                .map(e => e.innerText).filter(t => /Traceback|Error\\b/.test(t))""")
            assert not errors, f"error output in {notebook.name}:\n" + "\n---\n".join(e[:800] for e in errors)

        with step("figures fit their output areas; no control overlaps a figure"):
            _settle(page)           # a figure has no size until its first image: it would be skipped
            outputs = page.evaluate(_GEOMETRY)
            report["figures"] = sum(len(o["figures"]) for o in outputs)
            for o in outputs:
                loc = page.locator(".jp-Cell").nth(o["cell"]).locator(".jp-OutputArea-output").nth(o["output"])
                with contextlib.suppress(Exception):
                    loc.screenshot(path=str(outdir / f"cell-{o['cell']:02d}-output-{o['output']}.png"), timeout=10_000)
            problems = _geometry_problems(outputs)
            figures = _where(outputs)
            assert not problems, f"{notebook.name} at 1280x800:\n" + "\n".join(problems)

        with step("figures fit on a projector (1280x720 at 150%) and at 1600x900"):
            t = time.perf_counter()
            problems = []
            # The projector: set through the DevTools protocol, and captured through it too
            # (Playwright's own screenshots put its 1280x800 viewport back first).
            cdp = context.new_cdp_session(page)
            width, height, ratio = PROJECTOR
            cdp.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": ratio, "mobile": False})
            _settle(page)
            shown = page.evaluate("() => [innerWidth, innerHeight, devicePixelRatio]")
            assert shown == [width, height, ratio], f"the projector's size was not applied: {shown}"
            outputs = page.evaluate(_GEOMETRY)
            problems += [f"on a projector: {p}" for p in _geometry_problems(outputs)]
            sizes = {"1280x800": figures, "projector": _where(outputs)}
            _cdp_shot(cdp, outdir / "page-projector.png")
            for o in outputs:
                box = page.evaluate(_SCROLL_TO_OUTPUT, [o["cell"], o["output"]])
                _cdp_shot(cdp, outdir / f"cell-{o['cell']:02d}-output-{o['output']}-projector.png", box)
            cdp.send("Emulation.clearDeviceMetricsOverride")
            cdp.detach()
            page.set_viewport_size(WIDE)
            _settle(page)
            outputs = page.evaluate(_GEOMETRY)
            problems += [f"at 1600x900: {p}" for p in _geometry_problems(outputs)]
            sizes["1600x900"] = _where(outputs)
            page.screenshot(path=str(outdir / "page-1600x900.png"))
            for o in outputs:
                loc = page.locator(".jp-Cell").nth(o["cell"]).locator(".jp-OutputArea-output").nth(o["output"])
                with contextlib.suppress(Exception):
                    loc.screenshot(path=str(outdir / f"cell-{o['cell']:02d}-output-{o['output']}-1600x900.png"),
                                   timeout=10_000)
            page.set_viewport_size(VIEWPORT)           # back to the laptop for the steps below
            _settle(page)
            report["other_sizes_s"] = round(time.perf_counter() - t, 1)
            # A figure that has no size at one page size would be skipped there, not checked.
            problems += [f"at {k}: figures that have no size at one page size, and were not checked there: "
                         f"{sorted(set(figures) ^ set(v))} (at 1280x800: {figures})"
                         for k, v in sizes.items() if set(v) != set(figures)]
            assert not problems, f"{notebook.name}:\n" + "\n".join(problems)

        labs = page.locator(".jp-OutputArea-output").filter(has=page.locator(".lab-run"))
        with step("every training lab keeps its run after being displayed"):
            for i in range(labs.count()):
                text = labs.nth(i).locator(".lab-run").first.inner_text()
                assert text.startswith("run 1:"), f"lab {i} restarted after it was displayed: {text!r}"

        panels = page.locator(".jp-OutputArea-output").filter(has=page.locator(".noUi-handle")).filter(
            has=page.locator(".jupyter-matplotlib-figure canvas, .widget-image"))
        report["panels"] = panels.count()
        with step("each panel's first slider, moved with the keyboard, changes its figure"):
            for i in range(panels.count()):
                panel = panels.nth(i)
                plot = panel.locator(".jupyter-matplotlib-figure canvas, .widget-image").first
                handle = panel.locator(".noUi-handle").first
                handle.scroll_into_view_if_needed()
                status = panel.locator(".lab-status")
                if status.count() and not (status.first.inner_text() or "").startswith("training"):
                    # A lab waits for the learner after Run All (no lesson starts one): press Play,
                    # as the learner would, so the slider has a run to change and a curve to mark.
                    panel.locator(".lab-play").first.click()
                    end = time.perf_counter() + 20
                    while time.perf_counter() < end and not (status.first.inner_text() or "").startswith("training"):
                        time.sleep(0.1)
                    plot.wait_for(state="visible", timeout=30_000)
                readout = panel.locator(".widget-readout").first
                old = readout.inner_text() if readout.count() else None
                plot.scroll_into_view_if_needed()
                try:
                    before = plot.screenshot(timeout=10_000, animations="disabled")
                except Exception as err:  # noqa: BLE001 - say what the page holds instead
                    boxes = plot.evaluate("""e => { const b = x => { const r = x.getBoundingClientRect();
                        return [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)]; };
                        return {canvas: b(e), attrs: [e.width, e.height], position: getComputedStyle(e).position,
                                parent: b(e.parentElement), parent_class: e.parentElement.className}; }""")
                    raise AssertionError(f"panel {i}: no screenshot of its figure ({err}); the figure: {boxes}")
                handle.focus()
                for _ in range(3):
                    page.keyboard.press("ArrowRight")
                    time.sleep(0.05)
                if readout.count() and readout.inner_text() == old:    # at its maximum: the other way
                    for _ in range(6):
                        page.keyboard.press("ArrowLeft")
                        time.sleep(0.05)
                after = _wait_changed(plot, before)
                (outdir / f"panel-{i}-before.png").write_bytes(before)
                (outdir / f"panel-{i}-after.png").write_bytes(after)
                assert after != before, f"panel {i}: the figure did not change after its first slider moved"

        with step("one drag of a lab's lr slider records one change"):
            for i in range(labs.count()):
                lab_out = labs.nth(i)
                settings = lab_out.locator(".lab-settings input").first
                status = lab_out.locator(".lab-status").first
                for attempt in range(3):
                    # A drag is recorded as a change only while a run trains: a finished run
                    # ("finished 20000 steps") takes the drag as the next run's start value. On a
                    # quiet machine the notebook's run can end before this step, so press Play.
                    if not (status.inner_text() or "").startswith("training"):
                        lab_out.locator(".lab-play").first.click()
                        end = time.perf_counter() + 20
                        while time.perf_counter() < end and not (status.inner_text() or "").startswith("training"):
                            time.sleep(0.1)
                    n0 = _settled_lr_changes(settings)   # the keyboard change above, recorded (late on a busy machine)
                    base = lab_out.locator(".lr-slider .noUi-base").first
                    base.scroll_into_view_if_needed()
                    hb = lab_out.locator(".lr-slider .noUi-handle").first.bounding_box()
                    bb = base.bounding_box()
                    x, y = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
                    page.mouse.move(x, y)
                    page.mouse.down()
                    for k in range(1, 9):                 # a slow drag, left, over a quarter of the track
                        page.mouse.move(x - k * bb["width"] / 32, y)
                        time.sleep(0.08)
                    page.mouse.up()
                    end = time.perf_counter() + 20
                    while time.perf_counter() < end and settings.input_value().count(":lr=") == n0:
                        time.sleep(0.2)
                    n1 = _settled_lr_changes(settings)
                    if n1 - n0 == 0 and not (status.inner_text() or "").startswith("training"):
                        continue                          # the run ended during the drag: again, on a new run
                    break
                assert n1 - n0 == 1, f"lab {i}: one drag recorded {n1 - n0} lr changes (status {status.inner_text()!r})"
        page.screenshot(path=str(outdir / "page-end.png"))
        assert not _outputs(target), f"{rel} was saved with outputs during the test: {_outputs(target)}"
    finally:
        report["total_s"] = round(time.perf_counter() - t0, 1)
        report["step_seconds"] = step.timings
        (outdir / "summary.json").write_text(json.dumps(report, indent=1))
        print(json.dumps(report))
        with contextlib.suppress(Exception):
            context.close()
        lab.delete_sessions()


# ---------------------------------------------------------------- the lab's page picture
#
# A training lab's page shows a still picture (matplotlib, redrawn when the axes change) with the
# moving curves drawn by the browser from SVG on top (course_lib/ui/live_svg.py). The oracle for
# what the learner sees is matplotlib's own full draw of the same figure, saved by the kernel.

_LAB_PICTURE = """\
from course_lib import ui
from course_lib.ui.lab import TrainingLab
FAST, DEVICE = ui.setup_notebook(seed=0)
lab = TrainingLab("spirals", lr=0.05, width=32, depth=2, noise=0.05, n_samples=600, train_fraction=0.8,
                  max_steps=1200, device="cpu")
lab.show()
lab.run()                                   # trains here (the cell waits), frames go to the page
lab.view.refresh(force=True)                # the last frame, then matplotlib's own picture of it
lab.view.fig.savefig({path!r}, dpi=lab.view.fig.dpi)
print("saved", lab.view.fig.canvas.get_width_height())"""


@pytest.mark.timeout(300)
def test_a_labs_page_picture_is_the_figure_matplotlib_draws(lab, chromium):
    import io

    import numpy as np
    from PIL import Image

    outdir = ARTIFACTS / "lab-picture"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    saved = outdir / "matplotlib.png"
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                     "source": _LAB_PICTURE.format(path=str(saved))}],
          "metadata": {"kernelspec": {"name": KERNEL, "display_name": KERNEL, "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    source = outdir / "lab_picture.ipynb"
    source.write_text(json.dumps(nb, indent=1))
    target = _notebook_to_open(lab, source, outdir)
    rel = target.relative_to(ROOT).as_posix()
    context = chromium.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    step = Steps(page, outdir, lab)
    try:
        with step("open a notebook with a lab and Run All"):
            open_notebook(page, lab, rel)
            run_all(page)
            page.locator(".jp-OutputArea-output").filter(has_text="saved").first.wait_for(timeout=180_000)
            page.wait_for_function(_RUN_ALL_DONE, timeout=60_000, polling=250)
        with step("the page's picture of the lab's figure equals matplotlib's"):
            view = page.locator(".course-live").first
            view.scroll_into_view_if_needed()
            time.sleep(1.0)                                  # the last frame's SVG is applied
            shot = view.screenshot(animations="disabled")
            (outdir / "page.png").write_bytes(shot)
            want = np.asarray(Image.open(saved).convert("RGB")).astype(int)
            got = Image.open(io.BytesIO(shot)).convert("RGB")
            # Same width (not scaled); the view's box may be a pixel taller than its picture.
            assert got.size[0] == want.shape[1] and 0 <= got.size[1] - want.shape[0] <= 2, (
                f"the lab's view is {got.size} px on the page, its figure {want.shape[1::-1]}: it was scaled")
            got = np.asarray(got).astype(int)
            differ = min(((np.abs(got[off:off + want.shape[0]] - want).max(axis=2) > 60)
                          for off in range(got.shape[0] - want.shape[0] + 1)), key=np.mean)
            # Two renderers antialias one path differently along its edges: 0.15% of the pixels
            # differ (measured). With the train curve missing from the SVG, an Agg stand-in for the
            # page differed by 0.85%, and with no curves by 1.9% (tests/test_ui_live.py).
            assert differ.mean() < 0.005, f"{differ.mean():.2%} of the pixels differ from matplotlib's picture"
            # The layers lie exactly on top of each other (a curve shifted off its axes would show).
            boxes = page.evaluate("""() => [...document.querySelector('.course-live').children].map(e => {
                const r = (e.querySelector('svg') || e).getBoundingClientRect();
                return [r.left, r.top, r.width, r.height]; })""")
            assert len(boxes) == 3 and all(abs(a - b) <= 0.5 for box in boxes[1:] for a, b in zip(box, boxes[0])), \
                f"the still picture, the curves and the legend layer are not stacked exactly: {boxes}"
            print(f"lab picture: {differ.mean():.2%} of the pixels differ from matplotlib's")
    finally:
        context.close()
        lab.delete_sessions()
