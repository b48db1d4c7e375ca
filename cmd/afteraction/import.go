package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/services/intake/webhook"
)

// importError is one line of the per-record error report.
type importError struct {
	Record     int                  `json:"record"`
	ExternalID string               `json:"external_id,omitempty"`
	Reason     string               `json:"reason"`
	Problems   []httpapi.FieldError `json:"problems,omitempty"`
}

// importStats counts what an import did.
type importStats struct {
	Published, Skipped, Failed int
}

func runImport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	source := fs.String("source", "canonical", "format of the records: "+fmt.Sprint(webhook.Sources()))
	natsURL := fs.String("nats", envOr("NATS_URL", "nats://127.0.0.1:4333"), "NATS server URL")
	errPath := fs.String("errors", "", "where to write the per-record error report (default <file>.errors.jsonl)")
	quiet := fs.Bool("q", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: afteraction import --source <name> [--nats URL] <file.json|file.jsonl>")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	records, err := splitRecords(data)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	cfg, err := webhook.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	// Records read from a file carry no webhook signature: the operator running
	// the import vouches for them. Mappings and time zones still apply.
	for name, sc := range cfg.Sources {
		sc.Secret = ""
		cfg.Sources[name] = sc
	}
	b, err := bus.Connect(ctx, *natsURL, "cli", zap.NewNop(), cliNATSOptions())
	if err != nil {
		return err
	}
	defer b.Close()
	if *errPath == "" {
		*errPath = fs.Arg(0) + ".errors.jsonl"
	}
	report, err := os.Create(*errPath)
	if err != nil {
		return err
	}
	defer report.Close()
	progress := newProgress(os.Stderr, len(records), *quiet)
	stats, err := importRecords(ctx, b, cfg, *source, records, report, progress.tick, importWindow)
	progress.done()
	fmt.Printf("import %s: %d records, %d published, %d skipped (not a closing event), %d failed",
		fs.Arg(0), len(records), stats.Published, stats.Skipped, stats.Failed)
	if stats.Failed > 0 {
		fmt.Printf(" (see %s)", *errPath)
	}
	fmt.Println()
	return err
}

// importWindow is how many publishes an import keeps in flight: each waits
// for its own PubAck, but the next records do not wait for it.
const importWindow = 256

