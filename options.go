package batchenrich

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults used for zero-valued Options fields.
const (
	// DefaultBatchSize is the number of items per batch.
	DefaultBatchSize = 100
	// DefaultConcurrency is the number of enrichments in flight at most.
	DefaultConcurrency = 25
	// DefaultLockRetryInterval is how often a waiting runner retries a
	// lock held by another runner (Options.LockWait).
	DefaultLockRetryInterval = 500 * time.Millisecond
)

// Upper bounds that Options are checked against.
const (
	// MaxBatchSize bounds Options.BatchSize.
	MaxBatchSize = 1 << 20
	// MaxConcurrency bounds Options.Concurrency.
	MaxConcurrency = 1 << 16
	// MaxJobLen bounds the length of Options.Job, in bytes.
	MaxJobLen = 200
)

// FailurePolicy says what a failed item does to its batch.
type FailurePolicy int

const (
	// RecordFailures, the default, hands failed items to the Sink as
	// Results with Err set, and counts them. Options.MaxBatchFailures can
	// still stop the run when one batch has too many.
	RecordFailures FailurePolicy = iota

	// FailBatch stops the run at the first failed item: the remaining
	// enrichments of the batch are cancelled, the batch is not written,
	// and Run returns a *BatchError wrapping ErrTooManyFailures and the
	// *ItemError.
	FailBatch
)

// String returns the policy's name.
func (p FailurePolicy) String() string {
	switch p {
	case RecordFailures:
		return "RecordFailures"
	case FailBatch:
		return "FailBatch"
	default:
		return "FailurePolicy(invalid)"
	}
}

