// Package servicetest runs a service's Run inside a test: on a listener of
// 127.0.0.1, stopped and checked when the test ends, and handed to the test
// only once it reports ready. It also has the polling helper such tests use.
package servicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/events"
)

// Timeout bounds how long Start waits for readiness and for Run to stop, and
// how long Eventually polls.
const Timeout = 30 * time.Second

// Start calls run with a context cancelled when t ends and a fresh listener on
// 127.0.0.1:0, and returns the listener's base URL ("http://127.0.0.1:port")
// once GET /readyz answers 200. It fails t if run returns before it is ready,
// if it is not ready within Timeout, or if, after the cancel at the end of t,
// run returns an error or does not return within Timeout.
func Start(t testing.TB, run func(ctx context.Context, ln net.Listener) error) (baseURL string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	baseURL = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(Timeout):
			t.Errorf("Run did not stop within %s", Timeout)
		}
	})
	Eventually(t, "readiness of "+baseURL, func() bool {
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("Run returned before it was ready: %v", err)
		default:
		}
		resp, err := http.Get(baseURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return baseURL
}

// Eventually calls cond every 20ms until it returns true, and fails t naming
// what it waited for when that has not happened within Timeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Clock is a test clock that moves only when told to; pass its Now where a
// service takes a clock. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Do sends method url with body and, when token is not empty, a bearer token.
// The Content-Type is contentType, or application/json for a non-empty body
// when contentType is empty. It returns the response (its body already read
// and closed) and the body, and fails t if the request cannot be made.
func Do(t testing.TB, method, url, token, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType == "" && len(body) > 0 {
		contentType = "application/json"
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

// Outbox returns the data of every event of type typ in the outbox of pool's
// schema, oldest first, and fails t for each one that violates its schema.
func Outbox(t testing.TB, pool *pgxpool.Pool, typ string) []json.RawMessage {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT data FROM outbox WHERE ce_type = $1 ORDER BY id`, typ)
	if err != nil {
		t.Fatal(err)
	}
	data, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]json.RawMessage, len(data))
	for i, b := range data {
		if err := events.Validate(typ, b); err != nil {
			t.Errorf("outbox %s is invalid: %v", typ, err)
		}
		out[i] = b
	}
	return out
}
