"""Audit cases of lesson 11 (scaling laws): exercises 11.1-11.4."""

# ------------------------------------------------------------------------------------ 11.1 fit_saturating_power_law
_c("11.1", "wrong", "pure power law (E = 0)", """
    slope, intercept = np.polyfit(np.log(x), np.log(loss), 1)
    return 0.0, float(math.exp(intercept)), float(-slope)
""")
_c("11.1", "wrong", "floor guessed as 0.99 * min(loss)", """
    x, loss = np.asarray(x, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    E = 0.99 * loss.min()
    slope, intercept = np.polyfit(np.log(x), np.log(loss - E), 1)
    return float(E), float(math.exp(intercept)), float(-slope)
""")
_c("11.1", "wrong", "bounded search over (0, min) as if the residual were a bowl", """
    x, loss = np.asarray(x, dtype=np.float64), np.asarray(loss, dtype=np.float64)

    def sse(E):
        slope, intercept = np.polyfit(np.log(x), np.log(loss - E), 1)
        r = np.log(loss - E) - (intercept + slope * np.log(x))
        return float(r @ r)

    E = optimize.minimize_scalar(sse, bounds=(0.0, loss.min() * (1 - 1e-9)), method="bounded").x
    slope, intercept = np.polyfit(np.log(x), np.log(loss - E), 1)
    return float(E), float(math.exp(intercept)), float(-slope)
""")
_FIT_GRID = '''
    x, loss = np.asarray(x, dtype=np.float64), np.asarray(loss, dtype=np.float64)

    def line(E):
        slope, intercept = np.polyfit(np.log(x), np.log(loss - E), 1)
        r = np.log(loss - E) - (intercept + slope * np.log(x))
        return slope, intercept, float(r @ r)

    grid = loss.min() - loss.min() * np.geomspace(1e-12, 1.0, 4000)
    E = grid[int(np.argmin([line(e)[2] for e in grid]))]
    slope, intercept, _ = line(E)
'''
_c("11.1", "wrong", "exponent returned with its sign (the slope)", _j(_FIT_GRID, "return float(E), float(math.exp(intercept)), float(slope)"))
_c("11.1", "wrong", "A as 10 ** intercept of a natural-log fit", _j(_FIT_GRID, "return float(E), float(10 ** intercept), float(-slope)"))
_c("11.1", "wrong", "returns (E, alpha, A)", _j(_FIT_GRID, "return float(E), float(-slope), float(math.exp(intercept))"))
_c("11.1", "full", "fine grid of floors, no refinement", _j(_FIT_GRID, "return float(E), float(math.exp(intercept)), float(-slope)"))
_c("11.1", "full", "grid start, then least squares on log L", _j(_FIT_GRID, """
    def residual(theta):
        E_, log_A, alpha_ = theta
        return np.log(E_ + np.exp(log_A) * x ** -alpha_) - np.log(loss)

    fit = optimize.least_squares(residual, [E, intercept, -slope], xtol=1e-15, ftol=1e-15, gtol=1e-15)
    E_, log_A, alpha_ = fit.x
    return float(E_), float(math.exp(log_A)), float(alpha_)
"""))

# ------------------------------------------------------------------------------------ 11.2 compute_optimal
_c("11.2", "wrong", "C instead of C / 6 in N_opt", """
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    N = G * C ** (beta / (alpha + beta))
    return float(N), float(C / (6 * N))
""")
_c("11.2", "wrong", "exponents swapped", """
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    N = G * (C / 6) ** (alpha / (alpha + beta))
    return float(N), float(C / (6 * N))
""")
_c("11.2", "wrong", "G inverted", """
    G = (beta * B / (alpha * A)) ** (1 / (alpha + beta))
    N = G * (C / 6) ** (beta / (alpha + beta))
    return float(N), float(C / (6 * N))
""")
_c("11.2", "wrong", "D = C / N (the 6 forgotten)", """
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    N = G * (C / 6) ** (beta / (alpha + beta))
    return float(N), float(C / N)
""")
_c("11.2", "wrong", "returns (D, N)", """
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    N = G * (C / 6) ** (beta / (alpha + beta))
    return float(C / (6 * N)), float(N)
""")
_c("11.2", "full", "numerical minimum over log N", """
    def loss(log_N):
        N = math.exp(log_N)
        return A * N ** -alpha + B * (C / (6 * N)) ** -beta

    log_N = optimize.minimize_scalar(loss, bounds=(0.0, math.log(C)), method="bounded", options={"xatol": 1e-10}).x
    N = math.exp(log_N)
    return N, C / (6 * N)
""")
_c("11.2", "full", "both closed forms", """
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    return G * (C / 6) ** (beta / (alpha + beta)), (C / 6) ** (alpha / (alpha + beta)) / G
""")

