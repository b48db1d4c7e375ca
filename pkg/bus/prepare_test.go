package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/servicetest"
)

// publishNotes publishes one action.updated per note, in order, and returns their event ids.
func (e *env) publishNotes(notes ...string) []string {
	e.t.Helper()
	ids := make([]string, len(notes))
	for i, note := range notes {
		ev := updated(e.t, note)
		ids[i] = ev.ID
		if err := e.bus.Publish(context.Background(), events.SubjectActionUpdated, ev); err != nil {
			e.t.Fatal(err)
		}
	}
	return ids
}

// noteOf is a Prepare that decodes the message and returns its note.
func noteOf(m *bus.Message) (any, error) {
	u, err := events.Decode[events.ActionUpdated](events.TypeActionUpdated, m.Envelope.Data)
	if err != nil {
		return nil, bus.Permanent(err)
	}
	return u.Note, nil
}

// consumeBatch runs h with cfg until the test ends, or until the returned stop is called.
func (e *env) consumeBatch(cfg bus.ConsumerConfig, h bus.BatchHandler) (stop func() error) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bus.ConsumeBatch(ctx, cfg, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = fmt.Errorf("consumer did not stop")
			}
		})
		return err
	}
	e.t.Cleanup(func() {
		if err := stop(); err != nil {
			e.t.Errorf("consume: %v", err)
		}
	})
	return stop
}

func TestPrepareKeepsBatchAndMessageOrder(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const n = 60
	notes := make([]string, n)
	for i := range notes {
		notes[i] = fmt.Sprint(i)
	}
	ids := e.publishNotes(notes...)
	c := cfg("prepare-order")
	c.BatchSize = 7
	c.Prepare = func(m *bus.Message) (any, error) {
		// Later messages finish first now and then, so completion order differs from delivery order.
		if m.StreamSeq%3 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		return noteOf(m)
	}
	var mu sync.Mutex
	var got []string
	var unprepared []string
	e.consumeBatch(c, func(ctx context.Context, ms []*bus.Message) []error {
		time.Sleep(5 * time.Millisecond) // a slow handler, so the next batch is prepared meanwhile
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			got = append(got, m.Envelope.ID)
			if note, _ := m.Prepared.(string); note != notes[len(got)-1] {
				unprepared = append(unprepared, fmt.Sprintf("%s prepared as %v", m.Envelope.ID, m.Prepared))
			}
		}
		return make([]error, len(ms))
	})
	servicetest.Eventually(t, "every message handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= n
	})
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("handled in order\n%v\nwant\n%v", got, ids)
	}
	if len(unprepared) > 0 {
		t.Errorf("messages without their own prepared value: %v", unprepared)
	}
}

func TestPreparePanicDeadLettersThatMessageOnly(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ids := e.publishNotes("a", "b", "boom", "c", "d")
	c := cfg("prepare-panic")
	c.BatchSize = 10
	c.Prepare = func(m *bus.Message) (any, error) {
		note, err := noteOf(m)
		if note == "boom" {
			panic("cannot prepare " + m.Envelope.ID)
		}
		return note, err
	}
	var mu sync.Mutex
	handled := map[string]int{}
	e.consumeBatch(c, func(ctx context.Context, ms []*bus.Message) []error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			handled[m.Envelope.ID]++
		}
		return make([]error, len(ms))
	})
	servicetest.Eventually(t, "the DLQ entry", func() bool { return len(e.dlq(events.SubjectActionUpdated)) == 1 })
	servicetest.Eventually(t, "the other four handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 4
	})
	time.Sleep(600 * time.Millisecond) // three back-off periods: a redelivery would show now
	mu.Lock()
	defer mu.Unlock()
	for i, id := range ids {
		want := 1
		if i == 2 {
			want = 0
		}
		if handled[id] != want {
			t.Errorf("message %d handled %d times, want %d", i, handled[id], want)
		}
	}
	dl := e.dlq(events.SubjectActionUpdated)
	if len(dl) != 1 {
		t.Fatalf("dead-lettered %d messages, want 1", len(dl))
	}
	if r := dl[0].Header.Get(bus.HeaderDLQReason); !strings.Contains(r, "prepare panic: cannot prepare "+ids[2]) {
		t.Errorf("DLQ reason %q, want the panic", r)
	}
	if d := dl[0].Header.Get(bus.HeaderDLQDelivered); d != "1" {
		t.Errorf("dead-lettered after %s deliveries, want 1 (a panic is permanent)", d)
	}
}

func TestShutdownHandlesThePreparedBatch(t *testing.T) {
	t.Parallel()
	e := setup(t)
	notes := make([]string, 12)
	for i := range notes {
		notes[i] = fmt.Sprint(i)
	}
	ids := e.publishNotes(notes...)
	c := cfg("prepare-shutdown")
	c.BatchSize = 4
	var prepared atomic.Int32
	c.Prepare = func(m *bus.Message) (any, error) {
		prepared.Add(1)
		return noteOf(m)
	}
	release := make(chan struct{})
	inFirst := make(chan int, 1)
	var mu sync.Mutex
	var handled []string
	stop := e.consumeBatch(c, func(ctx context.Context, ms []*bus.Message) []error {
		select {
		case inFirst <- len(ms):
			<-release
		default:
		}
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			if m.Prepared == nil {
				t.Errorf("%s reached the handler unprepared", m.Envelope.ID)
			}
			handled = append(handled, m.Envelope.ID)
		}
		return make([]error, len(ms))
	})
	var first int
	select {
	case first = <-inFirst:
	case <-time.After(10 * time.Second):
		t.Fatal("the first batch never reached the handler")
	}
	servicetest.Eventually(t, "the next batch prepared while the first is handled", func() bool {
		return int(prepared.Load()) > first
	})
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond) // shutdown has begun while the first batch is still in the handler
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if int(prepared.Load()) > len(handled) {
		t.Errorf("prepared %d messages, handled %d: a prepared batch was dropped on shutdown", prepared.Load(), len(handled))
	}
	if strings.Join(handled, ",") != strings.Join(ids[:len(handled)], ",") {
		t.Errorf("handled %v, want a prefix of %v", handled, ids)
	}
	// Whatever was handled was acked; the rest is still there for the next run.
	rest := map[string]bool{}
	for _, id := range ids[len(handled):] {
		rest[id] = true
	}
	var again sync.Map
	e.consumeBatch(c, func(ctx context.Context, ms []*bus.Message) []error {
		for _, m := range ms {
			again.Store(m.Envelope.ID, true)
		}
		return make([]error, len(ms))
	})
	servicetest.Eventually(t, "the unhandled rest delivered to the next run", func() bool {
		for id := range rest {
			if _, ok := again.Load(id); !ok {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	again.Range(func(id, _ any) bool {
		if !rest[id.(string)] {
			t.Errorf("%s handled before shutdown and delivered again: it was not acked", id)
		}
		return true
	})
}
