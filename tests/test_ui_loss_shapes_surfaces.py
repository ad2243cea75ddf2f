"""The lessons' slider panels and plots driven from Python, as a notebook test drives them:
every control at both extremes and mid-range changes what is plotted, counts a frame and
never raises; a setting the library refuses becomes a message; the plots keep their artists."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib import ui  # noqa: E402
from course_lib import surfaces as S, loss_shapes as LS  # noqa: E402
from course_lib.ui.loss_shapes import LossCurvePlot, OutlierFitPlot, plot_loss_curve, plot_outlier_fits  # noqa: E402
from course_lib.ui.surfaces import SurfacePlot, plot_surface  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _values(w):
    """Both extremes and the middle of a slider; every option of a dropdown."""
    if hasattr(w, "options"):
        return [o[1] if isinstance(o, tuple) else o for o in w.options]
    lo, hi = w.min, w.max
    if type(w).__name__ == "FloatLogSlider":
        return [w.base ** lo, w.base ** ((lo + hi) / 2), w.base ** hi]
    return [lo, (lo + hi) // 2 if isinstance(w.value, int) else (lo + hi) / 2, hi]


def _artists(panel):
    """Everything a panel plots, as arrays: lines' data and images, to see whether a frame changed."""
    out = []
    for ax in panel.view.fig.axes:
        out += [np.asarray(ln.get_xydata(), dtype=float).round(9).tobytes() for ln in ax.get_lines()]
    return out


PANELS = {
    "LossExplorer": lambda: ui.loss_shapes.LossExplorer(),
    "OutlierExplorer": lambda: ui.loss_shapes.OutlierExplorer(),
    # momentum: the one optimizer whose path every control changes (the momentum slider too)
    "DescentExplorer": lambda: ui.surfaces.DescentExplorer(optimizer="momentum", num_steps=60),
}


@pytest.mark.slow  # 2-5 s each: about 15 real frames
@pytest.mark.parametrize("kind", list(PANELS))
def test_every_control_at_extremes_and_middle_redraws(kind):
    panel = PANELS[kind]()
    assert set(panel.sliders) and panel.widget is not None and panel.view.frames >= 1
    for name, w in panel.sliders.items():
        assert f"{name.replace('_', '-')}-slider" in w._dom_classes
        # the optimizer goes back to momentum afterwards, so that the momentum slider still matters
        for value in _values(w) + (["momentum"] if name == "optimizer" else []):
            if w.value == value:
                continue  # no change, no event
            before, frames = _artists(panel), panel.view.frames
            w.value = value  # drives the observer, as a drag would
            assert panel.view.frames > frames, f"{kind}: {name}={value!r} drew no frame"
            assert _artists(panel) != before, f"{kind}: {name}={value!r} changed nothing on the plot"
            assert "must" not in panel.status.value, panel.status.value


def test_loss_explorer_reads_losses_and_gradients_at_the_slider():
    p = ui.loss_shapes.LossExplorer()
    p.sliders["prediction"].value = 2.0
    p.sliders["delta"].value = 1.0
    assert p.regression.values == {"mse": (4.0, 4.0), "mae": (2.0, 1.0), "huber": (1.5, 1.0)}
    assert p.regression.markers["mse"].get_xydata().tolist() == [[2.0, 4.0]]
    assert p.regression.grad_markers["huber"].get_xydata().tolist() == [[2.0, 1.0]]
    p.sliders["margin"].value = 2.0                  # beyond the hinge's margin of 1: zero loss, zero gradient
    assert p.classification.values["hinge"] == (0.0, 0.0)
    assert p.classification.values["bce"][1] == pytest.approx(-0.1192, abs=1e-4)  # sigmoid(2) - 1
    assert "4.000" in p.table.value and "+1.000" in p.table.value


def test_huber_curve_follows_delta():
    p = ui.loss_shapes.LossExplorer()
    before = p.regression.curves["huber"].get_ydata().copy()
    mse = p.regression.curves["mse"].get_ydata().copy()
    p.sliders["delta"].value = 2.5
    after = p.regression.curves["huber"].get_ydata()
    assert not np.array_equal(before, after) and np.array_equal(mse, p.regression.curves["mse"].get_ydata())
    assert np.max(np.abs(p.regression.grad_curves["huber"].get_ydata())) == pytest.approx(2.5)


