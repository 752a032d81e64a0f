#!/usr/bin/env python3
"""Reference values for the examples' comparisons (non-inferiority, equivalence, per-unit paired,
per-unit with CUPED), computed independently with reference.py from the examples' own card and
telemetry.

    python3 tools/crosscheck/example_reference.py --write crates/stagegate/tests/reference/examples.json
    python3 tools/crosscheck/example_reference.py --check --stagegate target/debug/stagegate

`--write` refreshes the fixture the Rust test `examples_against_reference` reads; `--check` runs
`stagegate review` on each example and compares (CI does both: the fixture must not be stale).
"""
import argparse
import csv
import datetime as dt
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crosscheck as xc  # noqa: E402
import reference as ref  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {"contact-center-assist": "2026-10-06", "contact-center-assist-ab": "2026-10-06"}


def day(s):
    return dt.date.fromisoformat(str(s))


def load(folder):
    card = yaml.safe_load((folder / "agent.yaml").read_text())
    cols = card["telemetry"]["columns"]
    rows = []
    for f in card["telemetry"]["files"]:
        opener = gzip.open if f.endswith(".gz") else open
        with opener(folder / f, "rt") as fh:
            for r in csv.DictReader(fh):
                rows.append({role: r[col] for role, col in cols.items()})
    for r in rows:
        r["day"] = day(r["timestamp"][:10])
    return card, rows


def num(v):
    return None if v in ("", None) else float(v)


def value_of(metric, r):
    """(y, n) contribution of a row to a rate or mean, or None when it adds nothing."""
    if metric["kind"] == "rate":
        p = metric["of"]
        v = r.get(p["field"], "")
        if p["op"] == "is_true":
            return None if v == "" else (1.0 if v == "true" else 0.0, 1.0)
        if p["op"] == "eq":
            return None if v == "" else (1.0 if float(v) == float(p["value"]) else 0.0, 1.0)
        raise ValueError(p)
    x = num(r.get(metric["field"], ""))
    return None if x is None else (x, 1.0)


def expect(card, rows, c):
    conf = card.get("statistics", {}).get("confidence", 0.95)
    pilot = (day(card["pilot"]["start"]), day(card["pilot"]["end"]))
    in_pilot = [r for r in rows if pilot[0] <= r["day"] <= pilot[1]]
    m = c["metric"]
    cmp = c.get("compare")
    if cmp is None:
        if m["kind"] == "quantile":
            v = np.array([float(r[m["field"]]) for r in in_pilot if r[m["field"]] != ""])
            lo, hi, cov = ref.quantile_interval(v, m["q"], conf)
            return float(np.quantile(v, m["q"])), (lo, hi, cov), None, {}, conf
        vals = [value_of(m, r) for r in in_pilot]
        vals = [v for v in vals if v is not None]
        if m["kind"] == "rate":
            k, n = sum(v[0] for v in vals), len(vals)
            lo, hi, _ = ref.wilson(int(k), n, conf)
            return k / n, (lo, hi, conf), None, {}, conf
        x = np.array([v[0] for v in vals])
        lo, hi, _ = ref.mean_t(len(x), float(x.mean()), float(x.std(ddof=1)), conf)
        return float(x.mean()), (lo, hi, conf), None, {}, conf
    level = conf if cmp.get("hypothesis", "superiority") == "superiority" else ref.one_sided_level(conf)
    relative = cmp.get("effect") == "relative"
    unit = cmp["unit"]
    base = (day(cmp["baseline"]["start"]), day(cmp["baseline"]["end"])) if "baseline" in cmp else (dt.date.max, dt.date.min)
    sums = {}

    def add(r, side):
        v = value_of(m, r)
        if v is None:
            return
        s = sums.setdefault(r[unit], {"ref": [0.0, 0.0], "pilot": [0.0, 0.0], "cov": [0.0, 0.0]})
        s[side][0] += v[0]
        s[side][1] += v[1]

    if cmp["against"] == "baseline":
        for r in rows:
            if base[0] <= r["day"] <= base[1]:
                add(r, "ref")
            elif pilot[0] <= r["day"] <= pilot[1] and ("pilot_cohort" not in cmp or r["cohort"] == cmp["pilot_cohort"]):
                add(r, "pilot")
        units = [s["ref"] + s["pilot"] for s in sums.values() if s["ref"][1] > 0 or s["pilot"][1] > 0]
        e, lo, hi, p, extra = ref.per_unit_paired(units, relative, level)
    else:
        for r in rows:
            if pilot[0] <= r["day"] <= pilot[1]:
                if r["cohort"] == cmp["control_cohort"]:
                    add(r, "ref")
                elif r["cohort"] == cmp.get("pilot_cohort", r["cohort"]):
                    add(r, "pilot")
            elif cmp.get("cuped") and base[0] <= r["day"] <= base[1]:
                add(r, "cov")
        r_units = [s["ref"] + s["cov"] for s in sums.values() if s["ref"][1] > 0 and s["pilot"][1] == 0]
        p_units = [s["pilot"] + s["cov"] for s in sums.values() if s["pilot"][1] > 0 and s["ref"][1] == 0]
        e, lo, hi, p, extra = ref.per_unit_independent(r_units, p_units, relative, level, cuped=bool(cmp.get("cuped")))
    return e, (lo, hi, level), p, extra, level


