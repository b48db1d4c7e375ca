package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
)

// Message is one delivery handed to a handler.
type Message struct {
	// Subject is the NATS subject the message was published on.
	Subject string
	// Envelope holds the CloudEvents attributes and the data (see EnvelopeOf).
	Envelope events.Envelope
	// Header is every header as received.
	Header nats.Header
	// Stream, StreamSeq and Delivered locate the message and count its deliveries (1 = first).
	Stream    string
	StreamSeq uint64
	Delivered uint64
	// Prepared is what ConsumerConfig.Prepare returned for this message (nil without Prepare).
	Prepared any

	msg jetstream.Msg
	// span is the span of the message's handling (nil when there is nothing
	// to record or pass on); see Context.
	span trace.Span
	// outcome is decided before the handler runs (Prepare failed, or the
	// message was delivered too often), or else is what the handler returned.
	outcome error
}

// InProgress tells JetStream the handler is still working, resetting the ack
// timer; long handlers call it so the message is not redelivered meanwhile.
func (m *Message) InProgress() error {
	if m.msg == nil {
		return nil
	}
	return m.msg.InProgress()
}

// Handler handles one message. Returning nil acks it; an error marked with
// Permanent sends it to the DLQ and terminates it; any other error naks it with
// a back-off delay until MaxDeliver, after which it goes to the DLQ. A handler
// must commit its work (and record the event id in processed_events) before
// returning nil: the ack follows the return. Its ctx carries the span of m's
// handling (see Message.Context), so the events it enqueues join m's trace.
type Handler func(ctx context.Context, m *Message) error

// BatchHandler handles up to BatchSize messages at once, typically in one
// transaction, and returns one outcome per message, in order, with the meaning
// of Handler's return value. Returning a slice of the wrong length naks them all.
type BatchHandler func(ctx context.Context, ms []*Message) []error

// ConsumerConfig describes a durable pull consumer.
type ConsumerConfig struct {
	// Durable names the consumer; replicas of a service share it and compete for messages.
	Durable string
	// Stream and Subjects select what it reads.
	Stream   string
	Subjects []string
	// MaxDeliver bounds the deliveries of one message before it goes to the DLQ (default 8).
	MaxDeliver int
	// Backoff is the nak delay after the 1st, 2nd, ... failure; the last value repeats
	// (default 1s, 5s, 30s, 2m, 10m).
	Backoff []time.Duration
	// AckWait is how long a delivery may stay unacknowledged before JetStream
	// redelivers it (default 30s); handlers get a context with this deadline.
	AckWait time.Duration
	// BatchSize is how many messages ConsumeBatch hands over at most (default 500).
	BatchSize int
	// Workers is how many messages Consume handles concurrently (default 1).
	Workers int
	// MaxAckPending bounds unacknowledged deliveries across replicas (default 1000,
	// at least twice BatchSize).
	MaxAckPending int
	// MaxBytes bounds the memory one worker holds in messages: the pull buffer
	// asks the server for at most MaxBytes, and a batch is handed over once its
	// data reaches half of it (default 16 MiB, at least 4 MiB so that a message
	// of the 1 MiB maximum payload always fits in a refill).
	MaxBytes int
	// BacklogAlert is the number of messages waiting for the consumer (pending
	// plus unacknowledged) above which it logs a warning once a minute; the
	// figure is always exported as afteraction_consumer_backlog (default 10000).
	BacklogAlert int
	// BacklogInterval is how often the backlog is measured (default 30s).
	BacklogInterval time.Duration
	// Prepare, if set, runs for every message as it is gathered, on up to
	// GOMAXPROCS goroutines, while the handler is still busy with the previous
	// batch; what it returns is in Message.Prepared when the handler gets the
	// message. It suits CPU-bound work without side effects (decoding,
	// validation): at most one prepared batch waits for the handler, and
	// batches and their messages reach the handler in delivery order. A
	// non-nil error is that message's outcome, with Handler's meaning, and the
	// message is left out of the batch; a panic is a Permanent error for that
	// message alone. Messages delivered more often than MaxDeliver are not
	// prepared.
	Prepare func(m *Message) (any, error)
}

// minPullBytes keeps a refill of the pull buffer (half of MaxBytes) larger than
// the largest message: a pull request smaller than the next message stalls.
const minPullBytes = 4 << 20

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	c.MaxDeliver = orDefault(c.MaxDeliver, 8)
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}
	}
	c.AckWait = orDefault(c.AckWait, 30*time.Second)
	c.BatchSize = orDefault(c.BatchSize, 500)
	c.Workers = orDefault(c.Workers, 1)
	c.MaxAckPending = max(orDefault(c.MaxAckPending, 1000), 2*c.BatchSize)
	c.MaxBytes = max(orDefault(c.MaxBytes, 16<<20), minPullBytes)
	c.BacklogAlert = orDefault(c.BacklogAlert, 10000)
	c.BacklogInterval = orDefault(c.BacklogInterval, 30*time.Second)
	return c
}

