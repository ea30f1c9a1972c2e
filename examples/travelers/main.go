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
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/batchenrich/batchenrich"
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
	} else if err := dialAPI(ctx, cfg.profileURL); err != nil {
		return fail(exitUsage, "%v", err)
	}

	db, err := openDB(ctx, cfg)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	defer db.Close()
	if !cfg.json {
		fmt.Fprintf(stderr, "database: %s\nprofile API: %s\nexecution id: %s\n", cfg.dbDesc, cfg.profileURL, cfg.executionID)
	}

	j, err := newJob(db, cfg)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	defer j.enr.Close()
	if err := createTables(ctx, db); err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	if err := j.store.CreateTable(ctx); err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	if err := addFailureColumns(ctx, db); err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	if cfg.retryFailed == retryOff {
		if err := seed(ctx, db, cfg.executionID, cfg.seedRows); err != nil {
			return fail(exitIncomplete, "%v", err)
		}
	}

	// The enrichment phase: what duration_ms measures.
	var (
		rep    batchenrich.Report
		runErr error
		replay *ReplaySummary
		events chan batchenrich.Event
		bar    chan struct{}
	)
	if cfg.retryFailed != retryOff {
		rep, replay, runErr = j.replay(ctx, db, cfg, stderr)
		if errors.Is(runErr, errNoSuchRun) {
			return fail(exitUsage, "%v", runErr)
		}
	} else if !cfg.json {
		events = make(chan batchenrich.Event, 1024)
		bar = make(chan struct{})
		expected := min(cfg.seedRows, cfg.batchSize*cfg.maxBatches)
		p := newProgress(stderr, (expected+cfg.batchSize-1)/cfg.batchSize, expected)
		go func() { defer close(bar); p.follow(events) }()
	}
	if cfg.retryFailed == retryOff {
		runner, err := batchenrich.New[Traveler, Profile](j.source, j.enr, j.sink, j.options(cfg, events))
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		rep, runErr = runner.Run(ctx)
	}
	if events != nil {
		close(events)
		<-bar
	}

	// The final validation, from the database, whatever happened above.
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	data, err := validate(vctx, db, cfg.executionID, cfg.batchSize, cfg.maxBatches)
	if err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	s := Summary{
		Status:      "ok",
		ExecutionID: cfg.executionID,
		Configured:  Configured{BatchSize: cfg.batchSize, MaxBatches: cfg.maxBatches, Concurrency: cfg.concurrency, Overlap: cfg.overlap},
		Data:        data,
		Execution: Execution{
			BatchesRun:     rep.BatchesRun,
			BatchesSkipped: rep.BatchesSkipped,
			DurationMS:     rep.Duration.Milliseconds(),
		},
		Replay: replay,
	}
	if runErr != nil || !data.OK() {
		s.Status = "failed"
	}
	if cfg.json {
		err = printJSON(stdout, s)
	} else {
		err = printTable(stdout, s)
	}
	if err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	if runErr != nil {
		if ctx.Err() != nil {
			again := "-execution-id " + cfg.executionID
			if cfg.retryFailed != retryOff {
				again += " -retry-failed=" + cfg.retryFailed.String()
			}
			return fail(exitIncomplete, "interrupted: %v; run again with %s to resume", runErr, again)
		}
		return fail(exitIncomplete, "%v", runErr)
	}
	if !data.OK() {
		return fail(exitIncomplete, "validation failed: %d of %d expected rows missing", data.MissingRows, data.ExpectedRows)
	}
	return exitOK
}

// openDB opens and pings the database within a few seconds.
func openDB(ctx context.Context, cfg config) (*sqlx.DB, error) {
	db, err := sqlx.Open(cfg.driver, cfg.dsn)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
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
		db.SetMaxOpenConns(max(8, cfg.concurrency/4))
		db.SetMaxIdleConns(max(8, cfg.concurrency/4))
	}
	return db, nil
}

// dialAPI checks that the profile API's host accepts connections, sending
// no request.
func dialAPI(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("-profile-url: %w", err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return fmt.Errorf("profile API %s cannot be reached: %w", u.Redacted(), err)
	}
	return conn.Close()
}

// dryRun checks the database and API and prints the plan of windows,
// creating nothing and sending no enrichment request.
func dryRun(ctx context.Context, cfg config, w io.Writer) error {
	if cfg.driver == "sqlite" {
		path := sqlitePath(cfg.dsn)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(w, "database: %s (does not exist yet; a run would create it)\n", cfg.dbDesc)
		} else {
			cfg.dsn = "file:" + path + "?mode=ro&_pragma=busy_timeout(10000)"
			db, err := openDB(ctx, cfg)
			if err != nil {
				return err
			}
			db.Close()
			fmt.Fprintf(w, "database: %s (reachable)\n", cfg.dbDesc)
		}
	} else {
		db, err := openDB(ctx, cfg)
		if err != nil {
			return err
		}
		db.Close()
		fmt.Fprintf(w, "database: %s (reachable)\n", cfg.dbDesc)
	}
	if cfg.profileURL == "" {
		fmt.Fprintln(w, "profile API: embedded httpbin on loopback (started by a run)")
	} else {
		if err := dialAPI(ctx, cfg.profileURL); err != nil {
			return err
		}
		fmt.Fprintf(w, "profile API: %s (reachable)\n", cfg.profileURL)
	}
	expected := min(cfg.seedRows, cfg.batchSize*cfg.maxBatches)
	fmt.Fprintf(w, "execution id: %s\nplan: %d source rows, %d expected in %d batches of %d (cap %d), %d HTTP calls in flight\n",
		cfg.executionID, cfg.seedRows, expected, (expected+cfg.batchSize-1)/cfg.batchSize, cfg.batchSize, cfg.maxBatches, cfg.concurrency)
	for b := 1; (b-1)*cfg.batchSize < expected; b++ {
		lo := (b-1)*cfg.batchSize + 1
		fmt.Fprintf(w, "  batch %d: traveler_id %d..%d\n", b, lo, min(expected, b*cfg.batchSize))
	}
	return nil
}
