#!/usr/bin/env bash
# Runs `go test` in every module given after "--", prints per module how many
# tests passed, failed and were skipped (and which were skipped), and fails if
# any module failed or ran no tests at all.
set -uo pipefail
flags=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do flags+=("$1"); shift; done
shift
root=$(pwd)
status=0
summary=()
for m in "$@"; do
  name=${m#"$root"/}
  log=$(mktemp)
  echo "== test $name"
  (cd "$m" && go test "${flags[@]}" -v ./... >"$log" 2>&1)
  rc=$?
  pass=$(grep -cE '^\s*--- PASS' "$log")
  fail=$(grep -cE '^\s*--- FAIL' "$log")
  skip=$(grep -cE '^\s*--- SKIP' "$log")
  grep -E '^(ok|FAIL|\?|---)\s' "$log" | grep -v '^--- PASS' | sed 's/^/   /'
  if [ "$skip" -gt 0 ]; then grep -A1 -E '^\s*--- SKIP' "$log" | sed 's/^/   skipped: /'; fi
  if [ $rc -ne 0 ]; then
    status=1
    echo "   --- output of failing tests in $name:"
    grep -vE '^\s*(=== (RUN|PAUSE|CONT|NAME)|--- PASS)' "$log" | tail -n 200 | sed 's/^/   /'
  fi
  if [ "$pass" -eq 0 ] && [ $rc -eq 0 ]; then
    echo "   no tests ran in $name"; status=1
  fi
  summary+=("$(printf '%-22s %4d passed %3d failed %3d skipped' "$name" "$pass" "$fail" "$skip")")
  rm -f "$log"
done
echo "== summary (tests and subtests per module)"
printf '   %s\n' "${summary[@]}"
exit $status
