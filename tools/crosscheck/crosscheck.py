#!/usr/bin/env python3
"""End-to-end cross-check of stagegate's statistics against scipy and statsmodels.

Generates random agent folders (a card and a telemetry CSV each) covering every sample statistic
and comparison stagegate judges — rates, means, quantiles, ratios; two-proportion (difference and
risk ratio), Welch (difference and ratio of means), Mann-Whitney; superiority, non-inferiority and
equivalence; per-unit comparisons against a baseline period and a control cohort, with and
without CUPED — at sizes from one row to tens of thousands, with ties, zero cells and
all-success cells. Runs `stagegate review --format json --no-record` on each and compares every
value, interval bound, coverage, p-value and verdict with the independent implementations in
reference.py.

Exits 1 on any verdict that differs, or any number that differs by more than 1e-9 relative
(1e-12 absolute). A verdict whose deciding bound lies within 1e-9 of the threshold is reported
as a numerical tie, not a failure.

    python3 tools/crosscheck/crosscheck.py --stagegate target/debug/stagegate [--seed N] [--datasets 60]

The seed is printed first; rerun with --seed to reproduce a run.
"""
import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference as ref  # noqa: E402

REL, ABS = 1e-9, 1e-12
PILOT = (dt.date(2026, 6, 1), dt.date(2026, 6, 28))
BASE = (dt.date(2026, 4, 1), dt.date(2026, 4, 28))
CONTROL, TREATED = "manual", "agent"


# ------------------------------------------------------------------ data generation


def timestamps(rng, n, window):
    start = dt.datetime.combine(window[0], dt.time(), tzinfo=dt.timezone.utc)
    span = (window[1] - window[0]).days + 1
    secs = np.sort(rng.integers(0, span * 86400, n))
    return [(start + dt.timedelta(seconds=int(s))).strftime("%Y-%m-%dT%H:%M:%SZ") for s in secs]


def make_rows(rng):
    """Rows in the baseline window and the pilot window, with units assigned to arms."""
    tiny = rng.random() < 0.2
    n_pilot = int(rng.integers(1, 6)) if tiny else int(math.exp(rng.uniform(math.log(8), math.log(20000))))
    n_base = int(rng.integers(0, 6)) if tiny else int(math.exp(rng.uniform(math.log(8), math.log(12000))))
    k_units = int(rng.integers(1, 4)) if tiny else int(rng.integers(2, 90))
    level = rng.lognormal(1.8, 0.35, k_units)
    arm = np.where(rng.random(k_units) < rng.uniform(0.3, 0.7), TREATED, CONTROL)
    p_accept = rng.choice([0.0, 1.0, rng.uniform(0.02, 0.98)], p=[0.08, 0.08, 0.84])
    effect = rng.normal(-0.08, 0.08)
    ties = rng.random() < 0.4
    rows = []
    for window, n in ((BASE, n_base), (PILOT, n_pilot)):
        for ts in timestamps(rng, n, window):
            u = int(rng.integers(0, k_units))
            treated = window == PILOT and arm[u] == TREATED
            handle = max(0.05, rng.normal(level[u] * (1 + effect if treated else 1.0), 1.2))
            latency = rng.lognormal(7.5 + (effect if treated else 0.0), 0.6)
            if ties:
                handle, latency = round(handle, 1), float(round(latency / 50.0) * 50)
            p = p_accept if p_accept in (0.0, 1.0) else min(1.0, max(0.0, p_accept * (1 + effect if treated else 1.0)))
            den = int(rng.integers(1, 8))
            rows.append({
                "ts": ts,
                "user": f"u{int(rng.integers(0, 3 * k_units + 3))}",
                "agent_id": f"a{u:03d}",
                "cohort": arm[u],
                "handle": float(handle),
                "latency": float(latency),
                "accepted": bool(rng.random() < p),
                "num": float(round(den * handle, 3)),
                "den": float(den),
            })
    return rows


def in_window(row, window):
    d = dt.date.fromisoformat(row["ts"][:10])
    return window[0] <= d <= window[1]


# ------------------------------------------------------------------ criteria


def choose_threshold(rng, estimate, spread):
    """A threshold near the estimate so that all three verdicts occur; sometimes exactly on it."""
    if estimate is None or not math.isfinite(estimate):
        return 0.0
    if rng.random() < 0.1:
        return float(estimate)
    return float(estimate + rng.normal(0, 2.5) * (spread if spread and math.isfinite(spread) and spread > 0 else abs(estimate) * 0.05 + 1e-3))


