package batchenrich

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
)

// Sentinel errors. Use errors.Is to test for them. Their text names the
// condition alone, without a package prefix: they reach the caller inside
// an error that says where (see "Errors" in the package documentation).
var (
	// ErrInvalidConfig is matched (errors.Is) by every *ConfigError: the
	// one sentinel for a configuration mistake in any package or module
	// of batchenrich (New's Options, sqlbatch's, httpenrich's and
	// riverenrich's configurations; otelenrich has none to refuse).
	ErrInvalidConfig = errors.New("invalid configuration")

	// ErrTooManyFailures is returned by Run, wrapped in a *BatchError, when
	// a batch has Options.StopAfterFailures failed items. That batch is not
	// written.
	ErrTooManyFailures = errors.New("too many failed items in batch")

	// ErrRunLocked is returned by Run when another runner holds the lock
	// on the same run key and Durable.LockWait is false.
	ErrRunLocked = errors.New("run key is locked by another runner")

	// ErrCheckpointUnsupported is returned by a CheckpointSink that cannot
	// share a transaction with the given CheckpointStore. The Runner then
	// writes the batch and saves the checkpoint one after the other
	// (at-least-once).
	ErrCheckpointUnsupported = errors.New("sink cannot commit this checkpoint store atomically")

	// ErrAllFailed is returned by Run, wrapped in a *BatchError (stage
	// StageEnrich), when every item of a batch of at least 5
	// items failed: a broken endpoint, a wrong URL or bad credentials, rather
	// than bad data. That batch is not written, so a run does not store one
	// invalid row per item and report success. The error names the most common
	// failure reason (see FailureReason) and also wraps one *ItemError with
	// that reason, so errors.As and Classify see it. A durable run can be
	// resumed from that batch once the cause is fixed. Set
	// Options.AllowAllFailed where whole batches may legitimately fail.
	ErrAllFailed = errors.New("every item of the batch failed")

	// ErrStopRequested is returned by Run, wrapped in a *BatchError, when the
	// run stopped after a committed batch because an operator asked it to
	// (see StopRequester). Run again with the same key to resume.
	ErrStopRequested = errors.New("stop requested")

	// ErrUnknownRun is returned by Replay.Run when the run key it is to
	// replay has no recorded run in the CheckpointStore (a misspelled key, or
	// another store): nothing is replayed.
	ErrUnknownRun = errors.New("no such run")

	// ErrPartitionsChanged is returned (wrapped) by Run and CheckResume
	// when the run key's checkpoints were recorded with another partition
	// count than Options.Partition.Count (or NewPartitioned's). Nothing was read or enriched.
	// Resume with the recorded count, or start a new run key.
	ErrPartitionsChanged = errors.New("partition count changed")

	// ErrCheckpointMismatch is returned by Run, wrapped in a *BatchError (stage
	// StageCheckpoint), when the checkpoint of its RunKey was recorded by a run
	// with another BatchSize or non-empty Fingerprint, or of another Job or
	// definition (see Checkpoint and Describer). Nothing is read: resuming
	// would mix batch sizes, configurations or jobs in one run. The error
	// says what differs and how to proceed: run with the recorded settings,
	// start afresh under a new RunKey, or (for BatchSize and Fingerprint
	// only) set Durable.AllowReshape. Replay.Run refuses a replay of another
	// job or definition (its Enricher, or Sink for an unpartitioned run) with
	// it too.
	ErrCheckpointMismatch = errors.New("recorded with other settings")
)

// ConfigError reports a configuration mistake, refused before any work:
// it is the one configuration-error type of every package and module of
// batchenrich (sqlbatch, httpenrich and riverenrich report theirs with it
// too; otelenrich refuses no configuration). errors.Is(err, ErrInvalidConfig) is true for it, and
// errors.As finds which package refused which field and why. Its text is
// "<Package>: invalid <Field>: <Reason>", followed by ": <Err>" when there
// is a cause.
type ConfigError struct {
	// Package is the package that refused the configuration, e.g.
	// "batchenrich" or "sqlbatch".
	Package string
	// Field names the field or argument in the package's own terms: an
	// Options field ("BatchSize", "Durable.RunKey") or a New argument
	// ("src", "enr", "sink") for this package; "SinkConfig.Key" for
	// sqlbatch, "URL" or "Adaptive.MaxConcurrency" for httpenrich,
	// "Store" for riverenrich.
	Field string
	// Reason says what is wrong with it.
	Reason string
	// Err is the underlying cause, or nil.
	Err error
}

