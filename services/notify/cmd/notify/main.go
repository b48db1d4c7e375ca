// Command notify runs the afteraction notify service: invitations,
// reminders, escalations, the debrief meeting's calendar invitations and
// action notices, by e-mail (SMTP) and chat webhooks.
package main

import (
	"context"
	"os"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/services/notify"
)

func main() {
	os.Exit(config.Main("notify", notify.LoadConfig, func(ctx context.Context, cfg notify.Config, log *zap.Logger) error {
		return notify.Run(ctx, cfg, notify.Deps{Log: log})
	}))
}