def plain_spec(rng, kind, rows, conf):
    pilot = [r for r in rows if in_window(r, PILOT)]
    comparator = str(rng.choice([">=", "<="]))
    if kind == "rate":
        k, n = sum(r["accepted"] for r in pilot), len(pilot)
        est = k / n if n else 0.5
        thr = min(1.0, max(0.0, choose_threshold(rng, est, math.sqrt(est * (1 - est) / max(n, 1)) + 0.01)))
        metric = {"kind": "rate", "of": {"field": "accepted", "op": "is_true"}}
    elif kind == "mean":
        v = np.array([r["handle"] for r in pilot])
        est = float(v.mean()) if len(v) else 5.0
        thr = choose_threshold(rng, est, float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 1.0)
        metric = {"kind": "mean", "field": "handle"}
    elif kind == "quantile":
        q = float(rng.choice([0.5, 0.9, 0.95, 0.99]))
        v = np.array([r["latency"] for r in pilot])
        est = float(np.quantile(v, q)) if len(v) else 2000.0
        thr = choose_threshold(rng, est, est * 0.1)
        metric = {"kind": "quantile", "field": "latency", "q": q}
    else:  # ratio
        y, x = np.array([r["num"] for r in pilot]), np.array([r["den"] for r in pilot])
        est = float(y.sum() / x.sum()) if len(x) else 5.0
        thr = choose_threshold(rng, est, 0.2)
        metric = {"kind": "ratio", "numerator": "num", "denominator": "den"}
    return {"metric": metric, "comparator": comparator, "threshold": thr}


def compare_spec(rng, family, rows):
    """A comparison criterion: (card entry, description for the reference)."""
    against = str(rng.choice(["baseline", "control"]))
    relative = bool(rng.random() < 0.4)
    hypothesis = str(rng.choice(["superiority", "non_inferiority", "equivalence"], p=[0.5, 0.3, 0.2]))
    unit = None
    cuped = False
    if family == "rate":
        metric, test = {"kind": "rate", "of": {"field": "accepted", "op": "is_true"}}, "two_proportions"
    elif family == "mean":
        metric, test = {"kind": "mean", "field": "handle"}, "welch"
    elif family == "mw":
        metric, test = {"kind": "quantile", "field": "latency", "q": 0.5}, "mann_whitney"
        against = "control"  # keep the brute-force reference small
        relative = False  # a shift has no distribution-free relative form
    elif family == "qd":
        metric = {"kind": "quantile", "field": "latency", "q": float(rng.choice([0.5, 0.9, 0.95, 0.99]))}
        test = "quantile_difference"
    else:  # per-unit
        metric = {"kind": "mean", "field": "handle"} if rng.random() < 0.6 else {"kind": "rate", "of": {"field": "accepted", "op": "is_true"}}
        test = "welch" if metric["kind"] == "mean" else "two_proportions"
        unit = "agent_id"
        cuped = against == "control" and rng.random() < 0.6
    cmp = {"against": against, "effect": "relative" if relative else "absolute"}
    if test != "quantile_difference" or rng.random() < 0.5:
        cmp["test"] = test  # the quantile difference is also the default for quantiles
    if against == "baseline":
        cmp["baseline"] = {"start": BASE[0].isoformat(), "end": BASE[1].isoformat()}
        if rng.random() < 0.5:
            cmp["pilot_cohort"] = TREATED
    else:
        cmp["control_cohort"] = CONTROL
        if rng.random() < 0.5:
            cmp["pilot_cohort"] = TREATED
        if rng.random() < 0.3 and unit is None:
            cmp["assigned_pilot_share"] = 0.5
    if unit:
        cmp["unit"] = unit
    if cuped:
        cmp["cuped"] = True
        cmp["baseline"] = {"start": BASE[0].isoformat(), "end": BASE[1].isoformat()}
    scale = 0.1 if relative else {"rate": 0.05, "mean": 0.5, "mw": 150.0, "qd": 300.0, "unit": 0.5}[family]
    if family == "unit" and metric["kind"] == "rate" and not relative:
        scale = 0.05
    if hypothesis == "superiority":
        comparator, threshold = str(rng.choice(["<=", ">="])), float(rng.normal(0, scale))
    elif hypothesis == "non_inferiority":
        comparator = str(rng.choice(["<=", ">="]))
        threshold = 0.0
        cmp["hypothesis"], cmp["margin"] = hypothesis, float(abs(rng.normal(0, scale)) + scale / 10)
    else:
        comparator, threshold = "==", 0.0
        cmp["hypothesis"], cmp["margin"] = hypothesis, float(abs(rng.normal(0, scale)) + scale / 10)
    return {"metric": metric, "comparator": comparator, "threshold": threshold, "compare": cmp}


