package sqlbatch

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/bounds"
	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// RunStatus is the recorded state of a run, as a CheckpointStore keeps
// it (see Status and Runs): the run as a whole, and each of its
// partitions.
type RunStatus struct {
	// RunKey is the run's key (Durable.RunKey); Job its Durable.Job.
	RunKey, Job string
	// State sums up the partitions': StateRunning while any is running
	// (or has not started), else StateFailed if any failed, else
	// StateStopped if any stopped, else StateDone.
	State batchenrich.RunState
	// Counts sum the partitions'.
	Counts batchenrich.RunCounts
	// Started is when the first partition started, Updated when one last
	// saved a checkpoint, Finished when the last one finished (zero while
	// any goes on).
	Started, Updated, Finished time.Time
	// LastError is the last error of a partition that ended with one.
	LastError string
	// Partitions has one entry per partition, in order; one for an
	// unpartitioned run.
	Partitions []PartitionStatus
}

// PartitionStatus is the recorded state of one partition of a run (or of
// an unpartitioned run).
type PartitionStatus struct {
	// Index is the partition's index; Count the run's partition count
	// (1 for an unpartitioned run).
	Index, Count int
	// RunKey is the key its checkpoint is saved under.
	RunKey string
	// State is its state; "" when it has saved nothing yet.
	State batchenrich.RunState
	// Batch is its last committed batch; Done set once its Source was
	// exhausted.
	Batch int
	Done  bool
	// Counts count what it committed.
	Counts batchenrich.RunCounts
	// Started, Updated and Finished are when it first started, last saved
	// a checkpoint, and ended (zero while it goes on).
	Started, Updated, Finished time.Time
	// Host and PID name the process that saved its last checkpoint.
	Host string
	PID  int
	// Held reports whether a runner holds its lock now (on PostgreSQL
	// its session advisory lock, on SQLite an unexpired lease): a
	// partition in StateRunning that nobody holds was interrupted (its
	// process died) and resumes when run again.
	Held bool
	// LastError is the error it ended with, if any.
	LastError string
	// StopRequested is set while a stop request (RequestStop) waits for
	// the partition's runner to see it.
	StopRequested bool
}

// RunFilter selects the runs Runs lists. The zero value lists the most
// recently updated runs, up to DefaultRunsLimit.
type RunFilter struct {
	// Job, if set, lists only that job's runs.
	Job string
	// State, if set, lists only runs in that state.
	State batchenrich.RunState
	// Limit caps the runs listed; 0 means DefaultRunsLimit.
	Limit int
}

// DefaultRunsLimit is the number of runs Runs lists when RunFilter.Limit
// is 0.
const DefaultRunsLimit = 20

// statusColumns are the columns of the checkpoint table a status reads.
const statusColumns = `run_key, batch, done, COALESCE(partitions, 0), job, state, batches, items_read, items_enriched, items_failed,
	failed_transient, failed_permanent, items_written, started_at, updated_at, finished_at, holder_host, holder_pid, last_error,
	stop_requested, lock_owner, lock_expires_at`

// statusRow is one row of the checkpoint table.
type statusRow struct {
	PartitionStatus
	parts int
	job   string
}

func (s *CheckpointStore) scanStatus(rows *sql.Rows) (statusRow, error) {
	var (
		r                     statusRow
		batch, parts, pid     int64
		n                     [7]int64
		state                 string
		started, finished     sql.NullTime
		updated               time.Time
		owner                 sql.NullString
		expires               sql.NullInt64
		done, stop            bool
		key, job, host, lastE string
	)
	if err := rows.Scan(&key, &batch, &done, &parts, &job, &state, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6],
		&started, &updated, &finished, &host, &pid, &lastE, &stop, &owner, &expires); err != nil {
		return r, err
	}
	r.RunKey, r.Batch, r.Done, r.parts, r.job = key, int(batch), done, int(parts), job
	r.State, r.Host, r.PID, r.LastError, r.StopRequested = batchenrich.RunState(state), host, int(pid), lastE, stop
	r.Counts = batchenrich.RunCounts{Batches: int(n[0]), Read: int(n[1]), Enriched: int(n[2]), Failed: int(n[3]),
		FailedTransient: int(n[4]), FailedPermanent: int(n[5]), Written: int(n[6])}
	r.Started, r.Updated, r.Finished = started.Time, updated, finished.Time
	if s.d.Kind != sqldialect.PostgreSQL {
		r.Held = owner.Valid && expires.Valid && expires.Int64 > time.Now().UnixMilli()
	}
	return r, nil
}

