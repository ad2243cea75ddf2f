"""Audit cases of lesson 10 (hypergradients): exercises 10.1-10.3."""

# ------------------------------------------------------------------------------------ 10.1 ridge_hypergradient
_c("10.1", "wrong", "differentiates with respect to lambda, not rho", """
    lam = torch.tensor(math.exp(rho), dtype=X.dtype, requires_grad=True)
    n = X.shape[0]
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(num_steps):
        w = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    f = 0.5 * (X_val @ w - y_val).pow(2).mean()
    (grad,) = torch.autograd.grad(f, lam)
    return float(grad)
""")
_c("10.1", "wrong", "lambda = rho (no exp)", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    lam = rho_t
    n = X.shape[0]
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(num_steps):
        w = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    f = 0.5 * (X_val @ w - y_val).pow(2).mean()
    (grad,) = torch.autograd.grad(f, rho_t)
    return float(grad)
""")
_c("10.1", "wrong", "weights detached every step (only the last step's gradient)", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    lam = rho_t.exp()
    n = X.shape[0]
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(num_steps):
        w = w.detach() - lr * (X.T @ (X @ w.detach() - y) / n + lam * w.detach())
    f = 0.5 * (X_val @ w - y_val).pow(2).mean()
    (grad,) = torch.autograd.grad(f, rho_t)
    return float(grad)
""")
_c("10.1", "wrong", "validation loss summed, not averaged", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    lam = rho_t.exp()
    n = X.shape[0]
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(num_steps):
        w = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    f = 0.5 * (X_val @ w - y_val).pow(2).sum()
    (grad,) = torch.autograd.grad(f, rho_t)
    return float(grad)
""")
_c("10.1", "wrong", "validation loss without the 1/2", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    lam = rho_t.exp()
    n = X.shape[0]
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(num_steps):
        w = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    f = (X_val @ w - y_val).pow(2).mean()
    (grad,) = torch.autograd.grad(f, rho_t)
    return float(grad)
""")
_c("10.1", "wrong", "one step too many", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    lam = rho_t.exp()
    n = X.shape[0]
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(num_steps + 1):
        w = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    f = 0.5 * (X_val @ w - y_val).pow(2).mean()
    (grad,) = torch.autograd.grad(f, rho_t)
    return float(grad)
""")
_c("10.1", "wrong", "data gradient divided by d, not n", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    lam = rho_t.exp()
    d = X.shape[1]
    w = torch.zeros(d, dtype=X.dtype)
    for _ in range(num_steps):
        w = w - lr * (X.T @ (X @ w - y) / d + lam * w)
    f = 0.5 * (X_val @ w - y_val).pow(2).mean()
    (grad,) = torch.autograd.grad(f, rho_t)
    return float(grad)
""")
_c("10.1", "wrong", "penalty gradient lam/2 * w", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    lam = rho_t.exp()
    n = X.shape[0]
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(num_steps):
        w = w - lr * (X.T @ (X @ w - y) / n + 0.5 * lam * w)
    f = 0.5 * (X_val @ w - y_val).pow(2).mean()
    (grad,) = torch.autograd.grad(f, rho_t)
    return float(grad)
""")
_c("10.1", "wrong", "response measured on the training data", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    lam = rho_t.exp()
    n = X.shape[0]
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(num_steps):
        w = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    f = 0.5 * (X @ w - y).pow(2).mean()
    (grad,) = torch.autograd.grad(f, rho_t)
    return float(grad)
""")
_c("10.1", "wrong", "sign flipped (returns the descent direction)", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    lam = rho_t.exp()
    n = X.shape[0]
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(num_steps):
        w = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    f = 0.5 * (X_val @ w - y_val).pow(2).mean()
    (grad,) = torch.autograd.grad(f, rho_t)
    return -float(grad)
""")
_c("10.1", "wrong", "in-place weight update (autograd error)", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    lam = rho_t.exp()
    n = X.shape[0]
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(num_steps):
        w -= lr * (X.T @ (X @ w - y) / n + lam * w)
    f = 0.5 * (X_val @ w - y_val).pow(2).mean()
    (grad,) = torch.autograd.grad(f, rho_t)
    return float(grad)
""")
_c("10.1", "full", "torch.func.grad of f(rho)", """
    def response(r):
        lam = torch.exp(r)
        w = torch.zeros(X.shape[1], dtype=X.dtype)
        for _ in range(num_steps):
            w = w - lr * (X.T @ (X @ w - y) / len(y) + lam * w)
        return 0.5 * torch.mean((X_val @ w - y_val) ** 2)
    return torch.func.grad(response)(torch.tensor(float(rho), dtype=X.dtype)).item()
""")
_c("10.1", "full", "backward() and F.mse_loss", """
    import torch.nn.functional as F
    rho_t = torch.tensor(rho, dtype=torch.float64, requires_grad=True)
    w = X.new_zeros(X.shape[1])
    for t in range(num_steps):
        grad_w = X.T @ (X @ w - y) / len(y) + torch.exp(rho_t) * w
        w = w - lr * grad_w
    loss = 0.5 * F.mse_loss(X_val @ w, y_val)
    loss.backward()
    return rho_t.grad.item()
""")
_c("10.1", "full", "residual form, returns a 0-d tensor", """
    rho_t = torch.tensor(float(rho), dtype=X.dtype, requires_grad=True)
    H, b = X.T @ X / X.shape[0], X.T @ y / X.shape[0]
    w = torch.zeros_like(b)
    for _ in range(num_steps):
        w = w - lr * (H @ w - b + rho_t.exp() * w)
    r = X_val @ w - y_val
    f = (r @ r) / (2 * len(y_val))
    return torch.autograd.grad(f, rho_t)[0].detach()
""")

