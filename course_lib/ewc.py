"""Catastrophic forgetting and elastic weight consolidation (EWC).

Train a network on task A, then on task B, and its accuracy on A collapses: nothing in B's loss
says that A's solution should be kept. By Bayes' rule, what A taught sits in the posterior
``p(theta | A)``. EWC approximates it by a Gaussian centred on A's solution ``theta*_A`` whose
precision is the **diagonal Fisher information** ``F`` there, so training on B minimises

    L(theta) = L_B(theta) + lam/2 * sum_i F_i * (theta_i - theta*_A,i)**2,

a spring on every weight, stiff where the weight mattered for A (large ``F_i``), slack elsewhere.

1. **The toy:** a 10-class Gaussian mixture in 50-d; each later task permutes the inputs
   or brings new classes (:func:`make_tasks`).
2. **The Fisher** (:func:`fisher_diagonal`): the mean of squared *per-example* gradients of
   ``log p(t|x)``, ``t`` sampled from the model (true Fisher) or the label (empirical Fisher),
   from ``torch.func`` (``vmap`` of ``grad``), not a Python loop over examples.
3. **The penalty** (:func:`ewc_penalty`), online EWC's running Fisher for many tasks
   (:func:`online_fisher`), and the largest ``lam`` plain SGD survives (:func:`max_stable_lam`).
4. **A sequential trainer** (:func:`train_sequential`) that evaluates *every* task while it trains
   each one, so forgetting is seen as it happens; ``lam`` can change mid-run (the lesson's slider).

References:
    J. Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks", PNAS 2017,
    arXiv 1612.00796 (EWC).
    J. Schwarz et al., "Progress & Compress", ICML 2018, arXiv 1805.06370 (online EWC).
    F. Kunstner, L. Balles, P. Hennig, "Limitations of the empirical Fisher approximation for
    natural gradient descent", NeurIPS 2019, arXiv 1905.12558 (true vs empirical Fisher).
    G. M. van de Ven, A. S. Tolias, "Three scenarios for continual learning", arXiv 1904.07734
    (2019; class-incremental splits defeat EWC).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from ._validation import check_choice, check_number, check_relation, check_seed, check_tensor, check_type
from .data import DataSplit
from .device import resolve_device

__all__ = [
    "SPLITS", "make_tasks", "FISHER_KINDS", "fisher_diagonal", "ewc_penalty",
    "online_fisher", "max_stable_lam", "ContinualHistory", "ContinualState", "train_sequential",
]

SPLITS = ("permuted", "class_split")
FISHER_KINDS = ("true", "empirical")

# -- 1. The toy: one Gaussian mixture, several tasks -------------------------------------------


def _mixture(n_train: int, n_test: int, num_classes: int, dim: int, class_sep: float, gen: torch.Generator):
    """Training then test points of one Gaussian mixture, each part with balanced classes."""
    # Means ~ N(0, s^2 I) with s = class_sep / sqrt(2 * dim): two means then lie about
    # ``class_sep`` apart, whatever the dimension. The noise is N(0, I).
    means = torch.randn(num_classes, dim, generator=gen) * class_sep / math.sqrt(2 * dim)  # (C, D)
    y = torch.cat([(torch.arange(n) % num_classes)[torch.randperm(n, generator=gen)] for n in (n_train, n_test)])
    X = means[y] + torch.randn(len(y), dim, generator=gen)  # (N, D)
    return X, y


def make_tasks(num_tasks: int = 2, *, split: str = "permuted", num_classes: int = 10, dim: int = 50,
               n_train: int = 2000, n_test: int = 1000, class_sep: float = 6.0, seed: int = 0) -> list[DataSplit]:
    """Tasks cut from one Gaussian mixture: permuted inputs, or new classes in each task.

    * ``split="permuted"``: task B shows the *same* examples as A with their features shuffled by
      a fixed permutation, task C by another (Kirkpatrick et al.'s "permuted MNIST" recipe). Each
      task is as easy as A and one network can solve all at once.
    * ``split="class_split"``: task A holds the first block of classes, task B the next, ...; the
      network must tell *all* classes apart at the end, though no task shows A's classes next to
      B's (class-incremental learning, the split that defeats EWC).

    Args:
        num_tasks (int): number of tasks, ``>= 1`` (``2..num_classes`` for a class split). Default: ``2``.
        split (str): ``"permuted"`` or ``"class_split"``. Default: ``"permuted"``.
        num_classes (int): classes ``C`` of the mixture, ``>= 2``. Default: ``10``.
        dim (int): input size ``D``. Default: ``50``.
        n_train, n_test (int): training and test examples of the mixture (per task when permuted,
            shared out between the tasks when split). Defaults: ``2000``, ``1000``.
        class_sep (float): typical distance between two class means, in noise standard deviations,
            ``> 0``. Default: ``6.0`` (a linear classifier reaches about 97%).
        seed (int): seeds the means, the samples and the permutations. Default: ``0``.

    Returns:
        list[DataSplit]: one per task, named ``"A"``, ``"B"``, ...; ``X`` ``(N, D)`` float32, ``y``
        ``(N,)`` int64, the test set in ``X_val``, ``y_val``; ``info`` holds the ``"permutation"``
        ``(D,)`` (identity for A) or the task's ``"classes"``.

    Example:
        >>> A, B = make_tasks(2, n_train=100, n_test=50)
        >>> A.X_train.shape, A.y_train.dtype, torch.equal(B.X_train, A.X_train[:, B.info["permutation"]])
        (torch.Size([100, 50]), torch.int64, True)
        >>> [t.info["classes"] for t in make_tasks(2, split="class_split", n_train=100, n_test=50)]
        [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    """
    where = "make_tasks"
    check_choice("split", split, SPLITS, where=where)
    num_classes = check_number("num_classes", num_classes, where=where, low=2, integer=True)
    high = num_classes if split == "class_split" else None
    check_number("num_tasks", num_tasks, where=where, low=1 if high is None else 2, high=high, integer=True)
    check_number("dim", dim, where=where, low=1, integer=True)
    check_number("n_train", n_train, where=where, low=num_classes, integer=True)
    check_number("n_test", n_test, where=where, low=num_classes, integer=True)
    check_number("class_sep", class_sep, where=where, low=0.0, low_open=True)
    check_seed(seed, where=where)
    gen = torch.Generator().manual_seed(seed)
    X, y = _mixture(n_train, n_test, num_classes, dim, class_sep, gen)  # (N, D), (N,)
    tasks = []
    if split == "permuted":
        for k in range(num_tasks):
            perm = torch.arange(dim) if k == 0 else torch.randperm(dim, generator=gen)  # (D,)
            Xk = X[:, perm]
            tasks.append(DataSplit(Xk[:n_train], y[:n_train], Xk[n_train:], y[n_train:], name=_task_name(k),
                                   info={"permutation": perm}))
        return tasks
    is_train = torch.arange(len(y)) < n_train  # (N,) bool
    for k, block in enumerate(torch.arange(num_classes).tensor_split(num_tasks)):
        train, test = torch.isin(y, block) & is_train, torch.isin(y, block) & ~is_train
        tasks.append(DataSplit(X[train], y[train], X[test], y[test], name=_task_name(k),
                               info={"classes": block.tolist()}))
    return tasks


def _task_name(k: int) -> str:
    return chr(ord("A") + k) if k < 26 else f"T{k}"


# -- 2. The diagonal Fisher from per-example gradients -----------------------------------------


def fisher_diagonal(model: nn.Module, X: torch.Tensor, y: torch.Tensor | None = None, *, kind: str = "true",
                    chunk_size: int = 512, seed: int = 0) -> list[torch.Tensor]:
    """The diagonal of the Fisher information of a classifier, one tensor per parameter.

    ``F_i = mean_n (d log p(t_n | x_n) / d theta_i)**2`` where the target ``t_n`` is

    * ``kind="true"``: a class **sampled from the model**, ``t_n ~ softmax(model(x_n))`` (one
      draw per example, ``torch.multinomial`` with a CPU generator seeded by ``seed``): the Fisher
      of the model's own predictions, the one EWC's derivation needs.
    * ``kind="empirical"``: the **label** ``y_n``. It measures how the data pull, not the
      curvature; the two agree only where the model fits well (Kunstner et al. 2019).

    The square is taken **per example**, before the mean. The squared mean gradient of a batch
    is a different (wrong) number: at a minimum the mean gradient is about zero, each
    example's gradient is not.

    Args:
        model (nn.Module): a classifier, ``(N, D) -> (N, C)`` logits; read in eval mode.
        X (Tensor): inputs, ``(N, D)``, floating.
        y (Tensor or None): labels, ``(N,)`` int64; needed for ``kind="empirical"``. Default: None.
        kind (str): ``"true"`` or ``"empirical"``. Default: ``"true"``.
        chunk_size (int): examples per ``vmap`` call, to bound memory. Default: ``512``.
        seed (int): seeds the sampled targets of the true Fisher. Default: ``0``.

    Returns:
        list[Tensor]: ``F`` for each trainable parameter of ``model.parameters()``, same shapes
        and device.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Linear(3, 2)
        >>> F_w, F_b = fisher_diagonal(net, torch.randn(8, 3), torch.randint(2, (8,)), kind="empirical")
        >>> F_w.shape, F_b.shape, bool((F_w >= 0).all())
        (torch.Size([2, 3]), torch.Size([2]), True)

    References:
        Kirkpatrick et al. 2017, arXiv 1612.00796, section 2 and appendix.
    """
    where = "fisher_diagonal"
    check_type("model", model, nn.Module, where=where, expected="torch.nn.Module")
    check_tensor("X", X, where=where, ndim=2, floating=True, shape_hint="(N, D)")
    check_choice("kind", kind, FISHER_KINDS, where=where)
    check_number("chunk_size", chunk_size, where=where, low=1, integer=True)
    check_seed(seed, where=where)
    check_relation(len(X) >= 1, "'X' must hold at least one example", where=where, **{"X.shape": tuple(X.shape)})
    if kind == "empirical":
        check_relation(y is not None, "kind='empirical' needs the labels 'y'", where=where, y=y)
    if y is not None:
        check_tensor("y", y, where=where, ndim=1, floating=False, shape_hint="(N,)")
        check_relation(len(y) == len(X), "'X' and 'y' must hold the same number of examples", where=where,
                       **{"X.shape": tuple(X.shape), "y.shape": tuple(y.shape)})
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    check_relation(len(names) > 0, "'model' must have parameters that require a gradient", where=where,
                   model=type(model).__name__)
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()  # no dropout noise in the curvature
    try:
        params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
        X = X.detach().to(dev)

        # 1. The targets t_n; sampled on the CPU, so CUDA and CPU runs draw the same classes.
        if kind == "true":
            with torch.no_grad():
                probs = torch.softmax(model(X).float(), dim=-1).cpu()  # (N, C)
            t = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(seed)).squeeze(1)  # (N,)
        else:
            t = y
        t = t.to(dev)

        # 2. log p(t | x) of ONE example, as a function of the parameters: grad() of it is that
        #    example's gradient, and vmap() runs it over the batch dimension without a loop.
        def log_prob(p: dict, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            logits = functional_call(model, p, (x.unsqueeze(0),))  # (1, C); frozen weights from the model
            return -F.cross_entropy(logits, target.unsqueeze(0))  # log p(t | x) = -CE

        per_example = vmap(grad(log_prob), in_dims=(None, 0, 0))

        # 3. Square each example's gradient, then average; chunks bound the (N, *shape) memory.
        total = {n: torch.zeros_like(p) for n, p in params.items()}
        for start in range(0, len(X), chunk_size):
            g = per_example(params, X[start:start + chunk_size], t[start:start + chunk_size])  # name -> (n, *shape)
            for n in total:
                total[n] += g[n].pow(2).sum(dim=0)
        return [total[n] / len(X) for n in names]
    finally:
        model.train(was_training)


# -- 3. The penalty, online EWC, and the step size it allows -----------------------------------


def _check_aligned(where: str, **lists: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Lists of tensors, one per parameter, in the same order with the same shapes."""
    out = []
    for name, value in lists.items():
        check_type(name, value, (list, tuple), where=where, expected="list of tensors (one per parameter)")
        for i, t in enumerate(value):
            check_tensor(f"{name}[{i}]", t, where=where, floating=True)
        out.append(list(value))
    lengths = {name: len(v) for name, v in zip(lists, out)}
    listed = ", ".join(f"'{n}'" for n in lists)
    check_relation(len(set(lengths.values())) == 1, f"the parameter lists {listed} must hold the same number of "
                   "tensors", where=where, **{f"len({n})": k for n, k in lengths.items()})
    for i, ts in enumerate(zip(*out)):
        shapes = {n: tuple(t.shape) for n, t in zip(lists, ts)}
        check_relation(len(set(shapes.values())) == 1, f"tensor {i} must have the same shape in every list",
                       where=where, **{f"{n}[{i}].shape": s for n, s in shapes.items()})
    return out


def _penalty(params, anchor, fisher) -> torch.Tensor:
    """sum_i F_i (theta_i - theta*_i)^2, without the checks (the trainer calls it every step)."""
    return sum(((p - a).pow(2) * f).sum() for p, a, f in zip(params, anchor, fisher))


def ewc_penalty(params: Sequence[torch.Tensor], anchor: Sequence[torch.Tensor], fisher: Sequence[torch.Tensor],
                lam: float) -> torch.Tensor:
    """The EWC penalty ``lam/2 * sum_i F_i * (theta_i - theta*_i)**2``.

    Args:
        params (list[Tensor]): the current parameters ``theta`` (e.g. ``list(model.parameters())``).
        anchor (list[Tensor]): the parameters ``theta*`` after the earlier task(s), same shapes.
        fisher (list[Tensor]): the diagonal Fisher ``F`` at ``theta*``, same shapes, ``>= 0``.
        lam (float): the penalty strength ``lam >= 0``; ``0`` turns EWC off.

    Returns:
        Tensor: a scalar that autograd differentiates with respect to ``params``.

    Example:
        >>> theta, anchor, F = [torch.tensor([1.0, 2.0])], [torch.tensor([0.0, 0.0])], [torch.tensor([3.0, 0.5])]
        >>> ewc_penalty(theta, anchor, F, lam=2.0)   # 2/2 * (3*1 + 0.5*4)
        tensor(5.)

    References:
        Kirkpatrick et al. 2017, arXiv 1612.00796, equation (3).
    """
    where = "ewc_penalty"
    lam = check_number("lam", lam, where=where, low=0.0)
    params, anchor, fisher = _check_aligned(where, params=params, anchor=anchor, fisher=fisher)
    check_relation(len(params) > 0, "the parameter lists must not be empty", where=where, **{"len(params)": 0})
    return 0.5 * lam * _penalty(params, [a.detach() for a in anchor], [f.detach() for f in fisher])


def online_fisher(running: Sequence[torch.Tensor] | None, new: Sequence[torch.Tensor], gamma: float = 1.0
                  ) -> list[torch.Tensor]:
    """Online EWC's running Fisher after one more task: ``gamma * running + new``.

    One penalty for all past tasks: the running Fisher adds each task's Fisher, older ones
    decaying by ``gamma`` per task, and the anchor is the latest solution.

    Args:
        running (list[Tensor] or None): the running Fisher so far; None before the first task.
        new (list[Tensor]): the Fisher of the task just learned, same shapes.
        gamma (float): decay per task, in ``[0, 1]``. Default: ``1.0``.

    Returns:
        list[Tensor]: the updated running Fisher (new tensors).

    Example:
        >>> online_fisher([torch.tensor([4.0])], [torch.tensor([1.0])], gamma=0.5)
        [tensor([3.])]

    References:
        Schwarz et al. 2018, arXiv 1805.06370, section 3 (online EWC).
    """
    where = "online_fisher"
    gamma = check_number("gamma", gamma, where=where, low=0.0, high=1.0)
    if running is None:  # the first task: nothing to decay yet
        running = [torch.zeros_like(f) for f in _check_aligned(where, new=new)[0]]
    running, new = _check_aligned(where, running=running, new=new)
    return [gamma * r.detach() + f.detach() for r, f in zip(running, new)]


def max_stable_lam(lr: float, fisher: Sequence[torch.Tensor]) -> float:
    """The largest ``lam`` for which plain SGD on the EWC penalty alone does not diverge.

    The penalty is a quadratic with curvature ``lam * F_i`` along weight ``i``; a gradient step
    multiplies the distance to the anchor by ``1 - lr * lam * F_i``, which grows in size once
    ``lr * lam * F_i > 2`` (lesson 02's ``2/L`` bound). The task's own loss adds curvature, so
    the real limit can be somewhat lower.

    Args:
        lr (float): the SGD learning rate, ``> 0``.
        fisher (list[Tensor]): the diagonal Fisher (or running Fisher).

    Returns:
        float: ``2 / (lr * max F)`` (``inf`` if ``F`` is all zeros).

    Example:
        >>> max_stable_lam(0.05, [torch.tensor([0.5, 4.0]), torch.tensor([1.0])])
        10.0
    """
    where = "max_stable_lam"
    lr = check_number("lr", lr, where=where, low=0.0, low_open=True)
    (fisher,) = _check_aligned(where, fisher=fisher)
    check_relation(len(fisher) > 0, "'fisher' must not be empty", where=where, **{"len(fisher)": 0})
    f_max = max(float(f.max()) for f in fisher)
    return 2.0 / (lr * f_max) if f_max > 0 else math.inf


# -- 4. The sequential trainer -----------------------------------------------------------------


@dataclass
class ContinualHistory:
    """What :func:`train_sequential` recorded: plain lists of floats (Fisher tensors aside).

    Per step ``i``, counted across tasks: ``step``, ``task`` (trained), ``train_loss`` (its
    mini-batch cross-entropy before the update), ``penalty`` (``lam/2 * sum F (theta - theta*)^2``).
    Per evaluation ``j`` (at 0, every ``eval_every`` steps and at each task's end): ``eval_step``,
    ``lam`` (in force), and for *every* task ``k``: ``test_acc[k][j]``, ``test_loss[k][j]``.
    ``acc_matrix[i][k]``: accuracy on task ``k`` after learning task ``i`` (NaN if never
    finished). ``task_start[i]``: the step task ``i`` began at. ``fisher[i]``: the running Fisher
    after task ``i`` (CPU). ``events``: ``{"step", "kind", "text"}`` (tasks, divergence; lam changes add ``"lam"``).
    """

    task_names: list[str] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    task: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    penalty: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    lam: list[float] = field(default_factory=list)
    test_acc: list[list[float]] = field(default_factory=list)
    test_loss: list[list[float]] = field(default_factory=list)
    acc_matrix: list[list[float]] = field(default_factory=list)
    task_start: list[int] = field(default_factory=list)
    fisher: list[list[torch.Tensor]] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    stop_reason: str = "running"
    stop_step: int | None = None
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        """True if the run stopped because its loss became NaN/inf or exploded."""
        return self.stop_reason == "diverged"

    def forgetting(self, k: int = 0) -> float:
        """How much accuracy on task ``k`` was lost by the end: ``acc after k - acc at the end``."""
        return self.acc_matrix[k][k] - self.acc_matrix[-1][k]

    def add_event(self, step: int, kind: str, text: str, **data) -> None:
        self.events.append({"step": int(step), "kind": kind, "text": text, **data})


class ContinualState:
    """What a callback of :func:`train_sequential` sees, and the one knob it may turn.

    ``model``, ``history``, ``task`` (index of the task being trained), ``step`` (global),
    ``lam`` (the current strength), ``fisher_max`` (max of the running Fisher, 0 on the first task).
    """

    def __init__(self, model: nn.Module, history: ContinualHistory, lam: float, lr: float):
        self.model, self.history, self.lam, self.lr = model, history, lam, lr
        self.task, self.step, self.fisher_max = 0, -1, 0.0
        self.stop_reason: str | None = None

    def set_lam(self, lam: float) -> None:
        """Change ``lam`` from the next step on, and record the change as an event."""
        lam = check_number("lam", lam, where="ContinualState.set_lam", low=0.0)
        if lam != self.lam:
            ratio = self.lr * lam * self.fisher_max
            self.history.add_event(self.step + 1, "change", f"lam {self.lam:.3g} -> {lam:.3g} "
                                   f"(lr * lam * max F = {ratio:.3g})", lam=float(lam))
            self.lam = float(lam)

    def request_stop(self, reason: str = "callback") -> None:
        """Stop after the current step; ``history.stop_reason`` becomes ``reason``."""
        self.stop_reason = reason


@torch.no_grad()
def _evaluate(model: nn.Module, tasks: list[DataSplit]) -> tuple[list[float], list[float]]:
    """Test accuracy and cross-entropy of every task: one sync for all of them."""
    model.eval()
    rows = []
    for t in tasks:
        logits = model(t.X_val)  # (N, C)
        rows.append(torch.stack([(logits.argmax(1) == t.y_val).float().mean(), F.cross_entropy(logits, t.y_val)]))
    model.train()
    acc, loss = torch.stack(rows).T.tolist()  # one device -> host copy
    return acc, loss


def train_sequential(model: nn.Module, tasks: Sequence[DataSplit], *, lam: float = 0.0, fisher: str = "true",
                     gamma: float = 1.0, lr: float = 0.05, num_steps: int = 1500, batch_size: int = 64,
                     eval_every: int = 50, fisher_samples: int = 1000, explode_factor: float = 1e3,
                     on_eval: Callable[[ContinualState], None] | None = None, skip_first: bool = False, seed: int = 0,
                     device: str | torch.device | None = None) -> ContinualHistory:
    """Train ``model`` on ``tasks`` in turn with SGD and online EWC, evaluating every task as it goes.

    For each task ``k``: ``num_steps`` SGD steps on ``CE_k + lam/2 * sum F (theta - theta*)^2``
    (no penalty on the first task); then the Fisher of task ``k`` on ``fisher_samples`` training
    examples, ``F <- gamma * F + F_k`` and ``theta* <- theta``. ``lam=0`` is plain fine-tuning.
    A NaN/inf loss, or one above ``explode_factor`` times the task's first loss, stops the run
    with ``stop_reason == "diverged"`` and an event (no exception): with SGD, once
    ``lr * lam * max F > 2`` (:func:`max_stable_lam`).

    Args:
        model (nn.Module): a classifier ``(N, D) -> (N, C)``, initialised by the caller, trained in place.
        tasks (list[DataSplit]): the tasks in order (:func:`make_tasks`), at least one.
        lam (float): EWC strength ``>= 0``; a callback may change it (``state.set_lam``). Default: ``0.0``.
        fisher (str): ``"true"`` or ``"empirical"`` (:func:`fisher_diagonal`). Default: ``"true"``.
        gamma (float): online EWC's decay per task, in ``[0, 1]``. Default: ``1.0``.
        lr (float): SGD learning rate ``> 0``. Default: ``0.05``.
        num_steps (int): SGD steps per task, ``>= 1``. Default: ``1500`` (the lesson's).
        batch_size (int): examples per step (drawn with replacement). Default: ``64``.
        eval_every (int): steps between evaluations, ``>= 1``. Default: ``50``.
        fisher_samples (int): training examples the Fisher averages over. Default: ``1000``.
        explode_factor (float): divergence threshold, ``> 1``. Default: ``1e3``.
        on_eval (callable or None): ``f(state: ContinualState)`` after each evaluation; its
            ``state.set_lam`` / ``state.request_stop`` act from the next step. Default: None.
        skip_first (bool): the model has already learned ``tasks[0]``: take its Fisher at the
            current weights and train from ``tasks[1]`` on (each run on B can then start from one
            saved model of A). Default: False.
        seed (int): seeds the batches and the Fisher's sampled labels. Default: ``0``.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None (the best available).

    Returns:
        ContinualHistory: ``stop_reason`` is ``"completed"``, ``"diverged"`` or a callback's reason.

    Example:
        >>> from course_lib.models import MLP
        >>> tasks = make_tasks(2, n_train=200, n_test=100)
        >>> _ = torch.manual_seed(0)
        >>> h = train_sequential(MLP(50, 10, width=32), tasks, lam=10.0, num_steps=100, device="cpu")
        >>> h.stop_reason, len(h.acc_matrix), len(h.test_acc[0]) == len(h.eval_step)
        ('completed', 2, True)

    References:
        Kirkpatrick et al. 2017, arXiv 1612.00796; Schwarz et al. 2018, arXiv 1805.06370.
    """
    where = "train_sequential"
    # 1. Check every argument before any work.
    check_type("model", model, nn.Module, where=where, expected="torch.nn.Module")
    check_type("tasks", tasks, (list, tuple), where=where, expected="list of DataSplit")
    check_relation(len(tasks) > 0, "'tasks' must hold at least one task", where=where, tasks=tasks)
    for i, t in enumerate(tasks):
        check_type(f"tasks[{i}]", t, DataSplit, where=where, expected="DataSplit")
    lam = check_number("lam", lam, where=where, low=0.0)
    check_choice("fisher", fisher, FISHER_KINDS, where=where)
    gamma = check_number("gamma", gamma, where=where, low=0.0, high=1.0)
    lr = check_number("lr", lr, where=where, low=0.0, low_open=True)
    for name, value in dict(num_steps=num_steps, batch_size=batch_size, eval_every=eval_every,
                            fisher_samples=fisher_samples).items():
        check_number(name, value, where=where, low=1, integer=True)
    check_number("explode_factor", explode_factor, where=where, low=1.0, low_open=True)
    check_relation(on_eval is None or callable(on_eval), "'on_eval' must be callable or None", where=where,
                   on_eval=on_eval)
    check_type("skip_first", skip_first, bool, where=where)
    check_seed(seed, where=where)
    dev = resolve_device(device, where=where)

    # 2. Data and model on the device once. Batches are drawn on the CPU from a seeded
    #    generator, so every device sees the same batches.
    tasks = [DataSplit(*(x.to(dev) for x in (t.X_train, t.y_train, t.X_val, t.y_val)), name=t.name, info=t.info)
             for t in tasks]
    model.to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    hist = ContinualHistory(task_names=[t.name for t in tasks], test_acc=[[] for _ in tasks],
                            test_loss=[[] for _ in tasks], config=dict(
                                lam=lam, fisher=fisher, gamma=gamma, lr=lr, num_steps=num_steps, batch_size=batch_size,
                                eval_every=eval_every, fisher_samples=fisher_samples, skip_first=skip_first,
                                seed=seed, device=str(dev)))
    state = ContinualState(model, hist, lam, lr)
    running = anchor = None  # online EWC's Fisher and anchor: None until the first task is learned
    pending: list[torch.Tensor] = []  # (2,) device tensors [CE, penalty], read back at each evaluation
    t0 = time.perf_counter()

    def record() -> bool:
        """Read back the pending losses, check them, evaluate every task. False on divergence."""
        values = torch.stack(pending).tolist() if pending else []  # one sync per evaluation
        pending.clear()
        first_step = state.step + 1 - len(values)
        for i, (ce, pen) in enumerate(values):
            step, total = first_step + i, ce + pen
            hist.step.append(step)
            hist.task.append(state.task)
            hist.train_loss.append(ce)
            hist.penalty.append(pen)
            # Divergence: NaN/inf, or far above the task's first loss. Keep the step, then stop.
            if not math.isfinite(total) or total > explode_factor * max(hist.train_loss[hist.task_start[-1]], 1e-12):
                hist.stop_reason, hist.stop_step = "diverged", step
                hist.add_event(step, "diverged", f"loss = {total:.3g} at step {step} on task {tasks[state.task].name} "
                               f"(lr * lam * max F = {lr * state.lam * state.fisher_max:.3g})")
                return False
        acc, loss = _evaluate(model, tasks)
        hist.eval_step.append(state.step + 1)
        hist.lam.append(state.lam)
        for k in range(len(tasks)):
            hist.test_acc[k].append(acc[k])
            hist.test_loss[k].append(loss[k])
        return True

    for k, task in enumerate(tasks):
        state.task = k
        hist.task_start.append(state.step + 1)
        if not hist.eval_step or hist.eval_step[-1] != state.step + 1:
            record()  # where the task starts from
        if not (k == 0 and skip_first):
            hist.add_event(state.step + 1, "task", f"task {task.name} starts")
            # 3. SGD on this task's loss, plus the EWC spring towards the previous solution.
            for i in range(num_steps):
                state.step += 1
                idx = torch.randint(len(task.X_train), (batch_size,), generator=gen).to(dev)  # (B,)
                ce = F.cross_entropy(model(task.X_train[idx]), task.y_train[idx])
                pen = 0.5 * state.lam * _penalty(params, anchor, running) if anchor else torch.zeros((), device=dev)
                opt.zero_grad(set_to_none=True)
                (ce + pen).backward()
                opt.step()
                pending.append(torch.stack([ce.detach(), pen.detach()]))
                if (i + 1) % eval_every == 0 or i + 1 == num_steps:
                    if not record():
                        break
                    if on_eval is not None:
                        on_eval(state)
                    if state.stop_reason is not None:
                        break
            if hist.diverged or state.stop_reason is not None:
                break
        # 4. The task is learned: its accuracies go into the matrix, its Fisher into the penalty.
        hist.acc_matrix.append([hist.test_acc[j][-1] for j in range(len(tasks))])
        sub = torch.randperm(len(task.X_train), generator=gen)[:fisher_samples].to(dev)
        new = fisher_diagonal(model, task.X_train[sub], task.y_train[sub], kind=fisher, seed=seed + k)
        running = online_fisher(running, new, gamma)
        anchor = [p.detach().clone() for p in params]
        state.fisher_max = max(float(f.max()) for f in running)
        hist.fisher.append([f.cpu() for f in running])

    # 5. Finish: the stop reason; tasks never finished get a row of NaN in the matrix.
    if hist.stop_reason == "running":
        hist.stop_reason = state.stop_reason or "completed"
        if state.stop_reason is not None:
            hist.stop_step = state.step
            hist.add_event(state.step, state.stop_reason, state.stop_reason)
    hist.acc_matrix += [[math.nan] * len(tasks) for _ in range(len(tasks) - len(hist.acc_matrix))]
    hist.seconds = time.perf_counter() - t0
    return hist
