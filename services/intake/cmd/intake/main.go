// Command intake runs the intake service: it registers closed incidents from
// ticketing systems (see package intake). It is configured by environment
// variables (see intake.LoadConfig) and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"os"
	_ "time/tzdata" // WEBHOOK_<SOURCE>_TZ resolves in images without a zone database

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/services/intake"
)

func main() {
	os.Exit(config.Main("intake", intake.LoadConfig, func(ctx context.Context, cfg intake.Config, log *zap.Logger) error {
		return intake.Run(ctx, cfg, intake.Deps{Log: log})
	}))
}
