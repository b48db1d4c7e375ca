// Package bustest runs a real nats-server with JetStream inside the test
// process, on a random port of 127.0.0.1 with a temporary store, so tests never
// collide with each other or with a NATS server already running on the machine.
package bustest

import (
	"context"
	"net"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/afteraction/afteraction/pkg/bus"
)

// Server is an in-process nats-server that a test can stop and restart on the
// same port and store, to exercise "NATS is down" paths.
type Server struct {
	t    testing.TB
	dir  string
	port int
	srv  *server.Server
}

// New starts a server for t and shuts it down when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: s.port, StoreDir: s.dir})
	if err != nil {
		s.t.Fatalf("bustest: %v", err)
	}
	s.srv = srv
	s.port = srv.Addr().(*net.TCPAddr).Port
}

// URL is the client URL of the server (stable across Restart).
func (s *Server) URL() string { return s.srv.ClientURL() }

// Shutdown stops the server; it is safe to call twice.
func (s *Server) Shutdown() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// Restart starts the server again on the same port with the same store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}

// StreamMessages returns every message stored in stream on subject (an exact
// subject, no wildcards), oldest first, read from the server at url. It fails t
// when the stream cannot be read.
func StreamMessages(t testing.TB, url, stream, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, closeConn := openStream(t, url, stream)
	defer closeConn()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("bustest: stream %s: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil || m.Subject != subject {
			continue // deleted, or another subject
		}
		out = append(out, m)
	}
	return out
}

// SubjectCount returns how many messages stream holds on subject, read from the
// server at url. It fails t when the stream cannot be read.
func SubjectCount(t testing.TB, url, stream, subject string) uint64 {
	t.Helper()
	s, closeConn := openStream(t, url, stream)
	defer closeConn()
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatalf("bustest: stream %s: %v", stream, err)
	}
	return info.State.Subjects[subject]
}

// openStream connects to url and returns stream and the function that closes
// the connection.
func openStream(t testing.TB, url, stream string) (jetstream.Stream, func()) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("bustest: connect %s: %v", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		t.Fatalf("bustest: %v", err)
	}
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		nc.Close()
		t.Fatalf("bustest: stream %s: %v", stream, err)
	}
	return s, nc.Close
}
