package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// Data is travelers' final validation, computed from the database.
type Data = seedjob.Data

// Summary is travelers' summary (-json prints it as is), plus
// configured.partitions.
type Summary struct {
	Status      string     `json:"status"`
	ExecutionID string     `json:"execution_id"`
	Configured  Configured `json:"configured"`
	Data        Data       `json:"data"`
	Execution   Execution  `json:"execution"`
}

// Configured echoes the run's shape. MaxBatches is per partition; 0 is no
// cap.
type Configured struct {
	BatchSize   int  `json:"batch_size"`
	MaxBatches  int  `json:"max_batches"`
	Concurrency int  `json:"concurrency"`
	Overlap     bool `json:"overlap"`
	Adaptive    bool `json:"adaptive"`
	Partitions  int  `json:"partitions"`
}

// Execution describes what the fleet did for this invocation, from the
// partitions' checkpoints.
type Execution struct {
	BatchesRun     int   `json:"batches_run"`
	BatchesSkipped int   `json:"batches_skipped"`
	DurationMS     int64 `json:"duration_ms"` // from enqueueing to the last partition done
}

// committed sums the batches committed by the partitions of run.
func committed(ctx context.Context, store *sqlbatch.CheckpointStore, run string, partitions int) (int, error) {
	n := 0
	for p := range partitions {
		cp, err := store.Load(ctx, batchenrich.Partition{Index: p, Count: partitions}.RunKey(run))
		if err != nil {
			return 0, err
		}
		n += cp.Batch
	}
	return n, nil
}

// validate is travelers' final validation for a run split into
// partitions with at most maxBatches (0: no cap) batches each.
func validate(ctx context.Context, db *sqlx.DB, executionID string, batchSize, maxBatches, partitions int) (Data, error) {
	d, err := seedjob.Count(ctx, db, executionID)
	if err != nil {
		return d, err
	}
	// Expected: each partition's first batchSize × maxBatches rows in
	// traveler_id order, read through the partitions' own Sources.
	var stored []int64
	if err := db.SelectContext(ctx, &stored, `SELECT traveler_id FROM traveler_batch_results WHERE execution_id = $1`, executionID); err != nil {
		return d, fmt.Errorf("validate: %w", err)
	}
	have := make(map[int64]bool, len(stored))
	for _, id := range stored {
		have[id] = true
	}
	limit := int64(1) << 62
	if maxBatches > 0 {
		limit = int64(batchSize) * int64(maxBatches)
	}
	for p := range partitions {
		src, err := sqlbatch.NewSource[Traveler](db, sourceConfig(executionID, batchenrich.Partition{Index: p, Count: partitions}))
		if err != nil {
			return d, fmt.Errorf("validate: %w", err)
		}
		var cursor batchenrich.Cursor
		for n := int64(0); n < limit; {
			window := int(min(limit-n, 5000))
			items, next, err := src.Read(ctx, cursor, window)
			if err != nil {
				return d, fmt.Errorf("validate: partition %d: %w", p, err)
			}
			for _, t := range items {
				d.ExpectedRows++
				if !have[t.TravelerID] {
					d.MissingRows++
				}
			}
			n += int64(len(items))
			if len(items) < window {
				break
			}
			cursor = next
		}
	}
	return d, nil
}

func printJSON(w io.Writer, s Summary) error { return json.NewEncoder(w).Encode(s) }

func printTable(w io.Writer, s Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	maxB := fmt.Sprint(s.Configured.MaxBatches)
	if s.Configured.MaxBatches == 0 {
		maxB = "no cap"
	}
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("status", s.Status)
	row("execution_id", s.ExecutionID)
	row("batch_size × max_batches", fmt.Sprintf("%d × %s per partition", s.Configured.BatchSize, maxB))
	row("concurrency", s.Configured.Concurrency)
	row("partitions", s.Configured.Partitions)
	for _, f := range s.Data.Fields() {
		row(f.Name, f.Value)
	}
	row("batches_run", s.Execution.BatchesRun)
	row("batches_skipped", s.Execution.BatchesSkipped)
	row("duration_ms", s.Execution.DurationMS)
	return tw.Flush()
}
