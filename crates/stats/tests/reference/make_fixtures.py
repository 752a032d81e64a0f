#!/usr/bin/env python3
"""Reference values for stagegate-stats, computed independently with scipy and numpy.

Writes fixtures.json beside this file. Regenerate with:
    pip install scipy numpy && python3 crates/stats/tests/reference/make_fixtures.py
Generated with scipy 1.17.1 and numpy 2.4.6.
"""
import json
from pathlib import Path

import numpy as np
from scipy import stats

rng = np.random.default_rng(20261121)
out = {"scipy": __import__("scipy").__version__, "numpy": np.__version__}


def r(xs):
    return [round(float(x), 6) for x in xs]


# Wilson score intervals, including 0 and n successes and n = 1.
out["wilson"] = []
for k, n, conf in [(0, 10, 0.95), (10, 10, 0.95), (1, 1, 0.95), (0, 1, 0.95), (741, 805, 0.95),
                   (92, 100, 0.9), (3, 40, 0.99), (50, 100, 0.95), (1, 1000000, 0.95)]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
    out["wilson"].append({"k": k, "n": n, "confidence": conf, "low": ci.low, "high": ci.high})

# Student t intervals for a mean.
out["mean_t"] = []
for n, conf in [(2, 0.95), (5, 0.95), (30, 0.9), (1000, 0.99)]:
    x = r(rng.lognormal(1.0, 0.6, n))
    a = np.array(x)
    lo, hi = stats.t.interval(conf, n - 1, loc=a.mean(), scale=stats.sem(a))
    out["mean_t"].append({"values": x, "confidence": conf, "low": lo, "high": hi})

# Order-statistic ranks for quantile intervals (1-based), from the binomial quantile function.
out["quantile_ranks"] = []
for n, q, conf in [(1, 0.5, 0.95), (10, 0.5, 0.95), (20, 0.95, 0.95), (100, 0.95, 0.95),
                   (805, 0.95, 0.95), (10000, 0.99, 0.95), (50, 0.5, 0.9)]:
    b = stats.binom(n, q)
    a = 1 - conf
    lo = int(min(max(b.ppf(a / 2), 1), n))
    hi = int(min(max(b.ppf(1 - a / 2) + 1, 1), n))
    cov = b.cdf(hi - 1) - (b.cdf(lo - 1) if lo > 0 else 0.0)
    out["quantile_ranks"].append({"n": n, "q": q, "confidence": conf, "l": lo, "u": hi, "coverage": cov})

# Two proportions: pooled z test (as chi-square without correction) and Newcombe's hybrid
# score interval from scipy's Wilson intervals.
out["two_proportions"] = []
for k1, n1, k2, n2, conf in [(40, 1000, 25, 1000, 0.95), (0, 50, 3, 50, 0.95), (50, 50, 48, 50, 0.95),
                             (1, 1, 0, 1, 0.95), (520, 10000, 560, 10000, 0.9)]:
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]])
    p1, p2 = k1 / n1, k2 / n2
    if table.min(axis=0).min() == 0 and (k1 + k2 == 0 or k1 + k2 == n1 + n2):
        z, p = 0.0, 1.0
    else:
        chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
        z = np.sign(p2 - p1) * np.sqrt(chi2)
    w1 = stats.binomtest(k1, n1).proportion_ci(confidence_level=conf, method="wilson")
    w2 = stats.binomtest(k2, n2).proportion_ci(confidence_level=conf, method="wilson")
    d = p2 - p1
    lo = d - np.sqrt((p2 - w2.low) ** 2 + (w1.high - p1) ** 2)
    hi = d + np.sqrt((w2.high - p2) ** 2 + (p1 - w1.low) ** 2)
    out["two_proportions"].append({"k_ref": k1, "n_ref": n1, "k_pilot": k2, "n_pilot": n2, "confidence": conf,
                                   "effect": d, "z": float(z), "p": float(p), "low": lo, "high": hi})

# Welch's t test, pilot - reference.
out["welch"] = []
for n1, n2, shift, conf in [(30, 40, 0.5, 0.95), (2, 3, 1.0, 0.95), (500, 450, -0.1, 0.99)]:
    ref = r(rng.normal(10, 2, n1))
    pil = r(rng.normal(10 + shift, 3, n2))
    t = stats.ttest_ind(pil, ref, equal_var=False)
    ci = t.confidence_interval(conf)
    out["welch"].append({"reference": ref, "pilot": pil, "confidence": conf, "t": t.statistic, "p": t.pvalue,
                         "df": t.df, "effect": float(np.mean(pil) - np.mean(ref)), "low": ci.low, "high": ci.high})


def moses(ref, pil, conf):
    d = np.sort(np.subtract.outer(np.array(pil), np.array(ref)).ravel())
    n1, n2 = len(ref), len(pil)
    z = stats.norm.ppf(1 - (1 - conf) / 2)
    c = int(np.floor(n1 * n2 / 2 - z * np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)))
    if c < 0:
        return float(d[0]), float(d[-1])
    return float(d[c]), float(d[len(d) - 1 - c])


# Mann-Whitney U (asymptotic, tie and continuity corrected) with Hodges-Lehmann shift.
out["mann_whitney"] = []
cases = [
    (r(rng.lognormal(8, 0.5, 60)), r(rng.lognormal(8.2, 0.5, 70)), 0.95),
    ([1, 2, 2, 3, 3, 3, 4], [2, 3, 3, 4, 4, 5, 5, 5], 0.95),  # ties
    ([5.0], [7.0], 0.95),  # n = 1
    ([1, 1, 1, 1], [1, 1, 1], 0.95),  # all tied
    (r(rng.normal(100, 10, 300)), r(rng.normal(100, 10, 300)), 0.9),
]
for ref, pil, conf in cases:
    res = stats.mannwhitneyu(pil, ref, alternative="two-sided", method="asymptotic", use_continuity=True)
    hl = float(np.median(np.subtract.outer(np.array(pil), np.array(ref))))
    lo, hi = moses(ref, pil, conf)
    p = 1.0 if np.isnan(res.pvalue) else float(res.pvalue)
    out["mann_whitney"].append({"reference": ref, "pilot": pil, "confidence": conf, "u": float(res.statistic),
                                "p": p, "effect": hl, "low": lo, "high": hi})

# Sample-ratio mismatch.
out["srm"] = []
for obs, shares in [([5000, 5000], [0.5, 0.5]), ([5100, 4900], [0.5, 0.5]), ([5400, 4600], [1, 1]),
                    ([1000, 2050, 950], [0.25, 0.5, 0.25]), ([90, 10], [0.9, 0.1])]:
    exp = np.array(shares, dtype=float) / np.sum(shares) * np.sum(obs)
    c = stats.chisquare(obs, exp)
    out["srm"].append({"observed": obs, "shares": shares, "chi2": c.statistic, "p": c.pvalue})

Path(__file__).with_name("fixtures.json").write_text(json.dumps(out, indent=1) + "\n")
print("wrote fixtures.json")
