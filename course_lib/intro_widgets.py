"""Slider panels of the first two lessons: losses and their gradients, one outlier against
three losses, and optimizers descending 2-D surfaces.

Each panel follows :class:`course_lib.widgets.SchedulePreviewer`: one
:class:`~course_lib.widgets.LiveFigure` redrawn in place, a ``sliders`` dict that a test or a
notebook drives from Python (``panel.sliders["lr"].value = 0.3`` runs the same observer as a
drag), a CSS class on every control for browser tests (``lr-slider``, ``outlier-slider``...), and
a ``status`` line where a setting the library refuses shows the library's message instead of a
traceback. Numbers come from :mod:`course_lib.surfaces`, drawing from
:mod:`course_lib.plotting_intro`.
"""

from __future__ import annotations

import ipywidgets as W
from IPython.display import display

from ._validation import check_choice, check_number
from .plotting_intro import LOSS_STYLES, OPTIMIZER_STYLES, LossCurvePlot, OutlierFitPlot, SurfacePlot, _line_text
from .surfaces import (FIT_LOSSES, PATH_OPTIMIZERS, SURFACES, fit_line, gd_thresholds, get_surface, loss_curve,
                       make_outlier_data, optimizer_path)
from .widgets import LiveFigure, SliderPanel, error_html

__all__ = ["LossExplorer", "OutlierExplorer", "DescentExplorer"]

_STYLE = {"description_width": "110px"}
_WIDE = W.Layout(width="360px")


# ---------------------------------------------------------------------------------------------
# LossExplorer
# ---------------------------------------------------------------------------------------------

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
        self.widget = W.HBox([W.VBox(list(self.sliders.values()) + [self.table, self.status]), self.view.widget])
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


# ---------------------------------------------------------------------------------------------
# OutlierExplorer
# ---------------------------------------------------------------------------------------------

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
        self.seed = check_number("seed", seed, where=where, low=0, integer=True)
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
        self.widget = W.HBox([W.VBox(list(self.sliders.values()) + [self.table, self.status]), self.view.widget])
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


# ---------------------------------------------------------------------------------------------
# DescentExplorer
# ---------------------------------------------------------------------------------------------

