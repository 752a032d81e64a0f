#!/usr/bin/env bash
# OFREP and the kill switch under load, on a release build, two `stagegate serve` replicas on one
# PostgreSQL database, the worked example in production with a 50% rollout:
#
#   1. single evaluations: POST /ofrep/v1/evaluate/flags/{key} with oha (CONNS connections):
#      the most requests per second over DURATION, then p50/p99 at half that rate; the same
#      against a bare hyper server returning a fixed body (crates/server/examples/bare_hyper.rs)
#      and, when it is installed (INSTALL_UNLEASH=1 installs it from crates.io), Unleash Edge in
#      offline mode serving an equivalent flag (50% gradual rollout on the user id), asked for
#      that one flag through its frontend API;
#   2. time to kill: STREAMS OFREP event streams spread over both replicas
#      (crates/server/examples/sse_watch.rs); the on-call's signed kill act is posted to replica
#      A; for every stream, the time until its refetchEvaluation message (p50/p95/p99/max);
#   3. reaction time: the same streams; a telemetry batch whose treatment spans cost twice the
#      control's is posted to replica A (after a normal batch); the rollback is recorded inside
#      that call; the time until every stream (both replicas) hears of it.
#
#   bash bench/ofrep.sh   # needs cargo, oha (installed if absent), ssh-keygen, python3, PostgreSQL
#   DURATION=10s CONNS=32 STREAMS=1000 ROUNDS=3 INSTALL_UNLEASH=0   # the defaults
#   UNLEASH_EDGE=/path/to/unleash-edge                             # else PATH, else target/bench-tools
#   PARTS="eval kill react"                                          # which measurements
#   STAGEGATE_BENCH_PG=postgres://…   # a server to use instead of starting the Debian one
#
# The results go to BENCHMARKS.md by hand, with the machine they ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
STREAMS=${STREAMS:-1000}
ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-eval kill react}
AGENT=agent-finance-invoice-recon
FLAG=finance-invoice-recon-enabled
WORK=$(mktemp -d /tmp/stagegate-ofrep.XXXXXX)
PIDS=()
DB=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$DB" ]; then psql "$STAGEGATE_BENCH_PG" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; fi
  if [ -n "${PGDATA:-}" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PGDATA"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

command -v oha >/dev/null 2>&1 || cargo install oha --locked
cargo build --release -q -p stagegate
cargo build --release -q -p stagegate-server --example bare_hyper --example sse_watch
SG=target/release/stagegate
EX=target/release/examples
UNLEASH=${UNLEASH_EDGE:-}
if [ -z "$UNLEASH" ] && command -v unleash-edge >/dev/null 2>&1; then
  UNLEASH=$(command -v unleash-edge)
elif [ -z "$UNLEASH" ] && [ -x target/bench-tools/bin/unleash-edge ]; then
  UNLEASH=target/bench-tools/bin/unleash-edge
elif [ -z "$UNLEASH" ] && [ "${INSTALL_UNLEASH:-0}" = 1 ]; then
  # About 17 minutes on 2 cores; kept in target/bench-tools for the next run.
  cargo install unleash-edge --locked --root target/bench-tools >/dev/null
  UNLEASH=target/bench-tools/bin/unleash-edge
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ready() { # url pid log
  for _ in $(seq 1 600); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
    sleep 0.1
  done
  echo "not ready: $1" >&2
  exit 1
}

if [ -z "${STAGEGATE_BENCH_PG:-}" ]; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PGPORT=$(free_port)
  PGDATA=$(mktemp -d /tmp/stagegate-bench-pg.XXXXXX)
  chown postgres "$PGDATA"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
    -o "-p $PGPORT -k $PGDATA -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  STAGEGATE_BENCH_PG="postgres://postgres@127.0.0.1:$PGPORT/postgres"
fi
DB="sg_ofrep_$$"
psql "$STAGEGATE_BENCH_PG" -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
REG="${STAGEGATE_BENCH_PG%/*}/$DB"
KEY="$WORK/registry.key"

# The worked example to production on its own dates, then people's keys and tokens.
cp -r examples/finance-invoice-recon "$WORK/agent"
cp examples/allowed_signers "$WORK/allowed_signers"
at() { STAGEGATE_NOW="$1T09:00:00Z" "$SG" "${@:2}" --registry "$REG" --registry-key "$KEY"; }
at 2026-05-12 pilot start "$WORK/agent" --as-of 2026-05-12 >/dev/null
at 2026-06-12 review "$WORK/agent" --as-of 2026-06-12 >/dev/null
at 2026-06-13 promote "$AGENT" --as-of 2026-06-13 --allowed-signers "$WORK/allowed_signers" >/dev/null
for who in hannah mike; do ssh-keygen -q -t ed25519 -N '' -f "$WORK/$who"; done
echo "\"Hannah Okafor\" $(cut -d' ' -f1,2 "$WORK/hannah.pub")" >>"$WORK/allowed_signers"
echo "\"Mike Chen\" $(cut -d' ' -f1,2 "$WORK/mike.pub")" >>"$WORK/allowed_signers"
tok() { "$SG" token create --person "$1" --roles "$2" --registry "$REG" --registry-key "$KEY" 2>/dev/null; }
SPONSOR=$(tok "Hannah Okafor" sponsor)
ONCALL=$(tok "mike.chen@acme.example" on-call)
CI=$(tok "ci-bot" ci)
CLIENT=$(tok "checkout-service" auditor)
printf 'ofrep: { rate_per_second: 100000000, poll_ms: 1000 }\n' >"$WORK/config.yaml"

PA=$(free_port); PB=$(free_port)
A="http://127.0.0.1:$PA"; B="http://127.0.0.1:$PB"
for p in "$PA" "$PB"; do
  "$SG" serve --config "$WORK/config.yaml" --registry "$REG" --registry-key "$KEY" \
    --allowed-signers "$WORK/allowed_signers" --listen "127.0.0.1:$p" >"$WORK/serve-$p.log" 2>&1 &
  PIDS+=($!)
  wait_ready "http://127.0.0.1:$p/readyz" "$!" "$WORK/serve-$p.log"
done
cat >"$WORK/plan.yaml" <<EOF
rollout:
  flag: $FLAG
  phases:
    - { name: Half, traffic_pct: 50, min_duration: 2 weeks }
    - { name: Everyone, traffic_pct: 100, min_duration: 2 weeks }
  triggers:
    - id: tokens_vs_control
      metric: { kind: mean, of: [{ field: gen_ai.usage.output_tokens }] }
      comparator: ">"
      threshold: 20
      relative_to: control
      on_fail: zero
EOF
"$SG" rollout start "$AGENT" --plan "$WORK/plan.yaml" --reason "bench" --as-of 2026-06-15 \
  --key "$WORK/hannah" --server "$A" --token "$SPONSOR" >/dev/null
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; stagegate $(git rev-parse --short HEAD)"

# --- 1. single evaluations -----------------------------------------------------------------
if [[ " $PARTS " == *" eval "* ]]; then
BODY='{"context":{"targetingKey":"user-42"}}'
oha_json() { oha -z "$DURATION" -c "$CONNS" --no-tui --output-format json "$@"; }
# The servers and what oha asks each (one array per label).
stagegate_ARGS=(-m POST -H "content-type: application/json" -H "Authorization: Bearer $CLIENT"
  -d "$BODY" "$A/ofrep/v1/evaluate/flags/$FLAG")
curl -fs -X POST -H "content-type: application/json" -H "Authorization: Bearer $CLIENT" -d "$BODY" \
  "$A/ofrep/v1/evaluate/flags/$FLAG" >"$WORK/answer.json"
echo "                answer: $(cat "$WORK/answer.json")"
LABELS=(stagegate bare_hyper)
PH=$(free_port)
"$EX/bare_hyper" "127.0.0.1:$PH" 2>/dev/null &
PIDS+=($!)
sleep 0.5
bare_hyper_ARGS=(-m POST -H "content-type: application/json" -d "$BODY" "http://127.0.0.1:$PH/")
if [ -n "$UNLEASH" ]; then
  cat >"$WORK/features.json" <<EOF
{"version": 1, "features": [{"name": "$FLAG", "enabled": true, "strategies": [
  {"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "$FLAG"}}]}]}
EOF
  PU=$(free_port)
  "$UNLEASH" --port "$PU" --interface 127.0.0.1 offline --bootstrap-file "$WORK/features.json" \
    --client-tokens "*:development.bench" --frontend-tokens "*:development.bench" >"$WORK/unleash.log" 2>&1 &
  PIDS+=($!)
  sleep 2
  curl -fs -H "Authorization: *:development.bench" "http://127.0.0.1:$PU/api/frontend/features/$FLAG?userId=user-42" \
    >"$WORK/unleash-answer.json" || { echo "Unleash Edge did not answer:" >&2; cat "$WORK/unleash.log" >&2; exit 1; }
  echo "                Unleash Edge answer: $(cat "$WORK/unleash-answer.json")"
  unleash_edge_ARGS=(-H "Authorization: *:development.bench"
    "http://127.0.0.1:$PU/api/frontend/features/$FLAG?userId=user-42")
  LABELS+=(unleash_edge)
else
  echo "  unleash-edge: not installed (INSTALL_UNLEASH=1 installs it with cargo install)"
fi
# Rounds interleave the servers (round r: each one at its most, then at half that), so that
# a slow minute of the shared machine falls on all of them alike.
for label in "${LABELS[@]}"; do
  declare -n args="${label}_ARGS"
  oha -z 2s -c "$CONNS" --no-tui "${args[@]}" >/dev/null # warm-up
done
for r in $(seq 1 "$ROUNDS"); do
  for label in "${LABELS[@]}"; do
    declare -n args="${label}_ARGS"
    oha_json "${args[@]}" >"$WORK/$label-max-$r.json"
    rps=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["summary"]["requestsPerSec"]))' "$WORK/$label-max-$r.json")
    oha_json -q $((rps / 2)) "${args[@]}" >"$WORK/$label-half-$r.json"
  done
done
for label in "${LABELS[@]}"; do
  python3 - "$label" "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
label, work, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
mx = [json.load(open(f"{work}/{label}-max-{r}.json")) for r in range(1, rounds + 1)]
hf = [json.load(open(f"{work}/{label}-half-{r}.json")) for r in range(1, rounds + 1)]
for d in mx + hf:
    if set(d["statusCodeDistribution"]) != {"200"}:
        sys.exit(f"{label}: not every request was answered 200: {d['statusCodeDistribution']}")
rps = statistics.median(d["summary"]["requestsPerSec"] for d in mx)
p50 = statistics.median(d["latencyPercentiles"]["p50"] * 1000 for d in hf)
p99 = statistics.median(d["latencyPercentiles"]["p99"] * 1000 for d in hf)
name = label.replace("_", "-")
print(f"{name:>14}: {rps:9.0f} evaluations/s at most; at half that: p50 {p50:.3f} ms, p99 {p99:.3f} ms  (median of {rounds})")
print(f"{'':>14}  by round: " + ", ".join(
    f"{d['summary']['requestsPerSec']:.0f}/s p99 {h['latencyPercentiles']['p99'] * 1000:.3f} ms" for d, h in zip(mx, hf)))
json.dump({"rps": rps, "p50": p50, "p99": p99}, open(f"{work}/{label}.result", "w"))
PY
done
python3 - "$WORK" <<'PY'
import json, os, sys
w = sys.argv[1]
r = {n: json.load(open(f"{w}/{n}.result")) for n in ("stagegate", "bare_hyper", "unleash_edge") if os.path.exists(f"{w}/{n}.result")}
s = r["stagegate"]
print(f"  ratios: stagegate / bare hyper {s['rps'] / r['bare_hyper']['rps']:.2f}x (target >= 0.7x); p99 at half load {s['p99']:.3f} ms (target < 1 ms)")
if "unleash_edge" in r:
    print(f"          stagegate / Unleash Edge {s['rps'] / r['unleash_edge']['rps']:.2f}x (target >= 1.0x)")
PY
fi

# --- 2. time to kill, STREAMS streams over both replicas ----------------------------------
statement() { # act reason token
  curl -fs -G "$A/api/v1/agents/$AGENT/rollout/statement" -H "Authorization: Bearer $3" \
    --data-urlencode "act=$1" --data-urlencode "reason=$2" --data-urlencode "date=2026-06-15"
}
signed_body() { # act reason token key [drill]
  statement "$1" "$2" "$3" >"$WORK/statement"
  rm -f "$WORK/statement.sig"
  ssh-keygen -q -Y sign -n stagegate -f "$4" "$WORK/statement" 2>/dev/null
  python3 -c 'import json,sys; print(json.dumps({"reason": sys.argv[1], "date": "2026-06-15", "signature": open(sys.argv[2]).read()}))' \
    "$2" "$WORK/statement.sig"
}
if [[ " $PARTS " == *" kill "* ]]; then
for r in $(seq 1 "$ROUNDS"); do
  signed_body kill "bench round $r" "$ONCALL" "$WORK/mike" >"$WORK/kill.json"
  "$EX/sse_watch" "$STREAMS" "$CLIENT" "$A/api/v1/agents/$AGENT/rollout/kill" "$ONCALL" "$WORK/kill.json" "$A" "$B" \
    | tee "$WORK/kill-$r.json" | sed "s/^/  time to kill, round $r: /"
  signed_body restore "bench round $r" "$ONCALL" "$WORK/mike" >"$WORK/restore.json"
  curl -fs -X POST -H "content-type: application/json" -H "Authorization: Bearer $ONCALL" \
    -d @"$WORK/restore.json" "$A/api/v1/agents/$AGENT/rollout/restore" >/dev/null
done
python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
d = [json.load(open(f"{sys.argv[1]}/kill-{r}.json")) for r in range(1, int(sys.argv[2]) + 1)]
assert all(x["received"] == x["streams"] and x["post_status"] == 200 for x in d), d
p99 = statistics.median(x["p99_ms"] for x in d)
print(f"  time to kill: median p99 {p99:.1f} ms over {len(d)} rounds of {d[0]['streams']} streams on 2 replicas (target < 100 ms)")
PY
fi

# --- 3. reaction time: a trigger-crossing batch to the rollback heard everywhere ----------
spans() { # n factor seed → an OTLP/JSON export of n spans, half treatment (output tokens × factor)
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys, time
n, factor, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
def span(i):
    on = (i + seed) % 2 == 0
    tokens = (100 + (i * 37 + seed) % 91) * (factor if on else 1)
    attrs = [("gen_ai.agent.id", {"stringValue": "agent-finance-invoice-recon"}),
             ("gen_ai.usage.output_tokens", {"intValue": str(int(tokens))}),
             ("feature_flag.key", {"stringValue": "finance-invoice-recon-enabled"}),
             ("feature_flag.result.variant", {"stringValue": "on" if on else "off"})]
    return {"name": "chat", "endTimeUnixNano": str(time.time_ns()),
            "attributes": [{"key": k, "value": v} for k, v in attrs]}
print(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span(i) for i in range(n)]}]}]}))
PY
}
if [[ " $PARTS " == *" react "* ]]; then
for r in $(seq 1 "$ROUNDS"); do
  # A fresh start at 50% for each round: restart the rollout after the previous round's rollback.
  if [ "$r" -gt 1 ]; then
    signed_body resume "bench round $r" "$SPONSOR" "$WORK/hannah" >"$WORK/resume.json"
    curl -fs -X POST -H "content-type: application/json" -H "Authorization: Bearer $SPONSOR" \
      -d @"$WORK/resume.json" "$A/api/v1/agents/$AGENT/rollout/resume" >/dev/null
  fi
  spans 400 1 "$r" >"$WORK/healthy.json"
  curl -fs -X POST -H "content-type: application/json" -H "Authorization: Bearer $CI" -d @"$WORK/healthy.json" "$A/v1/traces" >/dev/null
  spans 2000 2 "$r" >"$WORK/crossing.json"
  "$EX/sse_watch" "$STREAMS" "$CLIENT" "$A/v1/traces" "$CI" "$WORK/crossing.json" "$A" "$B" \
    | tee "$WORK/react-$r.json" | sed "s/^/  reaction, round $r: /"
  curl -fs -H "Authorization: Bearer $CI" "$A/api/v1/agents/$AGENT/rollout" \
    | python3 -c 'import json,sys; v=json.load(sys.stdin); r=v["rollout"]; assert r["status"]["status"]=="paused" and v["exposure"]["kind"]=="nobody", v; print("    rolled back:", r["status"]["reason"])'
done
python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
d = [json.load(open(f"{sys.argv[1]}/react-{r}.json")) for r in range(1, int(sys.argv[2]) + 1)]
assert all(x["received"] == x["streams"] and x["post_status"] == 200 for x in d), d
post = statistics.median(x["post_ms"] for x in d)
mx = statistics.median(x["max_ms"] for x in d)
print(f"  reaction: the crossing batch's call (rollback recorded in it) median {post:.1f} ms; every stream on both replicas told within median {mx:.1f} ms (target < 1 s)")
PY
fi
