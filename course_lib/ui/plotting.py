"""The course's look, and loss curves: one theme, one palette, and the plot every lesson uses.

Every function takes ``ax=None`` and returns the Axes, so it composes into subplots and a test
can count the lines it drew. :class:`LossCurvesPlot` keeps its artists and moves them, so the
same code draws a finished run and a run that is still training."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.text import Text
from scipy.signal import lfilter

from .._validation import check_number, check_type
from ..curves import ema
from .theme import set_course_theme  # the theme lives in ui.theme; re-exported for old imports

__all__ = ["COLORS", "set_course_theme", "plot_loss_curves", "LossCurvesPlot", "nice_ceil"]


# One palette for the whole course: train is always blue, validation always orange, so a
# student never has to read the legend twice.
COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "baseline": "#7f7f7f", "floor": "#2ca02c",
          "event": "#9467bd", "diverged": "#d62728"}


def finite_xy(xs, ys):
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    keep = np.isfinite(ys)
    return xs[keep], ys[keep]


def plot_loss_curves(
    history,
    ax: Axes | None = None,
    *,
    log_y: bool = False,
    smooth: float = 0.0,
    baseline: float | None = None,
    floor: float | None = None,
    label: str | None = None,
    show_val: bool = True,
    show_events: bool = True,
    alpha: float = 1.0,
) -> Axes:
    """Draw the training (and validation) loss of a run, with its events.

    Args:
        history (History): a run from ``course_lib.train.fit``.
        ax (Axes or None): where to draw; None makes a new figure.
        log_y (bool): logarithmic loss axis (loss curves span decades). Default False.
        smooth (float): EMA beta in [0, 1) for the training loss; the raw curve stays, faint,
            behind the smoothed one. Default 0 (raw only).
        baseline (float or None): a horizontal line for a trivial predictor; defaults to
            ``history.baseline``.
        floor (float or None): a horizontal line for the irreducible loss, if known.
        label (str or None): prefix for the legend entries (for comparing runs).
        show_val (bool): draw the validation loss. Default True.
        show_events (bool): mark hyperparameter changes, early stopping and divergence.
        alpha (float): opacity, for faded "ghost" runs. Default 1.

    Returns:
        Axes.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from course_lib.train import History
        >>> h = History(step=[0, 1, 2], train_loss=[1.0, 0.5, 0.25], lr=[0.1] * 3)
        >>> len(plot_loss_curves(h).lines)
        1
    """
    where = "plot_loss_curves"
    check_number("smooth", smooth, where=where, low=0.0, high=1.0, high_open=True)
    check_number("alpha", alpha, where=where, low=0.0, high=1.0)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    check_type("ax", ax, Axes, where=where, expected="matplotlib Axes or None")
    prefix = f"{label}: " if label else ""
    steps, loss = finite_xy(history.step, history.train_loss)
    if smooth > 0:
        ax.plot(steps, loss, color=COLORS["train"], alpha=0.25 * alpha, lw=0.8)
        loss = ema(loss, beta=smooth)
    ax.plot(steps, loss, color=COLORS["train"], alpha=alpha, lw=1.5, label=f"{prefix}train")
    if show_val and len(history.val_loss):
        vs, vl = finite_xy(history.val_step, history.val_loss)
        ax.plot(vs, vl, color=COLORS["val"], alpha=alpha, lw=1.8, marker="o", ms=3, label=f"{prefix}validation")
    baseline = history.baseline if baseline is None else baseline
    if baseline is not None:
        ax.axhline(baseline, color=COLORS["baseline"], ls="--", lw=1, label="baseline (trivial predictor)")
    if floor is not None:
        ax.axhline(floor, color=COLORS["floor"], ls=":", lw=1.5, label="irreducible loss")
    if show_events:
        _draw_events(ax, history)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    # Steps are whole numbers: a run that diverged at step 1 showed ticks 0.0, 0.2, ... 1.0. Otherwise
    # matplotlib's default ticks (AutoLocator's bins and steps; plain integer=True packs in 10 bins).
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))
    ax.set_ylabel("loss (log scale)" if log_y else "loss")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small")
    return ax


def _draw_events(ax: Axes, history) -> None:
    """Hyperparameter changes as thin vertical lines; divergence as a red cross at the last
    finite loss with a label, so a blown-up run reads as an event, not a broken chart."""
    finite = [(s, v) for s, v in zip(history.step, history.train_loss) if math.isfinite(v)]
    for ev in history.events:
        if ev["kind"] in ("diverged", "exploded"):
            s, v = finite[-1] if finite else (ev["step"], 1.0)
            ax.plot([s], [v], marker="X", ms=12, color=COLORS["diverged"], ls="none", label="diverged")
            # Below the cross, towards the middle of the run: inside the axes, clear of the title.
            left = not finite or s <= (finite[0][0] + finite[-1][0]) / 2
            ax.annotate(f"diverged at step {ev['step']}", (s, v), textcoords="offset points",
                        xytext=(10, -12) if left else (-10, -12), ha="left" if left else "right", va="top",
                        color=COLORS["diverged"], fontsize="small")
        else:
            ax.axvline(ev["step"], color=COLORS["event"], lw=0.8, alpha=0.6)
            ax.annotate(ev["text"], (ev["step"], 1.0), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize="x-small", color=COLORS["event"])


def nice_ceil(x: float) -> float:
    """The smallest of 1, 2, 5 (x 10^k) that is >= ``x`` > 0: three steps a decade, so the run in
    progress fills 40-100% of the width. (Six steps a decade kept it above 60%, but each step
    redraws the axes, 30-50 ms: in a run's first seconds that was a redraw a second, which the
    live plot's share of the time could not pay for at 10 frames a second, measured.)"""
    e = 10 ** math.floor(math.log10(x))
    return next(m * e for m in (1, 2, 5, 10) if m * e >= x * (1 - 1e-12))


def _bucket(n: int, buckets: int) -> int:
    """Points per bucket for ``n`` points in at most ``buckets`` buckets: a power of two, so that a
    growing run keeps the same buckets until it doubles. Each frame then changes only the last
    bucket, and the frame's SVG text is mostly kept from the last frame (live_svg._PathText); with
    ``ceil(n / buckets)`` every bucket moved each time the size grew by one, every few frames."""
    return 1 << max(0, math.ceil(math.log2(max(n, 1) / buckets)))


def _envelope(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, low, high)``: the min and max of ``y`` over at most ``buckets`` runs of equal length
    (a power of two, see :func:`_bucket`; the last may be shorter), at each run's first ``x``; the
    band they bound keeps every spike."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    size = _bucket(len(y), buckets)
    pad = (-len(y)) % size
    rows = np.concatenate([y, np.full(pad, np.nan)]).reshape(-1, size)    # (buckets, size)
    xs = x[::size].copy()
    xs[-1] = x[-1]                        # the band reaches the last step
    return xs, np.nanmin(rows, axis=1), np.nanmax(rows, axis=1)


def _decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` points: per bucket keep the min and the max, so a spike
    (the first sign of divergence) never disappears from a long curve."""
    n = len(x)
    if n <= max_points:
        return x, y
    size = _bucket(n, max_points // 2)             # points per bucket: half to all of max_points
    m = n // size * size                           # whole buckets; the ragged tail is kept as is
    rows = y[:m].reshape(-1, size)                 # (buckets, size)
    base = np.arange(0, m, size)
    lo, hi = base + rows.argmin(axis=1), base + rows.argmax(axis=1)
    # Each bucket's two indices in step order, then the tail: already sorted, so duplicates (a
    # bucket whose min and max are one point) sit side by side (np.unique would sort and hash).
    pair = np.sort(np.stack([lo, hi], axis=1), axis=1).ravel()                   # (2 * buckets,)
    idx = np.concatenate([pair, np.arange(m, n), [n - 1]])      # the last point always
    idx = idx[np.concatenate([[True], idx[1:] != idx[:-1]])]
    return x[idx], y[idx]


class _GrowingCurve:
    """The finite (step, loss) points of a run that is still growing, and their EMA, extended by
    the new points at each frame: O(new points) per frame instead of O(run). (Converting and
    smoothing the whole run again cost 5 ms a frame at 30,000 steps, more than the rest of a
    live frame together.) Equal to ``finite_xy`` and :func:`course_lib.curves.ema` of the whole.

    Why buffers with spare room (their size doubles when full) and kept reductions: a lab left
    playing reaches 150,000 steps, and copying the whole run into new arrays, finding its y-range
    and its buckets' minima and maxima again each frame cost about 1 ms of a 3 ms frame there
    (measured), time the training thread gives up 12 times a second. The reductions of whole
    buckets never change (a bucket holds a power of two of points, see ``_bucket``), so only the
    buckets completed since the last frame are reduced. ``envelope`` and ``decimated`` equal
    :func:`_envelope` and :func:`_decimate` of the whole curve.
    """

    def __init__(self, xs: str = "step", ys: str = "train_loss"):
        self.xs, self.ys = xs, ys                                 # the History fields it reads
        self._reset(None, 0.0)

    def _reset(self, history, beta: float) -> None:
        self.history, self.beta, self.n = history, beta, 0
        self._buf = np.empty((4, 0))                              # (4, capacity): x, y, s, smoothed
        self._count = 0                                           # finite points so far
        self.ymin, self.ymax = math.inf, -math.inf                # of y, over all finite points
        self._reduced: dict = {}                                  # kind -> (size, reductions of whole buckets)

    # Views of the filled part of the buffers: (n_finite,) each.
    x = property(lambda self: self._buf[0, :self._count])
    y = property(lambda self: self._buf[1, :self._count])
    s = property(lambda self: self._buf[2, :self._count])
    smoothed = property(lambda self: self._buf[3, :self._count])

    def update(self, history, beta: float) -> None:
        xs, ys = getattr(history, self.xs), getattr(history, self.ys)
        n = min(len(xs), len(ys))
        if history is not self.history or beta != self.beta or n < self.n:
            self._reset(history, beta)                            # a new run, or new smoothing
        if n == self.n:
            return
        x, y = finite_xy(xs[self.n:n], ys[self.n:n])
        self.n = n
        if not len(y):
            return
        c, k = self._count, len(y)
        if c + k > self._buf.shape[1]:                            # full: twice the room (old views stay valid)
            buf = np.empty((4, max(2 * (c + k), 1024)))
            buf[:, :c] = self._buf[:, :c]
            self._buf = buf
        self._buf[0, c:c + k], self._buf[1, c:c + k] = x, y
        if beta > 0:
            # s_t = beta * s_{t-1} + (1 - beta) * y_t, continued from the last value (lfilter's
            # state), then divided by 1 - beta^t as ema() does (t counts finite points).
            zi = [beta * self._buf[2, c - 1]] if c else [0.0]
            s, _ = lfilter([1 - beta], [1, -beta], y, zi=zi)
            self._buf[2, c:c + k] = s
            self._buf[3, c:c + k] = s / (1 - beta ** np.arange(c + 1, c + k + 1))
        self._count = c + k
        self.ymin, self.ymax = min(self.ymin, float(y.min())), max(self.ymax, float(y.max()))

    def _whole_buckets(self, kind: str, size: int, values: np.ndarray, reduce) -> np.ndarray:
        """``reduce(rows, first)`` of every whole bucket of ``size`` points of ``values`` (rows:
        (buckets, size), ``first``: the first row's bucket number), kept from frame to frame:
        only the buckets completed since the last call are reduced."""
        size_done = self._reduced.get(kind)
        done = size_done[1] if size_done is not None and size_done[0] == size else reduce(values[:0].reshape(0, size), 0)
        whole = len(values) // size
        if whole > len(done):
            done = np.concatenate([done, reduce(values[len(done) * size:whole * size].reshape(-1, size), len(done))])
        self._reduced[kind] = (size, done)
        return done[:whole]

    def envelope(self, buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`_envelope` of (x, y)."""
        x, y = self.x, self.y
        size = _bucket(len(y), buckets)
        lohi = self._whole_buckets("envelope", size, y, lambda rows, _: np.stack([rows.min(1), rows.max(1)], 1))
        tail = y[len(lohi) * size:]
        if len(tail):
            lohi = np.concatenate([lohi, [[tail.min(), tail.max()]]])
        xs = x[::size].copy()
        xs[-1] = x[-1]                        # the band reaches the last step
        return xs, lohi[:, 0], lohi[:, 1]

    def decimated(self, smoothed: bool, max_points: int) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_decimate` of (x, smoothed) or (x, y)."""
        x, y = self.x, (self.smoothed if smoothed else self.y)
        n = len(x)
        if n <= max_points:
            return x, y
        size = _bucket(n, max_points // 2)

        def pairs(rows, first):               # each bucket's argmin and argmax, in step order
            base = np.arange(first, first + len(rows)) * size
            lo, hi = base + rows.argmin(axis=1), base + rows.argmax(axis=1)
            return np.sort(np.stack([lo, hi], axis=1), axis=1)

        pair = self._whole_buckets("smoothed" if smoothed else "y", size, y, pairs).ravel()
        m = len(pair) // 2 * size
        idx = np.concatenate([pair, np.arange(m, n), [n - 1]])
        idx = idx[np.concatenate([[True], idx[1:] != idx[:-1]])]
        return x[idx], y[idx]


class LossCurvesPlot:
    """Training and validation loss of a run that is still going, drawn into one Axes whose
    artists are kept and moved (``update(history)``), plus faded *ghost* runs for comparison.

    Args:
        ax (Axes or None): where to draw; None makes a new figure.
        log_y (bool): logarithmic loss axis. Default True.
        smooth (float): EMA beta in [0, 1) for the training curve (raw stays faint). Default 0.9.
        baseline, floor (float or None): horizontal reference lines (trivial predictor; irreducible loss).
        max_points (int): curves longer than this are decimated (min/max per bucket) so a frame
            costs the same at step 500 and at step 50,000. Default 1000: 500-1,000 points across an
            axes about 650 px wide, 1-3 px a bucket, which the eye cannot tell from every point;
            each point is work for the browser in every live frame (with 1,500, Chromium's renderer
            used 0.28 of a core at 12 frames a second).
        max_ghosts (int): earlier runs kept on the plot. Default 3.
        run_length (int or None): a run's last step, when known (a lab's ``max_steps``): the step
            axis then starts at a tenth of it and ends there (see ``_autoscale``). Default None.
    """

    def __init__(self, ax: Axes | None = None, *, log_y: bool = True, smooth: float = 0.9,
                 baseline: float | None = None, floor: float | None = None, max_points: int = 1000,
                 max_ghosts: int = 3, run_length: int | None = None):
        where = "LossCurvesPlot"
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
        check_type("ax", ax, Axes, where=where, expected="matplotlib Axes or None")
        check_number("smooth", smooth, where=where, low=0.0, high=1.0, high_open=True)
        self.ax, self.smooth, self.max_points, self.max_ghosts = ax, smooth, max_points, max_ghosts
        if run_length is not None:
            check_number("run_length", run_length, where=where, low=1, integer=True)
        self.run_length = run_length
        self._curve = _GrowingCurve()      # the run's points and their EMA, extended each frame
        self._val = _GrowingCurve("val_step", "val_loss")   # its evaluations (a list of 2,400 at step
        # 60,000: converting it again each frame was a tenth of the frame)
        self.raw = ax.plot([], [], color=COLORS["train"], alpha=0.25, lw=0.8)[0]
        # A long raw curve is drawn as its band (min and max per bucket of steps, about one per
        # pixel column): the same picture, spikes included, at a 30th of the cost of a faint
        # zigzag line of 1,500 points (0.35 ms instead of 10 ms a frame, measured).
        # A plain polygon, its vertices set each frame (fill_between's set_data goes through masked
        # arrays and unit handling: 0.7 ms of a 4 ms frame). It starts as the flat polygon that
        # fill_between([0, 1], 1, 1) made, so the empty axes' first limits (and the layout computed
        # with their tick labels) stay as they were.
        self.raw_band = ax.add_collection(PolyCollection([[(0, 1), (1, 1), (1, 1), (0, 1)]], color=COLORS["train"],
                                                         alpha=0.25, lw=0))
        self.raw_band.set_visible(False)
        self.train = ax.plot([], [], color=COLORS["train"], lw=1.6, label="train")[0]
        self.val = ax.plot([], [], color=COLORS["val"], lw=1.8, marker="o", ms=3, label="validation")[0]
        self.diverged = ax.plot([], [], ls="none", marker="X", ms=13, color=COLORS["diverged"], label="diverged")[0]
        self.diverged_text = ax.annotate("", (0, 0), textcoords="offset points", xytext=(-10, 8), ha="right",
                                         color=COLORS["diverged"], fontsize="small")
        self.refs = []
        if baseline is not None:
            self.refs.append(ax.axhline(baseline, color=COLORS["baseline"], ls="--", lw=1, label="baseline"))
        if floor is not None:
            self.refs.append(ax.axhline(floor, color=COLORS["floor"], ls=":", lw=1.5, label="irreducible loss"))
        self.ghosts: list[list] = []       # artists of each ghost run
        self._events: list = []            # vertical lines of the current run's change events
        self._event_marks: list = []       # (step, text) of those events
        self._event_labels: list = []      # their labels: one per group of nearby events
        self._n_events = 0
        self._ylim: tuple[float, float] | None = None
        self._legend_handles: list | None = None
        self._legend_box: tuple | None = None      # (key, left px, right px, bottom fraction), see _label_top
        ax.set_xlabel("step")
        # Before the first frame the step axis already spans what a run's first frames will show
        # (0-500 for a 3,000-step lab), not matplotlib's empty 0.0-1.0 (fractional steps).
        ax.set_xlim(0, self._x_limit(self._span()))
        self.set_log_y(log_y)

    def set_log_y(self, log_y: bool) -> None:
        self.ax.set_yscale("log" if log_y else "linear")
        if log_y:
            # Labels on every minor tick of a log axis are a third of a frame's cost (glyphs)
            # and clutter a live plot; the major ticks carry the scale.
            self.ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            # Minor ticks at 2 and 5 only: eight per decade were a quarter of the time to redraw
            # the axes (measured), which a live plot does each time its limits move.
            self.ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
        self.ax.set_ylabel("loss (log scale)" if log_y else "loss")

    def set_smooth(self, smooth: float) -> None:
        self.smooth = check_number("smooth", smooth, where="LossCurvesPlot.set_smooth", low=0.0, high=1.0,
                                   high_open=True)

    def clear_run(self) -> None:
        """Forget the current run's curves and event marks (before a new run starts)."""
        for line in (self.raw, self.train, self.val, self.diverged):
            line.set_data([], [])
        self.raw_band.set_visible(False)
        self.diverged_text.set_text("")
        for art in self._events + self._event_labels:
            art.remove()
        self._events, self._event_marks, self._event_labels, self._n_events = [], [], [], 0

    def update(self, history) -> None:
        """Move the curves to ``history`` (a ``History``, possibly still growing)."""
        self._curve.update(history, self.smooth)
        steps, loss = self._curve.x, self._curve.y
        dense = len(loss) > self.max_points // 2
        self.raw_band.set_visible(bool(self.smooth > 0 and dense))
        if self.smooth > 0 and len(loss):
            if dense:
                self.raw.set_data([], [])
                bx, low, high = self._curve.envelope(self.max_points // 2)
                # The band's outline: along the bucket minima, then back along the maxima.
                self.raw_band.set_verts([np.column_stack([np.concatenate([bx, bx[::-1]]),
                                                          np.concatenate([low, high[::-1]])])])
            else:
                self.raw.set_data(steps, loss)
            self.train.set_data(*self._curve.decimated(True, self.max_points))
        else:
            self.raw.set_data([], [])
            self.train.set_data(*self._curve.decimated(False, self.max_points))
        self._val.update(history, 0.0)
        vx, vy = self._val.x, self._val.y
        # Decimated like the training curve: one evaluation every 25 steps is 2,400 points at step
        # 60,000, more than the training curve sends (every point's text went to the page each frame).
        self.val.set_data(*_decimate(vx, vy, self.max_points // 2))
        # Markers only while they can be told apart: beyond ~60 points they merged into a thick
        # line and cost a live frame 4 ms (measured), more than the curves themselves.
        self.val.set_marker("o" if len(vx) <= 60 else "")
        self._draw_new_events(history, steps, loss)
        self._autoscale(steps, loss)
        self._label_events()

    def _draw_new_events(self, history, steps, loss) -> None:
        for ev in history.events[self._n_events:]:
            if ev["kind"] in ("diverged", "exploded"):
                s, v = (steps[-1], loss[-1]) if len(loss) else (ev["step"], 1.0)
                self.diverged.set_data([s], [v])
                self.diverged_text.set_text(f"diverged at step {ev['step']}")
                self.diverged_text.xy = (s, v)
            else:
                self._events.append(self.ax.axvline(ev["step"], color=COLORS["event"], lw=0.9, alpha=0.7))
                self._event_marks.append((ev["step"], ev["text"]))
        self._n_events = len(history.events)

    def _label_events(self) -> None:
        """One label per group of change lines closer than a label's height on screen: the
        group's first and last change ("lr 0.01 -> 0.05 (3 changes)"), never labels printed
        on top of each other. Recomputed each frame, as the x-axis grows."""
        if not self._event_marks and not self._event_labels:
            return
        x0, x1 = self.ax.get_xlim()
        px_per_step = self.ax.get_window_extent().width / max(x1 - x0, 1e-9)
        gap_px = 1.6 * self.ax.figure.dpi * 8 / 72          # about one x-small line of text
        groups: list[list] = []
        for step, text in self._event_marks:
            if groups and (step - groups[-1][0][0]) * px_per_step < gap_px:
                groups[-1].append((step, text))
            else:
                groups.append([(step, text)])
        wanted = []
        for g in groups:
            first, last = g[0][1], g[-1][1]
            if len(g) == 1:
                text = first
            else:
                name, _, old = first.partition(" ")
                same = all(t.split(" ")[0] == name for _, t in g)
                new = last.rpartition("-> ")[2]
                text = (f"{name} {old.partition(' ->')[0]} -> {new} ({len(g)} changes)" if same
                        else f"{len(g)} changes, last: {last}")
            top = self._label_top((g[0][0] - x0) * px_per_step, gap_px)
            if top < 0.98:                  # below the legend: shortened if it would leave the axes
                text = self._shorten(text, (top - 0.02) * self.ax.bbox.height)
            wanted.append((g[0][0], text, top))
        if wanted == [(a.xy[0], a.get_text(), a.xy[1]) for a in self._event_labels]:
            return                          # unchanged: no artists removed or added (cheaper, no races)
        for art in self._event_labels:
            art.remove()
        self._event_labels = [self.ax.annotate(
            text, (x, top), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
            fontsize="x-small", color=COLORS["event"], annotation_clip=True) for x, text, top in wanted]

    def _label_top(self, x_px: float, width_px: float) -> float:
        """Where a change label starts (axes fraction, its top): at the top of the axes, or just
        below the legend when the label (``width_px`` wide, its right edge ``x_px`` from the axes'
        left) would sit under it. A change made now is at the right edge, where the legend is,
        and the legend is opaque: the label of the change a learner just made was hidden."""
        legend = self.ax.get_legend()
        if legend is None:
            return 0.98
        key = (id(legend), tuple(self.ax.bbox.bounds))
        if self._legend_box is None or self._legend_box[0] != key:
            canvas = self.ax.figure.canvas
            renderer = canvas.get_renderer() if hasattr(canvas, "get_renderer") else None
            box = legend.get_window_extent(renderer)
            ax = self.ax.bbox
            self._legend_box = (key, box.x0 - ax.x0, box.x1 - ax.x0, (box.y0 - ax.y0) / max(ax.height, 1e-9))
        _, left, right, bottom = self._legend_box
        under = left - 2 <= x_px <= right + width_px
        return round(bottom - 0.02, 4) if under else 0.98

    def _shorten(self, text: str, room_px: float) -> str:
        """``text`` cut to fit ``room_px`` (ending with an ellipsis), in the labels' font."""
        fig = self.ax.figure
        renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
        probe = Text(0, 0, text, fontsize="x-small", figure=fig)     # its width is the rotated label's height
        length = probe.get_window_extent(renderer).width
        if length <= room_px:
            return text
        keep = max(4, int(len(text) * room_px / length) - 1)
        return text[:keep].rstrip() + "\u2026"

    MIN_SPAN = 50   # steps shown at least, so a new run's first steps do not fill the width

    def _span(self) -> float:
        """Steps the axis shows at least: a tenth of a known run length (at most 1,000), else MIN_SPAN."""
        return self.MIN_SPAN if self.run_length is None else max(self.MIN_SPAN, min(self.run_length / 10, 1000))

    def _x_limit(self, xmax: float) -> float:
        """The step axis' right end for a last step ``xmax``: the next 1-2-5 limit, never past the run's end."""
        xlim = nice_ceil(max(1, xmax))
        return xlim if self.run_length is None else min(xlim, self.run_length)

    def _autoscale(self, steps, loss) -> None:
        # steps, loss: the current run's finite points (self._curve's x and y).
        # The x-axis follows the current run; ghosts are clipped to it (a long earlier run must
        # not squeeze the run in progress to the left). Before a run starts, the ghosts set it.
        # With a known run length, the axis starts at a tenth of it (at most 1,000 steps) and stops
        # at its end (not at the next 1-2-5 limit: a 3,000-step run ended at 60% of an axis to
        # 5,000). Each new limit redraws the still picture (20-40 ms): 50, 100, 200, 500, 1000,
        # 2000, 5000 for a 3,000-step run; now 500, 1000, 2000, 3000.
        ghost_ends = [g[0].get_xdata()[-1] for g in self.ghosts if len(g[0].get_xdata())]
        span = self._span()
        if len(steps):
            xmax = max(float(steps[-1]), span)
        else:
            xmax = max(ghost_ends) if ghost_ends else span
        ys = []                             # the current run's range is kept by its curve (O(1) a frame)
        if len(loss):
            ys.append(np.array([self._curve.ymin, self._curve.ymax]))
        for g in self.ghosts:
            x, y = np.asarray(g[0].get_xdata(), dtype=float), np.asarray(g[0].get_ydata(), dtype=float)
            if len(y):
                ys.append(y[x <= xmax])
        ys.append(np.asarray(self.val.get_ydata(), dtype=float))
        ys = [y[np.isfinite(y)] for y in ys if len(y)]
        ys = np.concatenate(ys) if any(len(y) for y in ys) else np.array([])
        # Limits move in coarse steps (x: the next of 1, 2, 5 x 10^k;
        # y: whole decades on a log axis): between two steps, the ticks and labels stay where
        # they are and a live frame redraws only the curves (blitting, LiveFigure.set_moving).
        # (With quarter decades, a falling loss changed the limits between most frames: every
        # frame redrew the background, 25-35 ms instead of 3-6, and the time share then allowed
        # under 2 frames a second.)
        self._set_lim("x", (0, self._x_limit(xmax)))
        if len(ys):
            lo, hi = float(ys.min()), float(ys.max())
            if self.ax.get_yscale() == "log":
                lo, hi = max(lo, 1e-8) / 1.15, max(hi, 1e-8) * 1.15
                lo, hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
            else:
                pad = 0.05 * max(hi - lo, 1e-8)
                unit = 10 ** math.floor(math.log10(max(hi - lo, 1e-8))) / 4
                lo, hi = math.floor((lo - pad) / unit) * unit, math.ceil((hi + pad) / unit) * unit
            self._set_lim("y", (lo, hi))

    def _set_lim(self, axis: str, lim: tuple) -> None:
        """Set the axis' limits unless they already are ``lim`` (and fixed): between two steps of the
        coarse limits that is every frame, and set_xlim/set_ylim cost 0.17 ms each even then."""
        get, auto = (self.ax.get_xlim, self.ax.get_autoscalex_on) if axis == "x" else (self.ax.get_ylim,
                                                                                        self.ax.get_autoscaley_on)
        if auto() or tuple(map(float, get())) != tuple(map(float, lim)):
            (self.ax.set_xlim if axis == "x" else self.ax.set_ylim)(*lim)

    def moving(self) -> list:
        """The artists that change while a run trains (for blitting): the current run's curves,
        markers and change marks, and the legend drawn over them."""
        return [self.raw, self.raw_band, self.train, self.val, self.diverged, self.diverged_text, *self._events,
                *self._event_labels]

    def overlays(self) -> list:
        """Opaque artists over the curves (for blitting): the legend."""
        return [self.ax.get_legend()]

    def add_ghost(self, history, label: str) -> None:
        """Keep ``history`` on the plot, faded, labelled with its settings; the oldest ghost
        goes when there are more than ``max_ghosts``."""
        steps, loss = finite_xy(history.step, history.train_loss)
        if not len(loss):
            return
        y = ema(loss, beta=self.smooth) if self.smooth > 0 else loss
        arts = [self.ax.plot(*_decimate(steps, y, self.max_points), color="#555555", alpha=0.35, lw=1.2,
                             label=f"earlier: {label}")[0]]
        vs, vl = finite_xy(history.val_step, history.val_loss)
        if len(vl):
            arts.append(self.ax.plot(vs, vl, color=COLORS["val"], alpha=0.3, lw=1.0, ls="--")[0])
        self.ghosts.append(arts)
        while len(self.ghosts) > self.max_ghosts:
            for art in self.ghosts.pop(0):
                art.remove()

    def legend(self) -> None:
        handles = [ln for ln in self.ax.get_lines() if not ln.get_label().startswith("_") and len(ln.get_xdata())]
        handles += [r for r in self.refs]
        if handles == self._legend_handles and (self.ax.get_legend() is not None) == bool(handles):
            return                          # the same entries: keep the legend (a new one costs ms a frame)
        self._legend_handles = handles
        if not handles:                     # nothing to name yet: no empty legend box
            if self.ax.get_legend() is not None:
                self.ax.get_legend().remove()
            return
        # Opaque (framealpha 1): a live frame pastes the legend's saved pixels over the curves.
        self.ax.legend(handles=handles, loc="upper right", fontsize="x-small", framealpha=1.0)


def new_axes(ncols: int = 1, figsize=(7, 3.5)):
    _, axes = plt.subplots(1, ncols, figsize=figsize, layout="constrained")
    return axes
