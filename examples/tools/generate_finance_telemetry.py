#!/usr/bin/env python3
"""Generates examples/finance-invoice-recon/telemetry/invoices.csv deterministically.

Synthetic pilot telemetry for seed 001's worked example (AP invoice reconciliation, pilot
2026-05-13 to 2026-06-12): one row per invoice the agent handled, shaped so the pilot's
actuals come out as the seed reports them — about 92% of suggestions accepted, no Sev-1,
p95 latency about 13 s — plus a handle time per invoice. Before the pilot, four weeks of the
manual process (2026-04-13 to 2026-05-08) are logged too: handle time only, about 6 minutes.

Run from the repository root:  python3 examples/tools/generate_finance_telemetry.py
"""
import csv
import datetime as dt
import math
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "finance-invoice-recon" / "telemetry" / "invoices.csv"
rng = random.Random(20260513)
start = dt.date(2026, 5, 13)
end = dt.date(2026, 6, 12)
users = [f"ap-{i:02d}" for i in range(1, 12)]  # 11 of the cohort of 12 took part

rows = []
day = start
n = 0
while day <= end:
    if day.weekday() < 5:
        for _ in range(rng.randint(55, 70)):
            n += 1
            ts = dt.datetime(day.year, day.month, day.day, 7, 0, tzinfo=dt.timezone.utc) + dt.timedelta(
                seconds=rng.randint(0, 9 * 3600)
            )
            latency = int(math.exp(rng.gauss(math.log(6000), 0.47)))
            rows.append([ts, rng.choice(users), f"INV-{260000 + n}", latency])
    day += dt.timedelta(days=1)

rows.sort(key=lambda r: r[0])

# Manual baseline before the pilot: no agent, so no latency, acceptance or cost.
baseline = []
day = dt.date(2026, 4, 13)
while day <= dt.date(2026, 5, 8):
    if day.weekday() < 5:
        for _ in range(rng.randint(55, 70)):
            ts = dt.datetime(day.year, day.month, day.day, 7, 0, tzinfo=dt.timezone.utc) + dt.timedelta(
                seconds=rng.randint(0, 9 * 3600)
            )
            baseline.append((ts, rng.choice(users), max(1.0, rng.gauss(6.0, 1.3))))
    day += dt.timedelta(days=1)
baseline.sort(key=lambda r: r[0])
accepted = [True] * round(len(rows) * 0.92) + [False] * (len(rows) - round(len(rows) * 0.92))
rng.shuffle(accepted)
severity = [""] * len(rows)
for i in rng.sample(range(len(rows)), 9):
    severity[i] = "sev3"
for i in rng.sample(range(len(rows)), 2):
    severity[i] = "sev2"

OUT.parent.mkdir(parents=True, exist_ok=True)
with OUT.open("w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["ts", "user_id", "invoice_id", "latency_ms", "accepted", "severity", "handle_minutes", "cost_usd"])
    for i, (ts, user, handle) in enumerate(baseline):
        w.writerow([ts.strftime("%Y-%m-%dT%H:%M:%SZ"), user, f"INV-{250000 + i}", "", "", "", f"{handle:.2f}", ""])
    for (ts, user, inv, latency), acc, sev in zip(rows, accepted, severity):
        handle = max(0.5, rng.gauss(4.1 if acc else 6.5, 1.1))
        cost = 0.012 + latency / 1_000_000 + rng.random() * 0.01
        w.writerow([ts.strftime("%Y-%m-%dT%H:%M:%SZ"), user, inv, latency, str(acc).lower(), sev, f"{handle:.2f}", f"{cost:.4f}"])
print(f"wrote {len(baseline)} baseline and {len(rows)} pilot rows to {OUT}")
