// Command afteraction is the operator CLI: `dev` runs an embedded NATS and all
// four services in one process, `demo` runs the pipeline end to end and leaves a
// report PDF, `publish` sends a closed incident, `import` back-fills historical
// incidents, and `verify` checks that a report PDF is an authentic, unaltered
// version, and `dlq` lists or replays what consumers gave up on.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: afteraction <command> [flags]

commands:
  dev       run embedded NATS + intake, review, report and tracker in one process
  demo      run the pipeline end to end once and write the report PDF (what make demo runs)
  publish   publish a closed incident (canonical JSON) from a file
  import    back-fill historical closed incidents from a JSON array or JSON lines file
  verify    check offline that a report PDF is authentic and unaltered (--cert); --api: and published
  dlq       list the messages consumers gave up on, or replay them once the cause is fixed
  topology  create the streams and apply a changed configuration (as the operator user)
  chaos     the fault suite: every service as processes, kills, NATS and Postgres faults, invariant report

run "afteraction <command> -h" for a command's flags
`

func main() {
	if code, ok := serveChaosChild(); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "dev":
		err = runDev(ctx, args)
	case "demo":
		err = runDemo(ctx, args)
	case "publish":
		err = runPublish(ctx, args)
	case "import":
		err = runImport(ctx, args)
	case "verify":
		err = runVerify(ctx, args)
	case "dlq":
		err = runDLQ(ctx, args)
	case "chaos":
		err = runChaos(ctx, args)
	case "topology":
		err = runTopology(ctx, args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "afteraction: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	var exit *exitError
	if errors.As(err, &exit) {
		fmt.Fprintln(os.Stderr, exit.msg)
		os.Exit(exit.code)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "afteraction %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
