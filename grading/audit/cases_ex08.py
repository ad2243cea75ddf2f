"""Audit cases of lesson 08 (catastrophic forgetting and EWC): exercises 8.1-8.3."""

# ------------------------------------------------------------------------------------ 8.1 empirical_fisher
_c("8.1", "wrong", "squared gradient of the batch's mean log p", """
    params = list(model.parameters())
    log_p = torch.log_softmax(model(X), dim=1)[torch.arange(len(X)), y].mean()
    return [g ** 2 for g in torch.autograd.grad(log_p, params)]
""")
_c("8.1", "wrong", "sum over examples, not the mean", """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for x, target in zip(X, y):
        grads = torch.autograd.grad(torch.log_softmax(model(x[None]), dim=1)[0, target], params)
        for t, g in zip(total, grads):
            t += g ** 2
    return total
""")
_c("8.1", "wrong", "gradient of p(y|x), not of log p(y|x)", """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for x, target in zip(X, y):
        grads = torch.autograd.grad(torch.softmax(model(x[None]), dim=1)[0, target], params)
        for t, g in zip(total, grads):
            t += g ** 2
    return [t / len(X) for t in total]
""")
_c("8.1", "wrong", "gradient of the raw logit (no log-softmax)", """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for x, target in zip(X, y):
        grads = torch.autograd.grad(model(x[None])[0, target], params)
        for t, g in zip(total, grads):
            t += g ** 2
    return [t / len(X) for t in total]
""")
_c("8.1", "wrong", "log-softmax over dim 0 (the batch of one)", """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for x, target in zip(X, y):
        grads = torch.autograd.grad(torch.log_softmax(model(x[None]), dim=0)[0, target], params)
        for t, g in zip(total, grads):
            t += g ** 2
    return [t / len(X) for t in total]
""")
_c("8.1", "wrong", "p.grad accumulates (no zero_grad in the loop)", """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    model.zero_grad()
    for x, target in zip(X, y):
        torch.log_softmax(model(x[None]), dim=1)[0, target].backward()
        for t, p in zip(total, params):
            t += p.grad ** 2
    return [t / len(X) for t in total]
""")
_c("8.1", "wrong", "mean absolute gradient (no square)", """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for x, target in zip(X, y):
        grads = torch.autograd.grad(torch.log_softmax(model(x[None]), dim=1)[0, target], params)
        for t, g in zip(total, grads):
            t += g.abs()
    return [t / len(X) for t in total]
""")
_c("8.1", "wrong", "first example skipped (off by one)", """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i in range(1, len(X)):
        grads = torch.autograd.grad(torch.log_softmax(model(X[i:i + 1]), dim=1)[0, y[i]], params)
        for t, g in zip(total, grads):
            t += g ** 2
    return [t / len(X) for t in total]
""")
_c("8.1", "wrong", "divides by N - 1", """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for x, target in zip(X, y):
        grads = torch.autograd.grad(torch.log_softmax(model(x[None]), dim=1)[0, target], params)
        for t, g in zip(total, grads):
            t += g ** 2
    return [t / (len(X) - 1) for t in total]
""")
_c("8.1", "wrong", "returns a dict by parameter name", """
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for x, target in zip(X, y):
        grads = torch.autograd.grad(torch.log_softmax(model(x[None]), dim=1)[0, target], list(model.parameters()))
        for n, g in zip(total, grads):
            total[n] += g ** 2 / len(X)
    return total
""")
_c("8.1", "wrong", "labels of the model's prediction, not y", """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for x in X:
        log_p = torch.log_softmax(model(x[None]), dim=1)[0]
        grads = torch.autograd.grad(log_p[log_p.argmax()], params)
        for t, g in zip(total, grads):
            t += g ** 2
    return [t / len(X) for t in total]
""")
_c("8.1", "full", "per-example cross-entropy, backward and p.grad", """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i in range(len(X)):
        model.zero_grad()
        F.cross_entropy(model(X[i:i + 1]), y[i:i + 1]).backward()
        for t, p in zip(total, params):
            t.add_(p.grad.detach() ** 2)
    model.zero_grad()
    return [t / X.shape[0] for t in total]
""")
_c("8.1", "full", "torch.func: vmap of grad", """
    from torch.func import functional_call, grad, vmap
    names = [n for n, _ in model.named_parameters()]
    values = {n: p.detach() for n, p in model.named_parameters()}

    def log_p(ps, x, t):
        return torch.log_softmax(functional_call(model, ps, (x[None],)), dim=1)[0].gather(0, t[None])[0]

    per_ex = vmap(grad(log_p), in_dims=(None, 0, 0))(values, X, y)
    return [(per_ex[n] ** 2).mean(0) for n in names]
""")
_c("8.1", "full", "one forward pass, one grad per row (retain_graph)", """
    params = list(model.parameters())
    log_p = torch.log_softmax(model(X), dim=1).gather(1, y[:, None])[:, 0]
    sq = [torch.autograd.grad(log_p[n], params, retain_graph=True) for n in range(len(X))]
    return [torch.stack([g[k] ** 2 for g in sq]).mean(0) for k in range(len(params))]
""")

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

# ------------------------------------------------------------------------------------ 8.3 LAM
_c("8.3", "wrong", "EWC off (plain SGD)", "LAM = 0.0")
_c("8.3", "wrong", "too small to keep A", "LAM = 1.0")
_c("8.3", "wrong", "still too small", "LAM = 10.0")
_c("8.3", "wrong", "the lesson's large lam (diverges with SGD)", "LAM = 1e4")
_c("8.3", "wrong", "past the stability limit", "LAM = 1000.0")
_c("8.3", "wrong", "a string", 'LAM = "100"')
_c("8.3", "wrong", "negative", "LAM = -100.0")
_c("8.3", "partial", "close to the limit: passes one draw, diverges on the other", "LAM = 300.0")
_c("8.3", "full", "an int in the window", "LAM = 50")
_c("8.3", "full", "another value in the window", """
    LAM = 3 * 25.0  # between forgetting (small) and SGD's stability limit (large)
""")
