package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"

	"github.com/batchenrich/batchenrich"
	"github.com/jmoiron/sqlx"
)

// Data is the final validation, computed from the database, about the
// whole run of the execution id (every invocation). examples/README.md
// documents each field.
type Data = seedjob.Data

// Summary is the program's final report (-json prints it as is).
type Summary struct {
	Status      string     `json:"status"`
	ExecutionID string     `json:"execution_id"`
	Configured  Configured `json:"configured"`
	Data        Data       `json:"data"`
	Execution   Execution  `json:"execution"`
	// Replay is set by -retry-failed.
	Replay *ReplaySummary `json:"replay,omitempty"`
}

// Configured echoes the run's shape.
type Configured struct {
	BatchSize   int  `json:"batch_size"`
	MaxBatches  int  `json:"max_batches"`
	Concurrency int  `json:"concurrency"`
	Overlap     bool `json:"overlap"`
	Adaptive    bool `json:"adaptive"`
	// Partitions is -partitions; absent for one partition (the seed's
	// shape).
	Partitions int `json:"partitions,omitempty"`
}

// Execution describes what this invocation did.
type Execution struct {
	BatchesRun     int   `json:"batches_run"`
	BatchesSkipped int   `json:"batches_skipped"`
	DurationMS     int64 `json:"duration_ms"` // enrichment phase only
	// Limits are the profile API's concurrency limits with -adaptive.
	Limits []batchenrich.UpstreamLimit `json:"limits,omitempty"`
}

// validate computes the final validation of executionID from the database.
func validate(ctx context.Context, db *sqlx.DB, executionID string, batchSize, maxBatches int) (Data, error) {
	d, err := seedjob.Count(ctx, db, executionID)
	if err != nil {
		return d, err
	}
	d.ExpectedRows = expectedRows(d.SourceRows, batchSize, maxBatches)
	// Expected rows are the first ExpectedRows source rows in traveler_id
	// order; missing are those of them without a result row.
	if err := db.GetContext(ctx, &d.MissingRows, db.Rebind(`
		SELECT count(*) FROM (
			SELECT traveler_id FROM traveler_batch_source
			WHERE execution_id = ? ORDER BY traveler_id LIMIT ?) s
		WHERE NOT EXISTS (
			SELECT 1 FROM traveler_batch_results r
			WHERE r.execution_id = ? AND r.traveler_id = s.traveler_id)`),
		executionID, d.ExpectedRows, executionID); err != nil {
		return d, fmt.Errorf("validate: %w", err)
	}
	return d, nil
}

// printJSON writes s as one JSON object.
func printJSON(w io.Writer, s Summary) error {
	enc := json.NewEncoder(w)
	return enc.Encode(s)
}

// printTable writes s as a readable table.
func printTable(w io.Writer, s Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("status", s.Status)
	row("execution_id", s.ExecutionID)
	row("batch_size × max_batches", fmt.Sprintf("%d × %d", s.Configured.BatchSize, s.Configured.MaxBatches))
	row("concurrency", s.Configured.Concurrency)
	row("partitions", max(1, s.Configured.Partitions))
	row("overlap", s.Configured.Overlap)
	for _, f := range s.Data.Fields() {
		row(f.Name, f.Value)
	}
	row("batches_run", s.Execution.BatchesRun)
	row("batches_skipped", s.Execution.BatchesSkipped)
	row("duration_ms", s.Execution.DurationMS)
	for _, r := range limitRows(s.Execution.Limits) {
		row(r[0], r[1])
	}
	for _, r := range s.Replay.rows() {
		row(r[0], r[1])
	}
	return tw.Flush()
}

// storedRows counts the result rows already stored for executionID: the
// progress of the run before this invocation.
func storedRows(ctx context.Context, db *sqlx.DB, executionID string) (int, error) {
	var n int
	err := db.GetContext(ctx, &n, db.Rebind(`SELECT count(*) FROM traveler_batch_results WHERE execution_id = ?`), executionID)
	if err != nil {
		return 0, fmt.Errorf("count stored rows: %w", err)
	}
	return n, nil
}
