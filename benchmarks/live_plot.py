"""What does the live plot cost, and how fast does a slider answer?

Three measurements, each side by side in one run (noisy machines: ratios and medians, never a
single timing):

1. ``throughput_ratio_live_over_off``: steps/s of the training lab with its live plot on
   (headless, at the lab's default redraw rate: frames at most every 0.08 s and at most
   ``max_share`` of the wall time) over steps/s of the *same* training with no plot and no
   callbacks at all (a plain ``fit``: same data, model, seed, batches). Runs alternate
   on/off, ``--repeats`` times; the ratio of medians is printed. Target >= 0.90.
2. ``slider_to_first_frame_ms_median``: while the lab trains in its background thread, a slider
   is moved from Python (the way the Jupyter kernel's thread delivers a browser's change);
   measured from the assignment to the end of the first frame drawn after the change was
   applied, over ``--changes`` changes. Target <= 150 ms.
3. ``frame_ms_5000_points_median``: the kernel's time for one frame of the lab's plot with
   5,000-step curves, as the lab makes it in a notebook: moving the artists and building the SVG
   of the curves the browser draws over the still picture (``live_svg``). Target <= 30 ms. Beside
   it: ``still_picture_ms_median`` (the still picture redrawn and encoded, which happens only when
   the axes change), and the older ways: blitting in the kernel plus a PNG, and a full redraw.
4. With Chromium and Playwright present (``--no-browser`` skips it): ``browser_frames_per_second``,
   frames the page draws while the lab trains in JupyterLab, and
   ``throughput_ratio_live_over_off_browser``, the lab's steps/s there over a plain ``fit`` in the
   same kernel, 36 pairs of 3 s in alternating order (``browser_frames.py``). Targets >= 10 and >= 0.90.
   Beside them, ``cpu_cores_*_windows_median``: the CPU cores the kernel, the Jupyter server and
   Chromium used during the live and the no-plot windows (is the page's work taking training's core?),
   and ``throughput_ratio_browser_90pct_interval``, a bootstrap interval of the ratio over the pairs (how
   far one run pins it). ``--browser-split`` adds ``throughput_ratio_lab_without_frames_browser``: the
   same measurement with the lab's frames off, which splits the gap into the lab's loop and its frames.

Run: ``.venv/bin/python benchmarks/live_plot.py [--repeats R] [--steps N] [--changes K]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from course_lib import fit  # noqa: E402
from course_lib.ui.lab import TrainingLab  # noqa: E402
from course_lib.ui.plotting import LossCurvesPlot  # noqa: E402
from course_lib.train import History  # noqa: E402
from course_lib.ui import live  # noqa: E402
from course_lib.ui.live import LiveFigure, _png  # noqa: E402

SETTINGS = dict(task="spirals", width=64, depth=2, noise=0.05, n_samples=1000, train_fraction=0.8, lr=0.01)


def _lab(steps: int) -> TrainingLab:
    # Built as in a notebook (not headless): every frame makes the SVG and, when the axes
    # change, the still picture that the page would receive.
    real, live.outside_kernel = live.outside_kernel, lambda: False
    try:
        return TrainingLab(**SETTINGS, max_steps=steps, eval_every=25, device="cpu")
    finally:
        live.outside_kernel = real


def _off(lab: TrainingLab, steps: int) -> float:
    """The same run as the lab's, as a plain fit: no callbacks, no plot."""
    s = lab.settings
    torch.manual_seed(s["seed"])
    from course_lib.models import MLP
    model = MLP(2, 3, width=s["width"], depth=s["depth"])
    t = time.perf_counter()
    fit(model, lab.data, loss_fn="cross_entropy", optimizer=s["optimizer"], lr=s["lr"], batch_size=s["batch_size"],
        num_steps=steps, eval_every=25, metrics=lab.metrics, baseline=lab.baseline, seed=s["seed"], device="cpu")
    return steps / (time.perf_counter() - t)


def _on(lab: TrainingLab, steps: int) -> tuple[float, int]:
    lab.reset()
    frames = lab.view.frames
    t = time.perf_counter()
    lab.run()
    return steps / (time.perf_counter() - t), lab.view.frames - frames


def throughput(repeats: int, steps: int) -> dict:
    lab = _lab(steps)
    _off(lab, 200), _on(lab, steps)                  # warm-up (first-call costs), untimed
    on, off, frames = [], [], []
    for i in range(repeats):
        order = (("on", "off") if i % 2 == 0 else ("off", "on"))
        for kind in order:
            if kind == "on":
                r, f = _on(lab, steps)
                on.append(r)
                frames.append(f)
            else:
                off.append(_off(lab, steps))
    return dict(on=on, off=off, frames=frames, ratio=statistics.median(on) / statistics.median(off))


