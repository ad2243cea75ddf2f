"""The training lab: sliders, Play / Pause / Step / Reset, and loss curves that redraw live.

TensorFlow Playground resets training whenever anything but the learning rate changes. Here
the learning rate, weight decay, L1 and dropout (and any live setting a task adds, such as a
masking strength) change **while training runs**: the change applies on the next step and is
drawn on the curve as a thin vertical line. Changing the data or the model starts a new run;
the old one stays on the plot, faded (a *ghost*), labelled with its settings.

How it stays responsive: training runs in a background thread (``Play``), and the Jupyter
kernel's main thread keeps receiving slider changes. A change is queued and the training
thread applies it between two steps (``TrainState.set_hyperparams``), so nothing races with
a step. Frames are drawn by the training thread at most every ``min_interval`` seconds and
with at most ``max_share`` of the CPU time (see :class:`course_lib.ui.live.LiveFigure`).

For scripts, tests and notebook checks, :meth:`TrainingLab.run` runs the same thread and waits
for it (blocking, deterministic), and :meth:`TrainingLab.schedule` queues a change for a given step.
A run's settings, including its mid-run changes, are one short string
(:meth:`TrainingLab.settings_string`); pasting it back (:meth:`TrainingLab.apply_settings`)
replays the same seeded run.
"""

from __future__ import annotations

import html
import math
import threading
import time
from typing import Callable
from urllib.parse import urlencode

import ipywidgets as W
from matplotlib.text import Text
import torch
import torch.nn.functional as F

from .._loop import import_optimizer_machinery
from .._validation import Interval, check_choice, check_number, check_relation, validate_params
from ..bottleneck import BottleneckMLP
from ..curves import diagnose
from ..data import make_classification, make_regression
from ..device import resolve_device
from ..metrics import CLASSIFICATION_METRICS
from ..models import MLP
from ..train import History, fit
from .demos import DemoPicker
from .lab_controls import LABEL_STYLE, REG_STEPS, nearest, setting_controls, transport_buttons
from .lab_settings import (DEFAULT_SETTINGS, LAB_TASKS, LIVE_SETTINGS, MASKING_RULE, RESET_SETTINGS, SETTING_RULES,
                           parse_settings)
from .live import LiveFigure
from .panels import controls_row, panel, same_setting, watch
from .plotting import LossCurvesPlot, nice_ceil

__all__ = ["TrainingLab", "LAB_TASKS", "LIVE_SETTINGS", "RESET_SETTINGS", "parse_settings"]

SETTLE_S = 0.25   # a live change from the browser waits this long for the next one (one drag, one change)


def _log_label_rise(ax) -> float:
    """How far the tallest label of a log y-axis (a power of ten, with its superscript) can rise
    above the axes when it sits at the top, as a fraction of the figure's height: half its
    height, measured in the axis's own font (the lecture theme's is larger)."""
    fig = ax.figure
    font = ax.yaxis.get_major_ticks()[0].label1.get_fontproperties()
    probe = Text(0, 0, r"$\mathdefault{10^{-10}}$", fontproperties=font, figure=fig)
    height = probe.get_window_extent(fig.canvas.get_renderer()).height
    return height / 2 / fig.bbox.height


def _step_label_overhang(ax, max_steps: int) -> float:
    """How far the step axis's last tick label (the widest the run can reach, centred on the
    axis's right end) sticks out to the right of the axes, as a fraction of the figure's width,
    measured in the axis's own font (in the lecture theme a "5000" was clipped by 6 px)."""
    fig = ax.figure
    font = ax.xaxis.get_major_ticks()[0].label1.get_fontproperties()
    probe = Text(0, 0, str(int(nice_ceil(max(max_steps, 50)))), fontproperties=font, figure=fig)
    return probe.get_window_extent(fig.canvas.get_renderer()).width / 2 / fig.bbox.width


