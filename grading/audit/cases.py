"""Audit cases: wrong answers and correct alternatives for every exercise (see README.md).

Each case is ``Case(exercise, expect, name, code)``: ``code`` replaces the solution block of the
exercise (it is indented to the block's level), ``expect`` is ``"wrong"`` (loses at least half of
the exercise's points), ``"partial"`` (loses some points) or ``"full"`` (every point).
A case uses only what the notebook's setup cell imports, or imports inside its own body.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent


@dataclass(frozen=True)
class Case:
    exercise: str
    expect: str  # "wrong" | "partial" | "full"
    name: str
    code: str


_CASES: list[Case] = []


def _j(*parts: str) -> str:
    """Join code pieces written at different indents (each is dedented on its own)."""
    return "\n".join(dedent(p).strip("\n") for p in parts)


def _c(exercise: str, expect: str, name: str, code: str) -> None:
    assert expect in ("wrong", "partial", "full"), expect
    _CASES.append(Case(exercise, expect, name, dedent(code).strip("\n")))


# ------------------------------------------------------------------------------------ 1.1 mse
_c("1.1", "wrong", "sum instead of mean", "return ((y_hat - y) ** 2).sum()")
_c("1.1", "wrong", "absolute error", "return (y_hat - y).abs().mean()")
_c("1.1", "wrong", "no square", "return (y_hat - y).mean()")
_c("1.1", "wrong", "mean over dim 0 only", "return ((y_hat - y) ** 2).mean(dim=0)")
_c("1.1", "partial", "through NumPy (no gradient)", """
    import numpy as np
    return torch.tensor(np.mean((y_hat.detach().numpy() - y.detach().numpy()) ** 2))
""")
_c("1.1", "partial", "returns a Python float", "return ((y_hat - y) ** 2).mean().item()")
_c("1.1", "wrong", "halved (0.5 * mean)", "return 0.5 * ((y_hat - y) ** 2).mean()")
_c("1.1", "full", "torch.square and torch.mean", "return torch.mean(torch.square(y_hat - y))")
_c("1.1", "full", "sum over numel", """
    d = y_hat - y
    return (d * d).sum() / d.numel()
""")
_c("1.1", "full", "F.mse_loss", """
    import torch.nn.functional as F
    return F.mse_loss(y_hat, y)
""")

# ------------------------------------------------------------------------------------ 1.2 huber
_c("1.2", "wrong", "linear piece without -delta/2", """
    r = (y_hat - y).abs()
    return torch.where(r < delta, 0.5 * r**2, delta * r).mean()
""")
_c("1.2", "wrong", "quadratic piece without 0.5", """
    r = (y_hat - y).abs()
    return torch.where(r < delta, r**2, delta * (r - 0.5 * delta)).mean()
""")
_c("1.2", "wrong", "sum instead of mean", """
    r = (y_hat - y).abs()
    return torch.where(r < delta, 0.5 * r**2, delta * (r - 0.5 * delta)).sum()
""")
_c("1.2", "wrong", "half MSE everywhere", "return (0.5 * (y_hat - y) ** 2).mean()")
_c("1.2", "partial", "delta ignored (always 1)", """
    r = (y_hat - y).abs()
    return torch.where(r < 1.0, 0.5 * r**2, 1.0 * (r - 0.5)).mean()
""")
_c("1.2", "wrong", "signed residual in the condition", """
    r = y_hat - y
    return torch.where(r < delta, 0.5 * r**2, delta * (r.abs() - 0.5 * delta)).mean()
""")
_c("1.2", "full", "F.huber_loss", """
    import torch.nn.functional as F
    return F.huber_loss(y_hat, y, delta=delta)
""")
_c("1.2", "full", "clamp form", """
    r = (y_hat - y).abs()
    q = r.clamp(max=delta)
    return (0.5 * q**2 + delta * (r - q)).mean()
""")

# ------------------------------------------------------------------------------------ 1.3 log_softmax
_c("1.3", "wrong", "no max shift", "return logits - logits.exp().sum(dim=dim, keepdim=True).log()")
_c("1.3", "wrong", "shift by the minimum", """
    m = logits.amin(dim=dim, keepdim=True)
    return logits - m - (logits - m).exp().sum(dim=dim, keepdim=True).log()
""")
_c("1.3", "wrong", "softmax, not its log", """
    m = logits.amax(dim=dim, keepdim=True)
    e = (logits - m).exp()
    return e / e.sum(dim=dim, keepdim=True)
""")
_c("1.3", "wrong", "max shift forgotten inside the log", """
    m = logits.amax(dim=dim, keepdim=True)
    return logits - m - logits.exp().sum(dim=dim, keepdim=True).log()
""")
_c("1.3", "wrong", "global max, sum over everything", """
    m = logits.max()
    return logits - m - (logits - m).exp().sum().log()
""")
_c("1.3", "partial", "always along the last dim", """
    m = logits.amax(dim=-1, keepdim=True)
    return logits - m - (logits - m).exp().sum(dim=-1, keepdim=True).log()
""")
_c("1.3", "partial", "returns float64", """
    z = logits.double()
    return z - torch.logsumexp(z, dim, keepdim=True)
""")
_c("1.3", "full", "logits - logsumexp", "return logits - torch.logsumexp(logits, dim, keepdim=True)")
_c("1.3", "full", "max shift, not detached", """
    m = logits.amax(dim=dim, keepdim=True)
    return logits - m - (logits - m).exp().sum(dim=dim, keepdim=True).log()
""")
_c("1.3", "full", "max shift with .max(...).values", """
    m = logits.max(dim=dim, keepdim=True).values
    shifted = logits - m
    return shifted - torch.log(torch.sum(torch.exp(shifted), dim=dim, keepdim=True))
""")

# ------------------------------------------------------------------------------------ 1.4 cross_entropy
_c("1.4", "wrong", "sum instead of mean", """
    m = logits.amax(dim=1, keepdim=True)
    logp = logits - m - (logits - m).exp().sum(dim=1, keepdim=True).log()
    return -logp.gather(1, target.unsqueeze(1)).sum()
""")
_c("1.4", "wrong", "no negation", """
    m = logits.amax(dim=1, keepdim=True)
    logp = logits - m - (logits - m).exp().sum(dim=1, keepdim=True).log()
    return logp.gather(1, target.unsqueeze(1)).mean()
""")
_c("1.4", "wrong", "mean over N * C (one-hot times log p)", """
    m = logits.amax(dim=1, keepdim=True)
    logp = logits - m - (logits - m).exp().sum(dim=1, keepdim=True).log()
    onehot = torch.zeros_like(logp).scatter(1, target.unsqueeze(1), 1.0)
    return -(onehot * logp).mean()
""")
_c("1.4", "wrong", "picks column target[i] of row 0", """
    m = logits.amax(dim=1, keepdim=True)
    logp = logits - m - (logits - m).exp().sum(dim=1, keepdim=True).log()
    return -logp[0, target].mean()
""")
_c("1.4", "partial", "no max shift", """
    logp = logits - logits.exp().sum(dim=1, keepdim=True).log()
    return -logp.gather(1, target.unsqueeze(1)).mean()
