package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/tracing"
)

// MarkProcessed records eventID as handled inside tx. It returns false when the
// id was already recorded: the caller has seen this event before and must not
// apply it again (ack it and stop).
func MarkProcessed(ctx context.Context, tx pgx.Tx, eventID string) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING`, eventID)
	if err != nil {
		return false, fmt.Errorf("mark event %s processed: %w", eventID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// MarkProcessedBatch records every id inside tx in one statement and returns the
// set of ids that were new; ids missing from the result were handled before.
func MarkProcessedBatch(ctx context.Context, tx pgx.Tx, eventIDs []string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `INSERT INTO processed_events (event_id)
SELECT DISTINCT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING event_id`, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("mark %d events processed: %w", len(eventIDs), err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("mark %d events processed: %w", len(eventIDs), err)
	}
	fresh := make(map[string]bool, len(ids))
	for _, id := range ids {
		fresh[id] = true
	}
	return fresh, nil
}

// Enqueue writes env to the outbox inside tx; the relay publishes it on subject
// after the transaction commits. The event id is unique: enqueueing the same
// envelope twice fails with a unique violation.
func Enqueue(ctx context.Context, tx pgx.Tx, subject string, env events.Envelope) error {
	return EnqueueBatch(ctx, tx, []OutboxMessage{{Subject: subject, Envelope: env}})
}

// OutboxMessage is one event in the outbox with the NATS subject it goes to.
type OutboxMessage struct {
	Seq      int64
	Subject  string
	Envelope events.Envelope
}

// MaxEventBytes is the largest event body the outbox takes: NATS refuses
// messages over 1 MiB by default, and the headers need room too.
const MaxEventBytes = 1<<20 - 16<<10

// ErrEventTooLarge is returned (wrapped) by Enqueue and EnqueueBatch for an
// event whose data exceeds MaxEventBytes; no retry can fix it.
var ErrEventTooLarge = errors.New("event too large for NATS")

// EnqueueBatch writes msgs to the outbox inside tx with one INSERT, or one
// COPY for more than a few dozen. It refuses
// the whole batch with ErrEventTooLarge when one event exceeds MaxEventBytes.
// Each row keeps its envelope's trace context (TraceParent, TraceState) or,
// when the envelope has none, that of the span in ctx, for the relay to
// continue (see bus.Relay).
func EnqueueBatch(ctx context.Context, tx pgx.Tx, msgs []OutboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	for _, m := range msgs {
		if n := len(m.Envelope.Data); n > MaxEventBytes {
			return fmt.Errorf("enqueue %s %s of %d bytes (at most %d): %w", m.Envelope.Type, m.Envelope.ID, n, MaxEventBytes, ErrEventTooLarge)
		}
	}
	if tc := tracing.FromContext(ctx); tc.Parent != "" {
		traced := make([]OutboxMessage, len(msgs))
		for i, m := range msgs {
			if m.Envelope.TraceParent == "" {
				m.Envelope.TraceParent, m.Envelope.TraceState = tc.Parent, tc.State
			}
			traced[i] = m
		}
		msgs = traced
	}
	if len(msgs) <= copyThreshold {
		return insertOutbox(ctx, tx, msgs)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"outbox"},
		[]string{"event_id", "subject", "ce_type", "ce_source", "ce_subject", "ce_time", "data", "traceparent", "tracestate"},
		pgx.CopyFromSlice(len(msgs), func(i int) ([]any, error) {
			e := msgs[i].Envelope
			return []any{e.ID, msgs[i].Subject, e.Type, e.Source, e.Subject, e.Time, []byte(e.Data), e.TraceParent, e.TraceState}, nil
		}))
	if err != nil {
		return fmt.Errorf("enqueue %d outbox events: %w", len(msgs), err)
	}
	return nil
}

// copyThreshold is the batch size from which COPY beats one INSERT: COPY
// costs extra round trips (describing the table, then the copy itself).
const copyThreshold = 32

// insertOutbox writes msgs with one INSERT over arrays: one round trip.
func insertOutbox(ctx context.Context, tx pgx.Tx, msgs []OutboxMessage) error {
	cols := struct {
		ids, subjects, types, sources, subjects2 []string
		times                                    []time.Time
		data                                     [][]byte
		parents, states                          []string
	}{}
	for _, m := range msgs {
		e := m.Envelope
		cols.ids = append(cols.ids, e.ID)
		cols.subjects = append(cols.subjects, m.Subject)
		cols.types = append(cols.types, e.Type)
		cols.sources = append(cols.sources, e.Source)
		cols.subjects2 = append(cols.subjects2, e.Subject)
		cols.times = append(cols.times, e.Time)
		cols.data = append(cols.data, []byte(e.Data))
		cols.parents = append(cols.parents, e.TraceParent)
		cols.states = append(cols.states, e.TraceState)
	}
	_, err := tx.Exec(ctx, `INSERT INTO outbox (event_id, subject, ce_type, ce_source, ce_subject, ce_time, data, traceparent, tracestate)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bytea[], $8::text[], $9::text[])`,
		cols.ids, cols.subjects, cols.types, cols.sources, cols.subjects2, cols.times, cols.data, cols.parents, cols.states)
	if err != nil {
		return fmt.Errorf("enqueue %d outbox events: %w", len(msgs), err)
	}
	return nil
}

// ClaimOutbox locks up to limit unsent outbox rows in id order through their
// narrow outbox_pending markers, skipping rows another relay holds (FOR UPDATE
// SKIP LOCKED). The markers stay locked until tx ends.
func ClaimOutbox(ctx context.Context, tx pgx.Tx, limit int) ([]OutboxMessage, error) {
	rows, err := tx.Query(ctx, `SELECT o.id, o.subject, o.event_id, o.ce_type, o.ce_source, o.ce_subject, o.ce_time, o.data,
	o.traceparent, o.tracestate
