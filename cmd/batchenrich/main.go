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

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // PostgreSQL driver, "postgres"
	_ "modernc.org/sqlite" // SQLite driver, "sqlite" (pure Go)

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/sqldialect"
	"github.com/batchenrich/batchenrich/redact"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// Exit statuses.
const (
	exitOK      = 0 // done
	exitFailure = 1 // the database failed a query after it was reached
	exitUsage   = 2 // bad input: usage, flag, -dsn, unreachable database, no checkpoint table, unknown run key
)

// usage is the one-line summary printed with a usage error.
const usage = "usage: batchenrich runs|status RUNKEY|stop RUNKEY [-dsn DSN] [-table NAME] [-json] (runs: [-job NAME] [-state STATE] [-limit N]); -h for help"

// maxLimit bounds -limit.
const maxLimit = 1000

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// usageError is bad input: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func bad(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// command is a parsed command line.
type command struct {
	name   string // runs, status, stop
	runKey string // status and stop
	dsn    string
	table  string
	json   bool
	filter sqlbatch.RunFilter // runs
	db     database
}

// run is the whole program, minus process concerns, so that tests call
// it. It prints one line on stderr for any error, its secrets masked.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd, err := parse(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err == nil {
		err = cmd.exec(ctx, stdout)
	}
	if err == nil {
		return exitOK
	}
	line := "batchenrich: " + clean(strings.ReplaceAll(err.Error(), "\n", "; "))
	if cmd.dsn != "" {
		line = scrub(line, cmd.dsn)
	}
	fmt.Fprintln(stderr, line)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

// scrub removes from line the password of dsn, if line still holds it
// (an error of a driver quoting the connection string its own way).
func scrub(line, dsn string) string {
	for _, pw := range passwords(dsn) {
		if len(pw) >= 3 {
			line = strings.ReplaceAll(line, pw, redact.Mask)
		}
	}
	return line
}

// passwords returns the secrets of a PostgreSQL DSN: its URL password, or
// its keyword string's credential values.
func passwords(dsn string) []string {
	var out []string
	if redact.IsKeywordDSN(dsn) {
		kv, _ := redact.ParseKeywords(dsn)
		for _, p := range kv {
			if redact.Sensitive(p.Key) {
				out = append(out, p.Value)
			}
		}
		return out
	}
	if _, rest, ok := strings.Cut(dsn, "://"); ok {
		if at := strings.LastIndexByte(strings.SplitN(rest, "/", 2)[0], '@'); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				out = append(out, pw)
			}
		}
	}
	return out
}

// parse parses the command line: a subcommand, then its flags and
// arguments in any order ("--" ends the flags).
func parse(args []string, stderr io.Writer, getenv func(string) string) (command, error) {
	var c command
	if len(args) == 0 {
		return c, bad("no command; %s", usage)
	}
	c.name = args[0]
	switch c.name {
	case "runs", "status", "stop":
	case "-h", "-help", "--help", "help":
		printHelp(stderr)
		return c, flag.ErrHelp
	default:
		return c, bad("unknown command %q; %s", cut(c.name, 40), usage)
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is one line, from run
	fs.StringVar(&c.dsn, "dsn", "", "the database: postgres://… or host=… dbname=… for PostgreSQL, or a SQLite file (default $DATABASE_URL)")
	fs.StringVar(&c.table, "table", sqlbatch.DefaultCheckpointTable, "the checkpoint table (sqlbatch.CheckpointConfig.Table), optionally schema.table")
	fs.BoolVar(&c.json, "json", false, "print one JSON object on stdout")
	var state string
	if c.name == "runs" {
		fs.StringVar(&c.filter.Job, "job", "", "only the runs of this job (Durable.Job)")
		fs.StringVar(&state, "state", "", "only the runs in this state: running, done, failed or stopped")
		fs.IntVar(&c.filter.Limit, "limit", sqlbatch.DefaultRunsLimit, fmt.Sprintf("the most recently updated runs listed, at most (1..%d)", maxLimit))
	}
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "Usage: batchenrich %s [flags]%s\n", c.name, map[bool]string{true: " RUNKEY", false: ""}[c.name != "runs"])
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		return c, err
	}
	if err != nil {
		return c, bad("%s: %v", c.name, err)
	}
	switch {
	case c.name == "runs" && len(pos) > 0:
		return c, bad("runs: unexpected argument %q (runs takes no run key; see status)", cut(pos[0], 40))
	case c.name != "runs" && len(pos) == 0:
		return c, bad("%s: missing RUNKEY; usage: batchenrich %s [flags] RUNKEY", c.name, c.name)
	case c.name != "runs" && len(pos) > 1:
		return c, bad("%s: unexpected argument %q after RUNKEY (one run at a time)", c.name, cut(pos[1], 40))
	case c.name != "runs" && pos[0] == "":
		return c, bad("%s: RUNKEY is empty", c.name)
	case c.name != "runs":
		c.runKey = pos[0]
	}
	if c.name == "runs" {
		switch s := batchenrich.RunState(state); s {
		case "", batchenrich.StateRunning, batchenrich.StateDone, batchenrich.StateFailed, batchenrich.StateStopped:
			c.filter.State = s
		default:
			return c, bad("-state %q: want running, done, failed or stopped", cut(state, 40))
		}
		if c.filter.Limit < 1 || c.filter.Limit > maxLimit {
			return c, bad("-limit %d: must be between 1 and %d", c.filter.Limit, maxLimit)
		}
	}
	d, err := sqldialect.Detect("postgres")
	if err == nil {
		_, err = d.QuoteTable(c.table)
	}
	if err != nil {
		return c, bad("-table: %v", err)
	}
	fromEnv := c.dsn == ""
	if fromEnv {
		c.dsn = getenv("DATABASE_URL")
	}
	c.db, err = resolveDSN(c.dsn)
	if err != nil {
		if fromEnv && c.dsn != "" {
			return c, bad("%w (the value of $DATABASE_URL)", err)
		}
		return c, usageError{err}
	}
	return c, nil
}