""")
_c("1.4", "partial", "log of the softmax probability (unstable)", """
    p = logits.softmax(dim=1)
    return -p.gather(1, target.unsqueeze(1)).log().mean()
""")
_c("1.4", "full", "logsumexp minus the true logit", """
    lse = torch.logsumexp(logits, dim=1)
    return (lse - logits.gather(1, target.unsqueeze(1)).squeeze(1)).mean()
""")
_c("1.4", "full", "F.nll_loss of log_softmax", """
    import torch.nn.functional as F
    return F.nll_loss(torch.log_softmax(logits, dim=1), target)
""")
_c("1.4", "full", "fancy indexing", """
    logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -logp[torch.arange(len(target)), target].mean()
""")

# ------------------------------------------------------------------------------------ 1.5 kl_divergence
_c("1.5", "wrong", "arguments swapped (KL(q || p))", """
    safe_q = torch.where(q > 0, q, torch.ones_like(q))
    safe_p = torch.where(q > 0, p, torch.ones_like(p))
    return torch.where(q > 0, q * (safe_q.log() - safe_p.log()), torch.zeros_like(q)).sum(dim=-1)
""")
_c("1.5", "wrong", "sum over every dimension", """
    safe_p = torch.where(p > 0, p, torch.ones_like(p))
    safe_q = torch.where(p > 0, q, torch.ones_like(q))
    return torch.where(p > 0, p * (safe_p.log() - safe_q.log()), torch.zeros_like(p)).sum()
""")
_c("1.5", "wrong", "log ratio upside down", "return (p * (q.log() - p.log())).nan_to_num().sum(dim=-1)")
_c("1.5", "wrong", "mean over the classes", """
    safe_p = torch.where(p > 0, p, torch.ones_like(p))
    safe_q = torch.where(p > 0, q, torch.ones_like(q))
    return torch.where(p > 0, p * (safe_p.log() - safe_q.log()), torch.zeros_like(p)).mean(dim=-1)
""")
_c("1.5", "partial", "no care for p == 0", "return (p * (p.log() - q.log())).sum(dim=-1)")
_c("1.5", "partial", "single torch.where (nan gradient at p == 0)", """
    return torch.where(p > 0, p * (p.log() - q.log()), torch.zeros_like(p)).sum(dim=-1)
""")
_c("1.5", "wrong", "cross-entropy, not KL", """
    safe_q = torch.where(p > 0, q, torch.ones_like(q))
    return -(p * safe_q.log()).sum(dim=-1)
""")
_c("1.5", "full", "one where inside the logs", """
    return (p * (torch.where(p > 0, p, 1.0).log() - torch.where(p > 0, q, 1.0).log())).sum(dim=-1)
""")
_c("1.5", "full", "log of a ratio, masked", """
    ratio = torch.where(p > 0, p / torch.where(p > 0, q, torch.ones_like(q)), torch.ones_like(p))
    return (p * ratio.log()).sum(-1)
""")

# ------------------------------------------------------------------------------------ 2.1 sgd_step
_c("2.1", "wrong", "in place", """
    param.sub_(lr * (grad + weight_decay * param))
    return param
""")
_c("2.1", "wrong", "decay with the wrong sign", "return param - lr * (grad - weight_decay * param)")
_c("2.1", "wrong", "decay not scaled by lr", "return param - lr * grad - weight_decay * param")
_c("2.1", "wrong", "ascent (plus sign)", "return param + lr * (grad + weight_decay * param)")
_c("2.1", "wrong", "half the decay", "return param - lr * (grad + 0.5 * weight_decay * param)")
_c("2.1", "wrong", "no weight decay", "return param - lr * grad")
_c("2.1", "full", "shrink then step (same algebra)", "return param * (1 - lr * weight_decay) - lr * grad")
_c("2.1", "full", "torch.add with alpha", "return torch.add(param, grad + weight_decay * param, alpha=-lr)")
_c("2.1", "full", "clone then in place on the copy", """
    new = param.clone()
    new.add_(grad + weight_decay * param, alpha=-lr)
    return new
""")

# ------------------------------------------------------------------------------------ 2.2 momentum_step
_c("2.2", "wrong", "(1 - momentum) factor", """
    g = grad + weight_decay * param
    v = momentum * velocity + (1 - momentum) * g
    return param - lr * v, v
""")
_c("2.2", "partial", "decay added after the velocity", """
    v = momentum * velocity + grad
    return param - lr * (v + weight_decay * param), v
""")
_c("2.2", "wrong", "steps with the old velocity", """
    g = grad + weight_decay * param
    v = momentum * velocity + g
    return param - lr * velocity, v
""")
_c("2.2", "wrong", "returns (velocity, param)", """
    g = grad + weight_decay * param
    v = momentum * velocity + g
    return v, param - lr * v
""")
_c("2.2", "wrong", "lr inside the velocity, momentum ignored", """
    g = grad + weight_decay * param
    v = velocity + lr * g
    return param - v, v
""")
_c("2.2", "partial", "velocity updated in place", """
    g = grad + weight_decay * param
    velocity.mul_(momentum).add_(g)
    return param - lr * velocity, velocity
""")
_c("2.2", "full", "sub and explicit sum", """
    v = velocity * momentum + grad + weight_decay * param
    return param.sub(lr * v), v
""")
_c("2.2", "full", "torch.add", """
    v = torch.add(grad, param, alpha=weight_decay) + momentum * velocity
    return torch.add(param, v, alpha=-lr), v
""")

# ------------------------------------------------------------------------------------ 2.3 lr_thresholds
_c("2.3", "wrong", "diagonal entries instead of eigenvalues", """
    d = torch.diagonal(H)
    L, mu = float(d.max()), float(d.min())
    return {"monotone": 1.0 / L, "max": 2.0 / L, "optimal": 2.0 / (L + mu)}
""")
_c("2.3", "wrong", "L and mu swapped", """
    ev = torch.linalg.eigvalsh(H)
    L, mu = float(ev[0]), float(ev[-1])
    return {"monotone": 1.0 / L, "max": 2.0 / L, "optimal": 2.0 / (L + mu)}
""")
_c("2.3", "wrong", "optimal 1 / (L + mu)", """
    ev = torch.linalg.eigvalsh(H)
    mu, L = float(ev[0]), float(ev[-1])
    return {"monotone": 1.0 / L, "max": 2.0 / L, "optimal": 1.0 / (L + mu)}
""")
_c("2.3", "wrong", "monotone and max swapped", """
    ev = torch.linalg.eigvalsh(H)
    mu, L = float(ev[0]), float(ev[-1])
    return {"monotone": 2.0 / L, "max": 1.0 / L, "optimal": 2.0 / (L + mu)}
""")
_c("2.3", "wrong", "trace as L", """
    ev = torch.linalg.eigvalsh(H)
    mu, L = float(ev[0]), float(torch.trace(H))
    return {"monotone": 1.0 / L, "max": 2.0 / L, "optimal": 2.0 / (L + mu)}
""")
_c("2.3", "partial", "tensors instead of floats", """
    ev = torch.linalg.eigvalsh(H)
    mu, L = ev[0], ev[-1]
    return {"monotone": 1.0 / L, "max": 2.0 / L, "optimal": 2.0 / (L + mu)}
