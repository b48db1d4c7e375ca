package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
)

func runDLQ(ctx context.Context, args []string) error {
	const usage = "usage: afteraction dlq list [--service S] | afteraction dlq replay [--service S] (--all | SEQ...)"
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("dlq "+args[0], flag.ContinueOnError)
	natsURL := fs.String("nats", envOr("NATS_URL", "nats://127.0.0.1:4333"), "NATS server URL")
	service := fs.String("service", "", "only the dead letters of this service (intake, review, report, tracker)")
	all := fs.Bool("all", false, "replay: every dead letter (of --service)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	b, err := bus.Connect(ctx, *natsURL, "cli", zap.NewNop(), cliNATSOptions())
	if err != nil {
		return err
	}
	defer b.Close()
	list, err := b.DeadLetters(ctx, *service)
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SEQ\tDEAD AT\tSERVICE\tSUBJECT\tEVENT\tDELIVERED\tREASON")
		for _, d := range list {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.DeadAt.UTC().Format(time.DateTime), d.Service, d.Subject,
				d.EventID, d.Delivered, d.Reason)
		}
		w.Flush()
		fmt.Printf("%d dead letters\n", len(list))
		return nil
	case "replay":
		var seqs []uint64
		if *all {
			for _, d := range list {
				seqs = append(seqs, d.Seq)
			}
		}
		for _, a := range fs.Args() {
			n, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a DLQ sequence number", a)
			}
			seqs = append(seqs, n)
		}
		if len(seqs) == 0 {
			return errors.New(usage)
		}
		for _, seq := range seqs {
			d, err := b.Replay(ctx, seq)
			if err != nil {
				return err
			}
			fmt.Printf("replayed #%d %s on %s (was: %s)\n", seq, d.EventID, d.Subject, d.Reason)
		}
		return nil
	default:
		return errors.New(usage)
	}
}
