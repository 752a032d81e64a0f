#!/usr/bin/env bash
# Cross-checks stagegate's statistics against scipy and statsmodels: installs them from PyPI
# into target/crosscheck-py (pinned in requirements.txt), builds the binary, then
#  - reviews at least 60 random data sets (a new seed each run, printed; pass a seed to repeat)
#    and compares every value, bound, coverage, p-value and verdict (crosscheck.py);
#  - checks the contact-center examples against their reference values (example_reference.py).
# Usage: bash tools/crosscheck/run.sh [SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
DEPS=target/crosscheck-py
if ! PYTHONPATH=$DEPS "$PY" -c 'import scipy, statsmodels, numpy, mpmath, yaml' 2>/dev/null; then
  echo "installing scipy and statsmodels into $DEPS" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check --target "$DEPS" -r tools/crosscheck/requirements.txt
fi
cargo build --quiet -p stagegate
export PYTHONPATH=$DEPS
SEED_ARGS=()
if [ $# -ge 1 ]; then SEED_ARGS=(--seed "$1"); fi
"$PY" tools/crosscheck/crosscheck.py --stagegate target/debug/stagegate --datasets 60 "${SEED_ARGS[@]}"
"$PY" tools/crosscheck/example_reference.py --check --stagegate target/debug/stagegate