""")
_c("2.3", "full", "singular values (H is SPD)", """
    s = torch.linalg.svdvals(H)
    L, mu = s.max().item(), s.min().item()
    return {"monotone": 1 / L, "max": 2 / L, "optimal": 2 / (L + mu)}
""")
_c("2.3", "full", "real part of eigvals", """
    ev = torch.linalg.eigvals(H).real
    L, mu = float(ev.max()), float(ev.min())
    return {"monotone": 1.0 / L, "max": 2.0 / L, "optimal": 2.0 / (L + mu)}
""")

# ------------------------------------------------------------------------------------ 3.1 ema
_c("3.1", "wrong", "no bias correction", """
    out, s = [], 0.0
    for x in values:
        s = beta * s + (1 - beta) * float(x)
        out.append(s)
    return out
""")
_c("3.1", "wrong", "correction with t from 0", """
    out, s = [], 0.0
    for t, x in enumerate(values):
        s = beta * s + (1 - beta) * float(x)
        out.append(s / (1 - beta ** (t + 2)))
    return out
""")
_c("3.1", "wrong", "corrected value fed back", """
    out, s = [], 0.0
    for t, x in enumerate(values, start=1):
        s = (beta * s + (1 - beta) * float(x)) / (1 - beta**t)
        out.append(s)
    return out
""")
_c("3.1", "wrong", "beta and 1 - beta swapped", """
    out, s = [], 0.0
    for t, x in enumerate(values, start=1):
        s = (1 - beta) * s + beta * float(x)
        out.append(s / (1 - beta**t))
    return out
""")
_c("3.1", "wrong", "starts from the first value, then corrects", """
    out, s = [], float(values[0])
    for t, x in enumerate(values, start=1):
        s = beta * s + (1 - beta) * float(x)
        out.append(s / (1 - beta**t))
    return out
""")
_c("3.1", "full", "pandas ewm(adjust=True)", """
    import pandas as pd
    return pd.Series(np.asarray(values, dtype=float)).ewm(alpha=1 - beta, adjust=True).mean().tolist()
""")
_c("3.1", "full", "NumPy array out", """
    x = np.asarray(values, dtype=np.float64)
    out, s = np.empty_like(x), 0.0
    for t in range(len(x)):
        s = beta * s + (1 - beta) * x[t]
        out[t] = s / (1 - beta ** (t + 1))
    return out
""")

# ------------------------------------------------------------------------------------ 3.2 early_stopping_step
_c("3.2", "wrong", "1-based index", """
    best, wait = math.inf, 0
    for i, v in enumerate(val_losses):
        if v < best - min_delta:
            best, wait = v, 0
        else:
            wait += 1
        if wait >= patience:
            return i + 1
    return None
""")
_c("3.2", "wrong", "wait > patience", """
    best, wait = math.inf, 0
    for i, v in enumerate(val_losses):
        if v < best - min_delta:
            best, wait = v, 0
        else:
            wait += 1
        if wait > patience:
            return i
    return None
""")
_c("3.2", "wrong", "compares with the previous loss", """
    prev, wait = math.inf, 0
    for i, v in enumerate(val_losses):
        if v < prev - min_delta:
            wait = 0
        else:
            wait += 1
        prev = v
        if wait >= patience:
            return i
    return None
""")
_c("3.2", "wrong", "best moves on every small improvement", """
    best, wait = math.inf, 0
    for i, v in enumerate(val_losses):
        if v < best - min_delta:
            wait = 0
        else:
            wait += 1
        best = min(best, v)
        if wait >= patience:
            return i
    return None
""")
_c("3.2", "wrong", "equal counts as improvement", """
    best, wait = math.inf, 0
    for i, v in enumerate(val_losses):
        if v <= best - min_delta:
            best, wait = v, 0
        else:
            wait += 1
        if wait >= patience:
            return i
    return None
""")
_c("3.2", "wrong", "min_delta ignored", """
    best, wait = math.inf, 0
    for i, v in enumerate(val_losses):
        if v < best:
            best, wait = v, 0
        else:
            wait += 1
        if wait >= patience:
            return i
    return None
""")
_c("3.2", "full", "index of the best", """
    best, best_i = math.inf, -1
    for i, v in enumerate(val_losses):
        if v < best - min_delta:
            best, best_i = v, i
        elif i - best_i >= patience:
            return i
    return None
""")

# ------------------------------------------------------------------------------------ 3.3 is_diverged
_c("3.3", "wrong", "no isfinite check", """
    first = float(losses[0])
    return any(float(x) > factor * first for x in losses)
""")
_c("3.3", "wrong", ">= at the boundary", """
    first = float(losses[0])
    return any(not math.isfinite(float(x)) or float(x) >= factor * first for x in losses)
""")
_c("3.3", "wrong", "compares with the previous loss", """
    prev = float(losses[0])
    for x in losses:
        x = float(x)
        if not math.isfinite(x) or x > factor * prev:
            return True
        prev = x
    return False
""")
_c("3.3", "wrong", "compares with the last loss", """
    last = float(losses[-1])
    return any(not math.isfinite(float(x)) or float(x) > factor * last for x in losses)
""")
_c("3.3", "wrong", "only looks at the last loss", """
    x = float(losses[-1])
    return not math.isfinite(x) or x > factor * float(losses[0])
""")
_c("3.3", "partial", "returns a NumPy bool", """
    a = np.asarray(losses, dtype=float)
    return (~np.isfinite(a)).any() | (a > factor * a[0]).any()
""")
_c("3.3", "full", "NumPy, cast to bool", """
    a = np.asarray(losses, dtype=float)
    return bool((~np.isfinite(a)).any() or (a > factor * a[0]).any())
""")
_c("3.3", "full", "nan check by x != x", """
    first = float(losses[0])
    for x in map(float, losses):
        if x != x or x in (math.inf, -math.inf) or x > factor * first:
            return True
    return False
""")

# ------------------------------------------------------------------------------------ 3.4 is_overfitting
_c("3.4", "partial", ">= at the boundary", """
    i_min = int(np.argmin(val_losses))
    return bool(val_losses[-1] >= (1 + rise) * val_losses[i_min] and train_losses[-1] < train_losses[i_min])
""")
_c("3.4", "partial", "last minimum on ties", """
    v = np.asarray(val_losses, dtype=float)
    i_min = len(v) - 1 - int(np.argmin(v[::-1]))
    return bool(v[-1] > (1 + rise) * v[i_min] and train_losses[-1] < train_losses[i_min])
""")
_c("3.4", "wrong", "validation condition only", """
    i_min = int(np.argmin(val_losses))
    return bool(val_losses[-1] > (1 + rise) * val_losses[i_min])
""")
_c("3.4", "wrong", "training compared with its first value", """
    i_min = int(np.argmin(val_losses))
    return bool(val_losses[-1] > (1 + rise) * val_losses[i_min] and train_losses[-1] < train_losses[0])
""")
_c("3.4", "wrong", "rise added, not multiplied", """
    i_min = int(np.argmin(val_losses))
    return bool(val_losses[-1] > rise + val_losses[i_min] and train_losses[-1] < train_losses[i_min])
""")
_c("3.4", "wrong", "training minimum instead of validation's", """
    i_min = int(np.argmin(train_losses))
    return bool(val_losses[-1] > (1 + rise) * min(val_losses) and train_losses[-1] <= train_losses[i_min])
