"""Widgets driven from Python, as a test drives a notebook's sliders: live figures are throttled
and count their frames; the live range test moves its markers; every schedule slider, at both
extremes and mid-range, redraws or explains why not, and never raises."""

import json
import time

import matplotlib
import matplotlib.pyplot
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

import course_lib as cl  # noqa: E402
from course_lib import ui  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    matplotlib.pyplot.close("all")


def test_live_figure_throttles_and_counts_frames():
    live = ui.live.LiveFigure(min_interval=10.0, headless=False)   # the inline path: PNG frames
    assert live.refresh(force=True) and live.frames == 1
    assert not live.refresh() and live.frames == 1           # within min_interval: skipped
    assert live.refresh(force=True) and live.frames == 2
    assert bytes(live.widget.value)[:4] == b"\x89PNG"  # inline: a PNG frame


def test_a_slow_frame_makes_the_next_one_wait(monkeypatch):
    live = ui.live.LiveFigure(min_interval=0.0, max_share=0.25, headless=False)
    live._BURST = 0.0                   # no drawing time saved up: the rule itself, frame by frame
    real = live._render

    def slow_render():  # a frame that costs at least 50 ms of CPU time (the share counts CPU time)
        t = time.thread_time()
        while time.thread_time() - t < 0.05:
            pass
        return real()

    live.refresh(force=True)            # the first frame lays the figure out: not a measure
    monkeypatch.setattr(live, "_render", slow_render)
    live.refresh(force=True)
    # drawing may use at most 25% of the CPU: the next frame waits for >= 0.05 * (1/0.25 - 1) s
    # of other work (none is done here, so it is not due)...
    assert live._wait >= 0.15 - 0.01 and not live.due() and not live.refresh()
    # ...but never longer than max_wait of wall time, however slow the frame
    live.max_wait, live.max_share = 0.1, 0.01
    live.refresh(force=True)
    assert not live.due()
    time.sleep(0.12)
    assert live.due()


def test_bad_live_figure_settings_are_named():
    with pytest.raises(ValueError, match=r"LiveFigure\(\): 'max_share' must be a float in \(0, 1\], got max_share=0"):
        ui.live.LiveFigure(max_share=0)


def test_live_range_test_grows_the_curve_and_moves_the_markers():
    live = ui.lr_finder.LiveLRFinder(min_interval=0.0)
    live.view.max_share = 1.0                                  # draw at every callback
    seen = []

    def spy(result):  # called after the view updated itself
        plot = live.plots[-1]
        seen.append((len(plot.smoothed.get_xdata()), tuple(plot.markers["valley"].get_xdata())))

    data = cl.make_regression(512, noise=0.1, seed=0)
    r = live.run(cl.MLP(1, 1, width=32), data, start_lr=1e-5, end_lr=100, num_iter=120, readback_every=8,
                 on_step=spy, device="cpu")
    assert live.view.frames >= 3
    lengths = [n for n, _ in seen]
    assert lengths == sorted(lengths) and lengths[-1] > lengths[0]          # the curve grows
    positions = {m for _, m in seen if m}
    assert len(positions) >= 2                                              # the valley marker moved
    final = live.plots[-1].markers["valley"].get_xdata()
    assert list(final) == [r.suggestions["valley"]]                        # and ends on the answer
    assert r.stop_reason in live.status.value


def test_two_runs_share_the_plot():
    live = ui.lr_finder.LiveLRFinder()
    data = cl.make_regression(256, noise=0.1, seed=0)
    live.run(cl.MLP(1, 1, width=8), data, num_iter=40, device="cpu", label="a")
    live.run(cl.MLP(1, 1, width=8), data, num_iter=40, device="cpu", smooth_beta=0.95, label="b")
    labels = [ln.get_label() for ln in live.ax.get_lines()]
    assert any(lb.startswith("a: smoothed") for lb in labels) and any(lb.startswith("b: smoothed") for lb in labels)


