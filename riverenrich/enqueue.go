package riverenrich

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/batchenrich/batchenrich"
)

// Enqueued describes the jobs of one run.
type Enqueued struct {
	// Run is the run key and Partitions its partition count.
	Run        string
	Partitions int
	// JobIDs holds each partition's job id, by partition index.
	JobIDs []int64
	// Duplicates counts the partitions whose job existed already (the run
	// was enqueued before): River's unique jobs skipped them.
	Duplicates int
}

// EnqueueTx inserts, within tx, one job per partition of run (River's
// InsertManyTx), each unique by run and partition, so that enqueueing a
// run again inserts nothing while River keeps its jobs: River's default
// unique states leave out cancelled and discarded jobs, and its cleaner
// deletes completed jobs after river.Config.CompletedJobRetentionPeriod (24 h
// by default). A job inserted again then resumes its partition from its
// checkpoint: nothing committed is enriched twice. params, if not nil,
// is JSON-encoded into PartitionArgs.Params.
//
// First, outside tx, it checks the partition count recorded for run
// (batchenrich.ClaimPartitions): a run recorded with another count is
// refused with an error wrapping batchenrich.ErrPartitionsChanged, and
// nothing is inserted. A run seen for the first time gets its count
// recorded then, even if tx later rolls back (a later enqueue must then
// use the same count, or another run key).
func (c *Client[T, R]) EnqueueTx(ctx context.Context, tx *sql.Tx, run string, partitions int, params any) (Enqueued, error) {
	e := Enqueued{Run: run, Partitions: partitions}
	switch {
	case run == "":
		return e, fmt.Errorf("riverenrich: enqueue: empty run key")
	case partitions < 1 || partitions > batchenrich.MaxPartitions:
		return e, fmt.Errorf("riverenrich: enqueue run %q: %d partitions: must be between 1 and %d", run, partitions, batchenrich.MaxPartitions)
	}
	var raw json.RawMessage
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return e, fmt.Errorf("riverenrich: enqueue run %q: params: %w", run, err)
		}
		raw = b
	}
	if err := batchenrich.ClaimPartitions(ctx, c.cfg.Store, run, partitions, 10*time.Second); err != nil {
		return e, err // names the run and says what to do
	}
	many := make([]river.InsertManyParams, partitions)
	for p := range partitions {
		many[p] = river.InsertManyParams{
			Args: PartitionArgs{Run: run, Partition: p, Partitions: partitions, Params: raw},
			InsertOpts: &river.InsertOpts{
				Queue:      c.cfg.Queue,
				UniqueOpts: river.UniqueOpts{ByArgs: true},
			},
		}
	}
	res, err := c.river.InsertManyTx(ctx, tx, many)
	if err != nil {
		return e, fmt.Errorf("riverenrich: enqueue run %q: %w", run, err)
	}
	for _, r := range res {
		e.JobIDs = append(e.JobIDs, r.Job.ID)
		if r.UniqueSkippedAsDuplicate {
			e.Duplicates++
		}
	}
	return e, nil
}

// Enqueue is EnqueueTx in a transaction of its own.
func (c *Client[T, R]) Enqueue(ctx context.Context, run string, partitions int, params any) (Enqueued, error) {
	tx, err := c.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return Enqueued{Run: run, Partitions: partitions}, fmt.Errorf("riverenrich: enqueue run %q: %w", run, err)
	}
	e, err := c.EnqueueTx(ctx, tx, run, partitions, params)
	if err != nil {
		_ = tx.Rollback()
		return e, err
	}
	if err := tx.Commit(); err != nil {
		return e, fmt.Errorf("riverenrich: enqueue run %q: commit: %w", run, err)
	}
	return e, nil
}

// Wait polls the jobs of e every interval (zero means 200 ms) until each
// is finalized, and returns nil if all completed. A job cancelled or
// discarded (its attempts exhausted) makes Wait return an error naming the
// partition and the job's last error. Wait works from any process; it
// does not need this Client to work on the jobs.
func (c *Client[T, R]) Wait(ctx context.Context, e Enqueued, interval time.Duration) error {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		res, err := c.river.JobList(ctx, river.NewJobListParams().IDs(e.JobIDs...).First(len(e.JobIDs)+1))
		if err != nil {
			return fmt.Errorf("riverenrich: wait for run %q: %w", e.Run, err)
		}
		done := 0
		for _, j := range res.Jobs {
			switch j.State {
			case rivertype.JobStateCompleted:
				done++
			case rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
				var a PartitionArgs
				_ = json.Unmarshal(j.EncodedArgs, &a)
				last := "no error recorded"
				if n := len(j.Errors); n > 0 {
					last = j.Errors[n-1].Error
				}
				return fmt.Errorf("riverenrich: run %q partition %d of %d: job %d %s: %s", e.Run, a.Partition, a.Partitions, j.ID, j.State, last)
			}
		}
		if done == len(e.JobIDs) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("riverenrich: wait for run %q (%d of %d partitions done): %w", e.Run, done, len(e.JobIDs), ctx.Err())
		case <-t.C:
		}
	}
}