""")
_c("3.4", "full", "pure Python, first minimum", """
    i = min(range(len(val_losses)), key=lambda k: val_losses[k])
    return float(val_losses[-1]) > (1 + rise) * float(val_losses[i]) and float(train_losses[-1]) < float(train_losses[i])
""")
_c("3.4", "full", "list.index of the min", """
    val = [float(v) for v in val_losses]
    i = val.index(min(val))
    return bool(val[-1] > (1 + rise) * val[i]) and bool(float(train_losses[-1]) < float(train_losses[i]))
""")

# ------------------------------------------------------------------------------------ 4.1 dropout
_c("4.1", "wrong", "one mask broadcast across the rows", """
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape[-1], generator=generator) >= p
    return x * keep / (1 - p)
""")
_c("4.1", "wrong", "one mask per row, broadcast across the features", """
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape[:1] + (1,) * (x.ndim - 1), generator=generator) >= p
    return x * keep / (1 - p)
""")
_c("4.1", "wrong", "in place on x", """
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape, generator=generator) >= p
    return x.mul_(keep / (1 - p)) if not x.requires_grad else x * keep / (1 - p)
""")
_c("4.1", "wrong", "no scaling", """
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator) >= p)
""")
_c("4.1", "wrong", "scaled by 1 - p", """
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator) >= p) * (1 - p)
""")
_c("4.1", "wrong", "keeps where rand < p", """
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape, generator=generator) < p
    return x * keep / (1 - p)
""")
_c("4.1", "partial", "ignores training", """
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep / (1 - p)
""")
_c("4.1", "partial", "global RNG (generator ignored)", """
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape) >= p) / (1 - p)
""")
_c("4.1", "full", "bernoulli mask", """
    if not training:
        return x
    keep = torch.bernoulli(torch.full_like(x, 1 - p), generator=generator)
    return x * keep / (1 - p)
""")
_c("4.1", "full", "uniform_ on an empty tensor, where", """
    if not training or p == 0:
        return x
    u = torch.empty(x.shape, dtype=torch.float64).uniform_(generator=generator)
    return torch.where(u >= p, x / (1 - p), torch.zeros_like(x))
""")

# ------------------------------------------------------------------------------------ 4.2 l1_penalty
_c("4.2", "wrong", "biases included", "return l1 * sum(w.abs().sum() for w in model.parameters())")
_c("4.2", "wrong", "parameters chosen by name", """
    return l1 * sum(w.abs().sum() for n, w in model.named_parameters() if "weight" in n)
""")
_c("4.2", "wrong", "squares (L2) instead of |w|", """
    return l1 * sum((w**2).sum() for w in model.parameters() if w.ndim >= 2)
""")
_c("4.2", "wrong", "mean of |w| instead of sum", """
    return l1 * sum(w.abs().mean() for w in model.parameters() if w.ndim >= 2)
""")
_c("4.2", "wrong", "abs of the sum", """
    return l1 * sum(w.sum().abs() for w in model.parameters() if w.ndim >= 2)
""")
_c("4.2", "wrong", "a Python float (no gradient)", """
    return l1 * sum(w.abs().sum().item() for w in model.parameters() if w.ndim >= 2)
""")
_c("4.2", "full", "stack of norms", """
    return l1 * torch.stack([w.norm(p=1) for w in model.parameters() if w.dim() > 1]).sum()
""")
_c("4.2", "full", "explicit loop", """
    total = torch.zeros(())
    for w in model.parameters():
        if w.ndim >= 2:
            total = total + w.abs().sum()
    return l1 * total
""")

# ------------------------------------------------------------------------------------ 4.3 choose_weight_decay
_c("4.3", "wrong", "no decay (0.0)", "return 0.0")
_c("4.3", "wrong", "far too small (1e-5)", "return 1e-5")
_c("4.3", "wrong", "far too large (1000)", "return 1000.0")
_c("4.3", "wrong", "negative", "return -1.0")
_c("4.3", "partial", "a string", "return '1.0'")
_c("4.3", "full", "0.5", "return 0.5")
_c("4.3", "full", "an int (2)", "return 2")

# ------------------------------------------------------------------------------------ 5.1 triangular_lr
_c("5.1", "wrong", "integer division inside x", """
    cycle = math.floor(1 + step / (2 * step_size_up))
    x = abs(step // step_size_up - 2 * cycle + 1)
    scale = 1.0 if mode == "triangular" else 1 / 2.0 ** (cycle - 1)
    return float(base_lr + (max_lr - base_lr) * max(0.0, 1 - x) * scale)
""")
_c("5.1", "wrong", "triangular2 halves one cycle early", """
    cycle = math.floor(1 + step / (2 * step_size_up))
    x = abs(step / step_size_up - 2 * cycle + 1)
    scale = 1.0 if mode == "triangular" else 1 / 2.0 ** cycle
    return float(base_lr + (max_lr - base_lr) * max(0.0, 1 - x) * scale)
""")
_c("5.1", "wrong", "mode ignored", """
    cycle = math.floor(1 + step / (2 * step_size_up))
    x = abs(step / step_size_up - 2 * cycle + 1)
    return float(base_lr + (max_lr - base_lr) * max(0.0, 1 - x))
""")
_c("5.1", "wrong", "cycle of length step_size_up", """
    cycle = math.floor(1 + step / step_size_up)
    x = abs(step / step_size_up - 2 * cycle + 1)
    scale = 1.0 if mode == "triangular" else 1 / 2.0 ** (cycle - 1)
    return float(base_lr + (max_lr - base_lr) * max(0.0, 1 - x) * scale)
""")
_c("5.1", "wrong", "starts at the peak (1 - x replaced by x)", """
    cycle = math.floor(1 + step / (2 * step_size_up))
    x = abs(step / step_size_up - 2 * cycle + 1)
    scale = 1.0 if mode == "triangular" else 1 / 2.0 ** (cycle - 1)
    return float(base_lr + (max_lr - base_lr) * min(1.0, x) * scale)
""")
_c("5.1", "wrong", "triangular2 scales the whole LR", """
    cycle = math.floor(1 + step / (2 * step_size_up))
    x = abs(step / step_size_up - 2 * cycle + 1)
    scale = 1.0 if mode == "triangular" else 1 / 2.0 ** (cycle - 1)
    return float((base_lr + (max_lr - base_lr) * max(0.0, 1 - x)) * scale)
""")
_c("5.1", "full", "position inside the cycle", """
    pos = (step % (2 * step_size_up)) / step_size_up  # 0 .. 2
    frac = pos if pos <= 1 else 2 - pos
    cycle = step // (2 * step_size_up) + 1
    scale = 1.0 if mode == "triangular" else 0.5 ** (cycle - 1)
    return float(base_lr + (max_lr - base_lr) * frac * scale)
""")

# ------------------------------------------------------------------------------------ 5.2 one_cycle_lr
_c("5.2", "wrong", "linear instead of cosine", """
    initial = max_lr / div_factor
    final = initial / final_div_factor
    e1, e2 = pct_start * total_steps - 1, total_steps - 1
    if step <= e1:
        return float(initial + (max_lr - initial) * step / e1)
    return float(max_lr + (final - max_lr) * (step - e1) / (e2 - e1))
""")
_c("5.2", "wrong", "warm-up ends at pct_start * T (no - 1)", """
    initial = max_lr / div_factor
    final = initial / final_div_factor
    e1, e2 = pct_start * total_steps, total_steps - 1
    anneal = lambda a, b, pct: b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)
    if step <= e1:
        return float(anneal(initial, max_lr, step / e1))
    return float(anneal(max_lr, final, (step - e1) / (e2 - e1)))
