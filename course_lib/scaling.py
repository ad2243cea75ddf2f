"""Fitting scaling laws: ``L(x) = E + A / x**alpha`` and ``L(N, D) = E + A / N**alpha + B / D**beta``.

A scaling law turns a handful of cheap training runs into a forecast for an expensive one.
Everything depends on the fit, so we fit the way Hoffmann et al. (Chinchilla, Approach 3) did,
and say why at each step:

1. **Fit in log space.** Losses of runs that differ 1000x in size differ little in value but a
   lot in how much they matter; comparing ``log`` predicted with ``log`` observed loss weighs a
   1 % miss equally everywhere. With ``A = exp(a)``, ``B = exp(b)``, ``E = exp(e)`` the log of the
   law is a log-sum-exp, ``log L = LSE(a - alpha log N, b - beta log D, e)``: smooth, no overflow,
   and every coefficient stays positive without constraints.
2. **Huber loss with a tiny delta (1e-3).** Residuals larger than 0.1 % in log loss are counted
   linearly, not squared, so one odd run (a bad seed, a learning rate that was off) cannot drag
   the whole law towards it.
3. **Many starting points.** The objective is not convex (``E`` and ``A`` trade off against
   ``alpha``); L-BFGS from one start can stop in a poor valley.
4. **Bootstrap over runs.** Refit on runs resampled with replacement: the spread of the refits
   is an honest error bar, and it shows how weakly a few runs pin down ``E`` and the exponents.

``ChinchillaFit.compute_optimal(C)`` answers the question the law is for: with ``C = 6 N D``
FLOPs, how to split a budget between model size and data. ``CHINCHILLA`` and ``KAPLAN`` hold the
published laws for side-by-side plots.

References:
    Kaplan et al., *Scaling Laws for Neural Language Models*, arXiv 2001.08361 (2020).
    Hoffmann et al., *Training Compute-Optimal Large Language Models*, arXiv 2203.15556 (2022),
    Sec. 3.3 and Appendix D.2.
    Besiroglu et al., *Chinchilla Scaling: A replication attempt*, arXiv 2404.10102 (2024).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from ._validation import Interval, check_choice, check_number, check_relation, check_seed, validate_params

__all__ = ["PowerLawFit", "ChinchillaFit", "KaplanLaws", "fit_power_law", "fit_chinchilla", "flops",
           "CHINCHILLA", "KAPLAN", "CHINCHILLA_TOKENS_PER_PARAM"]

# Chinchilla's grid of initialisations (Appendix D.2): exponents, log E, log A and log B.
_GRID_EXPONENT = (0.0, 0.5, 1.0, 1.5, 2.0)
_GRID_E = (-1.0, -0.5, 0.0, 0.5, 1.0)
_GRID_COEF = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
_EXPONENT_BOUNDS = (0.0, 5.0)  # a loss that falls faster than x**-5 is a bug, not a law
_N_STARTS = 5


# ---------------------------------------------------------------- validation
def _as_array(name: str, values, where: str, expected: str = "a number or an array-like of numbers") -> np.ndarray:
    """``values`` as a float64 array, or ``TypeError`` saying what was ``expected``."""
    try:
        if isinstance(values, (str, bytes)):
            raise TypeError
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{where}(): '{name}' must be {expected}, "
                        f"got {name}={values!r} of type {type(values).__name__}") from None


def _check_positive(name: str, arr: np.ndarray, where: str, what: str = "") -> np.ndarray:
    """Raise ``ValueError`` naming the first entry that is not finite and > 0."""
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
    if len(bad):
        i = bad[0]
        at = name if arr.ndim == 0 else f"{name}[{', '.join(map(str, np.unravel_index(i, arr.shape)))}]"
        check_relation(False, f"'{name}' must be finite and > 0{what}", where=where, **{at: float(arr.flat[i])})
    return arr


def _positive(name: str, values, where: str, what: str = "") -> np.ndarray:
    return _check_positive(name, _as_array(name, values, where), where, what)


def _runs(where: str, n_params: int, param_names: str, **columns) -> list[np.ndarray]:
    """Check the per-run columns (x, loss, ...): 1-D, equal length, enough runs, finite and > 0."""
    why = {"N": " (a model size)", "D": " (a number of tokens)", "x": " (a model size or a number of tokens)",
           "loss": " (drop diverged runs before fitting)"}
    out = []
    for name, values in columns.items():
        arr = _as_array(name, values, where, "a 1-D array-like of numbers (one per run)")
        check_relation(arr.ndim == 1, f"'{name}' must be one-dimensional (one value per run)", where=where,
                       **{f"{name}.shape": arr.shape})
        out.append(arr)
    lengths = {f"len({k})": len(v) for k, v in zip(columns, out)}
    names = [repr(k) for k in columns]
    check_relation(len(set(lengths.values())) == 1, f"{', '.join(names[:-1])} and {names[-1]} must have the "
                   "same length (one entry per run)", where=where, **lengths)
    check_relation(len(out[0]) >= n_params + 1, f"need at least {n_params + 1} points (runs) to fit "
                   f"{n_params} parameters ({param_names})", where=where, n_points=len(out[0]))
    return [_check_positive(name, arr, where, why[name]) for name, arr in zip(columns, out)]


def _distinct(where: str, k: int, **columns) -> None:
    """Each column needs ``k`` distinct values: a law in x cannot be read off runs that share one x."""
    for name, arr in columns.items():
        check_relation(len(np.unique(arr)) >= k, f"'{name}' needs at least {k} distinct values to fit its "
                       "exponent", where=where, **{f"distinct {name}": np.unique(arr)[:5].tolist()})


def _warn_on_bound(where: str, **exponents: float) -> None:
    """A fitted exponent stuck at a bound is the bound, not a measurement: say so."""
    for name, value in exponents.items():
        edge = min(_EXPONENT_BOUNDS, key=lambda b: abs(value - b))
        if abs(value - edge) < 1e-6:
            warnings.warn(f"{where}(): the exponent '{name}' sits on its bound {edge:g} (allowed "
                          f"[{_EXPONENT_BOUNDS[0]:g}, {_EXPONENT_BOUNDS[1]:g}]), got {name}={value:.3g}: the losses "
                          "do not fall as a power law here, and its error bar means nothing", RuntimeWarning,
                          stacklevel=3)


def _scalar_or_array(arr: np.ndarray):
    return float(arr) if arr.ndim == 0 else arr


# ---------------------------------------------------------------- the fit
def _objective(theta, logX, log_loss, counts, delta):
    """Sum over runs of Huber_delta(predicted - observed log loss), and its gradient.

    theta = (c_1..c_m, p_1..p_m, e): log coefficients, exponents, log E. logX: (n, m).
    """
    n, m = logX.shape
    c, p, e = theta[:m], theta[m:2 * m], theta[-1]
    terms = np.concatenate([c - logX * p, np.full((n, 1), e)], axis=1)  # (n, m + 1)
    # Log-sum-exp by hand (shift by the max so exp cannot overflow): the same exponentials give
    # the softmax weights, which are d pred / d term_k.
    top = terms.max(axis=1, keepdims=True)  # (n, 1)
    w = np.exp(terms - top)  # (n, m + 1)
    total = w.sum(axis=1)  # (n,)
    pred = top[:, 0] + np.log(total)  # (n,) predicted log loss
    r = pred - log_loss  # (n,)
    huber = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    # Huber'(r) is r clipped to [-delta, delta]; chain rule through the softmax weights.
    gw = (counts * np.clip(r, -delta, delta) / total)[:, None] * w  # (n, m + 1)
    grad = np.concatenate([gw[:, :m].sum(0), -(gw[:, :m] * logX).sum(0), gw[:, m:].sum(0)])
    return float(counts @ huber), grad


def _lbfgs(theta0, logX, log_loss, counts, delta):
    m = logX.shape[1]
    bounds = [(None, None)] * m + [_EXPONENT_BOUNDS] * m + [(None, None)]
    # The objective is tiny (residuals of 1e-3 in log loss), so scale it by 1/delta**2 to O(1) and
    # tighten the tolerances: with scipy's defaults L-BFGS stops long before the parameters settle,
    # which Besiroglu et al. (arXiv 2404.10102) found had happened to the published Chinchilla fit.
    scale = 1.0 / delta**2
    res = minimize(lambda t: tuple(v * scale for v in _objective(t, logX, log_loss, counts, delta)),
                   theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 500, "ftol": 1e-13, "gtol": 1e-9})
    return res.x, res.fun / scale


def _fit(logX, log_loss, delta, n_bootstrap, seed):
    """Multi-start L-BFGS fit, then a bootstrap over runs. Returns Chinchilla-style params."""
    n, m = logX.shape
    # Centre log x: an exact reparameterisation (c = a - alpha * mean log x) that removes the strong
    # correlation between a coefficient and its exponent, so L-BFGS needs far fewer steps.
    mu = logX.mean(axis=0)  # (m,)
    Xc = logX - mu  # (n, m)
    ones = np.ones(n)
    # 1. Chinchilla's grid, evaluated in one vectorised pass. Hoffmann et al. ran L-BFGS from every
    #    grid point; we run it from the best few only, which finds the same optimum far faster.
    grid = np.array(np.meshgrid(*[_GRID_COEF] * m, *[_GRID_EXPONENT] * m, _GRID_E, indexing="ij"))
    grid = grid.reshape(2 * m + 1, -1).T  # (G, 2m + 1) as (a.., alpha.., e)
    grid[:, :m] -= grid[:, m:2 * m] * mu  # into centred coordinates
    terms = np.concatenate([grid[:, None, :m] - Xc[None] * grid[:, None, m:2 * m],
                            np.broadcast_to(grid[:, None, -1:], (len(grid), n, 1))], axis=2)  # (G, n, m + 1)
    r = np.abs(logsumexp(terms, axis=2) - log_loss)  # (G, n)
    grid_obj = np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta)).sum(axis=1)  # (G,)
    # 2. L-BFGS from the best starts; keep the lowest objective.
    fits = [_lbfgs(grid[i], Xc, log_loss, ones, delta) for i in np.argsort(grid_obj)[:_N_STARTS]]
    theta, obj = min(fits, key=lambda f: f[1])

    def natural(t):  # centred theta -> (E, coefficients.., exponents..)
        return np.concatenate([[np.exp(t[-1])], np.exp(t[:m] + t[m:2 * m] * mu), t[m:2 * m]])

    # 3. Bootstrap: a resample is a vector of counts (how often each run was drawn), which weights
    #    the same objective. Each refit starts from the full-data optimum, so it takes few steps.
    rng = np.random.default_rng(seed)
    boot = np.empty((n_bootstrap, 2 * m + 1))
    for j in range(n_bootstrap):
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        # A resample with fewer distinct runs than parameters + 1 cannot determine the law: redraw.
        while np.count_nonzero(counts) < 2 * m + 2:
            counts = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        boot[j] = natural(_lbfgs(theta, Xc, log_loss, counts, delta)[0])
    std = boot.std(axis=0, ddof=1) if n_bootstrap > 1 else np.full(2 * m + 1, np.nan)
    return natural(theta), std, boot, obj


def _check_fit_options(where, n_bootstrap, huber_delta, seed):
    n_bootstrap = check_number("n_bootstrap", n_bootstrap, where=where, low=0, integer=True)
    # The objective is scaled by 1/delta**2: below 1e-8 that scale overflows (1e-200**2 is 0.0).
    huber_delta = check_number("huber_delta", huber_delta, where=where, low=1e-8)
    seed = check_seed(seed, where=where)
    return n_bootstrap, float(huber_delta), seed


def _pm(value: float, std: float, paren: bool = False) -> str:
    """``2.66 ± 0.01`` (bracketed for an exponent), or just ``2.66`` without a bootstrap."""
    if np.isnan(std):
        return f"{value:.3g}"
    return f"({value:.3g} ± {std:.2g})" if paren else f"{value:.3g} ± {std:.2g}"


# ---------------------------------------------------------------- one variable
@dataclass(frozen=True)
class PowerLawFit:
    """``L(x) = E + A * x**-alpha`` fitted to runs; ``*_std`` are bootstrap standard deviations.

    Attributes:
        E, A, alpha (float): the law. ``E`` is the irreducible loss (x -> infinity).
        E_std, A_std, alpha_std (float): bootstrap std of each; NaN without a bootstrap.
        n_points (int): number of runs fitted. variable (str): ``"N"`` or ``"D"`` (a label).
        bootstrap (np.ndarray): (n_bootstrap, 3), the refitted (E, A, alpha).
        loss (float): the final Huber objective (sum over runs, unscaled).

    With a handful of runs ``A`` is poorly pinned down (a larger ``alpha`` with a larger ``A``
    fits almost as well), so ``A_std`` can be huge while ``E_std`` and ``alpha_std`` stay useful.
    """

    E: float
    A: float
    alpha: float
    E_std: float = float("nan")
    A_std: float = float("nan")
    alpha_std: float = float("nan")
    n_points: int = 0
    variable: str = "N"
    bootstrap: np.ndarray = field(default_factory=lambda: np.empty((0, 3)), repr=False, compare=False)
    loss: float = float("nan")

    def predict(self, x):
        """The law at ``x`` (scalar -> float, array -> ndarray of the same shape)."""
        x = _positive("x", x, "PowerLawFit.predict")
        return _scalar_or_array(self.E + self.A * x ** -self.alpha)

    def __str__(self) -> str:
        v = self.variable
        return (f"L({v}) = {_pm(self.E, self.E_std)} + {_pm(self.A, self.A_std)} · "
                f"{v}^-{_pm(self.alpha, self.alpha_std, paren=True)}")


def fit_power_law(x, loss, *, variable: str = "N", n_bootstrap: int = 200, huber_delta: float = 1e-3,
                  seed: int = 0) -> PowerLawFit:
    """Fit ``L(x) = E + A * x**-alpha`` to runs, as Chinchilla fitted its law (see the module).

    Args:
        x (array-like): shape (n,), the model sizes N (or token counts D) of the runs, all > 0.
        loss (array-like): shape (n,), the final loss of each run, all finite and > 0.
        variable (str): ``"N"`` or ``"D"``, only the label used when printing. Default ``"N"``.
        n_bootstrap (int): bootstrap resamples for the error bars; 0 disables them. Default 200.
        huber_delta (float): Huber threshold on the log-loss residual. Default 1e-3 (Chinchilla).
        seed (int): seed of the bootstrap resampling. Default 0.

    Returns:
        PowerLawFit: the law, its bootstrap error bars and the refits.

    Example:
        >>> x = np.geomspace(1e3, 1e6, 8)
        >>> fit = fit_power_law(x, 2.0 + 50.0 * x**-0.5, n_bootstrap=0)
        >>> round(fit.E, 3), round(fit.A, 1), round(fit.alpha, 3)
        (2.0, 50.0, 0.5)

    References:
        Hoffmann et al., arXiv 2203.15556, Appendix D.2.
    """
    where = "fit_power_law"
    check_choice("variable", variable, ("N", "D"), where=where)
    n_bootstrap, huber_delta, seed = _check_fit_options(where, n_bootstrap, huber_delta, seed)
    x, loss = _runs(where, 3, "E, A, alpha", x=x, loss=loss)
    _distinct(where, 3, x=x)
    params, std, boot, obj = _fit(np.log(x)[:, None], np.log(loss), huber_delta, n_bootstrap, seed)
    _warn_on_bound(where, alpha=params[2])
    return PowerLawFit(*map(float, params), *map(float, std), n_points=len(x), variable=variable,
                       bootstrap=boot, loss=obj)


# ---------------------------------------------------------------- model size and data together
@dataclass(frozen=True)
class ChinchillaFit:
    """``L(N, D) = E + A / N**alpha + B / D**beta``; ``*_std`` are bootstrap standard deviations.

    Attributes:
        E, A, B, alpha, beta (float): the law; ``E`` is the irreducible loss.
        E_std, A_std, B_std, alpha_std, beta_std (float): bootstrap stds; NaN without a bootstrap.
        n_points (int): number of runs fitted (0 for a published law).
        bootstrap (np.ndarray): (n_bootstrap, 5), the refitted (E, A, B, alpha, beta).
        loss (float): the final Huber objective (sum over runs, unscaled).
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    E_std: float = float("nan")
    A_std: float = float("nan")
    B_std: float = float("nan")
    alpha_std: float = float("nan")
    beta_std: float = float("nan")
    n_points: int = 0
    bootstrap: np.ndarray = field(default_factory=lambda: np.empty((0, 5)), repr=False, compare=False)
    loss: float = float("nan")

    def __post_init__(self):
        # A negative coefficient makes compute_optimal raise a negative number to a fractional power.
        validate_params(_CHINCHILLA_PARAMS, self.__dict__, where="ChinchillaFit")

    def predict(self, N, D):
        """The law at model size ``N`` and token count ``D`` (numpy broadcasting)."""
        N = _positive("N", N, "ChinchillaFit.predict")
        D = _positive("D", D, "ChinchillaFit.predict")
        return _scalar_or_array(self.E + self.A * N ** -self.alpha + self.B * D ** -self.beta)

    @property
    def a(self) -> float:
        """Exponent of ``N_opt ∝ C**a``: ``beta / (alpha + beta)``."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of ``D_opt ∝ C**b``: ``alpha / (alpha + beta)``."""
        return self.alpha / (self.alpha + self.beta)

    def compute_optimal(self, C):
        """The (N_opt, D_opt) minimising the law on the budget ``C = 6 N D`` FLOPs.

        Setting the derivative of ``L(N, C / (6 N))`` to 0 gives (Hoffmann et al., eq. 4)
        ``N_opt = G (C/6)**a``, ``D_opt = (C/6)**b / G`` with ``G = (alpha A / (beta B))**(1/(alpha+beta))``.

        Args:
            C (float or array-like): compute budgets in FLOPs, > 0.

        Returns:
            tuple: ``(N_opt, D_opt)``, floats for a scalar ``C``, arrays of its shape otherwise.

        Example:
            >>> N, D = CHINCHILLA.compute_optimal(1e21)
            >>> round(6 * N * D / 1e21, 12)
            1.0
        """
        C = _positive("C", C, "ChinchillaFit.compute_optimal", " (a budget in FLOPs)")
        G = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        return _scalar_or_array(G * (C / 6) ** self.a), _scalar_or_array((C / 6) ** self.b / G)

    def tokens_per_parameter(self, C):
        """``D_opt / N_opt`` at budget ``C``.

        Compare with the rule of thumb ``CHINCHILLA_TOKENS_PER_PARAM = 20``: the published
        Approach 3 law itself gives about 93 at Chinchilla's budget (see the constants below).
        """
        N, D = self.compute_optimal(C)
        return D / N

    def __str__(self) -> str:
        n_term = f"{_pm(self.A, self.A_std)} · N^-{_pm(self.alpha, self.alpha_std, paren=True)}"
        d_term = f"{_pm(self.B, self.B_std)} · D^-{_pm(self.beta, self.beta_std, paren=True)}"
        return f"L(N, D) = {_pm(self.E, self.E_std)} + {n_term} + {d_term}"


