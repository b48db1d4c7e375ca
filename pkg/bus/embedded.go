package bus

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig describes an in-process nats-server with JetStream.
type EmbeddedConfig struct {
	// Host and Port to listen on; Port 0 picks a free port.
	Host string
	Port int
	// StoreDir is where JetStream keeps its files.
	StoreDir string
	// SyncAlways fsyncs every write before the PubAck. The single-node dev
	// server sets it: with one node there is no replica to recover from, and the
	// default (fsync every two minutes) can lose acknowledged messages on a crash.
	SyncAlways bool
}

// StartEmbedded starts a nats-server in this process and waits until it
// accepts connections. Call Shutdown on the result to stop it.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "afteraction-embedded",
		Host:       orDefault(cfg.Host, "127.0.0.1"),
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: cfg.SyncAlways,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 1 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats-server on %s:%d not ready after 10s", opts.Host, cfg.Port)
	}
	return s, nil
}
