"""Figures and slider panels of notebook 01: losses and their gradients against one prediction,
and line fits under an outlier (MSE, MAE, Huber).

Each plot is a small class that draws once and keeps its artists; ``update(...)`` moves them,
so the panels redraw in place. Each ``plot_*`` function wraps its class for a one-off figure;
all take ``ax=None`` and return the Axes. The numbers come from :mod:`course_lib.loss_shapes`.
Each panel follows :class:`course_lib.ui.panels.SliderPanel`: a ``sliders`` dict that a test or a
notebook drives from Python, a CSS class on every control for browser tests, and a ``status``
line where a setting the library refuses shows the library's message instead of a traceback."""

from __future__ import annotations

import ipywidgets as W
import numpy as np
from matplotlib.axes import Axes

from .._validation import check_choice, check_number, check_seed, check_type
from ..loss_shapes import FIT_LOSSES, LOSS_CURVES, fit_line, loss_curve, make_outlier_data
from .live import LiveFigure
from .panels import SliderPanel, controls_row, panel
from .plotting import COLORS, new_axes

__all__ = ["LOSS_STYLES", "LossCurvePlot", "plot_loss_curve", "OutlierFitPlot", "plot_outlier_fits", "LossExplorer",
           "OutlierExplorer"]


# One colour per loss and per optimizer in both lessons: (label, colour, line style).
LOSS_STYLES = {
    "mse": ("MSE", "#1f77b4", "-"), "mae": ("MAE", "#ff7f0e", "-"), "huber": ("Huber", "#2ca02c", "-"),
    "bce": ("BCE / logistic", "#9467bd", "-"), "cross_entropy": ("2-class cross-entropy", "#9467bd", ":"),
    "hinge": ("hinge", "#8c564b", "-"), "zero_one": ("0-1 (errors)", "#7f7f7f", "--"),
}


_KINDS = {"regression": ("mse", "mae", "huber"), "classification": ("bce", "hinge", "zero_one")}


class LossCurvePlot:
    """Each loss (left) and its gradient (right) against one prediction or margin, with a
    marker at the current value; ``update(x=..., delta=...)`` moves the markers (and redraws
    Huber's curve when ``delta`` changes).

    Args:
        ax (Axes or None): the loss panel; None makes a figure with both panels.
        grad_ax (Axes or None): the gradient panel; None with a given ``ax`` draws no gradients.
        kind (str): ``"regression"`` (MSE, MAE, Huber against the prediction ``y_hat``, target
            ``y``) or ``"classification"`` (BCE, hinge, 0-1 against the margin). Default: ``"regression"``.
        losses (sequence or None): which of :data:`~course_lib.loss_shapes.LOSS_CURVES` to draw;
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
            ax, grad_ax = new_axes(2, figsize=(9, 3.5))
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
            ax = new_axes()
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
        x, y (Tensor): data ``(N,)``, the outlier last (as :func:`~course_lib.loss_shapes.make_outlier_data` makes it).
        losses (sequence): from ``("mse", "mae", "huber")``. Default: all three.
        delta (float): Huber's threshold. Default: ``1.0``.
        slope (bool): fit lines; False fits constants. Default: True.
        ax (Axes or None): where to draw; None makes a new figure.

    Returns:
        Axes.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from course_lib.loss_shapes import make_outlier_data
        >>> ax = plot_outlier_fits(*make_outlier_data(outlier_y=15.0))
        >>> len(ax.get_lines())   # data, outlier, three fits
        5
    """
    plot = OutlierFitPlot(ax, losses=losses)
    plot.update(x, y, {name: fit_line(x, y, name, delta=delta, slope=slope) for name in plot.losses})
    return plot.ax


_STYLE = {"description_width": "110px"}


_WIDE = W.Layout(width="360px")


class LossExplorer(SliderPanel):
    """Move a prediction (regression) and a margin (classification); see each loss and its
    gradient there, on the curves and in a table.

    Top row: MSE, MAE, Huber against the prediction ``y_hat`` (target ``y``); bottom row: BCE,
    hinge and the 0-1 error count against the margin ``m = label * score``.

    Args:
        y (float): the regression target. Default: ``0.0``.
        prediction, margin, delta (float): where the sliders start. Defaults 1.5, -0.5, 1.0.

    Attributes:
        sliders (dict): ``"prediction"``, ``"delta"``, ``"margin"``. view (LiveFigure).
        regression, classification (LossCurvePlot): the two rows; their ``values`` hold
        ``(loss, gradient)`` at the markers. table (HTML): the same numbers. status (HTML).

    Example (in a notebook)::

        explorer = LossExplorer().show()
        explorer.sliders["prediction"].value = 2.5
    """

    def __init__(self, y: float = 0.0, prediction: float = 1.5, margin: float = -0.5, delta: float = 1.0,
                 min_interval: float = 0.0):
        where = "LossExplorer"
        y = check_number("y", y, where=where, low=-10, high=10)
        check_number("prediction", prediction, where=where, low=y - 3, high=y + 3)
        check_number("margin", margin, where=where, low=-3, high=3)
        check_number("delta", delta, where=where, low=0.1, high=3)
        self.view = LiveFigure(2, 2, figsize=(9, 6), min_interval=min_interval)
        axes = self.view.axes
        self.regression = LossCurvePlot(axes[0, 0], axes[0, 1], kind="regression", y=y, x=prediction, delta=delta,
                                        x_range=(y - 3, y + 3))
        self.classification = LossCurvePlot(axes[1, 0], axes[1, 1], kind="classification", x=margin)
        cont = dict(continuous_update=True, style=_STYLE, layout=_WIDE)
        self.sliders = {
            "prediction": W.FloatSlider(value=prediction, min=y - 3, max=y + 3, step=0.05,
                                        description="prediction ŷ", **cont),
            "delta": W.FloatSlider(value=delta, min=0.1, max=3.0, step=0.05, description="Huber δ", **cont),
            "margin": W.FloatSlider(value=margin, min=-3, max=3, step=0.05, description="margin m", **cont),
        }
        self.table = W.HTML()
        self.status = W.HTML()
        self._wire()
        self.widget = panel(controls_row(W.VBox(list(self.sliders.values()) + [self.status]), self.table),
                            self.view.widget)
        self.redraw()

    def _draw(self) -> None:
        s = self.settings()
        self.regression.update(x=s["prediction"], delta=s["delta"])
        self.classification.update(x=s["margin"])
        rows = []
        for plot, head in ((self.regression, f"at ŷ = {s['prediction']:.2f}"),
                           (self.classification, f"at m = {s['margin']:.2f}")):
            rows.append(f"<tr><th colspan=3 style='text-align:left'>{head}</th></tr>")
            for name, (value, grad) in plot.values.items():
                label, color, _ = LOSS_STYLES[name]
                rows.append(f"<tr><td style='color:{color}'>{label}</td><td>{value:.3f}</td><td>{grad:+.3f}</td></tr>")
        self.table.value = ("<table><tr><th></th><th>loss</th><th>gradient</th></tr>" + "".join(rows) + "</table>")
        self.status.value = ""


