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
// returning nil: the ack follows the return.
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

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	c.MaxDeliver = orDefault(c.MaxDeliver, 8)
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}
	}
	c.AckWait = orDefault(c.AckWait, 30*time.Second)
	c.BatchSize = orDefault(c.BatchSize, 500)
	c.Workers = orDefault(c.Workers, 1)
	c.MaxAckPending = max(orDefault(c.MaxAckPending, 1000), 2*c.BatchSize)
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
	return h(ctx, m)
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
	log.Info("consumer started", zap.Strings("subjects", cfg.Subjects), zap.Int("workers", cfg.Workers), zap.Int("batch", cfg.BatchSize))
	g := new(errgroup.Group)
	for range cfg.Workers {
		g.Go(func() error { return b.pull(ctx, cons, cfg, h, log) })
	}
	err = g.Wait()
	log.Info("consumer stopped")
	return err
}

// pull runs one gatherer and one handler with a hand-off of one batch between
// them: while the handler works, the next batch is gathered and prepared, and
// it keeps growing up to BatchSize until the handler is free. When ctx is
// cancelled the iterator drains: what it already holds is still gathered,
// prepared, handled and settled before pull returns.
func (b *Bus) pull(ctx context.Context, cons jetstream.Consumer, cfg ConsumerConfig, h BatchHandler, log *zap.Logger) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(max(2*cfg.BatchSize, 16)))
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
	for {
		wait := []jetstream.NextOpt{jetstream.NextMaxWait(time.Millisecond)}
		if len(batch) == 0 {
			wait = nil
		}
		jm, err := g.it.Next(wait...)
		switch {
		case err == nil:
			batch = append(batch, g.add(jm))
			if len(batch) == g.cfg.BatchSize {
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
	case m.Delivered > uint64(g.cfg.MaxDeliver)+g.bus.outages.count(m):
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

// handle runs h on the messages of batch without an outcome yet, then settles
// every message of the batch in order.
func (b *Bus) handle(ctx context.Context, cfg ConsumerConfig, batch []*Message, h BatchHandler, log *zap.Logger) {
	hctx, cancel := context.WithTimeout(ctx, cfg.AckWait)
	defer cancel()
	todo := make([]*Message, 0, len(batch))
	for _, m := range batch {
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
		for i, m := range todo {
			m.outcome = errs[i]
		}
	}
	for _, m := range batch {
		b.settle(hctx, cfg, m, m.outcome, log)
	}
}

var errGaveUp = errors.New("delivered more often than MaxDeliver without an outcome (the handler may crash the process)")

// outageCounts remembers, per delivery in flight, how many of its deliveries
// failed for infrastructure reasons in this process. Those do not count
// towards MaxDeliver; deliveries this process never saw fail (it crashed
// handling them) do, so a message that kills the process still ends in the DLQ.
type outageCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (o *outageCounts) key(m *Message) string {
	return m.Stream + "/" + strconv.FormatUint(m.StreamSeq, 10)
}

func (o *outageCounts) count(m *Message) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[o.key(m)]
}

func (o *outageCounts) add(m *Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]uint64{}
	}
	o.n[o.key(m)]++
}

func (o *outageCounts) forget(m *Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.n, o.key(m))
}

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
	infrastructure := !permanent && IsInfrastructure(err)
	if infrastructure {
		b.outages.add(m)
	}
	switch {
	case err == nil:
		b.outages.forget(m)
		if aerr := m.msg.Ack(); aerr != nil {
			log.Warn("ack failed; redelivery will be deduplicated", append(fields, zap.Error(aerr))...)
			return
		}
		b.handled.WithLabelValues(cfg.Durable, "ack").Inc()
		log.Debug("message handled", fields...)
	case permanent || (!infrastructure && m.Delivered >= uint64(cfg.MaxDeliver)+b.outages.count(m)):
		b.outages.forget(m)
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
	dm.Header.Set(HeaderDLQReason, encodeHeader(truncate(reason, 4000)))
	dm.Header.Set(HeaderDLQService, b.service)
	dm.Header.Set(HeaderDLQSubject, m.Subject)
	dm.Header.Set(HeaderDLQStream, m.Stream)
	dm.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(m.StreamSeq, 10))
	dm.Header.Set(HeaderDLQDelivered, strconv.FormatUint(m.Delivered, 10))
	id := fmt.Sprintf("dlq.%s.%s.%d", b.service, m.Stream, m.StreamSeq)
	if _, err := b.js.PublishMsg(ctx, dm, jetstream.WithMsgID(id)); err != nil {
		return err
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
