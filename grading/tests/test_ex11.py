"""Grading tests of notebook 11 (scaling laws): exercises 11.1-11.4.

Oracles: closed forms on noise-free points of a known law (11.1, 11.4), a brute-force search
over N on the budget line (11.2), the closed form of Hoffmann et al.'s eq. 4 with the published
constants written here as literals (11.3), and, for 11.4, a real run of the next model size
trained by ``course_lib`` (calibrated on ranks 2, 3, 4, 6 -> 8 at 2**18 tokens: a straight line
through the excess loss misses by -6%; a free-floor fit by -34%, a pure power law on the loss
by -121%, a line of the loss in log N by -136%, "no change" by +39%).
"""

import math

import numpy as np
import pytest

import course_lib as cl
from course_lib.grading import reference

CHINCHILLA = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al. 2022, eq. 10


def _floats(value, n, what):
    assert isinstance(value, (tuple, list)) and len(value) == n, (
        f"{what} should return a tuple of {n} floats; got {value!r}")
    return [float(v) for v in value]


def brute_force(C, E, A, B, alpha, beta, points=200_001):
    """The N of lowest loss on the budget line D = C / (6N), over 12 decades of N around the optimum."""
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    guess = math.log10(G * (C / 6) ** (beta / (alpha + beta)))
    N = np.logspace(guess - 6, guess + 6, points)
    loss = E + A * N**-alpha + B * (C / (6 * N)) ** -beta
    return float(N[int(np.argmin(loss))])


# ----------------------------------------------------------------------------- 11.1 fit
@pytest.mark.exercise("11.1")
@pytest.mark.points(2)
@pytest.mark.parametrize("E, A, alpha, lo, hi, n", [(2.0, 50.0, 0.5, 1e3, 1e6, 8), (2.657, 30.0, 1.2, 192, 8256, 7)])
def test_fit_recovers_a_noise_free_law(exercise, E, A, alpha, lo, hi, n):
    """Search the floor E below min(loss): for a fixed E, log(L - E) is a straight line in log x.
    Return (E, A, alpha), with alpha > 0 (the exponent of x**-alpha) and A = exp(intercept)."""
    x = np.geomspace(lo, hi, n)
    got = _floats(exercise("11.1").fit_saturating_power_law(x, E + A * x**-alpha), 3, "fit_saturating_power_law")
    assert got[0] == pytest.approx(E, rel=1e-3), f"expected E = {E}; got {got[0]:.6g} (answer {got})"
    assert got[2] == pytest.approx(alpha, rel=1e-2), f"expected alpha = {alpha}; got {got[2]:.6g} (answer {got})"
    assert got[1] == pytest.approx(A, rel=5e-2), f"expected A = {A}; got {got[1]:.6g} (answer {got})"


# ----------------------------------------------------------------------------- 11.2 compute-optimal
@pytest.mark.exercise("11.2")
@pytest.mark.points(2)
@pytest.mark.parametrize("C, law", [(5.76e23, CHINCHILLA), (1e10, dict(E=2.66, A=30.0, B=2000.0, alpha=1.2, beta=0.6))])
def test_compute_optimal_matches_a_brute_force_search(exercise, C, law):
    """The budget is C = 6 N D: minimise along D = C / (6 N); N_opt grows like C**(beta / (alpha + beta))."""
    N, D = _floats(exercise("11.2").compute_optimal(C, **law), 2, "compute_optimal")
    assert 6 * N * D == pytest.approx(C, rel=1e-6), f"6 * N * D should equal the budget C = {C:.4g}; got {6 * N * D:.4g}"
    want = brute_force(C, **law)
    assert N == pytest.approx(want, rel=5e-3), f"C = {C:.3g}, law {law}: expected N_opt = {want:.5g}; got {N:.5g}"


# ----------------------------------------------------------------------------- 11.3 tokens per parameter
@pytest.mark.exercise("11.3")
@pytest.mark.points(2)
@pytest.mark.parametrize("C", [1e21, 5.76e23])
def test_tokens_per_parameter_under_the_published_law(exercise, C):
    """With E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28: D_opt / N_opt (about 93 at 5.76e23, not 20)."""
    a, b = CHINCHILLA["alpha"], CHINCHILLA["beta"]
    G = (a * CHINCHILLA["A"] / (b * CHINCHILLA["B"])) ** (1 / (a + b))
    want = (C / 6) ** ((a - b) / (a + b)) / G**2
    got = float(exercise("11.3").tokens_per_parameter(C))
    assert got == pytest.approx(want, rel=1e-3), f"at C = {C:.3g} FLOPs expected {want:.2f} tokens per parameter; got {got:.4g}"


# ----------------------------------------------------------------------------- 11.4 predict the next size
# The four runs handed to the student are the same for every student: the batch grader trains them once.
# The run to predict (rank 8) is the answer: never warmed, each grading process trains it when asked.
@reference(warm=[(2,), (3,), (4,), (6,)], key="ex11.course_run")
def course_run(rank, tokens=2**18):
    """One rank-d bigram on notebook 11's language, as the exercise's cell trains it: (N, loss, H).
    Each run of a sweep has its own seeds, so a run alone gives the same numbers as in the sweep."""
    s = cl.run_sweep([rank], [tokens], workers=1, use_cache=False, progress=False, device="cpu")
    return float(s.N[0]), float(s.loss[0]), float(s.entropy_rate)


def course_runs(ranks=(2, 3, 4, 6, 8)):
    """The runs of ``ranks`` as the sweep would give them: (N array, loss array, H)."""
    runs = [course_run(r) for r in ranks]
    return np.array([r[0] for r in runs]), np.array([r[1] for r in runs]), runs[0][2]


@pytest.mark.exercise("11.4")
@pytest.mark.points(1)
def test_prediction_is_exact_on_a_noise_free_excess(exercise):
    """Fit the excess loss L - floor (not the loss) with a line on log-log axes; return floor + the excess."""
    N = np.array([320.0, 448.0, 576.0, 832.0])
    floor = 2.657
    got = float(exercise("11.4").predict_next_loss(N, floor + 40.0 * N**-0.9, floor, 1088.0))
    want = floor + 40.0 * 1088.0**-0.9
    assert got == pytest.approx(want, rel=1e-9), f"excess 40 * N**-0.9 above {floor}: expected {want:.6f} at N=1088; got {got:.6f}"


@pytest.mark.exercise("11.4")
@pytest.mark.points(2)
def test_prediction_of_the_next_run(exercise):
    """Use the known floor: the excess loss of this toy is close to a power law, the loss itself is not."""
    N, loss, H = course_runs()
    got = float(exercise("11.4").predict_next_loss(N[:-1].copy(), loss[:-1].copy(), H, float(N[-1])))
    excess = loss[-1] - H
    assert got > H, f"a prediction below the floor H = {H:.4f} is impossible; got {got:.4f}"
    assert abs(got - loss[-1]) <= 0.25 * excess, (
        f"the run of size N = {N[-1]:.0f} measured {loss[-1]:.4f} (excess {excess:.4f}); you predicted {got:.4f} "
        f"(excess {got - H:.4f}, off by {(got - loss[-1]) / excess:+.0%} of the excess; allowed 25%)")
