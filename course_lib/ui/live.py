"""Live figures: what makes a plot redraw while training runs (the panels around them: ``panels.py``).

Two facts about live plots in Jupyter shape this code (measured on a 2-core laptop-class CPU):

1. A new figure per frame costs 50-90 ms; updating the artists of one figure in place and
   redrawing costs 13-28 ms. So every view keeps its artists and only moves them.
2. With ipympl (``%matplotlib widget``), ``canvas.draw_idle()`` shows *nothing* while a training
   loop keeps the kernel busy, and ``canvas.draw()`` before the browser is ready leaves a blank
   figure. The guard that works: ``draw_idle() if canvas.syncing_data_url else draw()``.
   Without ipympl, frames are PNGs pushed into one ``ipywidgets.Image`` (no flicker, no
   ``clear_output``).

Frames are throttled (``min_interval``, default 0.08 s, and never more than ``max_share`` of the
process's CPU time: a costly frame waits longer for the next), whatever the step rate, and counted
(``LiveFigure.frames``), also headless, so tests can check that a plot really updated."""

from __future__ import annotations

import importlib
import math
import struct
import time
import zlib

import ipywidgets as W
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib._pylab_helpers import Gcf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._validation import check_number
from .live_svg import BrowserCurves, drawn_in_browser

__all__ = ["LiveFigure", "outside_kernel", "send_first_frame", "use_live_backend"]


