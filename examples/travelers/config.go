package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/redact"
)

// config is the parsed command line.
type config struct {
	jobSettings // the job's own (job.go)

	dsn         string
	seedRows    int
	partitions  int
	dryRun      bool
	json        bool
	retryFailed retryMode

	driver     string // "postgres" or "sqlite", from dsn
	dbDesc     string // where the database is, for people: secrets masked
	sqlitePath string // the SQLite file, if driver is "sqlite"
}

// Limits of the flags, so that a typo fails at once rather than running
// for hours, and so that no product of them overflows.
const (
	maxSeedRows    = 10_000_000
	maxBatchSize   = 100_000
	maxMaxBatches  = 10_000_000
	maxConcurrency = 1_000
	maxRetries     = 20
	maxBulk        = maxBulkTravelers
	maxHTTPTimeout = time.Hour
)

// profileParams are the -profile-url template parameters the job fills,
// per traveler.
var profileParams = []string{"traveler_id", "traveler_name"}

// parseFlags parses args (without the program name). getenv reads the
// environment ($DATABASE_URL). Its errors are one line and never show a
// secret.
func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("travelers", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is one line, from the caller
	fs.StringVar(&c.dsn, "dsn", "", "database: postgres://… or host=… dbname=… for PostgreSQL, or a SQLite file (/abs/x.db, ./x, x.db, file:x.db) (default $DATABASE_URL, else ./"+defaultSQLiteFile+")")
	fs.StringVar(&c.profileURL, "profile-url", "", "httpbin-compatible profile API URL, e.g. https://httpbin.org/anything; may use {traveler_id} and {traveler_name} (default: one started in-process on loopback)")
	fs.IntVar(&c.seedRows, "seed-rows", 2000, fmt.Sprintf("source rows to seed (0..%d)", maxSeedRows))
	fs.IntVar(&c.batchSize, "batch-size", 100, fmt.Sprintf("rows per batch (1..%d)", maxBatchSize))
	fs.IntVar(&c.maxBatches, "max-batches", 20, fmt.Sprintf("batches at most (1..%d)", maxMaxBatches))
	fs.IntVar(&c.concurrency, "concurrency", 25, fmt.Sprintf("HTTP calls in flight at most, in total (1..%d); with -partitions P, shared by the P partitions (8 partitions at 25 each: 200)", maxConcurrency))
	fs.IntVar(&c.partitions, "partitions", 1, fmt.Sprintf("key partitions worked on at once, each its own ordered run with its own batch numbers and checkpoint; -max-batches caps each (1..%d; 1 is one ordered stream)", maxPartitions))
	fs.StringVar(&c.executionID, "execution-id", "", "run key: 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit; rows are keyed by it and running again with the same id resumes (default: a new id)")
	fs.DurationVar(&c.httpTimeout, "http-timeout", 10*time.Second, "timeout of each HTTP attempt (at most "+maxHTTPTimeout.String()+")")
	fs.IntVar(&c.httpRetries, "http-retries", 3, fmt.Sprintf("HTTP retries after the first attempt (0..%d)", maxRetries))
	fs.IntVar(&c.bulk, "bulk", 0, fmt.Sprintf("travelers per HTTP request (0..%d): with N > 0, one POST per group of up to N travelers to the embedded API's bulk endpoint (or to -profile-url, which must speak its protocol), matched by traveler_id; 0 is one GET per traveler", maxBulk))
	fs.BoolVar(&c.overlap, "overlap", false, "enrich batch n+1 while batch n is still enriched or written (writes and checkpoints still in order; a crash re-enriches up to two batches)")
	fs.BoolVar(&c.adaptive, "adaptive", false, "adapt the HTTP calls in flight to what the profile API admits (429, 503, latency, rate-limit headers), -concurrency being the ceiling")
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
		return c, fmt.Errorf("unexpected argument %q", truncate(fs.Arg(0)))
	}
	if err := c.checkNumbers(); err != nil {
		return c, err
	}
	switch {
	case c.retryFailed != retryOff && c.executionID == "":
		return c, errors.New("-retry-failed: needs the -execution-id of the run whose failures to replay")
	case c.retryFailed != retryOff && c.dryRun:
		return c, errors.New("-retry-failed and -dry-run: give one or the other")
	case c.retryFailed != retryOff && c.partitions > 1:
		return c, errors.New("-retry-failed and -partitions: a replay is one ordered stream; give -retry-failed without -partitions")
	case c.dryRun && c.partitions > 1:
		return c, errors.New("-dry-run and -partitions: the plan is printed for one stream only; give -dry-run without -partitions")
	}
	if c.executionID != "" {
		if err := seedjob.CheckExecutionID(c.executionID); err != nil {
			return c, err
		}
	}
	if err := c.checkProfileURL(); err != nil {
		return c, err
	}
	if c.bulk > 0 && len(c.pathParams) > 0 {
		return c, errors.New("-bulk and a -profile-url with parameters: a bulk request carries its travelers in its body; give the bulk endpoint's URL without {…}")
	}
	fromEnv := c.dsn == ""
	if fromEnv {
		c.dsn = getenv("DATABASE_URL")
	}
	if err := c.resolveDSN(); err != nil {
		if fromEnv {
			return c, fmt.Errorf("%w (the value of $DATABASE_URL)", err)
		}
		return c, err
	}
	if c.executionID == "" {
		c.executionID = newExecutionID()
	}
	return c, nil
}

