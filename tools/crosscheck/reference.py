"""Independent reference implementations of every statistic stagegate reports.

Written against scipy and statsmodels (plain numpy where neither has the statistic, 50-digit
mpmath where statsmodels loses precision), from the published formulas: stagegate's Rust tests
(crates/stats/tests/reference/) and the CI cross-check (tools/crosscheck/crosscheck.py) compare
against these. Where the two implementations use different algorithms for the same quantity
(the exact Mann-Whitney distribution: integer generating polynomial here, probability recurrence
in Rust; the risk-ratio score interval: the score statistic in 50-digit arithmetic, checked
against statsmodels' at each bound, here, a cancellation-free double-precision form in Rust;
per-unit variances: covariance matrices and gradients here, linearised values
in Rust), an agreement is evidence for both.
"""
import math

import mpmath
import numpy as np
from scipy import stats
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
    score_test_proportions_2indep,
)

INF = float("inf")


def one_sided_level(conf):
    return 1 - 2 * (1 - conf)


# ---------------------------------------------------------------- single-sample intervals


def wilson(k, n, conf):
    if n == 0:
        return None
    lo, hi = proportion_confint(k, n, alpha=1 - conf, method="wilson")
    if k == 0:
        lo = 0.0
    if k == n:
        hi = 1.0
    return float(lo), float(hi), conf


def mean_t(n, mean, sd, conf):
    """Student t interval from a summary; None for n < 2 (no interval from one value) or no
    spread (identical values cannot show how uncertain their mean is)."""
    if n < 2 or not sd > 0:
        return None
    t = stats.t.isf((1 - conf) / 2, n - 1)
    half = t * sd / math.sqrt(n)
    return mean - half, mean + half, conf


def quantile_ranks(n, q, conf):
    """Distribution-free ranks (l, u) for the q quantile and their exact coverage.

    Equal tails from the binomial quantile function; when a rank is clamped at the sample's end,
    the other moves outwards (one rank at a time) just enough to reach `conf` if the widest
    interval can; otherwise the widest interval and its coverage.
    """
    b = stats.binom(n, q)
    a = 1 - conf

    def below(k):
        return 0.0 if k == 0 else float(b.cdf(k - 1))

    def cov(l, u):
        return below(u) - below(l)

    l = int(min(max(b.ppf(a / 2), 1), n))
    u = int(min(max(b.ppf(1 - a / 2) + 1, 1), n))
    tol = 1e-12
    if cov(l, u) < conf - tol:
        if cov(1, n) < conf - tol:
            l, u = 1, n
        elif u == n:
            while l > 1 and cov(l, n) < conf - tol:
                l -= 1
        elif l == 1:
            while u < n and cov(1, u) < conf - tol:
                u += 1
    return l, u, cov(l, u)


def quantile_interval(values, q, conf):
    x = np.sort(np.asarray(values, dtype=float))
    l, u, c = quantile_ranks(len(x), q, conf)
    return float(x[l - 1]), float(x[u - 1]), c


