package riverenrich

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// worker is the River worker of partition jobs.
type worker[T, R any] struct {
	river.WorkerDefaults[PartitionArgs]
	c *Client[T, R]
}

// Timeout is the slice plus SliceGrace: River cancels a job that runs
// longer, and its rescuer leaves a job alone until then.
func (w *worker[T, R]) Timeout(*river.Job[PartitionArgs]) time.Duration {
	return w.c.cfg.Slice + SliceGrace
}

// NextRetry retries a failed job after its attempt number in seconds, at
// most RetryMax: a partition resumes from its checkpoint, so there is no
// reason to wait as long as River's default (attempt⁴ seconds).
func (w *worker[T, R]) NextRetry(j *river.Job[PartitionArgs]) time.Time {
	return time.Now().Add(min(time.Duration(j.Attempt)*time.Second, RetryMax))
}

// Work runs the job's partition for one slice.
func (w *worker[T, R]) Work(ctx context.Context, rj *river.Job[PartitionArgs]) error {
	c, a := w.c, rj.Args
	log := c.cfg.Logger
	if a.Partitions < 1 || a.Partitions > batchenrich.MaxPartitions || a.Partition < 0 || a.Partition >= a.Partitions || a.Run == "" {
		return river.JobCancel(fmt.Errorf("riverenrich: job %d: bad partition %d of %d for run %q", rj.ID, a.Partition, a.Partitions, a.Run))
	}
	job := Job{ID: rj.ID, Attempt: rj.Attempt, Run: a.Run, Partition: batchenrich.Partition{Index: a.Partition, Count: a.Partitions}, Params: a.Params}
	if c.draining() {
		return river.JobSnooze(0)
	}
	var opts batchenrich.Options
	if c.cfg.Options != nil {
		var err error
		if opts, err = c.cfg.Options(job); err != nil {
			return river.JobCancel(fmt.Errorf("riverenrich: run %q partition %s: options: %w", a.Run, job.Partition, err))
		}
	}
	opts.RunKey, opts.Partition, opts.Checkpoints, opts.LockWait = a.Run, job.Partition, c.cfg.Store, false
	src, err := c.cfg.Source(ctx, job)
	if err != nil {
		return fmt.Errorf("riverenrich: run %q partition %s: source: %w", a.Run, job.Partition, err)
	}
	sink, err := c.cfg.Sink(ctx, job)
	if err != nil {
		return fmt.Errorf("riverenrich: run %q partition %s: sink: %w", a.Run, job.Partition, err)
	}
	sl := &slice[T]{src: src, end: time.Now().Add(c.cfg.Slice), drain: c.drain}
	r, err := batchenrich.New(batchenrich.Source[T](sl), c.enr, sink, opts)
	if err != nil {
		return river.JobCancel(fmt.Errorf("riverenrich: run %q partition %s: %w", a.Run, job.Partition, err))
	}
	rep, err := r.Run(ctx)
	switch {
	case err == nil:
		log.InfoContext(ctx, "riverenrich: partition finished", "run", a.Run, "partition", job.Partition.String(),
			"batches_run", rep.BatchesRun, "batches_skipped", rep.BatchesSkipped)
		return nil
	case errors.Is(err, errSliceEnd):
		log.DebugContext(ctx, "riverenrich: slice ended", "run", a.Run, "partition", job.Partition.String(), "batches_run", rep.BatchesRun)
		return river.JobSnooze(0)
	case errors.Is(err, sqlbatch.ErrLockLost):
		// Another worker took the partition over (this one was thought
		// dead): not a failure of the job, so no attempt is spent.
		log.InfoContext(ctx, "riverenrich: partition's run lock lost; leaving it to its new holder", "run", a.Run, "partition", job.Partition.String())
		return river.JobSnooze(DefaultLockedRetry)
	case errors.Is(err, batchenrich.ErrRunLocked):
		log.DebugContext(ctx, "riverenrich: partition locked by another runner", "run", a.Run, "partition", job.Partition.String())
		return river.JobSnooze(DefaultLockedRetry)
	case errors.Is(err, batchenrich.ErrPartitionsChanged), errors.Is(err, batchenrich.ErrInvalidOptions),
		errors.Is(err, batchenrich.ErrCheckpointMismatch),   // retrying cannot help
		batchenrich.Classify(err) == batchenrich.ClassFatal: // the program's fault: every attempt would fail so
		return river.JobCancel(err)
	case ctx.Err() != nil && c.draining():
		return river.JobSnooze(0)
	}
	return err
}