def slider_latency(changes: int) -> list[float]:
    lab = _lab(10**7)
    drawn: list[float] = []
    real_refresh = lab.view.refresh

    def timed_refresh(force=False, **kw):
        ok = real_refresh(force, **kw)
        if ok:
            drawn.append(time.perf_counter())
        return ok

    lab.view.refresh = timed_refresh
    lab.play()
    time.sleep(0.5)                                  # let it reach steady state
    out = []
    values = [0.02, 0.005] * (changes // 2 + 1)
    for v in values[:changes]:
        n_events = len(lab.history.events)
        t0 = time.perf_counter()
        lab.sliders["lr"].value = v
        # the first frame drawn after the training thread applied the change
        deadline = t0 + 10
        while len(lab.history.events) == n_events:
            time.sleep(0.0005)
            if time.perf_counter() > deadline:
                raise RuntimeError("the slider change was not applied within 10 s")
        applied = time.perf_counter()
        while not drawn or drawn[-1] < applied:
            time.sleep(0.0005)
            if time.perf_counter() > deadline:
                raise RuntimeError("no frame within 10 s of the slider change")
        out.append(1000 * (drawn[-1] - t0))
        time.sleep(0.2)
    lab.pause()
    lab.reset()
    return out


def frame_cost(repeats: int = 30, n: int = 5000, mode: str = "browser") -> list[float]:
    """ms per frame of the lab's plot with ``n``-step curves, growing by one step a frame (as in
    training): moving the artists and then ``mode``: "browser" (the lab's way: the SVG of the
    curves), "still" (the still picture redrawn and encoded, as after a rescale), "blit" (blitting
    in the kernel, then a PNG) or "full" (a full redraw)."""
    rng = np.random.default_rng(0)
    steps = list(range(n + repeats))
    loss = list(np.exp(-np.arange(n + repeats) / 1500) + 0.05 * rng.random(n + repeats))
    h = History(step=steps[:n], train_loss=loss[:n], lr=[0.01] * n, val_step=list(range(0, n, 25)),
                val_loss=list(np.exp(-np.arange(0, n, 25) / 1500) + 0.08))
    h.add_event(1200, "change", "lr 0.01 -> 0.03")
    view = LiveFigure(figsize=(8, 3.6), headless=mode == "full", curves_in_browser=mode in ("browser", "still"))
    plot = LossCurvesPlot(view.axes)
    if mode != "full":
        view.set_moving(plot.moving, plot.overlays)
    plot.update(h)
    plot.legend()
    view.refresh(force=True)                          # first frame: layout, fonts, caches
    out = []
    for i in range(repeats):
        h.step.append(steps[n + i])
        h.train_loss.append(loss[n + i])
        t = time.perf_counter()
        plot.update(h)
        plot.legend()
        if mode == "still":
            view.invalidate()
        view.refresh(force=True)
        out.append(1000 * (time.perf_counter() - t))
    return out


def png_cost(repeats: int = 30) -> list[float]:
    """ms to encode one 800x360 frame as the PNG the browser receives (ipympl or the fallback)."""
    view = LiveFigure(figsize=(8, 3.6), headless=True)
    view.axes.plot(np.random.default_rng(0).random(3000))
    view.refresh(force=True)
    pixels = np.asarray(view.fig.canvas.buffer_rgba())
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        _png(pixels)
        out.append(1000 * (time.perf_counter() - t))
    return out


def ratio_interval(on: list[float], off: list[float], level: float = 0.90, resamples: int = 4000,
                   seed: int = 0) -> tuple[float, float]:
    """How well one run pins ``median(on) / median(off)``: a bootstrap interval over the pairs (pairs
    drawn with replacement, the ratio of medians of each draw; its ``level`` central range). On this
    kind of machine one pair's ratio moves by 0.1-0.2 between seconds, so a ratio near 0.90 needs the
    interval beside it before it says "met" or "missed"."""
    on_a, off_a = np.asarray(on, dtype=float), np.asarray(off, dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(on_a), size=(resamples, len(on_a)))   # (resamples, pairs)
    ratios = np.median(on_a[idx], axis=1) / np.median(off_a[idx], axis=1)
    lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _browser_ready() -> bool:
    import importlib.util
    import os
    import shutil
    return bool(importlib.util.find_spec("playwright")) and bool(
        os.access("/usr/bin/chromium", os.X_OK) or shutil.which("chromium"))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)     # ratios of medians: 3 runs varied by +-4%
    ap.add_argument("--steps", type=int, default=10000)   # about 6 s a run: a lab run in class is longer
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--browser", action=argparse.BooleanOptionalAction, default=True,
                    help="also count frames in JupyterLab + Chromium (when both are here)")
    # 36 pairs, not 12: one pair's ratio moves by 0.1-0.2, and 12 pairs left a 90% interval about 0.1 wide
    # (0.874-0.980 around 0.913), too wide to say whether a ratio near 0.90 meets it. 36: about 0.09 (0.847-0.941).
    ap.add_argument("--browser-pairs", type=int, default=36, help="live / no-plot pairs in the browser (default 36)")
    ap.add_argument("--browser-window", type=float, default=3.0, help="seconds of each live window (default 3)")
    ap.add_argument("--browser-split", action="store_true",
                    help="also measure the lab with its frames off (as many pairs again): how much of the "
                         "browser ratio's gap is the lab's own loop, how much its frames")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    tp = throughput(args.repeats, args.steps)
    lat = slider_latency(args.changes)
    fr = frame_cost()
    fr_still, fr_blit, fr_full = frame_cost(mode="still"), frame_cost(mode="blit"), frame_cost(mode="full")
    png = png_cost()
    print(f"setup: TrainingLab({SETTINGS}), {args.steps} steps, headless Agg, one thread, torch {torch.__version__}")
    print(f"live_on_steps_per_s: {[round(x) for x in tp['on']]}  (frames per run: {tp['frames']})")
    print(f"live_off_steps_per_s: {[round(x) for x in tp['off']]}")
    print(f"slider_to_first_frame_ms: {[round(x, 1) for x in lat]}")
    print(f"frame_ms_5000_points: {[round(x, 1) for x in fr]}")
    print(f"still_picture_ms_median: {statistics.median(fr_still):.1f}  (only when the axes change)")
    print(f"frame_ms_5000_points_blit_png_median: {statistics.median(fr_blit):.1f}  (blitting in the kernel + PNG)")
    print(f"frame_ms_5000_points_full_redraw_median: {statistics.median(fr_full):.1f}  (no blitting, for comparison)")
    print(f"png_encode_ms_median: {statistics.median(png):.1f}  (800x360 frame sent to the browser)")
    out = dict(throughput_ratio_live_over_off=tp["ratio"],
               slider_to_first_frame_ms_median=statistics.median(lat),
               frame_ms_5000_points_median=statistics.median(fr))
    if args.browser and _browser_ready():
        import sys
        from pathlib import Path
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from browser_frames import measure
        br = measure(SETTINGS, repeats=args.browser_pairs, window=args.browser_window)
        print(f"browser: live steps/s {[round(x) for x in br['on']]}, no plot {[round(x) for x in br['off']]}, "
              f"frames/s per live window {[round(x, 1) for x in br['browser_frames_per_second']]} "
              f"(kernel sent {[round(x, 1) for x in br['kernel_frames_per_second']]})")
        print(f"browser: live over no plot, each pair {[round(a / b, 2) for a, b in zip(br['on'], br['off'])]}")
        for phase in ("on", "off"):  # where the machine's CPU went: is the page's work on training's core?
            groups = sorted({g for w in br[f"cores_{phase}"] for g in w})
            med = {g: statistics.median(w.get(g, 0.0) for w in br[f"cores_{phase}"]) for g in groups}
            print(f"cpu_cores_{'live' if phase == 'on' else 'no_plot'}_windows_median: "
                  + ", ".join(f"{g} {v:.2f}" for g, v in med.items()) + f" (total {sum(med.values()):.2f})")
        out["browser_frames_per_second"] = statistics.median(br["browser_frames_per_second"])
        out["throughput_ratio_live_over_off_browser"] = statistics.median(br["on"]) / statistics.median(br["off"])
        print(f"browser_frames_per_second: {out['browser_frames_per_second']:.1f}")
        lo, hi = ratio_interval(br["on"], br["off"])
        print(f"throughput_ratio_browser_90pct_interval: {lo:.3f} - {hi:.3f} (bootstrap over the pairs)")
        print(f"throughput_ratio_live_over_off_browser: {out['throughput_ratio_live_over_off_browser']:.3f}")
        if args.browser_split:
            nf = measure(SETTINGS, repeats=args.browser_pairs, window=args.browser_window, frames=False)
            out["throughput_ratio_lab_without_frames_browser"] = statistics.median(nf["on"]) / statistics.median(nf["off"])
            lo, hi = ratio_interval(nf["on"], nf["off"])
            print(f"throughput_ratio_lab_without_frames_browser: {out['throughput_ratio_lab_without_frames_browser']:.3f} "
                  f"(90% interval {lo:.3f} - {hi:.3f}; the lab playing with no frame over a plain fit)")
    print(f"throughput_ratio_live_over_off: {out['throughput_ratio_live_over_off']:.3f}")
    print(f"slider_to_first_frame_ms_median: {out['slider_to_first_frame_ms_median']:.1f}")
    print(f"frame_ms_5000_points_median: {out['frame_ms_5000_points_median']:.1f}")
    return out


if __name__ == "__main__":
    main()