// Status returns the recorded state of the run runKey, with each of its
// partitions. runKey may also be one partition's own key
// (batchenrich.Partition.RunKey, "run#p3"): the RunStatus then describes
// that partition alone, its one PartitionStatus giving its Index and
// Count. It returns an error wrapping batchenrich.ErrUnknownRun when
// nothing is recorded under runKey.
func (s *CheckpointStore) Status(ctx context.Context, runKey string) (RunStatus, error) {
	if err := s.upgrade(ctx); err != nil {
		return RunStatus{}, err
	}
	prefix := runKey + "#p"
	q := s.d.Rebind(`SELECT ` + statusColumns + ` FROM ` + s.table + ` WHERE run_key = ? OR substr(run_key, 1, ?) = ?`)
	rows, err := s.db.QueryContext(ctx, q, runKey, utf8.RuneCountInString(prefix), prefix)
	if err != nil {
		return RunStatus{}, fmt.Errorf("sqlbatch: status of run %q from %s: %w", runKey, s.name, err)
	}
	groups, err := s.group(ctx, rows)
	if err != nil {
		return RunStatus{}, fmt.Errorf("sqlbatch: status of run %q from %s: %w", runKey, s.name, err)
	}
	for _, g := range groups {
		if g.RunKey == runKey {
			return g, nil
		}
	}
	return RunStatus{}, fmt.Errorf("sqlbatch: status of run %q: %w (nothing recorded under this key in %s)", runKey, batchenrich.ErrUnknownRun, s.name)
}

