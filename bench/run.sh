#!/usr/bin/env bash
# bench/run.sh: the benchmarks behind `make bench`, each against its baseline in
# the same run, then the table (bench/report.go), bench/results.json and the
# comparison with bench/baseline.json. Sizes are chosen so the whole run stays
# within about ten minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
raw=bench/raw.txt
: > "$raw"
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)
bench() { # dir pattern benchtime
	echo "bench $1 $2 ($3)" >&2
	(cd "$1" && go test -run='^$' -bench="$2" -benchmem -benchtime="$3" -timeout=20m .) | tee -a "$raw" | grep '^Benchmark' >&2 || true
}
bench pkg/bus '^BenchmarkConsume$' 5000x
bench services/intake '^BenchmarkConsumer$' 1000x
bench services/intake '^BenchmarkConsumerReplicas$' 1000x
bench services/review '^BenchmarkConsumer$' 500x
bench services/tracker '^BenchmarkConsumer$' 500x
bench services/report '^BenchmarkConsumer$' 500x
bench services/report/pdf '^BenchmarkRender' 20x
bench cmd/afteraction '^BenchmarkCloseToReview$' 1x
bench cmd/afteraction '^BenchmarkImport' 1x
bench cmd/afteraction '^BenchmarkServiceRSS$' 1x
GOWORK=off go run bench/report.go -in "$raw" -out bench/results.json -baseline bench/baseline.json -load-before "$load_before"
