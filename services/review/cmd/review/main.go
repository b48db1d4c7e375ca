// Command review runs the afteraction review service: lessons-learned reviews
// of registered incidents. Configuration comes from the environment (see
// review.LoadConfig).
package main

import (
	"context"
	"os"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/services/review"
)

func main() {
	os.Exit(config.Main("review", review.LoadConfig, func(ctx context.Context, cfg review.Config, log *zap.Logger) error {
		return review.Run(ctx, cfg, review.Deps{Log: log})
	}))
}
