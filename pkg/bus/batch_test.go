package bus_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/servicetest"
)

// InOneTx: a batch commits in one transaction, and a message that fails after
// writing rolls back its own writes alone; its neighbours commit.
func TestInOneTxIsolatesEachMessageInOneTransaction(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	var envs []events.Envelope
	for i := range 30 {
		note := "good"
		switch i {
		case 7:
			note = "poison" // fails for good after writing
		case 12:
			note = "sql error" // a failing statement inside the transaction
		}
		ev := updated(t, note)
		envs = append(envs, ev)
		if err := e.bus.Publish(ctx, events.SubjectActionUpdated, ev); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	txids := map[int64]bool{}
	c := cfg("one-tx")
	c.BatchSize = 64
	h := bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		return postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
			fresh, err := postgres.MarkProcessed(ctx, tx, m.Envelope.ID)
			if err != nil || !fresh {
				return err
			}
			var txid int64
			if err := tx.QueryRow(ctx, `SELECT txid_current()`).Scan(&txid); err != nil {
				return err
			}
			mu.Lock()
			txids[txid] = true
			mu.Unlock()
			if _, err := tx.Exec(ctx, `INSERT INTO applied (event_id, note) VALUES ($1, $2)`, m.Envelope.ID, u.Note); err != nil {
				return err
			}
			switch u.Note {
			case "poison":
				return bus.Permanent(errors.New("poison"))
			case "sql error":
				_, err := tx.Exec(ctx, `INSERT INTO no_such_table VALUES (1)`)
				return bus.Permanent(err)
			}
			return nil
		})
	})
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.bus.ConsumeBatch(bctx, c, bus.InOneTx(e.pool, h)) }()
	t.Cleanup(func() { cancel(); <-done })

	servicetest.Eventually(t, "28 good messages applied", func() bool {
		var n int
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM applied`).Scan(&n)
		return n == 28
	})
	servicetest.Eventually(t, "both bad messages in the DLQ", func() bool { return len(e.dlq(events.SubjectActionUpdated)) == 2 })
	for i, ev := range envs {
		want := 1
		if i == 7 || i == 12 {
			want = 0
		}
		if n := e.count(ev.ID); n != want {
			t.Errorf("message %d applied %d times, want %d", i, n, want)
		}
	}
	var processed int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&processed); err != nil {
		t.Fatal(err)
	}
	if processed != 28 {
		t.Errorf("processed_events holds %d ids, want 28 (the failed messages' marks rolled back)", processed)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(txids) >= 28 {
		t.Errorf("%d transactions for 30 messages published before the consumer started, want them batched", len(txids))
	}
}

// A commit that fails retries the whole batch: nothing of it is applied twice.
func TestInOneTxRetriesTheBatchWhenTheTransactionFails(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	var envs []events.Envelope
	for range 10 {
		ev := updated(t, "x")
		envs = append(envs, ev)
		if err := e.bus.Publish(ctx, events.SubjectActionUpdated, ev); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	broken := true
	h := bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		if err := e.apply(ctx, m, u); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if broken && m.Envelope.ID == envs[5].ID {
			broken = false
			return context.DeadlineExceeded // an infrastructure failure: the batch is abandoned
		}
		return nil
	})
	c := cfg("one-tx-retry")
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.bus.ConsumeBatch(bctx, c, bus.InOneTx(e.pool, h)) }()
	t.Cleanup(func() { cancel(); <-done })
	servicetest.Eventually(t, "every message applied", func() bool {
		var n int
		_ = e.pool.QueryRow(ctx, `SELECT count(DISTINCT event_id) FROM applied`).Scan(&n)
		return n == 10
	})
	for i, ev := range envs {
		if n := e.count(ev.ID); n != 1 {
			t.Errorf("message %d applied %d times, want 1", i, n)
		}
	}
	if n := len(e.dlq(events.SubjectActionUpdated)); n != 0 {
		t.Errorf("%d messages dead-lettered, want 0", n)
	}
}

// setWriter is a BatchWriter for the tests: it applies every message whose
// note is "set" with one statement for all of them and leaves the others; a
// "breaks the set" note makes its statement fail after the writes.
func setWriter() bus.BatchWriter {
	return func(ctx context.Context, tx pgx.Tx, ms []*bus.Message) ([]*bus.Message, error) {
		var ids, rest []*bus.Message
		var taken []string
		for _, m := range ms {
			u, ok := m.Prepared.(events.ActionUpdated)
			switch {
			case !ok:
				return nil, errors.New("not prepared")
			case u.Note == "left":
				rest = append(rest, m)
			default:
				ids = append(ids, m)
				taken = append(taken, m.Envelope.ID)
			}
		}
		fresh, err := postgres.MarkProcessedBatch(ctx, tx, taken)
		if err != nil {
			return nil, err
		}
		var newIDs, newNotes []string
		broken := false
		for _, m := range ids {
			if fresh[m.Envelope.ID] {
				note := m.Prepared.(events.ActionUpdated).Note
				newIDs, newNotes = append(newIDs, m.Envelope.ID), append(newNotes, note)
				broken = broken || note == "breaks the set"
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO applied (event_id, note) SELECT * FROM unnest($1::text[], $2::text[])`,
			newIDs, newNotes); err != nil {
			return nil, err
		}
		if broken {
			_, err := tx.Exec(ctx, `SELECT 1 / 0`)
			return nil, err
		}
		return rest, nil
	}
}