def _slider_values(w):
    """Both extremes and the middle of a slider; every option of a dropdown; both states of a checkbox."""
    if hasattr(w, "options"):
        return list(w.options)
    if isinstance(w.value, bool):
        return [True, False]
    lo, hi = w.min, w.max
    if type(w).__name__ == "FloatLogSlider":
        return [w.base ** lo, w.base ** ((lo + hi) / 2), w.base ** hi]
    mid = (lo + hi) / 2
    return [lo, int(mid) if isinstance(w.value, int) else mid, hi]


@pytest.mark.parametrize("kind", ["cyclic", "one_cycle"])
def test_every_schedule_slider_at_extremes_and_middle(kind):
    names = list(ui.schedules.SchedulePreviewer(kind, num_steps=300).sliders)
    for name in names:
        p = ui.schedules.SchedulePreviewer(kind, num_steps=300)        # from the defaults for each slider
        w = p.sliders[name]
        for value in _slider_values(w):
            if w.value == value:
                continue                                          # no change, no event
            before_lr = np.array(p.plot.lr_line.get_ydata()).copy()
            before_status, frames = p.status.value, p.view.frames
            w.value = value                                       # drives the observer, like a user
            changed = (p.view.frames > frames) or (p.status.value != before_status)
            assert changed, f"{kind}: moving {name} to {value!r} did nothing"
            if "must" in p.status.value:                           # refused: says why, keeps the plot
                assert np.array_equal(np.array(p.plot.lr_line.get_ydata()), before_lr)


def test_schedule_preview_follows_the_sliders():
    p = ui.schedules.SchedulePreviewer("cyclic", num_steps=400)
    p.sliders["max_lr"].value = 0.5
    assert max(p.plot.lr_line.get_ydata()) == pytest.approx(0.5)
    p.sliders["mode"].value = "triangular2"
    lrs = np.array(p.plot.lr_line.get_ydata())
    assert lrs[300] == pytest.approx(1e-3 + (0.5 - 1e-3) / 2)    # the second peak is half as high
    p.sliders["base_lr"].value = 1.0                               # above max_lr: refused, explained
    assert "'max_lr' must be > 'base_lr'" in p.status.value
    p.sliders["base_lr"].value = 1e-3
    p.sliders["cycle_momentum"].value = False
    assert not p.plot.mom_ax.get_visible()


def test_use_live_backend_outside_ipython_changes_nothing():
    before = matplotlib.get_backend()
    assert ui.live.use_live_backend() == before


