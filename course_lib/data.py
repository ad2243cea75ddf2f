"""Toy data sets of the course, each returned as a seeded train/validation split.

Every generator takes a ``seed`` and uses its own ``torch.Generator``, so a notebook cell gives
the same data every time it runs, whatever ran before it. Data are made on the CPU (float32
features and targets, int64 class labels); ``device=`` moves them.

Each split knows its *baseline*: the loss of a model that ignores the input (predict the mean,
or the class frequencies). A loss curve that never goes below the baseline has learnt nothing
(notebook 03, "Reading loss curves"). For regression the *floor* is known too: with Gaussian noise of std
``noise`` no model can beat a validation MSE of ``noise**2``.

The Markov-chain language of the scaling-law lessons lives in :mod:`course_lib.language` and is
re-exported here.

References:
    Pedregosa et al., *Scikit-learn: Machine Learning in Python*, JMLR 12 (2011): moons, circles.
    Karpathy, CS231n notes *Putting it together: minimal neural network case study*: spirals.
    Smilkov et al., *Direct-Manipulation Visualization of Deep Networks* (TensorFlow
    Playground), arXiv 1708.03788.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from ._validation import check_choice, check_number, check_relation, check_seed, check_tensor

MAX_SAMPLES = 10**7   # 40 MB per feature in float32: any course dataset, and no out-of-memory crash
from .device import resolve_device

__all__ = ["DataSplit", "make_regression", "make_classification"]


@dataclass
class DataSplit:
    """A train/validation split of one data set.

    Args:
        X_train (Tensor): (N_train, D) float32 features.
        y_train (Tensor): (N_train, 1) float32 targets or (N_train,) int64 class labels.
        X_val (Tensor): (N_val, D) float32 features.
        y_val (Tensor): (N_val, 1) or (N_val,), like ``y_train``.
        name (str): what the data are, e.g. ``"moons"``. Default: ``""``.
        info (dict): how they were made (true coefficients, noise, ...). Default: ``{}``.

    Example:
        >>> data = make_classification(100, kind="moons", seed=0)
        >>> data.n_train, data.n_val
        (80, 20)
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    name: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        # Built by hand, a split must still be tensors with one row per example and a training part.
        where = "DataSplit"
        for name in ("X_train", "y_train", "X_val", "y_val"):
            t = check_tensor(name, getattr(self, name), where=where, ndim=range(1, 9), shape_hint="(N, ...)")
            check_relation(not (t.is_complex() or t.dtype == torch.bool), f"'{name}' must be a real tensor",
                           where=where, **{f"{name}.dtype": t.dtype})
            # NaN values are left to whatever trains on the split: fit refuses them by row, and a
            # split of NaN is how the course's tests make a run diverge on purpose.
        for part in ("train", "val"):
            X, y = getattr(self, f"X_{part}"), getattr(self, f"y_{part}")
            check_relation(X.shape[0] == y.shape[0], f"'X_{part}' and 'y_{part}' must have the same number of rows",
                           where=where, **{f"X_{part}.shape": tuple(X.shape), f"y_{part}.shape": tuple(y.shape)})
        check_relation(self.X_train.shape[0] > 0, "'X_train' must have at least one row", where=where,
                       **{"X_train.shape": tuple(self.X_train.shape)})

    @property
    def n_train(self) -> int:
        return self.X_train.shape[0]

    @property
    def n_val(self) -> int:
        return self.X_val.shape[0]

    def to(self, device) -> "DataSplit":
        """A copy with the four tensors on ``device`` (None: :func:`default_device`)."""
        dev = resolve_device(device, where="DataSplit.to")
        return replace(
            self,
            X_train=self.X_train.to(dev),
            y_train=self.y_train.to(dev),
            X_val=self.X_val.to(dev),
            y_val=self.y_val.to(dev),
            info=dict(self.info),
        )

    def __repr__(self) -> str:
        shapes = lambda t: tuple(t.shape)  # noqa: E731
        return (
            f"DataSplit({self.name!r}, train: X{shapes(self.X_train)} y{shapes(self.y_train)}, "
            f"val: X{shapes(self.X_val)} y{shapes(self.y_val)}, device={self.X_train.device.type})"
        )

    def baseline_loss(self, kind: str | None = None) -> float:
        """Validation loss of the best model that ignores ``X``: the baseline of a loss plot.

        ``'mse'``: predict the training mean of ``y``; the result is close to the variance of
        ``y``. ``'cross_entropy'``: predict the training class frequencies ``p``; the result is
        ``-mean(log p[y_val])`` in nats, ``log 2`` for two balanced classes (and ``inf`` if a
        validation class never occurs in training).

        Args:
            kind (str, optional): ``'mse'`` or ``'cross_entropy'``. Default: None, which picks
                ``'cross_entropy'`` for integer labels and ``'mse'`` otherwise.

        Returns:
            float: the baseline loss on the validation set.

        Example:
            >>> data = make_classification(400, kind="circles", seed=0)
            >>> abs(data.baseline_loss() - math.log(2)) < 0.01
            True
        """
        where = "baseline_loss"
        is_labels = not self.y_train.is_floating_point()
        kind = check_choice("kind", kind, ["mse", "cross_entropy", None], where=where)
        kind = kind or ("cross_entropy" if is_labels else "mse")
        check_relation(self.n_val > 0, "the split must have a validation set", where=where, n_val=self.n_val)
        if kind == "mse":
            check_relation(not is_labels, "kind='mse' needs float targets", where=where, dtype=self.y_train.dtype)
            mean = self.y_train.float().mean(dim=0)  # (1,) for (N, 1) targets
            return float(((self.y_val - mean) ** 2).mean())
        check_relation(is_labels, "kind='cross_entropy' needs int64 labels", where=where, dtype=self.y_train.dtype)
        n_classes = int(max(self.y_train.max(), self.y_val.max())) + 1
        prior = torch.bincount(self.y_train, minlength=n_classes).double() / self.n_train  # (C,)
        return float(-prior.log()[self.y_val].mean())