def card_yaml(criteria, confidence):
    crit = "\n".join("  - " + json.dumps(c) for c in criteria)  # JSON is YAML (flow style)
    return f"""id: agent-xcheck-test
name: Cross-check agent
version: "1"
tier: low
lane: startup
department: xcheck
people:
  builder: {{ name: Ann Lee }}
  coe_lead: {{ name: Bo Chan }}
  sponsor: {{ name: Cy Diaz }}
  on_call:
    primary: {{ name: Ann Lee }}
    backup: {{ name: Bo Chan }}
    pager: {{ system: PagerDuty, primary_schedule: a, backup_schedule: b }}
pilot: {{ start: {PILOT[0]}, end: {PILOT[1]}, cohort_size: 50, scope: test, cohort: test }}
success_criteria:
{crit}
guardrails: []
identity: {{ idp: Okta, principal: agent-xcheck-test }}
audit_log: {{ stores: [] }}
runbook: runbook.md
rollback:
  kill_switch: {{ provider: OFREP, flag: f }}
  procedure: ["off"]
  in_flight: drained
  decision_authority: Bo Chan
launch: {{ target_date: 2026-12-31 }}
statistics: {{ confidence: {confidence} }}
telemetry:
  files: [telemetry.csv]
  columns: {{ timestamp: ts, user: user, agent_id: agent_id, cohort: cohort, handle: handle, latency: latency, accepted: accepted, num: num, den: den }}
"""


def write_csv(path, rows):
    cols = ["ts", "user", "agent_id", "cohort", "handle", "latency", "accepted", "num", "den"]
    with open(path, "w") as f:
        f.write(",".join(cols) + "\n")
        for r in rows:
            f.write(",".join(repr(r[c]) if isinstance(r[c], float) else str(r[c]).lower() if isinstance(r[c], bool) else str(r[c]) for c in cols) + "\n")


# ------------------------------------------------------------------ reference side


def target_of(c):
    cmp = c.get("compare", {})
    h, m, thr = cmp.get("hypothesis", "superiority"), cmp.get("margin", 0.0), c["threshold"]
    if h == "equivalence":
        return ("band", thr - m, thr + m)
    if h == "non_inferiority":
        return ("limit", thr + m if c["comparator"] in ("<=", "<") else thr - m)
    return ("limit", thr)


def judge(c, value, interval, conf_needed):
    """Reference verdict: coverage before verdict, then the interval against the target."""
    if interval is None:
        return "no_data" if value is None else "inconclusive"
    lo, hi, coverage = interval
    if coverage < conf_needed - 1e-12:
        return "inconclusive"
    t = target_of(c)
    if t[0] == "band":
        if lo >= t[1] and hi <= t[2]:
            return "met"
        if lo > t[2] or hi < t[1]:
            return "not_met"
        return "inconclusive"
    lim, op = t[1], c["comparator"]
    holds = {">=": lambda a: a >= lim, ">": lambda a: a > lim, "<=": lambda a: a <= lim, "<": lambda a: a < lim}[op]
    if op in (">=", ">"):
        return "met" if holds(lo) else ("not_met" if not holds(hi) else "inconclusive")
    return "met" if holds(hi) else ("not_met" if not holds(lo) else "inconclusive")


def sides_for(c, rows):
    cmp = c["compare"]
    pilot_rows = [r for r in rows if in_window(r, PILOT)]
    if cmp["against"] == "baseline":
        reference = [r for r in rows if in_window(r, BASE)]
        pilot = [r for r in pilot_rows if "pilot_cohort" not in cmp or r["cohort"] == cmp["pilot_cohort"]]
    else:
        reference = [r for r in pilot_rows if r["cohort"] == CONTROL]
        if "pilot_cohort" in cmp:
            pilot = [r for r in pilot_rows if r["cohort"] == cmp["pilot_cohort"]]
        else:
            pilot = [r for r in pilot_rows if r["cohort"] != CONTROL]
    return reference, pilot