def ratio_of_sums(y, x, conf):
    """Delta-method interval for sum(y)/sum(x) (Cochran 1977, 6.3) via the covariance matrix,
    with a t quantile on n − 1 degrees of freedom; None for n < 2 or no spread."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    n = len(y)
    if n < 2 or x.sum() == 0 or _flat(y, x):
        return None
    r = y.sum() / x.sum()
    c = np.cov(np.vstack([y, x]), ddof=1)
    grad = np.array([1 / x.mean(), -y.mean() / x.mean() ** 2])
    se = math.sqrt(max(grad @ c @ grad, 0.0) / n)
    if not se > 0:
        return None
    t = stats.t.isf((1 - conf) / 2, n - 1)
    return r - t * se, r + t * se, conf


# ---------------------------------------------------------------- two-sample comparisons


def two_proportions(k1, n1, k2, n2, conf):
    """Reference (k1/n1) against pilot (k2/n2): difference, Newcombe interval, pooled z test."""
    lo, hi = confint_proportions_2indep(k2, n2, k1, n1, method="newcomb", compare="diff", alpha=1 - conf)
    if k1 + k2 in (0, n1 + n2):
        p = 1.0
    else:
        _, p = proportions_ztest([k2, k1], [n2, n1])
    return k2 / n2 - k1 / n1, float(lo), float(hi), float(p)


def _mn_score(x1, n1, x0, n0, theta):
    """Miettinen-Nurminen score statistic for p1/p0 = theta, in 50-digit arithmetic (mpmath):
    (p̂1 − θp̂0) / √V with V from the maximum-likelihood rates restricted to p1 = θp0 and the
    N/(N−1) correction (Miettinen & Nurminen 1985, eq. 9; Farrington & Manning 1990)."""
    x1, n1, x0, n0 = (mpmath.mpf(v) for v in (x1, n1, x0, n0))
    N = n0 + n1
    a = N * theta
    b = -(n1 * theta + x1 + n0 + x0 * theta)
    c = x1 + x0
    p0 = 0 if c == 0 else (-b - mpmath.sqrt(b * b - 4 * a * c)) / (2 * a)
    p1 = theta * p0
    var = (p1 * (1 - p1) / n1 + theta**2 * p0 * (1 - p0) / n0) * N / (N - 1)
    num = x1 / n1 - theta * x0 / n0
    if num == 0:
        return mpmath.mpf(0)
    if var <= 0:
        return mpmath.inf * mpmath.sign(num)
    return num / mpmath.sqrt(var)


def risk_ratio(k1, n1, k2, n2, conf):
    """Relative effect p2/p1 − 1 (pilot k2/n2 over reference k1/n1) with the Miettinen-Nurminen
    score interval, solved by bisection on ln θ in 50-digit arithmetic.

    statsmodels' closed-form Koopman roots break at all-success tables, and its score statistic
    loses half its digits near a double root (θ ≈ 1 with every trial a success), so the bounds
    are computed here in high precision; at each bound statsmodels' own score statistic is
    checked to be ±z (to 1e-4), so both implement the same definition.
    """
    mpmath.mp.dps = 50
    z = mpmath.mpf(stats.norm.isf((1 - conf) / 2))

    def root(target):
        lo, hi = mpmath.mpf(-60), mpmath.mpf(60)
        for _ in range(220):
            mid = (lo + hi) / 2
            if _mn_score(k2, n2, k1, n1, mpmath.exp(mid)) > target:
                lo = mid
            else:
                hi = mid
        theta = mpmath.exp((lo + hi) / 2)
        sm = score_test_proportions_2indep(
            k2, n2, k1, n1, value=float(theta), compare="ratio", correction=True, return_results=True
        ).statistic
        assert abs(sm - float(target)) < 1e-4 * max(1.0, abs(float(target))), (k1, n1, k2, n2, sm, target)
        return theta

    low = mpmath.mpf(0) if k2 == 0 else root(z)
    high = mpmath.inf if k1 == 0 else root(-z)
    effect = None if k1 == 0 else (k2 / n2) / (k1 / n1) - 1
    _, _, _, p = two_proportions(k1, n1, k2, n2, conf)
    return effect, float(low - 1), float(high - 1), p


def welch(ref, pil, conf):
    r = stats.ttest_ind(pil, ref, equal_var=False)
    ci = r.confidence_interval(conf)
    return float(np.mean(pil) - np.mean(ref)), float(ci.low), float(ci.high), float(r.pvalue), float(r.df)


def ratio_of_means(ref, pil, conf):
    """q − 1 for q = mean(pilot)/mean(ref), delta-method se, t on Welch's df; needs a positive
    reference mean and some spread."""
    ref, pil = np.asarray(ref, float), np.asarray(pil, float)
    mr, mp = ref.mean(), pil.mean()
    if not mr > 0:
        return None
    w = stats.ttest_ind(pil, ref, equal_var=False)
    q = mp / mr
    if mp == 0:
        se = math.sqrt(pil.var(ddof=1) / (len(pil) * mr**2))
    else:
        se = abs(q) * math.sqrt(pil.var(ddof=1) / (len(pil) * mp**2) + ref.var(ddof=1) / (len(ref) * mr**2))
    if not se > 0:
        return None
    t = stats.t.isf((1 - conf) / 2, w.df)
    return q - 1, q - 1 - t * se, q - 1 + t * se, float(w.pvalue)


def mw_null_cdf(n1, n2):
    """P(U <= u) from the exact integer generating polynomial (Gaussian binomial coefficient)."""
    # counts[m][n] as polynomials would be heavy; use the product formula with exact integers.
    N = n1 + n2
    poly = [1]
    for i in range(1, n1 + 1):
        # multiply by (1 - q^(n2+i)) then divide by (1 - q^i): exact in integers.
        a = n2 + i
        newp = poly + [0] * a
        for k in range(len(poly)):
            newp[k + a] -= poly[k]
        # divide by (1 - q^i)
        out = newp[:]
        for k in range(i, len(out)):
            out[k] += out[k - i]
        while out and out[-1] == 0:
            out.pop()
        poly = out
    total = math.comb(N, n1)
    assert sum(poly) == total
    acc, cdf = 0, []
    for c in poly:
        acc += c
        cdf.append(acc / total)
    return cdf


def moses(ref, pil, conf):
    """Moses' interval: (low, high, coverage, exact) with R's rule for the exact distribution."""
    x, y = np.sort(np.asarray(ref, float)), np.sort(np.asarray(pil, float))
    n1, n2 = len(x), len(y)
    m = n1 * n2
    d = np.sort(np.subtract.outer(y, x).ravel())
    widest = 1 - 2 / math.comb(n1 + n2, n1)
    if widest < conf - 1e-12:
        return float(d[0]), float(d[-1]), max(widest, 0.0), True
    a = 1 - conf
    # Small samples: the exact distribution, ties or not (the normal cut under-covers there).
    if n1 < 50 and n2 < 50:
        cdf = mw_null_cdf(n1, n2)
        qu = next(u for u, p in enumerate(cdf) if p >= a / 2)
        qu = max(qu, 1)
        c = min(qu - 1, (m - 1) // 2)
        return float(d[c]), float(d[m - 1 - c]), 1 - 2 * cdf[c], True
    z = stats.norm.isf(a / 2)
    c = math.floor(n1 * n2 / 2 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12))
    if c < 0:
        return float(d[0]), float(d[-1]), max(widest, 0.0), True
    c = min(c, (m - 1) // 2)
    return float(d[c]), float(d[m - 1 - c]), conf, False


def mann_whitney(ref, pil, conf):
    """None when every value is the same (no spread, no interval)."""
    if len(set(map(float, ref)) | set(map(float, pil))) == 1 and len(ref) + len(pil) > 1:
        return None
    res = stats.mannwhitneyu(pil, ref, alternative="two-sided", method="asymptotic", use_continuity=True)
    hl = float(np.median(np.subtract.outer(np.asarray(pil, float), np.asarray(ref, float))))
    lo, hi, cov, exact = moses(ref, pil, conf)
    ties = len(np.unique(np.concatenate([np.asarray(ref, float), np.asarray(pil, float)]))) < len(ref) + len(pil)
    if lo == hi and len(ref) + len(pil) > 2 and ties:
        return None  # ties collapse the interval onto one difference: no honest interval
    p = 1.0 if np.isnan(res.pvalue) else float(res.pvalue)
    return hl, lo, hi, cov, exact, float(res.statistic), p


def quantile_difference(ref, pil, q, relative, conf):
    """The q quantile's difference (or ratio − 1) between pilot and reference, from each side's
    order-statistic interval at √conf; coverage ≥ the product of the two exact coverages."""
    g = math.sqrt(conf)
    lr_, ur_, cr = quantile_interval(ref, q, g)
    lp_, up_, cp = quantile_interval(pil, q, g)
    qr, qp = float(np.quantile(ref, q)), float(np.quantile(pil, q))
    if relative:
        if not (qr > 0 and lr_ > 0):
            return None
        corners = [lp_ / lr_, lp_ / ur_, up_ / lr_, up_ / ur_]
        return qp / qr - 1, min(corners) - 1, max(corners) - 1, cr * cp
    return qp - qr, lp_ - ur_, up_ - lr_, cr * cp


def srm(observed, shares):
    exp = np.array(shares, float) / np.sum(shares) * np.sum(observed)
    c = stats.chisquare(observed, exp)
    return float(c.statistic), float(c.pvalue)


# ---------------------------------------------------------------- per-unit comparisons


def _flat(Y, N):
    """Whether every unit's ratio equals the pooled one exactly (then the delta-method variance
    is 0; the quadratic form would leave rounding residue instead)."""
    return bool(np.all(Y * N.sum() == N * Y.sum()))


def _ratio_var(Y, N):
    """R = ΣY/ΣN over K units and Var(R) by the delta method from the covariance of (Y, N)."""
    K = len(Y)
    mu = np.array([Y.mean(), N.mean()])
    g = np.array([1 / mu[1], -mu[0] / mu[1] ** 2])
    S = np.cov(np.vstack([Y, N]), ddof=1)
    return mu[0] / mu[1], g, S, K


def per_unit_independent(ref, pil, relative, conf, cuped=False):
    """ref, pil: lists of (y, n, y_pre, n_pre) per unit. Returns effect, low, high, p, extra."""
    arms = []
    for units in (ref, pil):
        A = np.asarray(units, float)
        Y, N, Yc, Nc = A[:, 0], A[:, 1], A[:, 2], A[:, 3]
        K = len(A)
        R, g, S, _ = _ratio_var(Y, N)
        V = 0.0 if _flat(Y, N) else g @ S @ g / K
        arm = {"R": R, "V": V, "K": K}
        if cuped and Nc.sum() == 0:
            arm.update(Rc=float("nan"), Vc=0.0)
        elif cuped:
            Rc = Yc.sum() / Nc.sum()
            gc = np.array([1 / Nc.mean(), -Yc.mean() / Nc.mean() ** 2])
            S4 = np.cov(np.vstack([Y, N, Yc, Nc]), ddof=1)
            # A covariate proportional to its counts in every unit (e.g. all successes) has no
            # variance; the quadratic form would leave rounding residue instead of 0.
            flat = bool(np.all(Yc * Nc.sum() == Nc * Yc.sum()))
            arm.update(
                Rc=Rc,
                Vc=0.0 if flat else gc @ S4[2:, 2:] @ gc / K,
                C=g @ S4[:2, 2:] @ gc / K,
                sy=Yc.sum(),
                sn=Nc.sum(),
            )
        arms.append(arm)
    r, p_ = arms

    def effect(Rr, Rp, Vr, Vp):
        """Effect, variance, Welch–Satterthwaite df from the two arms' components."""
        if relative:
            if not Rr > 0:
                raise ValueError("a relative change needs a positive reference")
            q = Rp / Rr
            a, b = Vp / Rr**2, q * q * Vr / Rr**2
            e = q - 1
        else:
            a, b, e = Vp, Vr, Rp - Rr
        df = (a + b) ** 2 / (a * a / (p_["K"] - 1) + b * b / (r["K"] - 1)) if a + b > 0 else float("nan")
        return e, a + b, df

    raw_e, raw_v, raw_df = effect(r["R"], p_["R"], r["V"], p_["V"])
    extra = {"reference_units": r["K"], "pilot_units": p_["K"], "sides": (p_["R"], r["R"])}
    e, v, df = raw_e, raw_v, raw_df
    # CUPED needs events in the covariate period on both arms and some covariate variance;
    # without them the comparison is the unadjusted one.
    if cuped and not (all(np.isfinite(a["Rc"]) for a in arms) and r["Vc"] + p_["Vc"] > 0
                      and min(r["K"], p_["K"]) >= 10):
        cuped = False  # CUPED needs 10 units an arm, covariate events on both, and variation
    if cuped:
        theta = (r["C"] + p_["C"]) / (r["Vc"] + p_["Vc"])
        pooled = (r["sy"] + p_["sy"]) / (r["sn"] + p_["sn"])
        adj = []
        for a in arms:
            adj.append((a["R"] - theta * (a["Rc"] - pooled), a["V"] - 2 * theta * a["C"] + theta**2 * a["Vc"]))
        e, v, df = effect(adj[0][0], adj[1][0], adj[0][1], adj[1][1])
        df = max(df - 1, 1.0)  # one degree of freedom for theta
        # No variance to reduce (every unit alike): the reduction is 0 by convention.
        extra.update(theta=theta, variance_reduction=1 - v / raw_v if raw_v > 0 else 0.0, unadjusted_effect=raw_e)
    se = math.sqrt(v)
    if not se > 0:
        raise ValueError("no variation between units: no interval")
    t = stats.t.isf((1 - conf) / 2, df)
    p = min(1.0, 2 * stats.t.sf(abs(e / se), df))
    return e, e - t * se, e + t * se, p, extra


