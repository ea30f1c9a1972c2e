package main

import (
	"context"
	"fmt"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// -partitions P splits the run into P key partitions worked on at once in
// this process (batchenrich.NewPartitioned): each partition reads its own
// travelers (a hash of traveler_id), numbers its own batches from 1, keeps
// its own checkpoint and lock, and stores its index in partitionColumn.
// -concurrency is the total in flight over all partitions, and
// -max-batches caps each partition's batches. P = 1 is the seed's run,
// exactly: one stream, partitionColumn left NULL.

// partitionColumn is the nullable column of traveler_batch_results that
// records a row's partition (0 ≤ index < P); NULL for an unpartitioned
// run, so the seed's rows keep their shape.
const partitionColumn = "partition_index"

// maxPartitions bounds -partitions.
const maxPartitions = 64

// addPartitionColumn adds partitionColumn to traveler_batch_results if it
// lacks it.
func addPartitionColumn(ctx context.Context, db *sqlx.DB) error {
	has, err := hasColumn(ctx, db, "traveler_batch_results", partitionColumn)
	if err != nil || has {
		return err
	}
	q := `ALTER TABLE traveler_batch_results ADD COLUMN ` + partitionColumn + ` INTEGER`
	if db.DriverName() == "postgres" {
		q = `ALTER TABLE traveler_batch_results ADD COLUMN IF NOT EXISTS ` + partitionColumn + ` INTEGER`
	}
	if _, err := db.ExecContext(ctx, q); err != nil {
		if has, herr := hasColumn(ctx, db, "traveler_batch_results", partitionColumn); herr == nil && has {
			return nil // another process added it meanwhile
		}
		return fmt.Errorf("add column %s: %w", partitionColumn, err)
	}
	return nil
}

// runPartitioned runs cfg's run split into cfg.partitions partitions;
// its Report holds their totals. Options.Concurrency (-concurrency) is
// the total over all partitions.
func (j *job) runPartitioned(ctx context.Context, db *sqlx.DB, cfg config, events chan<- event) (batchenrich.Report, error) {
	source := func(p batchenrich.Partition) (batchenrich.Source[Traveler], error) {
		sc := sourceConfig(cfg.executionID)
		sc.Partition = p
		return sqlbatch.NewSource[Traveler](db, sc)
	}
	sink := func(p batchenrich.Partition) (batchenrich.Sink[Traveler, Profile], error) {
		return partitionSink(db, p)
	}
	r, err := batchenrich.NewPartitioned(cfg.partitions, source, j.enr, sink, j.options(cfg.jobSettings, tracerFor(events)))
	if err != nil {
		return batchenrich.Report{}, err
	}
	return r.Run(ctx)
}

// partitionSink is the job's Sink for partition p: the seed's columns and
// the partition's index.
func partitionSink(db *sqlx.DB, p batchenrich.Partition) (*sqlbatch.Sink[Traveler, Profile], error) {
	return sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Profile]{
		Table:   "traveler_batch_results",
		Key:     []string{"execution_id", "traveler_id"},
		Columns: append(append([]string(nil), resultColumns...), partitionColumn),
		Row: func(r batchenrich.Result[Traveler, Profile]) ([]any, error) {
			row, err := resultRow(r)
			if err != nil {
				return nil, err
			}
			return append(row, p.Index), nil
		},
		BatchColumn: "batch_number",
	})
}

// partitionedExpectation counts, for a run split into partitions with at
// most maxBatches batches of batchSize per partition, the rows the run is
// expected to store (each partition's first batchSize × maxBatches rows
// in traveler_id order, read through the job's own partitioned Sources)
// and how many of them have no result row.
func partitionedExpectation(ctx context.Context, db *sqlx.DB, executionID string, batchSize, maxBatches, partitions int) (expected, missing int, err error) {
	var stored []int64
	if err := db.SelectContext(ctx, &stored, db.Rebind(
		`SELECT traveler_id FROM traveler_batch_results WHERE execution_id = ?`), executionID); err != nil {
		return 0, 0, fmt.Errorf("validate: %w", err)
	}
	have := make(map[int64]bool, len(stored))
	for _, id := range stored {
		have[id] = true
	}
	limit := int64(batchSize) * int64(maxBatches)
	for p := range partitions {
		sc := sourceConfig(executionID)
		sc.Partition = batchenrich.Partition{Index: p, Count: partitions}
		src, err := sqlbatch.NewSource[Traveler](db, sc)
		if err != nil {
			return 0, 0, fmt.Errorf("validate: %w", err)
		}
		var cursor batchenrich.Cursor
		for n := int64(0); n < limit; {
			window := int(min(limit-n, 5000))
			items, next, err := src.Read(ctx, cursor, window)
			if err != nil {
				return 0, 0, fmt.Errorf("validate: partition %d: %w", p, err)
			}
			for _, t := range items {
				expected++
				if !have[t.TravelerID] {
					missing++
				}
			}
			n += int64(len(items))
			if len(items) < window {
				break
			}
			cursor = next
		}
	}
	return expected, missing, nil
}

// shownPartitions is the summary's configured.partitions: absent (0) for
// one partition, so that the seed's summary keeps its shape.
func shownPartitions(p int) int {
	if p <= 1 {
		return 0
	}
	return p
}
