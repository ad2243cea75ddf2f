"""Loss surfaces small enough to look at, for notebook 02: 2-D surfaces over a point ``(x, y)``
(an ill-conditioned quadratic, Rosenbrock's valley, a tilted double well), the path a torch
optimizer takes across them (:func:`optimizer_path`), and, for the quadratic, the learning
rates at which gradient descent turns slow, oscillating or divergent, from theory
(:func:`gd_thresholds`).

A 2-D point is the smallest "model" whose training you can watch in full: every step is a dot
on a contour plot. The optimizers are torch's own (``torch.optim.SGD``/``Adam``), not copies,
so what students see here is what happens to every weight of a real network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from ._validation import check_choice, check_number, check_relation, check_tensor, check_type

__all__ = ["Surface", "quadratic", "rosenbrock", "two_minima", "SURFACES", "get_surface", "REGIMES", "GDThresholds",
           "gd_thresholds", "PATH_OPTIMIZERS", "OptimizerPath", "optimizer_path"]


_DTYPE = torch.float64  # 2-D toys cost nothing in float64, and theory checks then hold to 1e-12


@dataclass(frozen=True, eq=False)
class Surface:
    """A loss over a 2-D point ``p = (x, y)``, with everything needed to draw and descend it.

    Attributes:
        name (str): e.g. ``"quadratic"``.
        fn (callable): ``(..., 2) -> (...)``, the loss, written in torch (autograd works).
        grad_fn (callable): ``(..., 2) -> (..., 2)``, its gradient written out by hand
            (the tests check it against autograd).
        minima (tuple): the minima as ``(x, y)`` pairs, the global one first.
        start (tuple): a default starting point. xlim, ylim (tuple): a window to draw.
        lr (float): a learning rate that suits gradient descent here; num_steps (int): enough
            steps to see where it goes. The widgets start from these.
        hessian (Tensor or None): the constant Hessian ``(2, 2)`` of a quadratic, else None.
        params (dict): the factory's arguments.
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    grad_fn: Callable[[torch.Tensor], torch.Tensor]
    minima: tuple
    start: tuple
    xlim: tuple
    ylim: tuple
    lr: float
    num_steps: int
    hessian: torch.Tensor | None = None
    params: dict = field(default_factory=dict)

    def __call__(self, p) -> torch.Tensor:
        """The loss at ``p``, shape ``(..., 2)`` -> ``(...)``."""
        return self.fn(_point(p, f"Surface('{self.name}')"))

    def grad(self, p) -> torch.Tensor:
        """The hand-written gradient at ``p``, shape ``(..., 2)`` -> ``(..., 2)``."""
        return self.grad_fn(_point(p, f"Surface('{self.name}').grad"))

    @property
    def min_value(self) -> float:
        """The loss at the global minimum (the floor of every path's loss)."""
        return float(self.fn(torch.tensor(self.minima[0], dtype=_DTYPE)))

    def grid(self, n: int = 121) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(X, Y, Z)``, each ``(n, n)``: the loss on an ``n x n`` grid over the window, for contours."""
        n = check_number("n", n, where=f"Surface('{self.name}').grid", low=2, integer=True)
        xs = torch.linspace(*self.xlim, n, dtype=_DTYPE)
        ys = torch.linspace(*self.ylim, n, dtype=_DTYPE)
        X, Y = torch.meshgrid(xs, ys, indexing="xy")  # (n, n) each; rows follow y, as contour wants
        return X, Y, self.fn(torch.stack([X, Y], dim=-1))  # Z: (n, n)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"


def _point(p, where: str) -> torch.Tensor:
    if not isinstance(p, torch.Tensor):
        p = torch.tensor(p, dtype=_DTYPE)
    check_tensor("p", p, where=where, floating=True, shape_hint="(..., 2)")
    check_relation(p.ndim >= 1 and p.shape[-1] == 2, "'p' must have shape (..., 2): points (x, y)", where=where,
                   **{"p.shape": tuple(p.shape)})
    return p


def quadratic(a: float = 0.2, b: float = 4.0, angle: float = 0.0) -> Surface:
    """The quadratic bowl ``f(p) = 0.5 * p^T H p`` with Hessian eigenvalues ``a`` and ``b``.

    With the defaults it is d2l's ``0.1 x**2 + 2 y**2``: curvature 0.2 along ``x`` and 4 along
    ``y``, a condition number of 20. Gradient descent must keep its LR below ``2 / 4`` for the
    steep direction, and then crawls along the flat one: the classic picture of an
    ill-conditioned valley.

    Args:
        a (float): curvature along the first axis, ``> 0``. Default: ``0.2``.
        b (float): curvature along the second axis, ``> 0``. Default: ``4.0``.
        angle (float): rotation of the axes in degrees (a rotated valley is not aligned with
            the coordinates, which matters for Adam's per-coordinate steps). Default: ``0``.

    Returns:
        Surface: minimum at ``(0, 0)`` with loss 0; ``hessian`` is ``R diag(a, b) R^T``.

    Example:
        >>> s = quadratic()
        >>> s([-5.0, -2.0]).item(), s.grad([1.0, 1.0]).tolist()
        (10.5, [0.2, 4.0])

    References:
        A. Zhang, Z. C. Lipton, M. Li, A. J. Smola, Dive into Deep Learning, section 12.6 (Momentum).
    """
    where = "quadratic"
    a = check_number("a", a, where=where, low=0.0, low_open=True)
    b = check_number("b", b, where=where, low=0.0, low_open=True)
    angle = check_number("angle", angle, where=where)
    t = math.radians(angle)
    R = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=_DTYPE)
    H = R @ torch.diag(torch.tensor([a, b], dtype=_DTYPE)) @ R.T  # (2, 2), symmetric

    def fn(p):
        return 0.5 * ((p @ H.to(p.dtype)) * p).sum(-1)  # (...,): 0.5 p^T H p, H symmetric

    def grad_fn(p):
        return p @ H.to(p.dtype)  # (..., 2): H p

    # The start sits far out along the flat direction and a little up the steep one, turned
    # with the valley (so a rotated valley is the same problem in other coordinates).
    start = tuple(float(v) for v in R @ torch.tensor([-5.0, -2.0], dtype=_DTYPE))
    ylim = (-3.0, 3.0) if angle % 180 == 0 else (-6.0, 6.0)  # a turned start needs a square window
    return Surface("quadratic", fn, grad_fn, minima=((0.0, 0.0),), start=start, xlim=(-6.0, 6.0),
                   ylim=ylim, lr=0.8 / max(a, b), num_steps=100, hessian=H,
                   params={"a": float(a), "b": float(b), "angle": float(angle)})


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """Rosenbrock's banana valley ``f(x, y) = (a - x)**2 + b * (y - x**2)**2``.

    A curved valley with steep walls (curvature about ``200 b x**2`` across it) and a nearly
    flat floor: finding the valley is easy, following it to the minimum at ``(a, a**2)`` is
    slow, and the LR that is safe on the walls is tiny for the floor.

    Args:
        a (float): where the minimum is, ``(a, a**2)``. Default: ``1.0``.
        b (float): steepness of the walls, ``> 0``. Default: ``100.0``.

    Returns:
        Surface: minimum ``(a, a**2)`` with loss 0.

    Example:
        >>> s = rosenbrock()
        >>> s([1.0, 1.0]).item(), s.grad([0.0, 0.0]).tolist()
        (0.0, [-2.0, 0.0])

    References:
        H. H. Rosenbrock, "An Automatic Method for Finding the Greatest or Least Value of a
        Function", The Computer Journal, 1960.
    """
    a = check_number("a", a, where="rosenbrock")
    b = check_number("b", b, where="rosenbrock", low=0.0, low_open=True)

    def fn(p):
        x, y = p[..., 0], p[..., 1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    def grad_fn(p):
        x, y = p[..., 0], p[..., 1]
        return torch.stack([-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)], dim=-1)

    return Surface("rosenbrock", fn, grad_fn, minima=((a, a * a),), start=(-1.2, 1.0),
                   xlim=(a - 3.0, a + 1.0), ylim=(a * a - 2.0, a * a + 2.0), lr=1e-3, num_steps=500,
                   params={"a": float(a), "b": float(b)})


def two_minima(tilt: float = 0.3, c: float = 1.0) -> Surface:
    """A tilted double well ``f(x, y) = (x**2 - 1)**2 + tilt * x + c * y**2``.

    Two valleys near ``x = -1`` and ``x = +1`` separated by a ridge near ``x = 0``; the tilt
    makes the left one deeper (the global minimum) and the right one a local minimum. Where a
    path ends depends on where it starts, on the LR, and on momentum, which can carry a path
    over the ridge.

    Args:
        tilt (float): slope added along ``x``; ``0 < |tilt| < 1.5`` keeps two minima. Default: ``0.3``.
        c (float): curvature along ``y``, ``> 0``. Default: ``1.0``.

    Returns:
        Surface: ``minima`` holds both, the deeper one first.

    Example:
        >>> s = two_minima()
        >>> [round(x, 3) for x, _ in s.minima]
        [-1.036, 0.96]
    """
    tilt = check_number("tilt", tilt, where="two_minima", low=-1.5, high=1.5, low_open=True, high_open=True)
    check_relation(tilt != 0, "'tilt' must be nonzero (with no tilt both minima are equally deep)",
                   where="two_minima", tilt=tilt)
    c = check_number("c", c, where="two_minima", low=0.0, low_open=True)

    def fn(p):
        x, y = p[..., 0], p[..., 1]
        return (x**2 - 1) ** 2 + tilt * x + c * y**2

    def grad_fn(p):
        x, y = p[..., 0], p[..., 1]
        return torch.stack([4 * x * (x**2 - 1) + tilt, 2 * c * y], dim=-1)

    # The minima solve 4x^3 - 4x + tilt = 0: a few Newton steps from each well's bottom.
    roots = []
    for x in (-1.0, 1.0):
        for _ in range(50):
            x -= (4 * x**3 - 4 * x + tilt) / (12 * x**2 - 4)
        roots.append(x)
    roots.sort(key=lambda r: (r * r - 1) ** 2 + tilt * r)  # deeper first
    # Start on the shallow side (opposite the tilt), high up: plain GD rolls into the nearer,
    # shallower valley; enough momentum carries it over the ridge into the deeper one.
    side = 1.0 if tilt > 0 else -1.0
    return Surface("two_minima", fn, grad_fn, minima=tuple((r, 0.0) for r in roots), start=(1.8 * side, 1.5),
                   xlim=(-2.0, 2.0), ylim=(-2.0, 2.0), lr=0.02, num_steps=150,
                   params={"tilt": float(tilt), "c": float(c)})


SURFACES: dict[str, Callable[..., Surface]] = {"quadratic": quadratic, "rosenbrock": rosenbrock,
                                               "two_minima": two_minima}


def get_surface(surface: str | Surface) -> Surface:
    """A surface by name (built with its defaults), or a :class:`Surface` passed through.

    Example:
        >>> get_surface("rosenbrock").minima
        ((1.0, 1.0),)
    """
    if isinstance(surface, Surface):
        return surface
    check_choice("surface", surface, SURFACES, where="get_surface")
    return SURFACES[surface]()


REGIMES = ("too slow", "good", "oscillating", "diverging")


@dataclass(frozen=True)
class GDThresholds:
    """What theory says about gradient descent ``p <- p - lr * H p`` on a quadratic.

    Along each eigenvector of ``H`` (eigenvalue ``lam``) the distance to the minimum is
    multiplied by ``1 - lr * lam`` every step. So, with ``L`` the largest and ``mu`` the
    smallest eigenvalue:

    1. ``lr < 1/L``: every factor is in ``(0, 1)``: each coordinate shrinks without changing sign
       (**monotone** convergence).
    2. ``1/L < lr < 2/L``: the steep direction's factor is in ``(-1, 0)``: it flips sign every step
       but still shrinks (**oscillating** convergence). The fastest LR, ``2/(L + mu)``, is here.
    3. ``lr > 2/L``: the steep factor is below ``-1``: the path zig-zags outwards (**divergence**).
       At exactly ``2/L`` it bounces forever without shrinking.

    The slowest direction sets the speed: after ``n`` steps a fraction ``rate(lr) ** n`` of the
    distance is left, ``rate(lr) = max(|1 - lr mu|, |1 - lr L|)``.

    Attributes:
        L (float): largest Hessian eigenvalue. mu (float): smallest.
    """

    L: float
    mu: float

    @property
    def monotone_lr(self) -> float:
        """``1/L``: below it no coordinate changes sign."""
        return 1.0 / self.L

    @property
    def max_lr(self) -> float:
        """``2/L``: above it gradient descent diverges."""
        return 2.0 / self.L

    @property
    def optimal_lr(self) -> float:
        """``2/(L + mu)``: the LR with the smallest ``rate``."""
        return 2.0 / (self.L + self.mu)

    @property
    def condition_number(self) -> float:
        """``L / mu``: how ill-conditioned the valley is (1 is a round bowl)."""
        return self.L / self.mu if self.mu > 0 else math.inf

    def rate(self, lr: float) -> float:
        """The factor by which the distance to the minimum shrinks per step (``>= 1``: no convergence)."""
        lr = check_number("lr", lr, where="GDThresholds.rate", low=0.0, low_open=True)
        return max(abs(1 - lr * self.mu), abs(1 - lr * self.L))

    def steps_needed(self, lr: float, tol: float = 0.1) -> float:
        """Steps until at most ``tol`` of the distance is left (``inf`` if it never gets there)."""
        tol = check_number("tol", tol, where="GDThresholds.steps_needed", low=0.0, high=1.0, low_open=True,
                           high_open=True)
        r = self.rate(lr)
        return math.inf if r >= 1 else (0.0 if r == 0 else math.log(tol) / math.log(r))

    def momentum_max_lr(self, momentum: float) -> float:
        """``2 (1 + momentum) / L``: heavy-ball momentum (torch's ``SGD(momentum=...)``) converges
        on the quadratic for every LR below this, and diverges above."""
        momentum = check_number("momentum", momentum, where="GDThresholds.momentum_max_lr", low=0.0, high=1.0,
                                high_open=True)
        return 2.0 * (1.0 + momentum) / self.L

    def regime(self, lr: float, num_steps: int = 100, tol: float = 0.1) -> str:
        """One of :data:`REGIMES` for gradient descent at ``lr`` with a budget of ``num_steps``.

        ``"diverging"`` if ``lr >= 2/L``; ``"oscillating"`` if ``1/L < lr < 2/L``; otherwise
        ``"too slow"`` if more than ``tol`` of the distance is still left after ``num_steps``
        steps, and ``"good"`` if not. "Too slow" depends on the budget: more steps cure it.

        Example:
            >>> t = gd_thresholds(quadratic())            # L = 4, mu = 0.2
            >>> [t.regime(lr) for lr in (0.01, 0.2, 0.4, 0.6)]
            ['too slow', 'good', 'oscillating', 'diverging']
        """
        lr = check_number("lr", lr, where="GDThresholds.regime", low=0.0, low_open=True)
        num_steps = check_number("num_steps", num_steps, where="GDThresholds.regime", low=1, integer=True)
        if lr >= self.max_lr:
            return "diverging"
        if lr > self.monotone_lr:
            return "oscillating"
        return "too slow" if self.steps_needed(lr, tol) > num_steps else "good"

    def describe(self, lr: float, num_steps: int = 100) -> str:
        """One sentence on what GD does at ``lr``, with the numbers behind the regime."""
        regime = self.regime(lr, num_steps)
        head = f"lr = {lr:.3g} vs 1/L = {self.monotone_lr:.3g}, 2/L = {self.max_lr:.3g}"
        if regime == "diverging":
            return f"{head}: diverging (the steep direction grows x{abs(1 - lr * self.L):.2f} per step)"
        left = self.rate(lr) ** num_steps
        if regime == "oscillating":
            return (f"{head}: oscillating (the steep direction flips sign every step) but converging; "
                    f"{100 * left:.2g}% of the distance left after {num_steps} steps")
        return f"{head}: {regime}; {100 * left:.2g}% of the distance left after {num_steps} steps"


def gd_thresholds(surface: str | Surface | torch.Tensor = "quadratic", at=None) -> GDThresholds:
    """The LR thresholds of gradient descent, ``1/L`` and ``2/L``, from the Hessian's eigenvalues.

    Exact for a quadratic (the Hessian is the same everywhere). For any other surface they are
    *local*: they hold near the point ``at`` (default: the global minimum), where the surface
    looks like a quadratic.

    Args:
        surface (str, Surface or Tensor): a surface, or a symmetric Hessian ``(2, 2)``. Default: ``"quadratic"``.
        at (pair of floats or None): where to take the Hessian of a non-quadratic surface.

    Returns:
        GDThresholds: ``L``, ``mu`` and the thresholds.

    Example:
        >>> t = gd_thresholds(quadratic(a=0.2, b=4.0))
        >>> t.L, t.monotone_lr, t.max_lr, round(t.optimal_lr, 4)
        (4.0, 0.25, 0.5, 0.4762)
        >>> round(gd_thresholds("rosenbrock").max_lr, 5)  # near (1, 1) the valley's walls have L ~ 1002
        0.002
    """
    where = "gd_thresholds"
    if isinstance(surface, torch.Tensor):
        check_tensor("surface", surface, where=where, ndim=2, floating=True, shape_hint="(2, 2)")
        check_relation(tuple(surface.shape) == (2, 2), "a Hessian 'surface' must have shape (2, 2)", where=where,
                       **{"surface.shape": tuple(surface.shape)})
        H = surface.to(_DTYPE)
    else:
        check_type("surface", surface, (str, Surface), where=where, expected="str, Surface or Tensor (2, 2)")
        surface = get_surface(surface)
        if surface.hessian is not None and at is None:
            H = surface.hessian
        else:
            p = _point(surface.minima[0] if at is None else at, where).to(_DTYPE)
            H = torch.autograd.functional.hessian(surface.fn, p)  # (2, 2)
    check_relation(bool(torch.allclose(H, H.T)), "the Hessian must be symmetric", where=where, hessian=H.tolist())
    mu, L = (float(v) for v in torch.linalg.eigvalsh(H))  # ascending
    check_relation(L > 0, "the Hessian must have a positive eigenvalue (a minimum, not a saddle or a maximum)",
                   where=where, eigenvalues=(mu, L))
    return GDThresholds(L=L, mu=mu)


PATH_OPTIMIZERS = ("gd", "momentum", "adam")


_PATH_STOPS = ("completed", "diverged", "exploded")


@dataclass
class OptimizerPath:
    """Where an optimizer went on a surface, step by step.

    Attributes:
        xy (Tensor): ``(K + 1, 2)``, the start and the point after each of the ``K`` steps taken;
            ``(0, 2)`` when the start itself has a NaN/inf loss (``"diverged"`` at step 0).
        losses (Tensor): ``(K + 1,)``, the loss at each point of ``xy``.
        optimizer (str), lr (float), surface (str): what ran where.
        min_value (float): the surface's lowest loss, so ``losses - min_value`` is the gap left.
        stop_reason (str): ``"completed"``; ``"diverged"`` (NaN/inf, or a point left the box
            ``|x|, |y| <= bound``); or ``"exploded"`` (the gap above ``min_value`` grew past
            ``explode_factor`` times the starting gap). Divergence is a result, never an exception.
        stop_step (int or None): the step at which it stopped early, else None.
    """

    xy: torch.Tensor
    losses: torch.Tensor
    optimizer: str
    lr: float
    surface: str
    min_value: float
    stop_reason: str = "completed"
    stop_step: int | None = None
    config: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        """True if the path stopped because it blew up."""
        return self.stop_reason in ("diverged", "exploded")

    @property
    def num_steps(self) -> int:
        """Steps actually taken (fewer than asked for if it diverged)."""
        return max(len(self.xy) - 1, 0)

    @property
    def gaps(self) -> torch.Tensor:
        """``(K + 1,)``: the loss above the surface's minimum, ``>= 0`` (plot it on a log axis)."""
        return self.losses - self.min_value


def _make_path_optimizer(name: str, params, lr: float, momentum: float, betas) -> torch.optim.Optimizer:
    # torch's own optimizers, as in course_lib.train: "gd" is plain SGD on the full gradient.
    if name == "gd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return torch.optim.Adam(params, lr=lr, betas=betas)


def optimizer_path(surface: str | Surface, start=None, optimizer: str = "gd", lr: float | None = None,
                   num_steps: int | None = None, momentum: float = 0.9, betas=(0.9, 0.999), *,
                   bound: float = 1e3, explode_factor: float | None = 100.0) -> OptimizerPath:
    """Run a torch optimizer on the point ``p = (x, y)`` of a surface and record its path.

    1. ``p`` becomes a float64 parameter; ``torch.optim.SGD`` (``"gd"``), ``SGD(momentum=...)``
       (``"momentum"``) or ``Adam`` (``"adam"``) gets it as its only parameter.
    2. Each step: loss at ``p``, ``backward()``, ``opt.step()``, exactly as in a training loop.
    3. The run stops early, and says so in ``stop_reason``, if the loss turns NaN/inf, a point
       leaves the box ``|x|, |y| <= bound``, or the gap above the minimum grows past
       ``explode_factor`` times the gap at the start.

    Args:
        surface (str or Surface): e.g. ``"quadratic"``.
        start (pair of floats or None): the first point; None uses ``surface.start``.
        optimizer (str): ``"gd"``, ``"momentum"`` or ``"adam"``. Default: ``"gd"``.
        lr (float or None): learning rate ``> 0``; None uses ``surface.lr``.
        num_steps (int or None): steps ``>= 1``; None uses ``surface.num_steps``.
        momentum (float): SGD's momentum for ``"momentum"``, in ``[0, 1)``. Default: ``0.9``.
        betas (pair of floats): Adam's ``(beta1, beta2)``, each in ``[0, 1)``. Default: ``(0.9, 0.999)``.
        bound (float): half-width of the box a path may not leave, ``> 0``. Default: ``1e3``.
        explode_factor (float or None): stop when the gap exceeds this times the starting gap
            (``> 1``), or None to never stop for that. Default: ``100``.

    Returns:
        OptimizerPath: ``xy`` ``(K + 1, 2)`` and ``losses`` ``(K + 1,)``, with
        ``K = num_steps`` unless it stopped early.

    Example:
        >>> path = optimizer_path("quadratic", optimizer="gd", lr=0.1, num_steps=50)
        >>> path.xy.shape, path.stop_reason
        (torch.Size([51, 2]), 'completed')
        >>> optimizer_path("quadratic", lr=0.6, num_steps=100).stop_reason   # lr > 2/L = 0.5
        'exploded'

    References:
        B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", 1964;
        D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """
    where = "optimizer_path"
    check_type("surface", surface, (str, Surface), where=where, expected="str or Surface")
    surface = get_surface(surface)
    check_choice("optimizer", optimizer, PATH_OPTIMIZERS, where=where)
    lr = check_number("lr", surface.lr if lr is None else lr, where=where, low=0.0, low_open=True)
    num_steps = check_number("num_steps", surface.num_steps if num_steps is None else num_steps, where=where,
                             low=1, high=1_000_000, integer=True)
    momentum = check_number("momentum", momentum, where=where, low=0.0, high=1.0, high_open=True)
    check_type("betas", betas, (tuple, list), where=where, expected="pair of floats")
    check_relation(len(betas) == 2, "'betas' must be a pair (beta1, beta2)", where=where, betas=betas)
    for i, beta in enumerate(betas):
        check_number(f"betas[{i}]", beta, where=where, low=0.0, high=1.0, high_open=True)
    bound = check_number("bound", bound, where=where, low=0.0, low_open=True)
    explode_factor = check_number("explode_factor", explode_factor, where=where, low=1.0, low_open=True,
                                  allow_none=True)
    start = _point(surface.start if start is None else start, where).to(_DTYPE)
    check_relation(start.shape == (2,), "'start' must be one point (x, y)", where=where, start=start.tolist())

    min_value = surface.min_value
    p = start.clone().requires_grad_(True)  # (2,): the "model" is one point
    opt = _make_path_optimizer(optimizer, [p], lr, momentum, tuple(betas))
    points, losses = [start.clone()], []
    stop_reason, stop_step = "completed", None
    gap0 = None
    for step in range(num_steps + 1):
        loss = surface.fn(p)  # the loss at points[step]
        value = loss.detach().item()  # a CPU scalar: reading it back every step costs nothing here
        if not math.isfinite(value):
            points.pop()  # a point whose loss is NaN/inf cannot be drawn: the path ends before it
            stop_reason, stop_step = "diverged", step
            break
        losses.append(value)
        gap = value - min_value
        gap0 = gap if gap0 is None else gap0
        if step > 0 and explode_factor is not None and gap > explode_factor * max(gap0, 1e-12):
            stop_reason, stop_step = "exploded", step
            break
        if step == num_steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        new = p.detach().clone()  # (2,)
        if not bool(torch.isfinite(new).all()):
            stop_reason, stop_step = "diverged", step + 1
            break
        points.append(new)
        if float(new.abs().max()) > bound:  # kept (it shows where the path went), then stop
            losses.append(float(surface.fn(new)))
            stop_reason, stop_step = "diverged", step + 1
            if not math.isfinite(losses[-1]):
                points.pop(), losses.pop()
            break
    # A start whose loss is already NaN/inf (a NaN coordinate, 1e200) diverged at step 0: no drawable point.
    xy = torch.stack(points) if points else start.new_zeros((0, 2))  # (K + 1, 2)
    assert len(xy) == len(losses), "every point of the path has its loss"
    return OptimizerPath(xy=xy, losses=torch.tensor(losses, dtype=_DTYPE), optimizer=optimizer, lr=lr,
                         surface=surface.name, min_value=min_value, stop_reason=stop_reason, stop_step=stop_step,
                         config={"start": tuple(start.tolist()), "num_steps": num_steps, "momentum": momentum,
                                 "betas": tuple(betas), "bound": bound, "explode_factor": explode_factor})
