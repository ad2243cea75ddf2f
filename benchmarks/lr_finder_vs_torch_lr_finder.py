"""How fast is ``course_lib.lr_range_test`` next to pytorch-lr-finder, and do they measure the same curve?

Both tools get the same model (one MLP built from a seed, deep-copied for every run), the same
pre-made batches in the same order (one ``DataLoader(batches, batch_size=None)`` shared by both:
no collation, each (X, y) is yielded as is), a fresh ``SGD(momentum=0.9)`` per run, MSE, the
same exponential sweep (``start_lr`` -> ``end_lr`` over ``num_iter`` steps) and no divergence
stop, so both curves have all ``num_iter`` points. With ``smooth_f=0`` pytorch-lr-finder's
``history["loss"]`` holds the raw losses, which must equal ours up to float noise.

Timing: an untimed warm-up of each, then ``--repeats`` runs alternating ours/theirs and
theirs/ours (machine drift hits both alike); the ratio of medians is what matters. What is
timed is what a user needs to end up where they started:

- ours: ``lr_range_test(...)`` (it snapshots and restores model + optimizer itself);
- theirs: ``LRFinder(...)`` (its in-memory snapshot) + ``range_test(...)`` + ``reset()``
  (the median without ``reset()`` is printed too).

It also checks the state guarantee: after ours alone the model's and optimizer's state_dicts
equal the snapshot taken before; after pytorch-lr-finder's ``range_test`` without ``reset()``
they do not (its most reported bug).

Run: ``.venv/bin/python benchmarks/lr_finder_vs_torch_lr_finder.py [--num-iter N] [--repeats R] [--quick]``
Last lines: ``ours_s``, ``torch_lr_finder_s``, ``time_ratio_ours_over_theirs``,
``max_abs_diff_raw_losses``, ``ours_restores_state``, ``theirs_restores_state_without_reset``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import os
import re
import statistics
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from course_lib import MLP, lr_range_test, make_regression

try:
    from torch_lr_finder import LRFinder
except ImportError as e:  # pragma: no cover - the benchmark needs the other library
    raise SystemExit("this benchmark needs pytorch-lr-finder: pip install torch-lr-finder") from e


# ---------------------------------------------------------------------------------------------
# State comparison
# ---------------------------------------------------------------------------------------------

def _diffs(a, b, path: str = "") -> list[str]:
    """Paths where two (nested) state_dicts differ: tensors with torch.equal, the rest with ==."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.dtype == b.dtype and torch.equal(a, b))
        return [] if same else [path or "<root>"]
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}[{k!r}] (only in one)" for k in set(a) ^ set(b)]
        for k in a.keys() & b.keys():
            out += _diffs(a[k], b[k], f"{path}[{k!r}]")
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path} (length {len(a)} != {len(b)})"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _diffs(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [path or "<root>"]


def _snapshot(model: nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            copy.deepcopy(opt.state_dict()))


def _state_diffs(model: nn.Module, opt: torch.optim.Optimizer, snap: tuple[dict, dict]) -> list[str]:
    model_sd, opt_sd = snap
    return ([f"model{p}" for p in _diffs(model_sd, model.state_dict())]
            + [f"optimizer{p}" for p in _diffs(opt_sd, opt.state_dict())])


