"""Audit cases of lesson 09 (training with local losses): exercises 9.1-9.3."""

# ------------------------------------------------------------------------------------ 9.1 chunked_logits
_c("9.1", "wrong", "never detaches (local ignored)", """
    logits, h = [], X
    for chunk, head in zip(chunks, heads):
        h = chunk(h)
        logits.append(head(h))
    return logits
""")
_c("9.1", "wrong", "detaches the chunk's output (the chunk never trains)", """
    logits, h = [], X
    for chunk, head in zip(chunks, heads):
        h = chunk(h)
        if local:
            h = h.detach()
        logits.append(head(h))
    return logits
""")
_c("9.1", "wrong", "local inverted", """
    logits, h = [], X
    for chunk, head in zip(chunks, heads):
        h = chunk(h if local else h.detach())
        logits.append(head(h))
    return logits
""")
_c("9.1", "wrong", "chunks run under no_grad when local", """
    import contextlib
    logits, h = [], X
    for chunk, head in zip(chunks, heads):
        with torch.no_grad() if local else contextlib.nullcontext():
            h = chunk(h)
        logits.append(head(h))
    return logits
""")
_c("9.1", "wrong", "detaches only the network's input once", """
    logits, h = [], X.detach() if local else X
    for chunk, head in zip(chunks, heads):
        h = chunk(h)
        logits.append(head(h))
    return logits
""")
_c("9.1", "wrong", "returns the stacked logits as one tensor", """
    logits, h = [], X
    for chunk, head in zip(chunks, heads):
        h = chunk(h.detach() if local else h)
        logits.append(head(h))
    return torch.stack(logits)
""")
_c("9.1", "wrong", "returns only the last head's logits", """
    h = X
    for chunk in chunks:
        h = chunk(h.detach() if local else h)
    return [heads[-1](h)]
""")
_c("9.1", "partial", "always detaches (local=False ignored)", """
    logits, h = [], X
    for chunk, head in zip(chunks, heads):
        h = chunk(h.detach())
        logits.append(head(h))
    return logits
""")
_c("9.1", "full", "detach after the head reads the output", """
    logits, h = [], X
    for chunk, head in zip(chunks, heads):
        h = chunk(h)
        logits.append(head(h))
        if local:
            h = h.detach()
    return logits
""")
_c("9.1", "full", "indexed loop, boundaries between chunks only", """
    out = []
    h = X
    for j in range(len(chunks)):
        if local and j > 0:
            h = h.detach()
        h = chunks[j](h)
        out.append(heads[j](h))
    return out
""")
_c("9.1", "full", "tuple of logits, detach as a free function", """
    h, out = X, ()
    for chunk, head in zip(chunks, heads):
        h = chunk(torch.Tensor.detach(h) if local else h)
        out = out + (head(h),)
    return out
""")

