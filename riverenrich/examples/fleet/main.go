// Command fleet runs the seed job of batchenrich (examples/travelers) on
// PostgreSQL as River jobs, one per key partition, worked on by any number
// of processes sharing the database.
//
// The enqueueing command seeds the source like travelers, enqueues the run
// (one unique job per partition; enqueued again with another -batch-size,
// -max-batches or -concurrency it is refused, exit 2, as its jobs keep the
// first enqueue's), works on it in this process too, waits
// until every partition is done, runs travelers' final validation from the
// database and prints the same summary (-json: travelers' shape, plus
// configured.partitions). It exits 0 only if every expected row is stored.
// While it waits it prints the command that shows the run's state from
// another shell (cmd/batchenrich status; the DSN as $DATABASE_URL, or
// with its password masked).
//
//	go run ./examples/fleet -dsn URL -profile-url URL -execution-id X -seed-rows N -batch-size B -partitions P -concurrency C [-json]
//
// A worker only works on jobs, until SIGINT or SIGTERM.
//
//	go run ./examples/fleet -dsn URL -profile-url URL -worker
//
// Both work only on the seed job's runs (riverenrich.Config.Job
// "travelers"): a worker of another job sharing the database never runs
// them. A partition failing with an error retrying cannot fix (a table
// refused by the checks, a profile API that is down so that every item of
// a batch failed) is cancelled at once, and the enqueueing command exits
// 1 within a second with its error, naming the partition; fix the cause
// and run it again to resume.
//
// Stopping: SIGINT or SIGTERM (to a worker or to the enqueueing command)
// stops softly: each partition the process holds finishes and commits the
// batch it is on (and a window it had read ahead), within 30 s, then goes
// back to the queue for any worker, its run lock released; nothing
// committed is enriched again. A second signal, or those 30 s passing,
// stops at once: the batches in flight are not written, and whoever
// continues enriches them again. An interrupted enqueueing command exits
// 1 saying how to resume.
//
// A worker refuses -execution-id, -seed-rows, -batch-size, -partitions and
// -max-batches (exit 2): a run's settings travel with its jobs. The
// -profile-url takes no {parameter} (the job sets the query only): one is
// refused with exit 2 before any request, and so are a database or a
// profile API host that cannot be reached (the API is dialled, sent no
// request), before anything is created.
//
// -concurrency is the total of HTTP calls in flight in the process, over
// every partition it works on; -max-partitions how many partitions it works
// on at once. With -budget NAME, the processes giving the same NAME share
// one budget for the profile API's host: -budget-concurrency calls in
// flight and -budget-rate requests per second over all of them
// (sqlbatch.Budget), each process's share renewed every second and
// returned to the others when it stops, or within 6 s when it is killed;
// with -budget-adaptive, each process's calls in flight also adapt to what
// the API admits (httpenrich.Adaptive, at most its share and
// -concurrency), and when the API refuses everything one process probes
// while the others wait (BudgetConfig.Adaptive); every process must give
// the same values (another is refused, exit 2).
// Whichever process starts first on a fresh database applies
// River's migration (riverenrich.Migrate; several starting at once take
// turns). A worker that dies is taken over (see riverenrich).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver, "postgres"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/redact"
	"github.com/batchenrich/batchenrich/riverenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

const (
	exitOK         = 0
	exitIncomplete = 1
	exitUsage      = 2
)

// stopTimeout bounds a soft stop: how long the partitions a process
// holds have to commit the batch each is on before they are cancelled.
const stopTimeout = 30 * time.Second

