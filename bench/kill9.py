"""Fires concurrent multipart evidence pushes at a running `stagegate serve`, kills it with
SIGKILL once `--kill-after` pushes were acknowledged, and writes the acknowledged event numbers
(and attachment digests) to a JSON file; `--check` reads them back from a restarted server and
fails unless every acknowledged record is there with attachments that hash to their names.
Standard library only."""

import argparse, hashlib, json, os, signal, sys, threading, urllib.request, urllib.error
from concurrent.futures import ThreadPoolExecutor

AGENT = "agent-finance-invoice-recon"


def push(base, token, i):
    content = f"drill log {i % 50}\n".encode()  # 50 distinct attachments: most deduplicate
    sha = hashlib.sha256(content).hexdigest()
    record = (
        "items: [9]\nkind: drill\ndate: 2026-06-08\nrecorded_by: Mike Chen\n"
        f"summary: Kill drill number {i}.\nattachments:\n  - path: attachments/drill-{i}.log\n"
        f"    sha256: {sha}\ndrill:\n  procedure: Flag off.\n  time_to_stop_seconds: 37\n  result: passed\n"
    )
    b = "StagegateBoundary"
    body = (
        f"--{b}\r\nContent-Disposition: form-data; name=\"record\"; filename=\"drill-{i}.yaml\"\r\n\r\n{record}\r\n"
        f"--{b}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"attachments/drill-{i}.log\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + content + f"\r\n--{b}--\r\n".encode()
    req = urllib.request.Request(
        f"{base}/api/v1/agents/{AGENT}/evidence", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={b}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            if r.status == 201:
                return json.load(r)["event"], sha
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
    return None


def fire(a):
    acked, lock, killed = [], threading.Lock(), threading.Event()

    def one(i):
        got = push(a.base, a.token, i)
        if got:
            with lock:
                acked.append(got)
                if len(acked) >= a.kill_after and not killed.is_set():
                    killed.set()
                    os.kill(a.pid, signal.SIGKILL)

    with ThreadPoolExecutor(max_workers=a.concurrency) as ex:
        list(ex.map(one, range(a.pushes)))
    json.dump({"acked": acked}, open(a.out, "w"))
    print(f"{len(acked)} of {a.pushes} pushes acknowledged before and around the kill (killed: {killed.is_set()})")
    if not killed.is_set():
        sys.exit("the server was never killed: lower --kill-after")


def check(a):
    acked = json.load(open(a.out))["acked"]
    req = urllib.request.Request(f"{a.base}/api/v1/agents/{AGENT}/evidence", headers={"Authorization": f"Bearer {a.token}"})
    found = {e["event"]: e for e in json.load(urllib.request.urlopen(req))}
    missing = [ev for ev, _ in acked if ev not in found]
    shas = {sha for _, sha in acked}
    for sha in shas:
        req = urllib.request.Request(f"{a.base}/api/v1/blobs/{sha}", headers={"Authorization": f"Bearer {a.token}"})
        if hashlib.sha256(urllib.request.urlopen(req).read()).hexdigest() != sha:
            sys.exit(f"attachment {sha} does not hash to its name")
    print(f"{len(acked)} acknowledged, {len(found)} on record after the restart, {len(missing)} lost; {len(shas)} attachments checked")
    if missing:
        sys.exit(f"lost acknowledged records: {missing[:20]}")


p = argparse.ArgumentParser()
p.add_argument("mode", choices=["fire", "check"])
p.add_argument("--base", required=True)
p.add_argument("--token", required=True)
p.add_argument("--out", required=True)
p.add_argument("--pid", type=int, default=0)
p.add_argument("--pushes", type=int, default=1000)
p.add_argument("--concurrency", type=int, default=100)
p.add_argument("--kill-after", type=int, default=300)
a = p.parse_args()
fire(a) if a.mode == "fire" else check(a)
