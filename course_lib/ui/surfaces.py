"""Figures and the slider panel of notebook 02: optimizer paths on 2-D loss surfaces, with the
learning rates at which gradient descent turns slow, oscillating or divergent.

:class:`SurfacePlot` draws the contours once and moves the paths; :class:`DescentExplorer`
follows :class:`course_lib.ui.panels.SliderPanel`. The numbers come from :mod:`course_lib.surfaces`."""

from __future__ import annotations

import ipywidgets as W
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm

from .._validation import check_choice, check_number, check_type
from ..surfaces import PATH_OPTIMIZERS, SURFACES, OptimizerPath, Surface, gd_thresholds, get_surface, optimizer_path
from .live import LiveFigure
from .panels import SliderPanel, controls_row, panel
from .plotting import COLORS, new_axes

__all__ = ["OPTIMIZER_STYLES", "SurfacePlot", "plot_surface", "DescentExplorer"]


OPTIMIZER_STYLES = {"gd": ("GD", "#1f77b4"), "momentum": ("momentum", "#ff7f0e"), "adam": ("Adam", "#2ca02c")}


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
            ax, loss_ax = new_axes(2, figsize=(10, 4))
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
        # The name above its parameters: an equal-aspect panel of a square window is narrow, and
        # one long line ran past the panel's corner over its top tick label.
        self.ax.set(xlim=surface.xlim, ylim=surface.ylim, aspect="equal", xlabel="x", ylabel="y",
                    title=repr(surface).replace("(", "\n(", 1))
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
        ax = new_axes(figsize=(5.5, 4))
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


_STYLE = {"description_width": "110px"}


_WIDE = W.Layout(width="360px")


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
        names = list(self.sliders)
        self.widget = panel(controls_row(W.VBox([self.sliders[n] for n in names[:3]]),
                                         W.VBox([self.sliders[n] for n in names[3:]]), self.status),
                            self.view.widget)
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
