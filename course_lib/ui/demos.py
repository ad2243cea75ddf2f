"""Prepared demonstrations: named settings a lecturer plays in front of a class, and the picker.

A demo is data: which lesson, a name, a one-line script for the lecturer ("at step 200 the LR
jumps to 3: watch the curve leave the plot"), and a settings string.

* For the training lab the settings string is the lab's own (:meth:`TrainingLab.settings_string`),
  mid-run changes included: ``task=regression&optimizer=sgd&lr=0.03&changes=200:lr=3``.
* For a slider panel it is a list of *keyframes* separated by ``;``, each a set of slider values:
  ``surface=quadratic&optimizer=gd&lr=0.1;lr=0.9;lr=1.05``. Play moves the sliders to each
  keyframe in turn, a few seconds apart; Pause stops; Step shows the next keyframe.
* Two extras for panels that train or whose range depends on the notebook's data:
  ``press=train`` in a keyframe presses the panel's train (or run) button after the sliders
  moved, and waits for that run before the next keyframe (lessons 07-10); a value ``min`` or
  ``max`` moves a slider to the end of its range (lesson 11's sliders span the notebook's own
  sweeps, so no fixed number fits every run).

**Writing a new demo.** Make the run (or move the sliders) as you want the class to see it, then
copy the lab's ``settings`` box (for a panel: the picker's ``settings`` box, the panel's current
sliders) into a new :class:`Demo` row of :data:`DEMOS`, with a one-line script. Run it once with
:func:`replay` and record what it ends with in ``expect``: the course's tests replay every demo
and compare. The picker lists each demo that fits the lab or panel on the screen.

Example:
    >>> [d.name for d in demos_for("02b", target="TrainingLab")]
    ['too high an LR diverges', 'a jump in the LR: the spike']
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import ipywidgets as W
from IPython.display import display

from .._validation import check_choice, check_number, check_relation
from .panels import controls_row
from .theme import lecture_mode

__all__ = ["Demo", "DEMOS", "demos_for", "keyframes", "panel_settings_string", "apply_keyframe", "replay",
           "end_state", "DemoPicker", "picker_for", "play_on"]


@dataclass(frozen=True)
class Demo:
    """One prepared demonstration.

    Args:
        lesson (str): the notebook's number, ``"02"`` or ``"02b"``. name (str): what the class will see.
        script (str): one line for the lecturer: what to say, where to look.
        target (str): ``"TrainingLab"`` or the panel's class name (``"DescentExplorer"``).
        settings (str): the lab's settings string, or a panel's keyframes (see the module help).
        make (dict): keyword arguments that build a matching lab or panel (``{"masking": 0.001}``:
            a lab with a bottleneck); the picker lists a demo only where they fit.
        max_steps (int): the lab's run length for this demo (labs only).
        expect (dict): the recorded end state. For a lab: ``stop_reason`` (exact), and
            ``train_loss`` (mean of the last 50 steps), ``val_loss`` (last), ``val_accuracy``
            (last), ``stop_step`` as ``(value, relative tolerance)``; for a panel: attribute
            values (``{"regime": "diverging"}``) and ``status_has`` (text in its status line).
    """

    lesson: str
    name: str
    script: str
    target: str
    settings: str
    make: dict = field(default_factory=dict)
    max_steps: int = 400
    expect: dict = field(default_factory=dict)


_NET = "task=regression&optimizer=sgd&lr=0.03&n_samples=200&train_fraction=0.8&noise=0.1&batch_size=64"
_OVERFIT = "task=regression&n_samples=30&train_fraction=0.8&noise=0.3&batch_size=32&width=256&depth=3&lr=0.003&seed=1"

DEMOS: tuple[Demo, ...] = (
    # 01: loss shapes
    Demo("01", "squared error punishes a far prediction", "Move the prediction away from the target: the "
         "squared error grows as the square, the absolute error in a straight line, Huber in between.",
         "LossExplorer", "prediction=0.5;prediction=1.5;prediction=3"),
    Demo("01", "one outlier drags the squared-error fit", "Lift the outlier: the squared-error line follows "
         "it, the absolute-error and Huber lines barely move.", "OutlierExplorer",
         "model=line&outlier=0;outlier=10;outlier=25"),
    # 02: gradient descent on a quadratic; 02b: the learning rate on a network (the lab)
    Demo("02b", "too high an LR diverges", "Steps 1-200 at lr 0.03 descend; at step 200 the LR jumps to 3: "
         "watch the curve leave the plot and the red cross mark divergence.", "TrainingLab",
         _NET + "&changes=200:lr=3", expect={"stop_reason": "exploded", "stop_step": (202, 0.05)}),
    Demo("02b", "a jump in the LR: the spike", "At step 200 the LR jumps from 0.03 to 0.5: the loss spikes to "
         "the trivial predictor's level and stays there (SGD just past its stable range).", "TrainingLab",
         _NET + "&changes=200:lr=0.5", expect={"stop_reason": "completed", "train_loss": (0.96, 0.3)}),
    Demo("02", "GD on a quadratic: slow, good, oscillating, diverging", "The LR goes 0.02, 0.2, 0.4, 0.6, past "
         "1/L = 0.25 and 2/L = 0.5: the path creeps, goes straight, zig-zags, then flies off.", "DescentExplorer",
         "surface=quadratic&optimizer=gd&lr=0.02;lr=0.2;lr=0.4;lr=0.6", expect={"regime": "diverging"}),
    # 03: reading loss curves
    Demo("03", "overfitting: the validation loss turns up", "A big network on 24 noisy points: training loss "
         "keeps falling, validation bottoms out early and then climbs.", "TrainingLab", _OVERFIT,
         max_steps=800, expect={"stop_reason": "completed", "val_loss": (0.15, 0.35)}),
    Demo("03", "too small an LR, then a good one", "For 200 steps lr 1e-5: a flat line that looks like "
         "'nothing to learn'. At step 200 the LR becomes 0.01 and the loss falls at once.", "TrainingLab",
         "task=regression&n_samples=200&train_fraction=0.8&noise=0.1&batch_size=64&lr=1e-05&changes=200:lr=0.01",
         expect={"stop_reason": "completed", "val_loss": (0.0142, 0.35)}),
    # 04: regularization and capacity
    Demo("04", "weight decay rescues an overfit", "The overfitting run of lesson 03; at step 300 weight decay "
         "0.01 switches on: the validation loss comes back down instead of climbing.", "TrainingLab",
         _OVERFIT + "&changes=300:weight_decay=0.01", max_steps=800,
         expect={"stop_reason": "completed", "val_loss": (0.034, 0.35)}),
    Demo("04", "dropout against an overfit", "The same run; at step 300 dropout 0.5 switches on: the training "
         "loss gets noisier and higher, the validation loss stays low.", "TrainingLab",
         _OVERFIT + "&changes=300:dropout=0.5", max_steps=800,
         expect={"stop_reason": "completed", "val_loss": (0.035, 0.35)}),
    # 05: cyclical and one-cycle schedules
    Demo("05", "one cycle: warm up, then anneal", "Move the peak earlier and later: the LR climbs for "
         "pct_start of the run, then anneals far below where it started.", "SchedulePreviewer",
         "max_lr=0.1&pct_start=0.1;pct_start=0.3;pct_start=0.6", make={"kind": "one_cycle"},
         expect={"status_has": "pct_start=0.6"}),
    Demo("05", "triangular cycles shrink with triangular2", "Switch the mode: triangular repeats the same "
         "cycle; triangular2 halves each cycle's height.", "SchedulePreviewer",
         "base_lr=0.001&max_lr=0.01&step_size_up=100&mode=triangular;mode=triangular2", make={"kind": "cyclic"},
         expect={"status_has": "mode='triangular2'"}),
    # 06b: masking strength (the lab of lesson 04 has its slider; the concept is lesson 06b's)
    Demo("06b", "masking strength collapses the latent", "A weak bottleneck learns the moons; at step 250 the "
         "masking strength jumps to 5: the KL term wins, the latent carries nothing, and the loss returns "
         "to the trivial predictor's.", "TrainingLab", "task=moons&lr=0.01&masking=0.001&changes=250:masking=5",
         make={"masking": 0.001}, max_steps=500,
         expect={"stop_reason": "completed", "train_loss": (0.696, 0.05), "val_accuracy": (0.5, 0.15)}),
    # 07: gradient size of the nested slices (each keyframe trains: press=train)
    Demo("07", "Adam evens out the steps, SGD does not", "Train with Adam: the small slice gets larger "
         "gradients (ratio above 1) but steps of the same size (step ratio near 1). Then SGD: the steps follow "
         "the gradients.", "MatryoshkaPanel",
         "sizes=48, 192&weight=1&optimizer=adam&press=train;optimizer=sgd&press=train",
         expect={"status_has": "step ratio"}),
    # 08: EWC
    Demo("08", "no penalty forgets A, a penalty holds it", "Train on B with λ = 0: task A's accuracy "
         "falls while B is learned. Then λ = 30: A is held higher, B learns a little less; the λ = 0 run "
         "stays on the plot as a faded ghost.",
         "EWCLab", "lam=0&fisher=true&press=train;lam=30&press=train", expect={"status_has": "λ = 30: task A"}),
    # 09: local learning
    Demo("09", "backprop against eight local chunks", "Train with K = 1 (backprop), then K = 8 local chunks: "
         "the status line gives the gap in accuracy to the backprop run.", "LocalLearningLab",
         "num_chunks=1&overlap=false&press=train;num_chunks=8&press=train",
         expect={"status_has": "backprop's run scored"}),
    # 10: hypergradients
    Demo("10", "the tangent follows the starting rho", "Move ρ from -6 to 0: the pink tangent's slope is the "
         "hypergradient df/dρ (in the status line); it points downhill, towards the grid's best ρ.",
         "HyperStepExplorer", "rho0=-6&mode=reverse;rho0=-3;rho0=0", expect={"status_has": "df/dρ"}),
    Demo("10", "hyper-steps walk down the response", "From ρ = -6, press run: the orange path walks down "
         "the response curve towards the grid's best point.", "HyperStepExplorer",
         "rho0=-6&mode=reverse&press=train", expect={"status_has": "hyper-steps ρ"}),
    # 11: compute-optimal split
    Demo("11", "a bigger budget: model and data grow together", "Slide the budget from its lowest to its "
         "highest: the star moves along the frontier, and the tokens per parameter change far less than C.",
         "ComputeBudgetExplorer", "budget=min;budget=max", expect={"status_has": "tokens per parameter"}),
    Demo("11", "the data set the exponent", "From the flattest spectrum to the steepest: the fitted model-size "
         "exponent α (orange star, right) climbs along the grey 2a - 1 line.", "SpectrumExplorer",
         "exponent=min;exponent=max", expect={"status_has": "α ="}),
)


def demos_for(lesson: str | None = None, *, target: str | None = None) -> list[Demo]:
    """The demos of one lesson (None: all), optionally only those for one target class name."""
    return [d for d in DEMOS if (lesson is None or d.lesson == lesson) and (target is None or d.target == target)]


# -- panels: keyframes ------------------------------------------------------------------------------


PRESS = "press"              # reserved keyframe key: press the panel's button (``press=train``)
_PRESSABLE = ("train",)
_ENDS = ("min", "max")       # keyframe values: the ends of a slider's range


def keyframes(settings: str) -> list[dict]:
    """A panel demo's keyframes: ``"a=1&b=x;a=2"`` -> ``[{"a": "1", "b": "x"}, {"a": "2"}]`` (strings)."""
    frames = [dict(parse_qsl(part.strip(), keep_blank_values=True)) for part in settings.split(";") if part.strip()]
    check_relation(bool(frames) and all(frames), "a panel's settings must be keyframes 'name=value&...;...'",
                   where="keyframes", settings=settings)
    return frames


