#!/usr/bin/env bash
# kill -9 of `stagegate serve` during 1,000 concurrent evidence pushes loses no acknowledged
# record, and the chain verifies afterwards — on SQLite and on PostgreSQL.
#
#   bash bench/kill9.sh   # PostgreSQL: $STAGEGATE_TEST_PG (a server URL, as in .ci/run), else
#                         # skipped with a note. ROUNDS=N (1) repeats fire/kill/restart/check on
#                         # the same registry with another kill moment each round.
#                         # STAGEGATE_BIN=path uses that binary instead of a release build
#                         # (e.g. target/debug/stagegate in CI).
#
# Per backend: registers the worked example's agent through the API (a coe-lead token), then per
# round fires 1,000 multipart drill-evidence pushes, 100 at a time (bench/kill9.py), SIGKILLs
# the server at a random moment (0–50 ms) after the 300th acknowledgement, restarts it, and
# checks that every acknowledged push is on record at the event number it was acknowledged
# with, carrying its own attachment, and that every attachment on record fetches and hashes to
# its name. Finally `stagegate verify` must exit 0 on the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-1}
WORK=$(mktemp -d /tmp/stagegate-kill9.XXXXXX)
SERVER=""
DB=""
cleanup() {
  if [ -n "$SERVER" ]; then kill -9 "$SERVER" 2>/dev/null || true; fi
  if [ -n "$DB" ]; then psql "$STAGEGATE_TEST_PG" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${STAGEGATE_BIN:-}" ]; then
  SG=$STAGEGATE_BIN
else
  cargo build --release -q -p stagegate
  SG=target/release/stagegate
fi
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start() { # registry key port
  "$SG" serve --registry "$1" --registry-key "$2" --listen "127.0.0.1:$3" >>"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$3/readyz" >/dev/null 2>&1 && return
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not start" >&2
  cat "$WORK/serve.log" >&2
  exit 1
}

run() { # name registry
  local name=$1 registry=$2 key="$WORK/$1.key" port lead started round
  started=$(date +%s.%N)
  port=$(free_port)
  lead=$("$SG" token create --person "Cora Lead" --roles coe-lead --registry "$registry" --registry-key "$key" 2>/dev/null)
  start "$registry" "$key" "$port"
  python3 - "$port" "$lead" <<'PY'
import json, sys, urllib.request
card = open("examples/finance-invoice-recon/agent.yaml").read()
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/v1/agents", data=json.dumps({"card": card}).encode(),
    method="POST", headers={"Authorization": f"Bearer {sys.argv[2]}", "Content-Type": "application/json"})
assert urllib.request.urlopen(req).status in (200, 201)
PY
  echo "== $name"
  for round in $(seq 1 "$ROUNDS"); do
    python3 bench/kill9.py fire --base "http://127.0.0.1:$port" --token "$lead" --pid "$SERVER" \
      --out "$WORK/$name.json" --first $(((round - 1) * 1000)) --seed "$round"
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    start "$registry" "$key" "$port"
    python3 bench/kill9.py check --base "http://127.0.0.1:$port" --token "$lead" --out "$WORK/$name.json"
  done
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
  "$SG" verify --registry "$registry" --registry-key "$key" | sed 's/^/   /'
  echo "   $name: $ROUNDS round(s) in $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)") s"
}

run sqlite "$WORK/registry.db"
if [ -n "${STAGEGATE_TEST_PG:-}" ]; then
  DB="sg_kill9_$$"
  psql "$STAGEGATE_TEST_PG" -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
  run postgres "${STAGEGATE_TEST_PG%/*}/$DB"
else
  echo "PostgreSQL skipped: set STAGEGATE_TEST_PG to a server URL" >&2
fi