def test_outlier_pulls_the_mse_fit_not_the_mae_fit():
    p = ui.loss_shapes.OutlierExplorer(model="line")
    p.sliders["outlier"].value = 0.0
    low = dict(p.fits)
    p.sliders["outlier"].value = 30.0
    high = dict(p.fits)
    moved = {name: abs(high[name][0] - low[name][0]) for name in LS.FIT_LOSSES}  # change of slope
    assert moved["mse"] > 10 * moved["mae"] and moved["mse"] > 5 * moved["huber"]
    assert p.plot.outlier.get_xydata().tolist() == [[9.0, 30.0]]
    assert "outlier's pull" in p.table.value


def test_outlier_constant_fits_in_the_panel_are_mean_median_huber():
    p = ui.loss_shapes.OutlierExplorer(model="constant", outlier_y=25.0)
    mean, median = p.y.mean().item(), p.y.median().item()
    b = {name: fit[1] for name, fit in p.fits.items()}
    assert b["mse"] == pytest.approx(mean) and b["mae"] == pytest.approx(median, abs=5e-3)
    assert median < b["huber"] < mean
    assert all(fit[0] == 0.0 for fit in p.fits.values())


@pytest.mark.slow
def test_descent_regimes_shown_from_theory_match_the_paths():
    p = ui.surfaces.DescentExplorer(surface="quadratic", optimizer="gd", num_steps=100)
    L = S.gd_thresholds("quadratic").L
    for factor, label in [(0.5, "good"), (1.5, "oscillating"), (2.1, "diverging")]:
        p.sliders["lr"].value = factor / L
        assert p.regime == label and label in p.status.value
        assert p.paths["gd"].diverged == (label == "diverging")
    assert "diverged at step" in p.status.value
    assert len(p.plot.notes) == 1 and len(p.plot.ends["gd"].get_xdata()) == 1  # the red cross and its note
    p.sliders["lr"].value = 1e-4
    assert p.regime == "too slow" and len(p.plot.notes) == 0


def test_descent_all_three_then_a_new_surface_resets_lr_and_steps():
    p = ui.surfaces.DescentExplorer(optimizer="all", num_steps=50)
    assert set(p.paths) == {"gd", "momentum", "adam"}
    frames = p.view.frames
    p.sliders["surface"].value = "rosenbrock"
    s = S.rosenbrock()
    assert p.sliders["lr"].value == pytest.approx(s.lr) and p.sliders["num_steps"].value == s.num_steps
    assert p.view.frames == frames + 1                      # one redraw for the three changes
    assert p.regime is None and "near the minimum" in p.status.value
    assert p.paths["gd"].surface == "rosenbrock" and p.plot.ax.get_xlim() == s.xlim
    # no ghosts carried over from the quadratic
    assert all(len(ln.get_xdata()) == 0 for ln in p.plot.ghost_paths.values())


def test_previous_path_stays_as_a_ghost():
    p = ui.surfaces.DescentExplorer(optimizer="gd", num_steps=40)
    first = p.plot.paths["gd"].get_xydata().copy()
    p.sliders["lr"].value = 0.05
    assert np.array_equal(p.plot.ghost_paths["gd"].get_xydata(), first)


def test_a_refused_setting_is_a_message_not_an_exception(monkeypatch):
    p = ui.surfaces.DescentExplorer(num_steps=30)
    before, frames = _artists(p), p.view.frames

    def refuse(*args, **kwargs):
        raise ValueError("optimizer_path(): 'lr' must be a float > 0, got lr=0")

    monkeypatch.setattr(ui.surfaces, "optimizer_path", refuse)
    p.sliders["lr"].value = 0.3                           # must not raise
    assert "optimizer_path(): &#x27;lr&#x27; must be a float &gt; 0" in p.status.value
    assert _artists(p) == before and p.view.frames == frames  # the last valid plot stays


def test_show_displays_and_draws(capsys):
    p = ui.loss_shapes.LossExplorer()
    frames = p.view.frames
    assert p.show() is p and p.view.frames == frames + 1


