#!/usr/bin/env bash
# GET /api/v1/portfolio over a generated registry of 10,000 agents, 50 concurrent clients,
# measured with oha against a release build, on SQLite and on PostgreSQL.
#
#   bash bench/portfolio.sh            # needs cargo; installs oha with `cargo install` if absent;
#                                      # PostgreSQL: $STAGEGATE_BENCH_PG (a server URL), else the
#                                      # Debian PostgreSQL is started on a free port as .ci/run does
#
# Prints p50/p95/p99 and the response size per backend; the results go to BENCHMARKS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
AGENTS=${AGENTS:-10000}
REQUESTS=${REQUESTS:-5000}
AS_OF=2026-11-02
WORK=$(mktemp -d /tmp/stagegate-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  if [ -n "${PGDATA:-}" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PGDATA"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v oha >/dev/null 2>&1 || cargo install oha --locked
cargo build --release -q -p stagegate
cargo build --release -q -p stagegate-server --example generate
SG=target/release/stagegate
GEN=target/release/examples/generate

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [ -z "${STAGEGATE_BENCH_PG:-}" ]; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PGPORT=$(free_port)
  PGDATA=$(mktemp -d /tmp/stagegate-bench-pg.XXXXXX)
  chown postgres "$PGDATA"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
    -o "-p $PGPORT -k $PGDATA -c listen_addresses=127.0.0.1" start >/dev/null
  STAGEGATE_BENCH_PG="postgres://postgres@127.0.0.1:$PGPORT/postgres"
fi
DB="sg_bench_$$"
psql "$STAGEGATE_BENCH_PG" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
PG_URL="${STAGEGATE_BENCH_PG%/*}/$DB"

run() { # backend registry
  local name=$1 registry=$2 key="$WORK/$1.key" port
  echo "== $name: generating $AGENTS agents"
  /usr/bin/time -f "   generated in %e s, peak %M KiB" "$GEN" "$registry" "$key" "$AGENTS"
  local token
  token=$("$SG" token create --person "Bench Auditor" --roles auditor --registry "$registry" --registry-key "$key" 2>/dev/null)
  port=$(free_port)
  local t0 t1 cold
  t0=$(date +%s.%N)
  "$SG" serve --registry "$registry" --registry-key "$key" --listen "127.0.0.1:$port" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  # /readyz answers once the whole log is verified into the snapshot reads are served from.
  for _ in $(seq 1 600); do curl -fs -m 60 "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  t1=$(date +%s.%N)
  local url="http://127.0.0.1:$port/api/v1/portfolio?as_of=$AS_OF"
  cold=$( { /usr/bin/time -f "%e" curl -fs -o "$WORK/$name.json" -H "Authorization: Bearer $token" "$url"; } 2>&1 )
  echo "   start to ready (whole log verified): $(python3 -c "print(f'{$t1 - $t0:.2f}')") s;" \
       "first portfolio request (scorecard of every agent computed and rendered): ${cold} s;" \
       "response $(stat -c %s "$WORK/$name.json") bytes," \
       "$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(len(d['agents']), 'agents,', d['totals']['pilot_purgatory'], 'in purgatory')" "$WORK/$name.json")"
  oha -c 50 -n 500 --no-tui -H "Authorization: Bearer $token" "$url" >/dev/null  # warm-up
  oha -c 50 -n "$REQUESTS" --no-tui --output-format json -H "Authorization: Bearer $token" "$url" >"$WORK/$name-oha.json"
  python3 - "$WORK/$name-oha.json" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s, p = d["summary"], d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
ms = lambda x: x * 1000
print(f"   {sys.argv[2]}: {s['requestsPerSec']:.0f} req/s, success {s['successRate']*100:.1f}% {codes}")
print(f"   p50 {ms(p['p50']):.1f} ms, p95 {ms(p['p95']):.1f} ms, p99 {ms(p['p99']):.1f} ms (target 50 ms: {ms(p['p99'])/50:.2f}x)")
PY
  kill "${PIDS[-1]}" 2>/dev/null || true
}

run sqlite "$WORK/registry.db"
run postgres "$PG_URL"
psql "$STAGEGATE_BENCH_PG" -qc "DROP DATABASE IF EXISTS $DB" || true
