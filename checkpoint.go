package batchenrich

import "context"

// Checkpoint is the durable progress of one run.
type Checkpoint struct {
	// RunKey names the run (the seed job's execution_id).
	RunKey string
	// Batch is the number of the last committed batch; 0 if none.
	Batch int
	// Cursor is the Source position after that batch.
	Cursor Cursor
	// Done is set once the Source was exhausted (a short or empty
	// window). A run whose checkpoint is Done does nothing. Reaching
	// Options.MaxBatches does not set it: a run with the same cap then has
	// nothing to do, but one with a larger cap (or none) goes on.
	Done bool
	// Partitions is the number of key partitions the run was split into
	// (Options.Partition.Count); 0 for an unpartitioned run. A run
	// recorded with one count refuses to resume with another.
	Partitions int

	// BatchSize is the Options.BatchSize of the run that saved the
	// checkpoint; 0 if unknown (a checkpoint saved by an older version).
	// A run resuming with another BatchSize is refused (see
	// ErrCheckpointMismatch); 0 matches any, and the resumed run's
	// checkpoints record its own.
	BatchSize int
	// Fingerprint is the Durable.Fingerprint of the run that saved the
	// checkpoint, "" if it had none (or was an older version). A run
	// resuming a non-empty Fingerprint with another one, "" included, is
	// refused (see ErrCheckpointMismatch). An empty one matches any: a
	// run with a Fingerprint resumes it, and its checkpoints record the
	// Fingerprint from then on (so a job can start fingerprinting in
	// mid-run, e.g. after an upgrade).
	Fingerprint string

	// Job and Definition are the Durable.Job and the definition (see
	// Describer) of the run that saved the checkpoint, "" if not recorded
	// (an older version's checkpoint). A run resuming a checkpoint that
	// recorded other ones is refused with ErrCheckpointMismatch, even with
	// Durable.AllowReshape; an empty one matches any.
	Job        string
	Definition string

	// State is the run's state when the checkpoint was saved: StateRunning
	// after each batch, StateDone with Done, StateStopped after the last
	// batch Options.MaxBatches allows (Done not set), StateFailed or
	// StateStopped when a run ended early (its Batch and Cursor those of
	// the last committed batch). "" when not recorded.
	State RunState
	// Counts are the run's counts up to and including Batch.
	Counts RunCounts
	// LastError is the error that ended the run, with StateFailed or
	// StateStopped: its text, secrets redacted, at most 1 KiB.
	LastError string
}

// CheckpointStore keeps checkpoints.
//
// Load returns the checkpoint saved under runKey, or a zero Checkpoint
// (Batch 0) with that RunKey if there is none. Save replaces it. A store
// keeps every field of Checkpoint: Load returns what Save was given.
type CheckpointStore interface {
	Load(ctx context.Context, runKey string) (Checkpoint, error)
	Save(ctx context.Context, cp Checkpoint) error
}

// CheckpointSink is an optional ability of a Sink: writing a batch and
// saving its checkpoint in the same transaction, so that a crash at any
// instant leaves both or neither.
//
// WriteCheckpointed returns an error wrapping ErrCheckpointUnsupported,
// having written nothing, when it cannot share a transaction with store
// (another kind of store, or another database); the Runner then calls Write
// and store.Save one after the other.
type CheckpointSink[T, R any] interface {
	Sink[T, R]
	WriteCheckpointed(ctx context.Context, b Batch[T, R], store CheckpointStore, cp Checkpoint) error
}

// Locker is an optional ability of a CheckpointStore: making sure that one
// runner at a time works on a run key, across processes and machines.
//
// TryLock takes the lock on key if it is free and returns ok=true with a
// function that releases it. If another holder has it, TryLock returns
// ok=false at once, with a nil error or with an error wrapping
// ErrRunLocked that names the holder (which Run then reports, or logs
// while it waits with Durable.LockWait). A lock must be freed by the store when
// its holder dies (a PostgreSQL session advisory lock, a lease that
// expires), so that another runner can take over.
type Locker interface {
	TryLock(ctx context.Context, key string) (unlock func() error, ok bool, err error)
}
