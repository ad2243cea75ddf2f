"""Live figures and slider panels: what makes a plot redraw while training runs.

Two facts about live plots in Jupyter shape this code (measured on a 2-core laptop-class CPU):

1. A new figure per frame costs 50-90 ms; updating the artists of one figure in place and
   redrawing costs 13-28 ms. So every view keeps its artists and only moves them.
2. With ipympl (``%matplotlib widget``), ``canvas.draw_idle()`` shows *nothing* while a training
   loop keeps the kernel busy, and ``canvas.draw()`` before the browser is ready leaves a blank
   figure. The guard that works: ``draw_idle() if canvas.syncing_data_url else draw()``.
   Without ipympl, frames are PNGs pushed into one ``ipywidgets.Image`` (no flicker, no
   ``clear_output``).

Frames are throttled (``min_interval``, default 0.08 s, and never more than ``max_share`` of the
wall time: a slow PNG frame waits longer for the next), whatever the step rate, and counted
(``LiveFigure.frames``), also headless, so tests can check that a plot really updated."""

from __future__ import annotations

import html
import io
import time

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display

from .._validation import check_number

__all__ = ["use_live_backend", "LiveFigure", "error_html", "SliderPanel"]


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
        return "widget"
    except Exception:  # ipympl missing or not loadable in this front end: PNG frames instead
        ip.run_line_magic("matplotlib", "inline")
        return "inline"


def _outside_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return True
    ip = get_ipython()
    return ip is None or not hasattr(ip, "kernel")


def _is_ipympl(fig) -> bool:
    return type(fig.canvas).__module__.startswith("ipympl")


class LiveFigure:
    """One matplotlib figure shown once and redrawn in place, at most every ``min_interval`` s.

    Args:
        nrows, ncols (int): subplot grid. Default 1 x 1.
        figsize (tuple): inches. Default (7, 3.5).
        headless (bool or None): render without encoding PNG frames (no front end to show
            them). None: headless exactly when not running inside a Jupyter kernel.
        min_interval (float): seconds between frames >= 0. Default 0.08 (about 12 frames/s).
        max_share (float): at most this fraction of the wall time goes to drawing, in (0, 1]:
            after a frame that took ``d`` seconds the next waits at least ``d * (1/max_share - 1)``,
            but never more than ``max_wait`` (1 s): a slow machine still sees a frame a second.
            Default 0.25, so a live plot never slows training by more than about a quarter.

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
                 max_share: float = 0.25, headless: bool | None = None):
        check_number("min_interval", min_interval, where="LiveFigure", low=0.0)
        check_number("max_share", max_share, where="LiveFigure", low=0.0, high=1.0, low_open=True)
        self.max_share = max_share
        self.max_wait = 1.0
        self._wait = min_interval
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
        # Outside a Jupyter kernel nobody sees a PNG: render the figure (drawing errors still
        # surface, frames are still counted) but skip the encoding.
        self.headless = _outside_kernel() if headless is None else headless
        if self.ipympl:
            self.fig.canvas.header_visible = False
            self.widget = self.fig.canvas
        else:
            w, h = (int(v * self.fig.dpi) for v in figsize)
            self.widget = W.Image(format="png", layout=W.Layout(width=f"{w}px", height=f"{h}px"))

    def show(self) -> "LiveFigure":
        """Display the figure (once); later frames update it where it is."""
        display(self.widget)
        self.refresh(force=True)
        return self

    def refresh(self, force: bool = False, started: float | None = None) -> bool:
        """Draw a frame unless the last one was less than ``min_interval`` ago; True if drawn.

        ``started`` (a ``time.perf_counter()`` value): when the caller began preparing this
        frame (moving artists, computing labels), so the time share counts that work too.
        """
        now = time.perf_counter()
        if not force and now - self._last < self._wait:
            return False
        relayout = self._needs_layout
        self.fig.set_layout_engine(self._layout if relayout else "none")
        self._needs_layout = False
        if self.ipympl:
            canvas = self.fig.canvas
            canvas.draw_idle() if canvas.syncing_data_url else canvas.draw()
        elif self.headless:
            self.fig.canvas.draw()
        else:
            buf = io.BytesIO()
            self.fig.savefig(buf, format="png")
            self.widget.value = buf.getvalue()
        self.frames += 1
        self._last = time.perf_counter()
        if not relayout:
            # Adapt to what an ordinary frame costs (a first frame with layout and font caches
            # would stall the plot for seconds), and never wait more than `max_wait`.
            cost = self._last - (now if started is None else min(started, now))
            self._wait = min(self.max_wait, max(self.min_interval, cost * (1 / self.max_share - 1)))
        return True

    def relayout(self) -> None:
        """Recompute the layout at the next frame (after titles, labels or axes changed)."""
        self._needs_layout = True

    def due(self) -> bool:
        """True if a ``refresh()`` now would draw (lets callers skip preparing a frame)."""
        return time.perf_counter() - self._last >= self._wait

    def close(self) -> None:
        plt.close(self.fig)


def error_html(err: Exception) -> str:
    """A refused setting as a red status line (the library's own message, HTML-escaped)."""
    return f"<span style='color:#d62728'>{html.escape(str(err))}</span>"


class SliderPanel:
    """What every slider panel shares (intro and scaling panels): sliders with CSS classes and
    one observer, a status line, ``show()``, and a redraw that turns the library's
    ValueError/TypeError into a message. A subclass builds ``sliders``, ``view``, ``status`` and
    ``widget``, implements ``_draw()`` and calls ``_wire()``."""

    sliders: dict
    view: LiveFigure
    status: W.HTML
    widget: W.Widget

    def _wire(self) -> None:
        for name, w in self.sliders.items():
            w.add_class(f"{name.replace('_', '-')}-slider")  # stable handles for browser tests
            w.observe(self._on_change, names="value")

    def _on_change(self, change) -> None:
        self.redraw()

    def show(self):
        """Display the panel; later changes redraw it where it is."""
        display(self.widget)
        self.view.refresh(force=True)
        return self

    def settings(self) -> dict:
        """The current control values by name."""
        return {name: w.value for name, w in self.sliders.items()}

    def redraw(self) -> bool:
        """Recompute and redraw from the sliders; False (and a message) if a setting was refused."""
        try:
            self._draw()
        except (ValueError, TypeError) as err:  # a setting the library rejects: say why, keep the plot
            self.status.value = error_html(err)
            return False
        self.view.refresh(force=True)  # a slider's last position must always be drawn: no throttling
        return True
