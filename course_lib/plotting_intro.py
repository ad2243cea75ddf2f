"""Plots of the first two lessons: losses and their gradients, fits under an outlier, and
optimizer paths on 2-D surfaces.

Each plot is a small class that draws once and keeps its artists; ``update(...)`` moves them
(no new figure per frame: 13-28 ms instead of 50-90 ms, see the course's platform notes), so
the slider panels of :mod:`course_lib.intro_widgets` can redraw in place. Each ``plot_*``
function wraps its class for a one-off figure; all take ``ax=None`` and return the Axes.
The numbers come from :mod:`course_lib.surfaces`; nothing is computed here that a test could
not check there.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm

from ._validation import check_choice, check_number, check_type
from .plotting import COLORS
from .surfaces import (FIT_LOSSES, LOSS_CURVES, PATH_OPTIMIZERS, OptimizerPath, Surface, fit_line, get_surface,
                       loss_curve)

__all__ = ["LOSS_STYLES", "OPTIMIZER_STYLES", "LossCurvePlot", "plot_loss_curve", "OutlierFitPlot",
           "plot_outlier_fits", "SurfacePlot", "plot_surface"]

# One colour per loss and per optimizer in both lessons: (label, colour, line style).
LOSS_STYLES = {
    "mse": ("MSE", "#1f77b4", "-"), "mae": ("MAE", "#ff7f0e", "-"), "huber": ("Huber", "#2ca02c", "-"),
    "bce": ("BCE / logistic", "#9467bd", "-"), "cross_entropy": ("2-class cross-entropy", "#9467bd", ":"),
    "hinge": ("hinge", "#8c564b", "-"), "zero_one": ("0-1 (errors)", "#7f7f7f", "--"),
}
OPTIMIZER_STYLES = {"gd": ("GD", "#1f77b4"), "momentum": ("momentum", "#ff7f0e"), "adam": ("Adam", "#2ca02c")}
_KINDS = {"regression": ("mse", "mae", "huber"), "classification": ("bce", "hinge", "zero_one")}


def _new_axes(ncols: int = 1, figsize=(7, 3.5)):
    _, axes = plt.subplots(1, ncols, figsize=figsize, layout="constrained")
    return axes


# ---------------------------------------------------------------------------------------------
# Loss and gradient of one prediction
# ---------------------------------------------------------------------------------------------

class LossCurvePlot:
    """Each loss (left) and its gradient (right) against one prediction or margin, with a
    marker at the current value; ``update(x=..., delta=...)`` moves the markers (and redraws
    Huber's curve when ``delta`` changes).

    Args:
        ax (Axes or None): the loss panel; None makes a figure with both panels.
        grad_ax (Axes or None): the gradient panel; None with a given ``ax`` draws no gradients.
        kind (str): ``"regression"`` (MSE, MAE, Huber against the prediction ``y_hat``, target
            ``y``) or ``"classification"`` (BCE, hinge, 0-1 against the margin). Default: ``"regression"``.
        losses (sequence or None): which of :data:`~course_lib.surfaces.LOSS_CURVES` to draw;
            None for the kind's three.
        x (float): where the marker starts. delta (float): Huber's threshold. y (float): the target.
        x_range (pair): the horizontal axis. Default: ``(-3, 3)``.

    Attributes:
        values (dict): loss name -> ``(value, gradient)`` at the marker, as floats.
    """

    def __init__(self, ax: Axes | None = None, grad_ax: Axes | None = None, *, kind: str = "regression",
                 losses=None, x: float = 1.5, delta: float = 1.0, y: float = 0.0, x_range=(-3.0, 3.0)):
        where = "LossCurvePlot"
        check_choice("kind", kind, _KINDS, where=where)
        losses = _KINDS[kind] if losses is None else tuple(losses)
        for name in losses:
            check_choice("losses", name, LOSS_CURVES, where=where)
        if ax is None:
            ax, grad_ax = _new_axes(2, figsize=(9, 3.5))
        check_type("ax", ax, Axes, where=where, expected="matplotlib Axes or None")
        if grad_ax is not None:
            check_type("grad_ax", grad_ax, Axes, where=where, expected="matplotlib Axes or None")
        self.ax, self.grad_ax, self.kind, self.losses = ax, grad_ax, kind, losses
        self.y = check_number("y", y, where=where)
        lo, hi = (check_number(f"x_range[{i}]", v, where=where) for i, v in enumerate(x_range))
        # An even count keeps 0 off the grid: at exactly 0 autograd returns one subgradient of a
        # kink (MAE's 0, and a spurious 0 for BCE's stable formula), drawn as a spike.
        self.grid = np.linspace(lo, hi, 400)
        self.x, self.delta = None, None
        self.curves, self.grad_curves, self.markers, self.grad_markers = {}, {}, {}, {}
        for name in losses:
            label, color, ls = LOSS_STYLES[name]
            self.curves[name] = ax.plot([], [], color=color, ls=ls, lw=2, label=label)[0]
            self.markers[name] = ax.plot([], [], "o", color=color, ms=7, mec="white")[0]
            if grad_ax is not None:
                self.grad_curves[name] = grad_ax.plot([], [], color=color, ls=ls, lw=2, label=label)[0]
                self.grad_markers[name] = grad_ax.plot([], [], "o", color=color, ms=7, mec="white")[0]
        self.vlines = [a.axvline(0.0, color="black", lw=0.8, alpha=0.5) for a in (ax, grad_ax) if a is not None]
        what = f"prediction ŷ (target y = {self.y:g})" if kind == "regression" else "margin m = label × score"
        ax.set(xlabel=what, ylabel="loss", xlim=(lo, hi), title="loss")
        ax.legend(fontsize="small", loc="upper center")
        if grad_ax is not None:
            grad_ax.axhline(0.0, color="black", lw=0.6)
            grad_ax.set(xlabel=what, ylabel="d loss / d " + ("ŷ" if kind == "regression" else "m"),
                        xlim=(lo, hi), title="gradient")
        self.values: dict[str, tuple[float, float]] = {}
        self.update(x=x, delta=delta)

    def update(self, x: float | None = None, delta: float | None = None) -> None:
        """Move the markers to ``x``; redraw the curves that depend on ``delta`` if it changed."""
        x = self.x if x is None else check_number("x", x, where="LossCurvePlot.update")
        delta = self.delta if delta is None else check_number("delta", delta, where="LossCurvePlot.update",
                                                              low=0.0, low_open=True)
        redraw = self.delta is None or delta != self.delta
        self.x, self.delta = x, delta
        for name in self.losses:
            if redraw and (name == "huber" or not self.curves[name].get_xdata().size):
                values, grads = loss_curve(name, self.grid, y=self.y, delta=delta)
                self.curves[name].set_data(self.grid, values.numpy())
                if self.grad_ax is not None:
                    self.grad_curves[name].set_data(self.grid, grads.numpy())
            value, grad = (float(t[0]) for t in loss_curve(name, x, y=self.y, delta=delta))
            self.values[name] = (value, grad)
            self.markers[name].set_data([x], [value])
            if self.grad_ax is not None:
                self.grad_markers[name].set_data([x], [grad])
        for line in self.vlines:
            line.set_xdata([x, x])
        if redraw:
            for a in (self.ax, self.grad_ax):
                if a is not None:
                    a.relim()
                    a.autoscale_view(scalex=False)


def plot_loss_curve(kind: str = "regression", x: float = 1.5, *, delta: float = 1.0, losses=None,
                    ax: Axes | None = None, grad_ax: Axes | None = None) -> Axes:
    """Draw losses and their gradients against one prediction (or margin), marker at ``x``.

    Args:
        kind (str): ``"regression"`` or ``"classification"``. Default: ``"regression"``.
        x (float): the marked prediction or margin. Default: ``1.5``.
        delta (float): Huber's threshold. Default: ``1.0``.
        losses (sequence or None): which losses; None for the kind's three.
        ax, grad_ax (Axes or None): see :class:`LossCurvePlot`.

    Returns:
        Axes: the loss panel.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> ax = plot_loss_curve("regression", x=2.0)
        >>> [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")]
        ['MSE', 'MAE', 'Huber']
    """
    return LossCurvePlot(ax, grad_ax, kind=kind, losses=losses, x=x, delta=delta).ax


# ---------------------------------------------------------------------------------------------
# One outlier, three fits
# ---------------------------------------------------------------------------------------------

class OutlierFitPlot:
    """Data with one outlier and the line (or constant) fitted under each loss, kept as
    artists so ``update(x, y, fits)`` can move them.

    Args:
        ax (Axes or None): where to draw; None makes a new figure.
        losses (sequence): which fits to draw, from ``("mse", "mae", "huber")``. Default: all three.
        ylim (pair or None): fixed y-limits (a slider panel fixes them, so the eye sees the
            fits move, not the axes); None rescales to the data at each update.
    """

    def __init__(self, ax: Axes | None = None, *, losses=FIT_LOSSES, ylim=None):
        if ax is None:
            ax = _new_axes()
        check_type("ax", ax, Axes, where="OutlierFitPlot", expected="matplotlib Axes or None")
        for name in losses:
            check_choice("losses", name, FIT_LOSSES, where="OutlierFitPlot")
        self.ax, self.losses, self.ylim = ax, tuple(losses), ylim
        self.points = ax.plot([], [], "o", color="#333333", ms=6, label="data")[0]
        self.outlier = ax.plot([], [], "o", color=COLORS["diverged"], ms=10, mec="black", label="outlier")[0]
        self.lines = {name: ax.plot([], [], color=LOSS_STYLES[name][1], lw=2.2, label=LOSS_STYLES[name][0])[0]
                      for name in self.losses}
        ax.set(xlabel="x", ylabel="y")

    def update(self, x, y, fits: dict) -> None:
        """Draw data ``(x, y)`` (the last point is the outlier) and ``fits``: loss -> ``(w, b)``."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        self.points.set_data(x[:-1], y[:-1])
        self.outlier.set_data(x[-1:], y[-1:])
        xs = np.array([x.min() - 0.5, x.max() + 0.5])
        for name, line in self.lines.items():
            w, b = fits[name]
            line.set_data(xs, w * xs + b)
            line.set_label(f"{LOSS_STYLES[name][0]}: y = {_line_text(w, b)}")
        self.ax.set_xlim(*xs)
        if self.ylim is None:
            lo, hi = float(y.min()), float(y.max())
            pad = 0.1 * max(hi - lo, 1.0)
            self.ax.set_ylim(lo - pad, hi + pad)
        else:
            self.ax.set_ylim(*self.ylim)
        self.ax.legend(fontsize="small", loc="upper left")


def _line_text(w: float, b: float) -> str:
    """``0.50 x + 0.89``, ``1.28 x - 1.17``, or ``1.88`` for a constant."""
    return f"{w:.2f} x {'-' if b < 0 else '+'} {abs(b):.2f}" if w else f"{b:.2f}"


def plot_outlier_fits(x, y, *, losses=FIT_LOSSES, delta: float = 1.0, slope: bool = True,
                      ax: Axes | None = None) -> Axes:
    """Fit a line (or a constant) under each loss and draw the fits over the data.

    Args:
        x, y (Tensor): data ``(N,)``, the outlier last (as :func:`~course_lib.surfaces.make_outlier_data` makes it).
        losses (sequence): from ``("mse", "mae", "huber")``. Default: all three.
        delta (float): Huber's threshold. Default: ``1.0``.
        slope (bool): fit lines; False fits constants. Default: True.
        ax (Axes or None): where to draw; None makes a new figure.

    Returns:
        Axes.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from course_lib.surfaces import make_outlier_data
        >>> ax = plot_outlier_fits(*make_outlier_data(outlier_y=15.0))
        >>> len(ax.get_lines())   # data, outlier, three fits
        5
    """
    plot = OutlierFitPlot(ax, losses=losses)
    plot.update(x, y, {name: fit_line(x, y, name, delta=delta, slope=slope) for name in plot.losses})
    return plot.ax


# ---------------------------------------------------------------------------------------------
# Optimizer paths on a 2-D surface
# ---------------------------------------------------------------------------------------------

class SurfacePlot:
    """Contours of a 2-D surface with optimizer paths on it (left) and the loss above the
    minimum against the step (right, log scale). ``update(paths)`` moves the paths; the
    previous paths stay behind, faded ("ghosts"), so a slider change can be compared with the
    setting before it. A path that diverged ends in a red cross, labelled with its step. A gold
    star marks each minimum (the global one and any local one), a black square the start.

    Args:
        ax (Axes or None): the contour panel; None makes a figure with both panels.
        loss_ax (Axes or None): the loss panel; None with a given ``ax`` draws no loss panel.
        surface (str or Surface): what to draw. Default: ``"quadratic"``.
        ghosts (bool): keep the previous paths, faded. Default: True.
    """

    def __init__(self, ax: Axes | None = None, loss_ax: Axes | None = None, *,
                 surface: str | Surface = "quadratic", ghosts: bool = True):
        where = "SurfacePlot"
        if ax is None:
            ax, loss_ax = _new_axes(2, figsize=(10, 4))
        check_type("ax", ax, Axes, where=where, expected="matplotlib Axes or None")
        if loss_ax is not None:
            check_type("loss_ax", loss_ax, Axes, where=where, expected="matplotlib Axes or None")
        self.ax, self.loss_ax, self.ghosts = ax, loss_ax, check_type("ghosts", ghosts, bool, where=where)
        self.surface: Surface | None = None
        self._contours = []
        self.paths, self.ends, self.ghost_paths, self.loss_lines, self.loss_ends = {}, {}, {}, {}, {}
        for name, (label, color) in OPTIMIZER_STYLES.items():
            self.ghost_paths[name] = ax.plot([], [], color=color, lw=1.2, alpha=0.25, zorder=3)[0]
            self.paths[name] = ax.plot([], [], "-o", color=color, lw=1.8, ms=2.5, label=label, zorder=4)[0]
            self.ends[name] = ax.plot([], [], "X", color=COLORS["diverged"], ms=12, mec="white", zorder=6)[0]
            if loss_ax is not None:
                self.loss_lines[name] = loss_ax.plot([], [], color=color, lw=1.8, label=label)[0]
                self.loss_ends[name] = loss_ax.plot([], [], "X", color=COLORS["diverged"], ms=10)[0]
        self.minima = ax.plot([], [], "*", color="gold", mec="black", ms=15, zorder=5, label="minimum")[0]
        self.start = ax.plot([], [], "s", color="black", ms=6, zorder=5, label="start")[0]
        self.notes = []
        if loss_ax is not None:
            loss_ax.set(xlabel="step", ylabel="loss above the minimum", yscale="log", title="loss")
        self.set_surface(surface)

    def set_surface(self, surface: str | Surface) -> None:
        """Draw a new surface's contours (the one costly redraw: only on a surface change)."""
        surface = get_surface(check_type("surface", surface, (str, Surface), where="SurfacePlot.set_surface",
                                         expected="str or Surface"))
        for c in self._contours:
            c.remove()
        X, Y, Z = (t.numpy() for t in surface.grid(161))
        gap = np.maximum(Z - surface.min_value, 0.0)
        # Losses span decades (Rosenbrock: 0 to thousands), so the levels are spaced on a log
        # scale: rings close to the minimum stay visible next to the steep walls.
        hi = float(gap.max())
        levels = np.geomspace(max(hi * 1e-5, 1e-8), hi, 16)
        self._contours = [
            self.ax.contourf(X, Y, gap + 1e-12, levels=levels, norm=LogNorm(), cmap="Greys", alpha=0.18,
                             extend="min", zorder=1),
            self.ax.contour(X, Y, gap + 1e-12, levels=levels, norm=LogNorm(), colors="grey", linewidths=0.5,
                            zorder=2),
        ]
        self.minima.set_data([m[0] for m in surface.minima], [m[1] for m in surface.minima])
        self.start.set_data([surface.start[0]], [surface.start[1]])
        self.ax.set(xlim=surface.xlim, ylim=surface.ylim, aspect="equal", xlabel="x", ylabel="y",
                    title=repr(surface))
        self.ax.title.set_fontsize("medium")
        # Paths on the old surface mean nothing on the new one: no ghosts across a change.
        for line in list(self.ghost_paths.values()) + list(self.paths.values()):
            line.set_data([], [])
        self.surface = surface

    def update(self, paths: dict[str, OptimizerPath]) -> None:
        """Draw ``paths`` (optimizer name -> :class:`~course_lib.surfaces.OptimizerPath`);
        optimizers missing from ``paths`` are cleared. The paths shown before become ghosts."""
        for note in self.notes:
            note.remove()
        self.notes = []
        (x0, x1), (y0, y1) = self.surface.xlim, self.surface.ylim
        top = 0.0
        for name in OPTIMIZER_STYLES:
            path = paths.get(name)
            line = self.paths[name]
            if self.ghosts:
                self.ghost_paths[name].set_data(line.get_xdata(), line.get_ydata())
            if path is None:
                line.set_data([], [])
                self.ends[name].set_data([], [])
                if self.loss_ax is not None:
                    self.loss_lines[name].set_data([], [])
                    self.loss_ends[name].set_data([], [])
                continue
            xy = path.xy.numpy()
            line.set_data(xy[:, 0], xy[:, 1])
            line.set_markersize(2.5 if len(xy) <= 200 else 0)  # dots show the step size; too many hide it
            steps = np.arange(len(xy))
            # Gaps below 1e-12 are rounding noise: flatten them so the log axis stays readable.
            gaps = np.maximum(path.gaps.numpy(), 1e-12)
            if path.diverged:
                # The last point may be far outside the window: mark where it left, on the edge,
                # and say so in a corner where the note cannot leave the picture.
                ex, ey = float(np.clip(xy[-1, 0], x0, x1)), float(np.clip(xy[-1, 1], y0, y1))
                self.ends[name].set_data([ex], [ey])
                note = f"{OPTIMIZER_STYLES[name][0]} diverged at step {path.stop_step}"
                self.notes.append(self.ax.text(
                    0.02, 0.03 + 0.08 * len(self.notes), note, transform=self.ax.transAxes, fontsize="small",
                    color=COLORS["diverged"], zorder=7,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.5}))
            else:
                self.ends[name].set_data([], [])
            if self.loss_ax is not None:
                self.loss_lines[name].set_data(steps, gaps)
                last = slice(-1, None) if path.diverged else slice(0, 0)  # a red cross where it blew up
                self.loss_ends[name].set_data(steps[last], gaps[last])
                top = max(top, len(xy) - 1)
        if self.loss_ax is None:  # else the loss panel carries the legend: the contours stay uncovered
            shown = [ln for ln in self.paths.values() if len(ln.get_xdata())]
            self.ax.legend(handles=shown + [self.minima, self.start], fontsize="small", loc="best")
        if self.loss_ax is not None:
            self.loss_ax.relim()
            self.loss_ax.autoscale_view()
            self.loss_ax.set_xlim(0, max(top, 1))
            shown = [ln for ln in self.loss_lines.values() if len(ln.get_xdata())]
            if shown:
                self.loss_ax.legend(handles=shown, fontsize="small", loc="upper right")


def plot_surface(surface: str | Surface = "quadratic", paths=None, *, ax: Axes | None = None,
                 loss_ax: Axes | None = None) -> Axes:
    """Draw a surface's contours with optimizer paths on it.

    Args:
        surface (str or Surface): e.g. ``"rosenbrock"``. Default: ``"quadratic"``.
        paths (dict, list or None): optimizer name -> ``OptimizerPath``, or a list of paths
            (keyed by their ``optimizer``), or None for the bare surface.
        ax (Axes or None): the contour panel; None makes a new figure.
        loss_ax (Axes or None): a panel for the loss against the step; None draws none.

    Returns:
        Axes: the contour panel.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from course_lib.surfaces import optimizer_path
        >>> ax = plot_surface("quadratic", [optimizer_path("quadratic", optimizer="gd", lr=0.1, num_steps=30)])
        >>> [ln.get_label() for ln in ax.get_legend().get_lines()]
        ['GD', 'minimum', 'start']
    """
    if ax is None:  # one panel, with its legend; pass loss_ax for the loss panel too
        ax = _new_axes(figsize=(5.5, 4))
    plot = SurfacePlot(ax, loss_ax, surface=surface, ghosts=False)
    if paths is not None:
        if isinstance(paths, OptimizerPath):
            paths = [paths]
        if isinstance(paths, (list, tuple)):
            paths = {p.optimizer: p for p in paths}
        check_type("paths", paths, dict, where="plot_surface", expected="dict, list of OptimizerPath or None")
        for name in paths:
            check_choice("paths", name, PATH_OPTIMIZERS, where="plot_surface")
        plot.update(paths)
    return plot.ax