# ------------------------------------------------------------------------------------ 11.3 tokens_per_parameter
_c("11.3", "wrong", "always 20", "return 20.0")
_c("11.3", "wrong", "N_opt / D_opt", """
    a, b = 0.34, 0.28
    G = (a * 406.4 / (b * 410.7)) ** (1 / (a + b))
    N, D = G * (C / 6) ** (b / (a + b)), (C / 6) ** (a / (a + b)) / G
    return float(N / D)
""")
_c("11.3", "wrong", "alpha and beta swapped", """
    a, b = 0.28, 0.34
    G = (a * 406.4 / (b * 410.7)) ** (1 / (a + b))
    N, D = G * (C / 6) ** (b / (a + b)), (C / 6) ** (a / (a + b)) / G
    return float(D / N)
""")
_c("11.3", "wrong", "C instead of C / 6", """
    E, A, B, alpha, beta = 1.69, 406.4, 410.7, 0.34, 0.28
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    return float(C ** ((alpha - beta) / (alpha + beta)) / G**2)
""")
_c("11.3", "wrong", "exponents rounded to 0.5 each", """
    G = (406.4 / 410.7) ** (1 / 1.0)
    N, D = G * (C / 6) ** 0.5, (C / 6) ** 0.5 / G
    return float(D / N)
""")
_c("11.3", "full", "the ratio's own closed form", """
    a, b = 0.34, 0.28
    G = (a * 406.4 / (b * 410.7)) ** (1 / (a + b))
    return (C / 6) ** ((a - b) / (a + b)) / G**2
""")
_c("11.3", "full", "brute force over N", """
    N = np.logspace(0, math.log10(C / 6), 400_001)
    L = 406.4 * N ** -0.34 + 410.7 * (C / (6 * N)) ** -0.28
    N_opt = float(N[int(np.argmin(L))])
    return C / 6 / N_opt**2
""")

# ------------------------------------------------------------------------------------ 11.4 predict_next_loss
_c("11.4", "wrong", "the floor fitted again, not used", """
    N, loss = np.asarray(N, dtype=np.float64), np.asarray(loss, dtype=np.float64)

    def law(x, E, log_A, alpha):
        return E + np.exp(log_A) * x ** -alpha

    (E, log_A, alpha), _ = optimize.curve_fit(law, N, loss, p0=(0.9 * loss.min(), 0.0, 0.5), maxfev=20000)
    return float(law(N_next, E, log_A, alpha))
""")
_c("11.4", "wrong", "pure power law on the loss", """
    slope, intercept = np.polyfit(np.log(N), np.log(loss), 1)
    return float(math.exp(intercept + slope * math.log(N_next)))
""")
_c("11.4", "wrong", "no change: the last loss", "return float(np.asarray(loss)[-1])")
_c("11.4", "wrong", "returns the excess, not the loss", """
    slope, intercept = np.polyfit(np.log(N), np.log(np.asarray(loss) - floor), 1)
    return float(math.exp(intercept + slope * math.log(N_next)))
""")
_c("11.4", "wrong", "loss linear in log N", """
    slope, intercept = np.polyfit(np.log(N), np.asarray(loss), 1)
    return float(intercept + slope * math.log(N_next))
""")
_c("11.4", "wrong", "log10 fit, natural exp", """
    slope, intercept = np.polyfit(np.log10(N), np.log10(np.asarray(loss) - floor), 1)
    return float(floor + math.exp(intercept + slope * math.log10(N_next)))
""")
_c("11.4", "full", "log10 throughout", """
    slope, intercept = np.polyfit(np.log10(N), np.log10(np.asarray(loss) - floor), 1)
    return float(floor + 10 ** (intercept + slope * math.log10(N_next)))
""")
_c("11.4", "full", "least squares by lstsq", """
    X = np.stack([np.ones(len(N)), np.log(N)], axis=1)
    (c0, c1), *_ = np.linalg.lstsq(X, np.log(np.asarray(loss) - floor), rcond=None)
    return float(floor + math.exp(c0) * N_next ** c1)
""")