# ------------------------------------------------------------------------------------ 10.2 forward_step
_c("10.2", "wrong", "B with the new weights", """
    lam = math.exp(rho)
    n = X.shape[0]
    w_next = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    z_next = z - lr * (X.T @ (X @ z) / n + lam * z) - lr * lam * w_next
    return w_next, z_next
""")
_c("10.2", "wrong", "d lambda / d rho forgotten in B", """
    lam = math.exp(rho)
    n = X.shape[0]
    w_next = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    z_next = z - lr * (X.T @ (X @ z) / n + lam * z) - lr * w
    return w_next, z_next
""")
_c("10.2", "wrong", "sign of B flipped", """
    lam = math.exp(rho)
    n = X.shape[0]
    w_next = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    z_next = z - lr * (X.T @ (X @ z) / n + lam * z) + lr * lam * w
    return w_next, z_next
""")
_c("10.2", "wrong", "A without the lambda term", """
    lam = math.exp(rho)
    n = X.shape[0]
    w_next = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    z_next = z - lr * (X.T @ (X @ z) / n) - lr * lam * w
    return w_next, z_next
""")
_c("10.2", "wrong", "A taken as the identity", """
    lam = math.exp(rho)
    n = X.shape[0]
    w_next = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    z_next = z - lr * lam * w
    return w_next, z_next
""")
_c("10.2", "wrong", "A applied with y (the gradient step on z)", """
    lam = math.exp(rho)
    n = X.shape[0]
    w_next = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    z_next = z - lr * (X.T @ (X @ z - y) / n + lam * z) - lr * lam * w
    return w_next, z_next
""")
_c("10.2", "wrong", "in-place updates of w and z", """
    lam = math.exp(rho)
    n = X.shape[0]
    z -= lr * (X.T @ (X @ z) / n + lam * z) + lr * lam * w
    w -= lr * (X.T @ (X @ w - y) / n + lam * w)
    return w, z
""")
_c("10.2", "wrong", "lambda = rho (no exp)", """
    lam = rho
    n = X.shape[0]
    w_next = w - lr * (X.T @ (X @ w - y) / n + lam * w)
    z_next = z - lr * (X.T @ (X @ z) / n + lam * z) - lr * lam * w
    return w_next, z_next
""")
_c("10.2", "full", "torch.func.jvp of the step", """
    rho_t = torch.tensor(float(rho), dtype=w.dtype)
    def step(w_, r_):
        return w_ - lr * (X.T @ (X @ w_ - y) / X.shape[0] + torch.exp(r_) * w_)
    return torch.func.jvp(step, (w, rho_t), (z, torch.ones_like(rho_t)))
""")
_c("10.2", "full", "A built as a matrix", """
    n, d = X.shape
    lam = math.exp(rho)
    A = torch.eye(d, dtype=X.dtype) - lr * (X.T @ X / n + lam * torch.eye(d, dtype=X.dtype))
    B = -lr * lam * w
    w_next = A @ w + lr * X.T @ y / n
    return w_next, A @ z + B
""")
_c("10.2", "full", "in place on clones", """
    lam = torch.tensor(rho, dtype=w.dtype).exp()
    g = X.T @ (X @ w - y) / len(y) + lam * w
    Az = z - lr * (X.T @ (X @ z) / len(y) + lam * z)
    w_next = w.clone()
    w_next.sub_(lr * g)
    z_next = Az.clone()
    z_next.add_(w, alpha=-(lr * lam).item())
    return w_next, z_next
""")

# ------------------------------------------------------------------------------------ 10.3 choose_hyper_lr
_c("10.3", "wrong", "the notebook's 0.3 (too short for 10 steps)", "return 0.3")
_c("10.3", "wrong", "0.5 (stops short on the notebook's problem)", "return 0.5")
_c("10.3", "wrong", "the whole distance, 6 (diverges)", "return 6.0")
_c("10.3", "wrong", "1.0 (jumps past the cliff)", "return 1.0")
_c("10.3", "wrong", "Adam's default 1e-3", "return 1e-3")
_c("10.3", "wrong", "negative (a descent sign put in by hand)", "return -0.65")
_c("10.3", "wrong", "0.1 (small and safe)", "return 0.1")
_c("10.3", "full", "distance over steps", """
    distance = 0.0 - (-6.0)  # from rho = -6 to the valley near 0
    return distance / 10
""")
_c("10.3", "full", "0.7", "return 0.7")
_c("10.3", "full", "a tensor, 0.65", "return torch.tensor(0.65)")