def expect_plain(c, rows, conf):
    """(value, interval (lo, hi, coverage) or None, p) for a plain criterion."""
    pilot = [r for r in rows if in_window(r, PILOT)]
    kind = c["metric"]["kind"]
    if kind == "rate":
        k, n = sum(r["accepted"] for r in pilot), len(pilot)
        if n == 0:
            return None, None, None
        lo, hi, _ = ref.wilson(k, n, conf)
        return k / n, (lo, hi, conf), None
    if kind == "mean":
        v = np.array([r["handle"] for r in pilot])
        if len(v) == 0:
            return None, None, None
        iv = ref.mean_t(len(v), float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, conf)
        return float(v.mean()), (iv[0], iv[1], conf) if iv else None, None
    if kind == "quantile":
        v = np.array([r["latency"] for r in pilot])
        if len(v) == 0:
            return None, None, None
        q = c["metric"]["q"]
        lo, hi, cov = ref.quantile_interval(v, q, conf)
        return float(np.quantile(v, q)), (lo, hi, cov), None
    y, x = np.array([r["num"] for r in pilot]), np.array([r["den"] for r in pilot])
    if len(x) == 0:
        return None, None, None
    iv = ref.ratio_of_sums(y, x, conf)
    return float(y.sum() / x.sum()), (iv[0], iv[1], conf) if iv else None, None


def expect_compare(c, rows, conf):
    cmp = c["compare"]
    level = conf if cmp.get("hypothesis", "superiority") == "superiority" else ref.one_sided_level(conf)
    relative = cmp["effect"] == "relative"
    reference, pilot = sides_for(c, rows)
    extra = {}
    if cmp.get("unit"):
        return expect_units(c, rows, reference, pilot, relative, level)
    if not reference or not pilot:
        return None, None, None, extra
    test = cmp.get("test", "quantile_difference" if c["metric"]["kind"] == "quantile" else None)
    if test == "two_proportions":
        k1, n1 = sum(r["accepted"] for r in reference), len(reference)
        k2, n2 = sum(r["accepted"] for r in pilot), len(pilot)
        if relative:
            e, lo, hi, p = ref.risk_ratio(k1, n1, k2, n2, level)
        else:
            e, lo, hi, p = ref.two_proportions(k1, n1, k2, n2, level)
        if "assigned_pilot_share" in cmp:
            users = (len({r["user"] for r in reference}), len({r["user"] for r in pilot}))
            extra["srm_p"] = ref.srm([users[1], users[0]], [0.5, 0.5])[1]
        return e, (lo, hi, level), p, extra
    if test == "welch":
        x, y = [r["handle"] for r in reference], [r["handle"] for r in pilot]
        if relative and not np.mean(x) > 0:
            return None, None, None, extra
        if len(x) < 2 or len(y) < 2 or (np.var(x) == 0 and np.var(y) == 0):
            e = (np.mean(y) / np.mean(x) - 1) if relative else (np.mean(y) - np.mean(x))
            return float(e), None, None, extra
        if relative:
            e, lo, hi, p = ref.ratio_of_means(x, y, level)
        else:
            e, lo, hi, p, _ = ref.welch(x, y, level)
        return e, (lo, hi, level), p, extra
    x, y = [r["latency"] for r in reference], [r["latency"] for r in pilot]
    q = c["metric"]["q"]
    if test == "quantile_difference":
        r = ref.quantile_difference(x, y, q, relative, level)
        if r is None:
            return None, None, None, extra
        e, lo, hi, cov = r
        return e, (lo, hi, cov), None, extra
    mw = ref.mann_whitney(x, y, level)
    if mw is None:  # every value equal: no interval, the point effect from the quantiles
        qx, qy = float(np.quantile(x, q)), float(np.quantile(y, q))
        if relative:
            return (qy / qx - 1 if qx > 0 else None), None, None, extra
        return qy - qx, None, None, extra
    hl, lo, hi, cov, _exact, _u, p = mw
    if relative:
        med = float(np.median(x))
        if not med > 0:
            return None, None, None, extra
        hl, lo, hi = hl / med, lo / med, hi / med
    return hl, (lo, hi, cov), p, extra