@pytest.mark.parametrize("call,match", [
    (lambda: ui.surfaces.DescentExplorer(surface="saddle"), r"DescentExplorer\(\): 'surface' must be one of 'quadratic'"),
    (lambda: ui.surfaces.DescentExplorer(optimizer="sgd"), r"'optimizer' must be one of 'gd', 'momentum', 'adam', 'all'"),
    (lambda: ui.surfaces.DescentExplorer(lr=100.0), r"DescentExplorer\(\): 'lr' must be a float in \[0.0001, 10\], got lr=100"),
    (lambda: ui.loss_shapes.OutlierExplorer(outlier_y=99.0), r"OutlierExplorer\(\): 'outlier_y' must be a float in \[-20, 30\]"),
    (lambda: ui.loss_shapes.OutlierExplorer(model="cubic"), r"OutlierExplorer\(\): 'model' must be one of 'line', 'constant'"),
    (lambda: ui.loss_shapes.LossExplorer(delta=0.0), r"LossExplorer\(\): 'delta' must be a float in \[0.1, 3\]"),
    (lambda: LossCurvePlot(kind="ranking"), r"LossCurvePlot\(\): 'kind' must be one of 'regression'"),
    (lambda: plot_surface("quadratic", {"sgd": None}), r"plot_surface\(\): 'paths' must be one of 'gd'"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# The plotting helpers on their own
# ---------------------------------------------------------------------------------------------

def test_plot_functions_return_axes_with_the_expected_lines():
    ax = plot_loss_curve("classification", x=0.5)
    labels = [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert labels == ["BCE / logistic", "hinge", "0-1 (errors)"]
    x, y = LS.make_outlier_data(outlier_y=20.0)
    ax = plot_outlier_fits(x, y, slope=False)
    assert len(ax.get_lines()) == 5 and ax.get_lines()[2].get_label().startswith("MSE: y = ")
    paths = [S.optimizer_path("quadratic", optimizer=o, lr=0.1, num_steps=20) for o in ("gd", "adam")]
    ax = plot_surface("quadratic", paths)
    drawn = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 21]
    assert len(drawn) == 2 and [t.get_text() for t in ax.get_legend().get_texts()] == ["GD", "Adam", "minimum", "start"]


def test_plots_draw_into_given_axes():
    fig, axes = plt.subplots(1, 3)
    LossCurvePlot(axes[0], kind="regression")          # no gradient panel asked for
    OutlierFitPlot(axes[1]).update(*LS.make_outlier_data(), {k: (0.5, 1.0) for k in LS.FIT_LOSSES})
    plot = SurfacePlot(axes[2], surface="two_minima")
    plot.update({"momentum": S.optimizer_path("two_minima", optimizer="momentum")})
    assert len(fig.axes) == 3 and len(plot.paths["momentum"].get_xdata()) == 151
    assert plot.loss_ax is None and axes[2].get_legend() is not None


@pytest.mark.parametrize("theme", ["default", "lecture"])
def test_descent_explorer_lays_out_again_when_the_loss_labels_widen(theme):
    # The layout is frozen after the first frame. At lr 0.01 the loss spans less than a decade and
    # its axis gains labels like "6x10^0": with the first frame's layout, the loss panel's y-label
    # sat on the contour panel (2 px into it in the default theme, 15 px in the lecture theme).
    from course_lib.ui.plotting import set_course_theme
    with matplotlib.rc_context():
        set_course_theme(theme)
        p = ui.surfaces.DescentExplorer(surface="quadratic", optimizer="gd")
        p.sliders["lr"].value = 0.01
        fig = p.view.fig
        renderer = fig.canvas.get_renderer()
        contour, loss = p.view.axes
        label = loss.yaxis.label.get_window_extent(renderer)
        assert any("times" in t.get_text() for t in loss.get_yticklabels(which="both"))   # the wide labels
        assert label.x0 > contour.get_tightbbox(renderer).x1, (label, contour.get_tightbbox(renderer))
        assert p.view.relayout_if_ticks_changed() is False     # the same labels again: no new layout
