package riverenrich

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/batchenrich/batchenrich"
)

// Takeover: River OSS has no worker heartbeats; its rescuer frees a job
// stuck in "running" only after RescueStuckJobsAfter (one hour by
// default, checked every 30 s by the leader). A partition job holds its
// partition's run lock for as long as it works, and that lock (a
// PostgreSQL session advisory lock) ends the moment its process dies. So
// each working Client looks, every TakeoverInterval, at the running
// partition jobs of its queue: a job that has run for at least
// minRunning and whose partition lock nobody holds, found so twice in a
// row at least 0.9 × TakeoverInterval apart in the same execution (same
// attempt and same attempted_at: River gives a snoozed job its attempt
// number back, so the attempt alone does not tell two executions apart),
// has lost its worker. The Client puts it back as available with its
// attempt given back, as River does for a snooze, so that a takeover
// never spends one of the job's attempts; it notes the takeover in the
// job's errors and metadata. Any worker then fetches it and resumes the
// partition after its last committed batch.
//
// Two sightings rule out a live worker between River's fetch and the lock
// (well under a second) or between releasing the lock and River recording
// the job's end. If a live worker were taken for dead all the same, the
// lock still keeps the two off the partition at once, and River's
// bookkeeping converges: the second job finds the lock taken or the
// partition done.

// minRunning is how long a job must have been running before a look
// counts it: a live worker takes its partition's lock within milliseconds
// of River handing it the job.
const minRunning = time.Second

// sighting is a running job first seen with its partition unlocked, in
// one execution: River's attempt and the time that execution began.
type sighting struct {
	attempt     int
	attemptedAt time.Time
	at          time.Time
}

func (c *Client[T, R]) takeoverLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.TakeoverInterval)
	defer t.Stop()
	seen := map[int64]sighting{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seen = c.takeoverOnce(ctx, seen)
	}
}

// takeoverOnce looks at the running jobs once and returns the sightings
// to remember.
func (c *Client[T, R]) takeoverOnce(ctx context.Context, seen map[int64]sighting) map[int64]sighting {
	log := c.cfg.Logger
	res, err := c.river.JobList(ctx, river.NewJobListParams().Kinds(Kind).Queues(c.cfg.queue()).
		States(rivertype.JobStateRunning).First(10000))
	if err != nil {
		if ctx.Err() == nil {
			log.WarnContext(ctx, "riverenrich: takeover: list running jobs", "error", err)
		}
		return seen
	}
	now := time.Now()
	next := map[int64]sighting{}
	for _, row := range res.Jobs {
		if row.AttemptedAt == nil || now.Sub(*row.AttemptedAt) < minRunning {
			continue
		}
		var a PartitionArgs
		if err := json.Unmarshal(row.EncodedArgs, &a); err != nil || a.Partitions < 1 {
			continue
		}
		key := batchenrich.Partition{Index: a.Partition, Count: a.Partitions}.RunKey(a.Run)
		unlock, free, err := c.locker.TryLock(ctx, key)
		if err != nil || !free {
			continue // held: its worker lives (or the database is unreachable)
		}
		_ = unlock()
		prev, ok := seen[row.ID]
		if !ok || prev.attempt != row.Attempt || !sameTime(prev.attemptedAt, *row.AttemptedAt) {
			next[row.ID] = sighting{attempt: row.Attempt, attemptedAt: *row.AttemptedAt, at: now}
			continue
		}
		if now.Sub(prev.at) < c.cfg.TakeoverInterval*9/10 {
			next[row.ID] = prev
			continue
		}
		released, err := c.release(ctx, row, prev.attemptedAt)
		if err != nil {
			log.WarnContext(ctx, "riverenrich: takeover: release job", "job_id", row.ID, "error", err)
			next[row.ID] = prev
			continue
		}
		if !released {
			continue // its execution ended meanwhile
		}
		log.InfoContext(ctx, "riverenrich: took over the partition of a lost worker", "job_id", row.ID,
			"run", a.Run, "partition", a.Partition, "attempted_by", strings.Join(row.AttemptedBy, ","),
			"running_for", now.Sub(*row.AttemptedAt).Round(time.Millisecond).String())
	}
	return next
}

// release makes the job available again if it is still in the execution
// seen (same attempt, begun at attemptedAt), giving its attempt back as
// River does for a snoozed job (its next fetch counts it again): a
// takeover is not the job's failure, and a long run taken over many times
// must not run out of attempts.
func (c *Client[T, R]) release(ctx context.Context, row *rivertype.JobRow, attemptedAt time.Time) (bool, error) {
	table := "river_job"
	if c.cfg.Schema != "" {
		table = `"` + strings.ReplaceAll(c.cfg.Schema, `"`, `""`) + `".river_job`
	}
	res, err := c.cfg.DB.ExecContext(ctx, `UPDATE `+table+` SET state = 'available', scheduled_at = now(),
		attempt = GREATEST(attempt - 1, 0),
		errors = array_append(errors, jsonb_build_object('at', now(), 'attempt', attempt, 'error', $3::text, 'trace', '')),
		metadata = metadata || jsonb_build_object('batchenrich:takeovers',
			COALESCE(CASE WHEN jsonb_typeof(metadata -> 'batchenrich:takeovers') = 'number' THEN (metadata ->> 'batchenrich:takeovers')::int END, 0) + 1)
		WHERE id = $1 AND state = 'running' AND attempt = $2 AND abs(extract(epoch FROM attempted_at - $4::timestamptz)) < 0.001`,
		row.ID, row.Attempt, "riverenrich: worker lost (partition run lock free); taken over after attempt "+strconv.Itoa(row.Attempt)+" (attempt given back)", attemptedAt)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// sameTime reports whether two readings of one timestamp are the same, to
// the millisecond (whatever precision a driver keeps): two executions of
// a job never begin within a millisecond of each other.
func sameTime(a, b time.Time) bool {
	return a.Sub(b).Abs() < time.Millisecond
}