def use_live_backend() -> str:
    """Switch matplotlib to ipympl (``%matplotlib widget``) if it works here, else to inline.

    Call it once at the top of a notebook. Returns the backend in use: ``"widget"``,
    ``"inline"``, or (outside IPython) matplotlib's current backend, unchanged.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the course
        return plt.get_backend()
    ip = get_ipython()
    if ip is None:
        return plt.get_backend()
    try:
        ip.run_line_magic("matplotlib", "widget")
        if _send_first_frames not in ip.events.callbacks["post_run_cell"]:
            ip.events.register("post_run_cell", _send_first_frames)
        return "widget"
    except Exception:  # ipympl missing or not loadable in this front end: PNG frames instead
        ip.run_line_magic("matplotlib", "inline")
        return "inline"


def outside_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return True
    ip = get_ipython()
    return ip is None or not hasattr(ip, "kernel")


def _run_figure_hooks(fig) -> None:
    """Call rcParams["figure.hooks"] on a figure made without pyplot, as ``plt.figure`` does."""
    for spec in matplotlib.rcParams["figure.hooks"]:
        module, _, dotted = spec.partition(":")
        hook = importlib.import_module(module)
        for part in dotted.split("."):
            hook = getattr(hook, part)
        hook(fig)


def _is_ipympl(fig) -> bool:
    return type(fig.canvas).__module__.startswith("ipympl")


def send_first_frame(fig, render=None) -> bool:
    """Send an ipympl figure's image to the browser now, before its view asks for it; True if sent.

    The browser's view asks for its first image with a message that the kernel reads only after
    every cell queued before it: during Run All, figures and panels stayed blank until the last
    cell had run (measured on lesson 02: 30 s after the first figure was in view). A frame sent
    from here is kept by the page and shown as soon as the view appears. Two details of ipympl
    0.10 matter: the page sizes its image from the figure's size, which it learns from a resize
    message (sent here); and until the view has answered, ipympl sends raw pixels instead of a
    PNG (while it keeps its static copy for exports in sync), which the page cannot show, so
    that copy is not updated by this one frame. Once per figure; later frames go the usual way.

    Args:
        fig (Figure): a figure on an ipympl canvas (others are left alone: False).
        render (callable, optional): draws the figure into the canvas's buffer; default: a full draw.
    """
    canvas = fig.canvas
    if not _is_ipympl(fig) or not getattr(canvas, "syncing_data_url", False) or getattr(canvas, "_first_sent", False):
        return False
    canvas.manager.resize(*fig.bbox.size)
    (render or (lambda: FigureCanvasAgg.draw(canvas)))()
    canvas.syncing_data_url = False
    try:
        canvas.blit()               # one full PNG of the buffer just drawn
    finally:
        canvas.syncing_data_url = True
    canvas._first_sent = True
    return True


def _send_first_frames(*_) -> None:
    """After each cell: the first image of every figure the cell displayed (plt.show())."""
    # Gcf, not plt.figure(num): that would make each figure the current one in turn.
    for manager in Gcf.get_all_fig_managers():
        fig = manager.canvas.figure
        view = getattr(fig.canvas, "_live_view", None)    # a LiveFigure's: shown inside a panel
        if view is not None:
            if not view.frames or view.headless:           # made but not shown (yet)
                continue
        elif tuple(getattr(fig.canvas, "_size", (0, 0))) == (0, 0):  # never displayed (ipympl sets it then)
            continue
        try:
            send_first_frame(fig, view._render if view is not None else None)
        except Exception:  # noqa: BLE001, S110 - a figure that cannot draw says so in its own cell
            pass


def _png(rgba) -> bytes:
    """A PNG of an (H, W, 4) uint8 buffer, made for speed: no row filters and zlib level 1.
    PIL's encoder (adaptive filters) took 6-9 ms for an 800x360 frame, this one about 3 ms,
    and zlib releases the GIL while it compresses, so training goes on meanwhile. A plot's
    flat colours compress to about 40 KB even so."""
    h, w, _ = rgba.shape
    rows = np.empty((h, 1 + 4 * w), dtype=np.uint8)   # each row: filter byte 0 (none), then pixels
    rows[:, 0] = 0
    rows[:, 1:] = rgba.reshape(h, 4 * w)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8 bits per channel, RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + chunk(b"IEND", b""))


def _full_frames_only(canvas) -> None:
    """Every image ipympl sends is a full frame, never a diff against the previous one. Diffs
    are applied to whatever the browser's canvas holds: after the browser cleared it (a resize,
    a view re-rendered when scrolled into view) or missed a frame, a live plot showed only the
    changed pixels (new tick labels and grid lines on a blank figure), kept old ones after a
    rescale, and drew legend text hollow. The full frame is encoded by :func:`_png` (about 3 ms
    for an 800x360 figure; matplotlib's own encoder took 6-9 ms)."""

    def full_image():
        if not canvas._png_is_old:
            return None
        pixels = np.asarray(canvas.get_renderer().buffer_rgba())
        canvas.set_image_mode("full")
        canvas._last_buff = pixels.view(np.uint32).squeeze(2).copy()  # ipympl's data URL reads it
        canvas._force_full = canvas._png_is_old = False
        return _png(pixels)

    canvas.get_diff_image = full_image


class LiveFigure:
    """One matplotlib figure shown once and redrawn in place, at most every ``min_interval`` s.

    Args:
        nrows, ncols (int): subplot grid. Default 1 x 1.
        figsize (tuple): inches. Default (7, 3.5).
        headless (bool or None): render without encoding PNG frames (no front end to show
            them). None: headless exactly when not running inside a Jupyter kernel.
        min_interval (float): seconds between frames >= 0. Default 0.08 (about 12 frames/s).
        max_share (float): at most this fraction of the process's CPU time goes to drawing, in
            (0, 1]: after a frame that cost ``d`` CPU seconds the next waits until the process
            has spent ``d * (1/max_share - 1)`` on other work (training), but never more than
            ``max_wait`` (1 s) of wall time: a slow machine still sees a frame a second.
            Default 0.25, so a live plot never slows training by more than about a quarter.
        curves_in_browser (bool): in a notebook, the browser draws the curves that move (the
            artists of :meth:`set_moving` that are lines or filled bands, as SVG) over a still
            picture that matplotlib redraws only when it changes (see ``live_svg``). A frame then
            costs the kernel about a tenth as much. Default False.

    Attributes:
        fig, axes: the figure and its Axes (one Axes, or an array for a grid).
        frames (int): frames drawn so far. widget: what to display (the ipympl canvas, or an
        ``ipywidgets.Image`` holding the latest PNG).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> live = LiveFigure()
        >>> _ = live.axes.plot([0, 1], [1, 0])
        >>> live.refresh(force=True), live.frames
        (True, 1)
        >>> live.refresh()          # too soon after the last frame: skipped
        False
    """

    def __init__(self, nrows: int = 1, ncols: int = 1, figsize=(7, 3.5), min_interval: float = 0.08,
                 max_share: float = 0.25, headless: bool | None = None, curves_in_browser: bool = False):
        check_number("min_interval", min_interval, where="LiveFigure", low=0.0)
        check_number("max_share", max_share, where="LiveFigure", low=0.0, high=1.0, low_open=True)
        self.max_share = max_share
        self.max_wait = 1.0
        self._wait = 0.0                   # CPU seconds to spend on other work before the next frame
        self._budget = 0.0                 # CPU seconds of drawing earned and not spent (< 0: owed)
        self._stills = self._STILL_BURST   # the same for still redraws (see refresh), never owed
        self._tick_key: tuple | None = None  # _tick_key_now() at the last layout or tick check
        self._last_cpu = time.process_time()
        # Outside a Jupyter kernel nobody sees a PNG: render the figure (drawing errors still
        # surface, frames are still counted) but skip the encoding.
        self.headless = outside_kernel() if headless is None else headless
        self.browser = None                # BrowserCurves: the page draws the moving curves
        if curves_in_browser and not self.headless:
            # A plain Agg figure, never an ipympl canvas: frames go to BrowserCurves' widgets.
            self.fig = Figure(figsize=figsize, layout="constrained")
            FigureCanvasAgg(self.fig)
            self.axes = self.fig.subplots(nrows, ncols)
            _run_figure_hooks(self.fig)    # what pyplot does for its figures (the lecture theme)
        else:
            with plt.ioff():  # no automatic display: we show the figure once, where we want it
                self.fig, self.axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained")
        self.min_interval = min_interval
        # Constrained layout keeps labels inside the figure but costs 40% of a frame (and far
        # more with a long legend): it runs for the first frame, then the layout is frozen.
        # Call `relayout()` after changing titles or labels.
        self._layout = self.fig.get_layout_engine()
        self._needs_layout = True
        self.frames = 0
        self._last = -float("inf")
        self.ipympl = _is_ipympl(self.fig)
        self._moving = self._overlays = None   # see set_moving(): blitting
        self._bg = None
        self.background_draws = 0          # full redraws of the background (blitting only)
        if curves_in_browser and not self.headless:
            self.browser = BrowserCurves(self.fig, uid=f"course-live-{id(self):x}")
            self.widget = self.browser.widget
        elif self.ipympl:
            _full_frames_only(self.fig.canvas)
            self.fig.canvas._live_view = self   # its first frame goes out after the cell that shows it
            self.fig.canvas.header_visible = False
            self.fig.canvas.toolbar_visible = False   # the lessons' figures are not zoomed
            self.widget = self.fig.canvas
        else:
            w, h = (int(v * self.fig.dpi) for v in figsize)
            self.widget = W.Image(format="png", layout=W.Layout(width=f"{w}px", max_width="100%", height="auto"))

    def show(self) -> "LiveFigure":
        """Display the figure (once); later frames update it where it is."""
        display(self.widget)
        self.refresh(force=True)
        self.send_first_frame()
        return self

    def send_first_frame(self) -> None:
        """Send the figure to the browser now, before its view asks for it (ipympl; see
        :func:`send_first_frame`)."""
        if self.ipympl and not self.headless:
            send_first_frame(self.fig, self._render)

    def refresh(self, force: bool = False, started: float | None = None) -> bool:
        """Draw a frame unless the last one was less than ``min_interval`` ago; True if drawn.

        ``started`` (a ``time.process_time()`` value): when the caller began preparing this
        frame (moving artists, computing labels), so the time share counts that work too. The
        share is counted in the process's CPU time, not wall time: on a busy machine a frame and
        the training steps between two frames both stretch in wall time, and a wall-clock wait
        after a frame let drawing take 40% of the CPU (measured at load 19 on 2 cores).
        """
        if not force and not self.due():
            return False
        cpu = time.process_time()
        relayout = self._needs_layout
        if relayout:
            # Lay the figure out now, in the kernel, then freeze it. (Leaving the engine on for
            # ipympl's deferred draw_idle() lost the layout: the next frame switched it off before
            # the browser asked for the draw, and axis labels were clipped.)
            self.fig.set_layout_engine(self._layout)
            self.fig.draw_without_rendering()
            self._tick_key = self._tick_key_now()  # what draw_now() compares with
            self._bg = None
        self.fig.set_layout_engine("none")
        self._needs_layout = False
        canvas = self.fig.canvas
        stills = self.background_draws
        if self.browser is not None:
            self._render_for_browser()
        elif self.ipympl and canvas.syncing_data_url:
            canvas.draw_idle()                  # no browser view yet: it asks for a draw when ready
        else:
            self._render()
            if self.ipympl:
                canvas.blit()                   # send the rendered buffer (one full PNG, see _png)
            elif not self.headless:
                self.widget.value = _png(np.asarray(canvas.buffer_rgba()))
        self.frames += 1
        self._last = time.perf_counter()
        now = time.process_time()
        # A budget of drawing time (a token bucket): other work (training) earns max_share of its
        # CPU time, a frame spends (1 - max_share) of its own; a frame is due when the budget is
        # not negative. So frames take at most max_share of the CPU over any stretch of frames
        # (still redraws have their own allowance, below),
        # and a one-off costly frame (the figure laid out again after a rescale, 35-55 ms) is paid
        # back by the next frames' savings, instead of holding the plot still for half a second.
        # The first frame (layout, font caches) is not counted: it would stall the plot.
        earned = self.max_share * max(0.0, cpu - self._last_cpu)
        self._budget = min(self._budget + earned, self._BURST)
        # Redraws of the still background (blitting, or the browser's still picture) have an
        # allowance of their own, at the same share, saved up to _STILL_BURST. They happen when the
        # axes' limits move (coarse steps that only grow during a run) or the learner changes
        # something: a few per run (4-6 for 3,000 steps), which it pays without stalling the plot.
        # Charged to the frames' budget, each 20-40 ms redraw owed 0.4-0.6 s of silence, and a
        # 3,000-step run showed 2 frames a second. Beyond the allowance they are charged as before.
        self._stills = min(self._stills + earned, self._STILL_BURST)
        if not relayout:
            cost = now - (cpu if started is None else min(started, cpu))
            if self.background_draws != stills:
                covered = min(cost, max(0.0, self._stills))
                self._stills -= covered
                cost -= covered
            # Owed at most _DEBT: frames forced by a change or by max_wait (a slow machine) must
            # not push the next frames back without end.
            self._budget = max(self._budget - (1 - self.max_share) * cost, -self._DEBT)
        self._wait = max(0.0, -self._budget) / self.max_share   # CPU s of other work before the next frame
        self._last_cpu = now
        return True

    def rest(self) -> None:
        """Start the next stretch of work with full allowances and nothing owed (a lab's run starting
        or resuming). The time share protects the work in progress; while nothing ran, the budget
        earned nothing (it is counted in CPU time), so a run that followed another at once started
        with the last one's still redraws to pay off: 7-10 frames a second, against 11-12 after a
        pause."""
        self._budget = max(self._budget, 0.0)
        self._stills = self._STILL_BURST
        self._wait = 0.0
        self._last_cpu = time.process_time()

    _BURST = 0.03   # at most this much drawing time is saved up (a few frames in a row, no more)
    _DEBT = 0.05    # and at most this much owed (at max_share 0.06: 0.8 s of other work to pay it)
    _STILL_BURST = 0.15   # still redraws saved up: a run's first 4-6 at 20-40 ms each

    # -- blitting: redraw only what moves ---------------------------------------------------------
    #
    # Of a 25 ms frame (5,000-step curves, 800x360 px), two thirds went to the parts that do not
    # move between frames: ticks, tick labels, grid, axis labels. With ``set_moving``, a frame
    # restores a saved background (everything else) and draws only the moving artists: 3-6 ms.
    # The background is redrawn when anything it shows may have changed: the axes' limits or
    # scales, their number of artists (a ghost run added), titles or labels, the figure's size.

    def set_moving(self, artists, overlays=None) -> None:
        """Draw frames by blitting: ``artists()`` returns the artists that change between frames
        (curves, markers); the rest is drawn once and reused while the key of
        :meth:`_background_key` stays the same. ``overlays()`` (optional) returns opaque
        artists drawn over the moving ones, such as a legend with ``framealpha=1``: their pixels
        are saved once and pasted back each frame (a legend's text cost 2-17 ms a frame). The
        figure itself is unchanged (no artist is marked animated), so ``savefig`` and headless
        tests see what the browser shows."""
        self._moving, self._overlays = artists, overlays
        self._bg = None

    def invalidate(self) -> None:
        """Redraw the background at the next frame (after a change the key cannot see)."""
        self._bg = None

    def _background_key(self) -> tuple:
        key = [self.fig.dpi, tuple(self.fig.bbox.bounds)]
        for ax in self.fig.axes:
            key += [ax.get_xlim(), ax.get_ylim(), ax.get_xscale(), ax.get_yscale(), len(ax.get_children()),
                    ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), ax.get_visible()]
        return tuple(key)

    def _render(self) -> None:
        """Render the figure into the canvas's buffer, by blitting when a background is saved."""
        canvas, moving = self.fig.canvas, self._moving
        if moving is None or not isinstance(canvas, FigureCanvasAgg):
            FigureCanvasAgg.draw(canvas) if isinstance(canvas, FigureCanvasAgg) else canvas.draw()
            return
        arts = sorted((a for a in moving() if a is not None), key=lambda a: a.get_zorder())
        over = [a for a in (self._overlays() if self._overlays else []) if a is not None and a.get_visible()]
        key = self._background_key() + tuple(id(a) for a in over)
        if self._bg is not None and self._bg[0] == key:
            canvas.restore_region(self._bg[1])
            for a in arts:
                if a.get_visible():
                    self.fig.draw_artist(a)
            for patch in self._bg[2]:
                canvas.restore_region(patch)
            return
        shown = [(a, a.get_visible()) for a in arts]
        for a, _ in shown:
            a.set_visible(False)
        try:
            FigureCanvasAgg.draw(canvas)         # the background: everything but what moves
        finally:
            for a, visible in shown:
                a.set_visible(visible)
        background = canvas.copy_from_bbox(self.fig.bbox)
        for a in arts:
            if a.get_visible():
                self.fig.draw_artist(a)
        renderer = canvas.get_renderer()
        patches = []
        for a in over:
            self.fig.draw_artist(a)
            patches.append(canvas.copy_from_bbox(a.get_window_extent(renderer).expanded(1.02, 1.05)))
        self._bg = (self._background_key() + tuple(id(a) for a in over), background, patches)
        self.background_draws += 1

    def _render_for_browser(self) -> None:
        """Frames for :class:`BrowserCurves`: the still picture when it changed, then the curves."""
        canvas = self.fig.canvas
        moving = [a for a in (self._moving() if self._moving else []) if a is not None]
        curves = sorted((a for a in moving if drawn_in_browser(a)), key=lambda a: a.get_zorder())
        over = [a for a in (self._overlays() if self._overlays else []) if a is not None and a.get_visible()]
        # What else moves (text, markers) is part of the still picture: its state is in the key.
        others = tuple((id(a), a.get_visible(), a.get_text() if hasattr(a, "get_text") else None,
                        getattr(a, "xy", None), a.get_xydata().tobytes() if isinstance(a, Line2D) else None)
                       for a in moving if not drawn_in_browser(a))
        key = self._background_key() + tuple(id(a) for a in over) + others
        if self._bg is None or self._bg[0] != key:
            # The overlay layer (the legend) is kept while the same legend sits in the same
            # axes: then the still picture is drawn without it (it would be hidden anyway).
            over_key = (tuple(id(a) for a in over), tuple(self.fig.bbox.bounds),
                        tuple(tuple(ax.bbox.bounds) for ax in self.fig.axes))
            keep_over = self._bg is not None and self._bg[2] == over_key
            hide = curves + (over if keep_over else [])
            shown = [(a, a.get_visible()) for a in hide]
            for a, _ in shown:
                a.set_visible(False)
            try:
                FigureCanvasAgg.draw(canvas)
            finally:
                for a, visible in shown:
                    a.set_visible(visible)
            pixels = np.asarray(canvas.buffer_rgba())              # (H, W, 4), top row first
            over_png = None
            if not keep_over:
                top = np.zeros_like(pixels)
                renderer, h = canvas.get_renderer(), pixels.shape[0]
                for a in over:               # opaque overlays (the legend) go on top of the curves
                    x0, y0, x1, y1 = a.get_window_extent(renderer).expanded(1.02, 1.05).extents
                    r0, r1 = max(0, int(h - y1)), min(h, int(math.ceil(h - y0)))
                    c0, c1 = max(0, int(x0)), min(pixels.shape[1], int(math.ceil(x1)))
                    top[r0:r1, c0:c1] = pixels[r0:r1, c0:c1]
                over_png = _png(top)
            self.browser.send_still(_png(pixels), over_png)
            self._bg = (key, None, over_key)
            self.background_draws += 1
        self.browser.send_curves(curves)

    def relayout(self) -> None:
        """Recompute the layout at the next frame (after titles, labels or axes changed)."""
        self._needs_layout = True

    def _tick_key_now(self) -> tuple:
        """What of the tick labels the layout depends on: for each axis the longest label
        (characters), and for an x-axis the length of a major label that sits at either of its ends
        (0 if none does). Such a label sticks out sideways past the axes by half its width, and the
        layout leaves room for that only if a label sat there when it was computed: lesson 02's step
        axis at 0..150 (last label "140", inside) was laid out to the figure's edge, and at 0..500
        its "500" then ran off it. ("At an end": within a twentieth of the axis. A y-label at an end
        sticks out by half a line only, into the room of the x labels or the title; and where inner
        labels sit is not part of the key: on an autoscaled axis they move with every change of the
        data, and a layout costs up to a full draw.) Computing the ticks costs a few ms an axes."""
        key = []
        for ax in self.fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                longest = max((len(t.get_text()) for t in axis.get_ticklabels(which="both")), default=0)
                if axis is ax.yaxis:
                    key.append(longest)
                    continue
                lo, hi = sorted(axis.get_view_interval())
                scale = axis.get_transform()                     # linear, log, ...: places as drawn
                a, b = (float(v) for v in scale.transform([lo, hi]))
                shown = [(float(scale.transform([x])[0]), t.get_text())    # (place, text) of each major label
                         for x, t in zip(axis.get_majorticklocs(), axis.get_majorticklabels()) if lo <= x <= hi]
                at_start = len(shown[0][1]) if shown and abs(shown[0][0] - a) <= abs(b - a) / 20 else 0
                at_end = len(shown[-1][1]) if shown and abs(b - shown[-1][0]) <= abs(b - a) / 20 else 0
                key.append((longest, at_start, at_end))
        return tuple(key)

    def relayout_if_ticks_changed(self) -> bool:
        """:meth:`relayout` if the tick labels changed since the last layout or the last call in a way
        the layout depends on (see :meth:`_tick_key_now`; True then). The layout is frozen after the
        first frame; a log axis whose range shrinks below a decade gains labels such as "6x10^0",
        wider than the first frame's "10^1", and in the descent explorer the loss panel's y-label
        then sat on the contour panel. Computing the ticks costs a few ms an axes: for frames a
        slider asks for (see :meth:`draw_now`), not for every frame of a training run."""
        key = self._tick_key_now()
        changed = self._tick_key is not None and key != self._tick_key
        self._tick_key = key
        if changed:
            self.relayout()
        return changed

    def draw_now(self) -> bool:
        """The frame a learner waits for (a slider's last position, the end of a run): drawn at
        once, never throttled, and laid out again first if a tick label changed width. (With the
        frozen layout, lesson 10's panel lost the "v" of its y-label off the figure's left edge when
        its steps slider went from 300 to 100: the ticks went from "4.5" to "2.75".)"""
        self.relayout_if_ticks_changed()
        return self.refresh(force=True)

    def due(self) -> bool:
        """True if a ``refresh()`` now would draw (lets callers skip preparing a frame)."""
        wall = time.perf_counter() - self._last
        if wall < self.min_interval:
            return False
        earned = self.max_share * (time.process_time() - self._last_cpu)
        return wall >= self.max_wait or self._budget + earned >= 0

    def close(self) -> None:
        plt.close(self.fig)
