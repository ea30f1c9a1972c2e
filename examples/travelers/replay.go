package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// retryMode is the value of -retry-failed: a boolean-style flag, so that
// "-retry-failed" alone means transient failures and "-retry-failed=all"
// every failure.
type retryMode int

const (
	retryOff       retryMode = iota
	retryTransient           // -retry-failed, -retry-failed=transient
	retryAll                 // -retry-failed=all
)

// String returns the flag's value as it would be given.
func (m *retryMode) String() string {
	if m == nil {
		return "false"
	}
	switch *m {
	case retryTransient:
		return "transient"
	case retryAll:
		return "all"
	default:
		return "false"
	}
}

// Set parses the flag's value.
func (m *retryMode) Set(s string) error {
	switch s {
	case "true", "transient":
		*m = retryTransient
	case "all":
		*m = retryAll
	case "false":
		*m = retryOff
	default:
		return fmt.Errorf("want no value (transient failures), =transient or =all")
	}
	return nil
}

// IsBoolFlag lets -retry-failed be given without a value.
func (m *retryMode) IsBoolFlag() bool { return true }

// scope names the failures the replay retries: "transient" or "all".
func (m retryMode) scope() string {
	if m == retryAll {
		return "all"
	}
	return "transient"
}

// addFailureColumns adds the failure columns to traveler_batch_results
// where they are missing (a table made before they existed).
func addFailureColumns(ctx context.Context, db *sqlx.DB) error {
	for _, c := range []struct{ name, typ string }{{classColumn, "TEXT"}, {attemptsColumn, "INTEGER"}} {
		has, err := hasColumn(ctx, db, "traveler_batch_results", c.name)
		if err != nil {
			return fmt.Errorf("add column %s: %w", c.name, err)
		}
		if has {
			continue
		}
		q := `ALTER TABLE traveler_batch_results ADD COLUMN ` + c.name + ` ` + c.typ
		if db.DriverName() == "postgres" {
			q = `ALTER TABLE traveler_batch_results ADD COLUMN IF NOT EXISTS ` + c.name + ` ` + c.typ
		}
		if _, err := db.ExecContext(ctx, q); err != nil {
			// Another process may have added it meanwhile (SQLite has
			// no IF NOT EXISTS here).
			if has, herr := hasColumn(ctx, db, "traveler_batch_results", c.name); herr == nil && has {
				continue
			}
			return fmt.Errorf("add column %s: %w", c.name, err)
		}
	}
	return nil
}

func hasColumn(ctx context.Context, db *sqlx.DB, table, column string) (bool, error) {
	// The table as ALTER TABLE would find it, through the search_path.
	q := `SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`
	if db.DriverName() != "postgres" {
		q = `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`
	}
	var n int
	err := db.GetContext(ctx, &n, q, table, column)
	return n > 0, err
}

// ReplaySummary describes a -retry-failed invocation.
type ReplaySummary struct {
	Scope           string `json:"scope"`             // "transient" or "all"
	Number          int    `json:"number"`            // the replay's number, from 1
	NothingToReplay bool   `json:"nothing_to_replay"` // the run had no failure in scope
	Replayed        int    `json:"replayed"`          // items retried and stored by this invocation
	Recovered       int    `json:"recovered"`         // of them, enriched this time
	StillFailed     int    `json:"still_failed"`      // failures stored for the run afterwards, any class
	StillTransient  int    `json:"still_transient"`   // of them, transient: what -retry-failed would retry
}

// errNoSuchRun is returned for -retry-failed of an execution id with
// nothing committed.
var errNoSuchRun = errors.New("no such run")

