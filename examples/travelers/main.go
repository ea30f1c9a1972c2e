// Command travelers runs the seed job of batchenrich end to end: NoETL's
// traveler_batch_enrichment_in_step fixture, done with batchenrich's
// defaults.
//
// It seeds traveler_batch_source with -seed-rows travelers, reads them in
// windows of -batch-size ordered by traveler_id (at most -max-batches),
// calls an httpbin-compatible profile API once per traveler (-concurrency
// in flight), validates and transforms each answer, and stores every
// traveler — failures included, as invalid rows — into
// traveler_batch_results with its batch_number. Each batch commits with its
// checkpoint, so running again with the same -execution-id resumes. It ends
// with a validation computed from the database and exits 0 only if every
// expected row is stored.
//
// With no flags it needs nothing but Go: the database is a SQLite file in
// the current directory and the API an httpbin served in-process.
//
//	go run ./examples/travelers
//	go run ./examples/travelers -dsn postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
//	go run ./examples/travelers -profile-url https://httpbin.org/anything
//
// With -retry-failed it instead replays the failures of the run
// -execution-id (its transient ones; every one with -retry-failed=all),
// writing the new answers over the failed rows.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/redact"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // PostgreSQL driver, "postgres"
	_ "modernc.org/sqlite" // SQLite driver, "sqlite" (pure Go)
)

// Exit statuses.
const (
	exitOK         = 0 // every expected row stored
	exitIncomplete = 1 // the run or its final validation failed
	exitUsage      = 2 // bad flags or an unreachable database or API
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is the whole program, minus process concerns, so tests can call it.
// Every bad input is refused here, before anything is written and before
// any HTTP request: flags, the database's reachability and existing
// schema, the API's reachability.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "travelers: "+format+"\n", a...)
		return code
	}
	cfg, err := parseFlags(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return fail(exitUsage, "%v", err)
	}

	if cfg.dryRun {
		if err := dryRun(ctx, cfg, stdout); err != nil {
			if refusedBeforeWork(err) {
				return fail(exitUsage, "%s", refusal(err))
			}
			return fail(exitUsage, "%v", err)
		}
		return exitOK
	}

	if cfg.profileURL == "" {
		api, err := startEmbeddedAPI()
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		defer api.Close()
		cfg.profileURL = api.URL()
		if cfg.bulk > 0 {
			cfg.profileURL = api.BulkURL()
		}
	} else if err := seedjob.DialAPI(ctx, cfg.profileURL); err != nil {
		return fail(exitUsage, "%v", err)
	}

	db, err := openDB(ctx, cfg)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	defer db.Close()
	j, err := newJob(db, cfg.jobSettings)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	defer j.enr.Close()
	if err := checkSchema(ctx, db); err != nil {
		return fail(exitUsage, "%v", err)
	}
	if !cfg.json {
		fmt.Fprintf(stderr, "database: %s\nprofile API: %s\nexecution id: %s\nstatus: %s\n", cfg.dbDesc, redact.String(cfg.profileURL), cfg.executionID, statusCommand(cfg, getenv))
	}
	if err := createTables(ctx, db, j.store); err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	if err := addFailureColumns(ctx, db); err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	if err := addPartitionColumn(ctx, db); err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	if cfg.retryFailed == retryOff {
		if err := seedjob.Seed(ctx, db, cfg.executionID, cfg.seedRows); err != nil {
			return fail(exitIncomplete, "%v", err)
		}
	}

	// The enrichment phase: what duration_ms measures.
	var (
		rep    batchenrich.Report
		runErr error
		replay *ReplaySummary
		events chan event
		bar    chan struct{}
	)
	if cfg.retryFailed != retryOff {
		rep, replay, runErr = j.replay(ctx, db, &cfg, stderr)
		if errors.Is(runErr, errNoSuchRun) {
			return fail(exitUsage, "%v", runErr)
		}
	} else if !cfg.json {
		expected := expectedRows(cfg.seedRows, cfg.batchSize, cfg.maxBatches)
		if cfg.partitions > 1 {
			expected = expectedRows(cfg.seedRows, cfg.batchSize, cfg.maxBatches*cfg.partitions)
		}
		before, err := storedRows(ctx, db, cfg.executionID)
		if err != nil {
			return fail(exitIncomplete, "%v", err)
		}
		events = make(chan event, 1024)
		bar = make(chan struct{})
		batches := (expected + cfg.batchSize - 1) / cfg.batchSize
		if cfg.partitions > 1 {
			batches += cfg.partitions - 1 // each partition may end on a short batch
		}
		p := newProgress(stderr, batches, expected, before)
		p.split = cfg.partitions > 1
		go func() { defer close(bar); p.follow(events) }()
	}
	if cfg.retryFailed == retryOff && cfg.partitions > 1 {
		rep, runErr = j.runPartitioned(ctx, db, cfg, events)
		if errors.Is(runErr, batchenrich.ErrInvalidConfig) {
			return fail(exitUsage, "%v", runErr)
		}
	} else if cfg.retryFailed == retryOff {
		runner, err := j.runner(cfg.jobSettings, tracerFor(events))
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		rep, runErr = runner.Run(ctx)
	}
	if events != nil {
		close(events)
		<-bar
	}
	if errors.Is(runErr, batchenrich.ErrPartitionsChanged) {
		// Refused before any request: the run's rows are another
		// partition count's, and a summary would blame this run for them.
		return fail(exitUsage, "%s", refusal(runErr))
	}
	if errors.Is(runErr, batchenrich.ErrRunLocked) {
		// The twin wrote nothing: a summary would report the other
		// runner's partial data as this run's failure.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		who := runHolder(hctx, db, cfg.executionID)
		if who == "" {
			who = "another process"
		}
		return fail(exitIncomplete, "execution id %s is being run by %s; nothing done here: wait for it to finish (run again with the same -execution-id to check)", cfg.executionID, who)
	}
	if refusedBeforeWork(runErr) {
		// The run's settings do not fit its checkpoint or the catalog:
		// bad input, refused before anything was enriched.
		return fail(exitUsage, "%s", refusal(runErr))
	}
	return finish(ctx, db, cfg, rep, replay, runErr, stdout, stderr)
}

