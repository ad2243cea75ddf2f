"""Tests of course_lib.sweep: single-pass runs, exact evaluation, the process pool and the cache."""

import dataclasses
import json
import math

import numpy as np
import pytest

import course_lib.sweep as sw
from course_lib.language import MarkovLanguage

# A small language and short runs: every run here costs a few milliseconds.
SMALL = dict(vocab_size=16, max_steps=64)


def _entropy_rate_numpy(lang: MarkovLanguage) -> float:
    """H = -sum_x pi_x sum_y P_xy log P_xy, from the transition matrix with numpy alone."""
    P = lang.transition.numpy()
    w, v = np.linalg.eig(P.T)  # pi is the left eigenvector of eigenvalue 1
    pi = np.real(v[:, np.argmin(abs(w - 1))])
    pi = pi / pi.sum()
    return float(-(pi[:, None] * P * np.log(P)).sum())


def test_the_floor_is_computed_from_the_chain_never_hard_coded():
    # Two languages, two different floors, each equal to an independent numpy computation.
    floors = []
    for exponent, seed in [(1.0, 0), (1.5, 1)]:
        s = sw.run_sweep([2], [512], exponent=exponent, language_seed=seed, workers=1, use_cache=False,
                         progress=False, device="cpu", **SMALL)
        lang = MarkovLanguage(16, exponent, 120.0, seed)
        assert s.entropy_rate == pytest.approx(_entropy_rate_numpy(lang), abs=1e-10)
        assert s.runs[0].entropy_rate == s.entropy_rate
        floors.append(s.entropy_rate)
    assert abs(floors[0] - floors[1]) > 0.05


def test_a_run_is_reproducible_and_single_pass():
    cfg = sw.RunConfig(rank=3, tokens=4096, **SMALL)
    a, b = sw.train_run(cfg), sw.train_run(cfg)
    assert a.loss == b.loss and not math.isnan(a.loss)
    assert cfg.batch_size == 64 and cfg.steps == 64 and a.tokens_seen == 4096
    assert a.entropy_rate < a.loss < math.log(16)


def test_exact_evaluation_agrees_with_a_held_out_sample():
    # The held-out mean is an unbiased estimate of the exact value: within 4 standard errors.
    cfg = sw.RunConfig(rank=4, tokens=8192, **SMALL)
    exact = sw.train_run(cfg).loss
    sample = sw.train_run(dataclasses.replace(cfg, evaluation="sample")).loss
    se = 3.0 / math.sqrt(sw._HELDOUT_PAIRS)  # per-token loss std is below 3 nats here
    assert abs(sample - exact) < 4 * se


def test_divergence_is_recorded_not_raised():
    r = sw.train_run(sw.RunConfig(rank=4, tokens=4096, lr=1e38, **SMALL))
    assert math.isnan(r.loss) and r.diverged_at is not None and r.diverged_at < 64


def test_pool_equals_in_process():
    kw = dict(use_cache=False, progress=False, device="cpu", **SMALL)
    one = sw.run_sweep([1, 4], [1024, 2048], workers=1, **kw)
    two = sw.run_sweep([1, 4], [1024, 2048], workers=2, **kw)
    assert [r.config for r in one.runs] == [r.config for r in two.runs]
    assert one.loss.tolist() == two.loss.tolist()  # bitwise: one torch thread in both


def test_cache_hits_misses_and_never_stale(tmp_path, monkeypatch):
    kw = dict(cache_dir=tmp_path, workers=1, progress=False, device="cpu", **SMALL)
    cold = sw.run_sweep([2, 4], [1024], **kw)
    assert cold.num_cached == 0 and len(list((tmp_path / "scaling").glob("*.json"))) == 2
    warm = sw.run_sweep([2, 4], [1024], **kw)
    assert warm.num_cached == 2 and warm.loss.tolist() == cold.loss.tolist()
    # A changed setting is a new key: nothing is read from the cache.
    assert sw.run_sweep([2, 4], [1024], **{**kw, "max_steps": 32}).num_cached == 0
    assert sw.run_sweep([2, 4], [1024], lr=0.02, **kw).num_cached == 0
    # Changed training code is a new key too.
    monkeypatch.setattr(sw, "_code_hash", lambda: "edited")
    assert sw.run_sweep([2, 4], [1024], **kw).num_cached == 0


def test_a_hand_edited_cache_file_is_recomputed(tmp_path):
    kw = dict(cache_dir=tmp_path, workers=1, progress=False, device="cpu", **SMALL)
    true_loss = sw.run_sweep([2], [1024], **kw).runs[0].loss
    (path,) = (tmp_path / "scaling").glob("*.json")
    stored = json.loads(path.read_text())
    stored["payload"]["values"]["loss"] = 1.0  # a "better" result typed in by hand
    path.write_text(json.dumps(stored))
    again = sw.run_sweep([2], [1024], **kw)
    assert again.num_cached == 0 and again.runs[0].loss == true_loss
    assert json.loads(path.read_text())["payload"]["values"]["loss"] == true_loss  # repaired


