package batchenrich

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Durable holds the settings of a durable run (Options.Durable): where its
// checkpoints are kept, under which key, and how a resume and the run's
// lock behave. Store and RunKey are required; the other fields are
// optional.
type Durable struct {
	// Store keeps the checkpoints: the Runner records the last committed
	// batch and Source cursor under RunKey, and a run with a RunKey that
	// has a checkpoint resumes after it. If the Sink is a CheckpointSink
	// that can share a transaction with this store, each batch and its
	// checkpoint commit together (exactly-once batches); otherwise the
	// checkpoint is saved after the write (at-least-once: a crash in
	// between rewrites that batch, which an idempotent Sink absorbs). If
	// the store is also a Locker, Run holds its lock on RunKey for the
	// whole run.
	Store CheckpointStore

	// RunKey names the run in the checkpoint store and lock. Required. With a Partition that splits the run, the Runner
	// keeps its checkpoint and lock under Partition.RunKey(RunKey); RunKey
	// still names the whole run (and Runner.Options reports it as given).
	RunKey string

	// Job names the job the run belongs to (the seed job's
	// "travelers-enrichment", say): with the definition New derives from
	// the components that describe themselves (see Describer), BatchSize,
	// the partition count and Fingerprint, it is the run's identity,
	// recorded in each checkpoint. A run resuming (or replaying) a run key
	// whose checkpoints record another Job, or another definition, is
	// refused with ErrCheckpointMismatch before anything is read, naming
	// what differs; AllowReshape never allows that. A checkpoint recorded
	// without them (by an older version) matches any, and records this
	// run's from then on. Optional; at most 200 bytes, no control
	// characters.
	Job string

	// Fingerprint, optional, identifies the job's configuration (for
	// example a hash of the URL template and the validation version). It
	// is recorded in each checkpoint with BatchSize, and a run resuming a
	// checkpoint recorded with a different non-empty Fingerprint (or a
	// different BatchSize) is refused with ErrCheckpointMismatch before
	// anything is read. A checkpoint recorded without a Fingerprint is
	// resumed whatever this one, and records it from then on (see
	// Checkpoint.Fingerprint).
	Fingerprint string

	// AllowReshape lets a run resume a checkpoint recorded with another
	// BatchSize or Fingerprint, deliberately: the run goes on from the
	// checkpoint's cursor with this run's BatchSize (numbering continues,
	// and MaxBatches still counts batches), and its checkpoints record
	// this run's BatchSize and Fingerprint.
	AllowReshape bool

	// LockWait makes Run wait for a lock on RunKey held by another runner
	// (then resume from its checkpoint, often finding the run done)
	// instead of returning ErrRunLocked. Only allowed when Store is a
	// Locker.
	LockWait bool

	// LockRetryInterval is how often a waiting Run retries the lock. Zero
	// means 500 ms.
	LockRetryInterval time.Duration
}

// defaultLockRetryInterval is used for a zero Durable.LockRetryInterval.
const defaultLockRetryInterval = 500 * time.Millisecond

// validate checks d as Options.Durable; derivedKey says that the library
// derived RunKey (a replay's), which checkRunKey would refuse from a user.
func (d *Durable) validate(derivedKey bool) error {
	bad := func(field, reason string) error {
		return optionErr("Durable."+field, reason)
	}
	switch {
	case d.Store == nil:
		return bad("Store", "required (leave Options.Durable nil for a run that records nothing)")
	case d.RunKey == "":
		return bad("RunKey", "required")
	case d.LockRetryInterval < 0:
		return bad("LockRetryInterval", "must not be negative")
	case d.LockWait && !isLocker(d.Store):
		return bad("LockWait", fmt.Sprintf("the CheckpointStore %T is not a Locker, so there is no lock to wait for", d.Store))
	case len(d.Job) > maxJobLen:
		return bad("Job", fmt.Sprintf("longer than %d bytes", maxJobLen))
	case strings.ContainsFunc(d.Job, unicode.IsControl) || !utf8.ValidString(d.Job):
		return bad("Job", fmt.Sprintf("%q: must be UTF-8 text without control characters", d.Job))
	}
	if !derivedKey {
		return checkRunKey("Durable.RunKey", d.RunKey)
	}
	return nil
}

// store returns the run's CheckpointStore, nil for a run that records
// nothing.
func (o *Options) store() CheckpointStore {
	if o.Durable == nil {
		return nil
	}
	return o.Durable.Store
}