""")
_c("5.2", "wrong", "final = max_lr / final_div_factor", """
    initial = max_lr / div_factor
    final = max_lr / final_div_factor
    e1, e2 = pct_start * total_steps - 1, total_steps - 1
    anneal = lambda a, b, pct: b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)
    if step <= e1:
        return float(anneal(initial, max_lr, step / e1))
    return float(anneal(max_lr, final, (step - e1) / (e2 - e1)))
""")
_c("5.2", "wrong", "phase 2 restarts its pct at 0 over the whole run", """
    initial = max_lr / div_factor
    final = initial / final_div_factor
    e1, e2 = pct_start * total_steps - 1, total_steps - 1
    anneal = lambda a, b, pct: b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)
    if step <= e1:
        return float(anneal(initial, max_lr, step / e1))
    return float(anneal(max_lr, final, step / e2))
""")
_c("5.2", "partial", "defaults hard-coded", """
    initial = max_lr / 25.0
    final = initial / 1e4
    e1, e2 = 0.3 * total_steps - 1, total_steps - 1
    anneal = lambda a, b, pct: b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)
    if step <= e1:
        return float(anneal(initial, max_lr, step / e1))
    return float(anneal(max_lr, final, (step - e1) / (e2 - e1)))
""")
_c("5.2", "wrong", "cosine the wrong way round", """
    initial = max_lr / div_factor
    final = initial / final_div_factor
    e1, e2 = pct_start * total_steps - 1, total_steps - 1
    anneal = lambda a, b, pct: a + (b - a) / 2 * (math.cos(math.pi * pct) + 1)
    if step <= e1:
        return float(anneal(initial, max_lr, step / e1))
    return float(anneal(max_lr, final, (step - e1) / (e2 - e1)))
""")
_c("5.2", "full", "(1 - cos) / 2 form", """
    initial = max_lr / div_factor
    final = initial / final_div_factor
    e1 = pct_start * total_steps - 1
    if step <= e1:
        a, b, pct = initial, max_lr, step / e1
    else:
        a, b, pct = max_lr, final, (step - e1) / (total_steps - 1 - e1)
    return float(a + (b - a) * (1 - math.cos(math.pi * pct)) / 2)
""")

# ------------------------------------------------------------------------------------ 5.3 steepest_lr
_REF53 = """
    lrs = np.asarray(lrs, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
"""
_c("5.3", "wrong", "skips before cutting at the first nan", _j(_REF53, """
    lrs, losses = lrs[skip_start:len(lrs) - skip_end], losses[skip_start:len(losses) - skip_end]
    bad = ~np.isfinite(losses)
    if bad.any():
        n = int(np.argmax(bad))
        lrs, losses = lrs[:n], losses[:n]
    if len(losses) < 3:
        return None
    slope = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.argmin(slope))])
"""))
_c("5.3", "wrong", "nanargmin, no cut", _j(_REF53, """
    lrs, losses = lrs[skip_start:len(lrs) - skip_end], losses[skip_start:len(losses) - skip_end]
    if np.isfinite(losses).sum() < 3:
        return None
    slope = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.nanargmin(slope))])
"""))
_c("5.3", "wrong", "slope per unit of lr (not log lr)", _j(_REF53, """
    bad = ~np.isfinite(losses)
    if bad.any():
        n = int(np.argmax(bad))
        lrs, losses = lrs[:n], losses[:n]
    lrs, losses = lrs[skip_start:len(lrs) - skip_end], losses[skip_start:len(losses) - skip_end]
    if len(losses) < 3:
        return None
    slope = np.diff(losses) / np.diff(lrs)
    return float(lrs[int(np.argmin(slope))])
"""))
_c("5.3", "wrong", "right end of the steepest pair", _j(_REF53, """
    bad = ~np.isfinite(losses)
    if bad.any():
        n = int(np.argmax(bad))
        lrs, losses = lrs[:n], losses[:n]
    lrs, losses = lrs[skip_start:len(lrs) - skip_end], losses[skip_start:len(losses) - skip_end]
    if len(losses) < 3:
        return None
    slope = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.argmin(slope)) + 1])
"""))
_c("5.3", "wrong", "steepest rise (argmax)", _j(_REF53, """
    bad = ~np.isfinite(losses)
    if bad.any():
        n = int(np.argmax(bad))
        lrs, losses = lrs[:n], losses[:n]
    lrs, losses = lrs[skip_start:len(lrs) - skip_end], losses[skip_start:len(losses) - skip_end]
    if len(losses) < 3:
        return None
    slope = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.argmax(slope))])
"""))
_c("5.3", "wrong", "lowest loss instead of steepest fall", _j(_REF53, """
    bad = ~np.isfinite(losses)
    if bad.any():
        n = int(np.argmax(bad))
        lrs, losses = lrs[:n], losses[:n]
    lrs, losses = lrs[skip_start:len(lrs) - skip_end], losses[skip_start:len(losses) - skip_end]
    if len(losses) < 3:
        return None
    return float(lrs[int(np.argmin(losses))])
"""))
_c("5.3", "wrong", "skip_end ignored", _j(_REF53, """
    bad = ~np.isfinite(losses)
    if bad.any():
        n = int(np.argmax(bad))
        lrs, losses = lrs[:n], losses[:n]
    lrs, losses = lrs[skip_start:], losses[skip_start:]
    if len(losses) < 3:
        return None
    slope = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.argmin(slope))])
"""))
_c("5.3", "full", "log10 and np.gradient-free loop", """
    pts = []
    for lr, loss in zip(lrs, losses):
        if not math.isfinite(float(loss)):
            break
        pts.append((float(lr), float(loss)))
    pts = pts[skip_start:len(pts) - skip_end]
    if len(pts) < 3:
        return None
    best = min(range(len(pts) - 1),
               key=lambda i: (pts[i + 1][1] - pts[i][1]) / (math.log10(pts[i + 1][0]) - math.log10(pts[i][0])))
    return pts[best][0]