// Consume runs h for every message of the durable consumer described by cfg
// until ctx is cancelled, then finishes the messages already delivered and
// returns nil. It creates or updates the consumer first.
func (b *Bus) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) error {
	cfg = cfg.withDefaults()
	cfg.BatchSize = 1
	return b.run(ctx, cfg, func(ctx context.Context, ms []*Message) []error {
		return []error{safeCall(ctx, h, ms[0])}
	})
}

// ConsumeBatch is Consume for handlers that take many messages at once: it
// waits for the first message, gathers whatever else is already buffered up to
// BatchSize, and hands them over together. The per-message rules still hold.
func (b *Bus) ConsumeBatch(ctx context.Context, cfg ConsumerConfig, h BatchHandler) error {
	return b.run(ctx, cfg.withDefaults(), func(ctx context.Context, ms []*Message) (errs []error) {
		defer func() {
			if r := recover(); r != nil {
				err := fmt.Errorf("batch handler panic: %v\n%s", r, debug.Stack())
				errs = make([]error, len(ms))
				for i := range errs {
					errs[i] = err
				}
			}
		}()
		return h(ctx, ms)
	})
}

func safeCall(ctx context.Context, h Handler, m *Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return h(m.Context(ctx), m)
}

func (b *Bus) run(ctx context.Context, cfg ConsumerConfig, h BatchHandler) error {
	if cfg.Durable == "" || cfg.Stream == "" || len(cfg.Subjects) == 0 {
		return errors.New("consumer config: durable, stream and subjects are required")
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		FilterSubjects: cfg.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1, // bounded by us, so the last failure still reaches the DLQ
		MaxAckPending:  cfg.MaxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("ensure consumer %s on %s: %w", cfg.Durable, cfg.Stream, err)
	}
	log := b.log.With(zap.String("consumer", cfg.Durable))
	b.outages.open(ctx, b.js, b.topology, log)
	log.Info("consumer started", zap.Strings("subjects", cfg.Subjects), zap.Int("workers", cfg.Workers),
		zap.Int("batch", cfg.BatchSize), zap.Int("max_bytes", cfg.MaxBytes))
	g := new(errgroup.Group)
	watch, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go b.watchBacklog(watch, cons, cfg, log)
	for range cfg.Workers {
		g.Go(func() error { return b.pull(ctx, cons, cfg, h, log) })
	}
	err = g.Wait()
	log.Info("consumer stopped")
	return err
}

// watchBacklog exports the consumer's backlog (messages pending plus
// delivered and unacknowledged) every BacklogInterval and warns while it is
// above BacklogAlert, until ctx is done.
func (b *Bus) watchBacklog(ctx context.Context, cons jetstream.Consumer, cfg ConsumerConfig, log *zap.Logger) {
	t := time.NewTicker(cfg.BacklogInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue // NATS is down: the disconnect is logged already
		}
		backlog := info.NumPending + uint64(info.NumAckPending)
		b.backlog.WithLabelValues(cfg.Durable).Set(float64(backlog))
		if backlog > uint64(cfg.BacklogAlert) {
			log.Warn("consumer backlog above alert threshold", zap.Uint64("backlog", backlog),
				zap.Int("threshold", cfg.BacklogAlert), zap.Int("ack_pending", info.NumAckPending))
		}
	}
}

