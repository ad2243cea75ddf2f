"""Slider panels: the controls around a live figure, and the page style that makes them fit.

What every panel of the course shares (:class:`SliderPanel`), how a slider's value is read
(:func:`snap`, :func:`same_setting`, :func:`watch`: a browser sends values back slightly changed,
and one drag must make one change), the layout helpers (:func:`controls_row`, :func:`panel`), the
message for a refused setting (:func:`error_html`) and the CSS that lets figures and panels fit
the notebook's output area (:data:`PAGE_CSS`). The figures themselves are ``live.py``'s.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

import ipywidgets as W
from IPython.display import display

from . import live
from .theme import lecture_mode

if TYPE_CHECKING:
    from .live import LiveFigure

__all__ = ["PAGE_CSS", "SliderPanel", "controls_row", "error_html", "page_style", "panel", "same_setting",
           "show_page_style", "snap", "watch"]


# Figures that fit the notebook: ipympl gives every canvas a fixed size in pixels (the figure's
# inches x dpi), wider than the output area of a 1280 px window for many figures. These rules
# let a canvas shrink with its output area (keeping its aspect ratio; it never grows past its
# own size), hide ipympl's "Figure N" header, and let panels' control rows wrap. On a slide (RISE), a
# panel run there is taller than a 720 px projector screen: the slide scrolls instead of cutting off
# the figure (RISE's own `scroll` option only looks when the slide changes, before the output exists).
# A live figure's three stacked layers (still picture, curves, overlay: live_svg.py) each get a
# compositing layer of their own, so a frame repaints only the curves, not the two pictures under and
# over them (Chromium's raster threads: 0.14 -> 0.08 of a core at 12 frames a second); the overlay
# stays on top because it comes last.
PAGE_CSS = """
.jp-OutputArea-output .jupyter-matplotlib, .jp-OutputArea-output .jupyter-matplotlib-figure { max-width: 100%; min-width: 0; }
.jp-OutputArea-output .jupyter-matplotlib-canvas-container { overflow: hidden !important; max-width: 100%; }
.jp-OutputArea-output .jupyter-matplotlib-canvas-div { max-width: calc(100% - 4px) !important; height: auto !important; position: relative; }
.jp-OutputArea-output .jupyter-matplotlib-canvas-div canvas { max-width: 100% !important; height: auto !important; }
.jp-OutputArea-output .jupyter-matplotlib-canvas-div canvas:first-child { position: relative !important; display: block; }
.jp-OutputArea-output .jupyter-matplotlib-header { display: none; }
.jp-OutputArea-output .course-panel, .jp-OutputArea-output .course-panel .widget-vbox { min-width: 0; max-width: 100%; }
.jp-OutputArea-output .widget-image { max-width: 100%; height: auto !important; object-fit: contain; }
.course-lecture .course-controls, .course-demos.course-lecture { zoom: 1.3; }
.reveal .slides section.present { max-height: 100%; overflow-y: auto; }
.course-live > * { will-change: transform; }
"""


def page_style() -> W.HTML:
    """An invisible widget that carries :data:`PAGE_CSS` (ipywidgets' HTML widget keeps a
    ``<style>`` element; a notebook's HTML output would be sanitised). ``setup_notebook``
    displays it once; every panel also carries one, so a panel fits even on its own."""
    w = W.HTML(f"<style>{PAGE_CSS}</style>", layout=W.Layout(height="0px", margin="0px", overflow="hidden"))
    w.add_class("course-style")
    return w


def show_page_style() -> None:
    """Inside a notebook, display :func:`page_style` (figures shrink to fit); elsewhere nothing."""
    if not live.outside_kernel():
        display(page_style())


def controls_row(*children, gap: str = "4px 24px") -> W.Box:
    """Controls side by side that wrap onto the next line when the output area is narrow."""
    return W.Box(list(children), layout=W.Layout(display="flex", flex_flow="row wrap", align_items="flex-start",
                                                  grid_gap=gap, max_width="100%"))


def panel(controls, figure, *below) -> W.VBox:
    """A panel: controls above the figure, never beside or under it; the figure shrinks to fit."""
    controls.add_class("course-controls")       # drawn 1.3x larger in the lecture theme (PAGE_CSS)
    box = W.VBox([page_style(), controls, figure, *below], layout=W.Layout(max_width="100%"))
    box.add_class("course-panel")
    if lecture_mode():
        box.add_class("course-lecture")
    return box


def error_html(err: Exception) -> str:
    """A refused setting as a red status line (the library's own message, HTML-escaped)."""
    return f"<span style='color:#d62728'>{html.escape(str(err))}</span>"


# -- slider values that travel to the browser and back ------------------------------------------
#
# A slider's value makes a round trip: the kernel sets it, the browser puts the handle on its grid
# and may send the value back changed (0.8 comes back as 0.7999999999999999; a log slider set to
# 0.3 comes back as 0.316, its nearest grid point), or late (a value the kernel had before a cell
# moved the slider from code). None of these is the learner moving the slider.



def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clean(x: float) -> float:
    return float(f"{x:.12g}")       # 0.7999999999999999 -> 0.8, 10**-1.5 -> 0.0316227766017


def snap(widget, value):
    """``value`` moved onto ``widget``'s grid (what the browser's handle would show); values of
    other widgets (dropdowns, selection sliders, checkboxes) are returned unchanged.

    Example:
        >>> import ipywidgets as W
        >>> snap(W.FloatLogSlider(min=-5, max=1, step=0.1), 0.3), snap(W.FloatSlider(min=0.1, max=0.9, step=0.05), 0.81)
        (0.316227766017, 0.8)
    """
    if not _number(value) or not _number(getattr(widget, "step", None)) or not widget.step:
        return value
    lo, hi, step = widget.min, widget.max, widget.step
    if isinstance(widget, W.FloatLogSlider):
        if value <= 0:
            return _clean(widget.base ** lo)
        e = math.log(value, widget.base)
        e = min(hi, max(lo, lo + round((e - lo) / step) * step))
        return _clean(widget.base ** e)
    v = min(hi, max(lo, lo + round((value - lo) / step) * step))
    return int(round(v)) if isinstance(widget, W.IntSlider) else _clean(v)


def same_setting(widget, a, b) -> bool:
    """True when ``a`` and ``b`` are the same position of ``widget`` (closer than half a step;
    on a log slider, half a step of the exponent). Non-numeric values: plain equality."""
    if not (_number(a) and _number(b)):
        return a == b
    step = getattr(widget, "step", None)
    if not _number(step) or not step:
        return a == b
    if isinstance(widget, W.FloatLogSlider):
        if a <= 0 or b <= 0:
            return a == b
        return abs(math.log(a, widget.base) - math.log(b, widget.base)) < step / 2
    return abs(a - b) < step / 2


def _from_browser(widget) -> bool:
    """True inside an observer called for a value the front end sent (ipywidgets locks the
    properties it is applying from a front-end message)."""
    return bool(getattr(widget, "_property_lock", None))


def watch(widget, callback) -> None:
    """Call ``callback(change)`` for real changes of ``widget.value`` only.

    Dropped: a value from the browser at the same grid position as the current one (its
    rounding), and a late echo: the first value the browser sends after the kernel moved the
    slider, when it equals a value the kernel held before (the browser sent it before it saw the
    kernel's move; with Run All it reaches the kernel only after the last cell). The slider is
    then put back where the kernel has it. ``change`` has ``owner``, ``old``, ``new`` and
    ``from_browser``.
    """
    held: list = []                             # values the kernel held before its own moves
    busy = [False]

    def on_change(change) -> None:
        if busy[0]:
            return
        new, old = change["new"], change["old"]
        browser = _from_browser(widget)
        if browser:
            stale, held[:] = list(held), []     # only the browser's first answer can be stale
            if same_setting(widget, new, old):
                return
            if any(same_setting(widget, new, v) and not same_setting(widget, v, old) for v in stale):
                busy[0] = True                  # a late echo: put the kernel's value back
                try:
                    widget.value = old
                finally:
                    busy[0] = False
                return
        else:
            held.append(old)
        callback({"owner": widget, "name": "value", "old": old, "new": new, "from_browser": browser})

    widget.observe(on_change, names="value")


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
        """Classes, start values on the sliders' grids, and one filtered observer (see :func:`watch`)."""
        self._values = {}
        for name, w in self.sliders.items():
            w.add_class(f"{name.replace('_', '-')}-slider")  # stable handles for browser tests
            w.value = snap(w, w.value)                       # the readout shows what is used
            self._values[name] = w.value
            watch(w, lambda change, name=name: self._accept(name, change))

    def _accept(self, name: str, change) -> None:
        self._values[name] = change["new"]
        self._on_change(change)

    def _on_change(self, change) -> None:
        self.redraw()

    def show(self):
        """Display the panel (with a demo picker above it if the course has demos for it);
        later changes redraw it where it is."""
        from .demos import picker_for
        display(picker_for(self) or self.widget)
        self.view.refresh(force=True)
        self.view.send_first_frame()
        return self

    def settings(self) -> dict:
        """The current control values by name (as the kernel holds them: a browser's rounding of
        a value is not a new value)."""
        values = getattr(self, "_values", None)
        return dict(values) if values is not None else {name: w.value for name, w in self.sliders.items()}

    def redraw(self) -> bool:
        """Recompute and redraw from the sliders; False (and a message) if a setting was refused."""
        try:
            self._draw()
        except (ValueError, TypeError) as err:  # a setting the library rejects: say why, keep the plot
            self.status.value = error_html(err)
            return False
        self.view.draw_now()  # a slider's last position must always be drawn: no throttling
        return True
