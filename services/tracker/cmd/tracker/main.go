// Command tracker runs the afteraction tracker service: improvement actions
// from completed reviews, status updates from trackers, overdue chasing.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // TRACKER_TIMEZONE resolves in images without a zone database

	"github.com/afteraction/afteraction/services/tracker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := tracker.LoadConfig(os.Getenv)
	if err == nil {
		err = tracker.Run(ctx, cfg, tracker.Deps{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tracker:", err)
		os.Exit(1)
	}
}
