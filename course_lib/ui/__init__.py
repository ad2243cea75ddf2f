"""What the course draws: figures, live plots and slider panels. The only part of course_lib that
imports matplotlib or ipywidgets; the compute modules beside it never do (a test proves it).

``ui.X`` draws what ``course_lib.X`` computes: ``ui.surfaces`` draws ``course_lib.surfaces``,
``ui.lr_finder`` draws ``course_lib.lr_finder``, and so on. Shared pieces:

* ``ui.plotting``: the course theme and palette, loss curves (``plot_loss_curves``);
* ``ui.live``: ``LiveFigure`` (a figure that redraws while training runs) and ``SliderPanel``;
* ``ui.lab``: the training lab (``TrainingLab``);
* ``ui.theme``: ``set_course_theme("default" | "lecture")``, the projector theme;
* ``ui.demos``: prepared demonstrations (``DEMOS``) and the picker above the lab and panels;
* ``ui.recording``: ``record(lab_or_panel, "run.gif")``, a run or demo as an animated GIF.

A lesson notebook starts with::

    import course_lib as cl
    from course_lib import ui
    FAST, DEVICE = ui.setup_notebook(seed=0)
"""

from __future__ import annotations

from . import (bottleneck, ewc, hypergrad, lab, live, local_learning, loss_shapes, lr_finder, masking, matryoshka, plotting,
               scaling, schedules, surfaces)
from . import demos, panels, recording, theme
from .lab import TrainingLab
from .live import LiveFigure, use_live_backend
from .panels import SliderPanel
from .plotting import plot_loss_curves
from .recording import record
from .theme import set_course_theme
from .setup import setup_notebook

__all__ = ["setup_notebook", "set_course_theme", "plot_loss_curves", "LiveFigure", "SliderPanel", "TrainingLab",
           "use_live_backend",
           "bottleneck", "ewc", "hypergrad", "lab", "live", "local_learning", "loss_shapes", "lr_finder", "masking", "matryoshka", "plotting", "scaling",
           "schedules", "surfaces", "demos", "panels", "recording", "theme", "record"]
