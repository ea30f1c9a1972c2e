package riverenrich

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/batchenrich/batchenrich"
)

// Defaults used for zero-valued Config fields.
const (
	// QueuePrefix begins the name of the River queue of a job's
	// partition jobs: QueuePrefix + Config.Job.
	QueuePrefix = "batchenrich_"

	// DefaultNoWorker is how long Wait lets a run's jobs wait for a
	// worker (see WaitOptions.NoWorker).
	DefaultNoWorker = 30 * time.Second

	// DefaultMaxPartitions is how many partition jobs one process works
	// on at once (the River queue's MaxWorkers).
	DefaultMaxPartitions = 100

	// DefaultSlice is how long one River job works on its partition
	// before it stops at the next batch boundary and puts the job back
	// (river.JobSnooze(0)), for any worker to continue.
	DefaultSlice = time.Minute

	// SliceGrace is added to the slice to give the job's River timeout:
	// the time a batch may take to finish after the slice ended. A job
	// over its timeout is cancelled (its batch is not written) and
	// retried.
	SliceGrace = 2 * time.Minute

	// DefaultTakeoverInterval is how often each worker process looks for
	// partition jobs whose worker died. A job is taken over once two
	// looks, at least this far apart, found it running with nobody
	// holding its partition's run lock: within 2 × DefaultTakeoverInterval
	// plus River's fetch poll interval (1 s) of a worker's death.
	DefaultTakeoverInterval = 5 * time.Second

	// DefaultLockedRetry is how long a job whose partition is locked by
	// another runner waits before it is tried again.
	DefaultLockedRetry = 2 * time.Second

	// RetryMax bounds the wait before a failed partition job is retried
	// (attempt n waits n seconds, up to this); River discards a job after
	// its MaxAttempts (25 by default) failed attempts. A job whose run
	// failed with a batchenrich.Fatal error (the program's fault), whose
	// options are invalid, or whose checkpoint was recorded with other
	// settings (batchenrich.ErrCheckpointMismatch) or another partition
	// count, is cancelled at once instead.
	RetryMax = 30 * time.Second
)

// Config configures a Client. The zero value of each optional field means
// its default.
type Config[T, R any] struct {
	// DB is the PostgreSQL database (lib/pq, database/sql) holding
	// River's tables (see Migrate) and the checkpoints. Required.
	DB *sql.DB

	// Job names the job this Client enqueues and works on: what defines
	// its results (its Source, Enricher and Sink). Its partition jobs
	// carry it and go to River queue QueuePrefix + Job, so a Client works
	// only on its own job's runs, never on another job's sharing the
	// database; a partition job of another job or Fingerprint that
	// reaches it is cancelled, not run. Lower-case letters and digits,
	// words separated by single '-' or '_', at most 52 characters (a River
	// queue name). It is also each partition's Options.Job, recorded with
	// its checkpoints: a run key checkpointed by another job is refused
	// (batchenrich.ErrCheckpointMismatch). Required.
	Job string

	// Fingerprint, optional, identifies the definition of Job (a version
	// of its configuration): the Client enqueues it with each partition
	// job, a worker whose Fingerprint differs cancels the job instead of
	// running it, and it is each partition's Durable.Fingerprint unless
	// Options sets one (recorded with the checkpoints, so a run is never
	// resumed under another).
	Fingerprint string

	// Store keeps the partitions' checkpoints; it must also be a
	// batchenrich.Locker whose locks end with their holder's process
	// (sqlbatch.CheckpointStore on DB: a session advisory lock). The run
	// lock is what keeps a slow-but-alive worker and one that took its
	// partition over from working at once, and what tells a dead worker
	// from a live one. Required.
	Store batchenrich.CheckpointStore

	// Source returns the Source of the job's partition (for example an
	// sqlbatch.Source with SourceConfig.Partition set to job.Partition).
	// Nil makes a Client that only enqueues.
	Source func(ctx context.Context, job Job) (batchenrich.Source[T], error)

	// Enricher is shared by all partition jobs of this process.
	Enricher batchenrich.Enricher[T, R]

	// Sink returns the Sink of the job's partition; it may return one
	// shared Sink.
	Sink func(ctx context.Context, job Job) (batchenrich.Sink[T, R], error)

	// Options returns the Runner options of the job's partition (batch
	// size, cap, per-partition concurrency, …) from its Params. Partition,
	// RunsAtOnce and Durable's Store, RunKey, Job and LockWait are set by
	// the Client, and
	// Durable.Fingerprint when Options leaves it empty (Config.Fingerprint;
	// a Durable.AllowReshape given here is kept). An
	// enqueuing Client with Options refuses a run whose checkpoints were
	// recorded with other settings, and names the settings that differ
	// when a run is enqueued again with other params. Nil means the
	// defaults.
	Options func(job Job) (batchenrich.Options, error)

	// Concurrency bounds the enrichments in flight in this process, over
	// all the partitions it works on. Zero means no bound beyond each
	// partition's Options.Concurrency; at most 65,536.
	Concurrency int

	// MaxPartitions is how many partition jobs this process works on at
	// once. Zero means DefaultMaxPartitions. A partition's Runner checks
	// the pools for min(MaxPartitions, the run's partition count)
	// partitions at once (it sets batchenrich.Options.RunsAtOnce): with
	// sqlbatch on DB, 3 connections each (the run lock's session, a batch's
	// transaction, the Source's read-ahead), plus River's own; a pool or
	// server too small for that cancels the job with the error naming the
	// limit and the minimum.
	MaxPartitions int

	// Slice is how long one job works before it stops at a batch boundary
	// and puts itself back in the queue. Zero means DefaultSlice.
	Slice time.Duration

	// TakeoverInterval is how often this process looks for jobs of dead
	// workers. Zero means DefaultTakeoverInterval; negative turns takeover
	// off (River's own rescuer then frees them after
	// RescueStuckJobsAfter, one hour by default).
	TakeoverInterval time.Duration

	// Schema is the schema of River's tables. Empty means the
	// connection's search_path.
	Schema string

	// FetchPollInterval is how often an idle worker polls for jobs
	// (database/sql has no LISTEN). Zero means River's default, 1 s.
	FetchPollInterval time.Duration

	// Logger receives this package's and River's logs. Nil means silent.
	Logger *slog.Logger
}