// parseInterleaved parses fs's flags anywhere among args, returning the
// other arguments in order; those after "--" are arguments even if they
// start with '-'.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// exec opens the database and the store and runs the command.
func (c command) exec(ctx context.Context, stdout io.Writer) error {
	db, err := open(ctx, c.db)
	if err != nil {
		return err
	}
	defer db.Close()
	d, err := sqldialect.Detect(c.db.driver)
	if err != nil {
		return err
	}
	if _, err := d.Describe(ctx, db, c.table); errors.Is(err, sqldialect.ErrNoTable) {
		return bad("no checkpoint table %s in %s: no durable run was recorded there (or give its -table)", quoted(c.table), c.db.desc)
	} else if err != nil {
		return fmt.Errorf("checkpoint table %s in %s: %w", quoted(c.table), c.db.desc, err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{Table: c.table})
	if err != nil {
		return usageError{err}
	}
	switch c.name {
	case "runs":
		runs, err := store.Runs(ctx, c.filter)
		if err != nil {
			return err
		}
		if c.json {
			return writeJSON(stdout, runsJSON{Runs: toJSONs(runs)})
		}
		return printRuns(stdout, runs)
	case "status":
		st, err := c.status(ctx, store)
		if err != nil {
			return err
		}
		if c.json {
			return writeJSON(stdout, toJSON(st))
		}
		return printStatus(stdout, st)
	default:
		st, err := c.status(ctx, store)
		if err != nil {
			return err
		}
		n, err := store.RequestStop(ctx, c.runKey)
		if err != nil {
			return err
		}
		return printStop(stdout, c.json, st, n)
	}
}

// status reads the run c.runKey; an unknown key is bad input.
func (c command) status(ctx context.Context, store *sqlbatch.CheckpointStore) (sqlbatch.RunStatus, error) {
	st, err := store.Status(ctx, c.runKey)
	if errors.Is(err, batchenrich.ErrUnknownRun) {
		return st, usageError{err}
	}
	return st, err
}

// open opens db and reaches it within a few seconds; an unreachable
// database is bad input.
func open(ctx context.Context, d database) (*sqlx.DB, error) {
	db, err := sqlx.Open(d.driver, d.dsn)
	if err != nil {
		return nil, bad("database %s: %w", d.desc, err)
	}
	db.SetMaxOpenConns(2)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, bad("database %s cannot be reached: %w", d.desc, err)
	}
	return db, nil
}

// printHelp prints the usage of every command.
func printHelp(w io.Writer) {
	fmt.Fprint(w, `Usage:
  batchenrich runs   [-dsn DSN] [-table NAME] [-job NAME] [-state STATE] [-limit N] [-json]
  batchenrich status [-dsn DSN] [-table NAME] [-json] RUNKEY
  batchenrich stop   [-dsn DSN] [-table NAME] [-json] RUNKEY

runs      the most recently updated runs: job, state, progress per partition, rate, ETA, failures, last error
status    one run in detail, with its partitions
stop      ask a run to stop at its next batch boundary (recorded as stopped; running it again resumes it)

-dsn      postgres://… or host=… dbname=… (PostgreSQL), or an existing SQLite file (default $DATABASE_URL)
-table    the checkpoint table (default batchenrich_checkpoints)
-json     one JSON object on stdout

Exit status: 0 done, 1 the database failed a query, 2 bad input (usage, -dsn, unreachable database, unknown run).
Run 'batchenrich COMMAND -h' for a command's flags.
`)
}