def test_sweep_result_views():
    s = sw.run_sweep([1, 2], [512, 1024], workers=1, use_cache=False, progress=False, device="cpu", **SMALL)
    assert s.ranks == [1, 2] and s.budgets == [512, 1024]
    assert s.N.tolist() == [48.0, 48.0, 80.0, 80.0] and s.D.tolist() == [512.0, 1024.0] * 2
    sub = s.select(tokens=1024)
    assert sub.N.tolist() == [48.0, 80.0] and sub.entropy_rate == s.entropy_rate
    df = s.to_frame()
    assert list(df.columns[:5]) == ["rank", "N", "D", "loss", "excess"]
    assert np.allclose(df.excess, s.loss - s.entropy_rate)


@pytest.mark.parametrize("args, kwargs, match", [
    (([], [1024]), {}, r"run_sweep\(\): 'ranks' must not be empty"),
    (([0], [1024]), {}, r"run_sweep\(\): 'ranks\[0\]' must be an int >= 1, got ranks\[0\]=0"),
    (([1], [-5]), {}, r"'tokens\[0\]' must be an int >= 1, got tokens\[0\]=-5"),
    (([1], [8]), {}, r"RunConfig\(\): 'tokens' must be an int >= 32, got tokens=8"),
    (([1], [1024]), {"workers": 0}, r"run_sweep\(\): 'workers' must be an int >= 1, got workers=0"),
    (([1], [1024]), {"learning_rate": 0.1}, r"keyword arguments must be RunConfig fields .*unknown=\['learning_rate'\]"),
    (([1], [1024]), {"lr": -1.0}, r"RunConfig\(\): 'lr' must be a float > 0, got lr=-1.0"),
    (([1], [1024]), {"evaluation": "test"}, r"'evaluation' must be one of 'exact', 'sample', got evaluation='test'"),
])
def test_bad_input_is_named(args, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        sw.run_sweep(*args, progress=False, use_cache=False, device="cpu", **kwargs)


def test_select_with_no_match_is_named():
    s = sw.run_sweep([1], [512], workers=1, use_cache=False, progress=False, device="cpu", **SMALL)
    with pytest.raises(ValueError, match=r"SweepResult.select\(\): no run matches the selection, got tokens=999"):
        s.select(tokens=999)


@pytest.mark.gpu
def test_sweep_on_cuda_is_close_to_cpu():
    kw = dict(use_cache=False, progress=False, **SMALL)
    cpu = sw.run_sweep([2, 8], [4096], device="cpu", workers=1, **kw)
    gpu = sw.run_sweep([2, 8], [4096], device="cuda", **kw)
    assert all(r.config.device == "cuda" for r in gpu.runs)
    assert np.allclose(cpu.loss, gpu.loss, atol=0.02)


def test_course_sweeps_share_one_pool_and_train_a_repeated_config_once(tmp_path, monkeypatch):
    monkeypatch.setitem(sw.COURSE_GRIDS, "fast", dict(ranks=(1, 2), tokens=(512, 1024), exponents=(1.0, 1.5)))
    calls = []
    real = sw.train_run
    monkeypatch.setattr(sw, "train_run", lambda cfg: calls.append(cfg) or real(cfg))
    main, by = sw.course_sweeps(fast=True, cache_dir=tmp_path, workers=1, progress=False, device="cpu", **SMALL)
    # 4 grid runs + 2 at a = 1.5; the a = 1.0 sweep is the grid's last column, trained once.
    assert len(calls) == 6 and len(set(calls)) == 6
    assert by[1.0].loss.tolist() == main.select(tokens=1024).loss.tolist()
    assert by[1.5].entropy_rate != main.entropy_rate
    with pytest.raises(ValueError, match=r"course_sweeps\(\): keyword arguments must be RunConfig fields"):
        sw.course_sweeps(fast=True, ranks=[1])


def test_a_result_copied_to_another_configs_file_is_not_read(tmp_path):
    from course_lib import _run_cache

    kw = dict(cache_dir=tmp_path, workers=1, progress=False, device="cpu", **SMALL)
    sw.run_sweep([2], [1024], **kw)
    (src,) = (tmp_path / "scaling").glob("*.json")
    other = sw.RunConfig(rank=8, tokens=1024, **SMALL)
    dst = _run_cache.entry_path(tmp_path / "scaling", dataclasses.asdict(other), sw._code_hash())
    dst.write_text(src.read_text())  # the rank-2 result under the rank-8 key
    assert sw.run_sweep([8], [1024], **kw).num_cached == 0
