#!/usr/bin/env bash
# GET /api/v1/portfolio over a generated registry of 10,000 agents, 50 concurrent clients,
# measured with oha against a release build, on SQLite and on PostgreSQL.
#
#   bash bench/portfolio.sh   # needs cargo; installs oha with `cargo install --locked` if absent.
#                             # PostgreSQL: $STAGEGATE_BENCH_PG (a server URL; a database is
#                             # created in it and dropped), else the Debian PostgreSQL is started
#                             # on a free port as .ci/run does.
#   AGENTS=10000 REQUESTS=5000 ROUNDS=3 BACKENDS="sqlite postgres"   # the defaults
#   STAGEGATE_BIN=… GENERATE_BIN=…   # measure other builds (no cargo build then)
#   ACCEPT_ENCODING=identity          # replaces oha's default Accept-Encoding
#
# Per backend: generates the registry (crates/server/examples/generate.rs), issues an auditor
# token, starts `stagegate serve`, waits for /readyz, then
#   - cold: right after a write (a token issued: a new head, so no rendered answer is cached),
#     50 requests at once;
#   - warm: ROUNDS × REQUESTS requests, 50 at a time, after a 500-request warm-up;
# and prints p50/p95/p99 per round and the median p99 against the 50 ms target. oha sends
# `Accept-Encoding: gzip, compress, deflate, br` as browsers do; the bytes per response it
# reports are what crossed the wire. The results go to BENCHMARKS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
AGENTS=${AGENTS:-10000}
REQUESTS=${REQUESTS:-5000}
ROUNDS=${ROUNDS:-3}
BACKENDS=${BACKENDS:-sqlite postgres}
AS_OF=2026-11-02
WORK=$(mktemp -d /tmp/stagegate-bench.XXXXXX)
SERVER=""
DB=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
  if [ -n "$DB" ]; then psql "$STAGEGATE_BENCH_PG" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; fi
  if [ -n "${PGDATA:-}" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PGDATA"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v oha >/dev/null 2>&1 || cargo install oha --locked
if [ -n "${STAGEGATE_BIN:-}" ]; then
  SG=$STAGEGATE_BIN
else
  cargo build --release -q -p stagegate
  SG=target/release/stagegate
fi
if [ -n "${GENERATE_BIN:-}" ]; then
  GEN=$GENERATE_BIN
else
  cargo build --release -q -p stagegate-server --example generate
  GEN=target/release/examples/generate
fi

ENC=()
if [ -n "${ACCEPT_ENCODING:-}" ]; then ENC=(-H "Accept-Encoding: $ACCEPT_ENCODING"); fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [[ " $BACKENDS " == *" postgres "* ]] && [ -z "${STAGEGATE_BENCH_PG:-}" ]; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PGPORT=$(free_port)
  PGDATA=$(mktemp -d /tmp/stagegate-bench-pg.XXXXXX)
  chown postgres "$PGDATA"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
    -o "-p $PGPORT -k $PGDATA -c listen_addresses=127.0.0.1" start >/dev/null
  STAGEGATE_BENCH_PG="postgres://postgres@127.0.0.1:$PGPORT/postgres"
fi

# oha's JSON → one line: requests/s, p50/p95/p99, bytes per response, status codes.
summary() { # file label
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s, p = d["summary"], d["latencyPercentiles"]
ms = lambda x: x * 1000
print(f"   {sys.argv[2]:>8}: p50 {ms(p['p50']):6.1f} ms  p95 {ms(p['p95']):6.1f} ms  p99 {ms(p['p99']):6.1f} ms"
      f"  ({s['requestsPerSec']:.0f} req/s, {s['sizePerRequest'] or 0:,.0f} B/response, {d['statusCodeDistribution']})")
if set(d["statusCodeDistribution"]) != {"200"}:
    sys.exit("not every request was answered 200")
PY
}

run() { # name registry
  local name=$1 registry=$2 key="$WORK/$1.key" port token url round
  echo "== $name: generating $AGENTS agents"
  /usr/bin/time -f "   generated in %e s (peak %M KiB)" "$GEN" "$registry" "$key" "$AGENTS" 2>&1 | sed 's/^[^ ]/   &/'
  token=$("$SG" token create --person "Bench Auditor" --roles auditor --registry "$registry" --registry-key "$key" 2>/dev/null)
  port=$(free_port)
  "$SG" serve --registry "$registry" --registry-key "$key" --listen "127.0.0.1:$port" >"$WORK/$name.log" 2>&1 &
  SERVER=$!
  local t0 t1
  t0=$(date +%s.%N)
  for _ in $(seq 1 1200); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  url="http://127.0.0.1:$port/api/v1/portfolio?as_of=$AS_OF"
  curl -fs -o "$WORK/$name.json" -w "%{time_total}" -H "Authorization: Bearer $token" "$url" >"$WORK/first"
  python3 - "$WORK/$name.json" "$t0" "$t1" "$(cat "$WORK/first")" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
t = d["totals"]
print(f"   ready (whole log verified, snapshot built) {float(sys.argv[3]) - float(sys.argv[2]):.1f} s after start;"
      f" first request (renders the scorecard) {float(sys.argv[4]) * 1000:.0f} ms")
print(f"   response {os.path.getsize(sys.argv[1]):,} B uncompressed: {len(d['agents'])} agent rows of {t['agents']};"
      f" purgatory {t['pilot_purgatory']}, never reviewed {t['pilots_without_review']},"
      f" overdue open items {t['overdue_open_items']}, post-launch reviews overdue {t['post_launch_reviews_overdue']},"
      f" stale drills {t['stale_drills']}")
PY
  # Cold: a write moves the head; the next 50 requests arrive at once.
  "$SG" token create --person "Bench Writer" --roles auditor --registry "$registry" --registry-key "$key" >/dev/null 2>&1
  oha -c 50 -n 50 --no-tui --output-format json "${ENC[@]}" -H "Authorization: Bearer $token" "$url" >"$WORK/$name-cold.json"
  summary "$WORK/$name-cold.json" cold
  oha -c 50 -n 500 --no-tui "${ENC[@]}" -H "Authorization: Bearer $token" "$url" >/dev/null # warm-up
  for round in $(seq 1 "$ROUNDS"); do
    oha -c 50 -n "$REQUESTS" --no-tui --output-format json "${ENC[@]}" -H "Authorization: Bearer $token" "$url" >"$WORK/$name-$round.json"
    summary "$WORK/$name-$round.json" "round $round"
  done
  python3 - "$name" "$WORK/$name"-[0-9]*.json <<'PY'
import json, statistics, sys
p99 = statistics.median(json.load(open(f))["latencyPercentiles"]["p99"] * 1000 for f in sys.argv[2:])
print(f"   {sys.argv[1]}: median p99 over {len(sys.argv) - 2} rounds {p99:.1f} ms = {p99 / 50:.2f}x the 50 ms target")
PY
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

for backend in $BACKENDS; do
  case $backend in
    sqlite) run sqlite "$WORK/registry.db" ;;
    postgres)
      DB="sg_bench_$$"
      psql "$STAGEGATE_BENCH_PG" -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
      run postgres "${STAGEGATE_BENCH_PG%/*}/$DB"
      psql "$STAGEGATE_BENCH_PG" -qc "DROP DATABASE IF EXISTS $DB"
      DB=""
      ;;
    *) echo "unknown backend $backend (sqlite, postgres)" >&2; exit 2 ;;
  esac
done
