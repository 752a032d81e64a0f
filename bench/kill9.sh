#!/usr/bin/env bash
# kill -9 of `stagegate serve` during 1,000 concurrent evidence pushes loses no acknowledged
# record, and the chain verifies afterwards — on SQLite and on PostgreSQL.
#
#   bash bench/kill9.sh     # PostgreSQL: $STAGEGATE_TEST_PG (a server URL), else skipped with a note
#
# Registers the worked example's agent, fires 1,000 multipart pushes (100 at a time), SIGKILLs
# the server after 300 acknowledgements, restarts it, checks every acknowledged event number is
# on record with attachments that hash to their names, and runs `stagegate verify`.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/stagegate-kill9.XXXXXX)
SERVER=""
trap '[ -n "$SERVER" ] && kill -9 "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT
cargo build --release -q -p stagegate
SG=target/release/stagegate
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start() { # registry key port
  "$SG" serve --registry "$1" --registry-key "$2" --listen "127.0.0.1:$3" >>"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$3/readyz" >/dev/null && return; sleep 0.1; done
  echo "the server did not start" >&2; cat "$WORK/serve.log" >&2; exit 1
}

run() { # name registry
  local key="$WORK/$1.key" port lead
  port=$(free_port)
  lead=$("$SG" token create --person "Cora Lead" --roles coe-lead --registry "$2" --registry-key "$key" 2>/dev/null)
  start "$2" "$key" "$port"
  python3 - "$port" "$lead" <<'PY'
import json, sys, urllib.request
card = open("examples/finance-invoice-recon/agent.yaml").read()
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/v1/agents", data=json.dumps({"card": card}).encode(),
    method="POST", headers={"Authorization": f"Bearer {sys.argv[2]}", "Content-Type": "application/json"})
assert urllib.request.urlopen(req).status in (200, 201)
PY
  echo "== $1"
  python3 bench/kill9.py fire --base "http://127.0.0.1:$port" --token "$lead" --pid "$SERVER" --out "$WORK/$1.json"
  wait "$SERVER" 2>/dev/null || true
  start "$2" "$key" "$port"
  python3 bench/kill9.py check --base "http://127.0.0.1:$port" --token "$lead" --out "$WORK/$1.json"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
  "$SG" verify --registry "$2" --registry-key "$key"
}

run sqlite "$WORK/registry.db"
if [ -n "${STAGEGATE_TEST_PG:-}" ]; then
  DB="sg_kill9_$$"
  psql "$STAGEGATE_TEST_PG" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
  run postgres "${STAGEGATE_TEST_PG%/*}/$DB"
  psql "$STAGEGATE_TEST_PG" -qc "DROP DATABASE IF EXISTS $DB"
else
  echo "PostgreSQL skipped: set STAGEGATE_TEST_PG to a server URL" >&2
fi
