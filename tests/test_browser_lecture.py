"""Lecture mode in a real browser (marker ``browser``): the code-free dashboard (``make present``,
Voila) at a projector's 1280x720, its size rule (axis labels >= 18 px, lines >= 2.5 px, measured on
the screen), and a RISE slideshow inside JupyterLab, in headless Chromium.

Reuses the Chromium set-up and the JupyterLab server of tests/test_browser.py. Screenshots go to
``test-artifacts/browser/lecture/``. Skipped without Chromium or Playwright unless
``REQUIRE_BROWSER=1`` (CI), as there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, HANDLE, MISSING, PLOT, READOUT, REQUIRED, LabServer, _free_port

from course_lib.ui import present

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-artifacts" / "browser" / "lecture"
NB03 = ROOT / "notebooks" / "03_reading_loss_curves.ipynb"
SLIDES = ROOT / "tests" / "browser_fixtures" / "slides_panel.ipynb"  # slide metadata by course_lib.ui.slides
CODE = ".jp-InputArea-editor, .cm-editor, .CodeMirror, .jp-InputPrompt"  # what a rendered code cell shows
VIEWPORT = {"width": 1280, "height": 720}  # a projector

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING) and not REQUIRED,
                       reason=f"real-browser test: {MISSING}. REQUIRE_BROWSER=1 makes this a failure."),
]


def _sha(png: bytes) -> str:
    return hashlib.sha1(png).hexdigest()[:12]


def _settled(locator, every: float = 0.7, tries: int = 20, changed_from: bytes | None = None) -> bytes:
    """The element's screenshot once two in a row are identical (a redraw has finished).

    With ``changed_from``, first wait (up to 30 s) for a picture other than that one: on a busy machine
    the kernel's redraw can take longer than ``every``, and two identical pictures of the figure before
    the change would pass for a finished redraw. A figure that never changes is still returned as is."""
    last = locator.screenshot(animations="disabled")
    end = time.perf_counter() + 30
    while changed_from is not None and last == changed_from and time.perf_counter() < end:
        time.sleep(0.2)
        last = locator.screenshot(animations="disabled")
    for _ in range(tries):
        time.sleep(every)
        now = locator.screenshot(animations="disabled")
        if now == last:
            return now
        last = now
    return last


@pytest.fixture(scope="module")
def browser():
    if MISSING:  # only reachable with REQUIRE_BROWSER=1
        pytest.fail(f"REQUIRE_BROWSER=1 but the browser test cannot run: {MISSING}", pytrace=False)
    from playwright.sync_api import sync_playwright

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield b
        finally:
            b.close()


class VoilaServer:
    """What ``make present NB=03`` starts (the same command line), in fast mode, with its own config dirs,
    less the spare preheated kernel: a second run of the lesson at once would double the test's CPU time."""

    def __init__(self, notebook: Path, tmp: Path):
        self.port, self.token = _free_port(), secrets.token_urlsafe(24)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = OUT / "voila.log"
        env = dict(os.environ, JUPYTER_TOKEN=self.token, COURSE_LECTURE="1", COURSE_FAST="1",
                   JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
        env.pop("MPLBACKEND", None)
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(present.voila_command(notebook, self.port), cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, n: int = 20) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voila exited with code {self.proc.returncode}; log tail:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.25)
        raise RuntimeError(f"voila did not listen within {timeout:.0f} s; log tail:\n{self.log_tail()}")

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # its own process group: voila and its kernels
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


def _lr_in_settings(text: str) -> float:
    """The learning rate in use at the end of a lab's settings string (the last lr=... it names)."""
    values = re.findall(r"lr=([0-9.eE+-]+)", text)
    assert values, f"no lr in the lab's settings string {text!r}"
    return float(values[-1])


