"""Hypergradients: tune a regulariser by gradient descent through training itself.

Training is a dynamical system: the state ``s`` (the weights) moves by
``s_t = Phi(s_{t-1}, rho)``, and the **response** is the validation loss after ``T`` steps,
``f(rho) = E(s_T)``. Its gradient ``df/drho`` is the **hypergradient**. Two exact ways to get it:

* **reverse mode** back-propagates through the ``T`` unrolled steps (``torch.autograd``):
  one backward pass, but autograd keeps every step's tensors, memory ``O(T * state)``;
* **forward mode** carries the tangent ``Z_t = ds_t/drho`` along with training,
  ``Z_t = A_t Z_{t-1} + B_t`` with ``A_t = dPhi/ds`` and ``B_t = dPhi/drho`` (``torch.func.jvp``):
  memory ``O(state * #hyperparameters)``, and it is ready at every step (online).

Central finite differences check both. On top of them: a hyper-optimiser (Adam on ``rho``), grid
and random search over the same budget of trainings, and hypergradient descent on the learning
rate, the online one-step variant.

The learners are plain functions of a flat parameter vector, so ``torch.func`` can push tangents
through them: ridge regression trained by gradient descent (``lambda = exp(rho)``, one
hyperparameter) and a small tanh MLP with a learnable weight decay and learning rate (two).
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

import torch

from ._validation import check_choice, check_number, check_seed, check_tensor, check_type
from .device import resolve_device

__all__ = [
    "MODES", "EXPLODE_FACTOR", "HyperProblem", "make_ridge_problem", "make_mlp_problem",
    "unroll", "response", "reverse_hypergrad", "forward_hypergrad", "ridge_forward_hypergrad",
    "finite_diff_hypergrad", "Hypergradient", "hypergrad",
    "HyperRun", "hyper_optimize", "SearchResult", "grid_search", "random_search",
    "HDRun", "hypergradient_descent",
]

MODES = ("reverse", "forward", "finite_diff")
EXPLODE_FACTOR = 1e3  # a loss this many times the untrained one is a blow-up, as in course_lib.train.fit


# ---------------------------------------------------------------------------------------------
# The learner: training as a dynamical system s_t = Phi(s_{t-1}, rho)
# ---------------------------------------------------------------------------------------------

@dataclass
class HyperProblem:
    """A learner, its data, and its one training step ``Phi``.

    Attributes:
        X_train, y_train (Tensor): training inputs ``(n, d)`` and targets ``(n,)``.
        X_val, y_val (Tensor): validation inputs ``(m, d)`` and targets ``(m,)``.
        model (str): ``"ridge"`` (state = weights ``(d,)``; ``rho = (log lambda,)``) or
            ``"mlp"`` (state = the flat parameters of a ``d -> width -> 1`` tanh MLP;
            ``rho = (log weight_decay, log lr_scale)``).
        init (Tensor): the starting state ``s_0``, ``(P,)``.
        width (int): hidden units of the MLP (0 for ridge).
        default_lr (float): the inner learning rate used when ``lr=None``; for ridge
            ``1 / lambda_max(X^T X / n)``: stable while ``lambda < lambda_max`` (beyond, training
            diverges and the response is recorded as inf or NaN).
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    model: str
    init: torch.Tensor
    width: int = 0
    default_lr: float = 0.1
    info: dict = field(default_factory=dict)

    @property
    def num_hyper(self) -> int:
        return 1 if self.model == "ridge" else 2

    def predict(self, s: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """``y_hat`` ``(N,)`` of the learner with state ``s`` ``(P,)`` on inputs ``X`` ``(N, d)``."""
        if self.model == "ridge":
            return X @ s
        d, k = X.shape[1], self.width  # unpack the flat vector: W1 (d, k), b1 (k,), w2 (k,), b2 ()
        W1, b1, w2, b2 = torch.split(s, [d * k, k, k, 1])
        return torch.tanh(X @ W1.view(d, k) + b1) @ w2 + b2

    def loss(self, s: torch.Tensor, split: str = "val") -> torch.Tensor:
        """Half the mean squared error on ``"train"`` or ``"val"`` (a 0-dim tensor; no penalty)."""
        X, y = (self.X_train, self.y_train) if split == "train" else (self.X_val, self.y_val)
        return 0.5 * (self.predict(s, X) - y).pow(2).mean()

    def blew_up(self, value: float, split: str = "val") -> bool:
        """True if a response ``value`` is NaN, inf or over ``EXPLODE_FACTOR`` times the untrained loss."""
        return not math.isfinite(value) or value > EXPLODE_FACTOR * self.loss(self.init, split).item()

    def step(self, s: torch.Tensor, rho: torch.Tensor, lr: float) -> torch.Tensor:
        """One gradient step ``Phi(s, rho)`` on ``loss(s, "train") + exp(rho[0]) / 2 * |s|^2``,
        with step size ``lr`` (ridge) or ``lr * exp(rho[1])`` (MLP). Returns ``s_t`` ``(P,)``."""
        # The data gradient is written out by hand (the tests check it against autograd): then a
        # step is plain tensor algebra that reverse mode, jvp and saved-tensor hooks all go through.
        X, lam = self.X_train, torch.exp(rho[0])  # lam > 0 for every rho: we search over log-lambda
        if self.model == "ridge":
            r = (X @ s - self.y_train) / len(X)  # (n,)
            return s - lr * (X.T @ r + lam * s)
        d, k = X.shape[1], self.width
        W1, b1, w2, b2 = torch.split(s, [d * k, k, k, 1])
        h = torch.tanh(X @ W1.view(d, k) + b1)  # (n, k)
        r = (h @ w2 + b2 - self.y_train) / len(X)  # (n,): d loss / d y_hat
        da = r[:, None] * w2 * (1 - h * h)  # (n, k): back through the output layer and tanh
        g = torch.cat([(X.T @ da).reshape(-1), da.sum(0), h.T @ r, r.sum().reshape(1)])  # (P,)
        return s - lr * torch.exp(rho[1]) * (g + lam * s)


def _check_sizes(where, noise, seed, dtype, **sizes):
    """Check the sizes (ints >= 1), noise, seed and dtype; return the sizes and a seeded generator."""
    check_number("noise", noise, where=where, low=0.0)
    check_type("dtype", dtype, torch.dtype, where=where)
    seed = check_seed(seed, where=where)
    return (*(check_number(k, v, where=where, low=1, integer=True) for k, v in sizes.items()),
            torch.Generator().manual_seed(seed))


def _problem(X, y, X_val, y_val, noise, model, init, width, default_lr, dtype, device, **info):
    to = dict(dtype=dtype, device=resolve_device(device))
    info = {k: v.to(**to) for k, v in info.items()}
    return HyperProblem(X.to(**to), y.to(**to), X_val.to(**to), y_val.to(**to), model, init.to(**to),
                        width, default_lr, dict(noise=noise, **info))


def make_ridge_problem(d: int = 50, n_train: int = 40, n_val: int = 400, *, noise: float = 1.0,
                       seed: int = 0, dtype: torch.dtype = torch.float64, device=None) -> HyperProblem:
    """Linear regression with more features than training examples: ridge needs its lambda.

    ``X ~ N(0, 1)``, ``w* ~ N(0, I / d)`` (signal variance 1), ``y = X w* + noise * eps``;
    ``info["w_true"]`` keeps ``w*``. Training starts at ``w = 0``.

    Args:
        d (int): features ``>= 1``. Default: ``50``.
        n_train (int): training examples ``>= 1``. Default: ``40``.
        n_val (int): validation examples ``>= 1``. Default: ``400``.
        noise (float): standard deviation of the label noise ``>= 0``. Default: ``1.0``.
        seed (int): seed of the data (a ``torch.Generator``). Default: ``0``.
        dtype (torch.dtype): float64 by default: finite differences need it.
        device (str or torch.device, optional): ``None`` picks CUDA, else MPS, else CPU.

    Returns:
        HyperProblem: ``model="ridge"``, ``init`` zeros ``(d,)``, ``default_lr = 1/lambda_max``.

    Example:
        >>> p = make_ridge_problem(5, 4, 8, device="cpu")
        >>> p.X_train.shape, p.init.shape, p.num_hyper
        (torch.Size([4, 5]), torch.Size([5]), 1)
    """
    d, n_train, n_val, g = _check_sizes("make_ridge_problem", noise, seed, dtype, d=d, n_train=n_train, n_val=n_val)
    w_true = torch.randn(d, generator=g, dtype=torch.float64) / math.sqrt(d)  # (d,): signal variance 1
    X = torch.randn(n_train + n_val, d, generator=g, dtype=torch.float64)  # (n + m, d)
    y = X @ w_true + noise * torch.randn(n_train + n_val, generator=g, dtype=torch.float64)
    lam_max = torch.linalg.eigvalsh(X[:n_train].T @ X[:n_train] / n_train)[-1].item()
    return _problem(X[:n_train], y[:n_train], X[n_train:], y[n_train:], noise, "ridge",
                    torch.zeros(d), 0, 1.0 / lam_max, dtype, device, w_true=w_true)


def make_mlp_problem(n_train: int = 20, n_val: int = 200, *, width: int = 32, noise: float = 0.3,
                     seed: int = 0, dtype: torch.dtype = torch.float64, device=None) -> HyperProblem:
    """A 1-D curve ``y = sin(3x) + noise * eps`` from few points, fitted by a ``1 -> width -> 1``
    tanh MLP whose weight decay *and* learning rate are hyperparameters.

    Args:
        n_train (int): training points ``>= 1``, ``x ~ U(-1, 1)``. Default: ``20``.
        n_val (int): validation points ``>= 1``. Default: ``200``.
        width (int): hidden units ``>= 1``. Default: ``32``.
        noise (float): label noise ``>= 0``. Default: ``0.3``.
        seed (int): seed of the data and of the initial weights. Default: ``0``.
        dtype (torch.dtype): Default: float64.
        device (str or torch.device, optional): ``None`` picks CUDA, else MPS, else CPU.

    Returns:
        HyperProblem: ``model="mlp"``, ``init`` ``(3 * width + 1,)``, ``default_lr = 0.2``.

    Example:
        >>> p = make_mlp_problem(width=8, device="cpu")
        >>> p.init.shape, p.num_hyper
        (torch.Size([25]), 2)
    """
    n_train, n_val, width, g = _check_sizes("make_mlp_problem", noise, seed, dtype, n_train=n_train,
                                            n_val=n_val, width=width)
    x = 2 * torch.rand(n_train + n_val, 1, generator=g, dtype=torch.float64) - 1  # (n + m, 1)
    y = torch.sin(3 * x[:, 0]) + noise * torch.randn(n_train + n_val, generator=g, dtype=torch.float64)
    # LeCun-style init: W1 ~ N(0, 1) for one input, w2 ~ N(0, 1/width), zero biases.
    init = torch.cat([torch.randn(width, generator=g, dtype=torch.float64), torch.zeros(width),
                      torch.randn(width, generator=g, dtype=torch.float64) / math.sqrt(width), torch.zeros(1)])
    return _problem(x[:n_train], y[:n_train], x[n_train:], y[n_train:], noise, "mlp", init, width, 0.2,
                    dtype, device)


# ---------------------------------------------------------------------------------------------
# The response f(rho) = E(s_T) and its three hypergradients
# ---------------------------------------------------------------------------------------------

def _checked(problem, rho, num_steps, lr, on, where) -> tuple[torch.Tensor, int, float]:
    """Validate the shared arguments; return ``rho`` as an ``(h,)`` tensor, T and lr."""
    check_type("problem", problem, HyperProblem, where=where)
    num_steps = check_number("num_steps", num_steps, where=where, low=1, integer=True)
    lr = problem.default_lr if lr is None else check_number("lr", lr, where=where, low=0.0, low_open=True)
    check_choice("on", on, ("val", "train"), where=where)
    if isinstance(rho, (list, tuple)) or (isinstance(rho, numbers.Real) and not isinstance(rho, bool)):
        rho = [rho] if isinstance(rho, numbers.Real) else rho  # a float, or one value per hyperparameter
        rho = torch.tensor([check_number(f"rho[{i}]", r, where=where) for i, r in enumerate(rho)], dtype=torch.float64)
    check_tensor("rho", rho, where=where, floating=True)
    if rho.numel() != problem.num_hyper:
        raise ValueError(f"{where}(): 'rho' must hold {problem.num_hyper} value(s) for model="
                         f"'{problem.model}', got rho.shape={tuple(rho.shape)}")
    return rho.reshape(-1).to(problem.init), num_steps, float(lr)  # keeps rho's graph, if any


def unroll(problem: HyperProblem, rho, *, num_steps: int, lr: float | None = None) -> torch.Tensor:
    """Run ``num_steps`` training steps from ``problem.init``; return ``s_T`` ``(P,)``.

    Differentiable in ``rho`` when ``rho`` requires grad (autograd records all T steps).

    Example:
        >>> p = make_ridge_problem(5, 4, 8, device="cpu")
        >>> unroll(p, 0.0, num_steps=3).shape
        torch.Size([5])
    """
    rho, num_steps, lr = _checked(problem, rho, num_steps, lr, "val", "unroll")
    return _unroll(problem, rho, num_steps, lr)


def _unroll(problem: HyperProblem, rho: torch.Tensor, num_steps: int, lr: float) -> torch.Tensor:
    s = problem.init  # (P,)
    for _ in range(num_steps):
        s = problem.step(s, rho, lr)
    return s


def response(problem: HyperProblem, rho, *, num_steps: int, lr: float | None = None, on: str = "val") -> float:
    """The response ``f(rho) = E(s_T)``: half the MSE on ``on`` (``"val"``/``"train"``) after training.

    Example:
        >>> p = make_ridge_problem(device="cpu")
        >>> response(p, 0.0, num_steps=300) < response(p, 0.0, num_steps=1)   # training helps
        True
    """
    rho, num_steps, lr = _checked(problem, rho, num_steps, lr, on, "response")
    with torch.no_grad():
        return problem.loss(_unroll(problem, rho, num_steps, lr), on).item()


def reverse_hypergrad(problem: HyperProblem, rho, *, num_steps: int, lr: float | None = None,
                      on: str = "val") -> tuple[float, torch.Tensor]:
    """Reverse mode: back-propagate ``E(s_T)`` through all ``T`` unrolled steps.

    Autograd walks the recursion ``alpha_T = dE/ds_T``, ``alpha_{t-1} = alpha_t A_t`` and sums
    ``alpha_t B_t``; it must keep every step's tensors for that backward walk.

    Args:
        problem (HyperProblem): the learner and its data.
        rho (float, list or Tensor): log-hyperparameters, ``(h,)``.
        num_steps (int): unroll length ``T >= 1``.
        lr (float, optional): inner learning rate ``> 0``. Default: ``problem.default_lr``.
        on (str): the response's split, ``"val"`` or ``"train"``. Default: ``"val"``.

    Returns:
        tuple: ``(f, grad)``: the response (float) and ``df/drho`` ``(h,)``.

    Example:
        >>> p = make_ridge_problem(device="cpu")
        >>> f, g = reverse_hypergrad(p, -4.0, num_steps=300)
        >>> g.item() < 0          # too little ridge here: raising lambda lowers the validation loss
        True

    References:
        L. Franceschi, M. Donini, P. Frasconi, M. Pontil, "Forward and Reverse Gradient-Based
        Hyperparameter Optimization", ICML 2017, arXiv 1703.01785.
    """
    rho, num_steps, lr = _checked(problem, rho, num_steps, lr, on, "reverse_hypergrad")
    rho = rho.detach().clone().requires_grad_(True)
    f = problem.loss(_unroll(problem, rho, num_steps, lr), on)  # the graph spans all T steps
    (grad,) = torch.autograd.grad(f, rho)
    return f.item(), grad


def forward_hypergrad(problem: HyperProblem, rho, *, num_steps: int, lr: float | None = None,
                      on: str = "val") -> tuple[float, torch.Tensor]:
    """Forward mode: carry ``Z_t = ds_t/drho`` ``(P, h)`` along with training.

    Each step, one Jacobian-vector product per hyperparameter ``j`` gives
    ``Z_t[:, j] = A_t Z_{t-1}[:, j] + B_t[:, j]`` (``torch.func.jvp`` of ``Phi`` at
    ``(s_{t-1}, rho)`` along ``(Z_{t-1}[:, j], e_j)``); at the end ``df/drho = dE/ds_T Z_T``.
    Nothing of the past is kept: memory is the state and ``Z``, whatever ``T``.

    Args, Returns and References: as :func:`reverse_hypergrad`.

    Example:
        >>> p = make_ridge_problem(device="cpu")
        >>> torch.allclose(forward_hypergrad(p, -1.0, num_steps=50)[1],
        ...                reverse_hypergrad(p, -1.0, num_steps=50)[1], rtol=1e-10)
        True
    """
    rho, num_steps, lr = _checked(problem, rho, num_steps, lr, on, "forward_hypergrad")
    rho = rho.detach()
    s, h = problem.init, problem.num_hyper
    Z = torch.zeros(len(s), h, dtype=s.dtype, device=s.device)  # (P, h): s_0 does not depend on rho
    eye = torch.eye(h, dtype=s.dtype, device=s.device)  # (h, h): direction e_j in rho-space
    step = lambda s_, r_: problem.step(s_, r_, lr)  # noqa: E731
    for _ in range(num_steps):
        columns = []
        for j in range(h):  # 1. push each tangent one step: (s_t, A_t Z[:, j] + B_t e_j)
            s_next, z = torch.func.jvp(step, (s, rho), (Z[:, j], eye[j]))
            columns.append(z)
        s, Z = s_next, torch.stack(columns, dim=1)  # 2. move on; the old s and Z can be freed
    # 3. chain rule at the end: dE/ds_T (P,) times Z_T (P, h)
    f, dE = problem.loss(s, on), torch.func.grad(lambda s_: problem.loss(s_, on))(s)
    return f.item(), dE @ Z


def ridge_forward_hypergrad(problem: HyperProblem, rho, *, num_steps: int, lr: float | None = None,
                            on: str = "val") -> tuple[float, torch.Tensor]:
    """Forward mode for ridge in closed form, no autograd at all.

    A ridge GD step is linear in ``w``: ``w_t = A w_{t-1} + lr X^T y / n`` with
    ``A = I - lr (H + lambda I)``, ``H = X^T X / n``. Differentiating in ``rho`` (``lambda = e^rho``,
    ``dlambda/drho = lambda``) gives ``Z_t = A Z_{t-1} - lr lambda w_{t-1}``, ``Z_0 = 0``.
    ``A`` is applied as ``v - lr (X^T (X v) / n + lambda v)``, never formed: memory ``O(d)``.

    Args and Returns: as :func:`reverse_hypergrad` (``problem.model`` must be ``"ridge"``).

    Example:
        >>> p = make_ridge_problem(device="cpu")
        >>> torch.allclose(ridge_forward_hypergrad(p, 0.5, num_steps=30)[1],
        ...                reverse_hypergrad(p, 0.5, num_steps=30)[1], rtol=1e-10)
        True
    """
    where = "ridge_forward_hypergrad"
    rho, num_steps, lr = _checked(problem, rho, num_steps, lr, on, where)
    check_choice("problem.model", problem.model, ("ridge",), where=where)
    X, y, lam = problem.X_train, problem.y_train, torch.exp(rho[0].detach())
    A = lambda v: v - lr * (X.T @ (X @ v) / len(y) + lam * v)  # noqa: E731  (d,) -> (d,)
    c = lr * X.T @ y / len(y)  # (d,)
    w, z = problem.init, torch.zeros_like(problem.init)  # (d,), (d,): w_0 = 0 does not depend on rho
    for _ in range(num_steps):
        z = A(z) - lr * lam * w  # uses w_{t-1}: update z before w
        w = A(w) + c
    Xe, ye = (X, y) if on == "train" else (problem.X_val, problem.y_val)
    dE = Xe.T @ (Xe @ w - ye) / len(ye)  # (d,): gradient of half the MSE
    return problem.loss(w, on).item(), (dE @ z).reshape(1)


def finite_diff_hypergrad(problem: HyperProblem, rho, *, num_steps: int, lr: float | None = None,
                          on: str = "val", eps: float = 1e-4) -> tuple[float, torch.Tensor]:
    """Central differences ``(f(rho + eps e_j) - f(rho - eps e_j)) / (2 eps)``: ``2h`` trainings.

    Error ``O(eps^2)`` from the formula plus ``O(machine eps / eps)`` from rounding: in float64
    with ``eps = 1e-4`` that is about 1e-9 relative; in float32 it is useless. A test oracle only.

    Args: as :func:`reverse_hypergrad`, plus ``eps`` (float ``> 0``; default ``1e-4``).
    Returns: as :func:`reverse_hypergrad`.
    """
    where = "finite_diff_hypergrad"
    rho, num_steps, lr = _checked(problem, rho, num_steps, lr, on, where)
    eps = check_number("eps", eps, where=where, low=0.0, low_open=True)
    f = lambda r: response(problem, r, num_steps=num_steps, lr=lr, on=on)  # noqa: E731
    e = torch.eye(len(rho), dtype=rho.dtype, device=rho.device) * eps  # (h, h)
    grad = torch.tensor([(f(rho + e[j]) - f(rho - e[j])) / (2 * eps) for j in range(len(rho))])
    return f(rho), grad.to(rho)


# ---------------------------------------------------------------------------------------------
# One call that measures: value, gradient, time and memory of a mode
# ---------------------------------------------------------------------------------------------

@dataclass
class Hypergradient:
    """A hypergradient and what it cost.

    Attributes:
        value (float): the response ``f(rho)``; ``grad`` (Tensor) ``df/drho`` ``(h,)``.
        mode (str): one of :data:`MODES`; ``seconds`` (float) wall time.
        memory_bytes (int): what the method holds beyond the data: reverse, the tensors autograd
            saves for the backward pass (measured with ``saved_tensors_hooks``); forward, the state
            and the tangents ``Z``; finite differences, the state.
        diverged (bool): training blew up (see :meth:`HyperProblem.blew_up`, or a non-finite gradient).
    """

    value: float
    grad: torch.Tensor
    mode: str
    seconds: float
    memory_bytes: int
    diverged: bool = False


def hypergrad(problem: HyperProblem, rho, *, num_steps: int, lr: float | None = None, mode: str = "reverse",
              on: str = "val") -> Hypergradient:
    """The hypergradient by ``mode`` (``"reverse"``, ``"forward"``, ``"finite_diff"``), timed and sized.

    Forward mode uses :func:`ridge_forward_hypergrad` for ridge and :func:`forward_hypergrad`
    otherwise. Args as :func:`reverse_hypergrad`; returns a :class:`Hypergradient`.

    Example:
        >>> p = make_ridge_problem(device="cpu")
        >>> r = hypergrad(p, 0.0, num_steps=100, mode="reverse")
        >>> f = hypergrad(p, 0.0, num_steps=100, mode="forward")
        >>> r.memory_bytes > 50 * f.memory_bytes     # reverse keeps all T steps, forward one
        True
    """
    check_choice("mode", mode, MODES, where="hypergrad")
    rho, num_steps, lr = _checked(problem, rho, num_steps, lr, on, "hypergrad")
    state_bytes = problem.init.numel() * problem.init.element_size()
    data = {t.untyped_storage().data_ptr() for t in (problem.X_train, problem.y_train, problem.X_val, problem.y_val)}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:  # count each saved storage once, the data not at all
        ptr = t.untyped_storage().data_ptr()
        if ptr not in data:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    sync = torch.cuda.synchronize if rho.device.type == "cuda" else (lambda: None)  # honest GPU timings
    sync()
    start = time.perf_counter()
    if mode == "reverse":
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            value, grad = reverse_hypergrad(problem, rho, num_steps=num_steps, lr=lr, on=on)
        memory = sum(saved.values())
    elif mode == "forward":  # ridge: the closed recursion; otherwise jvp steps (same numbers, slower)
        fwd = ridge_forward_hypergrad if problem.model == "ridge" else forward_hypergrad
        value, grad = fwd(problem, rho, num_steps=num_steps, lr=lr, on=on)
        memory = state_bytes * (1 + problem.num_hyper)  # s (P,) and Z (P, h)
    else:
        value, grad = finite_diff_hypergrad(problem, rho, num_steps=num_steps, lr=lr, on=on)
        memory = state_bytes
    sync()
    seconds = time.perf_counter() - start
    diverged = problem.blew_up(value, on) or not bool(torch.isfinite(grad).all())
    return Hypergradient(value, grad, mode, seconds, int(memory), diverged)


# ---------------------------------------------------------------------------------------------
# Using the hypergradient: hyper-steps, against grid and random search
# ---------------------------------------------------------------------------------------------

@dataclass
class HyperRun:
    """A hyper-optimisation: ``rhos[k]`` ``(h,)`` and ``losses[k]`` (the response) before
    hyper-step ``k``, plus the final point; ``grads[k]`` the hypergradient used at step ``k``.

    ``stop_reason`` is ``"completed"`` or ``"diverged"`` (training blew up: the run stops and
    records the non-finite value instead of raising).
    """

    rhos: list[list[float]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    grads: list[list[float]] = field(default_factory=list)
    stop_reason: str = "running"
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"


def hyper_optimize(problem: HyperProblem, rho0, *, num_hyper_steps: int = 20, hyper_lr: float = 0.3,
                   num_steps: int = 300, lr: float | None = None, mode: str = "reverse",
                   on: str = "val") -> HyperRun:
    """Tune ``rho`` by Adam on the hypergradient: each hyper-step costs one inner training.

    Args:
        problem (HyperProblem): the learner and its data.
        rho0 (float, list or Tensor): the starting log-hyperparameters ``(h,)``.
        num_hyper_steps (int): Adam steps on ``rho``, ``>= 1``. Default: ``20``.
        hyper_lr (float): Adam's learning rate on ``rho`` (a step in log-lambda), ``> 0``. Default: ``0.3``.
        num_steps (int): unroll length ``T >= 1`` of every inner training. Default: ``300``.
        lr (float, optional): inner learning rate ``> 0``. Default: ``problem.default_lr``.
        mode (str): ``"reverse"`` or ``"forward"`` (same numbers, different cost). Default: ``"reverse"``.
        on (str): the response, ``"val"`` or ``"train"`` (try it: it drives lambda to 0). Default: ``"val"``.

    Returns:
        HyperRun: ``num_hyper_steps + 1`` points of ``rho`` and of the response.

    Example:
        >>> run = hyper_optimize(make_ridge_problem(device="cpu"), -3.0, num_hyper_steps=5, num_steps=100)
        >>> len(run.losses), run.losses[-1] < run.losses[0]
        (6, True)

    References:
        Franceschi et al., arXiv 1703.01785; Adam: D. P. Kingma, J. Ba, arXiv 1412.6980.
    """
    where = "hyper_optimize"
    check_choice("mode", mode, ("reverse", "forward"), where=where)
    rho, num_steps, lr = _checked(problem, rho0, num_steps, lr, on, where)
    num_hyper_steps = check_number("num_hyper_steps", num_hyper_steps, where=where, low=1, integer=True)
    hyper_lr = check_number("hyper_lr", hyper_lr, where=where, low=0.0, low_open=True)
    # Adam written out (Kingma & Ba, Algorithm 1, torch's defaults): the same numbers as
    # torch.optim.Adam (the tests check it), without the seconds its first use spends importing.
    rho = rho.detach().clone()  # (h,)
    m, v, beta1, beta2, eps = torch.zeros_like(rho), torch.zeros_like(rho), 0.9, 0.999, 1e-8
    run = HyperRun(config=dict(num_hyper_steps=num_hyper_steps, hyper_lr=hyper_lr, num_steps=num_steps,
                               lr=lr, mode=mode, on=on, model=problem.model))
    start = time.perf_counter()
    for k in range(1, num_hyper_steps + 1):
        hg = hypergrad(problem, rho, num_steps=num_steps, lr=lr, mode=mode, on=on)  # 1. one training
        run.rhos.append(rho.tolist())
        run.losses.append(hg.value)
        run.grads.append(hg.grad.tolist())
        if hg.diverged:  # stop, record, mark: the learner sees where it blew up
            run.stop_reason = "diverged"
            break
        g = hg.grad.to(rho)  # 2. Adam: running means of the gradient and of its square, bias-corrected
        m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
        rho = rho - hyper_lr * (m / (1 - beta1**k)) / ((v / (1 - beta2**k)).sqrt() + eps)
    else:
        run.rhos.append(rho.tolist())
        run.losses.append(response(problem, rho, num_steps=num_steps, lr=lr, on=on))
        run.stop_reason = "diverged" if problem.blew_up(run.losses[-1], on) else "completed"
    run.seconds = time.perf_counter() - start
    return run


@dataclass
class SearchResult:
    """Responses at the tried points: ``rhos`` ``(K, h)``, ``losses`` ``(K,)`` and ``diverged``
    ``(K,)`` as lists. Diverged trainings keep their loss and are skipped by ``best_*``.
    """

    rhos: list[list[float]]
    losses: list[float]
    diverged: list[bool]

    @property
    def best_index(self) -> int:
        kept = [(v, i) for i, (v, bad) in enumerate(zip(self.losses, self.diverged)) if not bad]
        return min(kept)[1] if kept else 0

    @property
    def best_rho(self) -> list[float]:
        return self.rhos[self.best_index]

    @property
    def best_loss(self) -> float:
        return self.losses[self.best_index]


def _search(problem, points, num_steps, lr, on, where) -> SearchResult:
    losses = [response(problem, p, num_steps=num_steps, lr=lr, on=on) for p in points]
    return SearchResult([p.tolist() for p in points], losses, [problem.blew_up(v, on) for v in losses])


def grid_search(problem: HyperProblem, rhos, *, num_steps: int = 300, lr: float | None = None,
                on: str = "val") -> SearchResult:
    """One full training per point of ``rhos`` (Tensor ``(K,)`` for one hyperparameter or ``(K, h)``).

    Example:
        >>> res = grid_search(make_ridge_problem(device="cpu"), torch.linspace(-4, 4, 9), num_steps=100)
        >>> len(res.losses), -4.0 < res.best_rho[0] < 4.0
        (9, True)
    """
    check_tensor("rhos", rhos, where="grid_search", ndim=(1, 2), floating=True, shape_hint="(K,) or (K, h)")
    return _search(problem, rhos.reshape(len(rhos), -1).double(), num_steps, lr, on, "grid_search")


def random_search(problem: HyperProblem, num_trials: int, low: float = -6.0, high: float = 4.0, *,
                  num_steps: int = 300, lr: float | None = None, on: str = "val", seed: int = 0) -> SearchResult:
    """``num_trials`` trainings at ``rho ~ U(low, high)^h`` (J. Bergstra, Y. Bengio, JMLR 2012).

    Example:
        >>> res = random_search(make_ridge_problem(device="cpu"), 4, num_steps=50, seed=0)
        >>> len(res.rhos), all(-6 <= r[0] <= 4 for r in res.rhos)
        (4, True)
    """
    where = "random_search"
    check_type("problem", problem, HyperProblem, where=where)
    num_trials = check_number("num_trials", num_trials, where=where, low=1, integer=True)
    low, high = check_number("low", low, where=where), check_number("high", high, where=where, low=low, low_open=True)
    g = torch.Generator().manual_seed(check_seed(seed, where=where))
    points = low + (high - low) * torch.rand(num_trials, problem.num_hyper, generator=g, dtype=torch.float64)
    return _search(problem, points, num_steps, lr, on, where)


# ---------------------------------------------------------------------------------------------
# The online variant: hypergradient descent on the learning rate
# ---------------------------------------------------------------------------------------------

@dataclass
class HDRun:
    """Hypergradient descent: ``lrs[t]`` the learning rate used at step ``t``, ``losses[t]`` the
    training objective before it, ``val_losses[t]`` half the validation MSE; ``stop_reason``
    ``"completed"`` or ``"diverged"``."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    stop_reason: str = "running"

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"


def hypergradient_descent(problem: HyperProblem, *, lr: float = 0.01, beta: float = 1e-3,
                          weight_decay: float = 1.0, num_steps: int = 300) -> HDRun:
    """Gradient descent whose learning rate learns online (SGD-HD, full batch).

    ``d loss(w_t) / d lr = -g_t . g_{t-1}`` (``w_t = w_{t-1} - lr g_{t-1}``): a one-step,
    forward-mode hypergradient. So each step first updates ``lr <- lr + beta g_t . g_{t-1}``,
    then ``w <- w - lr g_t``. ``beta = 0`` is plain gradient descent.

    Args:
        problem (HyperProblem): the learner; the objective is its training loss plus
            ``weight_decay / 2 * |s|^2``.
        lr (float): the starting learning rate ``> 0``. Default: ``0.01``.
        beta (float): the hyper learning rate ``>= 0``. Default: ``1e-3``.
        weight_decay (float): fixed L2 coefficient ``>= 0``. Default: ``1.0``.
        num_steps (int): steps ``>= 1``. Default: ``300``.

    Returns:
        HDRun: per-step learning rates and losses; a blow-up (NaN, inf or ``EXPLODE_FACTOR``
        times the first loss) stops the run and is recorded.

    Example:
        >>> p = make_ridge_problem(device="cpu")
        >>> run = hypergradient_descent(p, lr=0.001, beta=0.01, num_steps=50)
        >>> run.lrs[-1] > run.lrs[0]      # too small a start: the learning rate grows
        True

    References:
        A. G. Baydin, R. Cornish, D. Martinez Rubio, M. Schmidt, F. Wood, "Online Learning Rate
        Adaptation with Hypergradient Descent", ICLR 2018, arXiv 1703.04782.
    """
    where = "hypergradient_descent"
    check_type("problem", problem, HyperProblem, where=where)
    lr = check_number("lr", lr, where=where, low=0.0, low_open=True)
    beta = check_number("beta", beta, where=where, low=0.0)
    wd = check_number("weight_decay", weight_decay, where=where, low=0.0)
    num_steps = check_number("num_steps", num_steps, where=where, low=1, integer=True)
    objective = lambda s_: problem.loss(s_, "train") + 0.5 * wd * s_.pow(2).sum()  # noqa: E731
    run, s, g_prev = HDRun(), problem.init.clone(), None
    limit = EXPLODE_FACTOR * objective(s).item()
    for _ in range(num_steps):
        loss, g = objective(s).item(), torch.func.grad(objective)(s)  # (P,)
        if g_prev is not None:
            lr += beta * (g @ g_prev).item()  # 1. the hyper-step on lr
        run.lrs.append(lr)
        run.losses.append(loss)
        run.val_losses.append(problem.loss(s, "val").item())
        if not (math.isfinite(loss) and math.isfinite(lr)) or loss > limit:  # stop, record, mark
            run.stop_reason = "diverged"
            return run
        s, g_prev = s - lr * g, g  # 2. the ordinary step with the new lr
    run.stop_reason = "completed"
    return run