func main() {
	soft, hard, stop := signals()
	code := run(soft, hard, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// signals returns a context that the first SIGINT or SIGTERM cancels
// (stop softly: each partition commits the batch it is on) and one that
// the second cancels (stop at once), and a function releasing them.
func signals() (soft, hard context.Context, stop func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	soft, cancelSoft := context.WithCancel(context.Background())
	hard, cancelHard := context.WithCancel(context.Background())
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for n := 0; n < 2; n++ {
			select {
			case <-ch:
			case <-done:
				return
			}
			if n == 0 {
				cancelSoft()
			} else {
				cancelHard()
			}
		}
	}()
	return soft, hard, func() {
		signal.Stop(ch)
		close(done)
		<-exited
		cancelSoft()
		cancelHard()
	}
}

type config struct {
	jobSettings // the job's own (job.go)

	dsn, executionID      string
	seedRows, batchSize   int
	partitions            int
	maxBatches            int
	worker, json, verbose bool
	budget                string  // a shared budget's name, "" for none
	budgetConcurrency     int     // its ceiling over every process
	budgetRate            float64 // its requests per second over every process
	budgetAdaptive        bool    // the adaptive limit shared too
}

func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.dsn, "dsn", "", "PostgreSQL URL, postgres://… (default $DATABASE_URL)")
	fs.StringVar(&c.profileURL, "profile-url", "", "httpbin-compatible profile API URL, e.g. http://127.0.0.1:8080/anything (required)")
	fs.StringVar(&c.executionID, "execution-id", "", "run key; running again with the same id resumes (default: a new id)")
	fs.IntVar(&c.seedRows, "seed-rows", 2000, "source rows to seed (0..10000000)")
	fs.IntVar(&c.batchSize, "batch-size", 100, "rows per batch (1..100000)")
	fs.IntVar(&c.partitions, "partitions", 1, fmt.Sprintf("key partitions of the run, one River job each (1..%d)", 64))
	fs.IntVar(&c.concurrency, "concurrency", 25, "HTTP calls in flight at most in this process, over all its partitions (1..1000)")
	fs.IntVar(&c.maxBatches, "max-batches", 0, "batches at most per partition (0: no cap)")
	fs.IntVar(&c.maxPartitions, "max-partitions", 4, "partitions this process works on at once (1..64)")
	fs.DurationVar(&c.httpTimeout, "http-timeout", 10*time.Second, "timeout of each HTTP attempt")
	fs.IntVar(&c.httpRetries, "http-retries", 3, "HTTP retries after the first attempt (0..20)")
	fs.DurationVar(&c.takeover, "takeover-interval", riverenrich.DefaultTakeoverInterval, "how often to look for partitions of dead workers")
	fs.DurationVar(&c.slice, "slice", riverenrich.DefaultSlice, "how long a job works before it goes back to the queue at a batch boundary")
	fs.BoolVar(&c.worker, "worker", false, "only work on jobs, until SIGINT or SIGTERM")
	fs.BoolVar(&c.json, "json", false, "print the final summary as one JSON object on stdout")
	fs.BoolVar(&c.verbose, "v", false, "log River's and riverenrich's records to stderr")
	fs.StringVar(&c.budget, "budget", "", "name of a budget for the profile API's host shared by every process giving it (on this database); needs -budget-concurrency, -budget-rate or both")
	fs.IntVar(&c.budgetConcurrency, "budget-concurrency", 0, "the shared budget's HTTP calls in flight, over every process (0: none; 1..100000)")
	fs.Float64Var(&c.budgetRate, "budget-rate", 0, "the shared budget's requests per second, over every process (0: none; at most 1000000)")
	fs.BoolVar(&c.budgetAdaptive, "budget-adaptive", false, "adapt each process's HTTP calls in flight to what the API admits (httpenrich Adaptive, at most -concurrency) and share its outages: one process probes while the others wait; needs -budget")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "Usage: go run ./examples/fleet [flags]")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := seedjob.CheckBounds(
		seedjob.Bound{Flag: "-seed-rows", V: int64(c.seedRows), Lo: 0, Hi: 10_000_000},
		seedjob.Bound{Flag: "-batch-size", V: int64(c.batchSize), Lo: 1, Hi: 100_000},
		seedjob.Bound{Flag: "-partitions", V: int64(c.partitions), Lo: 1, Hi: 64},
		seedjob.Bound{Flag: "-concurrency", V: int64(c.concurrency), Lo: 1, Hi: 1000},
		seedjob.Bound{Flag: "-max-batches", V: int64(c.maxBatches), Lo: 0, Hi: 10_000_000},
		seedjob.Bound{Flag: "-max-partitions", V: int64(c.maxPartitions), Lo: 1, Hi: 64},
		seedjob.Bound{Flag: "-http-retries", V: int64(c.httpRetries), Lo: 0, Hi: 20},
	); err != nil {
		return c, err
	}
	switch {
	case c.budgetConcurrency < 0 || c.budgetConcurrency > 100_000:
		return c, fmt.Errorf("-budget-concurrency %d: must be between 0 and 100000", c.budgetConcurrency)
	case !(c.budgetRate >= 0 && c.budgetRate <= 1_000_000): // NaN too
		return c, fmt.Errorf("-budget-rate %v: must be between 0 and 1000000", c.budgetRate)
	case c.budget == "" && (c.budgetConcurrency > 0 || c.budgetRate > 0 || c.budgetAdaptive):
		return c, errors.New("-budget-concurrency, -budget-rate and -budget-adaptive need -budget: the name the processes sharing the budget give")
	case c.budget != "" && c.budgetConcurrency == 0 && c.budgetRate == 0:
		return c, fmt.Errorf("-budget %q: set -budget-concurrency, -budget-rate or both", seedjob.Truncate(c.budget))
	case c.budget != "" && !seedjob.SafeName(c.budget):
		return c, fmt.Errorf("-budget %q: use 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", seedjob.Truncate(c.budget))
	case c.httpTimeout <= 0 || c.httpTimeout > time.Hour:
		return c, fmt.Errorf("-http-timeout %s: must be positive and at most 1h", c.httpTimeout)
	case c.takeover <= 0 || c.takeover > time.Hour:
		return c, fmt.Errorf("-takeover-interval %s: must be positive and at most 1h", c.takeover)
	case c.slice <= 0 || c.slice > 24*time.Hour:
		return c, fmt.Errorf("-slice %s: must be positive and at most 24h", c.slice)
	}
	if c.dsn == "" {
		c.dsn = getenv("DATABASE_URL")
	}
	if !strings.HasPrefix(c.dsn, "postgres://") && !strings.HasPrefix(c.dsn, "postgresql://") {
		return c, errors.New("-dsn: a postgres:// URL is required (River runs on PostgreSQL)")
	}
	if _, err := url.Parse(c.dsn); err != nil {
		return c, errors.New("-dsn: not a valid URL")
	}
	u, err := url.Parse(c.profileURL)
	if c.profileURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, errors.New("-profile-url: an http:// or https:// URL is required")
	}
	if c.worker && c.executionID != "" {
		return c, errors.New("-worker and -execution-id: a worker works on every run's jobs; give one or the other")
	}
	if c.worker {
		// The run's settings travel with its jobs, from the enqueueing
		// command: a worker given one would silently ignore it.
		var set []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "seed-rows", "batch-size", "partitions", "max-batches":
				set = append(set, "-"+f.Name)
			}
		})
		if len(set) > 0 {
			return c, fmt.Errorf("-worker and %s: a worker takes each run's settings from its jobs (set them on the enqueueing command)", strings.Join(set, ", "))
		}
	}
	if c.executionID != "" {
		// travelers' safe set: a control character or an ANSI escape is
		// refused, and shown escaped, never sent to the terminal.
		if err := seedjob.CheckExecutionID(c.executionID); err != nil {
			return c, err
		}
	}
	if c.executionID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.executionID = "fleet-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
	}
	return c, nil
}

