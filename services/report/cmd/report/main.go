// Command report runs the afteraction report service.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/logging"
	"github.com/afteraction/afteraction/services/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := report.LoadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report: config:", err)
		os.Exit(2)
	}
	log, err := logging.New(cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	defer log.Sync() //nolint:errcheck
	if err := report.Run(ctx, cfg, report.Deps{Log: log}); err != nil {
		log.Error("report failed", zap.Error(err))
		os.Exit(1)
	}
}