// Runs returns the runs recorded in the store that f selects, the most
// recently updated first. A partitioned run is one RunStatus with its
// partitions; a replay is a run of its own (batchenrich.ReplayKey).
func (s *CheckpointStore) Runs(ctx context.Context, f RunFilter) ([]RunStatus, error) {
	if err := s.upgrade(ctx); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultRunsLimit
	}
	// The most recently updated rows, enough for limit runs of many
	// partitions each in all but extreme cases.
	q := `SELECT ` + statusColumns + ` FROM ` + s.table + ` ORDER BY updated_at DESC LIMIT ` + strconv.Itoa(min(limit*bounds.Partitions, 100000))
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqlbatch: list runs from %s: %w", s.name, err)
	}
	groups, err := s.group(ctx, rows)
	if err != nil {
		return nil, fmt.Errorf("sqlbatch: list runs from %s: %w", s.name, err)
	}
	var out []RunStatus
	for _, g := range groups {
		if (f.Job == "" || g.Job == f.Job) && (f.State == "" || g.State == f.State) {
			out = append(out, g)
		}
	}
	slices.SortStableFunc(out, func(a, b RunStatus) int { return b.Updated.Compare(a.Updated) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// group reads rows (closing them) and groups them into runs: a
// partitioned run's own row (which records only its partition count) with
// the rows of its partitions.
func (s *CheckpointStore) group(ctx context.Context, rows *sql.Rows) ([]RunStatus, error) {
	defer rows.Close()
	byKey := map[string]statusRow{}
	var order []string
	for rows.Next() {
		r, err := s.scanStatus(rows)
		if err != nil {
			return nil, err
		}
		byKey[r.RunKey] = r
		order = append(order, r.RunKey)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if s.d.Kind == sqldialect.PostgreSQL {
		if err := s.markHeld(ctx, byKey); err != nil {
			return nil, err
		}
	}
	var out []RunStatus
	for _, key := range order {
		r := byKey[key]
		if run, _, ok := splitPartitionKey(key); ok {
			if own, found := byKey[run]; found && own.parts > 1 {
				continue // listed with its run
			}
		}
		rs := RunStatus{RunKey: key, Job: r.job}
		// A partition's own row records its run's partition count: asked
		// for by its own key, it is that partition alone.
		_, index, isPart := splitPartitionKey(key)
		if r.parts > 1 && !isPart {
			for i := range r.parts {
				p := PartitionStatus{Index: i, Count: r.parts, RunKey: batchenrich.Partition{Index: i, Count: r.parts}.RunKey(key)}
				if pr, ok := byKey[p.RunKey]; ok {
					p = pr.PartitionStatus
					p.Index, p.Count = i, r.parts
					if rs.Job == "" {
						rs.Job = pr.job
					}
				}
				rs.Partitions = append(rs.Partitions, p)
			}
		} else {
			p := r.PartitionStatus
			p.Index, p.Count = 0, 1
			if isPart && r.parts > 1 {
				p.Index, p.Count = index, r.parts
			}
			rs.Partitions = []PartitionStatus{p}
		}
		rs.sum(r.Updated)
		out = append(out, rs)
	}
	return out, nil
}

// sum fills the run's state, counts and times from its partitions';
// updated is the run's own row's.
func (rs *RunStatus) sum(updated time.Time) {
	rs.Updated = updated
	var running, failed, stopped bool
	finished := true
	for _, p := range rs.Partitions {
		c := &rs.Counts
		c.Batches += p.Counts.Batches
		c.Read += p.Counts.Read
		c.Enriched += p.Counts.Enriched
		c.Failed += p.Counts.Failed
		c.FailedTransient += p.Counts.FailedTransient
		c.FailedPermanent += p.Counts.FailedPermanent
		c.Written += p.Counts.Written
		if !p.Started.IsZero() && (rs.Started.IsZero() || p.Started.Before(rs.Started)) {
			rs.Started = p.Started
		}
		if p.Updated.After(rs.Updated) {
			rs.Updated = p.Updated
		}
		if p.Finished.IsZero() {
			finished = false
		} else if p.Finished.After(rs.Finished) {
			rs.Finished = p.Finished
		}
		if p.LastError != "" {
			rs.LastError = p.LastError
		}
		switch p.State {
		case batchenrich.StateFailed:
			failed = true
		case batchenrich.StateStopped:
			stopped = true
		case batchenrich.StateDone:
		default:
			running = true
		}
	}
	if !finished {
		rs.Finished = time.Time{}
	}
	switch {
	case running:
		rs.State = batchenrich.StateRunning
	case failed:
		rs.State = batchenrich.StateFailed
	case stopped:
		rs.State = batchenrich.StateStopped
	default:
		rs.State = batchenrich.StateDone
	}
}

// splitPartitionKey splits a partition's run key ("run#p3").
func splitPartitionKey(key string) (run string, index int, ok bool) {
	i := strings.LastIndex(key, "#p")
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(key[i+2:])
	if err != nil || n < 0 || strconv.Itoa(n) != key[i+2:] {
		return "", 0, false
	}
	return key[:i], n, true
}

// markHeld sets Held on the rows whose run lock a session holds now
// (PostgreSQL).
func (s *CheckpointStore) markHeld(ctx context.Context, rows map[string]statusRow) error {
	if len(rows) == 0 {
		return nil
	}
	var oid int64
	if err := s.db.QueryRowContext(ctx, `SELECT $1::regclass::oid::bigint`, s.table).Scan(&oid); err != nil {
		return err
	}
	held := map[[2]int64]bool{}
	locks, err := s.db.QueryContext(ctx, `SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1`)
	if err != nil {
		return err
	}
	defer locks.Close()
	for locks.Next() {
		var hi, lo int64
		if err := locks.Scan(&hi, &lo); err != nil {
			return err
		}
		held[[2]int64{hi, lo}] = true
	}
	if err := locks.Err(); err != nil {
		return err
	}
	for k, r := range rows {
		key := s.lockKey(oid, k)
		if held[[2]int64{int64(uint32(uint64(key) >> 32)), int64(uint32(key))}] {
			r.Held = true
			rows[k] = r
		}
	}
	return nil
}

// lockKey is the advisory lock key of runKey in the table of oid.
func (s *CheckpointStore) lockKey(oid int64, runKey string) int64 {
	return sqldialect.LockKey("batchenrich:" + strconv.FormatInt(oid, 10) + ":" + runKey)
}

// RequestStop asks the run runKey to stop at its next batch boundary: each
// of its partitions recorded as running gets a stop request, which the
// runner working on it sees when it saves its next checkpoint (in the
// same statement: no round trip of its own), or when it starts. It
// finishes and commits the batch it is on, records StateStopped and
// returns an error wrapping batchenrich.ErrStopRequested; running the
// run again resumes it. It returns the number of partitions asked (0 when
// none is running), or an error wrapping batchenrich.ErrUnknownRun when
// nothing is recorded under runKey.
func (s *CheckpointStore) RequestStop(ctx context.Context, runKey string) (int, error) {
	st, err := s.Status(ctx, runKey)
	if err != nil {
		return 0, err
	}
	var keys []any
	for _, p := range st.Partitions {
		if p.State == batchenrich.StateRunning {
			keys = append(keys, p.RunKey)
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	q := s.d.Rebind(`UPDATE ` + s.table + ` SET stop_requested = TRUE WHERE state = 'running' AND run_key IN (?` + strings.Repeat(", ?", len(keys)-1) + `)`)
	res, err := s.db.ExecContext(ctx, q, keys...)
	if err != nil {
		return 0, fmt.Errorf("sqlbatch: request stop of run %q in %s: %w", runKey, s.name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return len(keys), nil
	}
	return int(n), nil
}
