package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// config is the parsed command line.
type config struct {
	dsn         string
	profileURL  string
	seedRows    int
	batchSize   int
	maxBatches  int
	concurrency int
	executionID string
	httpTimeout time.Duration
	httpRetries int
	overlap     bool
	dryRun      bool
	json        bool
	retryFailed retryMode

	driver string // "postgres" or "sqlite", from dsn
	dbDesc string // where the database is, for people
}

// Limits of the flags, so that a typo fails at once rather than running
// for hours.
const (
	maxSeedRows    = 10_000_000
	maxBatchSize   = 100_000
	maxConcurrency = 1_000
	maxRetries     = 20
)

const defaultSQLiteFile = "travelers.db"

// parseFlags parses args (without the program name). getenv reads the
// environment ($DATABASE_URL).
func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("travelers", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is one line, from the caller
	fs.StringVar(&c.dsn, "dsn", "", "database: postgres://… for PostgreSQL, or a SQLite file path (default $DATABASE_URL, else ./"+defaultSQLiteFile+")")
	fs.StringVar(&c.profileURL, "profile-url", "", "httpbin-compatible profile API URL, e.g. https://httpbin.org/anything (default: one started in-process on loopback)")
	fs.IntVar(&c.seedRows, "seed-rows", 2000, "source rows to seed")
	fs.IntVar(&c.batchSize, "batch-size", 100, "rows per batch")
	fs.IntVar(&c.maxBatches, "max-batches", 20, "batches at most")
	fs.IntVar(&c.concurrency, "concurrency", 25, "HTTP calls in flight at most, within a batch")
	fs.StringVar(&c.executionID, "execution-id", "", "run key; rows are keyed by it and running again with the same id resumes (default: a new id)")
	fs.DurationVar(&c.httpTimeout, "http-timeout", 10*time.Second, "timeout of each HTTP attempt")
	fs.IntVar(&c.httpRetries, "http-retries", 3, "HTTP retries after the first attempt")
	fs.BoolVar(&c.overlap, "overlap", false, "enrich batch n+1 while batch n is written (writes and checkpoints still in order; a crash re-enriches up to two batches)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "check flags, database and API, print the plan; write nothing, call nothing")
	fs.BoolVar(&c.json, "json", false, "print the final summary as one JSON object on stdout")
	fs.Var(&c.retryFailed, "retry-failed", "replay the failures of run -execution-id: its transient ones, or every one with -retry-failed=all")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "Usage: go run ./examples/travelers [flags]")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case c.seedRows < 0 || c.seedRows > maxSeedRows:
		return c, fmt.Errorf("-seed-rows %d: must be between 0 and %d", c.seedRows, maxSeedRows)
	case c.batchSize < 1 || c.batchSize > maxBatchSize:
		return c, fmt.Errorf("-batch-size %d: must be between 1 and %d", c.batchSize, maxBatchSize)
	case c.maxBatches < 1:
		return c, fmt.Errorf("-max-batches %d: must be at least 1", c.maxBatches)
	case c.concurrency < 1 || c.concurrency > maxConcurrency:
		return c, fmt.Errorf("-concurrency %d: must be between 1 and %d", c.concurrency, maxConcurrency)
	case c.httpTimeout <= 0:
		return c, fmt.Errorf("-http-timeout %s: must be positive", c.httpTimeout)
	case c.httpRetries < 0 || c.httpRetries > maxRetries:
		return c, fmt.Errorf("-http-retries %d: must be between 0 and %d", c.httpRetries, maxRetries)
	case len(c.executionID) > 200:
		return c, errors.New("-execution-id: longer than 200 characters")
	case c.retryFailed != retryOff && c.executionID == "":
		return c, errors.New("-retry-failed: needs the -execution-id of the run whose failures to replay")
	case c.retryFailed != retryOff && c.dryRun:
		return c, errors.New("-retry-failed and -dry-run: give one or the other")
	}
	if c.profileURL != "" {
		u, err := url.Parse(c.profileURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("-profile-url %q: must be an http:// or https:// URL", c.profileURL)
		}
	}
	if c.dsn == "" {
		c.dsn = getenv("DATABASE_URL")
	}
	if err := c.resolveDSN(); err != nil {
		return c, err
	}
	if c.executionID == "" {
		c.executionID = newExecutionID()
	}
	return c, nil
}

// resolveDSN picks the driver for c.dsn.
func (c *config) resolveDSN() error {
	d := c.dsn
	switch {
	case d == "":
		abs, err := filepath.Abs(defaultSQLiteFile)
		if err != nil {
			return fmt.Errorf("-dsn: %w", err)
		}
		c.driver, c.dbDesc, c.dsn = "sqlite", "SQLite file "+abs, sqliteDSN(abs)
	case strings.HasPrefix(d, "postgres://") || strings.HasPrefix(d, "postgresql://"):
		u, err := url.Parse(d)
		if err != nil {
			return fmt.Errorf("-dsn: not a valid PostgreSQL URL: %v", redact(err))
		}
		c.driver, c.dbDesc = "postgres", "PostgreSQL "+u.Redacted()
	case strings.HasPrefix(d, "sqlite://"), strings.HasPrefix(d, "sqlite:"), strings.HasPrefix(d, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(d, "sqlite://"), "sqlite:"), "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path == "" {
			return fmt.Errorf("-dsn %q: no SQLite file path", d)
		}
		c.driver, c.dbDesc, c.dsn = "sqlite", "SQLite file "+path, sqliteDSN(path)
	case strings.Contains(d, "://"):
		scheme, _, _ := strings.Cut(d, "://")
		return fmt.Errorf("-dsn: unsupported scheme %q (use postgres:// or a SQLite file path)", scheme)
	default:
		c.driver, c.dbDesc, c.dsn = "sqlite", "SQLite file "+d, sqliteDSN(d)
	}
	return nil
}

// sqliteDSN opens path with WAL, a busy timeout and immediate write
// transactions, as sqlbatch recommends.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

// redact keeps a URL parse error from echoing a password.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func newExecutionID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "travelers-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// sqlitePath is the file path inside a DSN made by sqliteDSN.
func sqlitePath(dsn string) string {
	p := strings.TrimPrefix(dsn, "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}