def per_unit_paired(units, relative, conf):
    """units: list of (y_ref, n_ref, y_pilot, n_pilot) per unit (zeros where unseen)."""
    A = np.asarray(units, float)
    K = len(A)
    mu = A.mean(axis=0)
    S = np.cov(A.T, ddof=1)
    Rr, Rp = mu[0] / mu[1], mu[2] / mu[3]
    g_r = np.array([1 / mu[1], -mu[0] / mu[1] ** 2, 0, 0])
    g_p = np.array([0, 0, 1 / mu[3], -mu[2] / mu[3] ** 2])
    if relative:
        if not Rr > 0:
            raise ValueError("a relative change needs a positive reference")
        e = Rp / Rr - 1
        g = g_p / Rr - (Rp / Rr**2) * g_r
    else:
        e = Rp - Rr
        g = g_p - g_r
    flat = _flat(A[:, 0], A[:, 1]) and _flat(A[:, 2], A[:, 3])
    se = 0.0 if flat else math.sqrt(max(g @ S @ g / K, 0.0))
    if not se > 0:
        raise ValueError("no variation between units: no interval")
    t = stats.t.isf((1 - conf) / 2, K - 1)
    p = min(1.0, 2 * stats.t.sf(abs(e / se), K - 1))
    return e, e - t * se, e + t * se, p, {
        "reference_units": int((A[:, 1] > 0).sum()),
        "pilot_units": int((A[:, 3] > 0).sum()),
        "sides": (Rp, Rr),
    }