def expect_units(c, rows, reference, pilot, relative, level):
    cmp = c["compare"]
    kind = c["metric"]["kind"]

    def contrib(r):
        return (1.0 if r["accepted"] else 0.0, 1.0) if kind == "rate" else (r["handle"], 1.0)

    sums = {}
    for side, rs in (("ref", reference), ("pilot", pilot)):
        for r in rs:
            y, n = contrib(r)
            s = sums.setdefault(r["agent_id"], {"ref": [0.0, 0.0], "pilot": [0.0, 0.0], "cov": [0.0, 0.0]})
            s[side][0] += y
            s[side][1] += n
    if cmp.get("cuped"):
        for r in rows:
            if in_window(r, BASE):
                y, n = contrib(r)
                s = sums.setdefault(r["agent_id"], {"ref": [0.0, 0.0], "pilot": [0.0, 0.0], "cov": [0.0, 0.0]})
                s["cov"][0] += y
                s["cov"][1] += n
    extra = {}
    try:
        if cmp["against"] == "baseline":
            units = [s["ref"] + s["pilot"] for s in sums.values() if s["ref"][1] > 0 or s["pilot"][1] > 0]
            if len(units) < 2:
                raise ValueError("too few units")
            A = np.asarray(units, float)
            if A[:, 1].sum() == 0 or A[:, 3].sum() == 0:
                raise ValueError("empty side")
            e, lo, hi, p, extra = ref.per_unit_paired(units, relative, level)
        else:
            r_units = [s["ref"] + s["cov"] for s in sums.values() if s["ref"][1] > 0 and s["pilot"][1] == 0]
            p_units = [s["pilot"] + s["cov"] for s in sums.values() if s["pilot"][1] > 0 and s["ref"][1] == 0]
            extra["in_both"] = sum(1 for s in sums.values() if s["ref"][1] > 0 and s["pilot"][1] > 0)
            if len(r_units) < 2 or len(p_units) < 2:
                raise ValueError("too few units")
            e, lo, hi, p, more = ref.per_unit_independent(r_units, p_units, relative, level, cuped=bool(cmp.get("cuped")))
            extra.update(more)
    except (ValueError, ZeroDivisionError, FloatingPointError):
        # Too few units for an interval: the point effect from the event-level sides.
        field = "accepted" if kind == "rate" else "handle"
        if not reference or not pilot:
            return None, None, None, extra
        r_mean = np.mean([float(r[field]) for r in reference])
        p_mean = np.mean([float(r[field]) for r in pilot])
        if relative:
            return (float(p_mean / r_mean - 1) if r_mean > 0 else None), None, None, extra
        return float(p_mean - r_mean), None, None, extra
    if not (math.isfinite(e) and math.isfinite(lo) and math.isfinite(hi)):
        return None, None, None, extra
    return e, (lo, hi, level), p, extra


# ------------------------------------------------------------------ comparison


class Report:
    def __init__(self):
        self.failures, self.ties, self.checked = [], [], Counter()
        self.verdicts, self.worst = Counter(), 0.0

    def num(self, where, got, want):
        self.checked["numbers"] += 1
        if want is None or (isinstance(want, float) and not math.isfinite(want)):
            if got is not None:
                self.failures.append(f"{where}: got {got}, reference: unbounded/undefined")
            return
        if got is None:
            self.failures.append(f"{where}: stagegate gives none, reference {want!r}")
            return
        err = abs(got - want)
        if err > REL * abs(want) + ABS:
            self.failures.append(f"{where}: got {got!r}, reference {want!r} (relative error {err / max(abs(want), 1e-300):.2e})")
        elif abs(want) > 1e-6:
            self.worst = max(self.worst, err / abs(want))


def near_tie(c, interval):
    if interval is None:
        return False
    t = target_of(c)
    edges = [t[1]] if t[0] == "limit" else [t[1], t[2]]
    return any(abs(b - e) <= 1e-9 * max(1.0, abs(e)) for b in interval[:2] for e in edges)


