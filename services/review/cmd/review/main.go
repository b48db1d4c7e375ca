// Command review runs the afteraction review service: lessons-learned reviews
// of registered incidents. Configuration comes from the environment (see
// review.LoadConfig).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/logging"
	"github.com/afteraction/afteraction/services/review"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := review.LoadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "review: configuration:", err)
		os.Exit(2)
	}
	log, err := logging.New(cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "review:", err)
		os.Exit(2)
	}
	defer log.Sync() //nolint:errcheck
	if err := review.Run(ctx, cfg, review.Deps{Log: log}); err != nil {
		log.Error("review stopped", zap.Error(err))
		os.Exit(1)
	}
}
