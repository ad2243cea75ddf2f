"""Audit cases of lesson 07 (gradient statistics of Matryoshka embeddings): exercises 7.1-7.3."""

# ------------------------------------------------------------------------------------ 7.1 mrl_loss
_c("7.1", "wrong", "mean over the sizes, not the sum", """
    if weights is None:
        weights = [1.0] * len(logits)
    return sum(c * F.cross_entropy(lg, y) for c, lg in zip(weights, logits)) / len(logits)
""")
_c("7.1", "wrong", "weighted average (divides by sum of weights)", """
    if weights is None:
        weights = [1.0] * len(logits)
    return sum(c * F.cross_entropy(lg, y) for c, lg in zip(weights, logits)) / sum(weights)
""")
_c("7.1", "wrong", "weights ignored", "return sum(F.cross_entropy(lg, y) for lg in logits)")
_c("7.1", "wrong", "weights in reverse order", """
    if weights is None:
        weights = [1.0] * len(logits)
    return sum(c * F.cross_entropy(lg, y) for c, lg in zip(reversed(list(weights)), logits))
""")
_c("7.1", "wrong", "cross-entropy summed over the batch", """
    if weights is None:
        weights = [1.0] * len(logits)
    return sum(c * F.cross_entropy(lg, y, reduction="sum") for c, lg in zip(weights, logits))
""")
_c("7.1", "wrong", "nll_loss on raw logits (no log-softmax)", """
    if weights is None:
        weights = [1.0] * len(logits)
    return sum(c * F.nll_loss(lg, y) for c, lg in zip(weights, logits))
""")
_c("7.1", "wrong", "returns a Python float (.item())", """
    if weights is None:
        weights = [1.0] * len(logits)
    return sum(c * F.cross_entropy(lg, y).item() for c, lg in zip(weights, logits))
""")
_c("7.1", "wrong", "float sum wrapped back into torch.tensor (no gradient)", """
    if weights is None:
        weights = [1.0] * len(logits)
    return torch.tensor(sum(c * float(F.cross_entropy(lg, y)) for c, lg in zip(weights, logits)))
""")
_c("7.1", "partial", "default weights [1.0]: only the first head", """
    if weights is None:
        weights = [1.0]
    return sum(c * F.cross_entropy(lg, y) for c, lg in zip(weights, logits))
""")
_c("7.1", "full", "stack of the losses dotted with the weights", """
    losses = torch.stack([F.cross_entropy(lg, y) for lg in logits])
    if weights is None:
        return losses.sum()
    return (losses * torch.as_tensor(weights, dtype=losses.dtype)).sum()
""")
_c("7.1", "full", "log_softmax and gather by hand, += on a zero tensor", """
    total = torch.zeros(())
    for k, lg in enumerate(logits):
        c = 1.0 if weights is None else weights[k]
        logp = lg.log_softmax(dim=1)
        total += c * -logp.gather(1, y.unsqueeze(1)).mean()
    return total
""")

