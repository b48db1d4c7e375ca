package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/services/notify/mailpit"
)

// Load of BenchmarkServiceRSS: rich incidents sent at once, and full reviews
// (answers, sign-off, report PDF, action items, mail) run at the same time.
const (
	rssIncidents = 1000
	rssScenarios = 3
)

// BenchmarkServiceRSS measures the memory each service holds as deployed:
// every service runs as its own process from its own binary
// (services/<svc>/cmd/<svc>), against an embedded NATS (fsync always) and one
// Postgres. It reports each process's resident set (VmRSS, "rss-MiB") idle
// after start-up and after the load, with the peak (VmHWM, "peak-MiB"), as
// the sub-benchmarks <service>/idle and <service>/loaded. The goal is below
// 150 MiB each. b.N is ignored: the load is fixed.
func BenchmarkServiceRSS(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bins := buildServices(b)
	dir := b.TempDir()
	ns, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: filepath.Join(dir, "nats"), SyncAlways: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Shutdown()
	s := &Stack{NATSURL: ns.ClientURL(), URLs: map[string]string{}, AdminToken: randomToken(), ConsolePassword: randomToken()}
	dsn := pgtest.NewDatabase(b)
	procs := startServiceProcs(ctx, b, s, bins, dsn, dir)
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	time.Sleep(2 * time.Second) // start-up work (migrations, topology) settles
	idle := map[string]memory{}
	for _, p := range procs {
		idle[p.name] = readMemory(b, p)
	}
	loadServices(ctx, b, s, dsn)
	for _, p := range procs {
		loaded := readMemory(b, p)
		b.Run(p.name+"/idle", func(b *testing.B) { idle[p.name].report(b) })
		b.Run(p.name+"/loaded", func(b *testing.B) { loaded.report(b) })
	}
}

// buildServices builds the five service binaries, as deployed, into a
// temporary directory and returns their paths by service.
func buildServices(b *testing.B) map[string]string {
	b.Helper()
	dir := b.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	bins := map[string]string{}
	for _, name := range serviceNames {
		args = append(args, "./services/"+name+"/cmd/"+name)
		bins[name] = filepath.Join(dir, name)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build the services: %v\n%s", err, out)
	}
	return bins
}

// startServiceProcs starts every service from its binary with the
// environment StartStack gives them, fills s.URLs, and waits until each
// answers /readyz.
func startServiceProcs(ctx context.Context, b *testing.B, s *Stack, bins map[string]string, dsn, dir string) []*serviceProc {
	b.Helper()
	accounts, err := writeConsoleAccounts(filepath.Join(dir, "console"), s.ConsolePassword)
	if err != nil {
		b.Fatal(err)
	}
	ports := map[string]int{}
	for _, name := range serviceNames {
		if ports[name], err = freePort(); err != nil {
			b.Fatal(err)
		}
		s.URLs[name] = fmt.Sprintf("http://127.0.0.1:%d", ports[name])
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + dsn, "NATS_URL=" + s.NATSURL, "API_TOKENS=admin:" + s.AdminToken,
		"REVIEW_INVITE_SECRET=" + randomToken(), "REPORT_DEV_SIGNING_KEY=true", "STREAM_REPLICAS=1",
		"LOG_LEVEL=warn", "REVIEW_PUBLIC_URL=" + s.URLs["review"], "REVIEW_CONSOLE_ACCOUNTS_FILE=" + accounts}
	if err := os.MkdirAll(filepath.Join(dir, "mailpit"), 0o755); err != nil {
		b.Fatal(err)
	}
	mp, err := mailpit.Start(ctx, mailpit.Options{Dir: filepath.Join(dir, "mailpit")})
	switch {
	case errors.Is(err, mailpit.ErrNotInstalled):
		b.Logf("%v: notify runs with mail disabled", err)
	case err != nil:
		b.Fatal(err)
	default:
		b.Cleanup(mp.Stop)
		env = append(env, "NOTIFY_SMTP_HOST=127.0.0.1", fmt.Sprintf("NOTIFY_SMTP_PORT=%d", mp.SMTPPort), "NOTIFY_SMTP_TLS=none")
	}
	var procs []*serviceProc
	for _, name := range serviceNames {
		p := &serviceProc{name: name, exe: bins[name], addr: strings.TrimPrefix(s.URLs[name], "http://"),
			logPath: filepath.Join(dir, name+".log")}
		p.env = append(append([]string{}, env...), fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", ports[name]))
		if err := p.start(); err != nil {
			b.Fatal(err)
		}
		procs = append(procs, p)
	}
	h := harness{procs: procs}
	if err := h.waitReady(ctx); err != nil {
		b.Fatal(err)
	}
	return procs
}

// loadServices sends rssIncidents closed incidents at once and runs
// rssScenarios complete reviews meanwhile, then waits until every incident
// has its review.
func loadServices(ctx context.Context, b *testing.B, s *Stack, dsn string) {
	b.Helper()
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		b.Fatal(err)
	}
	g, gctx := errgroup.WithContext(ctx)
	for i := range rssScenarios {
		g.Go(func() error {
			_, err := runScenario(gctx, s, demoIncidentForTest(b, fmt.Sprintf("RSS-SCENARIO-%d", i)), zap.NewNop())
			return err
		})
	}
	inc := demoIncidentForTest(b, "")
	for i := range rssIncidents {
		inc.ExternalID = fmt.Sprintf("RSS-%d", i)
		env, err := events.New(events.TypeIncidentClosed, "load", inc.ExternalID, inc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(bus.NewMsg(events.SubjectIncidentClosedPrefix+inc.Source, env), jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatal(ctx.Err())
	}
	if err := g.Wait(); err != nil {
		b.Fatalf("review scenario under load: %v", err)
	}
	waitForReviews(ctx, b, dsn, rssIncidents+rssScenarios)
}

// waitForReviews waits until the review schema of dsn holds n reviews.
func waitForReviews(ctx context.Context, b *testing.B, dsn string, n int) {
	b.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	for {
		var got int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM review.reviews`).Scan(&got)
		if err == nil && got >= n {
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%d of %d reviews opened (%v)", got, n, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// memory is a process's resident set now and at its peak, in MiB.
type memory struct{ rss, peak float64 }

func (m memory) report(b *testing.B) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(m.rss, "rss-MiB")
	b.ReportMetric(m.peak, "peak-MiB")
}

// readMemory reads VmRSS and VmHWM of p from /proc.
func readMemory(b *testing.B, p *serviceProc) memory {
	b.Helper()
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("%s: %v", p.name, err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), ":")
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
		switch {
		case key == "VmRSS" && err == nil:
			m.rss = kb / 1024
		case key == "VmHWM" && err == nil:
			m.peak = kb / 1024
		}
	}
	if m.rss == 0 || m.peak == 0 {
		b.Fatalf("%s: no VmRSS or VmHWM in /proc/%d/status", p.name, pid)
	}
	return m
}