# Appended to a copy of lesson 03 (the lesson itself is not changed): the same lab drawn in the laptop theme
# next to it, and a button that reports both figures' sizes as the kernel knows them, on request (after the
# browser has drawn them; the lecture pass runs at draw time). The copy lives in a temporary folder.
MEASURE_CELL = """
import json
import ipywidgets
import matplotlib
with matplotlib.rc_context():       # the laptop theme for this one lab only
    ui.set_course_theme("default")
    laptop_lab = TrainingLab("spirals", lr=0.01, width=64, depth=3, noise=0.05, n_samples=1000,
                             train_fraction=0.8, max_steps=20000)
    laptop_lab.widget.add_class("laptop-lab")
    laptop_lab.show()
ui.set_course_theme("lecture")


def _sizes(fig):
    labels = [(i, t) for i, ax in enumerate(fig.axes) for t in (ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    drawn = [(i, ln) for i, ax in enumerate(fig.axes) for ln in ax.get_lines()
             if ln.get_linestyle() not in ("None", "none", " ", "")]
    return {"dpi": fig.dpi, "width_px": fig.bbox.width, "height_px": fig.bbox.height,
            "labels_pt": {f"{i}: {t.get_text()}": t.get_fontsize() for i, t in labels},
            "lines_pt": {f"{i}: {ln.get_label()}": ln.get_linewidth() for i, ln in drawn}}


_report = ipywidgets.HTML()
_report.add_class("figure-sizes")
_ask = ipywidgets.Button(description="sizes")
_ask.add_class("figure-sizes-button")
for _num in plt.get_fignums():      # every figure on the page, found by its number in the browser
    _fig = plt.figure(_num)
    if hasattr(_fig.canvas, "add_class"):
        _fig.canvas.add_class(f"course-fig-{_num}")
_ask.on_click(lambda _: setattr(_report, "value", json.dumps(
    {"lecture": _sizes(lab.view.fig), "laptop": _sizes(laptop_lab.view.fig),
     "all": {n: _sizes(plt.figure(n)) for n in plt.get_fignums() if plt.figure(n).axes},
     "laptop_num": getattr(laptop_lab.view.fig, "number", None)})))   # a lab's figure is not pyplot's
ipywidgets.VBox([_ask, _report])
"""


def _projector_rule_failures(sizes: dict, css_width: float) -> list[str]:
    """What breaks the rule (axis labels >= 18 px, lines >= 2.5 px) on the screen: a size in points shows as
    pt x dpi / 72 figure pixels, and the browser draws the figure's pixels at css_width / width_px each."""
    scale = sizes["dpi"] / 72 * css_width / sizes["width_px"]
    fails = [f"axis label {name!r}: {pt * scale:.1f} px < 18" for name, pt in sizes["labels_pt"].items()
             if pt * scale < 18]
    fails += [f"line {name!r}: {pt * scale:.2f} px < 2.5" for name, pt in sizes["lines_pt"].items() if pt * scale < 2.5]
    return fails


@pytest.fixture(scope="module")
def dashboard(browser, tmp_path_factory):
    """Lesson 03 as ``make present NB=03`` serves it (plus MEASURE_CELL), open in one page at 1280x720:
    each page load runs the lesson in a new kernel, so the tests below share this one."""
    import nbformat
    tmp = tmp_path_factory.mktemp("voila")
    nb = nbformat.read(NB03, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(MEASURE_CELL))
    copy = tmp / NB03.name
    nbformat.write(nb, copy)
    server = VoilaServer(copy, tmp)
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(20_000)
    timings = {}
    try:
        server.wait_listening()
        timings["server_listening_s"] = round(time.perf_counter() - server.started, 1)
        with urllib.request.urlopen(f"{server.base}/", timeout=30) as r:  # no token: a login page, not the lesson
            assert "Reading loss curves" not in r.read().decode(errors="replace"), "served without the token"
        page.goto(f"{server.base}/?token={server.token}", wait_until="commit", timeout=60_000)
        page.locator(".figure-sizes-button").wait_for(state="visible", timeout=300_000)   # the last cell's output
        timings["server_start_to_interactive_s"] = round(time.perf_counter() - server.started, 1)
        page.screenshot(path=str(OUT / "dashboard-03-top.png"))
        yield server, page, timings
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(OUT / "FAILED-dashboard.png"))
        print(f"voila log tail:\n{server.log_tail()}")
        raise
    finally:
        page.close()
        server.stop()