FROM outbox_pending p JOIN outbox o ON o.id = p.id
ORDER BY p.id LIMIT $1 FOR UPDATE OF p SKIP LOCKED`, limit)
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxMessage, error) {
		var m OutboxMessage
		var data []byte
		err := r.Scan(&m.Seq, &m.Subject, &m.Envelope.ID, &m.Envelope.Type, &m.Envelope.Source,
			&m.Envelope.Subject, &m.Envelope.Time, &data, &m.Envelope.TraceParent, &m.Envelope.TraceState)
		m.Envelope.Data = data
		return m, err
	})
}

// MarkSent marks the outbox rows with the given sequence numbers sent by
// deleting their pending markers; the wide rows are not touched.
func MarkSent(ctx context.Context, tx pgx.Tx, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM outbox_pending WHERE id = ANY($1)`, seqs); err != nil {
		return fmt.Errorf("mark %d outbox rows sent: %w", len(seqs), err)
	}
	return nil
}

// MarkFailed records a failed publish attempt with reason on the given rows
// and returns the rows that have now failed maxAttempts times or more (none
// when maxAttempts < 1); the caller sets those aside with SetAside.
func MarkFailed(ctx context.Context, tx pgx.Tx, seqs []int64, reason string, maxAttempts int) ([]int64, error) {
	rows, err := tx.Query(ctx, `UPDATE outbox_pending SET attempts = attempts + 1, last_error = $2
WHERE id = ANY($1) RETURNING id, attempts`, seqs, reason)
	if err != nil {
		return nil, fmt.Errorf("mark %d outbox rows failed: %w", len(seqs), err)
	}
	var exhausted []int64
	var id int64
	var attempts int
	_, err = pgx.ForEachRow(rows, []any{&id, &attempts}, func() error {
		if maxAttempts > 0 && attempts >= maxAttempts {
			exhausted = append(exhausted, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mark %d outbox rows failed: %w", len(seqs), err)
	}
	return exhausted, nil
}

// SetAside stops publishing the given outbox rows: their markers are removed
// and the rows keep dead_at, their attempt count and reason (the last error
// recorded, or reason when none was) for an operator. It returns the number
// of rows it set aside.
func SetAside(ctx context.Context, tx pgx.Tx, seqs []int64, reason string) (int64, error) {
	tag, err := tx.Exec(ctx, `WITH gone AS (DELETE FROM outbox_pending WHERE id = ANY($1) RETURNING id, attempts, last_error)
UPDATE outbox o SET dead_at = now(), attempts = g.attempts, last_error = coalesce(g.last_error, $2)
FROM gone g WHERE o.id = g.id`, seqs, reason)
	if err != nil {
		return 0, fmt.Errorf("set aside %d outbox rows: %w", len(seqs), err)
	}
	return tag.RowsAffected(), nil
}

// SetAsideRow is an outbox row the relay gave up on.
type SetAsideRow struct {
	Seq       int64
	EventID   string
	Subject   string
	Type      string
	Attempts  int
	LastError string
	DeadAt    time.Time
}

// SetAsideOutbox lists up to limit set-aside outbox rows, oldest first.
func SetAsideOutbox(ctx context.Context, db Querier, limit int) ([]SetAsideRow, error) {
	rows, err := db.Query(ctx, `SELECT id, event_id, subject, ce_type, attempts, coalesce(last_error, ''), dead_at
FROM outbox WHERE dead_at IS NOT NULL ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list set-aside outbox rows: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SetAsideRow, error) {
		var s SetAsideRow
		err := r.Scan(&s.Seq, &s.EventID, &s.Subject, &s.Type, &s.Attempts, &s.LastError, &s.DeadAt)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list set-aside outbox rows: %w", err)
	}
	return list, nil
}

// CountSetAside returns how many outbox rows are set aside.
func CountSetAside(ctx context.Context, db Querier) (int, error) {
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count set-aside outbox rows: %w", err)
	}
	return n, nil
}

// CountUnsent returns how many outbox rows wait to be published (set-aside
// rows excluded).
func CountUnsent(ctx context.Context, db Querier) (int, error) {
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM outbox_pending`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unsent outbox rows: %w", err)
	}
	return n, nil
}

// RequeueOutbox makes the given set-aside rows pending again with a fresh
// attempt count (after the cause was fixed); rows not set aside are left
// alone. It returns how many it requeued.
func RequeueOutbox(ctx context.Context, tx pgx.Tx, seqs []int64) (int64, error) {
	tag, err := tx.Exec(ctx, `WITH back AS (UPDATE outbox SET dead_at = NULL
WHERE id = ANY($1) AND dead_at IS NOT NULL RETURNING id)
INSERT INTO outbox_pending (id) SELECT id FROM back`, seqs)
	if err != nil {
		return 0, fmt.Errorf("requeue %d outbox rows: %w", len(seqs), err)
	}
	return tag.RowsAffected(), nil
}

// SubjectTrace returns the trace context in which the first traced event
// about subject (a ce-subject: an incident or review id) was written to this
// schema's outbox, the zero Context when there was none (or it was pruned).
// Pass it to tracing.Resume to continue that trace.
func SubjectTrace(ctx context.Context, db Querier, subject string) (tracing.Context, error) {
	var tc tracing.Context
	err := db.QueryRow(ctx, `SELECT traceparent, tracestate FROM subject_traces WHERE subject = $1`, subject).Scan(&tc.Parent, &tc.State)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return tc, fmt.Errorf("trace of %s: %w", subject, err)
	}
	return tc, nil
}

// Querier is what the read-only helpers need: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PruneOutbox deletes rows published before cutoff (created before it and
// no longer pending), keeping recent ones so events can be republished
// within the retention period, and set-aside rows for an operator. It returns
// how many it deleted.
func PruneOutbox(ctx context.Context, tx pgx.Tx, cutoff time.Time) (int64, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM outbox o WHERE o.created_at < $1 AND o.dead_at IS NULL
AND NOT EXISTS (SELECT 1 FROM outbox_pending p WHERE p.id = o.id)`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return tag.RowsAffected(), nil
}

// DeadLetter is a message a consumer gave up on.
type DeadLetter struct {
	Consumer, Subject, EventID, Stream string
	StreamSeq, Delivered               uint64
	Reason                             string
	Headers                            map[string][]string
	Data                               []byte
}

// RecordDeadLetter inserts d into dead_letters; recording the same delivery
// (consumer, stream, sequence) twice keeps the first row.
func RecordDeadLetter(ctx context.Context, pool *pgxpool.Pool, d DeadLetter) error {
	headers, err := json.Marshal(d.Headers)
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `INSERT INTO dead_letters (consumer, subject, event_id, stream, stream_seq, delivered, reason, headers, data)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
		d.Consumer, d.Subject, d.EventID, d.Stream, int64(d.StreamSeq), int32(d.Delivered), d.Reason, headers, d.Data)
	if err != nil {
		return fmt.Errorf("record dead letter %s: %w", d.EventID, err)
	}
	return nil
}
