"""The benchmark scripts run and print what their issues ask for. Timings are printed, never
asserted (noisy machines); what is asserted is what does not depend on the clock."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_lr_finder_benchmark_prints_its_lines_and_the_same_curve(capsys):
    out = _load("lr_finder_vs_torch_lr_finder").main(["--quick"])
    lines = capsys.readouterr().out.strip().splitlines()
    keys = [ln.split(":")[0] for ln in lines[-6:]]
    assert keys == ["ours_s", "torch_lr_finder_s", "time_ratio_ours_over_theirs", "max_abs_diff_raw_losses",
                    "ours_restores_state", "theirs_restores_state_without_reset"]
    assert out["max_abs_diff_raw_losses"] <= 1e-6          # the same batches give the same curve
    assert out["ours_restores_state"] is True
    assert out["theirs_restores_state_without_reset"] is False


@pytest.mark.slow
def test_live_plot_benchmark_prints_its_three_lines(capsys):
    out = _load("live_plot").main(["--repeats", "1", "--steps", "400", "--changes", "4", "--no-browser"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines[-3:]] == [
        "throughput_ratio_live_over_off", "slider_to_first_frame_ms_median", "frame_ms_5000_points_median"]
    assert all(v > 0 for v in out.values())


def test_the_browser_ratio_interval_brackets_the_ratio_and_narrows_with_agreeing_pairs():
    interval = _load("live_plot").ratio_interval
    assert interval([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]) == (2.0, 2.0)      # every pair says 2: nothing to doubt
    rng = np.random.default_rng(3)
    off = list(1000 + 100 * rng.standard_normal(12))
    on = [0.9 * x * (1 + 0.12 * e) for x, e in zip(off, rng.standard_normal(12))]
    lo, hi = interval(on, off)
    point = float(np.median(on) / np.median(off))
    assert lo < point < hi and hi - lo > 0.05                            # pairs that disagree: a wide interval
    lo2, hi2 = interval(on * 8, off * 8)                                  # 8x the pairs: narrower
    assert hi2 - lo2 < 0.6 * (hi - lo)


@pytest.mark.slow
def test_scaling_sweep_benchmark_prints_its_three_lines(capsys):
    out = _load("scaling_sweep").main(["--fast"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines[-3:]] == ["runs", "sweep_seconds", "runs_per_second"]
    # The fast grid: 7 sizes x 5 budgets, plus 7 sizes on each of the 2 other languages.
    assert out["runs"] == 7 * 5 + 2 * 7
    assert out["warm_over_cold"] < 1