def _lecture_lab(page):
    return page.locator(".course-panel:not(.laptop-lab)").filter(has=page.locator(HANDLE)).first


def _play(page, panel) -> None:
    """Press the lab's Play unless it trains already (the lessons' labs wait for it)."""
    status = panel.locator(".lab-status").first
    if "training" not in status.inner_text():
        panel.locator(".lab-play").first.click()
        page.wait_for_function("el => /training/.test(el.textContent)", arg=status.element_handle(),
                               timeout=60_000)


def test_dashboard_of_lesson_03_shows_no_code_and_its_lr_slider_drives_the_plot(dashboard):
    server, page, timings = dashboard
    try:
        code = page.locator(CODE).count()
        text = page.locator("body").inner_text()
        assert code == 0, f"{code} code elements ({CODE}) on the dashboard"
        assert not re.search(r"setup_notebook\(|TrainingLab\(|^import |^from \S+ import", text, re.MULTILINE), \
            "source code is visible on the dashboard"

        panel = _lecture_lab(page)
        panel.scroll_into_view_if_needed()
        plot = panel.locator(PLOT).first
        _play(page, panel)
        before = plot.screenshot(animations="disabled")
        (OUT / f"dashboard-03-plot-before-{_sha(before)}.png").write_bytes(before)

        # One key press, one change: under load the kernel took several seconds per message from the page,
        # and a burst of presses was still arriving when the test looked.
        readout, settings_box = panel.locator(READOUT).first, panel.locator(".lab-settings input").first
        old = readout.inner_text()
        panel.locator(HANDLE).first.focus()
        page.keyboard.press("ArrowRight")
        if readout.inner_text() == old:               # already at its maximum: the other way
            page.keyboard.press("ArrowLeft")
        new = readout.inner_text()
        assert new != old, f"the lr readout stayed at {old!r} after ArrowRight and ArrowLeft"
        t_moved, settings = time.perf_counter(), settings_box.input_value()
        while _lr_in_settings(settings) != pytest.approx(float(new), rel=0.06) and time.perf_counter() - t_moved < 90:
            time.sleep(0.5)
            settings = settings_box.input_value()
        timings["slider_to_kernel_s"] = round(time.perf_counter() - t_moved, 1)
        after = _settled(plot, every=1.0, tries=3)
        (OUT / f"dashboard-03-plot-after-{_sha(after)}.png").write_bytes(after)
        page.screenshot(path=str(OUT / "dashboard-03-lab.png"))
        assert _lr_in_settings(settings) == pytest.approx(float(new), rel=0.06), \
            f"the run did not take the slider's lr {new} within 90 s: its settings say {settings!r}"
        assert after != before, f"the plot did not change after the lr moved {old} -> {new}"
        (OUT / "dashboard-summary.json").write_text(json.dumps(
            {"lr_readout": [old, new], "plot": [_sha(before), _sha(after)], "settings": settings, **timings}, indent=1))
        print(json.dumps(timings))
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(OUT / "FAILED-dashboard.png"))
        print(f"voila log tail:\n{server.log_tail()}")
        raise


