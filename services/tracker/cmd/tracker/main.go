// Command tracker runs the afteraction tracker service: improvement actions
// from completed reviews, status updates from trackers, overdue chasing.
package main

import (
	"context"
	"os"
	_ "time/tzdata" // TRACKER_TIMEZONE resolves in images without a zone database

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/services/tracker"
)

func main() {
	os.Exit(config.Main("tracker", tracker.LoadConfig, func(ctx context.Context, cfg tracker.Config, log *zap.Logger) error {
		return tracker.Run(ctx, cfg, tracker.Deps{Log: log})
	}))
}
