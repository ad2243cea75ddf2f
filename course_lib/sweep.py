"""The scaling sweep: train a grid of model sizes N and token budgets D, record the final loss.

Every run trains one :class:`~course_lib.models.FactorizedBigram` of rank ``d`` on ``D`` fresh
token pairs from a :class:`~course_lib.language.MarkovLanguage` (one pass, no pair seen twice)
and records its *exact* population cross-entropy: the loss on infinitely much held-out text,
with no evaluation noise. The difference to the language's entropy rate ``H`` is the model's
excess loss, the quantity a scaling law describes.

Three engineering choices keep a sweep of ~100 runs inside a lecture:

1. Runs are independent, so they go to a pool of worker processes, one per core, each with
   one torch thread (a tiny model gains nothing from intra-op threads). The longest runs are
   submitted first so that no core idles at the end.
2. Each run has a fixed number of optimizer steps (at most ``max_steps``); a larger token
   budget means larger batches, not more steps. A run costs well under a second.
3. Every finished run is cached on disk (:mod:`course_lib._run_cache`) under a hash of its
   *full* configuration, including a hash of the source code that produced it. A changed
   setting, or an edited training code, gives a new key: a stale result is never read. Each
   file also carries a checksum of its payload, so a hand-edited file is detected and
   recomputed.

Runs of one sweep share their data seed: the ``D`` pairs of a small budget are the first ``D``
pairs of every larger budget, and every model size sees the same data (common random
numbers make the differences between runs less noisy than the runs themselves).

References:
    Kaplan et al., *Scaling Laws for Neural Language Models*, arXiv 2001.08361 (2020).
    Hoffmann et al., *Training Compute-Optimal Large Language Models*, arXiv 2203.15556 (2022).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import _run_cache
from ._run_cache import default_cache_dir
from ._validation import check_choice, check_number, check_relation, check_seed, check_type
from .device import resolve_device
from .language import MarkovLanguage
from .models import FactorizedBigram

__all__ = ["RunConfig", "RunResult", "SweepResult", "train_run", "run_sweep", "course_sweeps", "default_cache_dir",
           "EVALUATIONS", "COURSE_GRIDS"]

# "exact": population cross-entropy from the model's (V, V) table; "sample": mean loss on a
# held-out sample, what one must do for a model that is not a table (a transformer).
EVALUATIONS = ("exact", "sample")
_HELDOUT_PAIRS = 2**18  # held-out sample size for evaluation="sample": standard error ~ 0.003 nats


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run's result: the cache key is a hash of all of it.

    Args:
        rank (int): model size knob ``d`` of the rank-d bigram (>= 1). ``N = 2 V d + V``.
        tokens (int): token budget ``D``: training pairs seen once each (>= ``min_batch``).
        vocab_size, exponent, scale, language_seed: the :class:`MarkovLanguage`.
        lr (float): peak Adam learning rate. Default: 0.05.
        max_steps (int): most optimizer steps of a run; larger budgets use larger batches.
            Default: 512.
        min_batch (int): smallest batch size. Default: 32.
        warmup (float): fraction of the steps with a linear warm-up, then cosine decay to 0.
            Default: 0.05.
        seed (int): seed of the data stream and of the initialisation. Default: 0.
        evaluation (str): ``"exact"`` or ``"sample"`` (see ``EVALUATIONS``). Default: "exact".
        device (str): device type the run trains on (results differ in the last digits between
            devices, so it is part of the key). Default: "cpu".
    """

    rank: int
    tokens: int
    vocab_size: int = 64
    exponent: float = 1.0
    scale: float = 120.0
    language_seed: int = 0
    lr: float = 0.05
    max_steps: int = 512
    min_batch: int = 32
    warmup: float = 0.05
    seed: int = 0
    evaluation: str = "exact"
    device: str = "cpu"

    def __post_init__(self):
        where = "RunConfig"
        check_number("rank", self.rank, where=where, low=1, integer=True)
        check_number("vocab_size", self.vocab_size, where=where, low=2, integer=True)
        check_number("min_batch", self.min_batch, where=where, low=1, integer=True)
        check_number("tokens", self.tokens, where=where, low=self.min_batch, integer=True)
        check_number("exponent", self.exponent, where=where, low=0)
        check_number("scale", self.scale, where=where, low=0, low_open=True)
        check_number("language_seed", self.language_seed, where=where, low=0, integer=True)
        check_number("lr", self.lr, where=where, low=0, low_open=True)
        check_number("max_steps", self.max_steps, where=where, low=1, integer=True)
        check_number("warmup", self.warmup, where=where, low=0, high=1, high_open=True)
        check_seed(self.seed, where=where)
        check_choice("evaluation", self.evaluation, EVALUATIONS, where=where)
        check_choice("device", self.device, ("cpu", "cuda", "mps"), where=where)

    @property
    def num_params(self) -> int:
        """``N = 2 V d + V``: embedding (V, d), unembedding (d, V) and bias (V,)."""
        return 2 * self.vocab_size * self.rank + self.vocab_size

    @property
    def batch_size(self) -> int:
        return max(self.min_batch, self.tokens // self.max_steps)

    @property
    def steps(self) -> int:
        return self.tokens // self.batch_size

    def language(self) -> MarkovLanguage:
        return MarkovLanguage(self.vocab_size, self.exponent, self.scale, self.language_seed)


@dataclass(frozen=True)
class RunResult:
    """One finished run. ``loss`` is NaN when training diverged (``diverged_at`` = the step)."""

    config: RunConfig
    loss: float  # population (or held-out) cross-entropy in nats
    entropy_rate: float  # H of the language, computed from the chain
    tokens_seen: int  # steps * batch_size (<= config.tokens)
    seconds: float  # training time when it ran (a cached result keeps its original time)
    diverged_at: int | None = None
    cached: bool = False

    @property
    def num_params(self) -> int:
        return self.config.num_params

    @property
    def excess(self) -> float:
        """``loss - H``: the part of the loss that a bigger model or more data can remove."""
        return self.loss - self.entropy_rate


def _lr_at(step: int, cfg: RunConfig) -> float:
    """Linear warm-up over ``warmup * steps`` steps, then cosine decay to 0 at the last step."""
    warm = max(1, round(cfg.warmup * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train_run(config: RunConfig) -> RunResult:
    """Train one rank-d bigram on ``config.tokens`` fresh pairs and evaluate it.

    Args:
        config (RunConfig): the run.

    Returns:
        RunResult: the final loss (exact population cross-entropy by default).

    Example:
        >>> r = train_run(RunConfig(rank=2, tokens=2048, vocab_size=16, max_steps=32))
        >>> r.loss > r.entropy_rate
        True
    """
    check_type("config", config, RunConfig, where="train_run")
    device = resolve_device(config.device, where="train_run")
    lang = config.language()
    t0 = time.perf_counter()
    B, S = config.batch_size, config.steps
    # 1. The data: S * B fresh pairs, each used once (single pass, so no overfitting).
    prev, nxt = lang.sample_bigrams(S * B, seed=config.seed, device=device)  # (S*B,) each
    # 2. The model, initialised from the run's seed (a different stream from the data's).
    torch.manual_seed(config.seed + 1)
    model = FactorizedBigram(config.vocab_size, config.rank).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    diverged_at = None
    # 3. One pass: step t sees pairs [t B, (t+1) B).
    for step in range(S):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, config)
        logits = model(prev[step * B:(step + 1) * B])  # (B, V)
        loss = F.cross_entropy(logits, nxt[step * B:(step + 1) * B])
        if not torch.isfinite(loss):  # divergence is a result: stop and record where
            diverged_at = step
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    # 4. Evaluate: exactly from the (V, V) table, or on a held-out sample (another seed).
    if diverged_at is not None:
        final = float("nan")
    elif config.evaluation == "exact":
        final = lang.population_cross_entropy(model.log_probs())
    else:
        hp, hn = lang.sample_bigrams(_HELDOUT_PAIRS, seed=config.seed + 10**6, device=device)
        final = float(-model.log_probs().to(device)[hp, hn].mean())
    return RunResult(config, final, lang.entropy_rate, S * B, time.perf_counter() - t0, diverged_at)


# --------------------------------------------------------------------------------------------
# The disk cache
# --------------------------------------------------------------------------------------------

def _code_hash() -> str:
    """Hash of the source files that determine a run's numbers, plus the torch version."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256(torch.__version__.encode())
    for name in ("sweep.py", "language.py", "models.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


_RESULT_FIELDS = ("loss", "entropy_rate", "tokens_seen", "seconds", "diverged_at")


def _cache_read(path: Path, config: RunConfig) -> RunResult | None:
    values = _run_cache.read(path, dataclasses.asdict(config))
    if values is None:
        return None
    fields = {k: values[k] for k in _RESULT_FIELDS}
    fields["loss"] = float("nan") if fields["loss"] is None else fields["loss"]  # JSON has no NaN
    return RunResult(config, **fields, cached=True)


def _cache_write(path: Path, result: RunResult) -> None:
    values = {k: getattr(result, k) for k in _RESULT_FIELDS}
    values["loss"] = None if math.isnan(result.loss) else result.loss
    _run_cache.write(path, dataclasses.asdict(result.config), values)


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------

@dataclass
class SweepResult:
    """The runs of a sweep, with numpy views for the fits.

    Attributes:
        runs (list[RunResult]): in grid order (ranks outer, token budgets inner).
        entropy_rate (float): ``H`` of the language (the floor).
        unigram_entropy (float): loss of the best model that ignores the previous token.
        seconds (float): wall time of the sweep (cached runs cost ~0).
    """

    runs: list[RunResult]
    entropy_rate: float
    unigram_entropy: float
    seconds: float

    @property
    def N(self) -> np.ndarray:
        return np.array([r.num_params for r in self.runs], dtype=float)

    @property
    def D(self) -> np.ndarray:
        return np.array([r.config.tokens for r in self.runs], dtype=float)

    @property
    def loss(self) -> np.ndarray:
        return np.array([r.loss for r in self.runs], dtype=float)

    @property
    def ranks(self) -> list[int]:
        return sorted({r.config.rank for r in self.runs})

    @property
    def budgets(self) -> list[int]:
        return sorted({r.config.tokens for r in self.runs})

    @property
    def num_cached(self) -> int:
        return sum(r.cached for r in self.runs)

    def select(self, *, tokens: int | None = None, rank: int | None = None) -> "SweepResult":
        """The runs with this token budget and/or rank (e.g. ``select(tokens=max(budgets))``)."""
        runs = [r for r in self.runs
                if (tokens is None or r.config.tokens == tokens) and (rank is None or r.config.rank == rank)]
        check_relation(bool(runs), "no run matches the selection", where="SweepResult.select",
                       tokens=tokens, rank=rank)
        return SweepResult(runs, self.entropy_rate, self.unigram_entropy, 0.0)

    def to_frame(self):
        """A pandas DataFrame, one row per run: rank, N, D, loss, excess, seconds, cached."""
        import pandas as pd

        return pd.DataFrame([
            dict(rank=r.config.rank, N=r.num_params, D=r.config.tokens, loss=r.loss, excess=r.excess,
                 seconds=r.seconds, cached=r.cached, diverged_at=r.diverged_at)
            for r in self.runs
        ])


def _check_config_kwargs(config: dict, where: str) -> None:
    # rank, tokens and device have their own arguments; everything else is a RunConfig field.
    allowed = {f.name for f in dataclasses.fields(RunConfig)} - {"rank", "tokens", "device"}
    unknown = sorted(set(config) - allowed)
    check_relation(not unknown, f"keyword arguments must be RunConfig fields ({', '.join(sorted(allowed))})",
                   where=where, unknown=unknown)


def _available_cores() -> int:
    """The cores this process may use (its CPU affinity), not the machine's total."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _worker_init() -> None:
    # One thread per worker: the pool already uses every core, and a (B, 64) matmul gains
    # nothing from more threads (two busy-waiting thread pools per core would slow it down).
    torch.set_num_threads(1)


def _positive_ints(name: str, values, where: str, low: int) -> list[int]:
    check_type(name, values, (list, tuple, range, np.ndarray), where=where, expected="sequence of ints")
    out = [check_number(f"{name}[{i}]", int(v) if isinstance(v, np.integer) else v, where=where, low=low, integer=True)
           for i, v in enumerate(values)]
    check_relation(len(out) > 0, f"'{name}' must not be empty", where=where, **{name: values})
    return sorted(set(out))


def run_sweep(
    ranks: Sequence[int],
    tokens: Sequence[int],
    *,
    workers: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    device=None,
    **config,
) -> SweepResult:
    """Train every (rank, token budget) pair of the grid, in parallel, with a disk cache.

    Args:
        ranks (sequence of int): model sizes ``d`` (each >= 1); ``N = 2 V d + V``.
        tokens (sequence of int): token budgets ``D`` (each >= ``min_batch``).
        workers (int, optional): worker processes. Default: None, every core this process may
            use (``os.sched_getaffinity``). ``1`` trains in this process. The workers are
            started with "spawn": in a script (not a notebook) call ``run_sweep`` under
            ``if __name__ == "__main__":``, as for any Python process pool.
        cache_dir (str or Path, optional): cache folder. Default: :func:`default_cache_dir`.
        use_cache (bool): read and write the cache. Default: True.
        progress (bool): show a tqdm progress bar (a widget in Jupyter). Default: True.
        device (str or torch.device, optional): where to train. Default: CUDA if present, else
            MPS, else CPU. Off the CPU the runs go one after the other in this process (one
            accelerator; these models are too small to share it usefully).
        **config: any other :class:`RunConfig` field (``exponent``, ``lr``, ``seed``, ...).

    Returns:
        SweepResult: the runs in grid order.

    Example:
        >>> s = run_sweep([1, 4], [1024, 4096], vocab_size=16, max_steps=32, workers=1,
        ...               use_cache=False, progress=False, device="cpu")
        >>> len(s.runs), bool(s.select(tokens=4096).loss[1] < s.select(tokens=4096).loss[0])
        (4, True)
    """
    where = "run_sweep"
    ranks = _positive_ints("ranks", ranks, where, low=1)
    tokens = _positive_ints("tokens", tokens, where, low=1)
    dev = resolve_device(device, where=where)
    _check_config_kwargs(config, where)
    workers = check_number("workers", _available_cores() if workers is None else workers, where=where, low=1,
                           integer=True)
    configs = [RunConfig(rank=d, tokens=D, device=dev.type, **config) for d in ranks for D in tokens]
    t0 = time.perf_counter()
    runs = _run_many(configs, workers, cache_dir, use_cache, progress)
    lang = configs[0].language()
    return SweepResult(runs, lang.entropy_rate, lang.unigram_entropy, time.perf_counter() - t0)


def _run_many(configs: list[RunConfig], workers: int, cache_dir, use_cache: bool, progress: bool) -> list[RunResult]:
    """The results of ``configs`` in order: from the cache where present, else trained."""
    # 1. Read what the cache already has.
    cache = Path(cache_dir) if cache_dir is not None else _run_cache.default_cache_dir()
    code = _code_hash()
    paths = [_run_cache.entry_path(cache / "scaling", dataclasses.asdict(c), code) for c in configs]
    results: list[RunResult | None] = [_cache_read(p, c) if use_cache else None for p, c in zip(paths, configs)]
    # A config asked for twice (two sweeps sharing a column) is trained once: its first index
    # "owns" it, the others are its twins and get the same result.
    owner: dict[RunConfig, int] = {}
    twins: dict[int, list[int]] = {}
    for i in (i for i, r in enumerate(results) if r is None):
        j = owner.setdefault(configs[i], i)
        twins.setdefault(j, [])
        if j != i:
            twins[j].append(i)
    todo = sorted(twins, key=lambda i: -configs[i].tokens * configs[i].rank)  # longest first: no idle core at the end

    # 2. Train the rest, on a pool of processes when there is more than one core.
    bar = _progress_bar(len(configs), initial=sum(r is not None for r in results), enabled=progress)

    def finish(i: int, result: RunResult) -> None:
        for j in [i, *twins[i]]:
            results[j] = result
            bar.update(1)
        if use_cache:
            _cache_write(paths[i], result)

    on_cpu = all(c.device == "cpu" for c in configs)
    try:
        if workers == 1 or len(todo) <= 1 or not on_cpu:
            with _torch_threads(1 if on_cpu else torch.get_num_threads()):
                for i in todo:
                    finish(i, train_run(configs[i]))
        else:
            _run_in_pool(todo, configs, min(workers, len(todo)), finish)
    finally:
        bar.close()
    return results


def _run_in_pool(todo: list[int], configs: list[RunConfig], workers: int, finish) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # "spawn": a fresh interpreter per worker. Forking a process whose torch thread pool is
    # already running can deadlock, and spawn works the same on Linux, macOS and Windows.
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init) as pool:
        futures = {pool.submit(train_run, configs[i]): i for i in todo}
        try:
            for fut in as_completed(futures):
                finish(futures[fut], fut.result())
        except BaseException:  # KeyboardInterrupt in a notebook: drop the queue, keep what is cached
            for fut in futures:
                fut.cancel()
            raise


class _torch_threads:
    """Context manager: set torch's intra-op threads, restore them afterwards."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="scaling runs", unit="run")


# The grids of notebook 11 (and of benchmarks/scaling_sweep.py, which times the class grid).
# Token budgets double from 4k to 1M pairs; "exponents" are the spectrum slider's stops, each a
# sweep over the ranks at the largest budget (a = 1.0 is the main grid's last column: cached).
COURSE_GRIDS = {
    "class": dict(ranks=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64), tokens=tuple(2**k for k in range(12, 21)),
                  exponents=(0.75, 1.0, 1.25, 1.5, 1.75, 2.0)),
    "fast": dict(ranks=(1, 2, 4, 8, 16, 32, 64), tokens=tuple(2**k for k in range(12, 21, 2)),
                 exponents=(1.0, 1.5, 2.0)),
}


def course_sweeps(fast: bool | None = None, **kwargs) -> tuple[SweepResult, dict[float, SweepResult]]:
    """Run (or read from the cache) the sweeps of notebook 11.

    Args:
        fast (bool, optional): the small grid of the test suite. Default: None, read
            ``COURSE_FAST`` (:func:`course_lib.device.fast_mode`).
        **kwargs: passed to :func:`run_sweep` (``workers``, ``cache_dir``, ``progress``, ``device``...).

    Returns:
        tuple: ``(grid, by_exponent)``: the (rank x budget) grid on the default language, and
        for each spectrum exponent ``a`` of the grid a sweep over the ranks at the largest budget.
    """
    from .device import fast_mode

    grid = COURSE_GRIDS["fast" if (fast_mode() if fast is None else fast) else "class"]
    ranks, tokens, exponents = grid["ranks"], grid["tokens"], grid["exponents"]
    # Validate and resolve once, then train every run of every sweep on one pool (a pool
    # per sweep would pay the workers' start-up, about 2 s, once per exponent).
    workers = kwargs.pop("workers", None)
    cache_dir, use_cache = kwargs.pop("cache_dir", None), kwargs.pop("use_cache", True)
    progress, device = kwargs.pop("progress", True), kwargs.pop("device", None)
    where = "course_sweeps"
    _check_config_kwargs(kwargs, where)
    dev = resolve_device(device, where=where)
    workers = check_number("workers", _available_cores() if workers is None else workers, where=where, low=1,
                           integer=True)
    sweeps = [dict(ranks=ranks, tokens=tokens, exponent=kwargs.get("exponent", 1.0))]
    sweeps += [dict(ranks=ranks, tokens=(max(tokens),), exponent=a) for a in exponents]
    configs = [[RunConfig(rank=d, tokens=D, device=dev.type, **{**kwargs, "exponent": sw["exponent"]})
                for d in sw["ranks"] for D in sw["tokens"]] for sw in sweeps]
    t0 = time.perf_counter()
    flat = _run_many([c for cs in configs for c in cs], workers, cache_dir, use_cache, progress)
    seconds = time.perf_counter() - t0
    results, start = [], 0
    for cs in configs:
        lang = cs[0].language()
        results.append(SweepResult(flat[start:start + len(cs)], lang.entropy_rate, lang.unigram_entropy, seconds))
        start += len(cs)
    return results[0], dict(zip(exponents, results[1:]))
