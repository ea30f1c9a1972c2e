package riverenrich

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/riverqueue/river"

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
// InsertManyTx) in the queue of the Client's Job, each unique by run and
// partition, so that enqueueing a run again inserts nothing while River
// keeps its jobs: River's default unique states leave out cancelled and
// discarded jobs, and its cleaner deletes completed jobs after
// river.Config.CompletedJobRetentionPeriod (24 h by default). A job
// inserted again then resumes its partition from its checkpoint: nothing
// committed is enriched twice. params, if not nil, is JSON-encoded into
// PartitionArgs.Params.
//
// A run is one job's, with one definition: EnqueueTx refuses, with an
// error wrapping batchenrich.ErrCheckpointMismatch that says what differs,
// a run whose jobs exist with another Job, Fingerprint or params (River
// would keep the first enqueue's and silently run those), and, when the
// Client has Options, a run whose partitions' checkpoints were recorded
// with other settings (batchenrich.CheckResume's error, the one the
// worker would meet). The caller then rolls tx back (Enqueue does).
//
// An empty run, a run key New would refuse (see batchenrich.Durable.RunKey)
// or a partition count outside 1 to 4,096 is refused first with a
// *batchenrich.ConfigError naming it, nothing recorded or inserted.
//
// Then, outside tx, it checks the partition count recorded for run
// (batchenrich.CheckResume claims it): a run recorded with another count
// is refused with an error wrapping batchenrich.ErrPartitionsChanged, and
// nothing is inserted. A run seen for the first time gets its count
// recorded then, even if tx later rolls back (a later enqueue must then
// use the same count, or another run key).
func (c *Client[T, R]) EnqueueTx(ctx context.Context, tx *sql.Tx, run string, partitions int, params any) (Enqueued, error) {
	e := Enqueued{Run: run, Partitions: partitions}
	switch {
	case run == "":
		return e, configErr("run", "required: the run key", nil)
	case partitions < 1 || partitions > maxPartitions:
		return e, configErr("partitions", fmt.Sprintf("%d: must be between 1 and %d", partitions, maxPartitions), nil)
	}
	var raw json.RawMessage
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return e, fmt.Errorf("riverenrich: enqueue run %q: params: %w", run, err)
		}
		raw = b
	}
	if err := c.checkCheckpoints(ctx, run, partitions, raw); err != nil {
		return e, err // names the run and says what to do
	}
	many := make([]river.InsertManyParams, partitions)
	for p := range partitions {
		many[p] = river.InsertManyParams{
			Args: PartitionArgs{Job: c.cfg.Job, Fingerprint: c.cfg.Fingerprint, Run: run, Partition: p, Partitions: partitions, Params: raw},
			InsertOpts: &river.InsertOpts{
				Queue:      c.cfg.queue(),
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
		if !r.UniqueSkippedAsDuplicate {
			continue
		}
		e.Duplicates++
		var was PartitionArgs
		if err := json.Unmarshal(r.Job.EncodedArgs, &was); err != nil {
			return e, fmt.Errorf("riverenrich: enqueue run %q: read its job %d: %w", run, r.Job.ID, err)
		}
		if diff := c.argsDiff(was, raw); diff != "" {
			return e, fmt.Errorf("riverenrich: enqueue run %q: %w: its jobs (job %d, %s) were enqueued with %s; "+
				"they keep their first enqueue's: enqueue it with those, or start afresh under a new run key",
				run, batchenrich.ErrCheckpointMismatch, r.Job.ID, r.Job.State, diff)
		}
	}
	return e, nil
}

// options returns the Runner options of a partition of run as a worker
// of this Client would set them: Config.Options of its params, the run
// key (Durable.RunKey), partition, Durable.Job (Config.Job, recorded with
// the checkpoints) and Durable.Fingerprint (unless Options sets one); the
// worker sets Durable.Store.
func (c *Client[T, R]) options(job Job) (batchenrich.Options, error) {
	var opts batchenrich.Options
	if c.cfg.Options != nil {
		var err error
		if opts, err = c.cfg.Options(job); err != nil {
			return opts, err
		}
	}
	var d batchenrich.Durable
	if opts.Durable != nil {
		d = *opts.Durable // its Fingerprint and AllowReshape are kept
	}
	d.RunKey, d.Job = job.Run, c.cfg.Job
	if d.Fingerprint == "" {
		d.Fingerprint = c.cfg.Fingerprint
	}
	opts.Durable, opts.Partition = &d, job.Partition
	return opts, nil
}

// checkCheckpoints claims run's partition count, refusing another one,
// and refuses, when the Client has Options, a run whose partitions'
// checkpoints were recorded with other settings than params give: with
// batchenrich.CheckResume, the error the worker's Runner would return.
// Without Options it checks partition 0 alone (the count, and the job),
// other settings allowed: the workers' options are not known here.
func (c *Client[T, R]) checkCheckpoints(ctx context.Context, run string, partitions int, params json.RawMessage) error {
	check := partitions
	if c.cfg.Options == nil {
		check = 1
	}
	for p := range check {
		part := batchenrich.Partition{Index: p, Count: partitions}
		opts, err := c.options(Job{Run: run, Partition: part, Params: params})
		if err != nil {
			return fmt.Errorf("riverenrich: enqueue run %q partition %s: options: %w", run, part, err)
		}
		opts.Durable.Store, opts.Durable.LockWait = c.cfg.Store, false
		if c.cfg.Options == nil {
			opts.Durable.AllowReshape = true
		}
		if err := batchenrich.CheckResume(ctx, opts); err != nil {
			return err
		}
	}
	return nil
}

// argsDiff says how a run's existing job differs from what this Client
// enqueues with params, in the words of batchenrich's checkpoint checks
// ("BatchSize 20 (this run: 50)"); "" if it does not.
func (c *Client[T, R]) argsDiff(was PartitionArgs, params json.RawMessage) string {
	var diffs []string
	if was.Job != c.cfg.Job {
		diffs = append(diffs, "job "+strconv.Quote(was.Job)+" (this run: "+strconv.Quote(c.cfg.Job)+")")
	}
	if was.Fingerprint != c.cfg.Fingerprint {
		diffs = append(diffs, "Fingerprint "+strconv.Quote(was.Fingerprint)+" (this run: "+strconv.Quote(c.cfg.Fingerprint)+")")
	}
	if len(diffs) > 0 || sameJSON(was.Params, params) {
		return strings.Join(diffs, " and ")
	}
	// The params differ: name the Options they change, when the Client
	// can tell.
	part := batchenrich.Partition{Index: was.Partition, Count: was.Partitions}
	before, err1 := c.options(Job{Run: was.Run, Partition: part, Params: was.Params})
	after, err2 := c.options(Job{Run: was.Run, Partition: part, Params: params})
	if c.cfg.Options != nil && err1 == nil && err2 == nil {
		for _, o := range []struct {
			name      string
			was, this int
		}{
			{"BatchSize", cmp.Or(before.BatchSize, defaultBatchSize), cmp.Or(after.BatchSize, defaultBatchSize)},
			{"MaxBatches", before.MaxBatches, after.MaxBatches},
			{"Concurrency", before.Concurrency, after.Concurrency},
		} {
			if o.was != o.this {
				diffs = append(diffs, fmt.Sprintf("%s %d (this run: %d)", o.name, o.was, o.this))
			}
		}
		if bf, af := before.Durable.Fingerprint, after.Durable.Fingerprint; bf != af {
			diffs = append(diffs, "Fingerprint "+strconv.Quote(bf)+" (this run: "+strconv.Quote(af)+")")
		}
	}
	if len(diffs) == 0 {
		diffs = append(diffs, "other params") // their values are the caller's: not shown
	}
	return strings.Join(diffs, " and ")
}

// sameJSON reports whether two JSON documents hold the same value.
func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
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