def panel_settings_string(panel) -> str:
    """A panel's current slider values as one keyframe: paste it into a :class:`Demo`."""
    values = panel.settings() if hasattr(panel, "settings") else {n: w.value for n, w in panel.sliders.items()}
    return urlencode([(k, f"{v:g}" if isinstance(v, float) else str(v)) for k, v in values.items()], safe=":")


def _convert(widget, text: str):
    """The slider value that ``text`` names, in the widget's own type (``min``/``max``: its range's ends)."""
    options = getattr(widget, "options", None)
    if options:                                    # dropdowns: match the option's value or label
        pairs = [o if isinstance(o, tuple) else (str(o), o) for o in options]
        if text in _ENDS:
            return pairs[0 if text == "min" else -1][1]
        for label, value in pairs:
            if text in (str(value), label):
                return value
        raise ValueError(f"The slider {widget.description!r} has no option {text!r}; "
                         f"allowed: {', '.join(str(v) for _, v in pairs)}")
    current = widget.value
    if text in _ENDS and hasattr(widget, "min"):
        end = widget.min if text == "min" else widget.max
        return widget.base ** end if hasattr(widget, "base") else end    # a log slider's range is in exponents
    if isinstance(current, bool):
        return text.lower() in ("1", "true", "yes", "on")
    if isinstance(current, int):
        return int(float(text))
    return float(text)