// Options configure a Runner. The zero value is valid and means the
// defaults; New validates every field and reports the first bad one as an
// *OptionError.
type Options struct {
	// BatchSize is the number of items per batch (one Source window).
	// Zero means DefaultBatchSize.
	BatchSize int

	// MaxBatches caps the number of batches of a run: it stops after that
	// many even if the Source has more, so a run handles at most
	// BatchSize × MaxBatches items. Zero means no cap. A resumed run
	// counts the batches its earlier attempts committed, and a durable run
	// that stopped at the cap goes on when run again with a larger one.
	MaxBatches int

	// Concurrency is the number of enrichments in flight at most: within
	// a batch, or with Overlap across the two batches that may be enriched
	// at once. Zero means DefaultConcurrency.
	Concurrency int

	// FailurePolicy says what a failed item does. The zero value is
	// RecordFailures.
	FailurePolicy FailurePolicy

	// MaxBatchFailures, when positive, stops the run when one batch has
	// more failed items than this: that batch is not written and Run
	// returns a *BatchError wrapping ErrTooManyFailures. Zero means no
	// limit. Only used with RecordFailures.
	MaxBatchFailures int

	// AllowAllFailed turns off the all-failed stop: by default a batch of
	// at least AllFailedMinItems items in which every item failed stops
	// the run before that batch is written, with ErrAllFailed. Set it for
	// jobs where a whole batch may legitimately fail.
	AllowAllFailed bool

	// NoPrefetch disables reading window n+1 from the Source while batch n
	// is being enriched. Prefetching never starts the next batch's
	// enrichment early: batch n+1 is enriched only after the Sink has
	// returned from writing batch n (unless Overlap is set). It cannot be
	// combined with Overlap.
	NoPrefetch bool

	// Overlap lets batches overlap: batch n+1's enrichment starts while
	// batch n is still being enriched or written, once batch n-1's write
	// has returned without error, taking the enrichment slots that batch
	// n's workers free when no item of batch n is left for them to take;
	// batch n's items never wait for a slot held by batch n+1. Everything
	// else holds: at most Concurrency enrichments are in flight in all,
	// the batches sharing them; batches are written, and checkpointed, one
	// at a time in batch order (each with its checkpoint in one
	// transaction when the Sink is a CheckpointSink sharing the store);
	// batch n+1's write starts only after batch n's returned, and never if
	// it failed; the batch cap and numbering are unchanged. When batch n
	// stops the run (see Runner.Run), batch n+1's enrichment is cancelled
	// and it is never written, while batch n-1 is still finished and
	// written (unless ctx ended, which reaches it too); Run returns the
	// error of the first batch, in batch order, that stopped the run, even
	// if a later one failed first. The cost: after a crash a durable run
	// re-enriches up to two batches (at most two are ever enriched, or
	// being enriched, and not committed) instead of one, and up to three
	// windows are held in memory instead of two (two batches being
	// enriched or written, one window read ahead). Off by default.
	Overlap bool

	// Checkpoints, when set, makes runs durable: the Runner records the
	// last committed batch and Source cursor under RunKey, and a run with
	// a RunKey that has a checkpoint resumes after it. If the Sink is a
	// CheckpointSink that can share a transaction with this store, each
	// batch and its checkpoint commit together (exactly-once batches);
	// otherwise the checkpoint is saved after the write (at-least-once:
	// a crash in between rewrites that batch, which an idempotent Sink
	// absorbs). If the store is also a Locker, Run holds its lock on
	// RunKey for the whole run.
	Checkpoints CheckpointStore

	// RunKey names the run in the checkpoint store and lock. Required
	// when Checkpoints is set. With a Partition that splits the run, the
	// Runner keeps its checkpoint and lock under Partition.RunKey(RunKey)
	// instead, and Runner.Options reports that key.
	RunKey string

	// Partition, when its Count is above 1, makes this Runner work on one
	// key partition of a run split into Count: its Source must read that
	// partition only (sqlbatch.SourceConfig.Partition), its checkpoint and
	// lock are its own (see Partition.RunKey), batch numbers count within
	// the partition, and MaxBatches caps the partition's batches. The
	// count is recorded with the checkpoints: a run recorded with another
	// count is refused before any read (ErrPartitionsChanged). The zero
	// value, like Count 1, is an unpartitioned run. NewPartitioned (then
	// Partitioned.Run) runs all partitions of a run in one process.
	Partition Partition

	// run is RunKey as given, when Partition derived RunKey from it.
	run string

	// Job names the job the run belongs to (the seed job's
	// "travelers-enrichment", say): with the definition New derives from
	// the components that describe themselves (see Describer), BatchSize,
	// the partition count and Fingerprint, it is the run's identity,
	// recorded in each checkpoint. A run resuming (or replaying) a run key
	// whose checkpoints record another Job, or another definition, is
	// refused with ErrCheckpointMismatch before anything is read, naming
	// what differs; AllowReshape never allows that. A checkpoint recorded
	// without them (by an older version) matches any, and records this
	// run's from then on. Optional; only allowed with Checkpoints; at most
	// MaxJobLen bytes, no control characters.
	Job string

	// definition is the run's definition, derived by New from the
	// components (see definitionOf).
	definition string

	// derivedKey is set when RunKey was derived by the library (a
	// replay's), which checkRunKey would refuse from a user.
	derivedKey bool

	// Fingerprint, optional, identifies the job's configuration (for
	// example a hash of the URL template and the validation version). It
	// is recorded in each checkpoint with BatchSize, and a run resuming a
	// checkpoint recorded with a different non-empty Fingerprint (or a
	// different BatchSize) is refused with ErrCheckpointMismatch before
	// anything is read. A checkpoint recorded without a Fingerprint is
	// resumed whatever this one, and records it from then on (see
	// Checkpoint.Fingerprint). Only allowed with Checkpoints.
	Fingerprint string

	// AllowReshape lets a run resume a checkpoint recorded with another
	// BatchSize or Fingerprint, deliberately: the run goes on from the
	// checkpoint's cursor with this run's BatchSize (numbering continues,
	// and MaxBatches still counts batches), and its checkpoints record
	// this run's BatchSize and Fingerprint. Only allowed with Checkpoints.
	AllowReshape bool

	// LockWait makes Run wait for a lock on RunKey held by another runner
	// (then resume from its checkpoint, often finding the run done)
	// instead of returning ErrRunLocked. Only allowed when Checkpoints is
	// a Locker.
	LockWait bool

	// LockRetryInterval is how often a waiting Run retries the lock. Zero
	// means DefaultLockRetryInterval. Only allowed with Checkpoints.
	LockRetryInterval time.Duration

	// Logger receives the run's log records. Nil means silent. A record
	// whose handler panics is lost; the panic never escapes the Runner.
	Logger *slog.Logger

	// Events, when set, receives progress events. Sends never block the
	// run: an event that does not fit in the channel's buffer is dropped
	// and counted in Report.EventsDropped, and so is one sent to a closed
	// channel (the send's panic is recovered). Give it a buffer.
	Events chan<- Event

	// Tracer, when set, observes the run, its batches and its items, for
	// tracing and metrics (see Tracer for what runs where). Nil costs
	// nothing.
	Tracer Tracer
}

