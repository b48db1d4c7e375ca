// Command report runs the afteraction report service.
package main

import (
	"context"
	"os"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/services/report"
)

func main() {
	os.Exit(config.Main("report", report.LoadConfig, func(ctx context.Context, cfg report.Config, log *zap.Logger) error {
		return report.Run(ctx, cfg, report.Deps{Log: log})
	}))
}
