"""How much does ``fit()`` cost over a bare, hand-written torch loop?

Same MLP (2-64-64-1), same data, same batches (same seeded order), same optimizer, same step
count, same validation schedule; ``fit`` (no live plot) and the bare loop run alternately,
several repeats, so machine noise hits both alike. The ratio of medians is what matters.

Run: ``.venv/bin/python benchmarks/train_overhead.py [--steps N] [--repeats R] [--optimizer adam]``
Last lines: ``fit_steps_per_s``, ``bare_steps_per_s``, ``fit_vs_bare_throughput_ratio`` (target >= 0.90).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from course_lib import MLP, fit, make_regression


def bare_loop(model, data, *, optimizer: str, lr: float, batch_size: int, num_steps: int,
              eval_every: int, seed: int) -> list[float]:
    """What a student writes by hand: shuffle each epoch, step, keep losses as tensors."""
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr))
    X, y, Xv, yv = data.X_train, data.y_train, data.X_val, data.y_val
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n = X.shape[0]
    losses, val_losses = [], []
    step = 0
    model.train()
    while step < num_steps:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            idx = perm[i:i + batch_size]
            loss = F.mse_loss(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            step += 1
            if step % eval_every == 0:
                model.eval()
                with torch.no_grad():
                    val_losses.append(float(F.mse_loss(model(Xv), yv)))
                model.train()
            if step == num_steps:
                break
    return torch.stack(losses).tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = make_regression(2000, kind="polynomial", noise=0.1, seed=0)
    kw = dict(optimizer=args.optimizer, lr=1e-3 if args.optimizer == "adam" else 0.05, batch_size=64,
              num_steps=args.steps, eval_every=50, seed=0)

    def run_fit():
        torch.manual_seed(0)
        model = MLP(1, 1, width=64, depth=2)
        t = time.perf_counter()
        h = fit(model, data, loss_fn="mse", device="cpu", **kw)
        return time.perf_counter() - t, h.train_loss

    def run_bare():
        torch.manual_seed(0)
        model = MLP(1, 1, width=64, depth=2)
        t = time.perf_counter()
        losses = bare_loop(model, data, **kw)
        return time.perf_counter() - t, losses

    run_fit(), run_bare()  # warm-up: allocator, thread pool, first-call overheads
    fit_t, bare_t = [], []
    for r in range(args.repeats):
        # Alternate the order so neither always runs on a "warmer" machine.
        order = [("fit", run_fit), ("bare", run_bare)] if r % 2 == 0 else [("bare", run_bare), ("fit", run_fit)]
        for name, fn in order:
            dt, losses = fn()
            (fit_t if name == "fit" else bare_t).append(dt)
            if name == "fit":
                fit_losses = losses
            else:
                bare_losses = losses
    same = max(abs(a - b) for a, b in zip(fit_losses, bare_losses))
    fit_sps = args.steps / statistics.median(fit_t)
    bare_sps = args.steps / statistics.median(bare_t)
    print(f"optimizer: {args.optimizer}, steps: {args.steps}, repeats: {args.repeats}, threads: {args.threads}")
    print(f"fit_times_s: {[round(t, 3) for t in fit_t]}")
    print(f"bare_times_s: {[round(t, 3) for t in bare_t]}")
    print(f"max_abs_diff_losses_fit_vs_bare: {same:.3g}  (same batches, same updates: should be ~0)")
    print(f"fit_steps_per_s: {fit_sps:.1f}")
    print(f"bare_steps_per_s: {bare_sps:.1f}")
    print(f"fit_vs_bare_throughput_ratio: {fit_sps / bare_sps:.3f}")


if __name__ == "__main__":
    main()