# ------------------------------------------------------------------------------ 7.2 gradient_stats
_c("7.2", "wrong", "unbiased variance (divides by T - 1)", """
    G = torch.stack(list(grads)).double()
    var = G.var(dim=0, unbiased=True)
    pairs = list(zip(boundaries, boundaries[1:]))
    return [float(G[:, a:b].abs().mean()) for a, b in pairs], [float(var[a:b].mean()) for a, b in pairs]
""")
_c("7.2", "wrong", "variance over every element of the slice, not over the steps", """
    G = torch.stack(list(grads)).double()
    pairs = list(zip(boundaries, boundaries[1:]))
    return ([float(G[:, a:b].abs().mean()) for a, b in pairs],
            [float(G[:, a:b].var(unbiased=False)) for a, b in pairs])
""")
_c("7.2", "wrong", "|mean| instead of mean |g|", """
    G = torch.stack(list(grads)).double()
    var = G.var(dim=0, unbiased=False)
    pairs = list(zip(boundaries, boundaries[1:]))
    return [float(G[:, a:b].mean().abs()) for a, b in pairs], [float(var[a:b].mean()) for a, b in pairs]
""")
_c("7.2", "wrong", "slice end off by one (b + 1)", """
    G = torch.stack(list(grads)).double()
    var = G.var(dim=0, unbiased=False)
    pairs = list(zip(boundaries, boundaries[1:]))
    return ([float(G[:, a:b + 1].abs().mean()) for a, b in pairs],
            [float(var[a:b + 1].mean()) for a, b in pairs])
""")
_c("7.2", "wrong", "nested prefixes [0, b) as in MRL", """
    G = torch.stack(list(grads)).double()
    var = G.var(dim=0, unbiased=False)
    ends = list(boundaries[1:])
    return [float(G[:, :b].abs().mean()) for b in ends], [float(var[:b].mean()) for b in ends]
""")
_c("7.2", "wrong", "mean over the slice first, then variance over the steps", """
    G = torch.stack(list(grads)).double()
    pairs = list(zip(boundaries, boundaries[1:]))
    return ([float(G[:, a:b].abs().mean()) for a, b in pairs],
            [float(G[:, a:b].mean(dim=(1, 2)).var(unbiased=False)) for a, b in pairs])
""")
_c("7.2", "wrong", "slices columns (wrong axis)", """
    G = torch.stack(list(grads)).double()
    var = G.var(dim=0, unbiased=False)
    pairs = list(zip(boundaries, boundaries[1:]))
    return ([float(G[:, :, a:b].abs().mean()) for a, b in pairs],
            [float(var[:, a:b].mean()) for a, b in pairs])
""")
_c("7.2", "wrong", "second moment (no centring) as the variance", """
    G = torch.stack(list(grads)).double()
    pairs = list(zip(boundaries, boundaries[1:]))
    return ([float(G[:, a:b].abs().mean()) for a, b in pairs],
            [float((G[:, a:b] ** 2).mean()) for a, b in pairs])
""")
_c("7.2", "wrong", "abs_() in place on the inputs, then variance of |g|", """
    for g in grads:
        g.abs_()
    G = torch.stack(list(grads)).double()
    var = G.var(dim=0, unbiased=False)
    pairs = list(zip(boundaries, boundaries[1:]))
    return [float(G[:, a:b].mean()) for a, b in pairs], [float(var[a:b].mean()) for a, b in pairs]
""")
_c("7.2", "wrong", "returns tensors, not lists of floats", """
    G = torch.stack(list(grads)).double()
    var = G.var(dim=0, unbiased=False)
    pairs = list(zip(boundaries, boundaries[1:]))
    return (torch.stack([G[:, a:b].abs().mean() for a, b in pairs]),
            torch.stack([var[a:b].mean() for a, b in pairs]))
""")
_c("7.2", "full", "NumPy: np.abs and var(axis=0)", """
    G = np.stack([g.detach().cpu().double().numpy() for g in grads])
    var = G.var(axis=0)
    mean_abs, v = [], []
    for i in range(len(boundaries) - 1):
        a, b = boundaries[i], boundaries[i + 1]
        mean_abs.append(float(np.abs(G[:, a:b]).mean()))
        v.append(float(var[a:b].mean()))
    return mean_abs, v
""")
_c("7.2", "full", "E[g^2] - E[g]^2 per element, in float64", """
    G = torch.stack([g.detach().to(torch.float64) for g in grads])
    m1 = G.mean(dim=0)
    m2 = (G * G).mean(dim=0)
    var = m2 - m1 * m1
    mean_abs, v = [], []
    for a, b in zip(boundaries[:-1], boundaries[1:]):
        mean_abs.append(G[:, a:b].abs().sum().item() / G[:, a:b].numel())
        v.append(var[a:b].mean().item())
    return mean_abs, v
""")
_c("7.2", "full", "torch.var_mean with correction=0, per slice", """
    G = torch.stack(list(grads)).double()
    mean_abs, v = [], []
    for a, b in zip(boundaries, boundaries[1:]):
        s = G[:, a:b]
        var, _ = torch.var_mean(s, dim=0, correction=0)
        mean_abs.append(s.abs().mean().item())
        v.append(var.mean().item())
    return mean_abs, v
""")

# ------------------------------------------------------------------------------ 7.3 choose_weights
_c("7.3", "wrong", "the lesson's default (1, 1)", "return (1.0, 1.0)")
_c("7.3", "wrong", "(0, 1): drops the 96-d loss", "return (0.0, 1.0)")
_c("7.3", "wrong", "weights swapped: (1, 0.2)", "return (1.0, 0.2)")
_c("7.3", "wrong", "(0.05, 1): below a tenth of the other", "return (0.05, 1.0)")
_c("7.3", "wrong", "(0.4, 1): tuned on epoch 0 only", "return (0.4, 1.0)")
_c("7.3", "wrong", "(1, 2): doubling c_192 is c_96 = 0.5 under Adam", "return (1.0, 2.0)")
_c("7.3", "wrong", "the slider value alone (c_96 = 0.2)", "return 0.2")
_c("7.3", "full", "(1, 5): the master scaled by 5", "return (1.0, 5.0)")
_c("7.3", "full", "a list [0.25, 1]", "return [0.25, 1.0]")
_c("7.3", "full", "(0.15, 1) as numpy floats", "return (np.float64(0.15), np.float64(1.0))")