// Error names the package, the field, what is wrong with it and the cause
// if any: "sqlbatch: invalid SinkConfig.Columns[2]: table "results" has no
// column "payloda" (it has …)".
func (e *ConfigError) Error() string {
	s := e.Package + ": invalid " + e.Field + ": " + e.Reason
	switch {
	case e.Err != nil && e.Reason == "":
		s += e.Err.Error()
	case e.Err != nil:
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the cause, or nil.
func (e *ConfigError) Unwrap() error { return e.Err }

// optionErr is this package's *ConfigError about field.
func optionErr(field, reason string) error {
	return &ConfigError{Package: "batchenrich", Field: field, Reason: reason}
}

// Stage names the step of a batch in which an error happened.
type Stage string

// The stages of a batch, and of the run around its batches (StageLock,
// StageUnlock).
const (
	StageLock       Stage = "lock"   // taking the run's lock, before any batch
	StageUnlock     Stage = "unlock" // releasing it, after the last batch
	StageCheckpoint Stage = "checkpoint"
	StageRead       Stage = "read"
	StageEnrich     Stage = "enrich"
	StageWrite      Stage = "write"
)

// BatchError is returned by Run when a batch fails as a whole: the Source
// or Sink returned an error, the failure policy stopped the run, a
// checkpoint could not be loaded or saved, or the context ended; and when
// the run's lock could not be taken (StageLock) or released
// (StageUnlock). It names the batch and the stage, and wraps the cause.
type BatchError struct {
	// Batch is the batch number, from 1: the batch being read, enriched,
	// written or checkpointed (for the final checkpoint of a run whose
	// last window was empty, that empty window's number). It is 0 only
	// for StageLock and StageUnlock, which concern the run rather than a
	// batch.
	Batch  int
	Stage  Stage  // where it failed
	RunKey string // Durable.RunKey; always set when Batch is 0
	Err    error  // the cause
}

// Error reads "batchenrich: batch N: stage: cause", or when Batch is 0
// `batchenrich: run "key": stage: cause`, the cause's text as it is: the
// Runner never edits the text of an error it did not create.
func (e *BatchError) Error() string {
	head := "batchenrich: batch " + strconv.Itoa(e.Batch)
	if e.Batch == 0 {
		head = "batchenrich: run " + strconv.Quote(e.RunKey)
	}
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return head + ": " + string(e.Stage) + ": " + msg
}

// Unwrap returns the cause.
func (e *BatchError) Unwrap() error { return e.Err }

// ItemError is a failure to enrich one item. It is stored in Result.Err
// and, when the failure stops the run, returned by Run.
type ItemError struct {
	Batch int    // batch number, from 1
	Index int    // position in the batch, from 0
	Key   string // the item's key if it implements Keyer, else ""
	Err   error  // the cause, as returned by the Enricher
}

// Error reads "batchenrich: batch N item I (key): cause", the cause's text
// as it is. For the cause alone, to store in a column, use FailureReason.
func (e *ItemError) Error() string {
	s := "batchenrich: batch " + strconv.Itoa(e.Batch) + " item " + strconv.Itoa(e.Index)
	if e.Key != "" {
		s += " (" + e.Key + ")"
	}
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return s + ": " + msg
}

// Unwrap returns the cause.
func (e *ItemError) Unwrap() error { return e.Err }

// Keyer is implemented by items that can name themselves in errors and
// events, for example by their primary key.
type Keyer interface {
	Key() string
}

func keyOf(item any) string {
	if k, ok := item.(Keyer); ok {
		return k.Key()
	}
	return ""
}

// itemKey returns keyOf(item), or the *PanicError of Key. It is no
// closure for guarded, which would cost an allocation per item.
func itemKey(item any) (key string, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return keyOf(item), nil
}

// PanicError is the cause of an *ItemError or *BatchError when user code
// (an Enricher, Source or Sink) panicked, and NewPartitioned's error when
// its function returning a partition's Source or Sink did.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the goroutine's stack at the panic
}

// Error gives the value passed to panic.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// guarded calls f, turning a panic into a *PanicError.
func guarded(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

// Class says whether retrying an operation that failed may succeed.
type Class int

// The classes of errors.
const (
	// Unclassified: nothing in the error chain says.
	Unclassified Class = iota
	// ClassTransient: the same call may succeed later (timeouts, 429, 5xx).
	ClassTransient
	// ClassPermanent: the same call will fail again (4xx, bad data).
	ClassPermanent
	// ClassFatal: the program is at fault, not the item (a request that
	// cannot be built, a missing template parameter): every item would
	// fail the same way. A Fatal item error stops the run at once, like a
	// panic. See Fatal.
	ClassFatal
)

// String returns "transient", "permanent", "fatal" or "unclassified".
func (c Class) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassPermanent:
		return "permanent"
	case ClassFatal:
		return "fatal"
	default:
		return "unclassified"
	}
}

type classified struct {
	class Class
	err   error
}

func (e *classified) Error() string { return e.err.Error() }
func (e *classified) Unwrap() error { return e.err }

// Transient marks err as transient. It returns nil for a nil err.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &classified{ClassTransient, err}
}

// Permanent marks err as permanent. It returns nil for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &classified{ClassPermanent, err}
}

// Fatal marks err as the program's fault rather than the item's: an
// Enricher returning it stops the run at once, like a panic, with an
// *ItemError wrapping err, and the batch is not written. Use it where every
// item would fail the same way (a request that cannot be built, a missing
// configuration value), so that a run does not store one invalid row per
// item. It returns nil for a nil err.
func Fatal(err error) error {
	if err == nil {
		return nil
	}
	return &classified{ClassFatal, err}
}

// Classify returns the class of err: the outermost mark set by Transient,
// Permanent or Fatal; otherwise ClassTransient for deadlines and network
// timeouts, and Unclassified for anything else (including nil).
//
// Where err joins several errors (errors.Join, or an Unwrap() []error),
// each branch is classified on its own (its outermost mark) and the most
// severe class wins: ClassFatal, then ClassPermanent, then ClassTransient.
// So joining a permanent failure with a transient one is permanent: doing
// it all again would fail again.
func Classify(err error) Class {
	if err == nil {
		return Unclassified
	}
	if c := markOf(err); c != Unclassified {
		return c
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassTransient
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTransient
	}
	return Unclassified
}

// markOf returns the outermost mark on err's chain, and for a join the most
// severe mark among its branches (the Class constants are in order of
// severity).
func markOf(err error) Class {
	for err != nil {
		switch e := err.(type) {
		case *classified:
			return e.class
		case interface{ Unwrap() []error }:
			best := Unclassified
			for _, b := range e.Unwrap() {
				best = max(best, markOf(b))
			}
			return best
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		default:
			return Unclassified
		}
	}
	return Unclassified
}