// importRecords normalises each record as source (on every core, a chunk
// ahead of the publisher) and publishes the closed incidents, up to window at
// a time (records of the same incident one after the other, in file order). The Nats-Msg-Id is derived from the content, and
// intake ignores an identical copy of a registered incident, so re-running an
// import publishes nothing twice. A record without its own closure time is
// refused: an import must not stamp historical incidents with today's date.
// tick is called once per record when its outcome is known (for a published
// record: when JetStream acknowledged it). A record whose publish fails is
// reported with its number and counted as failed; the import goes on and
// returns an error at the end. When ctx is cancelled no further record is
// published, the publishes in flight are still awaited, and the error says
// so; every record either has its PubAck or is reported.
func importRecords(ctx context.Context, b *bus.Bus, cfg webhook.Config, source string, records []json.RawMessage,
	report io.Writer, tick func(), window int) (importStats, error) {
	var (
		mu        sync.Mutex // guards st, enc, reportErr, inFlight and tick
		st        importStats
		reportErr error
		wg        sync.WaitGroup
	)
	enc := json.NewEncoder(report)
	fail := func(e importError) {
		mu.Lock()
		defer mu.Unlock()
		st.Failed++
		if err := enc.Encode(e); err != nil && reportErr == nil {
			reportErr = err
		}
		tick()
	}
	// inFlight holds, per incident, the publish a later record of the same
	// incident waits for, so its revisions reach intake in file order.
	inFlight := map[string]chan struct{}{}
	var chunk []preparedRecord
	slots := make(chan struct{}, max(window, 1))
	// The PubAcks in flight are awaited even after ctx is cancelled.
	pubCtx := context.WithoutCancel(ctx)
	published, interrupted := 0, 0
	prepCtx, stopPreparing := context.WithCancel(ctx)
	defer stopPreparing()
	chunks := prepareRecords(prepCtx, cfg, source, records)
	for i := range records {
		n := i + 1
		if i%prepareChunk == 0 {
			var ok bool
			if chunk, ok = <-chunks; !ok { // ctx is done
				interrupted = n
				break
			}
		}
		p := chunk[i%prepareChunk]
		inc, env, e := p.inc, p.env, p.err
		if e != nil {
			fail(*e)
			continue
		}
		if inc == nil {
			mu.Lock()
			st.Skipped++
			tick()
			mu.Unlock()
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			interrupted = n
			break
		}
		subject := events.SubjectIncidentClosedPrefix + inc.Source
		key := subject + "\x00" + inc.ExternalID
		mine := make(chan struct{})
		mu.Lock()
		prev := inFlight[key]
		inFlight[key] = mine
		mu.Unlock()
		published++
		wg.Add(1)
		go func() {
			defer wg.Done()
			if prev != nil {
				<-prev
			}
			pctx, cancel := context.WithTimeout(pubCtx, 30*time.Second)
			err := b.Publish(pctx, subject, env)
			cancel()
			close(mine)
			<-slots
			if err != nil {
				fail(importError{Record: n, ExternalID: inc.ExternalID,
					Reason: "not published (re-running the import retries it): " + err.Error()})
			} else {
				mu.Lock()
				st.Published++
				tick()
				mu.Unlock()
			}
			mu.Lock()
			if inFlight[key] == mine {
				delete(inFlight, key)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if reportErr != nil {
		return st, fmt.Errorf("write the error report: %w", reportErr)
	}
	if interrupted > 0 {
		return st, fmt.Errorf("import interrupted before record %d (%d records published and acknowledged; re-running it is safe): %w",
			interrupted, st.Published, ctx.Err())
	}
	if notPublished := published - st.Published; notPublished > 0 {
		return st, fmt.Errorf("%d records were not published (each is in the error report); re-running the import retries them", notPublished)
	}
	return st, nil
}

// prepareChunk is how many records are normalised together, and
// preparedAhead how many such chunks may wait for the publisher.
const (
	prepareChunk  = 128
	preparedAhead = 4
)

// preparedRecord is what importEnvelope made of a record.
type preparedRecord struct {
	inc *events.IncidentClosed
	env events.Envelope
	err *importError
}

// prepareRecords normalises records (see importEnvelope) on every core, in
// chunks of prepareChunk, and sends the chunks in file order, up to
// preparedAhead chunks ahead of the reader. It stops when ctx is done; the channel is then closed.
func prepareRecords(ctx context.Context, cfg webhook.Config, source string, records []json.RawMessage) <-chan []preparedRecord {
	out := make(chan []preparedRecord, preparedAhead)
	go func() {
		defer close(out)
		for lo := 0; lo < len(records); lo += prepareChunk {
			chunk := make([]preparedRecord, min(prepareChunk, len(records)-lo))
			var next atomic.Int64
			var wg sync.WaitGroup
			for range runtime.GOMAXPROCS(0) {
				wg.Go(func() {
					for i := int(next.Add(1)) - 1; i < len(chunk); i = int(next.Add(1)) - 1 {
						p := &chunk[i]
						p.inc, p.env, p.err = importEnvelope(cfg, source, records[lo+i], lo+i+1)
					}
				})
			}
			wg.Wait()
			select {
			case out <- chunk:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// importEnvelope normalises record n as source into the incident.closed
// envelope to publish. It returns a nil incident for a record that is not a
// closing event, and an importError for a record that cannot be imported.
func importEnvelope(cfg webhook.Config, source string, rec json.RawMessage, n int) (*events.IncidentClosed, events.Envelope, *importError) {
	now := time.Now().UTC().Truncate(time.Second).Add(time.Duration(n) * time.Nanosecond)
	res, err := webhook.Handle(cfg, source, nil, rec, now)
	if err != nil {
		e := importError{Record: n, Reason: err.Error()}
		var p *httpapi.Problem
		if errors.As(err, &p) {
			e.Reason, e.Problems = p.Title, p.Errors
			if p.Detail != "" {
				e.Reason += ": " + p.Detail
			}
		}
		return nil, events.Envelope{}, &e
	}
	if res.Incident == nil {
		return nil, events.Envelope{}, nil
	}
	inc := res.Incident
	if inc.Timestamps.ClosedAt.Equal(now) {
		return nil, events.Envelope{}, &importError{Record: n, ExternalID: inc.ExternalID,
			Reason: "the record has no closure or resolution time of its own", Problems: []httpapi.FieldError{
				{Field: "/timestamps/closed_at", Reason: "missing in the source record; an import keeps the incident's own timestamps"}}}
	}
	body, err := json.Marshal(inc)
	if err != nil {
		return nil, events.Envelope{}, &importError{Record: n, ExternalID: inc.ExternalID, Reason: "encode incident: " + err.Error()}
	}
	if err := events.Validate(events.TypeIncidentClosed, body); err != nil {
		e := importError{Record: n, ExternalID: inc.ExternalID, Reason: "invalid incident"}
		var ve *events.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				e.Problems = append(e.Problems, httpapi.FieldError{Field: p.Field, Reason: p.Reason})
			}
		}
		return nil, events.Envelope{}, &e
	}
	env, err := events.New(events.TypeIncidentClosed, "afteraction/import", inc.ExternalID, json.RawMessage(body))
	if err != nil {
		return nil, events.Envelope{}, &importError{Record: n, ExternalID: inc.ExternalID, Reason: err.Error()}
	}
	sum := sha256.Sum256(body)
	env.ID = "import-" + hex.EncodeToString(sum[:16])
	return inc, env, nil
}

// splitRecords reads a JSON array of records or JSON lines (one record per line,
// blank lines allowed).
func splitRecords(data []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var recs []json.RawMessage
		if err := json.Unmarshal(trimmed, &recs); err != nil {
			return nil, fmt.Errorf("not a JSON array of records: %w", err)
		}
		return recs, nil
	}
	var recs []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	for dec.More() {
		var r json.RawMessage
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("record %d: not JSON: %w", len(recs)+1, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// progress draws a one-line progress bar on a terminal-like writer.
type progress struct {
	w       io.Writer
	total   int
	n       int
	start   time.Time
	last    time.Time
	enabled bool
}

func newProgress(w io.Writer, total int, quiet bool) *progress {
	return &progress{w: w, total: total, start: time.Now(), enabled: !quiet}
}

func (p *progress) tick() {
	p.n++
	if !p.enabled || (time.Since(p.last) < 100*time.Millisecond && p.n != p.total) {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := width
	if p.total > 0 {
		filled = p.n * width / p.total
	}
	rate := float64(p.n) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d  %.0f records/s", bar(filled, '#'), bar(width-filled, '.'), p.n, p.total, rate)
}

func (p *progress) done() {
	if p.enabled {
		fmt.Fprintln(p.w)
	}
}

func bar(n int, c byte) string { return string(bytes.Repeat([]byte{c}, max(n, 0))) }
