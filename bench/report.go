// Command report turns the output of the benchmarks `make bench` runs into
// its table: each figure beside its baseline from the same run and their
// ratio, with the machine's core count and load. It writes the same as JSON
// and compares the ratios with a committed baseline, flagging regressions
// over 20%. Run it with GOWORK=off: it needs only the standard library.
//
//	GOWORK=off go run bench/report.go -in bench/raw.txt -out bench/results.json -baseline bench/baseline.json
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one row of the table: the metric of Real against that of Base,
// both benchmarks of package Pkg.
type figure struct {
	Name, Pkg, Base, Real, Metric string
	// HigherIsBetter: a rate (ratio above 1 is a gain); else a cost (ratio is the extra cost).
	HigherIsBetter bool
}

var figures = []figure{
	{"exactly-once consumption, batch 500 vs one tx per message", "pkg/bus", "BenchmarkConsume/per-message", "BenchmarkConsume/batched", "msgs/s", true},
	{"intake end to end, batch 500 vs batch 1", "services/intake", "BenchmarkConsumer/batch=1", "BenchmarkConsumer/batch=500", "incidents/s", true},
	{"intake, 2 replicas vs 1 on one durable consumer", "services/intake", "BenchmarkConsumerReplicas/replicas=1", "BenchmarkConsumerReplicas/replicas=2", "incidents/s", true},
	{"review consumer (opens reviews), batch 64 vs 1", "services/review", "BenchmarkConsumer/batch=1", "BenchmarkConsumer/batch=64", "msgs/s", true},
	{"tracker consumer (creates actions), batch 64 vs 1", "services/tracker", "BenchmarkConsumer/batch=1", "BenchmarkConsumer/batch=64", "msgs/s", true},
	{"report read model consumer, batch 64 vs 1", "services/report", "BenchmarkConsumer/batch=1", "BenchmarkConsumer/batch=64", "msgs/s", true},
	{"report render time, embedded fonts vs core font", "services/report/pdf", "BenchmarkRenderCoreFont", "BenchmarkRender", "ns/op", false},
	{"report render allocation, embedded fonts vs core font", "services/report/pdf", "BenchmarkRenderCoreFont", "BenchmarkRender", "B/op", false},
	{"report render time, font subsets not cached, vs core font", "services/report/pdf", "BenchmarkRenderCoreFont", "BenchmarkRenderDistinct", "ns/op", false},
	{"report render allocation, font subsets not cached, vs core font", "services/report/pdf", "BenchmarkRenderCoreFont", "BenchmarkRenderDistinct", "B/op", false},
	{"close → review opened p50, 500/s vs 100/s", "cmd/afteraction", "BenchmarkCloseToReview/rate=100", "BenchmarkCloseToReview/rate=500", "p50-ms", false},
	{"close → review opened p99, 500/s vs 100/s (goal: at 500/s)", "cmd/afteraction", "BenchmarkCloseToReview/rate=100", "BenchmarkCloseToReview/rate=500", "p99-ms", false},
	{"import of 100,000 records vs 1,000 one at a time", "cmd/afteraction", "BenchmarkImport/window=1", "BenchmarkImportBackfill", "records/s", true},
	{"import: projected seconds for 1 M records", "cmd/afteraction", "BenchmarkImport/window=1", "BenchmarkImportBackfill", "s-per-1M", false},
	{"intake RSS after the load vs idle", "cmd/afteraction", "BenchmarkServiceRSS/intake/idle", "BenchmarkServiceRSS/intake/loaded", "rss-MiB", false},
	{"review RSS after the load vs idle", "cmd/afteraction", "BenchmarkServiceRSS/review/idle", "BenchmarkServiceRSS/review/loaded", "rss-MiB", false},
	{"report RSS after the load vs idle", "cmd/afteraction", "BenchmarkServiceRSS/report/idle", "BenchmarkServiceRSS/report/loaded", "rss-MiB", false},
	{"tracker RSS after the load vs idle", "cmd/afteraction", "BenchmarkServiceRSS/tracker/idle", "BenchmarkServiceRSS/tracker/loaded", "rss-MiB", false},
	{"notify RSS after the load vs idle", "cmd/afteraction", "BenchmarkServiceRSS/notify/idle", "BenchmarkServiceRSS/notify/loaded", "rss-MiB", false},
}

// goals are the absolute limits some metrics have besides their ratio: a
// result at or over one is flagged in the table and results.json.
var goals = map[string]float64{
	"rss-MiB":  150, // each service's resident set after the load
	"s-per-1M": 180, // 1,000,000 incidents back-filled in under 3 minutes
	"p99-ms":   50,  // closed → review opened at 500 incidents/s
}

// floors are the absolute minimums some rates have besides their ratio, by
// figure name: a result under one is flagged.
var floors = map[string]float64{
	"intake end to end, batch 500 vs batch 1":           10000, // intake at 10 k incidents/s
	"review consumer (opens reviews), batch 64 vs 1":    2000,  // every consumer at 2 k events/s
	"tracker consumer (creates actions), batch 64 vs 1": 2000,
	"report read model consumer, batch 64 vs 1":         2000,
}

