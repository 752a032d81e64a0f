#!/usr/bin/env python3
"""stagegate against DuckDB and Polars on the same pilot telemetry, in the same run.

Each tool runs in its own process, timed from start to finish (wall clock) with its peak
resident memory (ru_maxrss from wait4); each runs three times and the median is reported. Each computes the same criteria set over the pilot
window 2026-03-02 .. 2026-03-29 (UTC): event count, acceptance rate, error rate, cost per
token (ratio of sums), exact p95 latency (linear interpolation), distinct users, the weekly
acceptance series, and the error rate of the pilot cohort against the control cohort. The
script fails if any number differs beyond floating-point summation order (1e-9 relative).

Run through bench/run.sh, which builds stagegate, generates the data and installs DuckDB and
Polars from PyPI.
"""
import argparse
import json
import os
import subprocess
import sys
import time

START, END = "2026-03-02 00:00:00+00", "2026-03-30 00:00:00+00"
WEEK0 = 1772409600  # 2026-03-02T00:00:00Z


def duckdb_numbers(path):
    import duckdb

    con = duckdb.connect()
    src = f"read_csv('{path}')" if path.endswith(".csv") else f"read_json('{path}', format='newline_delimited')"
    con.execute(f"CREATE TABLE e AS SELECT * FROM {src} WHERE ts >= TIMESTAMPTZ '{START}' AND ts < TIMESTAMPTZ '{END}'")
    n, acc, err, cpt, p95, users = con.execute(
        "SELECT count(*), avg(CASE WHEN accepted THEN 1.0 ELSE 0.0 END), avg(CASE WHEN error = 1 THEN 1.0 ELSE 0.0 END),"
        " sum(cost_usd) / sum(tokens), quantile_cont(latency_ms, 0.95), count(DISTINCT user_id) FROM e"
    ).fetchone()
    weekly = con.execute(
        f"SELECT CAST(floor((epoch(ts) - {WEEK0}) / 604800) AS BIGINT) + 1 AS w,"
        " avg(CASE WHEN accepted THEN 1.0 ELSE 0.0 END) FROM e GROUP BY w ORDER BY w"
    ).fetchall()
    by = dict(
        (c, (k, m))
        for c, m, k in con.execute("SELECT cohort, count(*), sum(CASE WHEN error = 1 THEN 1 ELSE 0 END) FROM e GROUP BY cohort").fetchall()
    )
    return numbers(n, acc, err, cpt, p95, users, [v for _, v in weekly], by)