class DescentExplorer(SliderPanel):
    """Pick a surface, an optimizer and a learning rate; see the path it takes (left) and its
    loss above the minimum (right). On the quadratic the status line names the regime theory
    predicts for GD (too slow, good, oscillating, diverging) from the thresholds ``1/L`` and
    ``2/L``, next to what the path did. The previous path stays behind, faded.

    Args:
        surface (str): a key of :data:`~course_lib.surfaces.SURFACES`. Default: ``"quadratic"``.
        optimizer (str): ``"gd"``, ``"momentum"``, ``"adam"`` or ``"all"``. Default: ``"gd"``.
        lr (float or None): in ``[1e-4, 10]``; None uses the surface's default.
        num_steps (int or None): in ``[10, 1000]``; None uses the surface's default.
        momentum (float): for ``"momentum"``, in ``[0, 0.99]``. Default: ``0.9``.

    Attributes:
        sliders (dict): ``"lr"``, ``"optimizer"``, ``"surface"``, ``"num_steps"``, ``"momentum"``.
        paths (dict): optimizer -> :class:`~course_lib.surfaces.OptimizerPath` now shown.
        regime (str or None): theory's label for GD at this LR on a quadratic, else None.
        plot (SurfacePlot), view (LiveFigure), status (HTML).
    """

    OPTIMIZER_CHOICES = (("GD", "gd"), ("momentum", "momentum"), ("Adam", "adam"), ("all three", "all"))

    def __init__(self, surface: str = "quadratic", optimizer: str = "gd", lr: float | None = None,
                 num_steps: int | None = None, momentum: float = 0.9, min_interval: float = 0.0):
        where = "DescentExplorer"
        check_choice("surface", surface, SURFACES, where=where)
        check_choice("optimizer", optimizer, PATH_OPTIMIZERS + ("all",), where=where)
        s = get_surface(surface)
        lr = check_number("lr", s.lr if lr is None else lr, where=where, low=1e-4, high=10.0)
        num_steps = check_number("num_steps", s.num_steps if num_steps is None else num_steps, where=where,
                                 low=10, high=1000, integer=True)
        momentum = check_number("momentum", momentum, where=where, low=0.0, high=0.99)
        self.view = LiveFigure(1, 2, figsize=(10, 4), min_interval=min_interval)
        self.plot = SurfacePlot(*self.view.axes, surface=s)
        # A run takes 0.1-0.5 s: recompute when the slider is released, not at every pixel.
        slow = dict(continuous_update=False, style=_STYLE, layout=_WIDE)
        self.sliders = {
            "lr": W.FloatLogSlider(value=lr, base=10, min=-4, max=1, step=0.05, readout_format=".2g",
                                   description="learning rate", **slow),
            "optimizer": W.Dropdown(options=self.OPTIMIZER_CHOICES, value=optimizer, description="optimizer",
                                    style=_STYLE),
            "surface": W.Dropdown(options=list(SURFACES), value=surface, description="surface", style=_STYLE),
            "num_steps": W.IntSlider(value=num_steps, min=10, max=1000, step=10, description="steps", **slow),
            "momentum": W.FloatSlider(value=momentum, min=0.0, max=0.99, step=0.01, description="momentum", **slow),
        }
        self.surface = s
        self.paths: dict = {}
        self.regime: str | None = None
        self._busy = False
        self.status = W.HTML(layout=W.Layout(width="360px"))
        self._wire()
        self.widget = W.HBox([W.VBox(list(self.sliders.values()) + [self.status]), self.view.widget])
        self.redraw()

    def _on_change(self, change) -> None:
        if self._busy:
            return
        if change["owner"] is self.sliders["surface"]:
            # A new surface starts from its own LR and step count (Rosenbrock's safe LR is 400x
            # smaller than the quadratic's); one redraw for the three changes.
            self._busy = True
            try:
                s = get_surface(change["new"])
                self.sliders["lr"].value, self.sliders["num_steps"].value = s.lr, s.num_steps
                self.surface = s
                self.plot.set_surface(s)
            finally:
                self._busy = False
        self.redraw()

    def _draw(self) -> None:
        s = self.settings()
        if s["surface"] != self.surface.name:  # set from outside the observer (e.g. a test)
            self.surface = get_surface(s["surface"])
            self.plot.set_surface(self.surface)
        names = PATH_OPTIMIZERS if s["optimizer"] == "all" else (s["optimizer"],)
        lr, steps, beta = float(s["lr"]), int(s["num_steps"]), float(s["momentum"])
        paths = {name: optimizer_path(self.surface, optimizer=name, lr=lr, num_steps=steps, momentum=beta)
                 for name in names}
        self.paths = paths
        self.plot.update(paths)
        self.status.value = self._theory(lr, steps, beta, names) + "<br>" + "<br>".join(
            self._outcome(p) for p in paths.values())

    def _theory(self, lr: float, steps: int, beta: float, names) -> str:
        """What theory predicts at this LR (exact on the quadratic, local elsewhere)."""
        t = gd_thresholds(self.surface)
        exact = self.surface.hessian is not None
        self.regime = t.regime(lr, steps) if exact else None
        where = "" if exact else " (near the minimum only: the curvature changes from place to place)"
        parts = [f"<b>Theory</b>{where}: 1/L = {t.monotone_lr:.3g}, 2/L = {t.max_lr:.3g}"]
        if "gd" in names and exact:
            label = self.regime
            color = {"diverging": "#d62728", "oscillating": "#ff7f0e", "too slow": "#7f7f7f"}.get(label, "#2ca02c")
            parts.append(f"GD at lr = {lr:.3g}: <b style='color:{color}'>{label}</b>")
        if "momentum" in names:
            parts.append(f"momentum {beta:.2f} diverges above 2(1+β)/L = {t.momentum_max_lr(beta):.3g}")
        if "adam" in names:
            parts.append("Adam: no such threshold (its steps are about lr long, whatever the gradient)")
        return "<br>".join(parts)

    @staticmethod
    def _outcome(path) -> str:
        label = OPTIMIZER_STYLES[path.optimizer][0]
        if path.diverged:
            return f"{label}: <span style='color:#d62728'>diverged at step {path.stop_step}</span>"
        x, y = path.xy[-1].tolist()
        return (f"{label}: after {path.num_steps} steps at ({x:.3f}, {y:.3f}), "
                f"loss above the minimum {float(path.gaps[-1]):.2g}")
