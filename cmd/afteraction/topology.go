package main

import (
	"context"
	"flag"
	"fmt"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
)

// runTopology is `afteraction topology`: it creates the streams and buckets
// and applies a changed configuration (limits, replicas), which the services'
// own NATS users may not do. Run it as the operator user (NATS_USER).
func runTopology(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("topology", flag.ContinueOnError)
	natsURL := fs.String("nats", envOr("NATS_URL", "nats://127.0.0.1:4333"), "NATS server URL")
	replicas := fs.Int("replicas", 1, "replicas of every stream (3 in production)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := bus.Connect(ctx, *natsURL, "cli", zap.NewNop(), cliNATSOptions())
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.ApplyTopology(ctx, bus.Topology{Replicas: *replicas}); err != nil {
		return err
	}
	fmt.Println("streams INCIDENTS, AFTERACTION, ACTIONS, DLQ and their buckets are up to date")
	return nil
}
