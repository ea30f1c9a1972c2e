package riverenrich

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/riverqueue/river"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/redact"
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
//
// It ends the job at once (river.JobCancel), recording the error, when
// retrying cannot fix it (see unfixable), and returns River a transient
// error for a retry; it snoozes the job (no attempt spent) when the slice
// ends, the Client stops, or another runner holds or took the partition.
// The errors River records are redacted (credentials in URLs masked).
func (w *worker[T, R]) Work(ctx context.Context, rj *river.Job[PartitionArgs]) error {
	c, a := w.c, rj.Args
	log := c.cfg.Logger
	if a.Partitions < 1 || a.Partitions > maxPartitions || a.Partition < 0 || a.Partition >= a.Partitions || a.Run == "" {
		return river.JobCancel(fmt.Errorf("riverenrich: job %d: bad partition %d of %d for run %q", rj.ID, a.Partition, a.Partitions, a.Run))
	}
	job := Job{ID: rj.ID, Attempt: rj.Attempt, Run: a.Run, Partition: batchenrich.Partition{Index: a.Partition, Count: a.Partitions}, Params: a.Params}
	switch {
	case a.Job != c.cfg.Job:
		// Only a hand-made job reaches another job's queue: never run it
		// into this job's Sink.
		return river.JobCancel(fmt.Errorf("the run belongs to job %q; this worker runs job %q, so it did not run it",
			a.Job, c.cfg.Job))
	case a.Fingerprint != c.cfg.Fingerprint:
		return river.JobCancel(fmt.Errorf("%w: job %q was enqueued with Fingerprint %q (this worker: %q); "+
			"run it with workers of that definition, or start afresh under a new run key",
			batchenrich.ErrCheckpointMismatch, a.Job, a.Fingerprint, c.cfg.Fingerprint))
	}
	if c.draining() {
		return river.JobSnooze(0)
	}
	opts, err := c.options(job)
	if err != nil {
		return river.JobCancel(redacted(fmt.Errorf("options: %w", err)))
	}
	opts.Durable.Store, opts.Durable.LockWait = c.cfg.Store, false
	src, err := c.cfg.Source(ctx, job)
	if err != nil {
		return failed(fmt.Errorf("source: %w", err))
	}
	sink, err := c.cfg.Sink(ctx, job)
	if err != nil {
		return failed(fmt.Errorf("sink: %w", err))
	}
	// The pools are checked for the partitions this process may work on
	// at once: up to MaxPartitions, and of this run, its partition count.
	opts.RunsAtOnce = min(c.cfg.MaxPartitions, a.Partitions)
	sl := &slice[T]{src: src, end: time.Now().Add(c.cfg.Slice), drain: c.drain}
	r, err := batchenrich.New(batchenrich.Source[T](sl), c.enr, sink, opts)
	if err != nil {
		return river.JobCancel(redacted(err))
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
	case ctx.Err() != nil && c.draining():
		return river.JobSnooze(0)
	case errors.Is(err, batchenrich.ErrStopRequested):
		// An operator asked the run to stop: it is recorded as stopped;
		// enqueueing it again resumes it.
		log.InfoContext(ctx, "riverenrich: partition stopped on request", "run", a.Run, "partition", job.Partition.String())
		return river.JobCancel(redacted(err))
	}
	var be *batchenrich.BatchError
	if !errors.As(err, &be) && !unreachable(err) && ctx.Err() == nil {
		// Run returns the error of a component's Check as it is, and
		// every other as a *BatchError: the Check refused the
		// configuration, which another attempt would refuse again.
		return river.JobCancel(redacted(err))
	}
	log.WarnContext(ctx, "riverenrich: partition failed", "run", a.Run, "partition", job.Partition.String(), "attempt", rj.Attempt, "error", redact.Text(err.Error()))
	return failed(err)
}

// failed is the error River records for err: a cancellation if retrying
// cannot fix it, else err for a retry; redacted either way.
func failed(err error) error {
	if unfixable(err) {
		return river.JobCancel(redacted(err))
	}
	return redacted(err)
}

// unfixable reports whether err is one that another attempt would meet
// again: a configuration refused (batchenrich.ErrInvalidConfig, in any
// package), a checkpoint recorded with another
// partition count or other settings, a batch stopped by the failure
// policy or because every item failed, or a batchenrich.Fatal error (the
// program's fault).
func unfixable(err error) bool {
	for _, target := range []error{batchenrich.ErrInvalidConfig,
		batchenrich.ErrPartitionsChanged, batchenrich.ErrCheckpointMismatch,
		batchenrich.ErrTooManyFailures, batchenrich.ErrAllFailed} {
		if errors.Is(err, target) {
			return true
		}
	}
	return batchenrich.Classify(err) == batchenrich.ClassFatal
}

// unreachable reports whether err says the database (or another service)
// could not be reached, rather than refusing anything: worth a retry.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) ||
		batchenrich.Classify(err) == batchenrich.ClassTransient
}

// redactedError is an error whose text has the credentials of any URL in
// it masked (River stores the text in its jobs' errors); it wraps the
// original.
type redactedError struct{ err error }

func redacted(err error) error         { return &redactedError{err} }
func (e *redactedError) Error() string { return redact.Text(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }
