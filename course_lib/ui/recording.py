"""Recorded animations: a lab's run or a panel's demo as an animated GIF (or MP4), for slides and
for students who missed the class.

The frames come from the live figure itself, not from a second plot: a lab's run is replayed
from its recorded History (the curves grow step by step, changes and divergence appear where
they happened), a panel's demo from its keyframes. The last frame is the figure as it stands.
GIFs are written by matplotlib's ``PillowWriter`` (Pillow ships with matplotlib); MP4 needs
ffmpeg on the machine (``matplotlib.animation.writers.is_available("ffmpeg")``).

Example:
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import tempfile, os
    >>> from course_lib.ui.lab import TrainingLab
    >>> lab = TrainingLab("moons", max_steps=60, device="cpu"); _ = lab.run()
    >>> path = os.path.join(tempfile.mkdtemp(), "run.gif")
    >>> lab.export_animation(path, fps=5, frames=6)
    6
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from matplotlib import animation

from .._validation import check_number, check_relation
from .demos import apply_keyframe, keyframes

__all__ = ["record", "record_history", "record_keyframes", "writer_for"]


def writer_for(path, fps: float):
    """matplotlib's writer for ``path``: Pillow for ``.gif``, ffmpeg for ``.mp4`` (if installed)."""
    suffix = Path(path).suffix.lower()
    check_relation(suffix in (".gif", ".mp4"), "the animation's file must end in .gif or .mp4",
                   where="record", path=str(path))
    check_number("fps", fps, where="record", low=0.1, high=60)
    if suffix == ".mp4":
        check_relation(animation.writers.is_available("ffmpeg"),
                       "an .mp4 needs ffmpeg, which is not installed here; save a .gif instead", where="record",
                       path=str(path))
        return animation.FFMpegWriter(fps=fps)
    return animation.PillowWriter(fps=fps)


def _upto(history, k: int):
    """The first ``k`` steps of ``history``, as the plot reads it (steps, losses, events)."""
    last = history.step[k - 1]
    val = [(s, v) for s, v in zip(history.val_step, history.val_loss) if s <= last]
    return SimpleNamespace(step=history.step[:k], train_loss=history.train_loss[:k],
                           val_step=[s for s, _ in val], val_loss=[v for _, v in val],
                           events=[e for e in history.events if e["step"] <= last + 1])


def record_history(fig, plot, history, path, *, fps: float = 10, frames: int = 60) -> int:
    """Replay ``history`` into ``plot`` (a :class:`~course_lib.ui.plotting.LossCurvesPlot` in
    ``fig``), one frame per slice, and save the animation; returns the number of frames.

    The last frame shows the whole run, exactly as the figure shows it afterwards."""
    check_number("frames", frames, where="record", low=1, integer=True)
    check_relation(history is not None and len(history.step) > 0, "there is no run to record yet: train first",
                   where="record")
    writer = writer_for(path, fps)
    n = len(history.step)
    ends = sorted({int(k) for k in np.linspace(1, n, min(frames, n)).round()})
    with writer.saving(fig, str(path), dpi=fig.dpi):
        for k in ends:
            plot.clear_run()
            plot.update(history if k == n else _upto(history, k))
            writer.grab_frame()
    return len(ends)


def record_keyframes(panel, frames: list[dict], path, *, fps: float = 1) -> int:
    """Move ``panel`` through ``frames`` (slider values, as in a demo) and save one frame per
    keyframe; returns the number of frames."""
    check_relation(len(frames) > 0, "a panel's animation needs at least one keyframe", where="record")
    writer = writer_for(path, fps)
    fig = panel.view.fig
    with writer.saving(fig, str(path), dpi=fig.dpi):
        for frame in frames:
            apply_keyframe(panel, frame)
            writer.grab_frame()
    return len(frames)


def record(target, path, *, fps: float | None = None, frames: int = 60, demo=None) -> int:
    """Save ``target``'s run (a ``TrainingLab``) or a demo's keyframes (a slider panel) as an animation.

    Args:
        target: a ``TrainingLab`` (its current run is replayed) or a slider panel (with ``demo``).
        path (str or Path): where to save; ``.gif`` (Pillow) or ``.mp4`` (needs ffmpeg).
        fps (float or None): frames per second; None: 10 for a lab, 1 for a panel's keyframes.
        frames (int): frames of a lab's run (evenly spaced steps; the last is the whole run). Default 60.
        demo (Demo or None): a panel demo whose keyframes to record.

    Returns:
        int: frames written.
    """
    if hasattr(target, "export_animation"):
        return target.export_animation(path, fps=10 if fps is None else fps, frames=frames)
    check_relation(demo is not None, "recording a panel needs demo= (the keyframes to show)", where="record")
    return record_keyframes(target, keyframes(demo.settings), path, fps=1 if fps is None else fps)