def references():
    out = {}
    for name in EXAMPLES:
        card, rows = load(ROOT / "examples" / name)
        out[name] = {}
        for c in card["success_criteria"]:
            e, iv, p, extra, level = expect(card, rows, c)
            rec = {"value": e, "low": iv[0], "high": iv[1], "coverage": iv[2],
                   "verdict": xc.judge(c, e, iv, level)}
            if p is not None:
                rec["p_value"] = p
            for k in ("theta", "variance_reduction", "unadjusted_effect", "reference_units", "pilot_units"):
                if k in extra:
                    rec[k] = float(extra[k]) if k not in ("reference_units", "pilot_units") else int(extra[k])
            out[name][c["id"]] = rec
    return out


def check(stagegate, want):
    bad = 0
    for name, as_of in EXAMPLES.items():
        r = subprocess.run([stagegate, "review", str(ROOT / "examples" / name), "--as-of", as_of, "--format", "json", "--no-record"],
                           capture_output=True, text=True)
        got = {c["id"]: c for c in json.loads(r.stdout)["criteria"]}
        for cid, w in want[name].items():
            g = got[cid]
            pairs = [("value", g["actual"]), ("low", g["interval"]["low"]), ("high", g["interval"]["high"]),
                     ("coverage", g["interval"]["coverage"])]
            if "p_value" in w:
                pairs.append(("p_value", g["comparison"]["p_value"]))
            if "theta" in w:
                pairs += [("theta", g["comparison"]["cuped"]["theta"]),
                          ("variance_reduction", g["comparison"]["cuped"]["variance_reduction"])]
            for k, v in pairs:
                if abs(v - w[k]) > 1e-9 * abs(w[k]) + 1e-12:
                    print(f"FAIL {name} {cid} {k}: stagegate {v!r}, reference {w[k]!r}")
                    bad += 1
            if g["verdict"] != w["verdict"]:
                print(f"FAIL {name} {cid} verdict: stagegate {g['verdict']}, reference {w['verdict']}")
                bad += 1
            print(f"{name} {cid}: {g['verdict']} ({w['verdict']} by the reference)")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--stagegate", default="target/debug/stagegate")
    a = ap.parse_args()
    want = references()
    if a.write:
        Path(a.write).write_text(json.dumps(want, indent=1, sort_keys=True) + "\n")
        print(f"wrote {a.write}")
    if a.check:
        if check(a.stagegate, want):
            sys.exit(1)
        fixture = ROOT / "crates/stagegate/tests/reference/examples.json"
        stored = json.loads(fixture.read_text())
        if json.dumps(stored, sort_keys=True) != json.dumps(json.loads(json.dumps(want)), sort_keys=True):
            print(f"FAIL {fixture} is stale: rerun with --write {fixture}")
            sys.exit(1)
        print("examples agree with the reference")


if __name__ == "__main__":
    main()