_CHINCHILLA_PARAMS = {"E": Interval(float, 0, None), "A": Interval(float, 0, None, closed="neither"),
                      "B": Interval(float, 0, None, closed="neither"), "alpha": Interval(float, *_EXPONENT_BOUNDS),
                      "beta": Interval(float, *_EXPONENT_BOUNDS)}


def fit_chinchilla(N, D, loss, *, n_bootstrap: int = 200, huber_delta: float = 1e-3,
                   seed: int = 0) -> ChinchillaFit:
    """Fit ``L(N, D) = E + A / N**alpha + B / D**beta`` jointly (Chinchilla's Approach 3).

    Args:
        N (array-like): shape (n,), model size (parameters) of each run, > 0.
        D (array-like): shape (n,), training tokens of each run, > 0.
        loss (array-like): shape (n,), final loss of each run, finite and > 0.
        n_bootstrap (int): bootstrap resamples over runs; 0 disables them. Default 200.
        huber_delta (float): Huber threshold on the log-loss residual. Default 1e-3.
        seed (int): seed of the bootstrap. Default 0.

    Returns:
        ChinchillaFit: the law, its error bars and the refits.

    Example:
        >>> N, D = [a.ravel() for a in np.meshgrid(np.geomspace(1e6, 1e8, 4), np.geomspace(1e8, 1e10, 4))]
        >>> fit = fit_chinchilla(N, D, CHINCHILLA.predict(N, D), n_bootstrap=0)
        >>> round(fit.E, 2), round(fit.alpha, 2), round(fit.beta, 2)
        (1.69, 0.34, 0.28)

    References:
        Hoffmann et al., arXiv 2203.15556, Sec. 3.3 and Appendix D.2.
    """
    where = "fit_chinchilla"
    n_bootstrap, huber_delta, seed = _check_fit_options(where, n_bootstrap, huber_delta, seed)
    N, D, loss = _runs(where, 5, "E, A, B, alpha, beta", N=N, D=D, loss=loss)
    _distinct(where, 2, N=N, D=D)
    params, std, boot, obj = _fit(np.log(np.stack([N, D], axis=1)), np.log(loss), huber_delta, n_bootstrap, seed)
    _warn_on_bound(where, alpha=params[3], beta=params[4])
    return ChinchillaFit(*map(float, params), *map(float, std), n_points=len(N), bootstrap=boot, loss=obj)