// InOneTxSet: the writer takes what it can of a batch, the handler gets only
// the rest, in order, and everything commits in the batch's one transaction.
func TestInOneTxSetWritesTogetherAndHandsTheRestToTheHandler(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	var envs []events.Envelope
	for i := range 40 {
		note := "set"
		if i%4 == 1 {
			note = "left"
		}
		ev := updated(t, note)
		envs = append(envs, ev)
		if err := e.bus.Publish(ctx, events.SubjectActionUpdated, ev); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var handled []string
	h := bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		mu.Lock()
		handled = append(handled, m.Envelope.ID)
		mu.Unlock()
		return e.apply(ctx, m, u)
	})
	c := cfg("one-tx-set")
	c.BatchSize = 64
	c.Prepare = bus.PrepareTyped[events.ActionUpdated](events.TypeActionUpdated)
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.bus.ConsumeBatch(bctx, c, bus.InOneTxSet(e.pool, setWriter(), h)) }()
	t.Cleanup(func() { cancel(); <-done })

	servicetest.Eventually(t, "every message applied", func() bool {
		var n int
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM applied`).Scan(&n)
		return n == 40
	})
	for i, ev := range envs {
		if n := e.count(ev.ID); n != 1 {
			t.Errorf("message %d applied %d times, want 1", i, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var want []string
	for i, ev := range envs {
		if i%4 == 1 {
			want = append(want, ev.ID)
		}
	}
	if !slices.Equal(handled, want) {
		t.Errorf("the handler got %d messages, want the %d the writer left, in order", len(handled), len(want))
	}
	if n := len(e.dlq(events.SubjectActionUpdated)); n != 0 {
		t.Errorf("%d messages dead-lettered, want 0", n)
	}
}

// When the set write fails, nothing of it stays and the batch goes one message
// at a time: the message that broke the set fails alone, its neighbours commit.
func TestInOneTxSetFallsBackToOneMessageAtATimeWhenTheWriteFails(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	var envs []events.Envelope
	for i := range 30 {
		note := "set"
		if i == 9 {
			note = "breaks the set"
		}
		ev := updated(t, note)
		envs = append(envs, ev)
		if err := e.bus.Publish(ctx, events.SubjectActionUpdated, ev); err != nil {
			t.Fatal(err)
		}
	}
	h := bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		if u.Note == "breaks the set" {
			return bus.Permanent(errors.New("bad message"))
		}
		return e.apply(ctx, m, u)
	})
	c := cfg("one-tx-set-fallback")
	c.BatchSize = 64
	c.Prepare = bus.PrepareTyped[events.ActionUpdated](events.TypeActionUpdated)
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	core, logs := observer.New(zap.WarnLevel)
	observed := connect(t, e.srv.URL(), zap.New(core))
	go func() { done <- observed.ConsumeBatch(bctx, c, bus.InOneTxSet(e.pool, setWriter(), h)) }()
	t.Cleanup(func() { cancel(); <-done })

	servicetest.Eventually(t, "the bad message in the DLQ", func() bool { return len(e.dlq(events.SubjectActionUpdated)) == 1 })
	servicetest.Eventually(t, "29 good messages applied", func() bool {
		var n int
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM applied`).Scan(&n)
		return n == 29
	})
	for i, ev := range envs {
		want := 1
		if i == 9 {
			want = 0
		}
		if n := e.count(ev.ID); n != want {
			t.Errorf("message %d applied %d times, want %d", i, n, want)
		}
	}
	var processed int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&processed); err != nil {
		t.Fatal(err)
	}
	if processed != 29 {
		t.Errorf("processed_events holds %d ids, want 29 (the set write rolled back)", processed)
	}
	if n := logs.FilterMessageSnippet("one message at a time").Len(); n == 0 {
		t.Error("the fallback to one message at a time was not logged")
	}
}