// replay runs the replay of cfg.executionID's failures that
// -retry-failed asks for. It sets cfg.partitions to the partition count
// the run was recorded with, for the final validation.
func (j *job) replay(ctx context.Context, db *sqlx.DB, cfg *config, stderr io.Writer) (batchenrich.Report, *ReplaySummary, error) {
	s := &ReplaySummary{Scope: cfg.retryFailed.scope()}
	cp, err := j.store.Load(ctx, cfg.executionID)
	if err != nil {
		return batchenrich.Report{}, nil, err
	}
	if cp.Batch == 0 && !cp.Done && cp.Partitions == 0 {
		return batchenrich.Report{}, nil, fmt.Errorf("-retry-failed: %w %q here: nothing was committed under that -execution-id", errNoSuchRun, cfg.executionID)
	}
	// A run split into partitions records its count under its own key;
	// the replay, one stream, covers them all.
	cfg.partitions = max(1, cp.Partitions)
	failed, err := sqlbatch.NewFailedSource[Traveler](db, sqlbatch.FailedSourceConfig{
		Source:      sourceConfig(cfg.executionID),
		Table:       "traveler_batch_results",
		On:          map[string]string{"execution_id": "execution_id", "traveler_id": "traveler_id"},
		ClassColumn: classColumn,
		AllClasses:  cfg.retryFailed == retryAll,
	})
	if err != nil {
		return batchenrich.Report{}, nil, err
	}
	opts := j.options(cfg.jobSettings, nil)
	opts.MaxBatches = 0 // the failures are the run's rows, which its cap bounded already
	// Retrying every failure, permanent ones included, expects batches in
	// which every item fails again: store them. A replay of transient
	// failures keeps the all-failed stop: an outage that goes on stops it,
	// leaving the stored failures as they were, to be resumed later.
	opts.AllowAllFailed = cfg.retryFailed == retryAll
	p, err := batchenrich.NewReplay[Traveler, Profile](failed, j.enr, j.sink, opts)
	if err != nil {
		return batchenrich.Report{}, nil, err
	}
	if !cfg.json {
		all, transient, err := countFailures(ctx, db, cfg.executionID)
		if err != nil {
			return batchenrich.Report{}, nil, err
		}
		n := transient
		if cfg.retryFailed == retryAll {
			n = all
		}
		fmt.Fprintf(stderr, "replaying the %s failures of %s: %d to retry\n", s.Scope, cfg.executionID, n)
	}
	rr, runErr := p.Run(ctx)
	s.Number, s.NothingToReplay = rr.Number, rr.NothingToReplay
	s.Replayed, s.Recovered = rr.Written, rr.Enriched
	cctx := context.WithoutCancel(ctx)
	if s.StillFailed, s.StillTransient, err = countFailures(cctx, db, cfg.executionID); err != nil {
		return rr.Report, s, errors.Join(runErr, err)
	}
	if s.NothingToReplay && !cfg.json {
		fmt.Fprintf(stderr, "nothing to replay: %s has no %s failures\n", cfg.executionID, s.Scope)
	}
	return rr.Report, s, runErr
}

// countFailures counts the failures stored for executionID: all, and the
// transient ones.
func countFailures(ctx context.Context, db *sqlx.DB, executionID string) (all, transient int, err error) {
	var c struct {
		All       int `db:"all_failed"`
		Transient int `db:"transient"`
	}
	err = db.GetContext(ctx, &c, db.Rebind(`
		SELECT COALESCE(SUM(CASE WHEN `+classColumn+` IS NOT NULL THEN 1 ELSE 0 END), 0) AS all_failed,
		       COALESCE(SUM(CASE WHEN `+classColumn+` = ? THEN 1 ELSE 0 END), 0) AS transient
		FROM traveler_batch_results WHERE execution_id = ?`), batchenrich.ClassTransient.String(), executionID)
	if err != nil {
		return 0, 0, fmt.Errorf("count failures: %w", err)
	}
	return c.All, c.Transient, nil
}

// replayRows are the summary table's lines for a replay.
func (s *ReplaySummary) rows() [][2]string {
	if s == nil {
		return nil
	}
	if s.NothingToReplay {
		return [][2]string{
			{"replay", "nothing to replay (" + s.Scope + " failures)"},
			{"still_failed", strconv.Itoa(s.StillFailed)},
		}
	}
	return [][2]string{
		{"replay", s.Scope + " failures, replay " + strconv.Itoa(s.Number)},
		{"replayed", strconv.Itoa(s.Replayed)},
		{"recovered", strconv.Itoa(s.Recovered)},
		{"still_failed", strconv.Itoa(s.StillFailed)},
		{"still_transient", strconv.Itoa(s.StillTransient)},
	}
}