class TrainingLab:
    """A slider panel around :func:`course_lib.fit`, with a live loss plot and diagnosis.

    Args:
        task (str): ``"spirals"``, ``"moons"``, ``"circles"`` (classification, cross-entropy)
            or ``"regression"`` (a noisy polynomial, MSE). Default ``"spirals"``.
        lr, weight_decay, l1, dropout (float): starting values of the live settings.
        width, depth (int): the MLP. noise (float): data noise. batch_size (int).
        train_fraction (float): share of the ``n_samples`` examples used for training (the
            rest is the validation set), in [0.1, 0.9].
        optimizer (str): ``"adam"``, ``"sgd"``, ``"momentum"`` or ``"adamw"``. Default ``"adam"``.
        max_steps (int): steps per run. Default 3000.
        eval_every (int): steps between validation points. Default 25.
        seed (int): seeds data, initial weights, batch order and dropout. Default 0.
        device: default CUDA if present, else MPS, else CPU.
        masking (float or None): masking strength in [1e-3, 10]: the model gets a Gaussian
            bottleneck (:class:`~course_lib.models.BottleneckMLP`) and the loss adds
            ``masking * KL``; the slider changes it while training runs. None: no bottleneck.
        live_settings (dict): extra settings a task reads every step, ``name -> (widget, apply)``
            where ``apply(value)`` makes the change; each change is marked on the curve.
        min_interval (float): seconds between frames. Default 0.08.
        max_share (float): at most this share of the CPU time goes to drawing. Default 0.06: a
            frame sends only the moving curves, as SVG the page draws (about 2 ms on a quiet
            machine), so frames come every ``min_interval`` (10-12 a second) and training keeps
            about 94% of its speed; the axes, redrawn when their limits move (30-50 ms), hold the
            next frames back until that time is paid; a slider change draws at once. (At 0.08
            the browser showed 11-12 frames/s, and training kept 0.89-0.93 of its speed.)

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> lab = TrainingLab("moons", max_steps=200, device="cpu")
        >>> lab.schedule(100, lr=0.1)           # as if the slider moved at step 100
        >>> h = lab.run()
        >>> h.lr[99], h.lr[100]
        (0.01, 0.1)
        >>> lab.settings_string()
        'task=moons&optimizer=adam&lr=0.01&weight_decay=0&l1=0&dropout=0&width=32&depth=2&noise=0.2&batch_size=32&train_fraction=0.5&n_samples=400&seed=0&changes=100:lr=0.1'
    """

    def __init__(self, task: str = "spirals", *, lr: float = 0.01, weight_decay: float = 0.0, l1: float = 0.0,
                 dropout: float = 0.0, width: int = 32, depth: int = 2, noise: float = 0.2, batch_size: int = 32,
                 train_fraction: float = 0.5, n_samples: int = 400, optimizer: str = "adam",
                 max_steps: int = 3000, eval_every: int = 25, seed: int = 0, device=None,
                 masking: float | None = None, live_settings: dict | None = None,
                 min_interval: float = 0.08, max_share: float = 0.06,
                 figsize=(8, 3.6)):
        where = "TrainingLab"
        self.max_steps = check_number("max_steps", max_steps, where=where, low=1, integer=True)
        self.eval_every = check_number("eval_every", eval_every, where=where, low=1, integer=True)
        self.device = device
        if torch.device(resolve_device(device, where=where)).type == "cpu":
            # Small models: one thread is as fast as two, and leaves a core for the browser
            # and the Jupyter server (with two threads busy-waiting, steps got 10x slower).
            torch.set_num_threads(1)
        import_optimizer_machinery()                  # not at the first Play (about 2 s; see there)
        self.settings = self._check(dict(task=task, optimizer=optimizer, lr=lr, weight_decay=weight_decay, l1=l1, dropout=dropout,
                                         width=width, depth=depth, noise=noise, batch_size=batch_size,
                                         train_fraction=train_fraction, n_samples=n_samples, seed=seed))
        self.live_settings = dict(live_settings or {})
        self.error: BaseException | None = None          # what stopped the last run, if an error did
        if masking is not None:
            MASKING_RULE.check("masking", masking, where=where)
            self.masking = float(masking)
            slider = W.FloatLogSlider(value=masking, base=10, min=-3, max=1, description="masking strength",
                                      readout_format=".1e", style=LABEL_STYLE)
            self.live_settings["masking"] = (slider, lambda v: setattr(self, "masking", float(v)))
        else:
            self.masking = None
        self.history: History | None = None
        self.runs: list[tuple[str, History]] = []        # finished or abandoned runs (the ghosts)
        self._scheduled: dict[int, dict] = {}            # step -> changes (replay, tests)
        self.state = None
        self._changes: list[tuple[int, str, float]] = []  # what was applied, for settings_string
        self._pending: dict = {}                          # slider changes waiting for the next step
        self._lock = threading.Lock()                     # guards _pending
        self._draw_lock = threading.Lock()                # one drawer at a time
        self._go = threading.Event()                      # set = the thread may train
        self._paused = threading.Event()                  # set = the thread is waiting or done, all drawn
        self._step_budget: int | None = None              # Step button: steps left before pausing
        self._stop = False
        self._thread: threading.Thread | None = None
        self._force_frame = False
        self._last_diag = 0.0
        self._last_status = 0.0
        self._diag_cpu = self._diag_cost = 0.0           # CPU s of the last diagnosis (this frame's / any)
        self.change_latency: list[float] = []             # seconds from slider to applied, measured

        # The figure and its artists, made once.
        self.view = LiveFigure(figsize=figsize, min_interval=min_interval, max_share=max_share,
                               curves_in_browser=True)   # the page draws the curves: 10+ frames/s
        self.plot = LossCurvesPlot(self.view.axes, log_y=True, smooth=0.9, max_ghosts=3, run_length=self.max_steps)
        self.view.set_moving(self.plot.moving, self.plot.overlays)   # frames redraw the curves only
        # The layout is computed once, with the first frame's tick labels ("0.0" ... "1.0"); keep
        # room for the wider ones that come later ("20000" at the right, "10^-1" at the left) and
        # the taller ones: a "10^7" at the top of the loss axis rose above the figure by 3 px.
        engine = self.view.fig.get_layout_engine()
        if engine is not None and hasattr(engine, "set"):
            top = _log_label_rise(self.view.axes)
            right = max(0.02, _step_label_overhang(self.view.axes, self.max_steps) + 0.005)
            engine.set(rect=(0.015, 0, 1 - 0.015 - right, 1 - top))   # (left, bottom, width, height)
        self._build_widgets()
        self._new_run()

    # -- settings ---------------------------------------------------------------------------

    @staticmethod
    def _check(s: dict, where: str = "TrainingLab") -> dict:
        validate_params(SETTING_RULES, s, where=where)
        return dict(s)

    def _live_rule(self, name: str):
        """What a live setting may be: its slider's range (a task's own control: its min and max)."""
        if name in SETTING_RULES:
            return SETTING_RULES[name]
        if name == "masking" and self.masking is not None:
            return MASKING_RULE
        w = self.live_settings[name][0]
        if isinstance(w, W.FloatLogSlider):
            return Interval(float, w.base ** w.min, w.base ** w.max)
        if hasattr(w, "min") and hasattr(w, "max"):
            return Interval(float, w.min, w.max)
        return Interval(float)                         # any finite number

    def _check_change(self, step, name: str, value, where: str) -> None:
        check_number("step", step, where=where, low=1, high=self.max_steps, integer=True)
        check_choice("change", name, LIVE_SETTINGS + tuple(self.live_settings), where=where)
        self._live_rule(name).check(name, value, where=where)

    def settings_string(self) -> str:
        """The run's settings and its mid-run changes as one short, copyable string."""
        # Changes of the *current* run: the start values above plus these replay it exactly.
        start = self._start_settings if self.history is not None else self.settings
        pairs = [(k, f"{v:g}" if isinstance(v, float) else str(v)) for k, v in start.items()]
        if self._changes:
            pairs.append(("changes", ";".join(f"{s}:{n}={v:g}" for s, n, v in self._changes)))
        return urlencode(pairs, safe=":;=")

    def apply_settings(self, text: str) -> None:
        """Set every slider from a :meth:`settings_string` and start a new run that replays it
        (the same seed, the same changes at the same steps). Keys left out take their defaults.

        Every value is checked before anything changes: against its slider's range, and each
        change's step against ``[1, max_steps]`` (see :func:`parse_settings`).
        """
        where = "TrainingLab.apply_settings"
        parsed = parse_settings(text, live=LIVE_SETTINGS + tuple(self.live_settings), where=where)
        if "masking" in parsed and self.masking is None:
            check_relation(False, "the settings string has unknown keys", where=where, unknown=["masking"])
        masking = parsed.pop("masking", self.masking)
        if masking is not None:
            MASKING_RULE.check("masking", masking, where=where)
        changes = parsed.pop("changes", [])
        new = self._check({**DEFAULT_SETTINGS, **parsed}, where)   # a missing key means its default, not "as now"
        scheduled: dict[int, dict] = {}
        for step, name, value in changes:
            self._check_change(step, name, value, where)
            scheduled.setdefault(step, {})[name] = value
        self.pause()
        self._join()
        self._quiet = True
        try:
            for k, v in new.items():
                if k in self.sliders:
                    w = self.sliders[k]
                    w.value = nearest(REG_STEPS, v) if isinstance(w, W.SelectionSlider) else v
                    self._accepted[k] = w.value
        finally:
            self._quiet = False
        self.settings = new
        if masking is not None:
            self._quiet = True
            self.sliders["masking"].value = masking
            self._quiet = False
            self.masking = masking
            self._accepted["masking"] = masking
        self._new_run()
        self._scheduled = scheduled

    def schedule(self, step: int, **changes: float) -> None:
        """Queue live changes to apply from ``step`` on (what a slider does, at an exact step).

        ``step`` is in ``[1, max_steps]`` and each value in its slider's range. After a run has
        ended, the change belongs to the next run (which this prepares, as Play would).
        """
        for name, value in changes.items():
            self._check_change(step, name, value, "TrainingLab.schedule")
        if self.history is not None and self.history.stop_reason != "running":
            self._join()
            self._new_run()                            # the last run ended: the change is for the next
        if self.state is not None:                     # mid-run: the steps up to the next one are decided
            check_number("step", step, where="TrainingLab.schedule", low=self.state.step + 2, high=self.max_steps,
                         integer=True)
        self._scheduled.setdefault(step, {}).update({k: float(v) for k, v in changes.items()})

    # -- widgets ------------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        # 1. The settings' controls (lab_controls), each wired to _on_slider.
        self.sliders = setting_controls(self.settings, {n: w for n, (w, _) in self.live_settings.items()})
        self._accepted: dict = {}                     # the value each control stands for now
        for name, w in self.sliders.items():
            self._accepted[name] = w.value
            watch(w, lambda ch, name=name: self._on_slider(name, ch["new"], ch["from_browser"]))
        self._quiet = False
        # 2. The buttons, the view's options, the texts.
        self.buttons = transport_buttons()
        self.buttons["play"].on_click(lambda _: self.play())
        self.buttons["pause"].on_click(lambda _: self.pause())
        self.buttons["step"].on_click(lambda _: self.step(10))
        self.buttons["reset"].on_click(lambda _: self.reset())
        self.log_y = W.Checkbox(value=True, description="log loss axis")
        self.smooth = W.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="smoothing",
                                    style=LABEL_STYLE)
        self.log_y.observe(lambda ch: self._set_view(log_y=ch["new"]), names="value")
        self.smooth.observe(lambda ch: self._set_view(smooth=ch["new"]), names="value")
        self.status = W.HTML("ready")
        self.run_label = W.HTML("")
        self.run_label.add_class("lab-run")
        self.status.add_class("lab-status")
        self.diagnosis = W.HTML("")
        self.diagnosis.add_class("lab-diagnosis")
        self.share = W.Text(description="settings", layout=W.Layout(width="95%"), style=LABEL_STYLE)
        self.share.add_class("lab-settings")
        apply = W.Button(description="Replay", layout=W.Layout(width="80px"))
        apply.on_click(lambda _: self.apply_settings(self.share.value))
        live_names = list(LIVE_SETTINGS) + list(self.live_settings)
        reset_names = [n for n in self.sliders if n not in live_names]
        # 3. Controls in wrapping columns above the plot, never beside or under it (the plot shrinks
        # with the output area; see ui.panels.panel).
        self.demos = DemoPicker(self)                 # prepared demos and the Save GIF button
        self.widget = panel(
            W.VBox([
                self.demos.widget,
                controls_row(*self.buttons.values(), self.status, gap="4px 8px"),
                controls_row(
                    W.VBox([W.HTML("<b>change while training</b>")] + [self.sliders[n] for n in live_names]
                           + [self.log_y, self.smooth]),
                    W.VBox([W.HTML("<b>start a new run</b>")] + [self.sliders[n] for n in reset_names])),
                self.run_label,
            ]),
            self.view.widget,
            self.diagnosis,
            W.HBox([self.share, apply], layout=W.Layout(max_width="100%")),
        )

    def show(self) -> "TrainingLab":
        from IPython.display import display
        display(self.widget)
        self._draw(force=True)
        with self._draw_lock:
            self.view.send_first_frame()    # seen at once, also while later cells still run
        return self

    def export_animation(self, path, *, fps: float = 10, frames: int = 60) -> int:
        """Save the current run as an animated GIF (or MP4 with ffmpeg), replayed from its History
        in this lab's own figure; returns the number of frames (see :mod:`course_lib.ui.recording`)."""
        from .recording import record_history
        self.pause()
        self.wait()
        with self._draw_lock:
            return record_history(self.view.fig, self.plot, self.history, path, fps=fps, frames=frames)

    def _on_slider(self, name: str, value, from_browser: bool = False) -> None:
        if self._quiet:
            return
        if same_setting(self.sliders[name], value, self._accepted.get(name)):
            return                                    # the browser's rounding of the value in use: no change
        self._accepted[name] = value
        if name in LIVE_SETTINGS or name in self.live_settings:
            value = float(value)
            if name in LIVE_SETTINGS:
                self.settings[name] = value
            if self.running:
                with self._lock:                      # applied by the training thread, next step
                    now = time.perf_counter()
                    # From the browser, a change waits until the slider settles (arrow keys held,
                    # a drag's last values); from Python it applies at the next step.
                    self._pending[name] = (value, now, now + SETTLE_S if from_browser else 0.0)
            else:
                # Paused mid-run: applied when training resumes (no latency to measure).
                if self.history is not None and len(self.history):
                    with self._lock:
                        self._pending[name] = (value, None, 0.0)
                elif name in LIVE_SETTINGS:
                    self._start_settings[name] = value
                else:
                    self.live_settings[name][1](value)
            return
        # Data or model changed: the old run becomes a ghost, a new one starts where it was.
        was_running = self.running
        self.settings[name] = value
        self.pause()
        self._join()
        self._new_run()
        if was_running:
            self.play()

    def _set_view(self, **kw) -> None:
        with self._draw_lock:
            if "log_y" in kw:
                self.plot.set_log_y(kw["log_y"])
            if "smooth" in kw:
                self.plot.set_smooth(kw["smooth"])
        self._force_frame = True
        if not self.running:
            self._draw(force=True)

    # -- runs ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._go.is_set()

    def _new_run(self) -> None:
        """Keep the current run as a ghost (if it trained at all); build data and model."""
        if self.history is not None and len(self.history):
            label = self._diff_label(self._start_settings, self.settings)
            self.runs.append((self._label(self._start_settings), self.history))
            with self._draw_lock:
                self.plot.add_ghost(self.history, label)
        s = self.settings
        if s["task"] == "regression":
            self.data = make_regression(s["n_samples"], kind="polynomial", noise=s["noise"],
                                        val_fraction=1 - s["train_fraction"], seed=s["seed"])
            self.loss_fn, self.metrics, out = "mse", None, 1
        else:
            n_classes = 3 if s["task"] == "spirals" else 2
            self.data = make_classification(s["n_samples"], kind=s["task"], noise=s["noise"], n_classes=n_classes,
                                            val_fraction=1 - s["train_fraction"], seed=s["seed"])
            self.loss_fn, self.metrics, out = "cross_entropy", CLASSIFICATION_METRICS, n_classes
        torch.manual_seed(s["seed"])
        if self.masking is None:
            self.model = MLP(self.data.X_train.shape[1], out, width=s["width"], depth=s["depth"], dropout=s["dropout"])
        else:
            self.model = BottleneckMLP(self.data.X_train.shape[1], out, width=s["width"], depth=s["depth"],
                                       dropout=s["dropout"])
            self.loss_fn = self._masked_loss(self.loss_fn)
        self.baseline = self.data.baseline_loss()
        # Changes scheduled before a run trained at all stay for the run that replaces it.
        kept = self._scheduled if self.history is None or not len(self.history) else {}
        self.history = None
        self.state = None
        self._changes, self._scheduled, self._pending = [], kept, {}
        self._start_settings = dict(s)
        if self.masking is not None:
            self._start_settings["masking"] = self.masking
        self._stop = False
        self._go.clear()
        with self._draw_lock:
            self.plot.clear_run()
        self.run_count = getattr(self, "run_count", 0) + 1
        self.run_label.value = f"<small>run {self.run_count}: {self._label(self._start_settings)}</small>"
        self.status.value = "ready: press Play"
        self.diagnosis.value = ""
        self.share.value = self.settings_string()
        self._draw(force=True)

    def _masked_loss(self, name: str) -> Callable:
        """Task loss + masking * KL while training; the task loss alone when evaluating, so
        validation curves stay comparable across strengths."""
        task_loss = F.cross_entropy if name == "cross_entropy" else F.mse_loss

        def loss(y_hat, y):
            base = task_loss(y_hat, y)
            return base + self.masking * self.model.kl if self.model.training else base
        loss.__name__ = f"{name} + masking * KL"
        return loss

    @staticmethod
    def _diff_label(old: dict, new: dict) -> str:
        """What differed in the run that becomes a ghost: short enough for a legend entry."""
        def same(a, b):  # slider floats come back as 0.8000000000000002
            return math.isclose(a, b, rel_tol=1e-9) if isinstance(a, float) and isinstance(b, float) else a == b
        diff = [f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in old.items()
                if k in new and not same(new[k], v)]
        return ", ".join(diff) if diff else "same settings"

    @staticmethod
    def _label(s: dict) -> str:
        masking = f", masking {s['masking']:.2g}" if "masking" in s else ""
        return (f"{s['task']}, {s['optimizer']} lr {s['lr']:.2g}, wd {s['weight_decay']:.2g}, L1 {s['l1']:.2g}, "
                f"dropout {s['dropout']:.2g}{masking}, {s['depth']}x{s['width']}, noise {s['noise']:.2g}, "
                f"batch {s['batch_size']}, train {s['train_fraction']:.0%}")

    def run(self, num_steps: int | None = None) -> History:
        """Train ``num_steps`` more steps (None: to the end of the run) and wait; returns the History.

        The same code path as Play, only waited for: deterministic, for scripts, tests and the
        checks at the end of a notebook.
        """
        check_number("num_steps", num_steps, where="TrainingLab.run", low=1, integer=True, allow_none=True)
        self._start(num_steps)
        self.wait()
        return self.history

    def play(self) -> None:
        """Start (or continue) training in the background; the kernel stays free for sliders."""
        self._start(None)

    def pause(self) -> None:
        self._go.clear()

    def step(self, n: int = 10) -> None:
        """Train ``n`` more steps in the background, then pause."""
        check_number("n", n, where="TrainingLab.step", low=1, integer=True)
        self._start(n)

    def _start(self, budget: int | None) -> None:
        if self.history is not None and self.history.stop_reason not in ("running",):
            self._join()
            self._new_run()                           # the last run ended: start a new one
        self._step_budget = budget
        self._paused.clear()
        self._go.set()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._train, name="course-lab", daemon=True)
            self._thread.start()

    def reset(self) -> None:
        """Stop, keep this run as a ghost, and prepare a fresh one with the current settings."""
        self.pause()
        self._join()
        self._new_run()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background run has paused (and drawn) or ended."""
        t_end = None if timeout is None else time.perf_counter() + timeout
        while self._thread is not None and self._thread.is_alive() and not self._paused.is_set():
            if t_end is not None and time.perf_counter() > t_end:
                break
            self._paused.wait(0.2)   # long: each wake-up takes the GIL from the training thread

    def _join(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._stop = True
            self._go.set()                            # release a paused thread so it can stop
            self._thread.join()
            self._go.clear()
        self._thread = None

    def _train(self) -> None:
        """The body of a run: ``fit`` with a callback that applies changes, pauses and draws."""
        if self.history is not None and self.history.stop_reason != "running":
            return                                    # finished: Reset or Play starts a new run
        s = self._start_settings
        # Numbers below 1.2e-38 (float32 "denormals") flushed to zero in this thread, the lab's own
        # (the CPU flag is per thread: notebook cells and fit() elsewhere keep full IEEE
        # arithmetic). Why: a lab left playing trains long enough for Adam's squared-gradient
        # averages to reach such numbers, which a CPU handles many times slower; at 200,000 steps
        # the run was 15% slower than the same training started afresh, and 3% with the flush
        # (measured side by side). Values that small change no curve a learner can see.
        torch.set_flush_denormal(True)
        self.status.value = "training..."
        self.error = None
        self.view.rest()                              # full drawing allowances for this run
        try:
            fit(self.model, self.data, loss_fn=self.loss_fn, optimizer=s["optimizer"], lr=s["lr"],
                weight_decay=s["weight_decay"], l1=s["l1"], dropout=s["dropout"], batch_size=s["batch_size"],
                num_steps=self.max_steps, eval_every=self.eval_every, metrics=self.metrics, baseline=self.baseline,
                seed=s["seed"], device=self.device, on_step=self._on_step, on_eval=self._on_eval)
        except Exception as err:                      # noqa: BLE001 - shown in the lab, never a lost thread traceback
            self._record_error(err)
        finally:
            self._go.clear()
            try:
                self._finish()
            finally:
                self._paused.set()                    # wait() returns now, not at its next 0.2 s look

    def _record_error(self, err: Exception) -> None:
        """An error in the training thread ends the run as a recorded result: ``stop_reason``
        ``"error"``, an ``"error"`` event with the message, and the status line says it."""
        self.error = err
        if self.state is not None:
            try:
                self.state.flush()                     # the steps trained before the error, read back
            except Exception:                          # noqa: BLE001 - the device itself may be what failed
                pass
        if self.history is None:
            self.history = History(baseline=self.baseline)
        h = self.history
        step = h.step[-1] + 1 if len(h) else 0
        h.stop_reason, h.stop_step = "error", step
        h.add_event(step, "error", f"{type(err).__name__}: {err}")

    def _on_eval(self, state) -> None:
        self.history = state.history                  # the History fit fills in, live

    def _on_step(self, state) -> None:
        self.state, self.history = state, state.history
        nxt = state.step + 1                          # the step the changes below apply to
        # 1. Changes: scheduled ones at their step, slider ones at the next step. (This runs
        #    every step: the common case, nothing pending, costs two truth tests.)
        pending, changes = {}, {}
        if self._pending:
            now = time.perf_counter()
            with self._lock:
                pending = {k: p for k, p in self._pending.items() if p[2] <= now}
                for k in pending:
                    del self._pending[k]
            changes = {k: v for k, (v, _, _) in pending.items()}
        if self._scheduled and nxt in self._scheduled:
            changes.update(self._scheduled.pop(nxt))
        if changes:
            self._apply(state, changes, nxt)
            for _, t, _ in pending.values():
                if t is not None:
                    self.change_latency.append(time.perf_counter() - t)
            self._force_frame = True
        if self._stop:
            state.request_stop("callback")
            return
        # 2. Step button: count down, then pause.
        if self._step_budget is not None:
            self._step_budget -= 1
            if self._step_budget <= 0:
                self._step_budget = None
                self._go.clear()
                self._force_frame = True
        # 3. A frame, if one is due (or forced by a change).
        if self._force_frame or self.view.due():
            self._draw(force=self._force_frame, state=state)
        # 4. Paused: wait here, in the training thread, until Play/Step/Reset.
        if not self._go.is_set():
            self._draw(force=True, state=state)
            self.status.value = f"paused at step {state.step + 1}"
            self._paused.set()
            while not self._go.is_set():
                self._go.wait(0.05)
            self._paused.clear()
            self.view.rest()
            if self._stop:
                state.request_stop("callback")

    def _apply(self, state, changes: dict, step: int) -> None:
        std = {k: v for k, v in changes.items() if k in LIVE_SETTINGS}
        if std:
            state.set_hyperparams(**std)
        for name, value in changes.items():
            if name in self.live_settings:
                self.live_settings[name][1](value)
                state.history.add_event(step, "change", f"{name} -> {value:.3g}")
            self._changes.append((step, name, value))
        self.share.value = self.settings_string()

    def _draw(self, force: bool = False, state=None) -> None:
        t0 = time.process_time()                      # the frame's CPU time counts for the share
        with self._draw_lock:
            if state is not None:
                state.flush()
            if self.history is not None:
                self.plot.update(self.history)
                self._update_text(state)
            self.plot.legend()
            # The diagnosis paces itself (see _update_text): it is not part of the frame's cost.
            drawn = self.view.refresh(force=force, started=t0 + self._diag_cpu)
            if drawn:
                self._force_frame = False

    def _update_text(self, state) -> None:
        h = self.history
        if not len(h):
            return
        step = h.step[-1] + 1
        last = next((v for v in reversed(h.train_loss) if math.isfinite(v)), float("nan"))
        val = f", validation {h.val_loss[-1]:.3g}" if h.val_loss else ""
        acc = f", accuracy {h.val_metrics['accuracy'][-1]:.1%}" if h.val_metrics.get("accuracy") else ""
        now = time.perf_counter()
        # The status line at most 4 times a second: nobody reads a number that changes 12 times a
        # second, and each change is one more message through the kernel, the server and the page.
        if state is not None and now - self._last_status >= 0.25:
            self._last_status = now
            self.status.value = f"training: step {step}, loss {last:.3g}{val}{acc}"
        self._diag_cpu = 0.0
        # diagnose reads the whole run (0.3 ms at 2,000 steps, 20 ms at 150,000, quiet machine): at
        # most every 2 s and never more than 1% of the time. (At 5% a lab left playing spent more
        # of its frames' time on the diagnosis than on the curves, in the training thread.)
        if len(h) >= 40 and (now - self._last_diag > max(2.0, 100 * self._diag_cost) or state is None):
            self._last_diag = now
            cpu = time.process_time()
            try:
                d = diagnose(h, baseline=self.baseline)
                self.diagnosis.value = f"<b>{d.verdict}</b>: {d.message} <small>{_evidence(d)}</small>"
            except ValueError:
                pass
            self._diag_cpu = time.process_time() - cpu
            self._diag_cost = self._diag_cpu

    def _finish(self) -> None:
        h = self.history
        if h is None:
            return
        self._draw(force=True)
        step = h.step[-1] + 1 if len(h) else 0
        if h.stop_reason in ("diverged", "exploded"):
            self.status.value = f"diverged at step {h.stop_step}: the loss became too large or NaN (lower the LR)"
        elif h.stop_reason == "completed":
            self.status.value = f"finished {step} steps: press Play for a new run, or move a slider"
        elif h.stop_reason == "callback":
            self.status.value = f"stopped at step {step}"
        elif h.stop_reason == "error":
            self.status.value = f"stopped by an error at step {h.stop_step}: {html.escape(h.events[-1]['text'])}"
        self.share.value = self.settings_string()


def _evidence(d) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.evidence.items())