// pull runs one gatherer and one handler with a hand-off of one batch between
// them: while the handler works, the next batch is gathered and prepared, and
// it keeps growing up to BatchSize until the handler is free. When ctx is
// cancelled the iterator drains: what it already holds is still gathered,
// prepared, handled and settled before pull returns.
func (b *Bus) pull(ctx context.Context, cons jetstream.Consumer, cfg ConsumerConfig, h BatchHandler, log *zap.Logger) error {
	it, err := cons.Messages(jetstream.PullMaxBytes(cfg.MaxBytes))
	if err != nil {
		return fmt.Errorf("pull %s: %w", cfg.Durable, err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	defer it.Stop()
	work := context.WithoutCancel(ctx)
	batches := make(chan []*Message)
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		for batch := range batches {
			b.handle(work, cfg, batch, h, log)
		}
	}()
	defer func() {
		close(batches)
		<-handled
	}()
	g := &gatherer{bus: b, it: it, cfg: cfg, log: log}
	if cfg.Prepare != nil {
		g.jobs = make(chan *Message, cfg.BatchSize)
		defer close(g.jobs)
		for range min(runtime.GOMAXPROCS(0), cfg.BatchSize) {
			go func() {
				for m := range g.jobs {
					prepare(cfg.Prepare, m)
					g.preparing.Done()
				}
			}()
		}
	}
	for g.next(batches) {
	}
	return nil
}

// gatherer builds batches from the iterator and prepares their messages on
// its workers (jobs) as they arrive.
type gatherer struct {
	bus       *Bus
	it        jetstream.MessagesContext
	cfg       ConsumerConfig
	log       *zap.Logger
	jobs      chan *Message // nil without Prepare
	preparing sync.WaitGroup
}

// next waits for the first message of a batch, adds the messages that follow
// until the batch is full, or nothing arrives for a millisecond while the
// handler is free, and hands the prepared batch over. It reports false once
// the iterator is closed.
func (g *gatherer) next(batches chan<- []*Message) bool {
	var batch []*Message
	size := 0
	for {
		wait := []jetstream.NextOpt{jetstream.NextMaxWait(time.Millisecond)}
		if len(batch) == 0 {
			wait = nil
		}
		jm, err := g.it.Next(wait...)
		switch {
		case err == nil:
			batch = append(batch, g.add(jm))
			size += len(jm.Data())
			if len(batch) == g.cfg.BatchSize || size >= g.cfg.MaxBytes/2 {
				g.preparing.Wait()
				batches <- batch
				return true
			}
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			if len(batch) > 0 {
				g.preparing.Wait()
				batches <- batch
			}
			return false
		case len(batch) == 0:
			g.log.Warn("pull failed", zap.Error(err))
		default: // nothing more for now: hand over if the handler is free, else keep gathering
			g.preparing.Wait()
			select {
			case batches <- batch:
				return true
			default:
			}
		}
	}
}

// add turns a delivery into a Message and starts preparing it.
func (g *gatherer) add(jm jetstream.Msg) *Message {
	m := g.bus.message(jm)
	switch {
	case m.Delivered > uint64(g.cfg.MaxDeliver) && m.Delivered > uint64(g.cfg.MaxDeliver)+g.bus.outages.count(g.cfg.Durable, m):
		// Decided before Prepare runs: a message that kills the process must still reach the DLQ.
		m.outcome = errGaveUp
	case g.jobs != nil:
		g.preparing.Add(1)
		g.jobs <- m
	}
	return m
}

func prepare(fn func(*Message) (any, error), m *Message) {
	defer func() {
		if r := recover(); r != nil {
			// The same input would panic again: no retry can help.
			m.Prepared = nil
			m.outcome = Permanent(fmt.Errorf("prepare panic: %v\n%s", r, debug.Stack()))
		}
	}()
	m.Prepared, m.outcome = fn(m)
}

// logKey carries the consumer's logger to its batch handler (see consumerLog).
type logKey struct{}

// consumerLog is the logger of the consumer running the batch handler that
// got ctx, or a no-op logger.
func consumerLog(ctx context.Context) *zap.Logger {
	if l, ok := ctx.Value(logKey{}).(*zap.Logger); ok {
		return l
	}
	return zap.NewNop()
}

// handle runs h on the messages of batch without an outcome yet, then settles
// every message of the batch in order.
func (b *Bus) handle(ctx context.Context, cfg ConsumerConfig, batch []*Message, h BatchHandler, log *zap.Logger) {
	hctx, cancel := context.WithTimeout(context.WithValue(ctx, logKey{}, log), cfg.AckWait)
	defer cancel()
	todo := make([]*Message, 0, len(batch))
	for _, m := range batch {
		b.startProcess(cfg.Durable, m)
		if m.outcome == nil {
			todo = append(todo, m)
		}
	}
	if len(todo) > 0 {
		errs := h(hctx, todo)
		if len(errs) != len(todo) {
			err := fmt.Errorf("batch handler returned %d outcomes for %d messages", len(errs), len(todo))
			errs = make([]error, len(todo))
			for i := range errs {
				errs[i] = err
			}
		}
		overran := hctx.Err() != nil && b.infrastructureUp(ctx)
		for i, m := range todo {
			m.outcome = errs[i]
			if overran && m.outcome != nil && !IsPermanent(m.outcome) {
				m.outcome = fmt.Errorf("%w of %s: %w", errOverran, cfg.AckWait, m.outcome)
			}
		}
	}
	// Settling gets its own deadline: the handler's may have passed.
	sctx, scancel := context.WithTimeout(ctx, settleTimeout)
	defer scancel()
	for _, m := range batch {
		b.settle(sctx, cfg, m, m.outcome, log)
		endProcess(m)
	}
}

// settleTimeout bounds acking, dead-lettering and recording one batch.
const settleTimeout = 30 * time.Second

// infrastructureUp reports whether NATS is connected and Postgres (the pool
// given to RecordDeadLettersIn, when there is one) answers a ping: a handler
// that overran its deadline while both are up failed on its own account.
func (b *Bus) infrastructureUp(ctx context.Context) bool {
	if !b.nc.IsConnected() {
		return false
	}
	if b.deadLetters == nil {
		return true
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return b.deadLetters.Ping(pctx) == nil
}

var errGaveUp = errors.New("delivered more often than MaxDeliver without an outcome (the handler may crash the process)")

// errOverran marks a handler that was still running when its deadline passed
// while Postgres and NATS answered: a counted failure, not an outage, so a
// handler that always overruns ends in the DLQ instead of being retried forever.
var errOverran = errors.New("handler overran its deadline")

func (b *Bus) message(m jetstream.Msg) *Message {
	msg := &Message{Subject: m.Subject(), Header: m.Headers(), msg: m}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Envelope = EnvelopeOf(msg.Subject, msg.Header, m.Data())
	if md, err := m.Metadata(); err == nil {
		msg.Stream = md.Stream
		msg.StreamSeq = md.Sequence.Stream
		msg.Delivered = md.NumDelivered
	}
	if strings.HasPrefix(msg.Envelope.ID, contentIDPrefix) {
		// A plain publish without any id: the content digest alone would make a
		// ticket that goes A -> B -> A look like a duplicate the second time.
		msg.Envelope.ID += "@" + strconv.FormatUint(msg.StreamSeq, 10)
	}
	return msg
}

// settle acks, naks, or dead-letters m according to err. Failures of the
// infrastructure (Postgres or NATS unreachable, timeouts) are retried without
// counting towards MaxDeliver: an outage must not dead-letter everything that
// arrives during it.
func (b *Bus) settle(ctx context.Context, cfg ConsumerConfig, m *Message, err error, log *zap.Logger) {
	fields := []zap.Field{
		zap.String("subject", m.Subject), zap.String("event_id", m.Envelope.ID),
		zap.Uint64("stream_seq", m.StreamSeq), zap.Uint64("delivered", m.Delivered),
	}
	permanent := IsPermanent(err) || errors.Is(err, errGaveUp) || errors.Is(err, postgres.ErrEventTooLarge)
	infrastructure := !permanent && !errors.Is(err, errOverran) && IsInfrastructure(err)
	if infrastructure {
		b.outages.add(ctx, cfg.Durable, m, log)
	}
	switch {
	case err == nil:
		b.outages.forget(cfg.Durable, m)
		if aerr := m.msg.Ack(); aerr != nil {
			log.Warn("ack failed; redelivery will be deduplicated", append(fields, zap.Error(aerr))...)
			return
		}
		b.handled.WithLabelValues(cfg.Durable, "ack").Inc()
		log.Debug("message handled", fields...)
	case permanent || (!infrastructure && m.Delivered >= uint64(cfg.MaxDeliver) &&
		m.Delivered >= uint64(cfg.MaxDeliver)+b.outages.count(cfg.Durable, m)):
		b.outages.forget(cfg.Durable, m)
		reason := err.Error()
		if !permanent {
			reason = fmt.Sprintf("gave up after %d deliveries: %v", m.Delivered, err)
		}
		if derr := b.deadLetter(ctx, cfg, m, reason); derr != nil {
			log.Error("dead-letter failed; will retry", append(fields, zap.String("reason", reason), zap.Error(derr))...)
			_ = m.msg.NakWithDelay(cfg.Backoff[0])
			return
		}
		_ = m.msg.TermWithReason(truncate(reason, 200))
		b.handled.WithLabelValues(cfg.Durable, "dead_letter").Inc()
		log.Error("message dead-lettered", append(fields, zap.String("reason", reason))...)
	default:
		delay := cfg.Backoff[min(max(int(m.Delivered)-1, 0), len(cfg.Backoff)-1)]
		_ = m.msg.NakWithDelay(delay)
		b.handled.WithLabelValues(cfg.Durable, "retry").Inc()
		log.Warn("message failed; will retry", append(fields, zap.Bool("infrastructure", infrastructure),
			zap.Duration("retry_in", delay), zap.Error(err))...)
	}
}

// IsInfrastructure reports whether err is a failure of what a handler depends
// on rather than of the message: a network or connection error, a timeout, or
// a Postgres error of the connection, resource, operator-intervention or
// system classes (08, 53, 57, 58), a serialization failure or a deadlock.
func IsInfrastructure(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) == 5 && slices.Contains([]string{"08", "53", "57", "58"}, pgErr.Code[:2]),
			pgErr.Code == "40001", pgErr.Code == "40P01":
			return true
		}
		return false
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
}

