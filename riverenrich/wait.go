package riverenrich

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/redact"
)

// ErrNoWorker is wrapped by Wait's error when none of a run's jobs was
// taken by a worker within WaitOptions.NoWorker while no job of the
// Client's Job was running anywhere: no worker of that job is running
// (or every one is stopped). The jobs stay queued for one.
var ErrNoWorker = errors.New("riverenrich: no worker is working on the run's job")

// WaitOptions tunes Wait. The zero value means the defaults.
type WaitOptions struct {
	// Interval is how often Wait looks at the run's jobs. Zero means
	// 200 ms.
	Interval time.Duration

	// NoWorker is how long the run's jobs may wait, none of them taken by
	// a worker and no job of the Client's Job running, before Wait
	// returns an error wrapping ErrNoWorker. Zero means DefaultNoWorker;
	// negative waits for a worker as long as ctx lets it.
	NoWorker time.Duration

	// Progress, if not nil, is called after each look with the run's
	// status, in Wait's goroutine (a slow Progress slows the looks).
	Progress func(RunStatus)
}

// RunStatus is what Status and Wait see of a run: its jobs' River state
// and their partitions' checkpoints.
type RunStatus struct {
	// Run is the run key.
	Run string
	// Partitions holds each partition's status, by partition index.
	Partitions []PartitionStatus
}

// Done counts the partitions whose job completed.
func (s RunStatus) Done() int {
	n := 0
	for _, p := range s.Partitions {
		if p.State == rivertype.JobStateCompleted {
			n++
		}
	}
	return n
}

// PartitionStatus is one partition's job and checkpoint.
type PartitionStatus struct {
	// Partition is the partition's index and count.
	Partition batchenrich.Partition
	// JobID is its River job's id, State the job's River state, and
	// Attempt its attempt (0 before its first; River gives a snoozed
	// job's back, and so does a takeover).
	JobID   int64
	State   rivertype.JobState
	Attempt int
	// AttemptedAt is when a worker last took the job; zero if none has.
	AttemptedAt time.Time
	// Batch is the last batch its checkpoint committed (0 for none yet),
	// and CheckpointDone whether it recorded the partition's end.
	Batch          int
	CheckpointDone bool
	// LastError is the last error River recorded for the job (a failed
	// attempt, a cancellation, a takeover), with any URL's credentials
	// masked, and LastErrorAt when; "" if none.
	LastError   string
	LastErrorAt time.Time
}

// Status reads the state of the jobs of e, and each partition's
// checkpoint. It works from any process; it does not need this Client to
// work on the jobs.
func (c *Client[T, R]) Status(ctx context.Context, e Enqueued) (RunStatus, error) {
	st := RunStatus{Run: e.Run, Partitions: make([]PartitionStatus, len(e.JobIDs))}
	for i, id := range e.JobIDs {
		st.Partitions[i] = PartitionStatus{Partition: batchenrich.Partition{Index: i, Count: e.Partitions}, JobID: id}
	}
	if len(e.JobIDs) == 0 {
		return st, nil
	}
	res, err := c.river.JobList(ctx, river.NewJobListParams().IDs(e.JobIDs...).First(len(e.JobIDs)+1))
	if err != nil {
		return st, fmt.Errorf("riverenrich: status of run %q: %w", e.Run, err)
	}
	byID := make(map[int64]*rivertype.JobRow, len(res.Jobs))
	for _, j := range res.Jobs {
		byID[j.ID] = j
	}
	for i := range st.Partitions {
		p := &st.Partitions[i]
		if j := byID[p.JobID]; j != nil {
			p.State, p.Attempt = j.State, j.Attempt
			if j.AttemptedAt != nil {
				p.AttemptedAt = *j.AttemptedAt
			}
			if n := len(j.Errors); n > 0 {
				// River records a cancellation's error with its type's
				// name in front: not part of the error.
				last := strings.TrimPrefix(j.Errors[n-1].Error, "JobCancelError: ")
				p.LastError, p.LastErrorAt = redact.Text(last), j.Errors[n-1].At
			}
		}
		cp, err := c.cfg.Store.Load(ctx, p.Partition.RunKey(e.Run))
		if err != nil {
			return st, fmt.Errorf("riverenrich: status of run %q partition %s: %w", e.Run, p.Partition, err)
		}
		p.Batch, p.CheckpointDone = cp.Batch, cp.Done
	}
	return st, nil
}