def _fits(panel, frames: list[dict]) -> bool:
    """Every keyframe names only this panel's sliders (and ``press`` only where it has a button)."""
    names = set().union(*frames)
    return names - {PRESS} <= set(panel.sliders) and (PRESS not in names or hasattr(panel, "button"))


def apply_keyframe(panel, frame: dict) -> None:
    """Move ``panel``'s sliders to ``frame`` (names as in ``panel.sliders``); each move redraws, as
    if the lecturer had moved the slider. ``press=train`` then presses the panel's button and
    waits until that run has finished."""
    frame = dict(frame)
    press = frame.pop(PRESS, None)
    unknown = sorted(set(frame) - set(panel.sliders))
    check_relation(not unknown, "the demo names sliders this panel does not have", where="apply_keyframe",
                   unknown=unknown, sliders=sorted(panel.sliders))
    if press is not None:
        check_choice("press", press, _PRESSABLE, where="apply_keyframe")
        check_relation(hasattr(panel, "button"), "'press' needs a panel with a train button", where="apply_keyframe",
                       panel=type(panel).__name__)
    for name, text in frame.items():
        panel.sliders[name].value = _convert(panel.sliders[name], text)
    if press is not None:
        panel.button.click()
        if hasattr(panel, "wait"):              # a panel that trains in a thread (lesson 08)
            panel.wait()