""")

# ------------------------------------------------------------------------------------ 5.4 pick_max_lr
_CUT = """
    lrs = np.asarray(lrs, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    bad = ~np.isfinite(losses)
    if bad.any():
        n = int(np.argmax(bad))
        lrs, losses = lrs[:n], losses[:n]
"""
_c("5.4", "wrong", "argmin over losses that end in nan", """
    return float(np.asarray(lrs)[int(np.argmin(np.asarray(losses, dtype=float)))] / 10)
""")
_c("5.4", "wrong", "hard-coded 1e-2", "return 1e-2")
_c("5.4", "wrong", "the LR of the lowest loss", _j(_CUT, "return float(lrs[int(np.argmin(losses))])"))
_c("5.4", "wrong", "the smallest LR of the sweep", "return float(lrs[0])")
_c("5.4", "wrong", "ten times the lowest-loss LR", _j(_CUT, "return float(lrs[int(np.argmin(losses))] * 10)"))
_c("5.4", "wrong", "the middle of the sweep", "return float(np.sqrt(float(lrs[0]) * float(lrs[-1])))")
_c("5.4", "wrong", "hard-coded 3e-3", "return 3e-3")
_c("5.4", "full", "nanargmin / 10", """
    losses = np.where(np.isfinite(np.asarray(losses, dtype=float)), losses, np.nan)
    return float(np.asarray(lrs)[int(np.nanargmin(losses))] / 10)
""")
_c("5.4", "full", "a third of the way in log space from the steepest fall to the bottom", _j(_CUT, """
    i_min = int(np.argmin(losses))
    return float(lrs[i_min] / 10 ** 0.8)
"""))

# ------------------------------------------------------------------------------------ 5.5 triangular_bounds
_c("5.5", "wrong", "notebook 05's rule of thumb: max = 3 x the steepest fall, base = max / 10", _j(_CUT, """
    slope = np.diff(losses) / np.diff(np.log(lrs))
    top = 3 * float(lrs[int(np.argmin(slope))])
    return top / 10, top
"""))
_c("5.5", "wrong", "5.4's one-cycle rule: max = bottom / 10", _j(_CUT, """
    top = float(lrs[int(np.argmin(losses))]) / 10
    return top / 4, top
"""))
_c("5.5", "wrong", "argmin over losses that end in nan", """
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    top = float(lrs[int(np.argmin(losses))])
    return top / 4, top
""")
_c("5.5", "wrong", "base = the first LR of the sweep", _j(_CUT, """
    return float(lrs[0]), float(lrs[int(np.argmin(losses))])
"""))
_c("5.5", "wrong", "returns (max_lr, base_lr)", _j(_CUT, """
    top = float(lrs[int(np.argmin(losses))])
    return top, top / 4
"""))
_c("5.5", "wrong", "max = the last finite LR (the edge of divergence)", _j(_CUT, """
    return float(lrs[-1]) / 4, float(lrs[-1])
"""))
_c("5.5", "partial", "base = where the neighbour-to-neighbour slope first turns negative", _j(_CUT, """
    i_max = int(np.argmin(losses))
    i_base = int(np.argmax(np.diff(losses[: i_max + 1]) < 0))
    return float(lrs[i_base]), float(lrs[i_max])
"""))
_c("5.5", "full", "Smith's rule of thumb: base = max / 3", _j(_CUT, """
    top = float(lrs[int(np.argmin(losses))])
    return top / 3, top
"""))
_c("5.5", "full", "Smith's rule of thumb: base = max / 4, nanargmin", """
    losses = np.where(np.isfinite(np.asarray(losses, dtype=float)), losses, np.nan)
    top = float(np.asarray(lrs)[int(np.nanargmin(losses))])
    return top / 4, top
""")
_c("5.5", "full", "where 20% of the drop is covered", _j(_CUT, """
    i_max = int(np.argmin(losses))
    i_base = int(np.argmax(losses <= losses[0] - 0.2 * (losses[0] - losses[i_max])))
    return min(float(lrs[i_base]), float(lrs[i_max]) / 3), float(lrs[i_max])
"""))

# ------------------------------------------------------------------------------------ 6.1 next_token_pairs
_c("6.1", "wrong", "inputs and targets swapped", "return tokens[:, 1:], tokens[:, :-1]")
_c("6.1", "wrong", "sliced along the batch", "return tokens[:-1], tokens[1:]")
_c("6.1", "wrong", "no shift", "return tokens, tokens")
_c("6.1", "wrong", "drops two tokens", "return tokens[:, :-2], tokens[:, 2:]")
_c("6.1", "wrong", "targets shifted the wrong way (roll)", "return tokens[:, :-1], tokens.roll(1, dims=1)[:, :-1]")
_c("6.1", "full", "ellipsis slicing", "return tokens[..., :-1], tokens[..., 1:]")
_c("6.1", "full", "narrow", "T = tokens.shape[1]\nreturn tokens.narrow(1, 0, T - 1), tokens.narrow(1, 1, T - 1)")

# ------------------------------------------------------------------------------------ 6.2 next_token_loss
_c("6.2", "wrong", "no shift", """
    B, T, V = logits.shape
    return F.cross_entropy(logits.reshape(-1, V), tokens.reshape(-1))
""")
_c("6.2", "wrong", "shift the wrong way", """
    B, T, V = logits.shape
    return F.cross_entropy(logits[:, 1:].reshape(-1, V), tokens[:, :-1].reshape(-1))
""")
_c("6.2", "wrong", "sum instead of mean", """
    B, T, V = logits.shape
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1), reduction="sum")
""")
_c("6.2", "wrong", "uses the last position's logits", """
    B, T, V = logits.shape
    return F.cross_entropy(logits[:, 1:].reshape(-1, V), tokens[:, 1:].reshape(-1))
""")
_c("6.2", "wrong", "sum over time, mean over batch", """
    B, T, V = logits.shape
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1), reduction="none")
    return nll.reshape(B, T - 1).sum(1).mean()
""")
_c("6.2", "full", "manual log-softmax and gather", """
    logp = torch.log_softmax(logits[:, :-1], dim=-1)  # (B, T-1, V)
    return -logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).mean()
""")
_c("6.2", "full", "cross_entropy over the class dim (B, V, T)", """
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:])
""")

# ------------------------------------------------------------------------------------ 6.3 span_length_pmf
_c("6.3", "wrong", "tail clipped onto max_len", """
    lengths = torch.arange(1, max_len + 1, dtype=torch.float64)
    probs = p * (1.0 - p) ** (lengths - 1)
    probs[-1] += 1 - probs.sum()
    return probs
""")
_c("6.3", "wrong", "not renormalised", """
    lengths = torch.arange(1, max_len + 1, dtype=torch.float64)
    return p * (1.0 - p) ** (lengths - 1)
""")
_c("6.3", "wrong", "one length too many", """
    lengths = torch.arange(1, max_len + 2, dtype=torch.float64)
    probs = p * (1.0 - p) ** (lengths - 1)
    return probs / probs.sum()
""")
_c("6.3", "wrong", "p and 1 - p swapped", """
    lengths = torch.arange(1, max_len + 1, dtype=torch.float64)
    probs = (1 - p) * p ** (lengths - 1)
    return probs / probs.sum()
""")
_c("6.3", "wrong", "uniform over 1..max_len", "return torch.full((max_len,), 1.0 / max_len, dtype=torch.float64)")
_c("6.3", "partial", "float32", """
    lengths = torch.arange(1, max_len + 1, dtype=torch.float32)
    probs = p * (1.0 - p) ** (lengths - 1)
    return probs / probs.sum()
""")
_c("6.3", "full", "Geometric log_prob, renormalised", """
    k = torch.arange(max_len, dtype=torch.float64)  # failures before the first success
    probs = torch.distributions.Geometric(probs=torch.tensor(p, dtype=torch.float64)).log_prob(k).exp()
    return probs / probs.sum()
""")
_c("6.3", "full", "list comprehension", """
    w = [p * (1 - p) ** (k - 1) for k in range(1, max_len + 1)]
    return torch.tensor(w, dtype=torch.float64) / sum(w)
