#!/usr/bin/env bash
# The telemetry benchmark: 10M events as CSV and JSON Lines, evaluated by stagegate, DuckDB
# and Polars in the same run. Prints times, peak memory and ratios; fails if any number
# differs. Usage: bash bench/run.sh   (ROWS=1000000 for a quick run)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-10000000}
DATA=${DATA:-bench/data}
cargo build --release -q -p stagegate
cargo build --release -q -p stagegate-telemetry --example gen_events
if [ "$(cat "$DATA/rows" 2>/dev/null)" != "$ROWS" ]; then
  target/release/examples/gen_events "$DATA" "$ROWS"
  echo "$ROWS" > "$DATA/rows"
fi
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
fi
bench/.venv/bin/pip install -q duckdb==2.0.0 polars==2.1.0
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}')"
bench/.venv/bin/python bench/compare.py --data "$DATA" --stagegate target/release/stagegate