class OutlierExplorer(SliderPanel):
    """Move one outlier and watch the MSE, MAE and Huber fits: the MSE fit follows it, the
    MAE fit barely moves, Huber's stays close to MAE's.

    Args:
        n (int): inliers. Default: ``10``.
        model (str): ``"line"`` or ``"constant"`` (then the inliers scatter around a constant,
            and the three fits are the mean, the median and Huber's estimate). Default: ``"line"``.
        outlier_y (float): where the outlier starts, in ``[-20, 30]``. Default: ``12``.
        delta (float): Huber's threshold. Default: ``1.0``.
        seed (int): the inliers' noise. Default: ``0``.

    Attributes:
        sliders (dict): ``"outlier"``, ``"delta"``, ``"model"``. fits (dict): loss -> ``(w, b)``
        now shown. x, y (Tensor): the data now shown. plot (OutlierFitPlot), view, table, status.
    """

    OUTLIER_RANGE = (-20.0, 30.0)

    def __init__(self, n: int = 10, model: str = "line", outlier_y: float = 12.0, delta: float = 1.0, seed: int = 0,
                 min_interval: float = 0.0):
        where = "OutlierExplorer"
        self.n = check_number("n", n, where=where, low=3, high=200, integer=True)
        check_choice("model", model, ("line", "constant"), where=where)
        check_number("outlier_y", outlier_y, where=where, low=self.OUTLIER_RANGE[0], high=self.OUTLIER_RANGE[1])
        check_number("delta", delta, where=where, low=0.1, high=5.0)
        self.seed = check_seed(seed, where=where)
        self.view = LiveFigure(figsize=(7, 4), min_interval=min_interval)
        self.plot = OutlierFitPlot(self.view.axes, ylim=(self.OUTLIER_RANGE[0] - 2, self.OUTLIER_RANGE[1] + 2))
        self.sliders = {
            "outlier": W.FloatSlider(value=outlier_y, min=self.OUTLIER_RANGE[0], max=self.OUTLIER_RANGE[1], step=0.5,
                                     description="outlier's y", continuous_update=True, style=_STYLE, layout=_WIDE),
            "delta": W.FloatSlider(value=delta, min=0.1, max=5.0, step=0.1, description="Huber δ",
                                   continuous_update=True, style=_STYLE, layout=_WIDE),
            "model": W.Dropdown(options=["line", "constant"], value=model, description="fit a", style=_STYLE),
        }
        self.fits: dict[str, tuple[float, float]] = {}
        self.table, self.status = W.HTML(), W.HTML()
        self._wire()
        self.widget = panel(controls_row(W.VBox(list(self.sliders.values()) + [self.status]), self.table),
                            self.view.widget)
        self.redraw()

    def _draw(self) -> None:
        s = self.settings()
        line = s["model"] == "line"
        x, y = make_outlier_data(self.n, outlier_y=float(s["outlier"]), slope=0.5 if line else 0.0,
                                 intercept=1.0 if line else 2.0, seed=self.seed)
        fits = {name: fit_line(x, y, name, delta=s["delta"], slope=line) for name in FIT_LOSSES}
        self.x, self.y, self.fits = x, y, fits
        self.plot.update(x, y, fits)
        # How hard the outlier pulls on each fit: the gradient of its own loss term at the fit.
        rows = []
        for name, (w, b) in fits.items():
            y_hat = w * float(x[-1]) + b
            _, grad = loss_curve(name, [y_hat], y=float(y[-1]), delta=s["delta"])
            label, color, _ = LOSS_STYLES[name]
            fit = _line_text(w, b) if line else f"{b:.2f}"
            pull = abs(float(grad[0]))
            rows.append(f"<tr><td style='color:{color}'>{label}</td><td>{fit}</td><td>{pull:.2f}</td></tr>")
        self.table.value = ("<table><tr><th></th><th>fit</th><th>outlier's pull |dℓ/dŷ|</th></tr>"
                            + "".join(rows) + "</table>")
        self.status.value = ""