// ErrNotLocker is the cause of the *batchenrich.ConfigError (Field
// "Store") for a Store that is not a batchenrich.Locker: both
// errors.Is(err, ErrNotLocker) and errors.Is(err,
// batchenrich.ErrInvalidConfig) are true for it.
var ErrNotLocker = errors.New("store is not a batchenrich.Locker")

// configErr is this package's *batchenrich.ConfigError about a Config
// field.
func configErr(field, reason string, err error) error {
	return &batchenrich.ConfigError{Package: "riverenrich", Field: field, Reason: reason, Err: err}
}

func (c *Config[T, R]) withDefaults() error {
	bad := func(field, reason string) error { return configErr(field, reason, nil) }
	switch {
	case c.DB == nil:
		return bad("DB", "required")
	case c.Store == nil:
		return bad("Store", "required")
	case !validJob(c.Job):
		return bad("Job", fmt.Sprintf("%q: must be lower-case letters and digits, words separated by single '-' or '_', at most %d characters", c.Job, maxJob))
	case c.Concurrency < 0 || c.Concurrency > maxConcurrency:
		return bad("Concurrency", fmt.Sprintf("%d: must be between 0 and %d", c.Concurrency, maxConcurrency))
	case c.MaxPartitions < 0:
		return bad("MaxPartitions", "must not be negative")
	case c.Slice < 0:
		return bad("Slice", "must not be negative")
	case c.FetchPollInterval < 0:
		return bad("FetchPollInterval", "must not be negative")
	}
	if _, ok := c.Store.(batchenrich.Locker); !ok {
		return configErr("Store", fmt.Sprintf("%T", c.Store), ErrNotLocker)
	}
	switch {
	case c.Source != nil && c.Enricher == nil:
		return bad("Enricher", "required with Source: a working Client needs Source, Enricher and Sink")
	case c.Source != nil && c.Sink == nil:
		return bad("Sink", "required with Source: a working Client needs Source, Enricher and Sink")
	}
	if c.MaxPartitions == 0 {
		c.MaxPartitions = DefaultMaxPartitions
	}
	if c.Slice == 0 {
		c.Slice = DefaultSlice
	}
	if c.TakeoverInterval == 0 {
		c.TakeoverInterval = DefaultTakeoverInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// maxJob is the longest job name: River's queue names have at most 64
// characters, QueuePrefix included.
const maxJob = 64 - len(QueuePrefix)

// validJob reports whether job can name a job (and, after QueuePrefix, a
// River queue).
func validJob(job string) bool {
	if job == "" || len(job) > maxJob {
		return false
	}
	sep := true // no separator first
	for _, r := range job {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			sep = false
		case (r == '-' || r == '_') && !sep:
			sep = true
		default:
			return false
		}
	}
	return !sep
}

// queue is the River queue of the Client's partition jobs.
func (c *Config[T, R]) queue() string { return QueuePrefix + c.Job }
