"""Recorded animations: the file exists, has the frames asked for (Pillow reads n_frames), and
its last frame is the final plot (a render of the lab's figure at the same size, after export)."""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib import animation
from PIL import Image

from course_lib.ui import demos
from course_lib.ui.lab import TrainingLab
from course_lib.ui.recording import record


def _render(fig) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=float)


def _frame(path, i) -> np.ndarray:
    with Image.open(path) as im:
        im.seek(i)
        return np.asarray(im.convert("RGB"), dtype=float)


@pytest.fixture(scope="module")
def lab():
    lab = TrainingLab("moons", max_steps=120, eval_every=20, device="cpu")
    lab.schedule(60, lr=0.1)
    lab.run()
    yield lab
    lab.view.close()


def test_lab_run_exports_a_gif_whose_last_frame_is_the_final_plot(lab, tmp_path):
    path = tmp_path / "run.gif"
    n = lab.export_animation(path, fps=8, frames=12)
    assert n == 12 and path.exists()
    with Image.open(path) as im:
        assert im.n_frames == 12
        assert im.size == tuple(lab.view.fig.canvas.get_width_height())
    final = _render(lab.view.fig)
    last, first = _frame(path, 11), _frame(path, 0)
    assert last.shape == final.shape
    # A GIF has 256 colours: the last frame matches the final plot up to that quantisation,
    # and far better than the first frame does (the comparison can tell frames apart).
    err_last, err_first = np.abs(last - final).mean(), np.abs(first - final).mean()
    assert err_last < 1.0, err_last
    assert err_first > 5 * err_last + 0.5, (err_first, err_last)


def test_frames_follow_the_run(lab, tmp_path):
    """Fewer frames than steps: evenly spaced; more frames than steps: one per step."""
    assert record(lab, tmp_path / "a.gif", frames=3) == 3
    short = TrainingLab("moons", max_steps=5, device="cpu")
    short.run()
    assert short.export_animation(tmp_path / "b.gif", frames=50) == 5
    with Image.open(tmp_path / "b.gif") as im:
        assert im.n_frames == 5
    short.view.close()


def test_panel_demo_records_one_frame_per_keyframe(tmp_path):
    demo = next(d for d in demos.DEMOS if d.target == "DescentExplorer")
    from course_lib.ui.surfaces import DescentExplorer
    panel = DescentExplorer()
    n = record(panel, tmp_path / "gd.gif", demo=demo)
    assert n == len(demos.keyframes(demo.settings))
    with Image.open(tmp_path / "gd.gif") as im:
        assert im.n_frames == n
    final = _render(panel.view.fig)
    assert np.abs(_frame(tmp_path / "gd.gif", n - 1) - final).mean() < 1.0
    panel.view.close()


def test_picker_button_saves_a_gif(lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lab.demos.choice.value = None
    lab.demos.gif_frames = 6
    lab.demos.record.click()
    assert "saved 6 frames" in lab.demos.saved.value
    with Image.open(tmp_path / "lab-run.gif") as im:
        assert im.n_frames == 6


def test_messages(lab, tmp_path):
    with pytest.raises(ValueError, match=r"must end in .gif or .mp4.*path='.*run.avi'"):
        lab.export_animation(tmp_path / "run.avi")
    with pytest.raises(ValueError, match="'frames'"):
        lab.export_animation(tmp_path / "run.gif", frames=0)
    fresh = TrainingLab("moons", max_steps=10, device="cpu")
    with pytest.raises(ValueError, match="there is no run to record yet"):
        fresh.export_animation(tmp_path / "x.gif")
    fresh.view.close()
    if not animation.writers.is_available("ffmpeg"):
        with pytest.raises(ValueError, match="needs ffmpeg"):
            lab.export_animation(tmp_path / "run.mp4")
