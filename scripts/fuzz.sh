#!/usr/bin/env bash
# Runs every Fuzz target of the given modules for the given time each.
set -euo pipefail
t=$1; shift
for m in "$@"; do
  (cd "$m"
   for pkg in $(go list ./...); do
     dir=$(go list -f '{{.Dir}}' "$pkg")
     for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
       echo "== fuzz $pkg $f ($t)"
       go test -run="^$" -fuzz="^${f}\$" -fuzztime="$t" -fuzzminimizetime=1s "$pkg" 2>&1 | tail -n 3
     done
   done)
done
