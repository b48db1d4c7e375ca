package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/intake"
	"github.com/afteraction/afteraction/services/notify"
	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/review"
	"github.com/afteraction/afteraction/services/tracker"
)

// chaosServiceEnv, set in a child's environment, makes this binary run that
// one service (as services/<name>/cmd/<name> would) instead of a command: the
// harness runs every replica of every service as its own OS process.
const chaosServiceEnv = "AFTERACTION_CHAOS_SERVICE"

// serveChaosChild runs the service named in chaosServiceEnv, if any, and
// reports its exit code; ok is false when this process is not such a child.
func serveChaosChild() (code int, ok bool) {
	switch os.Getenv(chaosServiceEnv) {
	case "":
		return 0, false
	case "intake":
		return config.Main("intake", intake.LoadConfig, func(ctx context.Context, cfg intake.Config, log *zap.Logger) error {
			return intake.Run(ctx, cfg, intake.Deps{Log: log})
		}), true
	case "review":
		return config.Main("review", review.LoadConfig, func(ctx context.Context, cfg review.Config, log *zap.Logger) error {
			return review.Run(ctx, cfg, review.Deps{Log: log})
		}), true
	case "report":
		return config.Main("report", report.LoadConfig, func(ctx context.Context, cfg report.Config, log *zap.Logger) error {
			return report.Run(ctx, cfg, report.Deps{Log: log})
		}), true
	case "tracker":
		return config.Main("tracker", tracker.LoadConfig, func(ctx context.Context, cfg tracker.Config, log *zap.Logger) error {
			return tracker.Run(ctx, cfg, tracker.Deps{Log: log})
		}), true
	case "notify":
		return config.Main("notify", notify.LoadConfig, func(ctx context.Context, cfg notify.Config, log *zap.Logger) error {
			return notify.Run(ctx, cfg, notify.Deps{Log: log})
		}), true
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: not a service\n", chaosServiceEnv, os.Getenv(chaosServiceEnv))
		return 2, true
	}
}

// chaosConfig describes one run of the fault suite.
type chaosConfig struct {
	// DatabaseURL is the database the services use (through the proxy) and the
	// checker reads directly; it should be fresh.
	DatabaseURL string
	// Duration is how long load and faults run; Settle bounds the wait for
	// the invariants afterwards.
	Duration, Settle time.Duration
	// Replicas of every service, competing on the same consumers and outboxes.
	Replicas int
	// Cluster runs three NATS nodes with R3 streams instead of one node.
	Cluster bool
	// Incidents sent in all; every CompleteEvery-th gets its review completed.
	Incidents, CompleteEvery int
	// FaultEvery is the pause between two faults; Faults lists the kinds to
	// draw from (default all: kill, nats, pgdrop, pgstall).
	FaultEvery time.Duration
	Faults     []string
	Seed       uint64
	// Dir keeps NATS stores and the services' logs.
	Dir string
	Out io.Writer
}

// chaosReport is what a run did and what the invariant checker found.
type chaosReport struct {
	Sent, Duplicates, Poison, Completed          int
	Skewed, Oversized                            int
	Registered, Reviews, ReportVersions, Actions int
	DeadLetters, UnsentOutbox                    int
	Faults                                       map[string]int
	Violations                                   []string
	LoadTime, SettleTime                         time.Duration
}

func (r chaosReport) print(w io.Writer) {
	kinds := make([]string, 0, len(r.Faults))
	for k := range r.Faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var faults []string
	for _, k := range kinds {
		faults = append(faults, fmt.Sprintf("%s=%d", k, r.Faults[k]))
	}
	fmt.Fprintf(w, "chaos: %s of load and faults (%s), settled in %s\n", r.LoadTime.Round(time.Second),
		strings.Join(faults, " "), r.SettleTime.Round(time.Second))
	fmt.Fprintf(w, "  sent %d incidents (+%d duplicate publishes, %d poison messages), %d reviews completed\n",
		r.Sent, r.Duplicates, r.Poison, r.Completed)
	fmt.Fprintf(w, "  refused as they must be: %d closed in the future, %d oversized (near the limit over NATS, over 1 MiB over HTTP)\n",
		r.Skewed, r.Oversized)
	fmt.Fprintf(w, "  registered %d, reviews %d, report versions %d, action items %d\n", r.Registered, r.Reviews, r.ReportVersions, r.Actions)
	fmt.Fprintf(w, "  dead letters %d, unsent outbox rows %d\n", r.DeadLetters, r.UnsentOutbox)
	if len(r.Violations) == 0 {
		fmt.Fprintln(w, "  invariants: all hold (0 lost, 0 duplicated)")
		return
	}
	fmt.Fprintf(w, "  invariants: %d violated\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintln(w, "   -", v)
	}
}