# -- replay and its end state ---------------------------------------------------------------------


def end_state(history) -> dict:
    """What a lab run ended with, in the terms of :attr:`Demo.expect`."""
    finite = [v for v in history.train_loss if math.isfinite(v)]
    acc = history.val_metrics.get("accuracy") if history.val_metrics else None
    return {"stop_reason": history.stop_reason, "stop_step": history.stop_step,
            "train_loss": sum(finite[-50:]) / len(finite[-50:]) if finite else float("nan"),
            "val_loss": history.val_loss[-1] if history.val_loss else None,
            "val_accuracy": acc[-1] if acc else None}


def _lab_fits(demo: Demo, lab) -> bool:
    return ("masking" in demo.make) == (getattr(lab, "masking", None) is not None)


def play_on(demo: Demo, target, *, start: bool = True) -> None:
    """Set ``target`` (a lab, or a panel of ``demo.target``'s class) to the demo's start."""
    if demo.target == "TrainingLab":
        target.max_steps = demo.max_steps
        target.apply_settings(demo.settings)
        if start:
            target.play()
    else:
        apply_keyframe(target, keyframes(demo.settings)[0])


def replay(demo: Demo, target=None, *, device="cpu"):
    """Play ``demo`` to its end, headless and blocking; returns the lab's History, or the panel.

    ``target`` None builds a matching lab or panel from ``demo.make``."""
    from . import loss_shapes, schedules, surfaces
    from .demo_standins import STANDINS
    from .lab import TrainingLab
    if demo.target == "TrainingLab":
        lab = target or TrainingLab(max_steps=demo.max_steps, device=device, **demo.make)
        play_on(demo, lab, start=False)
        return lab.run()
    if target is None:
        classes = {"LossExplorer": loss_shapes.LossExplorer, "OutlierExplorer": loss_shapes.OutlierExplorer,
                   "DescentExplorer": surfaces.DescentExplorer, "SchedulePreviewer": schedules.SchedulePreviewer}
        check_choice("target", demo.target, tuple(classes) + tuple(STANDINS), where="replay")
        target = classes[demo.target](**demo.make) if demo.target in classes else STANDINS[demo.target](device)
    for frame in keyframes(demo.settings):
        apply_keyframe(target, frame)
    return target


def picker_for(panel):
    """``panel`` with a :class:`DemoPicker` above it (a VBox), or None if no demo fits it."""
    picker = DemoPicker(panel)
    if not picker.demos:
        return None
    panel.demos = picker
    if lecture_mode():
        picker.widget.add_class("course-lecture")      # drawn 1.3x larger, like the panel's controls
    return W.VBox([picker.widget, panel.widget], layout=W.Layout(max_width="100%"))


# -- the picker -------------------------------------------------------------------------------------


