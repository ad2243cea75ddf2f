"""How long does notebook 11's class-mode sweep take from a cold cache, and from a warm one?

Runs ``course_lib.sweep.course_sweeps`` (the class grid: 12 model sizes x 9 token budgets, plus
the spectrum slider's model sizes on 5 more languages) into a fresh, empty cache folder, then
runs it again to time the warm cache. Side by side, from the same run:

- ``train_seconds_summed``: the sum of the runs' own training times (what one core would spend);
- ``parallel_speedup``: that sum over the cold wall time (about the number of cores when the
  pool keeps every core busy and the workers' start-up is small);
- ``warm_over_cold``: warm wall time over cold wall time (the cache's effect);
- ``slider_ms_*_median``: how long the notebook's two sliders take to redraw (headless Agg
  render of the whole figure; a browser adds the transfer of the frame).

Run: ``.venv/bin/python benchmarks/scaling_sweep.py [--fast] [--workers W]``.
Last lines: ``runs: K``, ``sweep_seconds: S`` (cold, the target is <= 120 on 2 cores) and
``runs_per_second: X``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from course_lib.scaling import fit_chinchilla  # noqa: E402
from course_lib.sweep import _available_cores, course_sweeps  # noqa: E402


def _slider_ms(slider, values) -> float:
    """Median wall time of setting a slider (the observer recomputes and redraws)."""
    times = []
    for v in values:
        t0 = time.perf_counter()
        slider.value = v
        times.append(1000 * (time.perf_counter() - t0))
    return round(statistics.median(times), 1)


def _slider_latencies(grid, by_exponent) -> dict:
    from course_lib.ui.scaling import ComputeBudgetExplorer, SpectrumExplorer

    spectrum = SpectrumExplorer(by_exponent)
    stops = list(by_exponent)
    spectrum_ms = _slider_ms(spectrum.sliders["exponent"], [stops[i % len(stops)] for i in range(1, 13)])
    joint = fit_chinchilla(grid.N, grid.D, grid.loss, n_bootstrap=0)
    lo, hi = 6 * grid.N.min() * grid.D.min(), 6 * grid.N.max() * grid.D.max()
    budget = ComputeBudgetExplorer(joint, budgets=(lo, hi), floor=grid.entropy_rate, runs=grid)
    budget_ms = _slider_ms(budget.sliders["budget"], np.geomspace(lo * 2, hi / 2, 12))
    return {"slider_ms_spectrum_median": spectrum_ms, "slider_ms_budget_median": budget_ms}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="the test suite's small grid instead of the class grid")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: every core)")
    args = ap.parse_args(argv)
    cores = _available_cores()
    kw = dict(fast=args.fast, workers=args.workers, progress=False, device="cpu")
    with tempfile.TemporaryDirectory(prefix="scaling-bench-") as cache:
        t0 = time.perf_counter()
        grid, by_exponent = course_sweeps(cache_dir=cache, **kw)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm_grid, warm_by = course_sweeps(cache_dir=cache, **kw)
        warm = time.perf_counter() - t0
    sweeps = [grid, *by_exponent.values()]
    # A config shared by two sweeps (a = 1 at the largest budget) is trained once: count it once.
    unique = {r.config: r for s in sweeps for r in s.runs}
    assert all(r.cached for s in [warm_grid, *warm_by.values()] for r in s.runs), "warm run retrained something"
    summed = sum(r.seconds for r in unique.values())
    out = {
        "grid": "fast" if args.fast else "class",
        "cores": cores,
        "workers": args.workers or cores,
        "train_seconds_summed": round(summed, 2),
        "parallel_speedup": round(summed / cold, 2),
        "warm_seconds": round(warm, 3),
        "warm_over_cold": round(warm / cold, 4),
        **_slider_latencies(grid, by_exponent),
        "runs": len(unique),
        "sweep_seconds": round(cold, 2),
        "runs_per_second": round(len(unique) / cold, 2),
    }
    for k, v in out.items():
        print(f"{k}: {v}")
    return out


if __name__ == "__main__":
    main()
