#!/usr/bin/env bash
# Runs `make test` RUNS times in a row (default 5) beside two CPU-burning
# processes, as CI's busy 2-core machine may be, and stops at the first
# failure. Prints each run's wall time. Usage: scripts/test-under-load.sh [RUNS]
set -euo pipefail
runs=${1:-5}
burn() { while :; do :; done; }
burn & b1=$!
burn & b2=$!
trap 'kill $b1 $b2 2>/dev/null || true' EXIT
for i in $(seq "$runs"); do
	start=$(date +%s)
	if ! make test >"var/test-under-load.$i.log" 2>&1; then
		echo "run $i/$runs: FAILED after $(($(date +%s) - start)) s (var/test-under-load.$i.log)"
		exit 1
	fi
	echo "run $i/$runs: passed in $(($(date +%s) - start)) s"
done
echo "$runs passed, 0 failed"
