"""The training lab's controls: one slider or menu per setting, and the Play / Pause / Step / Reset buttons.

Why a module of its own: which widget stands for which setting, over which range, is a table, and it
reads better apart from the lab's runs and drawing (:mod:`course_lib.ui.lab`), which wires these
controls to what they do. The ranges are those of ``lab_settings.SETTING_RULES``: a run never uses
a value its slider cannot show.
"""

from __future__ import annotations

import math

import ipywidgets as W
import numpy as np

from .lab_settings import LAB_TASKS

__all__ = ["LABEL_STYLE", "REG_STEPS", "nearest", "setting_controls", "transport_buttons"]

# Weight decay and L1: 0, then 1e-6 .. 10 at 3 steps a decade. A log slider cannot reach 0, and
# "no regularization" is the first value a learner tries.
REG_STEPS = [0.0] + [float(f"{v:.1g}") for v in np.logspace(-6, 1, 22)]
# Every labelled control of the lab: the labels line up, and "masking strength" shows in full (110 px cut it).
LABEL_STYLE = {"description_width": "120px"}
_WIDTH = "330px"                  # room for the label and the readout


def nearest(options: list[float], value: float) -> float:
    """The option closest to ``value`` on a log scale (0 counts as 1e-12).

    Example:
        >>> nearest(REG_STEPS, 3e-4), nearest(REG_STEPS, 0.0), nearest(REG_STEPS, 0.07)
        (0.0002, 0.0, 0.05)
    """
    return min(options, key=lambda o: abs(math.log10(o + 1e-12) - math.log10(value + 1e-12)))


def setting_controls(settings: dict, extra: dict | None = None) -> dict:
    """One control per setting, at the values of ``settings``; then the ``extra`` widgets
    (a task's own live settings, ``name -> widget``). Each gets the lab's width and a CSS class
    ``<name>-slider`` (the browser tests find them by it).

    Args:
        settings (dict): the lab's settings (``lab_settings.DEFAULT_SETTINGS``' keys).
        extra (dict or None): more controls, by setting name. Default None.

    Returns:
        dict: setting name -> widget, the live settings first in the order of ``LIVE_SETTINGS``.
    """
    s, st = settings, LABEL_STYLE
    reg = [(f"{v:g}", v) for v in REG_STEPS]
    controls = {
        "lr": W.FloatLogSlider(value=s["lr"], base=10, min=-5, max=1, description="learning rate",
                               readout_format=".1e", style=st),
        "weight_decay": W.SelectionSlider(options=reg, value=nearest(REG_STEPS, s["weight_decay"]),
                                          description="weight decay", style=st),
        "l1": W.SelectionSlider(options=reg, value=nearest(REG_STEPS, s["l1"]), description="L1", style=st),
        "dropout": W.FloatSlider(value=s["dropout"], min=0.0, max=0.9, step=0.05, description="dropout", style=st),
        "width": W.IntSlider(value=s["width"], min=1, max=256, description="width", style=st),
        "depth": W.IntSlider(value=s["depth"], min=0, max=6, description="depth", style=st),
        "noise": W.FloatSlider(value=s["noise"], min=0.0, max=1.0, step=0.05, description="data noise", style=st),
        "batch_size": W.IntSlider(value=s["batch_size"], min=1, max=256, description="batch size", style=st),
        "train_fraction": W.FloatSlider(value=s["train_fraction"], min=0.1, max=0.9, step=0.05,
                                        description="train fraction", style=st),
        "task": W.Dropdown(options=list(LAB_TASKS), value=s["task"], description="task", style=st),
        "optimizer": W.Dropdown(options=["adam", "adamw", "sgd", "momentum"], value=s["optimizer"],
                                description="optimizer", style=st),
        **(extra or {}),
    }
    for name, w in controls.items():
        w.layout.width = _WIDTH
        w.add_class(f"{name.replace('_', '-')}-slider")
        if hasattr(w, "continuous_update"):
            # A drag sends its value once, when released; and a slider created off its grid sends
            # nothing back (with continuous updates the browser answers every value the kernel
            # sets with its nearest grid point). The lab keeps the exact values it was given:
            # snapping lr 0.3 to the log grid's 0.316 changed the lessons' example runs (notebook
            # 03's "oscillating" run no longer oscillated).
            w.continuous_update = False
    return controls


def transport_buttons() -> dict:
    """The Play, Pause, Step and Reset buttons (CSS classes ``lab-play`` ...), not yet wired."""
    buttons = {name: W.Button(description=name.capitalize(), layout=W.Layout(width="80px"))
               for name in ("play", "pause", "step", "reset")}
    for name, b in buttons.items():
        b.add_class(f"lab-{name}")
    return buttons