class DemoPicker:
    """A row above a lab or panel: choose a demo, read its script, Play it.

    For a lab, Play replays the demo's settings string (its changes happen at their steps) and the
    lab's own Pause / Step buttons control it; the lab's run length becomes the demo's
    ``max_steps``, so the run ends where the demo's recorded end state says. For a panel, Play moves the sliders through the
    keyframes every ``interval`` seconds; Pause stops; Step shows the next keyframe. The ``settings``
    box shows the panel's current sliders, to copy into a new demo.

    Args:
        target: a ``TrainingLab`` or a slider panel. interval (float): seconds per keyframe. Default 2.5.
    """

    def __init__(self, target, *, interval: float = 2.5):
        self.target = target
        self.interval = check_number("interval", interval, where="DemoPicker", low=0.0)
        self.is_lab = type(target).__name__ == "TrainingLab"
        name = type(target).__name__
        self.demos = [d for d in DEMOS if d.target == name and (not self.is_lab or _lab_fits(d, target))
                      and (self.is_lab or _fits(target, keyframes(d.settings)))]
        # index=0: ipywidgets 8.1.2 (the pinned one) selects nothing, a blank box, when the first value is None.
        self.choice = W.Dropdown(options=[("choose a demo", None)] + [(f"{d.lesson}: {d.name}", d) for d in self.demos],
                                 index=0, description="demo", layout=W.Layout(width="420px"))
        self.script = W.HTML("")
        self.buttons = {"play": W.Button(description="Play demo", layout=W.Layout(width="100px"))}
        if not self.is_lab:
            self.buttons.update(pause=W.Button(description="Pause", layout=W.Layout(width="80px")),
                                step=W.Button(description="Step", layout=W.Layout(width="80px")))
        for key, b in self.buttons.items():
            b.add_class(f"demo-{key}")
        self.choice.add_class("demo-choice")
        self.choice.observe(lambda ch: self._chosen(ch["new"]), names="value")
        self.buttons["play"].on_click(lambda _: self.play())
        if not self.is_lab:
            self.buttons["pause"].on_click(lambda _: self.pause())
            self.buttons["step"].on_click(lambda _: self.step())
        self.record = W.Button(description="Save GIF", layout=W.Layout(width="90px"),
                               tooltip="save this run (or this demo's keyframes) as an animated GIF")
        self.record.add_class("demo-record")
        self.record.on_click(lambda _: self.save_gif())
        self.saved = W.HTML("")
        row = [self.choice, *self.buttons.values(), self.record, self.saved]
        children = [controls_row(*row, gap="4px 8px"), self.script]
        if not self.is_lab:            # a lab has its own settings box
            self.settings = W.Text(description="settings", layout=W.Layout(width="95%"))
            self.settings.add_class("demo-settings")
            children.append(self.settings)
            for w in target.sliders.values():
                w.observe(lambda _: self._show_settings(), names="value")
            self._show_settings()
        self.widget = W.VBox(children, layout=W.Layout(max_width="100%"))
        self.widget.add_class("course-demos")
        self.gif_frames = 60                # frames of a lab's GIF (about 0.1-0.4 s each to render)
        self._frames: list[dict] = []
        self._next = 0
        self._go = threading.Event()
        self._thread: threading.Thread | None = None

    def _show_settings(self) -> None:
        self.settings.value = panel_settings_string(self.target)

    def _chosen(self, demo) -> None:
        self.pause()
        self.script.value = f"<i>{demo.script}</i>" if demo else ""
        self._frames = keyframes(demo.settings) if demo and not self.is_lab else []
        self._next = 0

    def play(self) -> None:
        """Start the chosen demo (a lab: from step 0; a panel: from its next keyframe)."""
        demo = self.choice.value
        if demo is None:
            self.script.value = "<i>choose a demo first</i>"
            return
        if self.is_lab:
            play_on(demo, self.target)
            return
        if self._next >= len(self._frames):
            self._next = 0
        self._go.set()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="course-demo", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while self._go.is_set() and self._next < len(self._frames):
            self.step()
            t_end = time.perf_counter() + self.interval
            while self._next < len(self._frames) and time.perf_counter() < t_end:
                if not self._go.is_set():
                    return
                time.sleep(0.05)
        self._go.clear()

    def pause(self) -> None:
        self._go.clear()

    def step(self) -> None:
        """Show the next keyframe (a panel); a lab's Step button is the lab's own."""
        if self._next < len(self._frames):
            frame = self._frames[self._next]
            self._next += 1
            apply_keyframe(self.target, frame)

    def save_gif(self, path: str | None = None) -> str:
        """Save the lab's run (or the chosen panel demo's keyframes) as an animated GIF."""
        from .recording import record
        demo = self.choice.value
        if path is None:
            stem = demo.name if demo else ("lab-run" if self.is_lab else type(self.target).__name__)
            path = "".join(c if c.isalnum() else "-" for c in stem.lower()).strip("-") + ".gif"
        n = record(self.target, path, frames=self.gif_frames, demo=None if self.is_lab else demo)
        self.saved.value = f"<small>saved {n} frames to {path}</small>"
        return path

    def show(self) -> DemoPicker:
        display(self.widget)
        return self
