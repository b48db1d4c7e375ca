// Command intake runs the intake service: it registers closed incidents from
// ticketing systems (see package intake). It is configured by environment
// variables (see intake.LoadConfig) and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/logging"
	"github.com/afteraction/afteraction/services/intake"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := intake.LoadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log, err := logging.New(cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		return 2
	}
	defer log.Sync() //nolint:errcheck
	if err := intake.Run(ctx, cfg, intake.Deps{Log: log}); err != nil {
		log.Error("intake failed", zap.Error(err))
		return 1
	}
	return 0
}