def flops(N, D):
    """Training compute ``C = 6 N D`` FLOPs (2 per parameter per token forward, 4 backward).

    Example:
        >>> flops(70e9, 1.4e12)  # Chinchilla itself
        5.88e+23
    """
    N, D = _positive("N", N, "flops", " (a model size)"), _positive("D", D, "flops", " (a number of tokens)")
    return _scalar_or_array(6 * N * D)


# ---------------------------------------------------------------- published laws
@dataclass(frozen=True)
class KaplanLaws:
    """Kaplan et al.'s single-variable laws (arXiv 2001.08361, eqs. 1.1-1.3; WebText2, nats/token).

    ``N`` counts non-embedding parameters. The constants ``N_c``, ``D_c``, ``C_c_min`` depend on
    the tokenizer and data; the exponents are what transfers.
    """

    alpha_N: float = 0.076
    N_c: float = 8.8e13  # non-embedding parameters
    alpha_D: float = 0.095
    D_c: float = 5.4e13  # tokens
    alpha_C_min: float = 0.050
    C_c_min: float = 3.1e8  # PF-days

    def loss_N(self, N):
        """``(N_c / N)**alpha_N``: converged loss of a model with N parameters, unlimited data."""
        return _scalar_or_array((self.N_c / _positive("N", N, "KaplanLaws.loss_N")) ** self.alpha_N)

    def loss_D(self, D):
        """``(D_c / D)**alpha_D``: loss of a large model trained on D tokens with early stopping."""
        return _scalar_or_array((self.D_c / _positive("D", D, "KaplanLaws.loss_D")) ** self.alpha_D)

    def loss_C(self, C_min):
        """``(C_c_min / C_min)**alpha_C_min``: loss at compute-efficient budget C_min in PF-days."""
        return _scalar_or_array((self.C_c_min / _positive("C_min", C_min, "KaplanLaws.loss_C")) ** self.alpha_C_min)


KAPLAN = KaplanLaws()
# Hoffmann et al. 2022, Approach 3 (eq. 10; MassiveText, nats/token). Its compute optimum at
# 5.76e23 FLOPs is N = 32B, D = 3.0T (93 tokens per parameter), not Chinchilla's 70B / 1.4T:
# Besiroglu et al. (arXiv 2404.10102) trace the mismatch to an unconverged fit and rounding.
CHINCHILLA = ChinchillaFit(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
# The rule of thumb (Approaches 1 and 2): Chinchilla itself, 70B parameters on 1.4T tokens.
CHINCHILLA_TOKENS_PER_PARAM = 20