// withDefaults validates o and returns it with defaults filled in.
func (o Options) withDefaults() (Options, error) {
	bad := func(field, reason string) (Options, error) {
		return o, &OptionError{Field: field, Reason: reason}
	}
	switch {
	case o.BatchSize < 0:
		return bad("BatchSize", "must not be negative")
	case o.BatchSize > MaxBatchSize:
		return bad("BatchSize", "must be at most MaxBatchSize")
	case o.MaxBatches < 0:
		return bad("MaxBatches", "must not be negative (0 means no cap)")
	case o.Concurrency < 0:
		return bad("Concurrency", "must not be negative")
	case o.Concurrency > MaxConcurrency:
		return bad("Concurrency", "must be at most MaxConcurrency")
	case o.FailurePolicy != RecordFailures && o.FailurePolicy != FailBatch:
		return bad("FailurePolicy", "unknown policy")
	case o.MaxBatchFailures < 0:
		return bad("MaxBatchFailures", "must not be negative (0 means no limit)")
	case o.MaxBatchFailures > 0 && o.FailurePolicy != RecordFailures:
		return bad("MaxBatchFailures", "only applies to RecordFailures")
	case o.Overlap && o.NoPrefetch:
		return bad("Overlap", "needs the next window read ahead; cannot be combined with NoPrefetch")
	case o.Checkpoints != nil && o.RunKey == "":
		return bad("RunKey", "required when Checkpoints is set")
	case o.Checkpoints == nil && o.RunKey != "":
		return bad("RunKey", "set without Checkpoints")
	case o.LockRetryInterval < 0:
		return bad("LockRetryInterval", "must not be negative")
	case o.Checkpoints == nil && o.LockWait:
		return bad("LockWait", "set without Checkpoints (there is no lock to wait for)")
	case o.Checkpoints == nil && o.LockRetryInterval != 0:
		return bad("LockRetryInterval", "set without Checkpoints (there is no lock to retry)")
	case o.Checkpoints != nil && o.LockWait && !isLocker(o.Checkpoints):
		return bad("LockWait", fmt.Sprintf("the CheckpointStore %T is not a Locker, so there is no lock to wait for", o.Checkpoints))
	case o.Checkpoints == nil && o.Fingerprint != "":
		return bad("Fingerprint", "set without Checkpoints (it is recorded in checkpoints)")
	case o.Checkpoints == nil && o.AllowReshape:
		return bad("AllowReshape", "set without Checkpoints (there is no checkpoint to resume)")
	case o.Checkpoints == nil && o.Job != "":
		return bad("Job", "set without Checkpoints (it is recorded in checkpoints)")
	case len(o.Job) > MaxJobLen:
		return bad("Job", "longer than MaxJobLen bytes")
	case strings.ContainsFunc(o.Job, unicode.IsControl) || !utf8.ValidString(o.Job):
		return bad("Job", fmt.Sprintf("%q: must be UTF-8 text without control characters", o.Job))
	}
	if o.Checkpoints != nil && !o.derivedKey {
		key := o.RunKey
		if o.run != "" {
			key = o.run
		}
		if err := checkRunKey("RunKey", key); err != nil {
			return o, err
		}
	}
	if err := o.Partition.validate(); err != nil {
		return o, err
	}
	if !o.Partition.Partitioned() {
		o.Partition = Partition{}
	} else if o.Checkpoints != nil && o.run == "" {
		o.run, o.RunKey = o.RunKey, o.Partition.RunKey(o.RunKey)
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.LockRetryInterval == 0 {
		o.LockRetryInterval = DefaultLockRetryInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	} else {
		o.Logger = safeLogger(o.Logger)
	}
	return o, nil
}