def _summarise(diffs: list[str]) -> str:
    """Group the paths: 'model tensors x6, optimizer['state'][*] (only in one) x6, ...'."""
    if not diffs:
        return "none"
    counts: dict[str, int] = {}
    for d in diffs:
        key = "model tensors" if d.startswith("model") else re.sub(r"\['state'\]\[\d+\]", "['state'][*]", d)
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(k if n == 1 else f"{k} x{n}" for k, n in counts.items())


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-iter", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--n-batches", type=int, default=50,
                    help="distinct pre-made batches; both tools cycle through them in the same order")
    ap.add_argument("--start-lr", type=float, default=1e-5)
    ap.add_argument("--end-lr", type=float, default=1.0)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="3 repeats, num_iter 100 (for the tests)")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.num_iter = 3, 100
    torch.set_num_threads(args.threads)
    num_iter, start_lr, end_lr, seed = args.num_iter, args.start_lr, args.end_lr, args.seed

    # 1. Data: pre-made batches, seeded, built once; one DataLoader without collation for both.
    data = make_regression(args.n_batches * args.batch_size * 5 // 4, kind="polynomial", noise=0.1, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(data.X_train.shape[0], generator=gen)
    batches = [(data.X_train[idx], data.y_train[idx])
               for idx in perm.split(args.batch_size) if len(idx) == args.batch_size][:args.n_batches]
    loader = DataLoader(batches, batch_size=None)  # yields each (X, y) as is, in list order

    # 2. One model from the seed; every run gets a deep copy (same architecture, same weights).
    torch.manual_seed(seed)
    base_model = MLP(1, 1, width=args.width, depth=args.depth)

    def fresh():
        model = copy.deepcopy(base_model)
        return model, torch.optim.SGD(model.parameters(), lr=start_lr, momentum=0.9)

    # pytorch-lr-finder draws a tqdm bar on sys.stderr and print()s two messages; torch also warns
    # once that its scheduler's get_lr() is called outside step(). To keep its work identical but
    # keep the terminal clean, BOTH tools run with stdout and stderr redirected to os.devnull:
    # tqdm (which reads sys.stderr when the bar is created) still formats and writes its bar, and
    # the prints still happen, so their cost stays in the timing. Ours writes nothing.
    devnull = open(os.devnull, "w")

    def quiet():
        stack = contextlib.ExitStack()
        stack.enter_context(contextlib.redirect_stdout(devnull))
        stack.enter_context(contextlib.redirect_stderr(devnull))
        return stack

    def run_ours(model, opt):
        with quiet():
            t = time.perf_counter()
            res = lr_range_test(model, loader, loss_fn="mse", optimizer=opt, start_lr=start_lr, end_lr=end_lr,
                                num_iter=num_iter, step_mode="exp", stop_div=False, seed=seed, device="cpu")
            dt = time.perf_counter() - t
        return dt, res

    def run_theirs(model, opt, reset=True, check=None):
        with quiet():
            torch.manual_seed(seed)  # ours seeds its dropout masks too (the MLP has none)
            t0 = time.perf_counter()
            finder = LRFinder(model, opt, nn.MSELoss(), device="cpu")
            finder.range_test(loader, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, step_mode="exp",
                              smooth_f=0.0, diverge_th=1e30)
            t_no_reset = time.perf_counter() - t0
            if check is not None:  # untimed: the warm-up inspects the state before reset()
                check(finder)
            t1 = time.perf_counter()
            if reset:
                finder.reset()
            dt = t_no_reset + (time.perf_counter() - t1)
        return dt, t_no_reset, finder

    # 3. Warm-up (untimed), which also does the state checks and the curve comparison.
    model, opt = fresh()
    snap = _snapshot(model, opt)
    _, ours_res = run_ours(model, opt)
    ours_diffs = _state_diffs(model, opt, snap)

    model, opt = fresh()
    snap = _snapshot(model, opt)
    theirs_no_reset_diffs: list[str] = []
    _, _, finder = run_theirs(model, opt, check=lambda f: theirs_no_reset_diffs.extend(_state_diffs(model, opt, snap)))
    theirs_reset_diffs = _state_diffs(model, opt, snap)
    theirs_lrs, theirs_losses = list(finder.history["lr"]), list(finder.history["loss"])

    ours_lrs, ours_losses = ours_res.lrs, ours_res.raw_losses
    n_points = (len(ours_lrs), len(theirs_lrs))
    if n_points[0] != n_points[1]:
        raise RuntimeError(f"the two curves have different lengths: ours {n_points[0]}, theirs {n_points[1]}")
    max_diff_lrs = max(abs(a - b) for a, b in zip(ours_lrs, theirs_lrs))
    max_rel_diff_lrs = max(abs(a - b) / b for a, b in zip(ours_lrs, theirs_lrs))
    max_diff_losses = max(abs(a - b) for a, b in zip(ours_losses, theirs_losses))
    finite = all(math.isfinite(x) for x in ours_losses + theirs_losses)

    # 4. Timed repeats, alternating the order.
    ours_t, theirs_t, theirs_no_reset_t = [], [], []
    repeat_drift = 0.0  # the runs are deterministic: every repeat must give the warm-up's curve
    for r in range(args.repeats):
        for name in (("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")):
            model, opt = fresh()
            if name == "ours":
                dt, res = run_ours(model, opt)
                ours_t.append(dt)
                losses = res.raw_losses
            else:
                dt, dt_no_reset, f = run_theirs(model, opt)
                theirs_t.append(dt)
                theirs_no_reset_t.append(dt_no_reset)
                losses = f.history["loss"]
            repeat_drift = max(repeat_drift, max(abs(a - b) for a, b in zip(losses, ours_losses)))
    devnull.close()

    ours_s, theirs_s = statistics.median(ours_t), statistics.median(theirs_t)
    out = dict(
        ours_s=ours_s, torch_lr_finder_s=theirs_s, torch_lr_finder_no_reset_s=statistics.median(theirs_no_reset_t),
        time_ratio_ours_over_theirs=ours_s / theirs_s, max_abs_diff_raw_losses=max_diff_losses,
        max_abs_diff_lrs=max_diff_lrs, ours_restores_state=not ours_diffs,
        theirs_restores_state_without_reset=not theirs_no_reset_diffs,
        theirs_restores_state_after_reset=not theirs_reset_diffs,
        ours_times_s=ours_t, torch_lr_finder_times_s=theirs_t, num_iter=num_iter, repeats=args.repeats,
        ours_stop_reason=ours_res.stop_reason, all_losses_finite=finite,
    )

    print(f"setup: MLP(1, 1, width={args.width}, depth={args.depth}) on make_regression(polynomial), "
          f"{len(batches)} pre-made batches of {args.batch_size} cycled, SGD(momentum=0.9), MSE, "
          f"exp sweep {start_lr:g} -> {end_lr:g}, num_iter: {num_iter}, repeats: {args.repeats}, "
          f"threads: {args.threads}, seed: {seed}, torch {torch.__version__}")
    print("timed: ours = lr_range_test(); theirs = LRFinder() + range_test(smooth_f=0, diverge_th=1e30) + reset(); "
          "stdout/stderr of both sent to os.devnull (tqdm bar still drawn)")
    print(f"ours_times_s: {[round(t, 4) for t in ours_t]}")
    print(f"torch_lr_finder_times_s: {[round(t, 4) for t in theirs_t]}")
    print(f"torch_lr_finder_no_reset_s: {out['torch_lr_finder_no_reset_s']:.4g}  (median, without reset())")
    print(f"ours_us_per_iter: {1e6 * ours_s / num_iter:.1f}, torch_lr_finder_us_per_iter: {1e6 * theirs_s / num_iter:.1f}")
    print(f"points: ours {n_points[0]}, theirs {n_points[1]}; ours stop_reason: {ours_res.stop_reason}; "
          f"all losses finite: {str(finite).lower()}; loss range: {min(ours_losses):.3g} .. {max(ours_losses):.3g}")
    print(f"max_abs_diff_lrs: {max_diff_lrs:.3g}  (max relative: {max_rel_diff_lrs:.3g})")
    print(f"max_abs_diff_losses_repeats_vs_warmup: {repeat_drift:.3g}  (deterministic runs: should be 0)")
    print(f"ours_state_diffs: {_summarise(ours_diffs)}")
    print(f"theirs_state_diffs_without_reset: {_summarise(theirs_no_reset_diffs)}")
    print(f"theirs_state_diffs_after_reset: {_summarise(theirs_reset_diffs)}")
    print(f"ours_s: {ours_s:.4g}")
    print(f"torch_lr_finder_s: {theirs_s:.4g}")
    print(f"time_ratio_ours_over_theirs: {ours_s / theirs_s:.3f}")
    print(f"max_abs_diff_raw_losses: {max_diff_losses:.3g}")
    print(f"ours_restores_state: {str(not ours_diffs).lower()}")
    print(f"theirs_restores_state_without_reset: {str(not theirs_no_reset_diffs).lower()}")
    return out


if __name__ == "__main__":
    main()
