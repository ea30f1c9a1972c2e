// Command travelers runs the seed job (2000 travelers, 20 batches of 100,
// one profile call each, on an embedded SQLite file and an in-process
// httpbin) under OpenTelemetry: spans on standard output (or a file) with
// the stdout exporter, and metrics for Prometheus on -metrics-addr, so a
// long run can be watched from outside the process.
//
//	go run ./examples/travelers -metrics-addr 127.0.0.1:9464 -traces spans.jsonl
//	curl -s 127.0.0.1:9464/metrics | grep batchenrich_
//
// The spans nest batchenrich.run → batchenrich.batch → batchenrich.item →
// one HTTP client span per attempt (named GET, from Tracer.Transport). The
// metrics are otelenrich's (batchenrich_items_total,
// batchenrich_run_batches_done, …).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
)

// config is the command line.
type config struct {
	db          string // SQLite file
	profileURL  string // "" for the in-process httpbin
	rows        int
	batchSize   int
	maxBatches  int
	concurrency int
	executionID string
	traces      string // "-" for standard output, "off", or a file
	metricsAddr string // "" for no metrics server
	linger      time.Duration

	// served, if set, receives the metrics server's address once it
	// listens; finished, if set, is closed when the run is over (the
	// server may linger). For tests.
	served   chan<- string
	finished chan<- struct{}
}

// maxRows bounds -rows: the seed's rows are written to the SQLite file
// (and its WAL) before the run.
const maxRows = 10_000_000

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("travelers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.db, "db", filepath.Join(os.TempDir(), "batchenrich-otel-travelers.db"), "SQLite database `file`")
	fs.StringVar(&c.profileURL, "profile-url", "", "httpbin-compatible `URL` whose query is echoed in \"args\" (default: an in-process httpbin)")
	fs.IntVar(&c.rows, "rows", 2000, fmt.Sprintf("travelers to seed (0..%d)", maxRows))
	fs.IntVar(&c.batchSize, "batch-size", 100, "items per batch (1..100000)")
	fs.IntVar(&c.maxBatches, "max-batches", 20, "batches per run at most (0..10000000; 0 for no cap)")
	fs.IntVar(&c.concurrency, "concurrency", 25, "profile calls in flight at most (1..1000)")
	fs.StringVar(&c.executionID, "execution-id", "", "run key: 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit; running again with the same one resumes (default: a new one)")
	fs.StringVar(&c.traces, "traces", "-", "where the spans go: - for standard output, off, or a `file`")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`addr`/metrics during the run (e.g. 127.0.0.1:9464)")
	fs.DurationVar(&c.linger, "linger", 0, "keep serving metrics this long after the run, for a last scrape")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", seedjob.Truncate(fs.Arg(0)))
	}
	// The bounds and the execution id's safe set are those of the other
	// seed-job programs (package seedjob): a typo fails at once rather
	// than filling a disk, and an id is never printed raw.
	if err := seedjob.CheckBounds(
		seedjob.Bound{Flag: "-rows", V: int64(c.rows), Lo: 0, Hi: maxRows},
		seedjob.Bound{Flag: "-batch-size", V: int64(c.batchSize), Lo: 1, Hi: 100_000},
		seedjob.Bound{Flag: "-max-batches", V: int64(c.maxBatches), Lo: 0, Hi: 10_000_000},
		seedjob.Bound{Flag: "-concurrency", V: int64(c.concurrency), Lo: 1, Hi: 1000},
	); err != nil {
		return c, err
	}
	switch {
	case c.linger < 0 || c.linger > time.Hour:
		return c, fmt.Errorf("-linger %s: must be between 0 and 1h", c.linger)
	case c.linger > 0 && c.metricsAddr == "":
		return c, errors.New("-linger needs -metrics-addr")
	}
	if c.executionID != "" {
		if err := seedjob.CheckExecutionID(c.executionID); err != nil {
			return c, err
		}
	}
	if c.executionID == "" {
		c.executionID = "travelers-otel-" + time.Now().UTC().Format("20060102-150405.000000")
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "travelers:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "travelers:", err)
		os.Exit(1)
	}
}