""")

# ------------------------------------------------------------------------------------ 6.4 sample_span_lengths
_PMF = """
    lengths = torch.arange(1, max_len + 1, dtype=torch.float64)
    probs = p * (1.0 - p) ** (lengths - 1)
    probs = probs / probs.sum()
"""
_c("6.4", "wrong", "indices, not lengths (no + 1)",
   _j(_PMF, "return torch.multinomial(probs, n, replacement=True, generator=generator)"))
_c("6.4", "wrong", "tail clipped onto max_len", """
    lengths = torch.arange(1, max_len + 1, dtype=torch.float64)
    probs = p * (1.0 - p) ** (lengths - 1)
    probs[-1] += 1 - probs.sum()
    return torch.multinomial(probs, n, replacement=True, generator=generator) + 1
""")
_c("6.4", "wrong", "uniform lengths", "return torch.randint(1, max_len + 1, (n,), generator=generator)")
_c("6.4", "partial", "default p and max_len hard-coded", """
    lengths = torch.arange(1, 11, dtype=torch.float64)
    probs = 0.2 * 0.8 ** (lengths - 1)
    return torch.multinomial(probs / probs.sum(), n, replacement=True, generator=generator) + 1
""")
_c("6.4", "wrong", "p and 1 - p swapped", """
    lengths = torch.arange(1, max_len + 1, dtype=torch.float64)
    probs = (1.0 - p) * p ** (lengths - 1)
    return torch.multinomial(probs / probs.sum(), n, replacement=True, generator=generator) + 1
""")
_c("6.4", "partial", "float lengths", _j(_PMF, "return (torch.multinomial(probs, n, replacement=True, generator=generator) + 1).double()"))
_c("6.4", "partial", "global RNG (generator ignored)", _j(_PMF, "return torch.multinomial(probs, n, replacement=True) + 1"))
_c("6.4", "full", "inverse CDF with searchsorted", _j(_PMF, """
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    idx = torch.searchsorted(probs.cumsum(0), u, right=True).clamp(max=max_len - 1)
    return idx + 1
"""))
_c("6.4", "full", "rejection from the untruncated geometric", """
    out = torch.empty(0, dtype=torch.int64)
    while out.numel() < n:
        u = torch.rand(2 * n, generator=generator, dtype=torch.float64)
        draws = (torch.floor(torch.log1p(-u) / math.log1p(-p)) + 1).long() if p < 1 else torch.ones(2 * n, dtype=torch.int64)
        out = torch.cat([out, draws[draws <= max_len]])
    return out[:n]
""")

# ------------------------------------------------------------------------------------ 6.5 bert_mask
_c("6.5", "wrong", "modifies tokens in place", """
    selected = torch.rand(tokens.shape, generator=generator) < mask_prob
    u = torch.rand(tokens.shape, generator=generator)
    random_tokens = torch.randint(0, vocab_size, tokens.shape, generator=generator)
    labels = torch.where(selected, tokens, torch.full_like(tokens, IGNORE_INDEX))
    tokens[selected & (u < 0.8)] = mask_token_id
    r = selected & (u >= 0.8) & (u < 0.9)
    tokens[r] = random_tokens[r]
    return tokens, labels
""")
_c("6.5", "wrong", "80/10/10 over every position", """
    selected = torch.rand(tokens.shape, generator=generator) < mask_prob
    u = torch.rand(tokens.shape, generator=generator)
    random_tokens = torch.randint(0, vocab_size, tokens.shape, generator=generator)
    inputs = torch.where(u < 0.8, torch.full_like(tokens, mask_token_id), tokens)
    inputs = torch.where((u >= 0.8) & (u < 0.9), random_tokens, inputs)
    labels = torch.where(selected, tokens, torch.full_like(tokens, IGNORE_INDEX))
    return inputs, labels
""")
_c("6.5", "wrong", "every selected position masked", """
    selected = torch.rand(tokens.shape, generator=generator) < mask_prob
    inputs = torch.where(selected, torch.full_like(tokens, mask_token_id), tokens)
    labels = torch.where(selected, tokens, torch.full_like(tokens, IGNORE_INDEX))
    return inputs, labels
""")
_c("6.5", "wrong", "labels everywhere", """
    selected = torch.rand(tokens.shape, generator=generator) < mask_prob
    u = torch.rand(tokens.shape, generator=generator)
    random_tokens = torch.randint(0, vocab_size, tokens.shape, generator=generator)
    inputs = torch.where(selected & (u < 0.8), torch.full_like(tokens, mask_token_id), tokens)
    inputs = torch.where(selected & (u >= 0.8) & (u < 0.9), random_tokens, inputs)
    return inputs, tokens.clone()
""")
_c("6.5", "wrong", "selects with probability 1 - mask_prob", """
    selected = torch.rand(tokens.shape, generator=generator) >= mask_prob
    u = torch.rand(tokens.shape, generator=generator)
    random_tokens = torch.randint(0, vocab_size, tokens.shape, generator=generator)
    inputs = torch.where(selected & (u < 0.8), torch.full_like(tokens, mask_token_id), tokens)
    inputs = torch.where(selected & (u >= 0.8) & (u < 0.9), random_tokens, inputs)
    labels = torch.where(selected, tokens, torch.full_like(tokens, IGNORE_INDEX))
    return inputs, labels
""")
_c("6.5", "partial", "20% random, none unchanged", """
    selected = torch.rand(tokens.shape, generator=generator) < mask_prob
    u = torch.rand(tokens.shape, generator=generator)
    random_tokens = torch.randint(0, vocab_size, tokens.shape, generator=generator)
    inputs = torch.where(selected & (u < 0.8), torch.full_like(tokens, mask_token_id), tokens)
    inputs = torch.where(selected & (u >= 0.8), random_tokens, inputs)
    labels = torch.where(selected, tokens, torch.full_like(tokens, IGNORE_INDEX))
    return inputs, labels
""")
_c("6.5", "full", "one uniform for selection and the 80/10/10 split", """
    u = torch.rand(tokens.shape, generator=generator) / mask_prob if mask_prob > 0 else torch.full(tokens.shape, 2.0)
    selected = u < 1
    random_tokens = torch.randint(0, vocab_size, tokens.shape, generator=generator)
    inputs = tokens.clone()
    inputs[selected & (u < 0.8)] = mask_token_id
    r = selected & (u >= 0.8) & (u < 0.9)
    inputs[r] = random_tokens[r]
    labels = torch.full_like(tokens, IGNORE_INDEX)
    labels[selected] = tokens[selected]
    return inputs, labels
""")


# ------------------------------------------------------------------------------------ 6.6 boundary_pairs
_BP_LOOP = """
    T = masked.shape[1]
    left, right, offset = [], [], []
    for row in masked.tolist():
        for i, m in enumerate(row):
            if not m:
                continue
            s = i
            while s > 0 and row[s - 1]:
                s -= 1
            e = i
            while e < T - 1 and row[e + 1]:
                e += 1
"""
_c("6.6", "wrong", "boundaries inside the span (s and e)", _j(_BP_LOOP, """
                left.append(s)
                right.append(e)
                offset.append(i - s)
    return tuple(torch.tensor(v, dtype=torch.int64) for v in (left, right, offset))