// runChaos is `afteraction chaos`.
func runChaos(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ExitOnError)
	dsn := fs.String("database-url", envOr("CHAOS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/afteraction_chaos?sslmode=disable"), "a database of its own (dropped and created)")
	duration := fs.Duration("duration", 5*time.Minute, "how long load and random faults run")
	replicas := fs.Int("replicas", 2, "replicas of every service")
	cluster := fs.Bool("cluster", true, "three NATS nodes with R3 streams (one node is killed and restarted) instead of one")
	incidents := fs.Int("incidents", 300, "incidents sent over the duration")
	every := fs.Duration("fault-every", 5*time.Second, "pause between faults")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed (printed; rerun with it)")
	_ = fs.Parse(args)
	if err := recreateDatabase(ctx, *dsn); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "afteraction-chaos-")
	if err != nil {
		return err
	}
	fmt.Printf("chaos: seed %d, %d replicas per service, cluster=%v, logs in %s\n", *seed, *replicas, *cluster, dir)
	rep, err := chaos(ctx, chaosConfig{DatabaseURL: *dsn, Duration: *duration, Settle: 3 * time.Minute, Replicas: *replicas,
		Cluster: *cluster, Incidents: *incidents, CompleteEvery: 10, FaultEvery: *every, Seed: *seed, Dir: dir, Out: os.Stdout})
	if err != nil {
		return err
	}
	rep.print(os.Stdout)
	if len(rep.Violations) > 0 {
		return fmt.Errorf("%d invariants violated", len(rep.Violations))
	}
	return nil
}

// harness holds what a run started.
type harness struct {
	cfg      chaosConfig
	rng      *rand.Rand
	rngMu    sync.Mutex
	nodes    []*natsNode
	natsURL  string
	proxy    *pgProxy
	procs    []*serviceProc
	token    string
	faultsMu sync.Mutex
	faults   map[string]int
	accepted atomic.Int64
	poison   []string // markers of the poison messages sent
	// skewed and oversized are the external ids of the incidents sent that
	// intake must refuse: closed more than a day in the future, or over the
	// size limit (near it over NATS, beyond 1 MiB over HTTP).
	skewed, oversized []string
	// oversizedHTTP counts the oversized POSTs answered 413, httpAccepted
	// those intake took (each a violation).
	oversizedHTTP, httpAccepted int
}

func (h *harness) intn(n int) int {
	h.rngMu.Lock()
	defer h.rngMu.Unlock()
	return h.rng.IntN(n)
}

func (h *harness) total() int {
	h.faultsMu.Lock()
	defer h.faultsMu.Unlock()
	n := 0
	for _, c := range h.faults {
		n += c
	}
	return n
}

func (h *harness) count(kind string) {
	h.faultsMu.Lock()
	defer h.faultsMu.Unlock()
	h.faults[kind]++
}