def _split(X, y, val_fraction, g, name, info, device) -> DataSplit:
    """Shuffle with ``g`` and cut off a validation set of ``round(N * val_fraction)`` rows."""
    # float32 even if a notebook changed torch's default dtype.
    X, y = X.float(), (y.float() if y.is_floating_point() else y)
    n = X.shape[0]
    n_val = round(n * val_fraction)
    if val_fraction > 0:  # at least one example on each side
        n_val = min(max(n_val, 1), n - 1)
    perm = torch.randperm(n, generator=g)  # (N,)
    val, train = perm[:n_val], perm[n_val:]
    split = DataSplit(X[train], y[train], X[val], y[val], name=name, info=info)
    return split if device is None else split.to(device)


def make_regression(
    n_samples: int = 200,
    *,
    kind: str = "linear",
    n_features: int = 1,
    degree: int = 3,
    noise: float = 0.1,
    val_fraction: float = 0.2,
    seed: int = 0,
    device=None,
) -> DataSplit:
    """A regression task ``y = f(X) + noise * eps`` with a known ``f`` and known noise floor.

    ``X`` is uniform in ``[-1, 1]``. ``kind='linear'``: ``f(X) = X @ w + b`` with ``w``, ``b``
    standard normal. ``kind='polynomial'`` (one feature): ``f(x) = sum_k c_k x**k``,
    ``k = 0..degree``, with random ``c`` scaled so that ``f`` has std 1 over ``[-1, 1]``.
    ``eps`` is standard normal, so the best possible MSE is ``noise**2``: the floor of the
    loss curve, stored as ``info['irreducible_mse']``.

    Args:
        n_samples (int): number of examples ``N`` (>= 2). Default: 200.
        kind (str): ``'linear'`` or ``'polynomial'``. Default: ``'linear'``.
        n_features (int): ``D`` (>= 1; must be 1 for ``'polynomial'``). Default: 1.
        degree (int): polynomial degree (>= 1), ignored for ``'linear'``. Default: 3.
        noise (float): std of the Gaussian noise (>= 0). Default: 0.1.
        val_fraction (float): share of validation examples, in ``[0, 1)``. Default: 0.2.
        seed (int): seed of the data and the split. Default: 0.
        device (str or torch.device, optional): where to put the tensors. Default: None (CPU).

    Returns:
        DataSplit: ``X`` (N, D) float32, ``y`` (N, 1) float32; ``info`` holds ``w`` (D,) and
        ``b`` (linear) or ``coefficients`` (degree + 1,) (polynomial), ``noise`` and
        ``irreducible_mse``.

    Example:
        >>> data = make_regression(100, noise=0.5, seed=0)
        >>> data.X_train.shape, data.y_train.shape, data.info["irreducible_mse"]
        (torch.Size([80, 1]), torch.Size([80, 1]), 0.25)
    """
    where = "make_regression"
    n_samples = check_number("n_samples", n_samples, where=where, low=2, high=MAX_SAMPLES, integer=True)
    kind = check_choice("kind", kind, ["linear", "polynomial"], where=where)
    n_features = check_number("n_features", n_features, where=where, low=1, high=10_000, integer=True)
    check_relation(n_samples * n_features <= MAX_SAMPLES, f"'n_samples' * 'n_features' must be <= {MAX_SAMPLES:.0e} "
                   "(the data must fit in memory)", where=where, n_samples=n_samples, n_features=n_features)
    degree = check_number("degree", degree, where=where, low=1, high=50, integer=True)
    noise = check_number("noise", noise, where=where, low=0)
    val_fraction = check_number("val_fraction", val_fraction, where=where, low=0, high=1, high_open=True)
    seed = check_seed(seed, where=where)
    check_relation(
        kind != "polynomial" or n_features == 1,
        "'n_features' must be 1 when kind='polynomial'",
        where=where,
        n_features=n_features,
    )
    g = torch.Generator().manual_seed(seed)
    # 1. The true function's parameters first, so that changing the noise keeps the same f.
    if kind == "linear":
        w = torch.randn(n_features, generator=g)  # (D,)
        b = float(torch.randn(1, generator=g))
        f = lambda X: X @ w + b  # noqa: E731
        info = {"w": w, "b": b}
    else:
        c = torch.randn(degree + 1, generator=g, dtype=torch.float64)  # (degree + 1,)
        powers = lambda x: x[:, None] ** torch.arange(degree + 1)  # noqa: E731  (N, degree + 1)
        # Scale by the std on a fine grid: f then has std ~1 over [-1, 1] whatever the degree.
        c = (c / (powers(torch.linspace(-1, 1, 1001, dtype=torch.float64)) @ c).std()).float()
        f = lambda X: powers(X[:, 0]) @ c  # noqa: E731
        info = {"coefficients": c, "degree": degree}
    # 2. Inputs uniform in [-1, 1], then targets with Gaussian noise of std `noise`.
    X = torch.rand(n_samples, n_features, generator=g) * 2 - 1  # (N, D)
    eps = torch.randn(n_samples, generator=g)  # (N,)
    y = (f(X) + noise * eps).unsqueeze(1)  # (N, 1)
    info.update(kind=kind, noise=noise, irreducible_mse=noise**2)
    return _split(X, y, val_fraction, g, kind, info, device)


