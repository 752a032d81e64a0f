#!/usr/bin/env python3
"""Reference values for stagegate-stats, computed independently with scipy, statsmodels and numpy
(the implementations are in tools/crosscheck/reference.py).

Writes fixtures.json beside this file. Regenerate with:
    pip install scipy statsmodels numpy && python3 crates/stats/tests/reference/make_fixtures.py
Generated with scipy 1.17.1, statsmodels 0.15.0 and numpy 2.4.6.
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "tools" / "crosscheck"))
import reference as ref  # noqa: E402

rng = np.random.default_rng(20261122)
out = {
    "scipy": __import__("scipy").__version__,
    "statsmodels": __import__("statsmodels").__version__,
    "numpy": np.__version__,
}


def r(xs):
    return [round(float(x), 6) for x in xs]


def fin(x):
    """JSON has no infinity: unbounded is null."""
    return None if x is None or not math.isfinite(x) else float(x)


# Distributions at every size: n (degrees of freedom, trials) from 1 to 1e10.
DFS = [1, 1.5, 2, 3, 5, 10, 30, 100, 1e3, 1e4, 1e5, 1e6, 3e6, 1e7, 1.1e7, 1.5e7, 2e7, 1e8, 1e9, 1e10]
ALPHAS = [0.4, 0.25, 0.1, 0.05, 0.025, 0.005, 5e-4, 5e-6, 1e-9]
out["t_upper"] = [[df, a, float(stats.t.isf(a, df))] for df in DFS for a in ALPHAS]
out["t_sf"] = [[df, x, float(stats.t.sf(x, df))] for df in DFS for x in [0.01, 0.5, 1.0, 1.96, 2.5, 4.0, 8.0, 30.0]]
CHI_DFS = [1, 2, 3, 10, 100, 1e4, 1e6, 1e8, 1e10]
out["chi2_upper"] = [[df, a, float(stats.chi2.isf(a, df))] for df in CHI_DFS for a in [0.999, 0.9, 0.5, 0.05, 0.001, 1e-8]]
out["chi2_sf"] = [
    [df, x, float(stats.chi2.sf(x, df))]
    for df in CHI_DFS
    for x in [df * (1 + k / math.sqrt(max(df, 1))) for k in (-1.0, 0.0, 1.0, 3.0, 6.0)]
    if x > 0
]
out["normal_upper"] = [[a, float(stats.norm.isf(a))] for a in ALPHAS + [0.5, 0.6, 0.975, 1e-12, 1e-300]]
out["binomial_quantile"] = [
    [n, q, a, int(stats.binom.ppf(a, n, q))]
    for n in [1, 2, 5, 20, 100, 1000, 10**4, 10**5, 10**6, 10**7, 10**8, 10**9, 10**10]
    for q in [0.01, 0.5, 0.9, 0.95, 0.99, 0.999]
    for a in [0.0005, 0.025, 0.5, 0.975, 0.9995]
]

# Wilson score intervals, including 0 and n successes, n = 1 and n = 10^10.
out["wilson"] = []
for k, n, conf in [(0, 10, 0.95), (10, 10, 0.95), (1, 1, 0.95), (0, 1, 0.95), (741, 805, 0.95),
                   (92, 100, 0.9), (3, 40, 0.99), (50, 100, 0.95), (1, 1000000, 0.95),
                   (9_000_000_001, 10**10, 0.95), (0, 10**10, 0.95)]:
    lo, hi, _ = ref.wilson(k, n, conf)
    out["wilson"].append({"k": k, "n": n, "confidence": conf, "low": lo, "high": hi})

# Student t intervals for a mean, from values and from summaries at every size (a mean exactly
# at its threshold used to hang the "events still needed" search).
out["mean_t"] = []
for n, conf in [(2, 0.95), (5, 0.95), (30, 0.9), (1000, 0.99)]:
    x = r(rng.lognormal(1.0, 0.6, n))
    a = np.array(x)
    lo, hi = stats.t.interval(conf, n - 1, loc=a.mean(), scale=stats.sem(a))
    out["mean_t"].append({"values": x, "confidence": conf, "low": lo, "high": hi})
out["mean_t_summary"] = []
for n in [2, 20, 1000, 10**6, 3 * 10**6, 10**7, 2 * 10**7, 10**9, 10**10]:
    for conf in [0.9, 0.95, 0.99]:
        lo, hi, _ = ref.mean_t(n, 6.63, 1.7, conf)
        out["mean_t_summary"].append({"n": n, "mean": 6.63, "sd": 1.7, "confidence": conf, "low": lo, "high": hi})

# Order-statistic ranks for quantile intervals (1-based) and their exact coverage.
out["quantile_ranks"] = []
for n, q, conf in [(1, 0.5, 0.95), (5, 0.5, 0.95), (6, 0.5, 0.95), (10, 0.5, 0.95), (20, 0.95, 0.95),
                   (20, 0.99, 0.95), (59, 0.95, 0.95), (100, 0.95, 0.95), (298, 0.99, 0.95),
                   (299, 0.99, 0.95), (805, 0.95, 0.95), (10000, 0.99, 0.95), (50, 0.5, 0.9),
                   (40, 0.05, 0.95), (10**6, 0.999, 0.99)]:
    lo, hi, cov = ref.quantile_ranks(n, q, conf)
    out["quantile_ranks"].append({"n": n, "q": q, "confidence": conf, "l": lo, "u": hi, "coverage": cov})

# Two proportions: difference with Newcombe's interval, and the risk ratio's MN score interval
# (zero cells and all successes included).
out["two_proportions"] = []
out["risk_ratio"] = []
for k1, n1, k2, n2, conf in [(40, 1000, 25, 1000, 0.95), (0, 50, 3, 50, 0.95), (3, 50, 0, 50, 0.95),
                             (50, 50, 48, 50, 0.95), (50, 50, 50, 50, 0.95), (1, 1, 0, 1, 0.95),
                             (1, 1, 1, 1, 0.95), (520, 10000, 560, 10000, 0.9), (7, 2000, 5, 3000, 0.99),
                             (11, 11, 7357, 7357, 0.9), (20000, 20000, 19990, 20000, 0.95)]:
    d, lo, hi, p = ref.two_proportions(k1, n1, k2, n2, conf)
    out["two_proportions"].append({"k_ref": k1, "n_ref": n1, "k_pilot": k2, "n_pilot": n2, "confidence": conf,
                                   "effect": d, "p": p, "low": lo, "high": hi})
    e, lo, hi, p = ref.risk_ratio(k1, n1, k2, n2, conf)
    out["risk_ratio"].append({"k_ref": k1, "n_ref": n1, "k_pilot": k2, "n_pilot": n2, "confidence": conf,
                              "effect": e, "low": fin(lo), "high": fin(hi), "p": p})

# Welch's t test, pilot - reference, and the ratio of means.
out["welch"] = []
for n1, n2, shift, conf in [(30, 40, 0.5, 0.95), (2, 3, 1.0, 0.95), (500, 450, -0.1, 0.99)]:
    rf = r(rng.normal(10, 2, n1))
    pl = r(rng.normal(10 + shift, 3, n2))
    e, lo, hi, p, df = ref.welch(rf, pl, conf)
    t = stats.ttest_ind(pl, rf, equal_var=False).statistic
    re, rlo, rhi, rp = ref.ratio_of_means(rf, pl, conf)
    out["welch"].append({"reference": rf, "pilot": pl, "confidence": conf, "t": float(t), "p": p, "df": df,
                         "effect": e, "low": lo, "high": hi, "rel_effect": re, "rel_low": rlo, "rel_high": rhi})

# Mann-Whitney U (asymptotic, tie and continuity corrected) with the Hodges-Lehmann shift and
# Moses' interval: exact distribution for small samples without ties, normal otherwise.
out["mann_whitney"] = []
cases = [
    (r(rng.lognormal(8, 0.5, 60)), r(rng.lognormal(8.2, 0.5, 70)), 0.95),
    ([1, 2, 2, 3, 3, 3, 4], [2, 3, 3, 4, 4, 5, 5, 5], 0.95),  # ties
    ([5.0], [7.0], 0.95),  # 1 vs 1: no interval can reach 95%
    ([5.0, 6.0], [5.5], 0.95),  # U at its mean: the continuity correction gives p = 1
    ([1.0, 2.5, 4.0], [3.0, 6.0, 7.5], 0.95),  # 3 vs 3: 90% at best
    ([1.1, 2.3, 3.9, 4.2], [3.3, 5.6, 6.1, 7.7], 0.95),  # 4 vs 4: exact
    ([10, 11.5, 11.5, 13], [1, 2, 3, 4], 0.95),  # one tie, 4 vs 4: still the exact cut
    (r(rng.normal(100, 10, 30)), r(rng.normal(104, 10, 40)), 0.95),  # exact, n < 50
    (r(rng.normal(100, 10, 300)), r(rng.normal(100, 10, 300)), 0.9),
    (r(rng.normal(50, 5, 20)), r(rng.normal(52, 5, 20)), 0.9),
]
for rf, pl, conf in cases:
    hl, lo, hi, cov, exact, u, p = ref.mann_whitney(rf, pl, conf)
    out["mann_whitney"].append({"reference": rf, "pilot": pl, "confidence": conf, "u": u, "p": p, "effect": hl,
                                "low": lo, "high": hi, "coverage": cov, "coverage_exact": exact})

# Quantile differences: each side's order-statistic interval at sqrt(conf).
out["quantile_difference"] = []
for n1, n2, q, relative, conf in [(400, 400, 0.95, False, 0.95), (400, 350, 0.95, True, 0.95),
                                  (60, 80, 0.5, False, 0.9), (30, 30, 0.99, False, 0.95),
                                  (5000, 3000, 0.99, True, 0.99)]:
    rf = r(rng.lognormal(6.5, 0.5, n1))
    pl = [x * (4.0 if rng.random() < 0.15 else 1.0) for x in r(rng.lognormal(6.5, 0.5, n2))]
    e, lo, hi, cov = ref.quantile_difference(rf, pl, q, relative, conf)
    out["quantile_difference"].append({"reference": rf, "pilot": pl, "q": q, "relative": relative,
                                       "confidence": conf, "effect": e, "low": lo, "high": hi,
                                       "coverage": cov})

# Exact null distribution of U.
out["mw_null_cdf"] = [{"n1": a, "n2": b, "cdf": ref.mw_null_cdf(a, b)} for a, b in [(1, 1), (2, 3), (4, 4), (7, 5), (12, 9)]]

# Sample-ratio mismatch.
out["srm"] = []
for obs, shares in [([5000, 5000], [0.5, 0.5]), ([5100, 4900], [0.5, 0.5]), ([5400, 4600], [1, 1]),
                    ([1000, 2050, 950], [0.25, 0.5, 0.25]), ([90, 10], [0.9, 0.1])]:
    chi2, p = ref.srm(obs, shares)
    out["srm"].append({"observed": obs, "shares": shares, "chi2": chi2, "p": p})


# Per-unit comparisons: 60 units per arm with very different levels and event counts.
def units(k, shift, rate=False):
    rows = []
    for _ in range(k):
        level = rng.lognormal(1.8, 0.4)
        n_pre, n = int(rng.integers(5, 60)), int(rng.integers(5, 60))
        if rate:
            p = min(0.95, level / 40)
            pre = rng.binomial(n_pre, p)
            cur = rng.binomial(n, min(1.0, p * (1 + shift)))
            rows.append([float(cur), float(n), float(pre), float(n_pre)])
        else:
            pre = rng.normal(level, 1.0, n_pre).sum()
            cur = rng.normal(level * (1 + shift), 1.0, n).sum()
            rows.append([round(float(cur), 6), float(n), round(float(pre), 6), float(n_pre)])
    return rows


out["units_independent"] = []
for relative, cuped, rate, k in [(False, False, False, 60), (True, False, False, 60), (False, True, False, 60),
                                 (True, True, False, 60), (False, True, True, 60), (True, False, False, 2),
                                 (False, True, False, 3)]:
    rf, pl = units(k, 0.0, rate), units(k - 5 if k > 5 else k, -0.08, rate)
    e, lo, hi, p, extra = ref.per_unit_independent(rf, pl, relative, 0.95, cuped=cuped)
    out["units_independent"].append({"reference": rf, "pilot": pl, "relative": relative, "cuped": cuped,
                                     "confidence": 0.95, "effect": e, "low": lo, "high": hi, "p": p,
                                     "theta": extra.get("theta"), "variance_reduction": extra.get("variance_reduction"),
                                     "unadjusted_effect": extra.get("unadjusted_effect")})
out["units_paired"] = []
for relative, k in [(False, 80), (True, 80), (True, 2)]:
    rows = []
    for u in units(k, -0.1):
        seen_before, seen_after = (rng.random() > 0.05, rng.random() > 0.05) if k > 2 else (True, True)
        rows.append([u[2] if seen_before else 0.0, u[3] if seen_before else 0.0,
                     u[0] if seen_after else 0.0, u[1] if seen_after else 0.0])
    e, lo, hi, p, extra = ref.per_unit_paired(rows, relative, 0.95)
    out["units_paired"].append({"units": rows, "relative": relative, "confidence": 0.95, "effect": e,
                                "low": lo, "high": hi, "p": p,
                                "reference_units": extra["reference_units"], "pilot_units": extra["pilot_units"]})

# Hodges-Lehmann at 20 x 20 by brute force (larger sizes are checked in Rust against a second,
# independent exact algorithm and brute force).
x20, y20 = r(rng.gamma(2.0, 3.0, 20)), r(rng.gamma(2.0, 3.3, 20))
d = np.sort(np.subtract.outer(np.array(y20), np.array(x20)).ravel())
out["hodges_lehmann_20"] = {"reference": x20, "pilot": y20, "shift": float(np.median(d)),
                            "order_statistics": {str(k): float(d[k]) for k in (0, 57, 199, 200, 342, 399)}}

Path(__file__).with_name("fixtures.json").write_text(json.dumps(out, indent=1) + "\n")
print("wrote fixtures.json")