"""))
_c("6.6", "wrong", "edges clamped into the row (0 and T - 1)", _j(_BP_LOOP, """
                left.append(max(s - 1, 0))
                right.append(min(e + 1, T - 1))
                offset.append(i - s)
    return tuple(torch.tensor(v, dtype=torch.int64) for v in (left, right, offset))
"""))
_c("6.6", "wrong", "offset counted from 1 (the paper's p_{i-s+1})", _j(_BP_LOOP, """
                left.append(s - 1)
                right.append(e + 1)
                offset.append(i - s + 1)
    return tuple(torch.tensor(v, dtype=torch.int64) for v in (left, right, offset))
"""))
_c("6.6", "wrong", "every masked token its own span (i - 1, i + 1)", """
    b, i = masked.nonzero(as_tuple=True)
    return i - 1, i + 1, torch.zeros_like(i)
""")
_c("6.6", "wrong", "offset from the right boundary", _j(_BP_LOOP, """
                left.append(s - 1)
                right.append(e + 1)
                offset.append(e - i)
    return tuple(torch.tensor(v, dtype=torch.int64) for v in (left, right, offset))
"""))
_c("6.6", "partial", "spans run on from one row into the next (flattened)", """
    B, T = masked.shape
    flat = masked.reshape(-1).tolist()
    left, right, offset = [], [], []
    for k, m in enumerate(flat):
        if not m:
            continue
        s = k
        while s > 0 and flat[s - 1]:
            s -= 1
        e = k
        while e < len(flat) - 1 and flat[e + 1]:
            e += 1
        left.append(s - 1 - (k // T) * T)
        right.append(e + 1 - (k // T) * T)
        offset.append(k - s)
    return tuple(torch.tensor(v, dtype=torch.int64) for v in (left, right, offset))
""")
_c("6.6", "full", "running max / min over unmasked positions", """
    B, T = masked.shape
    idx = torch.arange(T).expand(B, T)
    left = torch.where(masked, torch.full_like(idx, -1), idx).cummax(dim=1).values
    right = torch.where(masked, torch.full_like(idx, T), idx).flip(1).cummin(dim=1).values.flip(1)
    b, i = masked.nonzero(as_tuple=True)
    return left[b, i], right[b, i], i - left[b, i] - 1
""")
_c("6.6", "full", "itertools.groupby over each row", """
    import itertools
    left, right, offset = [], [], []
    for row in masked.tolist():
        pos = 0
        for m, run in itertools.groupby(row):
            n = len(list(run))
            if m:
                left += [pos - 1] * n
                right += [pos + n] * n
                offset += list(range(n))
            pos += n
    return tuple(torch.tensor(v, dtype=torch.int64) for v in (left, right, offset))
""")

# ------------------------------------------------------------------------------------ 6.7 kl_sgd_path
_KL_START = """
    mu = torch.tensor(float(mu0), dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor(float(logvar0), dtype=torch.float64, requires_grad=True)
"""
_KL_END = """
        path.append(mu.item())
        if not math.isfinite(path[-1]):
            break
    return torch.tensor(path, dtype=torch.float64)
"""
_c("6.7", "wrong", "KL without the 1/2 (steps twice as large)", _j(_KL_START, """
    opt = torch.optim.SGD([mu, logvar], lr=lr)
    path = [mu.item()]
    for _ in range(num_steps):
        opt.zero_grad()
        (strength * (mu**2 + logvar.exp() - logvar - 1)).backward()
        opt.step()
""", _KL_END))
_c("6.7", "wrong", "strength left out", _j(_KL_START, """
    opt = torch.optim.SGD([mu, logvar], lr=lr)
    path = [mu.item()]
    for _ in range(num_steps):
        opt.zero_grad()
        (0.5 * (mu**2 + logvar.exp() - logvar - 1)).backward()
        opt.step()
""", _KL_END))
_c("6.7", "wrong", "SGD with momentum 0.9", _j(_KL_START, """
    opt = torch.optim.SGD([mu, logvar], lr=lr, momentum=0.9)
    path = [mu.item()]
    for _ in range(num_steps):
        opt.zero_grad()
        (strength * 0.5 * (mu**2 + logvar.exp() - logvar - 1)).backward()
        opt.step()
""", _KL_END))
_c("6.7", "wrong", "Adam instead of SGD", _j(_KL_START, """
    opt = torch.optim.Adam([mu, logvar], lr=lr)
    path = [mu.item()]
    for _ in range(num_steps):
        opt.zero_grad()
        (strength * 0.5 * (mu**2 + logvar.exp() - logvar - 1)).backward()
        opt.step()
""", _KL_END))
_c("6.7", "wrong", "gradient never zeroed (it accumulates)", _j(_KL_START, """
    opt = torch.optim.SGD([mu, logvar], lr=lr)
    path = [mu.item()]
    for _ in range(num_steps):
        (strength * 0.5 * (mu**2 + logvar.exp() - logvar - 1)).backward()
        opt.step()
""", _KL_END))
_c("6.7", "partial", "raises on divergence instead of recording it", _j(_KL_START, """
    opt = torch.optim.SGD([mu, logvar], lr=lr)
    path = [mu.item()]
    for _ in range(num_steps):
        opt.zero_grad()
        (strength * 0.5 * (mu**2 + logvar.exp() - logvar - 1)).backward()
        opt.step()
        if not math.isfinite(mu.item()):
            raise FloatingPointError("diverged")
        path.append(mu.item())
    return torch.tensor(path, dtype=torch.float64)
"""))
_c("6.7", "full", "the update written out by hand", """
    mu, lv, path = float(mu0), float(logvar0), [float(mu0)]
    for _ in range(num_steps):
        mu, lv = mu - lr * strength * mu, lv - lr * strength * 0.5 * (math.exp(min(lv, 700)) - 1)
        path.append(mu)
        if not math.isfinite(mu):
            break
    return torch.tensor(path, dtype=torch.float64)
""")

# ------------------------------------------------------------------------------------ 6.8 largest_stable_strength
_c("6.8", "wrong", "1 / lr (half the limit)", "return 1.0 / lr")
_c("6.8", "wrong", "4 / lr (the limit along logvar)", "return 4.0 / lr")
_c("6.8", "wrong", "2 * lr (upside down)", "return 2.0 * lr")
_c("6.8", "wrong", "lr / 2", "return lr / 2.0")
_c("6.8", "wrong", "2 / lr**2", "return 2.0 / lr**2")
_c("6.8", "full", "found by bisection on the SGD factor |1 - lr * w|", """
    lo, hi = 0.0, 1.0
    while abs(1 - lr * hi) <= 1:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if abs(1 - lr * mid) <= 1 else (lo, mid)
    return (lo + hi) / 2
""")



# Later lessons keep their cases in a file each (cases_ex07.py, cases_ex08.py, ...), written with the
# same helpers: read here in order, so one list holds every exercise's cases.
for _path in sorted(Path(__file__).parent.glob("cases_ex*.py")):
    exec(compile(_path.read_text(), str(_path), "exec"), {"_c": _c, "_j": _j, "__name__": _path.stem})

CASES: tuple[Case, ...] = tuple(_CASES)