// DLQSubject is where service dead-letters a message first published on subject.
func DLQSubject(service, subject string) string { return "dlq." + service + "." + subject }

// maxDLQReason bounds the reason a DLQ copy carries in its header; the full
// reason is logged and recorded in dead_letters.
const maxDLQReason = 1000

// deadLetter copies m to the DLQ with the reason and where it came from. When
// the copy would exceed the server's maximum payload (an original near the
// limit plus the DLQ headers), the data is left out and the copy refers to
// the original by stream and sequence (HeaderDLQOmitted); Replay reads it
// from there. A copy JetStream refuses for good is logged and the message
// settled anyway, so a message never loops between its consumer and the DLQ;
// only an unreachable NATS is returned as an error, to retry.
func (b *Bus) deadLetter(ctx context.Context, cfg ConsumerConfig, m *Message, reason string) error {
	dm := nats.NewMsg(DLQSubject(b.service, m.Subject))
	dm.Data = m.Envelope.Data
	for k, vs := range m.Header {
		if k == jetstream.MsgIDHeader {
			continue
		}
		for _, v := range vs {
			dm.Header.Add(k, v)
		}
	}
	dm.Header.Set(HeaderDLQReason, encodeHeader(truncate(reason, maxDLQReason)))
	dm.Header.Set(HeaderDLQService, b.service)
	dm.Header.Set(HeaderDLQSubject, m.Subject)
	dm.Header.Set(HeaderDLQStream, m.Stream)
	dm.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(m.StreamSeq, 10))
	dm.Header.Set(HeaderDLQDelivered, strconv.FormatUint(m.Delivered, 10))
	if limit := b.nc.MaxPayload() - dlqMargin; int64(headerSize(dm.Header)+len(dm.Data)) > limit {
		dm.Data = nil
		dm.Header.Set(HeaderDLQOmitted, strconv.Itoa(len(m.Envelope.Data)))
		if int64(headerSize(dm.Header)) > limit { // the original's own headers are the bulk: keep ours only
			for k := range dm.Header {
				if !strings.HasPrefix(strings.ToLower(k), "afteraction-dlq-") {
					dm.Header.Del(k)
				}
			}
		}
	}
	id := fmt.Sprintf("dlq.%s.%s.%d", b.service, m.Stream, m.StreamSeq)
	if _, err := b.js.PublishMsg(ctx, dm, jetstream.WithMsgID(id)); err != nil {
		if IsInfrastructure(err) {
			return err
		}
		b.log.Error("the DLQ refused the copy; the message is settled without it", zap.String("event_id", m.Envelope.ID),
			zap.String("stream", m.Stream), zap.Uint64("stream_seq", m.StreamSeq), zap.Error(err))
	}
	if b.deadLetters != nil {
		if err := postgres.RecordDeadLetter(ctx, b.deadLetters, postgres.DeadLetter{
			Consumer: cfg.Durable, Subject: m.Subject, EventID: m.Envelope.ID, Stream: m.Stream, StreamSeq: m.StreamSeq,
			Delivered: m.Delivered, Reason: reason, Headers: m.Header, Data: m.Envelope.Data,
		}); err != nil {
			// The DLQ stream holds it; only the service's own record is missing.
			b.log.Error("record dead letter failed", zap.String("event_id", m.Envelope.ID), zap.Error(err))
		}
	}
	return nil
}

// dlqMargin leaves room under the maximum payload for the protocol line.
const dlqMargin = 1024

// headerSize is the encoded size of h: "NATS/1.0\r\n", a "key: value\r\n"
// line per value, and the closing "\r\n".
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Typed adapts fn into a Handler for events of type typ: it checks the ce-type
// header, validates the data against the type's JSON Schema and decodes it
// before fn runs. A wrong type or invalid data is permanent (DLQ, no retry).
func Typed[T any](typ string, fn func(ctx context.Context, m *Message, e T) error) Handler {
	return func(ctx context.Context, m *Message) error {
		if e, ok := m.Prepared.(T); ok { // decoded by PrepareTyped
			return fn(ctx, m, e)
		}
		e, err := decodeTyped[T](typ, m)
		if err != nil {
			return err
		}
		return fn(ctx, m, e)
	}
}
