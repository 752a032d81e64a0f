#!/usr/bin/env python3
"""Generates the contact-center examples' telemetry deterministically (gzip CSV, one row per call).

A call-assist agent suggests answers and compliance phrasing to 120 human contact-center agents.
Every call has a handle time (minutes) and a compliance-error flag; about 30% of calls get a
customer satisfaction score (CSAT, 1-5). Calls handled with the assist also log whether the
suggestion was accepted and its latency.

Human agents differ a lot from each other (handle times from about 4 to 11 minutes), and each
handles dozens of calls: the calls of one agent are not independent draws, so the examples
compare per agent (`unit: agent_id`).

- contact-center-assist: August 2026 (manual, before the pilot) against the pilot, 7 Sep - 2 Oct,
  where every agent uses the assist. Handle time falls about 12% per agent; the compliance error
  rate stays about 2%; CSAT stays about 4.2.
- contact-center-assist-ab: the same agents randomised 60/60 in the pilot (cohort `assist` or
  `control`). September calls run about 3% longer for everyone (a seasonal mix); the assist
  cohort is about 12% faster than that. August is the CUPED covariate period.

Run from the repository root:  python3 examples/tools/generate_contact_center_telemetry.py
"""
import datetime as dt
import gzip
import math
import random
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent
AUGUST = (dt.date(2026, 8, 3), dt.date(2026, 8, 28))
PILOT = (dt.date(2026, 9, 7), dt.date(2026, 10, 2))


def workdays(window):
    d = window[0]
    while d <= window[1]:
        if d.weekday() < 5:
            yield d
        d += dt.timedelta(days=1)


def generate(ab: bool, seed: int):
    rng = random.Random(seed)
    agents = []
    for i in range(1, 121):
        agents.append({
            "id": f"cc-{i:03d}",
            "level": math.exp(rng.gauss(math.log(6.63), 0.25)),
            "effect": rng.gauss(-0.12, 0.03),
            "error": min(0.08, 0.02 * math.exp(rng.gauss(0.0, 0.4))),
            "csat": min(4.9, max(3.2, rng.gauss(4.2, 0.25))),
            "arm": None,
        })
    if ab:
        order = list(range(120))
        rng.shuffle(order)
        for k, a in enumerate(order):
            agents[a]["arm"] = "assist" if k < 60 else "control"
    rows = []
    for window, pilot in ((AUGUST, False), (PILOT, True)):
        for day in workdays(window):
            for a in agents:
                uses_assist = pilot and (not ab or a["arm"] == "assist")
                for _ in range(rng.randint(1, 3)):
                    ts = dt.datetime(day.year, day.month, day.day, 8, tzinfo=dt.timezone.utc) + dt.timedelta(
                        seconds=rng.randint(0, 9 * 3600)
                    )
                    minutes = a["level"] * math.exp(rng.gauss(0.0, 0.35))
                    if pilot and ab:
                        minutes *= 1.03  # September's mix of calls, for every cohort
                    if uses_assist:
                        minutes *= 1 + a["effect"]
                    error = rng.random() < a["error"] * (0.95 if uses_assist else 1.0)
                    csat = ""
                    if rng.random() < 0.3:
                        csat = str(min(5, max(1, round(rng.gauss(a["csat"] + (0.02 if uses_assist else 0.0), 0.8)))))
                    accepted = latency = ""
                    if uses_assist:
                        accepted = "true" if rng.random() < 0.71 else "false"
                        latency = str(int(math.exp(rng.gauss(math.log(650), 0.45))))
                    cohort = (a["arm"] if pilot else "pre") if ab else ("assist" if pilot else "manual")
                    rows.append((ts, a["id"], cohort, f"{minutes:.2f}", "1" if error else "0", csat, accepted, latency))
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def write(rows, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["ts,agent_id,cohort,handle_minutes,compliance_error,csat,accepted,latency_ms"]
    for r in rows:
        lines.append(",".join([r[0].strftime("%Y-%m-%dT%H:%M:%SZ"), *r[1:]]))
    data = ("\n".join(lines) + "\n").encode()
    # mtime 0 and no file name in the header: the same bytes on every run.
    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
        g.write(data)
    print(f"wrote {path} ({len(rows)} calls)")


write(generate(False, 20260907), EXAMPLES / "contact-center-assist" / "telemetry" / "calls.csv.gz")
write(generate(True, 20260908), EXAMPLES / "contact-center-assist-ab" / "telemetry" / "calls.csv.gz")
