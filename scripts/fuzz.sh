#!/usr/bin/env bash
# Runs every Fuzz target of the given modules for the given time each. A
# crashing input (written to testdata/fuzz/<target>/) fails the run with the
# fuzzer's full output. A failure that leaves no crashing input is the fuzzing
# engine itself (a worker killed at the deadline, say): it is shown and the
# target is run once more, and fails the run only if it fails again.
set -uo pipefail
t=$1; shift
status=0
for m in "$@"; do
  cd "$m" || exit 1
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
      echo "== fuzz $pkg $f ($t)"
      log=$(mktemp)
      for attempt in 1 2; do
        before=$(ls "$dir/testdata/fuzz/$f" 2>/dev/null | wc -l)
        if go test -run='^$' -fuzz="^${f}\$" -fuzztime="$t" -fuzzminimizetime=1s "$pkg" >"$log" 2>&1; then
          tail -n 2 "$log"
          break
        fi
        after=$(ls "$dir/testdata/fuzz/$f" 2>/dev/null | wc -l)
        sed 's/^/   /' "$log" | tail -n 60
        if [ "$after" -gt "$before" ]; then
          echo "   crashing input saved in $dir/testdata/fuzz/$f"
          status=1
          break
        fi
        if [ $attempt -eq 2 ]; then
          status=1
        else
          echo "   the fuzzer failed without a crashing input; running $f once more"
        fi
      done
      rm -f "$log"
    done
  done
done
exit $status