def run_dataset(i, rng, stagegate, workdir, rep):
    rows = make_rows(rng)
    conf = float(rng.choice([0.9, 0.95, 0.99]))
    families = rng.choice(["rate", "mean", "quantile", "ratio", "c_rate", "c_mean", "c_mw", "c_qd", "c_unit"], size=int(rng.integers(2, 6)), replace=False)
    criteria = []
    for j, fam in enumerate(families):
        if fam.startswith("c_"):
            n_mw = sum(1 for r in rows if in_window(r, PILOT))
            if fam == "c_mw" and n_mw > 3000:
                fam = "c_mean"
            spec = compare_spec(rng, fam[2:], rows)
        else:
            spec = plain_spec(rng, fam, rows, conf)
        criteria.append({"id": f"c{j}_{fam}", "description": f"{fam} check", **spec})
    folder = Path(workdir) / f"ds{i:03d}"
    folder.mkdir(parents=True)
    (folder / "agent.yaml").write_text(card_yaml(criteria, conf))
    (folder / "runbook.md").write_text("# Runbook\n")
    write_csv(folder / "telemetry.csv", rows)
    out = subprocess.run([stagegate, "review", str(folder), "--as-of", "2026-07-01", "--format", "json", "--no-record"],
                         capture_output=True, text=True)
    if out.returncode not in (0, 10, 20):
        rep.failures.append(f"ds{i:03d}: stagegate exited {out.returncode}: {out.stderr.strip()}")
        return
    got = {c["id"]: c for c in json.loads(out.stdout)["criteria"]}
    for c in criteria:
        g = got[c["id"]]
        where = f"ds{i:03d} {c['id']}"
        if "compare" in c:
            value, interval, p, extra = expect_compare(c, rows, conf)
        else:
            (value, interval, p), extra = expect_plain(c, rows, conf), {}
        rep.checked[c["id"].split("_", 1)[1]] += 1
        rep.num(f"{where} value", g["actual"], value)
        gi = g["interval"]
        if interval is not None and gi is not None:
            rep.num(f"{where} low", gi["low"], interval[0])
            rep.num(f"{where} high", gi["high"], interval[1])
            rep.num(f"{where} coverage", gi["coverage"], interval[2])
        elif (interval is None) != (gi is None):
            rep.failures.append(f"{where}: interval {gi} vs reference {interval}")
        if p is not None:
            rep.num(f"{where} p-value", (g.get("comparison") or {}).get("p_value"), p)
        if "srm_p" in extra:
            rep.num(f"{where} SRM p-value", g["comparison"]["srm"]["p_value"], extra["srm_p"])
        if "theta" in extra and g["comparison"].get("cuped"):
            rep.num(f"{where} CUPED theta", g["comparison"]["cuped"]["theta"], extra["theta"])
            rep.num(f"{where} CUPED reduction", g["comparison"]["cuped"]["variance_reduction"], extra["variance_reduction"])
        level = conf
        if c.get("compare", {}).get("hypothesis", "superiority") != "superiority":
            level = ref.one_sided_level(conf)
        want = judge(c, value, interval, level)
        rep.verdicts[want] += 1
        if g["verdict"] != want:
            if near_tie(c, interval):
                rep.ties.append(f"{where}: {g['verdict']} vs reference {want} (bound on the threshold)")
            else:
                rep.failures.append(f"{where}: verdict {g['verdict']}, reference {want} (value {value}, interval {interval}, target {target_of(c)})")


def main():
    # Degenerate data (zero variance, zero reference) makes numpy warn; those cases are handled.
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stagegate", default="target/debug/stagegate")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--datasets", type=int, default=60)
    ap.add_argument("--keep", help="write the data sets here instead of a temporary folder")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"crosscheck seed {seed} ({a.datasets} data sets; rerun with --seed {seed})", flush=True)
    rng = np.random.default_rng(seed)
    rep = Report()
    with tempfile.TemporaryDirectory() as tmp:
        work = a.keep or tmp
        for i in range(a.datasets):
            run_dataset(i, rng, a.stagegate, work, rep)
    print("criteria checked by family: " + ", ".join(f"{k} {v}" for k, v in sorted(rep.checked.items()) if k != "numbers"))
    print(f"numbers compared: {rep.checked['numbers']}; worst relative difference {rep.worst:.1e}")
    print("reference verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(rep.verdicts.items())))
    for t in rep.ties:
        print(f"tie (not a failure): {t}")
    for f in rep.failures:
        print(f"FAIL {f}")
    if rep.failures:
        print(f"{len(rep.failures)} differences (seed {seed})")
        sys.exit(1)
    print("all verdicts and numbers agree")


if __name__ == "__main__":
    main()
