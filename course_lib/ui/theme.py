"""The course's two looks: ``"default"`` for a laptop screen and ``"lecture"`` for a projector.

A projector at the back of a room needs what a laptop does not: text and lines readable from
far away on a 1280x720 picture (axis labels of at least 18 px, lines of at least 2.5 px), high
contrast, and colours that a colour-blind viewer tells apart. The lecture theme gives:

1. seaborn's ``"talk"`` context: fonts 1.5x larger (axis labels 18 pt = 25 px at the course's
   100 dpi), black text and axes on white;
2. the Okabe-Ito palette, designed to stay distinct under the common colour-vision deficiencies
   (Okabe & Ito 2008, "Color Universal Design"; recommended by Wong 2011, Nature Methods 8:441);
3. a pass over every figure, just before it is drawn: lines drawn thinner than 2.6 px are made
   thicker, text smaller than 12 pt is made 12 pt, and the matplotlib colours the course's plots
   use (``tab10``) become their Okabe-Ito counterparts. The pass runs on every figure that
   pyplot creates (matplotlib's ``figure.hooks``), so every lesson's plots and panels follow the
   theme without each plot choosing its widths and colours twice;
4. panels (``ui.panels.panel``) get the CSS class ``course-lecture``: their controls are drawn
   1.3x larger (sliders, readouts, buttons).

Example:
    >>> set_course_theme("lecture"); lecture_mode()
    True
    >>> set_course_theme("default"); lecture_mode()
    False
"""

from __future__ import annotations

import types

import matplotlib
import matplotlib.colors as mcolors
import seaborn as sns
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.text import Text

from .._validation import check_choice, check_type

__all__ = ["THEMES", "OKABE_ITO", "set_course_theme", "lecture_mode", "lecture_pass"]

THEMES = ("default", "lecture")

# Okabe & Ito (2008): black, orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple.
OKABE_ITO = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]

# The tab10 colours the course's plots name, and what each becomes on a projector: the same
# role (train blue, validation orange, diverged red), from the colour-blind-safe palette.
_LECTURE_COLORS = {"#1f77b4": "#0072B2", "#ff7f0e": "#E69F00", "#2ca02c": "#009E73", "#d62728": "#D55E00",
                   "#9467bd": "#CC79A7", "#8c564b": "#000000", "#e377c2": "#CC79A7", "#7f7f7f": "#555555",
                   "#bcbd22": "#000000", "#17becf": "#56B4E9"}
_RGBA = {mcolors.to_rgba(k)[:3]: v for k, v in _LECTURE_COLORS.items()}

MIN_LINE_PX = 2.6        # thinner lines are thickened (the projector rule is 2.5 px)
MIN_TEXT_PT = 12.0       # smaller text is enlarged (12 pt = 16.7 px at 100 dpi)
_HOOK = "course_lib.ui.theme:_hook_figure"


def set_course_theme(name: str | bool = "default", *, lecture: bool | None = None) -> None:
    """Apply the course's look to every figure drawn from now on.

    Args:
        name (str): ``"default"`` (a laptop screen) or ``"lecture"`` (a projector: larger text
            and lines, high contrast, the Okabe-Ito palette). Default ``"default"``.
        lecture (bool or None): the older switch: True means ``"lecture"``, False ``"default"``;
            None (default) leaves the choice to ``name``.

    Example:
        >>> set_course_theme("lecture")
        >>> import matplotlib; matplotlib.rcParams["axes.labelsize"] >= 18
        True
        >>> set_course_theme()

    References:
        Okabe & Ito (2008), Color Universal Design (CUD): how to make figures and presentations
        that are friendly to colorblind people. Wong (2011), Points of view: Color blindness,
        Nature Methods 8:441.
    """
    where = "set_course_theme"
    if isinstance(name, bool):          # set_course_theme(True), as older notebooks wrote it
        name = "lecture" if name else "default"
    if lecture is not None:
        check_type("lecture", lecture, bool, where=where, expected="bool or None")
    if lecture is not None:
        name = "lecture" if lecture else "default"
    check_choice("name", name, THEMES, where=where)
    rc = {"figure.figsize": (7, 3.5), "axes.titleweight": "bold", "figure.dpi": 100,
          "figure.constrained_layout.use": True}
    hooks = [h for h in matplotlib.rcParams["figure.hooks"] if h != _HOOK]
    if name == "lecture":
        rc.update({"lines.linewidth": 3.0, "lines.markersize": 9, "text.color": "black",
                   "axes.labelcolor": "black", "axes.edgecolor": "black", "axes.linewidth": 1.5,
                   "xtick.color": "black", "ytick.color": "black", "grid.color": "#c8c8c8"})
        hooks.append(_HOOK)
        sns.set_theme(context="talk", style="whitegrid", palette=OKABE_ITO[1:] + OKABE_ITO[:1], rc=rc)
    else:
        sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", rc=rc)
    matplotlib.rcParams["figure.hooks"] = hooks


