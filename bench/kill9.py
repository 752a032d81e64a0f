"""Load driver and checker for bench/kill9.sh. Standard library only.

fire:  sends `--pushes` multipart evidence pushes (drill records, one attachment each) at a
       running `stagegate serve`, `--concurrency` at a time; once `--kill-after` were
       acknowledged, waits a random 0–`--jitter-ms` (seeded) so the SIGKILL lands at an
       arbitrary point of a write (mid-transaction, mid-commit, between writes), then kills the
       server. Appends every acknowledged push — push number, event number, attachment sha256 —
       to the `--out` JSON file (a list, kept across rounds).
check: reads every agent's evidence back from a restarted server and fails unless every
       acknowledged push is on record *at the event number it was acknowledged with*, with its
       own attachment; every record on record (acknowledged or not) must have its attachment
       fetchable at /api/v1/blobs/{sha256} with bytes that hash to that name.

Attachments: even pushes carry bytes of their own (1–64 KiB, so some writes are larger), odd
pushes one of 25 shared texts (stored once, deduplicated by sha256)."""

import argparse, hashlib, json, os, random, signal, sys, threading, time, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor

AGENT = "agent-finance-invoice-recon"


def attachment(i):
    if i % 2 == 0:
        rng = random.Random(i)
        return f"drill log of push {i}\n".encode() + rng.randbytes(rng.randint(1024, 64 * 1024))
    return f"shared drill log {i % 25}\n".encode()


def push(base, token, i):
    content = attachment(i)
    sha = hashlib.sha256(content).hexdigest()
    path = f"attachments/drill-{i}.log"
    record = (
        "items: [9]\nkind: drill\ndate: 2026-06-08\nrecorded_by: Morteza Moradi\n"
        f"summary: Kill drill, push {i}.\nattachments:\n  - path: {path}\n    sha256: {sha}\n"
        "drill:\n  procedure: Flipped the flag off for an hour; re-enabled.\n"
        "  time_to_stop_seconds: 37\n  duration_minutes: 60\n"
        "  in_flight: No execution in flight at the flip.\n  result: passed\n"
    )
    b = "stagegate-kill9-boundary"
    body = (
        (
            f"--{b}\r\nContent-Disposition: form-data; name=\"record\"; filename=\"drill-{i}.yaml\"\r\n"
            f"Content-Type: application/yaml\r\n\r\n{record}\r\n"
            f"--{b}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{path}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{b}--\r\n".encode()
    )
    req = urllib.request.Request(
        f"{base}/api/v1/agents/{AGENT}/evidence",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={b}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            if r.status == 201:
                return {"push": i, "event": json.load(r)["event"], "sha256": sha}
    except urllib.error.HTTPError as e:
        # A refusal is a bug of this script or the server, never an effect of the kill.
        if e.code < 500:
            sys.exit(f"push {i}: HTTP {e.code}: {e.read()[:300]!r}")
        return {"push": i, "status": e.code}
    except (urllib.error.URLError, ConnectionError, OSError):
        pass  # the server died with this request in flight: not acknowledged
    return None


def fire(a):
    acked, lock, reached = [], threading.Lock(), threading.Event()
    rng = random.Random(a.seed)
    jitter = rng.uniform(0, a.jitter_ms / 1000)

    def killer():
        reached.wait()
        time.sleep(jitter)
        os.kill(a.pid, signal.SIGKILL)

    errors = []

    def one(i):
        got = push(a.base, a.token, i)
        if got and "status" in got:
            with lock:
                errors.append(got["status"])
        elif got:
            with lock:
                acked.append(got)
                if len(acked) >= a.kill_after:
                    reached.set()

    k = threading.Thread(target=killer, daemon=True)
    k.start()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=a.concurrency) as ex:
        list(ex.map(one, range(a.first, a.first + a.pushes)))
    took = time.monotonic() - started
    if not reached.is_set():
        sys.exit(f"only {len(acked)} pushes acknowledged, the server was never killed: lower --kill-after")
    k.join(timeout=10)
    kept = json.load(open(a.out)) if os.path.exists(a.out) else []
    json.dump(kept + acked, open(a.out, "w"))
    print(
        f"   fired {a.pushes} pushes ({a.concurrency} at a time) in {took:.1f} s; SIGKILL {jitter * 1000:.0f} ms after "
        f"acknowledgement {a.kill_after}; {len(acked)} acknowledged"
        + (f"; {len(errors)} answered 5xx: {sorted(set(errors))}" if errors else "")
    )


def get(a, path):
    req = urllib.request.Request(f"{a.base}{path}", headers={"Authorization": f"Bearer {a.token}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read()


def check(a):
    acked = json.load(open(a.out))
    records = json.loads(get(a, f"/api/v1/agents/{AGENT}/evidence"))
    found = {e["event"]: e for e in records}
    problems, lost = [], 0
    for ack in acked:
        e = found.get(ack["event"])
        if e is None:
            lost += 1
            problems.append(f"push {ack['push']}: acknowledged as event {ack['event']}, not on record")
            continue
        want = [f"attachments/drill-{ack['push']}.log", ack["sha256"]]
        got = [[x["path"], x["sha256"]] for x in e["attachments"]]
        if got != [want]:
            problems.append(f"push {ack['push']}: event {ack['event']} holds {got}, not {want}")
    pushes = [x["attachments"][0]["path"] for x in records]
    if len(set(pushes)) != len(pushes):
        problems.append("a push is on record twice")
    shas = {x["sha256"] for e in records for x in e["attachments"]}
    for sha in sorted(shas):
        if hashlib.sha256(get(a, f"/api/v1/blobs/{sha}")).hexdigest() != sha:
            problems.append(f"attachment {sha} does not hash to its name")
    acked_events = {ack["event"] for ack in acked}
    unacked = len([ev for ev in found if ev not in acked_events])
    print(
        f"   {len(acked)} acknowledged, {lost} of them lost; "
        f"{len(found)} records in all ({unacked} committed but never acknowledged: the kill cut the answer); "
        f"{len(shas)} distinct attachments fetched and hashed"
    )
    if problems:
        sys.exit("FAILED:\n  " + "\n  ".join(problems[:30]))


p = argparse.ArgumentParser()
p.add_argument("mode", choices=["fire", "check"])
p.add_argument("--base", required=True)
p.add_argument("--token", required=True)
p.add_argument("--out", required=True)
p.add_argument("--pid", type=int, default=0)
p.add_argument("--first", type=int, default=0, help="number of the first push (rounds do not overlap)")
p.add_argument("--pushes", type=int, default=1000)
p.add_argument("--concurrency", type=int, default=100)
p.add_argument("--kill-after", type=int, default=300)
p.add_argument("--jitter-ms", type=float, default=50)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
fire(a) if a.mode == "fire" else check(a)