// run runs the command. The end of ctx (a first signal) stops it softly:
// each partition it works on commits the batch it is on, within
// stopTimeout, and goes back to the queue; the end of hard (a second
// signal) stops it at once.
func run(ctx, hard context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "fleet: "+format+"\n", a...)
		return code
	}
	cfg, err := parseFlags(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	dbDesc := redact.String(cfg.dsn)
	db, err := sqlx.Open("postgres", cfg.dsn)
	if err != nil {
		return fail(exitUsage, "database %s: %v", dbDesc, err)
	}
	defer db.Close()
	// Per partition: the run lock's session, the Sink's transaction and
	// the Source's read-ahead, held at once (the Runner refuses a smaller
	// pool before any work); and River's own few.
	conns := 3*cfg.maxPartitions + 4
	if cfg.budget != "" {
		conns++ // the budget's renewals
	}
	db.SetMaxOpenConns(conns)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = db.PingContext(pctx)
	if err == nil {
		err = serverHolds(pctx, db, conns)
		if err != nil {
			cancel()
			return fail(exitUsage, "%v", err)
		}
	}
	cancel()
	if err != nil {
		return fail(exitUsage, "database %s cannot be reached: %v", dbDesc, err)
	}
	if err := seedjob.DialAPI(ctx, cfg.profileURL); err != nil {
		return fail(exitUsage, "%v", err)
	}
	if err := riverenrich.Migrate(ctx, db.DB, ""); err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	if err := sqlbatch.ExecDDL(ctx, db, schema...); err != nil {
		return fail(exitIncomplete, "create tables: %v", err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if err := store.CreateTable(ctx); err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	var budget *sqlbatch.Budget
	if cfg.budget != "" {
		u, _ := url.Parse(cfg.profileURL) // parsed by parseFlags
		budget, err = sqlbatch.NewBudget(ctx, db, sqlbatch.BudgetConfig{Name: cfg.budget, Upstream: u.Host,
			MaxConcurrency: cfg.budgetConcurrency, Rate: cfg.budgetRate, Adaptive: cfg.budgetAdaptive})
		if errors.Is(err, batchenrich.ErrInvalidConfig) {
			return fail(exitUsage, "-budget %s: %v", cfg.budget, err)
		}
		if err != nil {
			return fail(exitIncomplete, "-budget %s: %v", cfg.budget, err)
		}
		defer budget.Close() // after the Client stopped and the Enricher closed
	}
	logger := slog.New(slog.DiscardHandler)
	if cfg.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	client, enr, err := newClient(db, store, cfg.jobSettings, budget, logger)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	defer enr.Close()
	started, stopped := false, false
	startClient := func() error {
		started = true
		return client.Start(ctx)
	}
	stop := func() error {
		if stopped || !started {
			return nil
		}
		stopped = true
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "fleet: stopping: each partition commits the batch it is on (at most %s); signal again to stop at once\n", stopTimeout)
		}
		sctx, cancel := context.WithTimeout(hard, stopTimeout)
		defer cancel()
		return client.Stop(sctx)
	}
	defer stop()

	if cfg.worker {
		if err := startClient(); err != nil {
			return fail(exitIncomplete, "%v", err)
		}
		if !cfg.json {
			fmt.Fprintf(stderr, "fleet worker on %s: working on jobs until SIGINT or SIGTERM\n", dbDesc)
		}
		<-ctx.Done()
		if err := stop(); err != nil {
			return fail(exitIncomplete, "%v", err)
		}
		return exitOK
	}

	if err := seedjob.Seed(ctx, db, cfg.executionID, cfg.seedRows); err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	if !cfg.json {
		fmt.Fprintf(stderr, "database: %s\nprofile API: %s\nexecution id: %s\n", dbDesc, redact.String(cfg.profileURL), cfg.executionID)
	}
	before, err := committed(ctx, store, cfg.executionID, cfg.partitions)
	if err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	began := time.Now()
	p := params{BatchSize: cfg.batchSize, MaxBatches: cfg.maxBatches, Concurrency: (cfg.concurrency + cfg.partitions - 1) / cfg.partitions}
	e, err := client.Enqueue(ctx, cfg.executionID, cfg.partitions, p)
	switch {
	case errors.Is(err, batchenrich.ErrPartitionsChanged):
		return fail(exitUsage, "%v (-partitions); nothing done", err)
	case errors.Is(err, batchenrich.ErrCheckpointMismatch):
		// The run exists with other settings (-batch-size,
		// -max-batches, -concurrency): its jobs keep theirs, so going
		// on would run other settings than these flags say.
		return fail(exitUsage, "%v (-batch-size, -max-batches, -concurrency); nothing done", err)
	case err != nil:
		return fail(exitIncomplete, "%v", err)
	}
	if err := startClient(); err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	if !cfg.json {
		fmt.Fprintf(stderr, "enqueued %d partitions of job %q; waiting for them (status: %s)\n", cfg.partitions, jobName, seedjob.StatusCommand(cfg.dsn, cfg.dsn == getenv("DATABASE_URL"), cfg.executionID))
	}
	runErr := client.Wait(ctx, e, riverenrich.WaitOptions{Interval: 100 * time.Millisecond, Progress: progress(stderr, !cfg.json)})
	elapsed := time.Since(began)
	if err := stop(); err != nil && runErr == nil {
		runErr = err
	}

	vctx, vcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer vcancel()
	data, err := validate(vctx, db, cfg.executionID, cfg.batchSize, cfg.maxBatches, cfg.partitions)
	if err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	after, err := committed(vctx, store, cfg.executionID, cfg.partitions)
	if err != nil {
		return fail(exitIncomplete, "%v", err)
	}
	s := Summary{
		Status:      "ok",
		ExecutionID: cfg.executionID,
		Configured:  Configured{BatchSize: cfg.batchSize, MaxBatches: cfg.maxBatches, Concurrency: cfg.concurrency, Partitions: cfg.partitions},
		Data:        data,
		Execution:   Execution{BatchesRun: after - before, BatchesSkipped: before, DurationMS: elapsed.Milliseconds()},
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
		return fail(exitIncomplete, "print summary: %v", err)
	}
	switch {
	case runErr != nil && ctx.Err() != nil:
		return fail(exitIncomplete, "interrupted: %v; run again with -execution-id %s -partitions %d to resume (the jobs stay queued for any worker)", runErr, cfg.executionID, cfg.partitions)
	case runErr != nil:
		return fail(exitIncomplete, "run failed: %v", runErr)
	case !data.OK():
		return fail(exitIncomplete, "validation failed: %d of %d expected rows missing", data.MissingRows, data.ExpectedRows)
	}
	return exitOK
}