def _moons(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    # scikit-learn's construction: an upper half circle and a lower one shifted to interlock.
    n_out = n // 2
    t_out, t_in = torch.linspace(0, math.pi, n_out), torch.linspace(0, math.pi, n - n_out)
    outer = torch.stack([t_out.cos(), t_out.sin()], dim=1)  # (n_out, 2)
    inner = torch.stack([1 - t_in.cos(), 0.5 - t_in.sin()], dim=1)  # (n_in, 2)
    return torch.cat([outer, inner]), _labels([n_out, n - n_out])


def _circles(n: int, factor: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    # scikit-learn's construction: a unit circle (class 0) around a circle of radius `factor`.
    n_out = n // 2
    parts = []
    for m, r in [(n_out, 1.0), (n - n_out, factor)]:
        t = torch.arange(m) * (2 * math.pi / m)  # evenly spaced, no duplicate endpoint
        parts.append(r * torch.stack([t.cos(), t.sin()], dim=1))  # (m, 2)
    return torch.cat(parts), _labels([n_out, n - n_out])


def _spirals(n: int, n_classes: int, turns: float = 1.75) -> tuple[torch.Tensor, torch.Tensor]:
    # TensorFlow Playground / CS231n: arm j has radius r in (0, 1] and angle 2 pi (turns r + j / K).
    # The centre r = 0 is left out: there all arms meet and two classes would share a point.
    sizes = [n // n_classes + (j < n % n_classes) for j in range(n_classes)]
    parts = []
    for j, m in enumerate(sizes):
        r = torch.linspace(0, 1, m + 1)[1:]  # (m,)
        t = 2 * math.pi * (turns * r + j / n_classes)
        parts.append(r[:, None] * torch.stack([t.sin(), t.cos()], dim=1))  # (m, 2)
    return torch.cat(parts), _labels(sizes)


def _labels(sizes: list[int]) -> torch.Tensor:
    return torch.cat([torch.full((m,), j, dtype=torch.int64) for j, m in enumerate(sizes)])


def make_classification(
    n_samples: int = 400,
    *,
    kind: str = "moons",
    noise: float = 0.1,
    n_classes: int = 2,
    val_fraction: float = 0.2,
    seed: int = 0,
    device=None,
) -> DataSplit:
    """A 2-D classification task: two moons, two circles or ``K`` interleaved spirals.

    The points lie evenly along each curve (as in scikit-learn) and are jittered by Gaussian
    noise of std ``noise``; classes are balanced (sizes differ by at most one).

    Args:
        n_samples (int): number of examples ``N`` (>= 2 * n_classes). Default: 400.
        kind (str): ``'moons'``, ``'circles'`` (inner radius 0.5) or ``'spirals'``.
            Default: ``'moons'``.
        noise (float): std of the Gaussian jitter (>= 0). Default: 0.1.
        n_classes (int): number of classes: 2 for moons and circles, 2..5 for spirals.
            Default: 2.
        val_fraction (float): share of validation examples, in ``[0, 1)``. Default: 0.2.
        seed (int): seed of the noise and the split. Default: 0.
        device (str or torch.device, optional): where to put the tensors. Default: None (CPU).

    Returns:
        DataSplit: ``X`` (N, 2) float32, ``y`` (N,) int64 in ``[0, n_classes)``.

    Example:
        >>> data = make_classification(300, kind="spirals", n_classes=3, seed=0)
        >>> data.X_train.shape, data.y_train.dtype, data.y_train.unique().tolist()
        (torch.Size([240, 2]), torch.int64, [0, 1, 2])
    """
    where = "make_classification"
    kind = check_choice("kind", kind, ["moons", "circles", "spirals"], where=where)
    noise = check_number("noise", noise, where=where, low=0)
    n_classes = check_number("n_classes", n_classes, where=where, low=2, high=5, integer=True)
    check_relation(
        kind == "spirals" or n_classes == 2,
        f"'n_classes' must be 2 when kind={kind!r} (only 'spirals' allows 2..5)",
        where=where,
        n_classes=n_classes,
    )
    n_samples = check_number("n_samples", n_samples, where=where, low=2 * n_classes, high=MAX_SAMPLES, integer=True)
    val_fraction = check_number("val_fraction", val_fraction, where=where, low=0, high=1, high_open=True)
    seed = check_seed(seed, where=where)
    g = torch.Generator().manual_seed(seed)
    # 1. Clean points on the curves, class by class.
    if kind == "moons":
        X, y = _moons(n_samples)
    elif kind == "circles":
        X, y = _circles(n_samples)
    else:
        X, y = _spirals(n_samples, n_classes)
    # 2. Gaussian jitter, then a seeded shuffle-and-split (which also mixes the classes).
    X = X + noise * torch.randn(X.shape, generator=g)  # (N, 2)
    info = {"kind": kind, "noise": noise, "n_classes": n_classes}
    return _split(X, y, val_fraction, g, kind, info, device)
