"""Audit cases of lesson 08 (catastrophic forgetting and EWC): exercises 8.1-8.3."""

# ------------------------------------------------------------------------------------ 8.2 ewc_penalty
_c("8.2", "wrong", "no 1/2", """
    return lam * sum(((p - a) ** 2 * f).sum() for p, a, f in zip(params, anchor, fisher))
""")
_c("8.2", "wrong", "squares F times the difference", """
    return 0.5 * lam * sum(((f * (p - a)) ** 2).sum() for p, a, f in zip(params, anchor, fisher))
""")
_c("8.2", "wrong", "mean over entries, not the sum", """
    return 0.5 * lam * sum(((p - a) ** 2 * f).mean() for p, a, f in zip(params, anchor, fisher))
""")
_c("8.2", "wrong", "difference not squared", """
    return 0.5 * lam * sum(((p - a) * f).sum() for p, a, f in zip(params, anchor, fisher))
""")
_c("8.2", "wrong", "plain L2 to the anchor (Fisher forgotten)", """
    return 0.5 * lam * sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))
""")
_c("8.2", "wrong", "returns a Python float", """
    return 0.5 * lam * sum(float(((p - a) ** 2 * f).sum()) for p, a, f in zip(params, anchor, fisher))
""")
_c("8.2", "wrong", "multiplies into the Fisher in place", """
    total = 0.0
    for p, a, f in zip(params, anchor, fisher):
        f *= (p.detach() - a) ** 2
        total = total + f.sum()
    return 0.5 * lam * torch.as_tensor(total)
""")
_c("8.2", "wrong", "only the first parameter tensor", """
    return 0.5 * lam * ((params[0] - anchor[0]) ** 2 * fisher[0]).sum()
""")
_c("8.2", "partial", "detached (right value, no gradient)", """
    return 0.5 * lam * sum(((p.detach() - a) ** 2 * f).sum() for p, a, f in zip(params, anchor, fisher))
""")
_c("8.2", "full", "flatten and concatenate", """
    d = torch.cat([(p - a).reshape(-1) for p, a in zip(params, anchor)])
    w = torch.cat([f.reshape(-1) for f in fisher])
    return lam / 2 * (w * d * d).sum()
""")
_c("8.2", "full", "loop with a tensor accumulator and torch.dot", """
    total = torch.zeros(())
    for p, a, f in zip(params, anchor, fisher):
        total = total + torch.dot(f.flatten(), torch.square(p - a).flatten())
    return lam * total / 2
""")
_c("8.2", "full", "stack of per-tensor sums", """
    return (lam / 2) * torch.stack([torch.sum(f * (p - a) * (p - a)) for p, a, f in zip(params, anchor, fisher)]).sum()
""")