# ------------------------------------------------------------------------------------ 9.2 probe_accuracy
_PROBE_FIT = """
    C = int(max(y.max(), y_val.max())) + 1
    A = torch.cat([features.double(), torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
    M = A.T @ A + ridge * len(A) * torch.eye(A.shape[1], dtype=torch.float64)
    W = torch.linalg.solve(M, A.T @ F.one_hot(y, C).double())
    A_val = torch.cat([features_val.double(), torch.ones(len(features_val), 1, dtype=torch.float64)], dim=1)
"""
_c("9.2", "wrong", "no bias column", """
    C = int(max(y.max(), y_val.max())) + 1
    A = features.double()
    M = A.T @ A + ridge * len(A) * torch.eye(A.shape[1], dtype=torch.float64)
    W = torch.linalg.solve(M, A.T @ F.one_hot(y, C).double())
    return float(((features_val.double() @ W).argmax(dim=1) == y_val).double().mean())
""")
_c("9.2", "wrong", "scores the training set", _j(_PROBE_FIT, """
    return float(((A @ W).argmax(dim=1) == y).double().mean())
"""))
_c("9.2", "wrong", "regresses the class index, rounds the score", """
    A = torch.cat([features.double(), torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
    M = A.T @ A + ridge * len(A) * torch.eye(A.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(M, A.T @ y.double())
    A_val = torch.cat([features_val.double(), torch.ones(len(features_val), 1, dtype=torch.float64)], dim=1)
    return float(((A_val @ w).round() == y_val).double().mean())
""")
_c("9.2", "wrong", "argmax over the wrong axis", _j(_PROBE_FIT, """
    pred = (A_val @ W).argmax(dim=0)
    return float((pred == y_val[: len(pred)]).double().mean())
"""))
_c("9.2", "wrong", "returns a tensor", _j(_PROBE_FIT, """
    return ((A_val @ W).argmax(dim=1) == y_val).double().mean()
"""))
_c("9.2", "wrong", "returns the error rate", _j(_PROBE_FIT, """
    return float(((A_val @ W).argmax(dim=1) != y_val).double().mean())
"""))
_c("9.2", "partial", "ridge ignored (plain least squares)", """
    C = int(max(y.max(), y_val.max())) + 1
    A = torch.cat([features.double(), torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
    W = torch.linalg.lstsq(A, F.one_hot(y, C).double()).solution
    A_val = torch.cat([features_val.double(), torch.ones(len(features_val), 1, dtype=torch.float64)], dim=1)
    return float(((A_val @ W).argmax(dim=1) == y_val).double().mean())
""")
_c("9.2", "partial", "ridge not scaled by N", """
    C = int(max(y.max(), y_val.max())) + 1
    A = torch.cat([features.double(), torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
    M = A.T @ A + ridge * torch.eye(A.shape[1], dtype=torch.float64)
    W = torch.linalg.solve(M, A.T @ F.one_hot(y, C).double())
    A_val = torch.cat([features_val.double(), torch.ones(len(features_val), 1, dtype=torch.float64)], dim=1)
    return float(((A_val @ W).argmax(dim=1) == y_val).double().mean())
""")
_c("9.2", "full", "Cholesky solve, bias column first", """
    C = int(max(y.max(), y_val.max())) + 1
    N = features.shape[0]
    A = torch.hstack([torch.ones(N, 1, dtype=torch.float64), features.to(torch.float64)])
    Y = torch.zeros(N, C, dtype=torch.float64)
    Y[torch.arange(N), y] = 1.0
    L = torch.linalg.cholesky(A.T @ A + ridge * N * torch.eye(A.shape[1], dtype=torch.float64))
    W = torch.cholesky_solve(A.T @ Y, L)
    A_val = torch.hstack([torch.ones(len(features_val), 1, dtype=torch.float64), features_val.to(torch.float64)])
    pred = (A_val @ W).argmax(dim=1)
    return (pred == y_val).sum().item() / len(y_val)
""")
_c("9.2", "full", "NumPy normal equations", """
    import numpy as np
    Xtr = features.detach().cpu().numpy().astype(np.float64)
    Xva = features_val.detach().cpu().numpy().astype(np.float64)
    ytr, yva = y.cpu().numpy(), y_val.cpu().numpy()
    C = int(max(ytr.max(), yva.max())) + 1
    A = np.c_[Xtr, np.ones(len(Xtr))]
    W = np.linalg.solve(A.T @ A + ridge * len(A) * np.eye(A.shape[1]), A.T @ np.eye(C)[ytr])
    return float(np.mean((np.c_[Xva, np.ones(len(Xva))] @ W).argmax(axis=1) == yva))
""")
_c("9.2", "full", "lstsq on rows augmented by the ridge", """
    C = int(max(y.max(), y_val.max())) + 1
    N = len(features)
    A = F.pad(features.double(), (0, 1), value=1.0)
    A_aug = torch.cat([A, (ridge * N) ** 0.5 * torch.eye(A.shape[1], dtype=torch.float64)])
    Y_aug = torch.cat([F.one_hot(y, C).double(), torch.zeros(A.shape[1], C, dtype=torch.float64)])
    W = torch.linalg.lstsq(A_aug, Y_aug).solution
    scores = F.pad(features_val.double(), (0, 1), value=1.0) @ W
    return float((scores.argmax(dim=1) == y_val).float().mean().item())
""")

# ------------------------------------------------------------------------------------ 9.3 CHOSEN_K
_c("9.3", "wrong", "backprop only (K = 1, too cautious)", "CHOSEN_K = 1")
_c("9.3", "wrong", "K = 4 (past the bound)", "CHOSEN_K = 4")
_c("9.3", "wrong", "K = 8 (the most chunks)", "CHOSEN_K = 8")
_c("9.3", "wrong", "K as a string", 'CHOSEN_K = "2"')
_c("9.3", "wrong", "K as a float", "CHOSEN_K = 2.0")
_c("9.3", "wrong", "K = 3 (not one of the choices)", "CHOSEN_K = 3")
_c("9.3", "full", "K as an expression", "CHOSEN_K = 2 ** 1")
_c("9.3", "full", "K picked from the tuple of choices", "CHOSEN_K = (1, 2, 4, 8)[1]")