// Row is one figure as measured.
type Row struct {
	Name       string  `json:"name"`
	Metric     string  `json:"metric"`
	Baseline   float64 `json:"baseline"`
	Result     float64 `json:"result"`
	Ratio      float64 `json:"ratio"`
	Regression bool    `json:"regression,omitempty"`
	Goal       float64 `json:"goal,omitempty"`
	OverGoal   bool    `json:"over_goal,omitempty"`
	Floor      float64 `json:"floor,omitempty"`
	UnderFloor bool    `json:"under_floor,omitempty"`
	Missing    bool    `json:"missing,omitempty"`
}

// Results is what results.json holds.
type Results struct {
	Date       time.Time `json:"date"`
	Cores      int       `json:"cores"`
	OS         string    `json:"os"`
	LoadBefore string    `json:"load_before,omitempty"`
	LoadAfter  string    `json:"load_after,omitempty"`
	Rows       []Row     `json:"figures"`
}

func main() {
	in := flag.String("in", "bench/raw.txt", "go test -bench output")
	out := flag.String("out", "bench/results.json", "where to write the results")
	baseline := flag.String("baseline", "bench/baseline.json", "committed results to compare with")
	loadBefore := flag.String("load-before", "", "load average when the run started")
	flag.Parse()
	if err := run(*in, *out, *baseline, *loadBefore); err != nil {
		fmt.Fprintln(os.Stderr, "bench report:", err)
		os.Exit(1)
	}
}

func run(in, out, baselinePath, loadBefore string) error {
	metrics, err := parse(in)
	if err != nil {
		return err
	}
	res := Results{Date: time.Now().UTC().Truncate(time.Second), Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		LoadBefore: loadBefore, LoadAfter: loadavg()}
	var base *Results
	if b, err := os.ReadFile(baselinePath); err == nil {
		base = new(Results)
		if err := json.Unmarshal(b, base); err != nil {
			return fmt.Errorf("%s: %w", baselinePath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	regressions := 0
	for _, f := range figures {
		r := Row{Name: f.Name, Metric: f.Metric}
		b, okB := metrics[f.Pkg+" "+f.Base][f.Metric]
		v, okR := metrics[f.Pkg+" "+f.Real][f.Metric]
		r.Baseline, r.Result, r.Missing = b, v, !okB || !okR || b == 0
		if !r.Missing {
			r.Ratio = v / b
		}
		if prev := base.find(f.Name); base != nil && prev != nil && !r.Missing && !prev.Missing {
			if f.HigherIsBetter {
				r.Regression = r.Ratio < prev.Ratio*0.8
			} else {
				r.Regression = r.Ratio > prev.Ratio*1.2
			}
		}
		if r.Regression {
			regressions++
		}
		if g, ok := goals[f.Metric]; ok {
			r.Goal, r.OverGoal = g, !r.Missing && r.Result >= g
		}
		if g, ok := floors[f.Name]; ok {
			r.Floor, r.UnderFloor = g, !r.Missing && r.Result < g
		}
		res.Rows = append(res.Rows, r)
	}
	printTable(res, base)
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if regressions > 0 {
		return fmt.Errorf("%d figures regressed by more than 20%% against %s", regressions, baselinePath)
	}
	return nil
}

func (r *Results) find(name string) *Row {
	if r == nil {
		return nil
	}
	for i := range r.Rows {
		if r.Rows[i].Name == name {
			return &r.Rows[i]
		}
	}
	return nil
}

func printTable(res Results, base *Results) {
	fmt.Printf("\n%d cores (%s), load average before %s, after %s\n\n", res.Cores, res.OS, orDash(res.LoadBefore), orDash(res.LoadAfter))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "figure\tbaseline\tresult\tratio\tcommitted ratio\t")
	for _, r := range res.Rows {
		if r.Missing {
			fmt.Fprintf(w, "%s\t-\t-\t(not measured)\t\t\n", r.Name)
			continue
		}
		committed := "-"
		if prev := base.find(r.Name); prev != nil && !prev.Missing {
			committed = fmt.Sprintf("%.2f×", prev.Ratio)
		}
		flag := ""
		if r.Regression {
			flag = "  REGRESSION >20%"
		}
		if r.OverGoal {
			flag += "  OVER THE GOAL (< " + human(r.Goal, r.Metric) + ")"
		}
		if r.UnderFloor {
			flag += "  UNDER THE GOAL (≥ " + human(r.Floor, r.Metric) + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.2f×\t%s%s\t\n", r.Name, human(r.Baseline, r.Metric), human(r.Result, r.Metric), r.Ratio, committed, flag)
	}
	w.Flush()
	fmt.Println()
}

func human(v float64, unit string) string {
	switch unit {
	case "ns/op":
		return time.Duration(v).Round(10 * time.Microsecond).String()
	case "p50-ms", "p99-ms":
		return fmt.Sprintf("%.0f ms", v)
	case "B/op":
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case "rss-MiB":
		return fmt.Sprintf("%.0f MiB", v)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

var procs = regexp.MustCompile(`-\d+$`)

// parse reads go test -bench output: "pkg: <import path>" lines name the
// package of the benchmark lines that follow. It returns the metrics of each
// "<package dir> <benchmark>", e.g. "services/review BenchmarkConsumer/batch=1".
func parse(path string) (map[string]map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]map[string]float64{}
	pkg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(p), "github.com/afteraction/afteraction/")
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				break
			}
			m[fields[i+1]] = v
		}
		out[pkg+" "+procs.ReplaceAllString(fields[0], "")] = m
	}
	return out, sc.Err()
}
