package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/intake"
)

func runPublish(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	natsURL := fs.String("nats", envOr("NATS_URL", "nats://127.0.0.1:4333"), "NATS server URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: afteraction publish [--nats URL] <incident.json>")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	inc, err := events.Decode[events.IncidentClosed](events.TypeIncidentClosed, data)
	if err != nil {
		return describeInvalid(fs.Arg(0), err)
	}
	b, err := bus.Connect(ctx, *natsURL, "cli", zap.NewNop(), cliNATSOptions())
	if err != nil {
		return err
	}
	defer b.Close()
	env, err := events.New(events.TypeIncidentClosed, "afteraction/cli", inc.ExternalID, json.RawMessage(data))
	if err != nil {
		return err
	}
	subject := events.SubjectIncidentClosedPrefix + inc.Source
	if err := b.Publish(ctx, subject, env); err != nil {
		return err
	}
	fmt.Printf("published %s/%s on %s as event %s; incident id %s\n", inc.Source, inc.ExternalID, subject, env.ID,
		intake.IncidentID(inc.Source, inc.ExternalID))
	return nil
}

// describeInvalid turns a validation error into one line per problem.
func describeInvalid(what string, err error) error {
	var ve *events.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := fmt.Sprintf("%s is not a valid %s:", what, ve.Type)
	for _, p := range ve.Problems {
		field := p.Field
		if field == "" {
			field = "(document)"
		}
		msg += fmt.Sprintf("\n  %s: %s", field, p.Reason)
	}
	return errors.New(msg)
}
