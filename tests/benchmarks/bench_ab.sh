#!/bin/sh
# Before/after in one interleaved run: this checkout against REV (default HEAD~1).
# Usage: tests/benchmarks/bench_ab.sh [REV] [ROUNDS]   (from the checkout's root, after make install-dev)
# REV is exported to a temp folder and run with the same venv, its code first on PYTHONPATH.
set -eu
REV=${1:-HEAD~1}
ROUNDS=${2:-3}
PY=$(pwd)/.venv/bin/python
BASE=$(mktemp -d)
trap 'rm -rf "$BASE"' EXIT
git archive "$REV" | tar -x -C "$BASE"
i=1
while [ "$i" -le "$ROUNDS" ]; do
  echo "== round $i after: runner";  $PY tests/benchmarks/bench_runner.py
  echo "== round $i before: runner"; (cd "$BASE" && PYTHONPATH="$BASE" $PY tests/benchmarks/bench_runner.py)
  echo "== round $i after: apply";   $PY tests/benchmarks/bench_apply.py --repeats 5
  echo "== round $i before: apply";  (cd "$BASE" && PYTHONPATH="$BASE" $PY tests/benchmarks/bench_apply.py --repeats 5)
  i=$((i + 1))
done