def polars_numbers(path):
    import polars as pl

    lf = pl.scan_csv(path) if path.endswith(".csv") else pl.scan_ndjson(path)
    ts = pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
    lf = lf.with_columns(ts.alias("ts")).filter(
        (pl.col("ts") >= pl.datetime(2026, 3, 2, time_zone="UTC")) & (pl.col("ts") < pl.datetime(2026, 3, 30, time_zone="UTC"))
    )
    main = lf.select(
        pl.len().alias("n"),
        pl.col("accepted").cast(pl.Float64).mean().alias("acc"),
        (pl.col("error") == 1).cast(pl.Float64).mean().alias("err"),
        (pl.col("cost_usd").sum() / pl.col("tokens").sum()).alias("cpt"),
        pl.col("latency_ms").cast(pl.Float64).quantile(0.95, interpolation="linear").alias("p95"),
        pl.col("user_id").n_unique().alias("users"),
    )
    weekly = (
        lf.with_columns(((pl.col("ts").dt.epoch("s") - WEEK0) // 604800 + 1).alias("w"))
        .group_by("w")
        .agg(pl.col("accepted").cast(pl.Float64).mean().alias("acc"))
        .sort("w")
    )
    control = lf.group_by("cohort").agg(pl.len().alias("m"), (pl.col("error") == 1).sum().alias("k"))
    m, w, c = pl.collect_all([main, weekly, control])
    row = m.row(0)
    by = {r[0]: (r[2], r[1]) for r in c.iter_rows()}
    return numbers(*row, w["acc"].to_list(), by)


def numbers(n, acc, err, cpt, p95, users, weekly, by):
    k_ref, n_ref = by["control"]
    k_pil, n_pil = by["pilot"]
    return {
        "events": float(n),
        "acceptance": float(acc),
        "error_rate": float(err),
        "cost_per_token": float(cpt),
        "latency_p95": float(p95),
        "users": float(users),
        "weekly_acceptance": [float(x) for x in weekly],
        "control_error_rate": k_ref / n_ref,
        "pilot_error_rate": k_pil / n_pil,
        "pilot_minus_control": k_pil / n_pil - k_ref / n_ref,
    }


def stagegate_numbers(report):
    c = {x["id"]: x for x in report["criteria"]}
    cmp = c["errors_vs_control"]["comparison"]
    return {
        "events": c["events"]["actual"],
        "acceptance": c["acceptance"]["actual"],
        "error_rate": c["error_rate"]["actual"],
        "cost_per_token": c["cost_per_token"]["actual"],
        "latency_p95": c["latency_p95"]["actual"],
        "users": c["users"]["actual"],
        "weekly_acceptance": [p["value"] for p in c["acceptance"]["series"]],
        "control_error_rate": cmp["reference_value"],
        "pilot_error_rate": cmp["pilot_value"],
        "pilot_minus_control": c["errors_vs_control"]["actual"],
    }


def median_timed(cmd, repeat):
    """Runs cmd `repeat` times; returns the last stdout, the median wall time and peak RSS."""
    runs = [timed(cmd) for _ in range(repeat)]
    times = sorted(r[1] for r in runs)
    mems = sorted(r[2] for r in runs)
    return runs[-1][0], times[len(times) // 2], mems[len(mems) // 2]


def timed(cmd):
    """Runs cmd; returns (stdout, wall seconds, peak RSS in MiB)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 10, 20):
        sys.exit(f"{cmd[0]} failed ({code}): {err.decode()[-2000:]}")
    return out, wall, ru.ru_maxrss / 1024


def same(a, b):
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bench/data")
    ap.add_argument("--stagegate", default="target/release/stagegate")
    ap.add_argument("--engine")
    ap.add_argument("--file")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool and format; the median is reported")
    a = ap.parse_args()
    if a.engine:  # child process: one engine, one file
        f = duckdb_numbers if a.engine == "duckdb" else polars_numbers
        print(json.dumps(f(a.file)))
        return
    rows, failed = [], False
    for fmt in ("csv", "jsonl"):
        path = os.path.join(a.data, f"events.{fmt}")
        out, t, mem = median_timed([a.stagegate, "review", os.path.join(a.data, f"agent-{fmt}"), "--as-of", "2026-03-30", "--no-record", "--format", "json"], a.repeat)
        ours = stagegate_numbers(json.loads(out))
        rows.append(("stagegate", fmt, t, mem))
        for engine in ("duckdb", "polars"):
            out, t2, mem2 = median_timed([sys.executable, __file__, "--engine", engine, "--file", path], a.repeat)
            theirs = json.loads(out)
            rows.append((engine, fmt, t2, mem2))
            for k in ours:
                if not same(ours[k], theirs[k]):
                    failed = True
                    print(f"MISMATCH {fmt} {k}: stagegate {ours[k]} vs {engine} {theirs[k]}")
        print(f"{fmt}: numbers " + ("differ" if failed else "identical") + f" across tools: {json.dumps(ours)}")
    size = {f: os.path.getsize(os.path.join(a.data, f"events.{f}")) / 2**20 for f in ("csv", "jsonl")}
    print()
    print("| tool | format | file (MiB) | wall time (s) | peak memory (MiB) | time vs stagegate | memory vs stagegate |")
    print("|---|---|---|---|---|---|---|")
    base = {fmt: (t, m) for tool, fmt, t, m in rows if tool == "stagegate"}
    for tool, fmt, t, m in rows:
        bt, bm = base[fmt]
        print(f"| {tool} | {fmt} | {size[fmt]:.0f} | {t:.2f} | {m:.0f} | {t / bt:.2f}× | {m / bm:.2f}× |")
    if failed:
        sys.exit("numbers differ")


if __name__ == "__main__":
    main()