def lecture_mode() -> bool:
    """True while the lecture theme is on (figures made now get the projector pass)."""
    return _HOOK in matplotlib.rcParams["figure.hooks"]


def _lecture_color(color):
    """The Okabe-Ito counterpart of a tab10 colour (alpha kept); other colours unchanged."""
    try:
        rgba = mcolors.to_rgba(color)
    except (ValueError, TypeError):
        return color
    new = _RGBA.get(tuple(round(c, 6) for c in rgba[:3])) or _RGBA.get(rgba[:3])
    return color if new is None else mcolors.to_rgba(new, rgba[3])


def lecture_pass(fig) -> None:
    """Make ``fig`` readable on a projector: thin lines thicker, small text larger, tab10
    colours Okabe-Ito. Each artist is changed once (a second pass leaves it alone).

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots(); line, = ax.plot([0, 1], [0, 1], lw=1, color="#1f77b4")
        >>> lecture_pass(fig); line.get_linewidth() * fig.dpi / 72 >= 2.5, line.get_color()
        (True, (0.0, 0.4470588235294118, 0.6980392156862745, 1.0))
    """
    min_lw = MIN_LINE_PX * 72 / 100        # in points, at the course's 100 dpi
    for art in fig.findobj(lambda a: isinstance(a, (Line2D, LineCollection, Text))):
        if getattr(art, "_course_lecture", False):
            continue
        art._course_lecture = True
        if isinstance(art, Text):
            if art.get_fontsize() < MIN_TEXT_PT and art.get_text():
                art.set_fontsize(MIN_TEXT_PT)
            art.set_color(_lecture_color(art.get_color()))
        elif isinstance(art, Line2D):
            if art.get_linestyle() not in ("None", "none", " ", ""):
                art.set_linewidth(max(art.get_linewidth(), min_lw))
            art.set_markersize(art.get_markersize() * 1.4)
            art.set_color(_lecture_color(art.get_color()))
            art.set_markerfacecolor(_lecture_color(art.get_markerfacecolor()))
            art.set_markeredgecolor(_lecture_color(art.get_markeredgecolor()))
        else:
            art.set_linewidths([max(w, min_lw) for w in art.get_linewidths()])
            colors = art.get_colors()
            if len(colors):
                art.set_colors([_lecture_color(c) for c in colors])


def _hook_figure(fig) -> None:
    """``figure.hooks`` entry: run :func:`lecture_pass` on ``fig`` before each of its draws
    (so artists added after the figure was made, a live plot's new curves, get it too), and
    hide the interactive figure's toolbar and title bar: on a 1280x720 page the toolbar covered
    the first axis label of a wide figure, and nobody zooms a figure on a projector."""
    canvas = fig.canvas
    if hasattr(canvas, "toolbar_visible") and hasattr(canvas, "header_visible"):   # ipympl's canvas
        canvas.toolbar_visible = False
        canvas.header_visible = False
    draw = fig.draw

    def draw_with_pass(self, renderer):
        lecture_pass(self)
        return draw(renderer)

    fig.draw = types.MethodType(draw_with_pass, fig)
