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

// EnqueueBatch writes msgs to the outbox inside tx with one COPY. It refuses
// the whole batch with ErrEventTooLarge when one event exceeds MaxEventBytes.
func EnqueueBatch(ctx context.Context, tx pgx.Tx, msgs []OutboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	for _, m := range msgs {
		if n := len(m.Envelope.Data); n > MaxEventBytes {
			return fmt.Errorf("enqueue %s %s of %d bytes (at most %d): %w", m.Envelope.Type, m.Envelope.ID, n, MaxEventBytes, ErrEventTooLarge)
		}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"outbox"},
		[]string{"event_id", "subject", "ce_type", "ce_source", "ce_subject", "ce_time", "data"},
		pgx.CopyFromSlice(len(msgs), func(i int) ([]any, error) {
			e := msgs[i].Envelope
			return []any{e.ID, msgs[i].Subject, e.Type, e.Source, e.Subject, e.Time, []byte(e.Data)}, nil
		}))
	if err != nil {
		return fmt.Errorf("enqueue %d outbox events: %w", len(msgs), err)
	}
	return nil
}

// ClaimOutbox locks up to limit unsent outbox rows in id order, skipping rows
// another relay holds (FOR UPDATE SKIP LOCKED). The rows stay locked until tx ends.
func ClaimOutbox(ctx context.Context, tx pgx.Tx, limit int) ([]OutboxMessage, error) {
	rows, err := tx.Query(ctx, `SELECT id, subject, event_id, ce_type, ce_source, ce_subject, ce_time, data
FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxMessage, error) {
		var m OutboxMessage
		var data []byte
		err := r.Scan(&m.Seq, &m.Subject, &m.Envelope.ID, &m.Envelope.Type, &m.Envelope.Source,
			&m.Envelope.Subject, &m.Envelope.Time, &data)
		m.Envelope.Data = data
		return m, err
	})
}

// MarkSent sets sent_at on the outbox rows with the given sequence numbers.
func MarkSent(ctx context.Context, tx pgx.Tx, seqs []int64) error {
	if _, err := tx.Exec(ctx, `UPDATE outbox SET sent_at = now() WHERE id = ANY($1)`, seqs); err != nil {
		return fmt.Errorf("mark %d outbox rows sent: %w", len(seqs), err)
	}
	return nil
}

// MarkFailed records a failed publish attempt on the given rows. With dead
// set, the rows are also set aside (dead_at): JetStream will never take them,
// and they must not be claimed again, or every round would retry them.
func MarkFailed(ctx context.Context, tx pgx.Tx, seqs []int64, reason string, dead bool) error {
	_, err := tx.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = $2,
	dead_at = CASE WHEN $3 THEN now() END WHERE id = ANY($1)`, seqs, reason, dead)
	if err != nil {
		return fmt.Errorf("mark %d outbox rows failed: %w", len(seqs), err)
	}
	return nil
}

// PruneOutbox deletes rows sent before cutoff, keeping recent ones so events can
// be republished within the retention period. It returns how many it deleted.
func PruneOutbox(ctx context.Context, tx pgx.Tx, cutoff time.Time) (int64, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM outbox WHERE sent_at < $1`, cutoff)
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
