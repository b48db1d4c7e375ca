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
	// ConfigFile, when set, is a nats-server configuration (users, permissions,
	// limits) to start from; Host, Port and StoreDir above still apply.
	ConfigFile string
}

// StartEmbedded starts a nats-server in this process and waits until it
// accepts connections. Call Shutdown on the result to stop it.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{MaxPayload: 1 << 20}
	if cfg.ConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("nats-server config: %w", err)
		}
	}
	opts.ServerName = "afteraction-embedded"
	opts.Host = orDefault(cfg.Host, "127.0.0.1")
	opts.Port = port
	opts.HTTPPort = 0
	opts.Cluster = server.ClusterOpts{}
	opts.JetStream = true
	opts.StoreDir = cfg.StoreDir
	opts.SyncAlways = opts.SyncAlways || cfg.SyncAlways
	opts.NoSigs, opts.NoLog = true, true
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