// refusal is the one line saying why Run (or a dry run, with
// batchenrich.CheckResume) refused to start.
func refusal(err error) string {
	if errors.Is(err, batchenrich.ErrPartitionsChanged) {
		return fmt.Sprintf("%v (-partitions); nothing done here", err)
	}
	return oneLine(err)
}

// refusedBeforeWork reports whether Run refused to start: settings that
// differ from those the run's checkpoint recorded, or a configuration the
// catalog check rejected. Running again with the same flags fails alike,
// so no summary and no resume hint.
func refusedBeforeWork(err error) bool {
	return errors.Is(err, batchenrich.ErrCheckpointMismatch) || errors.Is(err, batchenrich.ErrPartitionsChanged) ||
		errors.Is(err, batchenrich.ErrInvalidConfig)
}

// finish validates the run from the database and prints the summary and
// the outcome: every error that happened, and how to resume.
func finish(ctx context.Context, db *sqlx.DB, cfg config, rep batchenrich.Report, replay *ReplaySummary, runErr error, stdout, stderr io.Writer) int {
	// The final validation, from the database, whatever happened above.
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	data, valErr := validate(vctx, db, cfg.executionID, cfg.batchSize, cfg.maxBatches)
	if valErr == nil && cfg.partitions > 1 {
		data.ExpectedRows, data.MissingRows, valErr = partitionedExpectation(vctx, db, cfg.executionID, cfg.batchSize, cfg.maxBatches, cfg.partitions)
	}
	var printErr error
	if valErr == nil {
		s := Summary{
			Status:      "ok",
			ExecutionID: cfg.executionID,
			Configured:  Configured{BatchSize: cfg.batchSize, MaxBatches: cfg.maxBatches, Concurrency: cfg.concurrency, Overlap: cfg.overlap, Adaptive: cfg.adaptive, Partitions: shownPartitions(cfg.partitions)},
			Data:        data,
			Execution: Execution{
				BatchesRun:     rep.BatchesRun,
				BatchesSkipped: rep.BatchesSkipped,
				DurationMS:     rep.Duration.Milliseconds(),
				Limits:         rep.Limits,
			},
			Replay: replay,
		}
		if runErr != nil || !data.OK() {
			s.Status = "failed"
		}
		if cfg.json {
			printErr = printJSON(stdout, s)
		} else {
			printErr = printTable(stdout, s)
		}
	}
	lines := outcome(ctx, resumeFlags(cfg), runErr, valErr, printErr, data)
	for _, l := range lines {
		fmt.Fprintln(stderr, "travelers: "+l)
	}
	if len(lines) > 0 {
		return exitIncomplete
	}
	return exitOK
}

// outcome is what the user must be told after the run, one line each:
// the run's error, the validation's, and, last, how to resume when the run
// stopped before its end.
func outcome(ctx context.Context, resume string, runErr, valErr, printErr error, data Data) []string {
	var lines []string
	switch {
	case runErr == nil:
	case ctx.Err() != nil:
		lines = append(lines, "interrupted: "+oneLine(runErr))
	default:
		lines = append(lines, "run failed: "+oneLine(runErr))
	}
	switch {
	case valErr != nil:
		lines = append(lines, "final validation failed: "+oneLine(valErr))
	case !data.OK():
		lines = append(lines, fmt.Sprintf("validation failed: %d of %d expected rows missing", data.MissingRows, data.ExpectedRows))
	}
	if printErr != nil {
		lines = append(lines, "print summary: "+oneLine(printErr))
	}
	if runErr != nil {
		lines = append(lines, "run again with "+resume+" to resume")
	}
	return lines
}

// resumeFlags are the flags that resume cfg's run, besides the others
// given.
func resumeFlags(cfg config) string {
	again := "-execution-id " + cfg.executionID
	if cfg.retryFailed != retryOff {
		again += " -retry-failed=" + cfg.retryFailed.String()
	}
	return again
}

// oneLine keeps an error (errors.Join puts one per line) on one line.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// openDB opens and pings the database within a few seconds.
func openDB(ctx context.Context, cfg config) (*sqlx.DB, error) {
	dsn := cfg.dsn
	if cfg.driver == "postgres" {
		dsn = withAppName(dsn)
	}
	db, err := sqlx.Open(cfg.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.dbDesc, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s cannot be reached: %w", cfg.dbDesc, err)
	}
	if cfg.driver == "postgres" {
		// The Runner needs the run lock's connection, the Sink's
		// transaction and the Source's prefetch at once.
		// Each partition needs as much.
		db.SetMaxOpenConns(max(8, cfg.concurrency/4, 3*cfg.partitions+2))
		db.SetMaxIdleConns(max(8, cfg.concurrency/4, 3*cfg.partitions+2))
	}
	return db, nil
}