// Wait looks at the jobs of e every opts.Interval until each is
// finalized, and returns nil if all completed.
//
// A job cancelled or discarded makes Wait return at once an error naming
// the partition and the job's last error (credentials in URLs masked): a
// worker cancels a partition at the first error retrying cannot fix (see
// the package documentation), so a misconfigured job reaches its waiter
// within one look of its first attempt. A run none of whose jobs a worker
// takes, while no job of the Client's Job runs, is reported after
// opts.NoWorker (ErrNoWorker). When ctx ends, the error says how many
// partitions were done, and each unfinished partition's last error.
// opts.Progress sees every look. Wait works from any process; it does not
// need this Client to work on the jobs.
func (c *Client[T, R]) Wait(ctx context.Context, e Enqueued, opts WaitOptions) error {
	interval := opts.Interval
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	noWorker := opts.NoWorker
	if noWorker == 0 {
		noWorker = DefaultNoWorker
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	waiting := time.Now() // since when no job of the run was taken and no worker seen
	for {
		st, err := c.Status(ctx, e)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("riverenrich: wait for run %q: %w", e.Run, ctx.Err())
			}
			return fmt.Errorf("riverenrich: wait: %w", err)
		}
		if opts.Progress != nil {
			opts.Progress(st)
		}
		for _, p := range st.Partitions {
			switch p.State {
			case rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
				last := p.LastError
				if last == "" {
					last = "no error recorded"
				}
				return fmt.Errorf("riverenrich: run %q partition %s: job %d %s: %s", e.Run, p.Partition, p.JobID, p.State, last)
			case "":
				return fmt.Errorf("riverenrich: run %q partition %s: job %d no longer exists", e.Run, p.Partition, p.JobID)
			}
		}
		if done := st.Done(); done == len(st.Partitions) {
			return nil
		}
		if noWorker > 0 {
			idle, err := c.unattended(ctx, st)
			switch {
			case err != nil && ctx.Err() == nil:
				return fmt.Errorf("riverenrich: wait for run %q: %w", e.Run, err)
			case !idle:
				waiting = time.Now()
			case time.Since(waiting) >= noWorker:
				return fmt.Errorf("%w: run %q: none of its %d jobs was taken in %s, and no job of %q runs (River queue %q); start a worker of job %q (the jobs stay queued)",
					ErrNoWorker, e.Run, len(st.Partitions), noWorker, c.cfg.Job, c.cfg.queue(), c.cfg.Job)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("riverenrich: wait for run %q (%d of %d partitions done%s): %w",
				e.Run, st.Done(), len(st.Partitions), lastErrors(st), ctx.Err())
		case <-t.C:
		}
	}
}

// unattended reports whether no job of the run was ever taken by a worker
// and no job of the Client's Job is running.
func (c *Client[T, R]) unattended(ctx context.Context, st RunStatus) (bool, error) {
	for _, p := range st.Partitions {
		if !p.AttemptedAt.IsZero() || p.State != rivertype.JobStateAvailable && p.State != rivertype.JobStateScheduled {
			return false, nil
		}
	}
	res, err := c.river.JobList(ctx, river.NewJobListParams().Kinds(Kind).Queues(c.cfg.queue()).
		States(rivertype.JobStateRunning).First(1))
	if err != nil {
		return false, err
	}
	return len(res.Jobs) == 0, nil
}

// lastErrors lists the last errors of a run's unfinished partitions, for
// an interrupted Wait's error.
func lastErrors(st RunStatus) string {
	var b strings.Builder
	for _, p := range st.Partitions {
		if p.State != rivertype.JobStateCompleted && p.LastError != "" {
			fmt.Fprintf(&b, "; partition %s's last error: %s", p.Partition, p.LastError)
		}
	}
	return b.String()
}