// chaos runs one scenario: it starts NATS, the proxy and every replica as a
// process, sends load while injecting faults, heals everything, and checks
// the invariants until they hold or cfg.Settle has passed.
func chaos(ctx context.Context, cfg chaosConfig) (chaosReport, error) {
	cfg.Replicas = max(cfg.Replicas, 1)
	cfg.CompleteEvery = max(cfg.CompleteEvery, 1)
	if len(cfg.Faults) == 0 {
		cfg.Faults = []string{"kill", "nats", "pgdrop", "pgstall"}
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	h := &harness{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), token: randomToken(),
		faults: map[string]int{}}
	defer h.stop()
	if err := h.startNATS(); err != nil {
		return chaosReport{}, err
	}
	target, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		return chaosReport{}, fmt.Errorf("database url: %w", err)
	}
	if h.proxy, err = newPGProxy(target.Host); err != nil {
		return chaosReport{}, err
	}
	proxied := *target
	proxied.Host = h.proxy.Addr()
	if err := h.startServices(ctx, proxied.String()); err != nil {
		return chaosReport{}, err
	}
	fmt.Fprintf(cfg.Out, "chaos: %d service processes up, NATS %s\n", len(h.procs), h.natsURL)

	start := time.Now()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var rep chaosReport
	var completed sync.Map
	loadDone := make(chan error, 1)
	go func() { loadDone <- h.load(loadCtx, &rep, &completed) }()
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		h.injectFaults(loadCtx, start.Add(cfg.Duration))
	}()
	<-faultsDone
	if err := h.heal(ctx); err != nil {
		return rep, err
	}
	if err := <-loadDone; err != nil {
		return rep, err
	}
	rep.LoadTime = time.Since(start)
	completed.Range(func(_, _ any) bool { rep.Completed++; return true })

	settled := time.Now()
	deadline := settled.Add(cfg.Settle)
	for {
		check, err := h.check(ctx, &completed)
		if err != nil {
			return rep, err
		}
		check.Sent, check.Duplicates, check.Completed, check.LoadTime = rep.Sent, rep.Duplicates, rep.Completed, rep.LoadTime
		check.Faults = h.faults
		check.SettleTime = time.Since(settled)
		if len(check.Violations) == 0 || time.Now().After(deadline) {
			return check, nil
		}
		select {
		case <-ctx.Done():
			return check, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// natsNode is one in-process nats-server that can be killed and restarted on
// the same ports and store.
type natsNode struct {
	name              string
	port, clusterPort int
	routes            []string
	dir               string
	srv               *server.Server
}

func (n *natsNode) start() error {
	opts := &server.Options{ServerName: n.name, Host: "127.0.0.1", Port: n.port, MaxPayload: 1 << 20,
		JetStream: true, StoreDir: n.dir, NoSigs: true, NoLog: true, SyncAlways: len(n.routes) == 0}
	if len(n.routes) > 0 {
		opts.Cluster = server.ClusterOpts{Name: "chaos", Host: "127.0.0.1", Port: n.clusterPort}
		opts.Routes = server.RoutesFromStr(strings.Join(n.routes, ","))
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats %s: %w", n.name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("nats %s not ready", n.name)
	}
	n.srv = s
	return nil
}

func (n *natsNode) kill() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (h *harness) startNATS() error {
	n := 1
	if h.cfg.Cluster {
		n = 3
	}
	var routes, urls []string
	for i := range n {
		port, err := freePort()
		if err != nil {
			return err
		}
		cport, err := freePort()
		if err != nil {
			return err
		}
		h.nodes = append(h.nodes, &natsNode{name: fmt.Sprintf("chaos-%d", i+1), port: port, clusterPort: cport,
			dir: filepath.Join(h.cfg.Dir, fmt.Sprintf("nats-%d", i+1))})
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", cport))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", port))
	}
	h.natsURL = strings.Join(urls, ",")
	errs := make(chan error, n)
	for _, node := range h.nodes {
		if n > 1 {
			node.routes = routes
		}
		go func() { errs <- node.start() }() // cluster nodes wait for each other
	}
	for range n {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// serviceProc is one replica of a service running as a child process.
type serviceProc struct {
	name string
	// exe is the binary to run; empty runs this one as the service's child.
	exe     string
	replica int
	addr    string
	env     []string
	logPath string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
}

func (p *serviceProc) start() error {
	exe := p.exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s-%d: %w", p.name, p.replica, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	return nil
}

// kill sends SIGKILL (no drain, no cleanup) and waits for the process to go.
func (p *serviceProc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// stop sends SIGTERM and waits for the drain, killing after a while.
func (p *serviceProc) stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

func (p *serviceProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (h *harness) startServices(ctx context.Context, dsn string) error {
	replicas := "1"
	if h.cfg.Cluster {
		replicas = "3"
	}
	reviewPorts := make([]int, h.cfg.Replicas)
	for i := range reviewPorts {
		p, err := freePort()
		if err != nil {
			return err
		}
		reviewPorts[i] = p
	}
	common := []string{
		"DATABASE_URL=" + dsn, "NATS_URL=" + h.natsURL, "API_TOKENS=admin:" + h.token,
		"REVIEW_INVITE_SECRET=chaos-invite-secret-0123456789abcdef", "REPORT_DEV_SIGNING_KEY=true",
		"STREAM_REPLICAS=" + replicas, "LOG_LEVEL=warn", "LOG_FORMAT=json",
		fmt.Sprintf("REVIEW_PUBLIC_URL=http://127.0.0.1:%d", reviewPorts[0]),
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PATH" || k == "HOME" || k == "TMPDIR" || k == "GORACE" {
			common = append(common, kv)
		}
	}
	for _, name := range serviceNames {
		for r := range h.cfg.Replicas {
			port := reviewPorts[r]
			if name != "review" {
				p, err := freePort()
				if err != nil {
					return err
				}
				port = p
			}
			p := &serviceProc{name: name, replica: r, addr: fmt.Sprintf("127.0.0.1:%d", port),
				logPath: filepath.Join(h.cfg.Dir, fmt.Sprintf("%s-%d.log", name, r))}
			p.env = append(slices.Clone(common), chaosServiceEnv+"="+name, "HTTP_ADDR="+p.addr)
			if err := p.start(); err != nil {
				return err
			}
			h.procs = append(h.procs, p)
		}
	}
	return h.waitReady(ctx)
}

// waitReady waits until every replica answers /readyz, restarting any that exited.
func (h *harness) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for _, p := range h.procs {
		for getJSON(ctx, "http://"+p.addr+"/readyz", "", nil) != nil {
			if !p.running() {
				if err := p.start(); err != nil {
					return err
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s-%d not ready after 2 minutes (log: %s)", p.name, p.replica, p.logPath)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func (h *harness) stop() {
	var wg sync.WaitGroup
	for _, p := range h.procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
	if h.proxy != nil {
		h.proxy.Close()
	}
	for _, n := range h.nodes {
		n.kill()
	}
}

// injectFaults draws a fault every FaultEvery until the deadline: kill -9 of
// a replica (restarted after a moment), a NATS restart (a node of the
// cluster killed and restarted), all Postgres connections dropped, or stalled.
func (h *harness) injectFaults(ctx context.Context, until time.Time) {
	for time.Now().Before(until) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(h.cfg.FaultEvery):
		}
		kind := h.cfg.Faults[h.intn(len(h.cfg.Faults))]
		if n := h.total(); n < len(h.cfg.Faults) { // every kind once first, then at random
			kind = h.cfg.Faults[n]
		}
		switch kind {
		case "kill":
			p := h.procs[h.intn(len(h.procs))]
			p.kill()
			fmt.Fprintf(h.cfg.Out, "chaos: kill -9 %s-%d\n", p.name, p.replica)
			time.Sleep(time.Duration(200+h.intn(1500)) * time.Millisecond)
			if err := p.start(); err != nil {
				fmt.Fprintf(h.cfg.Out, "chaos: restart %s-%d: %v\n", p.name, p.replica, err)
			}
		case "nats":
			node := h.nodes[h.intn(len(h.nodes))]
			node.kill()
			fmt.Fprintf(h.cfg.Out, "chaos: NATS %s down\n", node.name)
			time.Sleep(time.Duration(500+h.intn(2500)) * time.Millisecond)
			if err := node.start(); err != nil {
				fmt.Fprintf(h.cfg.Out, "chaos: restart NATS %s: %v\n", node.name, err)
			}
		case "pgdrop":
			n := h.proxy.Drop()
			fmt.Fprintf(h.cfg.Out, "chaos: dropped %d Postgres connections\n", n)
		case "pgstall":
			d := time.Duration(1000+h.intn(3000)) * time.Millisecond
			fmt.Fprintf(h.cfg.Out, "chaos: Postgres stalled for %s\n", d)
			h.proxy.Stall(d)
		}
		h.count(kind)
	}
}

// heal restarts whatever is down and waits until every replica is ready.
func (h *harness) heal(ctx context.Context) error {
	for _, n := range h.nodes {
		if n.srv == nil {
			if err := n.start(); err != nil {
				return err
			}
		}
	}
	for _, p := range h.procs {
		if !p.running() {
			if err := p.start(); err != nil {
				return err
			}
		}
	}
	return h.waitReady(ctx)
}

// load publishes cfg.Incidents closed incidents over cfg.Duration as the
// upstream would, some of them twice (the same Nats-Msg-Id inside the
// duplicate window, and the same event under another message id, as after
// it), with poison between them (malformed JSON, JSON that is no incident),
// and completes every CompleteEvery-th review through the API of
// whichever review replica answers. Every publish is retried until JetStream
// acknowledges it, so every incident sent is accepted.
func (h *harness) load(ctx context.Context, rep *chaosReport, completed *sync.Map) error {
	b, err := bus.Connect(ctx, h.natsURL, "chaos-load", zap.NewNop(), bus.Options{})
	if err != nil {
		return err
	}
	defer b.Close()
	gap := h.cfg.Duration / time.Duration(max(h.cfg.Incidents, 1))
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := range h.cfg.Incidents {
		var inc events.IncidentClosed // decoded afresh: shiftToNow moves the timestamps it points to
		if err := json.Unmarshal(demoIncident, &inc); err != nil {
			return err
		}
		inc.ExternalID = fmt.Sprintf("CHAOS-%d-%05d", h.cfg.Seed%100000, i)
		shiftToNow(&inc, time.Now().UTC().Add(-time.Hour))
		env, err := events.New(events.TypeIncidentClosed, "afteraction/chaos", inc.ExternalID, inc)
		if err != nil {
			return err
		}
		subject := events.SubjectIncidentClosedPrefix + inc.Source
		if err := retry(ctx, func(ctx context.Context) error { return b.Publish(ctx, subject, env) }); err != nil {
			return err
		}
		rep.Sent++
		h.accepted.Add(1)
		if i%5 == 1 { // the same message again, inside the duplicate window
			if err := retry(ctx, func(ctx context.Context) error { return b.Publish(ctx, subject, env) }); err != nil {
				return err
			}
			rep.Duplicates++
		}
		if i%7 == 3 { // the same event under a new message id, as after the window
			late := env
			late.ID = env.ID + ".late"
			if err := retry(ctx, func(ctx context.Context) error { return b.Publish(ctx, subject, late) }); err != nil {
				return err
			}
			rep.Duplicates++
		}
		if i%6 == 5 { // poison: malformed JSON, and JSON that is no incident
			for j, body := range []string{`{"chaos_poison": "%s", `, `{"chaos_poison": "%s"}`} {
				marker := fmt.Sprintf("chaos-poison-%d-%05d-%d", h.cfg.Seed%100000, i, j)
				raw := []byte(fmt.Sprintf(body, marker))
				if err := retry(ctx, func(ctx context.Context) error { return b.PublishRaw(ctx, subject, marker, raw) }); err != nil {
					return err
				}
				h.poison = append(h.poison, marker)
			}
		}
		if i%6 == 2 { // clock skew: closed three days from now
			if err := h.sendSkewed(ctx, b, i); err != nil {
				return err
			}
		}
		if i%12 == 4 { // oversized: near the limit over NATS, beyond 1 MiB over HTTP
			if err := h.sendOversized(ctx, b, i); err != nil {
				return err
			}
		}
		if i%h.cfg.CompleteEvery == 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := h.complete(ctx, inc); err != nil {
					failed.Store(err)
					return
				}
				completed.Store(intake.IncidentID(inc.Source, inc.ExternalID), true)
			}()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(gap):
		}
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	return nil
}

// sendSkewed publishes an incident closed three days in the future, as from
// an upstream whose clock is wrong: intake must reject it (closure more than
// intake.MaxFuture after receipt), never register it.
func (h *harness) sendSkewed(ctx context.Context, b *bus.Bus, i int) error {
	var inc events.IncidentClosed
	if err := json.Unmarshal(demoIncident, &inc); err != nil {
		return err
	}
	inc.ExternalID = fmt.Sprintf("SKEW-%d-%05d", h.cfg.Seed%100000, i)
	shiftToNow(&inc, time.Now().UTC().Add(72*time.Hour))
	if err := publishClosed(ctx, b, inc); err != nil {
		return err
	}
	h.skewed = append(h.skewed, inc.ExternalID)
	return nil
}

// publishClosed publishes inc as an upstream would, retrying until JetStream
// acknowledges it.
func publishClosed(ctx context.Context, b *bus.Bus, inc events.IncidentClosed) error {
	env, err := events.New(events.TypeIncidentClosed, "afteraction/chaos", inc.ExternalID, inc)
	if err != nil {
		return err
	}
	return retry(ctx, func(ctx context.Context) error {
		return b.Publish(ctx, events.SubjectIncidentClosedPrefix+inc.Source, env)
	})
}

// bigIncident returns the demo incident as externalID, its timeline grown
// with 10 000-character entries until its JSON is over size bytes.
func bigIncident(externalID string, size int) (events.IncidentClosed, error) {
	var inc events.IncidentClosed
	if err := json.Unmarshal(demoIncident, &inc); err != nil {
		return inc, err
	}
	inc.ExternalID = externalID
	shiftToNow(&inc, time.Now().UTC().Add(-time.Hour))
	if len(inc.Timeline) == 0 {
		return inc, errors.New("the demo incident has no timeline to grow")
	}
	entry := inc.Timeline[0]
	entry.Detail = strings.Repeat("chaos oversized input ", 10000/22)
	raw, err := json.Marshal(inc)
	if err != nil {
		return inc, err
	}
	one, err := json.Marshal(entry)
	if err != nil {
		return inc, err
	}
	for n := len(raw); n <= size; n += len(one) + 1 { // each entry adds itself and a comma
		inc.Timeline = append(inc.Timeline, entry)
	}
	return inc, nil
}

// sendOversized publishes over NATS an incident whose canonical JSON is just
// over intake.MaxIncidentBytes but whose message fits NATS's 1 MiB, and POSTs
// one over 1 MiB to an intake replica. Intake must reject the first (413
// kept in rejects, not dead-lettered) and answer the second 413.
func (h *harness) sendOversized(ctx context.Context, b *bus.Bus, i int) error {
	near, err := bigIncident(fmt.Sprintf("BIG-%d-%05d-nats", h.cfg.Seed%100000, i), intake.MaxIncidentBytes)
	if err != nil {
		return err
	}
	if err := publishClosed(ctx, b, near); err != nil {
		return fmt.Errorf("publish the near-limit incident: %w", err)
	}
	h.oversized = append(h.oversized, near.ExternalID)

	over, err := bigIncident(fmt.Sprintf("BIG-%d-%05d-http", h.cfg.Seed%100000, i), 1<<20+4096)
	if err != nil {
		return err
	}
	var intakes []string
	for _, p := range h.procs {
		if p.name == "intake" {
			intakes = append(intakes, "http://"+p.addr)
		}
	}
	err = retry(ctx, func(ctx context.Context) error {
		err := call(ctx, http.MethodPost, intakes[h.intn(len(intakes))]+"/v1/incidents", h.token, over, nil)
		switch {
		case err == nil:
			h.httpAccepted++
		case strings.Contains(err.Error(), "413"):
			h.oversizedHTTP++
		default:
			return err // a replica down or restarting: try again
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("POST the oversized incident: %w", err)
	}
	h.oversized = append(h.oversized, over.ExternalID)
	return nil
}

// retry runs fn with a ten-second deadline until it succeeds, for up to five
// minutes: NATS or a service may be down for a while.
func retry(ctx context.Context, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// complete waits for the incident's review and completes it as the
// facilitator, through any review replica that answers.
func (h *harness) complete(ctx context.Context, inc events.IncidentClosed) error {
	id := intake.IncidentID(inc.Source, inc.ExternalID)
	var reviews []string
	for _, p := range h.procs {
		if p.name == "review" {
			reviews = append(reviews, "http://"+p.addr)
		}
	}
	var rv reviewView
	err := retry(ctx, func(ctx context.Context) error {
		var list struct {
			Reviews []reviewView `json:"reviews"`
		}
		if err := getJSON(ctx, reviews[h.intn(len(reviews))]+"/v1/reviews?incident_id="+id, h.token, &list); err != nil {
			return err
		}
		if len(list.Reviews) == 0 {
			return errors.New("no review yet")
		}
		rv = list.Reviews[0]
		return nil
	})
	if err != nil {
		return fmt.Errorf("review of %s: %w", inc.ExternalID, err)
	}
	facilitator := rv.Participants[0]
	if rv.Facilitator != nil {
		facilitator = *rv.Facilitator
	}
	body := demoCompletion(facilitator, inc)
	err = retry(ctx, func(ctx context.Context) error {
		err := call(ctx, http.MethodPost, reviews[h.intn(len(reviews))]+"/v1/reviews/"+rv.ReviewID+"/complete", h.token, body, nil)
		if err != nil && strings.Contains(err.Error(), "409") { // completed by an earlier attempt whose answer was lost
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("complete the review of %s: %w", inc.ExternalID, err)
	}
	return nil
}