def test_lecture_theme_is_readable_at_1280x720_and_the_laptop_theme_is_not(dashboard):
    """The issue's size rule, on the screen: the kernel reports each figure's dpi, pixel width, axis-label sizes
    and line widths (points); the browser reports how wide it draws the figure (CSS px at a 1280x720 viewport)."""
    _, page, _ = dashboard
    lecture, laptop = _lecture_lab(page), page.locator(".laptop-lab").first
    _play(page, lecture)                               # curves with data, drawn (the lecture pass runs then)
    time.sleep(2)
    page.locator(".figure-sizes-button").click()
    report = page.locator(".figure-sizes").first
    page.wait_for_function("el => el.textContent.includes('lecture')", arg=report.element_handle(), timeout=60_000)
    sizes = json.loads(report.inner_text())
    css = {}
    for name, panel in (("lecture", lecture), ("laptop", laptop)):
        plot = panel.locator(PLOT).last               # ipympl: the top canvas of two, both the figure's size
        box = plot.bounding_box()
        assert box and box["width"] > 0, f"the {name} figure is not displayed"
        css[name] = box["width"]
        panel.scroll_into_view_if_needed()
        page.screenshot(path=str(OUT / f"theme-{name}-1280x720.png"))
    others = {}                                        # the lesson's other figures, as drawn on this page
    for num, fig_sizes in sizes["all"].items():
        plot = page.locator(f".course-fig-{num} canvas").last
        if int(num) != sizes["laptop_num"] and plot.count():
            others[num] = {"css_width": plot.bounding_box()["width"],
                           "fails": _projector_rule_failures(fig_sizes, plot.bounding_box()["width"])}
            if fig_sizes["width_px"] > 1000:               # the wide ones, the likeliest to be shrunk: a look
                plot.scroll_into_view_if_needed()
                page.screenshot(path=str(OUT / f"theme-lecture-figure-{num}-1280x720.png"))
    (OUT / "theme-sizes.json").write_text(json.dumps({"kernel": sizes, "css_width": css, "others": others}, indent=1))
    assert css["lecture"] <= VIEWPORT["width"]
    assert _projector_rule_failures(sizes["lecture"], css["lecture"]) == [], \
        f"the lecture theme at 1280x720 (figure drawn {css['lecture']:.0f} px wide): {sizes['lecture']}"
    assert len(others) >= 4, f"the lesson's figures were not found on the page: {sorted(others)}"
    failing = {num: o for num, o in others.items() if o["fails"]}
    assert not failing, f"figures of the lesson below the projector rule at 1280x720: {failing}"
    # The same measurement tells the themes apart: the laptop theme fails it (a check that cannot fail is none).
    fails = _projector_rule_failures(sizes["laptop"], css["laptop"])
    assert any("axis label" in f for f in fails) and any("line" in f for f in fails), fails


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory, browser):
    server = LabServer(tmp_path_factory.mktemp("jupyter-rise"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _open_slideshow(browser, lab, errors: list):
    page = browser.new_page(viewport=VIEWPORT)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    rel = SLIDES.relative_to(ROOT).as_posix()
    page.goto(f"{lab.base}/rise/{rel}?token={lab.token}", timeout=60_000)
    page.locator(".reveal .slides > section").first.wait_for(state="attached", timeout=60_000)
    return page


# The index of the slide the deck shows (reveal.js marks it "present").
_PRESENT_INDEX = "[...document.querySelectorAll('.reveal .slides > section')].findIndex(s => s.classList.contains('present'))"


def _turn_to_next_slide(page, tries: int = 3) -> None:
    """Press the right arrow as a lecturer does, once reveal.js has started, and wait until the next slide shows.

    A key pressed before reveal.js has installed its keyboard handler is lost (the deck stays on its title
    slide), so wait for its `ready` class first, and press again if the slide still did not turn."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator(".reveal.ready").first.wait_for(state="attached", timeout=60_000)
    start = page.evaluate(f"() => {_PRESENT_INDEX}")
    for _ in range(tries):
        page.locator(".reveal").first.click(position={"x": 640, "y": 600})
        page.keyboard.press("ArrowRight")
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function(f"() => {_PRESENT_INDEX} > {start}", timeout=5_000)
            return
    page.screenshot(path=str(OUT / "rise-slide-did-not-turn.png"))
    raise AssertionError(f"the deck stayed on slide {start + 1} after {tries} presses of the right arrow "
                         "(see rise-slide-did-not-turn.png)")


def test_rise_slideshow_opens_with_a_slide_per_section(browser, jupyterlab):
    cells = json.loads(SLIDES.read_text())["cells"]
    wanted = sum(c["metadata"]["slideshow"]["slide_type"] == "slide" for c in cells)
    errors: list[str] = []
    page = _open_slideshow(browser, jupyterlab, errors)
    try:
        page.wait_for_function(f"() => document.querySelectorAll('.reveal .slides > section').length >= {wanted}",
                               timeout=30_000)
        time.sleep(1)
        page.screenshot(path=str(OUT / "rise-title-slide.png"))
        assert page.locator(".reveal .slides > section").count() == wanted
        assert "A lesson as slides" in page.locator(".reveal .slides > section").first.inner_text()
    finally:
        (OUT / "rise-console-errors.txt").write_text("\n".join(errors))
        page.close()


def test_rise_slider_on_a_slide_changes_its_figure(browser, jupyterlab):
    """A panel run on a slide shows its widgets (not a line of text: ipywidgets 8.1.3 and later do not load in
    RISE's slide app, see requirements/course.txt), and dragging its lr slider changes its figure."""
    errors: list[str] = []
    page = _open_slideshow(browser, jupyterlab, errors)
    try:
        _turn_to_next_slide(page)  # slide 2: the panel's code cell
        page.locator(".jp-CodeCell .cm-content").first.click()
        page.keyboard.press("Control+Enter")  # run it, stay on the slide
        page.wait_for_function(f"() => document.querySelector('{HANDLE}') || "
                               "/VBox\\(children=/.test(document.body.innerText)", timeout=180_000)
        page.screenshot(path=str(OUT / "rise-panel-slide.png"))
        widget_errors = [e for e in errors if "jupyterlab-manager" in e or "@jupyterlab/console" in e]
        assert page.locator(HANDLE).count(), f"the panel rendered as text, not widgets; console: {widget_errors[:2]}"
        slide = page.locator(".reveal .slides section.present").first.inner_text()[:40]
        plot, readout = page.locator(PLOT).last, page.locator(READOUT).first
        before, old = _settled(plot), readout.inner_text()
        # A drag, as a lecturer moves it: on a slide the arrow keys go to reveal.js (the next slide), even from
        # a focused slider handle.
        handle = page.locator(HANDLE).first.bounding_box()
        x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x - 40, y, steps=5)
        page.mouse.up()
        after = _settled(plot, changed_from=before)
        page.screenshot(path=str(OUT / "rise-panel-slide-after-drag.png"))
        assert page.locator(".reveal .slides section.present").first.inner_text()[:40] == slide, "the slide changed"
        assert readout.inner_text() != old, f"the lr readout stayed at {old!r} after a drag of its handle"
        assert after != before, f"the figure did not change after the lr slider moved {old} -> {readout.inner_text()}"
        # 1280x720: the slide with the run panel is taller than the screen. It scrolls (the course's page
        # style), so the lecturer can bring the whole figure into view; it is not cut off at the bottom.
        slide_js = "document.querySelector('.reveal .slides section.present:not(.stack)')"
        page.evaluate(f"() => {{ const s = {slide_js}; s.scrollTop = s.scrollHeight; }}")
        time.sleep(0.3)
        bottom = page.evaluate(f"() => {{ const s = {slide_js}; return Math.max(...[...s.querySelectorAll("
                               f"'{PLOT}')].map(e => e.getBoundingClientRect().bottom)); }}")
        page.screenshot(path=str(OUT / "rise-panel-slide-scrolled.png"))
        assert bottom <= VIEWPORT["height"] + 1, (
            f"the panel's figure ends at y = {bottom:.0f} px, below the {VIEWPORT['height']} px screen, even with the "
            "slide scrolled to its end (see rise-panel-slide-scrolled.png)")
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(OUT / "rise-panel-slide-end.png"))
        (OUT / "rise-panel-console-errors.txt").write_text("\n".join(errors))
        page.close()
