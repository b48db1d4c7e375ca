// Package bustest runs a real nats-server with JetStream inside the test
// process, on a random port of 127.0.0.1 with a temporary store, so tests never
// collide with each other or with a NATS server already running on the machine.
package bustest

import (
	"net"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

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