def test_compute_modules_do_not_import_widgets_or_matplotlib():
    import subprocess
    import sys
    code = ("import sys, course_lib; import course_lib.lr_finder, course_lib.schedules; "
            "print(any(m.startswith(('matplotlib', 'ipywidgets')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_snap_and_same_setting_follow_the_slider_grid():
    import ipywidgets as W
    from course_lib.ui.panels import same_setting, snap
    log = W.FloatLogSlider(min=-5, max=1, step=0.1)
    lin = W.FloatSlider(min=0.1, max=0.9, step=0.05)
    assert snap(log, 0.3) == pytest.approx(0.316227766) and snap(log, 0.01) == 0.01 and snap(lin, 0.81) == 0.8
    assert same_setting(log, 0.3, 0.31622776601683794) and not same_setting(log, 0.3, 0.4)
    assert same_setting(lin, 0.8, 0.7999999999999999) and not same_setting(lin, 0.8, 0.85)
    assert snap(W.Dropdown(options=["a", "b"]), "b") == "b" and same_setting(None, "a", "a")


def test_a_panel_ignores_the_browser_rounding_and_late_echoes():
    explorer = ui.loss_shapes.LossExplorer()
    frames = explorer.view.frames
    explorer.sliders["margin"].set_state({"value": -0.49999999999999994})   # the browser's rounding of -0.5
    assert explorer.view.frames == frames and explorer.settings()["margin"] == -0.5
    explorer.sliders["margin"].value = 1.5                                   # cells move it from code...
    explorer.sliders["margin"].value = -2.0
    explorer.sliders["margin"].set_state({"value": -0.5})                   # ...and the display's -0.5 arrives late
    assert explorer.sliders["margin"].value == -2.0 and explorer.settings()["margin"] == -2.0
    assert explorer.classification.x == -2.0 if hasattr(explorer.classification, "x") else True
    explorer.sliders["margin"].set_state({"value": 0.25})                   # a real move
    assert explorer.settings()["margin"] == 0.25 and explorer.view.frames > frames


def _growing_history(n: int, spike_at: int | None = None):
    from course_lib.train import History
    rng = np.random.default_rng(0)
    loss = np.exp(-np.arange(n) / 1500) + 0.05 * rng.random(n)
    if spike_at is not None:
        loss[spike_at] = 40.0
    h = History(step=list(range(n)), train_loss=list(loss), lr=[0.01] * n, val_step=list(range(0, n, 25)),
                val_loss=list(np.exp(-np.arange(0, n, 25) / 1500) + 0.08))
    h.add_event(1200, "change", "lr 0.01 -> 0.03")
    return h


def _pixels(fig) -> np.ndarray:
    return np.asarray(fig.canvas.buffer_rgba()).astype(int)


def test_a_blitted_frame_is_the_figure_matplotlib_draws():
    # The oracle is matplotlib's own full draw of the same figure: a live frame that restores a
    # saved background and redraws only the curves must show the same picture (a stale tick, an
    # old curve left in the background or a missing legend would differ by thousands of pixels).
    from course_lib.ui.plotting import LossCurvesPlot
    live = ui.live.LiveFigure(figsize=(8, 3.6), headless=True)
    plot = LossCurvesPlot(live.axes)
    live.set_moving(plot.moving, plot.overlays)
    h = _growing_history(3000)
    for frame in range(4):                           # a background, then frames that only blit
        # 400 steps a frame at a loss of 1.4, inside the same limits: the curve climbs into the
        # upper right, under the legend, which must stay on top.
        n = len(h.step)
        h.step.extend(range(n, n + 400)), h.train_loss.extend([1.4] * 400)
        plot.update(h)
        plot.legend()
        live.refresh(force=True)
    assert live.background_draws < 4                  # the later frames did blit
    blitted = _pixels(live.fig)
    live.fig.canvas.draw()                            # matplotlib draws everything, in its own order
    full = _pixels(live.fig)
    differ = np.abs(blitted - full).max(axis=2) > 8                 # (H, W), rows from the top
    # Only antialiased edges where a curve meets the frame of the axes may differ (drawing order):
    # 0.02% measured; curves left out of the frame gave 0.26%.
    assert differ.mean() < 0.001, f"{differ.mean():.2%} of the pixels differ from a full draw"
    box = live.axes.get_legend().get_window_extent()
    h_px = differ.shape[0]
    legend = differ[int(h_px - box.y1):int(h_px - box.y0), int(box.x0):int(box.x1)]
    assert legend.sum() < 10, f"{legend.sum()} pixels of the legend differ: the curve is drawn over it"


@pytest.mark.parametrize("first, then", [
    ((0, 150), (0, 500)),               # a label comes to the axis' end ("140" inside -> "500" at the end)
    ((0, 1), (0, 1e-4)),                # wider labels ("0.2" -> "0.00002")
])
def test_draw_now_lays_the_figure_out_again_when_the_tick_labels_need_it(first, then):
    from figure_checks import text_problems
    live = ui.live.LiveFigure(figsize=(6, 3), headless=True)
    live.axes.plot([0, 1], [0, 1])
    live.axes.set(xlim=first, ylim=first, xlabel="step", ylabel="loss")
    live.refresh(force=True)                               # laid out for these labels, then frozen
    live.axes.set(xlim=then, ylim=then)
    live.refresh(force=True)                               # a training frame keeps the layout (cheap) ...
    assert text_problems(live.fig) != []                   # ... so the wider or moved labels stick out
    live.draw_now()                                        # a frame someone waits for: laid out again
    assert text_problems(live.fig) == []
    layouts, real = [], live.fig.draw_without_rendering
    live.fig.draw_without_rendering = lambda: (layouts.append(1), real())[1]
    live.draw_now()                                        # nothing changed: a frame, no new layout
    assert layouts == [] and text_problems(live.fig) == []


def test_a_new_limit_redraws_the_background():
    from course_lib.ui.plotting import LossCurvesPlot
    h = _growing_history(500)
    live = ui.live.LiveFigure(figsize=(8, 3.6), headless=True)
    plot = LossCurvesPlot(live.axes)
    live.set_moving(plot.moving, plot.overlays)
    plot.update(h), plot.legend(), live.refresh(force=True)
    before = live.background_draws
    h.step.extend(range(500, 3000)), h.train_loss.extend([0.05] * 2500)   # the x-axis must grow
    plot.update(h), plot.legend(), live.refresh(force=True)
    assert live.background_draws == before + 1
    live.fig.canvas.draw()
    assert live.axes.get_xlim()[1] >= 2999


def test_the_growing_curve_buckets_equal_reducing_the_whole_run():
    # The band and the decimated lines keep the buckets reduced at earlier frames; the oracle is
    # _envelope and _decimate of the whole curve at every frame (uneven chunks, across the sizes
    # where a bucket's length doubles, a spike and a dip among the losses).
    from course_lib.train import History
    from course_lib.ui.plotting import _GrowingCurve, _decimate, _envelope
    rng = np.random.default_rng(2)
    loss = list(np.exp(-np.arange(9000) / 2000) + 0.1 * rng.random(9000))
    loss[3001], loss[7777], loss[5] = 40.0, 1e-3, float("nan")
    h, curve = History(), _GrowingCurve()
    ends = sorted({int(e) for e in rng.integers(1, 9000, 60)} | {999, 1000, 1001, 2000, 2048, 4096, 9000})
    for end in ends:
        h.step.extend(range(len(h.step), end)), h.train_loss.extend(loss[len(h.train_loss):end])
        curve.update(h, 0.9)
        for got, want in zip(curve.envelope(500), _envelope(curve.x, curve.y, 500)):
            assert np.array_equal(got, want), end
        for smoothed in (True, False):
            ys = curve.smoothed if smoothed else curve.y
            for got, want in zip(curve.decimated(smoothed, 1000), _decimate(curve.x, ys, 1000)):
                assert np.array_equal(got, want), (end, smoothed)


def test_the_raw_band_keeps_a_spike_of_a_long_run():
    # One step's loss 40 among losses below 1.1, in a 20,000-step run drawn as a band of ~750
    # buckets: the band must reach 40 (a plain subsample would drop it 29 times out of 30).
    from course_lib.ui.plotting import LossCurvesPlot, _envelope
    h = _growing_history(20000, spike_at=12345)
    plot = LossCurvesPlot(matplotlib.pyplot.subplots()[1])
    plot.update(h)
    assert plot.raw_band.get_visible() and not len(plot.raw.get_xdata())
    top = max(p.vertices[:, 1].max() for p in plot.raw_band.get_paths())
    assert top == pytest.approx(40.0)
    # 10 points in at most 4 buckets: 4 points a bucket (a power of two), the last bucket short
    x, lo, hi = _envelope(np.arange(10.0), np.array([3, 1, 2, 9, 5, 0, 4, 4, 7, 8.0]), buckets=4)
    assert x.tolist() == [0, 4, 9] and lo.tolist() == [1, 0, 7] and hi.tolist() == [9, 5, 8]
    x, lo, hi = _envelope(np.arange(8.0), np.array([3, 1, 2, 9, 5, 0, 4, 6.0]), buckets=4)
    assert x.tolist() == [0, 2, 4, 7] and lo.tolist() == [1, 2, 0, 4] and hi.tolist() == [3, 9, 5, 6]


# -- curves drawn by the browser (LiveFigure(curves_in_browser=True), the training lab) ----------

def _page_pixels(live) -> np.ndarray:
    """What the page shows for a BrowserCurves view: its still picture, then its SVG paths, then
    its overlay picture. The paths are painted by Agg here, standing in for the browser's SVG
    renderer: each path's points, colour, opacity, width and clip rectangle are read from the SVG
    the page receives."""
    import io
    import re

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    b = live.browser
    still = np.asarray(Image.open(io.BytesIO(b.still.value)).convert("RGBA"))
    over = np.asarray(Image.open(io.BytesIO(b.over.value)).convert("RGBA"))
    h, w = still.shape[:2]
    fig = Figure(figsize=(w / 100, h / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fig.figimage(still, zorder=0)
    ax = fig.add_axes((0, 0, 1, 1), zorder=1)
    ax.set_xlim(0, w), ax.set_ylim(h, 0), ax.axis("off"), ax.patch.set_alpha(0)
    svg = b.curves.value
    clips = {cid: [float(v) / 10 for v in re.findall(r'="(-?\d+)"', rect)]
             for cid, rect in re.findall(r'<clipPath id="([^"]+)">(<rect[^>]*>)</clipPath>', svg)}
    for cid, paths in re.findall(r'<g clip-path="url\(#([^)]+)\)">(.*?)</g>(?=<g clip|</svg>)', svg):
        x0, y0, cw, ch = clips[cid]
        rect = matplotlib.patches.Rectangle((x0, y0), cw, ch, transform=ax.transData)
        for attrs in re.findall(r"<path ([^>]*)/>", paths):
            a = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
            xy = np.array(a["d"].strip("MZ").replace("L", " ").split(), dtype=float).reshape(-1, 2) / 10
            if a["fill"] != "none":
                art = ax.fill(xy[:, 0], xy[:, 1], color=a["fill"], alpha=float(a["fill-opacity"]), lw=0)[0]
            else:
                art = ax.plot(xy[:, 0], xy[:, 1], color=a["stroke"], alpha=float(a["stroke-opacity"]),
                              lw=float(a["stroke-width"]) / 10 * 72 / 100, solid_capstyle="round",
                              solid_joinstyle="round")[0]
            art.set_clip_path(rect)
    fig.figimage(over, zorder=2)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).astype(int)


def _browser_view(n_steps: int, **kw):
    from course_lib.ui.plotting import LossCurvesPlot
    live = ui.live.LiveFigure(figsize=(8, 3.6), headless=False, curves_in_browser=True, **kw)
    plot = LossCurvesPlot(live.axes, baseline=1.1)
    live.set_moving(plot.moving, plot.overlays)
    h = _growing_history(n_steps)
    return live, plot, h


def test_the_page_shows_the_figure_matplotlib_draws():
    # The oracle is matplotlib's full draw of the same figure. The page's picture (still + SVG
    # curves + legend on top) must match it: a curve left in the still picture, a curve missing
    # from the SVG, wrong coordinates, colours or widths, or the legend under the curves would
    # differ by thousands of pixels.
    live, plot, h = _browser_view(3000)
    assert live.browser is not None and live.widget is live.browser.widget
    for _ in range(3):                                   # the still picture once, then curves only
        n = len(h.step)
        h.step.extend(range(n, n + 400)), h.train_loss.extend([1.4] * 400)   # under the legend
        plot.update(h), plot.legend(), live.refresh(force=True)
    assert live.background_draws == 1 and live.browser.frames_sent == 3
    for grown in (False, True):
        if grown:   # a new x-limit: a new still picture, drawn without the legend (its layer is kept)
            n = len(h.step)
            h.step.extend(range(n, n + 3000)), h.train_loss.extend([0.3] * 3000)
            plot.update(h), plot.legend(), live.refresh(force=True)
            assert live.background_draws == 2
        page = _page_pixels(live)
        live.fig.canvas.draw()
        full = _pixels(live.fig)
        differ = np.abs(page - full).max(axis=2) > 40                 # (H, W), rows from the top
        # Antialiased edges differ between two renderers of one path; a missing curve gave 0.85%.
        assert differ.mean() < 0.004, f"{differ.mean():.2%} of the pixels differ from a full draw"
        box = live.axes.get_legend().get_window_extent()
        h_px = differ.shape[0]
        legend = differ[int(h_px - box.y1) + 2:int(h_px - box.y0) - 2, int(box.x0) + 2:int(box.x1) - 2]
        assert legend.sum() < 10, f"{legend.sum()} pixels of the legend differ: the curve is drawn over it"


def test_the_page_frame_is_a_small_svg_and_the_still_picture_is_sent_only_when_it_changes():
    live, plot, h = _browser_view(2500)                  # the x-axis ends at 3000
    plot.update(h), plot.legend(), live.refresh(force=True)
    still, svg = bytes(live.browser.still.value), live.browser.curves.value
    assert still[:4] == b"\x89PNG" and svg.startswith("<svg") and len(svg) < 60_000
    # the curves' points are matplotlib's display coordinates (y from the top), at 0.1 px
    import re
    d = re.search(r'<path d="M[^"]*"[^>]*stroke="#', svg).group(0)
    xy = np.array(d.split('"')[1].strip("M").replace("L", " ").split(), dtype=float).reshape(-1, 2)[1:] / 10
    want = plot.train.get_transform().transform(plot.train.get_xydata())
    want[:, 1] = live.fig.canvas.get_width_height()[1] - want[:, 1]
    assert xy.shape == want.shape and np.abs(xy - want).max() <= 0.051
    n = len(h.step)
    h.step.extend(range(n, n + 50)), h.train_loss.extend([0.5] * 50)      # same limits: curves only
    plot.update(h), plot.legend(), live.refresh(force=True)
    assert live.background_draws == 1 and live.browser.curves.value != svg
    h.step.extend(range(n + 50, 9000)), h.train_loss.extend([0.5] * (9000 - n - 50))   # a new x-limit
    plot.update(h), plot.legend(), live.refresh(force=True)
    assert bytes(live.browser.still.value) != still and live.background_draws == 2


def test_a_frame_reuses_the_text_of_unchanged_points_and_says_the_same_as_formatting_all():
    # The kept text must be exactly what formatting every point gives (one 'x y' pair per point,
    # in SVG units), whatever changed: points added at the end (a growing curve), in the middle
    # (a band's polygon), removed, or all new (the axes rescaled). A wrong cut would shift, drop
    # or repeat points.
    from course_lib.ui.live_svg import _PathText

    def formatted(pts):
        return " ".join(f"{x} {y}" for x, y in np.rint(pts * 10).astype(np.int64).tolist())

    rng = np.random.default_rng(0)
    text, pts = _PathText(), rng.random((40, 2)) * 300
    for trial in range(2000):
        op = trial % 5
        if op == 0:
            pts = np.concatenate([pts, rng.random((int(rng.integers(0, 6)), 2)) * 300])
        elif op == 1:
            i = int(rng.integers(0, len(pts) + 1))
            pts = np.concatenate([pts[:i], rng.random((int(rng.integers(0, 4)), 2)) * 300,
                                  pts[i + int(rng.integers(0, 3)):]])
        elif op == 2:
            pts = pts[:int(rng.integers(0, len(pts) + 1))]
        elif op == 3 and trial % 15 == 3:
            pts = rng.random((int(rng.integers(0, 30)), 2)) * 300
        assert text(pts).rstrip() == formatted(pts), trial
    # And in a figure: the SVG after many frames equals a fresh view's SVG of the same state.
    live, plot, h = _browser_view(2000)
    for _ in range(4):
        n = len(h.step)
        h.step.extend(range(n, n + 90)), h.train_loss.extend(list(0.5 + 0.1 * rng.random(90)))
        plot.update(h), plot.legend(), live.refresh(force=True)
    fresh = type(live.browser)(live.fig, live.browser.uid)
    assert live.browser.curves.value == fresh.svg(
        sorted((a for a in plot.moving() if a is not None and ui.live_svg.drawn_in_browser(a)),
               key=lambda a: a.get_zorder()))


def test_drawing_takes_at_most_its_share_of_the_cpu_over_a_run(monkeypatch):
    # A costly frame now and then (the still picture after a rescale) among cheap ones: over the
    # run, drawing stays within max_share of the CPU (the budget lends at most _BURST ahead), and
    # a cheap frame after a costly one is not held back longer than the costly one's debt.
    live = ui.live.LiveFigure(min_interval=0.0, max_share=0.2, headless=True)
    live.refresh(force=True)                              # layout: not counted
    costs = iter([0.03 if i % 10 == 0 else 0.003 for i in range(400)])

    def burn(seconds):
        t = time.process_time()
        while time.process_time() - t < seconds:
            pass

    monkeypatch.setattr(live, "_render", lambda: burn(next(costs)))
    drawn = other = 0.0
    frames = 0
    start = time.process_time()
    while frames < 60:
        t = time.process_time()
        burn(0.002)                                       # a training step
        other += time.process_time() - t
        t = time.process_time()
        if live.refresh():
            frames += 1
            drawn += time.process_time() - t
    total = time.process_time() - start
    assert drawn / total <= 0.2 + live._BURST / total + 0.02, f"drawing took {drawn / total:.1%} of the CPU"
    assert drawn / total >= 0.12, f"drawing took only {drawn / total:.1%}: frames were held back too long"



def test_still_redraws_have_their_own_allowance_and_do_not_stall_the_plot(monkeypatch):
    # A run's few redraws of the still picture (its axes' limits moving) must not silence the plot:
    # charged to the frames' budget, each 20-40 ms redraw owed 0.4-0.6 s of training before the
    # next frame, and a 3,000-step lab run showed 2 frames a second. A figure whose every frame
    # redraws the still picture is still held to a share: max_share for the frames plus
    # max_share for the redraws.
    live = ui.live.LiveFigure(min_interval=0.0, max_share=0.2, headless=True)
    live.refresh(force=True)                              # layout: not counted

    def burn(seconds):
        t = time.process_time()
        while time.process_time() - t < seconds:
            pass

    def still_redraw():
        burn(0.03)
        live.background_draws += 1

    monkeypatch.setattr(live, "_render", still_redraw)
    burn(0.002)
    assert live.refresh() and live._wait == 0.0, "a still redraw within the allowance held the next frame back"
    drawn = 0.0
    frames = 0
    start = time.process_time()
    while frames < 60:
        burn(0.002)                                       # a training step
        t = time.process_time()
        if live.refresh():
            frames += 1
            drawn += time.process_time() - t
    total = time.process_time() - start
    bursts = (live._BURST + live._STILL_BURST) / total
    assert drawn / total <= 2 * 0.2 + bursts + 0.02, f"still redraws took {drawn / total:.1%} of the CPU"
    assert live._wait > 0.0, "still redraws beyond the allowance were never charged"


# ---- the first frame of an ipympl figure, sent before its browser view asks for it -----------

def _ipympl_figure(sent: list):
    """A figure on an ipympl canvas (no browser: the messages it would send are collected)."""
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend()
    from ipympl.backend_nbagg import Canvas, FigureManager
    matplotlib.pyplot.switch_backend(backend)  # importing ipympl's backend made it pyplot's: back to Agg

    fig = Figure(figsize=(4, 3), dpi=100)
    canvas = Canvas(fig)
    FigureManager(canvas, 0)
    fig.add_subplot().plot([0, 1], [1, 0])
    canvas.send = lambda content, buffers=None: sent.append((json.loads(content["data"]), buffers or []))
    return fig


def test_the_first_frame_reaches_the_page_as_a_png_with_its_size_before_the_view_asks():
    from course_lib.ui.live import send_first_frame

    sent = []
    fig = _ipympl_figure(sent)
    assert fig.canvas.syncing_data_url           # no view has answered yet
    assert send_first_frame(fig) is True
    assert [m["type"] for m, _ in sent] == ["resize", "binary"]
    assert sent[0][0]["size"] == [400.0, 300.0]  # the page sizes its image from this
    assert bytes(sent[1][1][0][:8]) == b"\x89PNG\r\n\x1a\n"
    assert fig.canvas.syncing_data_url           # ipympl's own bookkeeping is left as it was
    assert send_first_frame(fig) is False and len(sent) == 2   # once per figure
    # Why it is needed: ipympl's own draw at this point sends raw pixels, not a PNG.
    sent.clear()
    fig2 = _ipympl_figure(sent)
    fig2.canvas.draw()
    binaries = [b for m, b in sent if m["type"] == "binary"]
    assert binaries and bytes(binaries[0][0][:8]) != b"\x89PNG\r\n\x1a\n"


def test_the_first_frame_goes_to_displayed_figures_only_and_leaves_other_canvases_alone():
    import matplotlib.pyplot as plt

    from course_lib.ui import live

    assert live.send_first_frame(plt.figure()) is False        # Agg: nothing to send
    plt.close("all")
    sent = []
    fig = _ipympl_figure(sent)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(live.Gcf, "get_all_fig_managers", lambda: [fig.canvas.manager])
        live._send_first_frames()
        assert sent == []                                      # made but never displayed
        fig.canvas._size = (400, 300)                          # what ipympl sets when it is displayed
        live._send_first_frames()
    assert [m["type"] for m, _ in sent] == ["resize", "binary"]


def test_the_growing_curve_equals_smoothing_the_whole_run():
    # The live plot extends its points and their EMA frame by frame; the oracle is finite_xy and
    # ema() of the whole run (a NaN and an inf among the losses, chunks of uneven size, then a
    # new run and a new smoothing, which must start again).
    from course_lib.curves import ema
    from course_lib.train import History
    from course_lib.ui.plotting import _GrowingCurve, finite_xy
    rng = np.random.default_rng(1)
    loss = list(np.exp(-np.arange(5000) / 900) + 0.1 * rng.random(5000))
    loss[17], loss[2500] = float("nan"), float("inf")
    h, curve = History(), _GrowingCurve()
    for end in (1, 2, 40, 41, 1000, 2600, 2601, 5000):
        h.step.extend(range(len(h.step), end)), h.train_loss.extend(loss[len(h.train_loss):end])
        curve.update(h, 0.9)
        x, y = finite_xy(h.step, h.train_loss)
        assert np.array_equal(curve.x, x) and np.array_equal(curve.y, y)
        np.testing.assert_allclose(curve.smoothed, ema(y, beta=0.9), rtol=1e-12, atol=0)
        assert (curve.ymin, curve.ymax) == (y.min(), y.max())
    curve.update(h, 0.5)                                     # new smoothing: from the start
    np.testing.assert_allclose(curve.smoothed, ema(y, beta=0.5), rtol=1e-12, atol=0)
    h2 = History(step=[0, 1], train_loss=[3.0, 2.0])          # a new run
    curve.update(h2, 0.5)
    assert curve.x.tolist() == [0, 1]
    np.testing.assert_allclose(curve.smoothed, ema([3.0, 2.0], beta=0.5), rtol=1e-12)