// checkNumbers bounds every numeric flag. Add a line for a new one.
func (c *config) checkNumbers() error {
	if err := seedjob.CheckBounds(
		seedjob.Bound{Flag: "-seed-rows", V: int64(c.seedRows), Lo: 0, Hi: maxSeedRows},
		seedjob.Bound{Flag: "-batch-size", V: int64(c.batchSize), Lo: 1, Hi: maxBatchSize},
		seedjob.Bound{Flag: "-max-batches", V: int64(c.maxBatches), Lo: 1, Hi: maxMaxBatches},
		seedjob.Bound{Flag: "-concurrency", V: int64(c.concurrency), Lo: 1, Hi: maxConcurrency},
		seedjob.Bound{Flag: "-partitions", V: int64(c.partitions), Lo: 1, Hi: maxPartitions},
		seedjob.Bound{Flag: "-http-retries", V: int64(c.httpRetries), Lo: 0, Hi: maxRetries},
		seedjob.Bound{Flag: "-bulk", V: int64(c.bulk), Lo: 0, Hi: maxBulk},
	); err != nil {
		return err
	}
	if c.httpTimeout <= 0 || c.httpTimeout > maxHTTPTimeout {
		return fmt.Errorf("-http-timeout %s: must be positive and at most %s", c.httpTimeout, maxHTTPTimeout)
	}
	return nil
}

// templateParam finds the {name} parameters of a URL template.
var templateParam = regexp.MustCompile(`\{([^{}]*)\}`)

// checkProfileURL refuses a -profile-url that is not an http(s) URL, or
// whose template has a parameter the job does not fill.
func (c *config) checkProfileURL() error {
	if c.profileURL == "" {
		return nil
	}
	u, err := url.Parse(c.profileURL)
	if err != nil {
		// The parser's message can hold part of a password.
		return errors.New("-profile-url: not a valid URL (percent-encode any '/', '?', '#', '@' or ':' in a user name or password)")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-profile-url %s: must be an http:// or https:// URL", redact.String(c.profileURL))
	}
	for _, m := range templateParam.FindAllStringSubmatch(c.profileURL, -1) {
		if !slices.Contains(profileParams, m[1]) {
			return fmt.Errorf("-profile-url: parameter {%s} is not one the job fills (it fills {traveler_id} and {traveler_name})", truncate(m[1]))
		}
		if !slices.Contains(c.pathParams, m[1]) {
			c.pathParams = append(c.pathParams, m[1])
		}
	}
	if c.pathParams == nil {
		c.pathParams = []string{}
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string) string { return seedjob.Truncate(s) }

// expectedRows is min(seedRows, batchSize × maxBatches), without
// computing a product that could overflow.
func expectedRows(seedRows, batchSize, maxBatches int) int {
	if maxBatches >= (seedRows+batchSize-1)/batchSize {
		return seedRows
	}
	return batchSize * maxBatches // < seedRows
}

func newExecutionID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "travelers-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}
