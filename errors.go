package batchenrich

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Sentinel errors. Use errors.Is to test for them.
var (
	// ErrInvalidOptions is wrapped by the *OptionError that New returns
	// for a bad configuration.
	ErrInvalidOptions = errors.New("batchenrich: invalid options")

	// ErrTooManyFailures is returned by Run, wrapped in a *BatchError, when
	// a batch has more failed items than Options.MaxBatchFailures allows,
	// or any failed item under FailBatch. That batch is not written.
	ErrTooManyFailures = errors.New("batchenrich: too many failed items in batch")

	// ErrSourceOverflow is returned, wrapped in a *BatchError, when a
	// Source returns more items than the limit it was asked for.
	ErrSourceOverflow = errors.New("batchenrich: source returned more items than asked")

	// ErrRunLocked is returned by Run when another runner holds the lock
	// on the same run key and Options.LockWait is false.
	ErrRunLocked = errors.New("batchenrich: run key is locked by another runner")

	// ErrCheckpointUnsupported is returned by a CheckpointSink that cannot
	// share a transaction with the given CheckpointStore. The Runner then
	// writes the batch and saves the checkpoint one after the other
	// (at-least-once).
	ErrCheckpointUnsupported = errors.New("batchenrich: sink cannot commit this checkpoint store atomically")
)

// OptionError reports an invalid field of Options. It wraps
// ErrInvalidOptions.
type OptionError struct {
	Field  string // the Options field, e.g. "BatchSize"
	Reason string // what is wrong with it
}

// Error names the field and what is wrong with it.
func (e *OptionError) Error() string {
	return "batchenrich: invalid option " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidOptions.
func (e *OptionError) Unwrap() error { return ErrInvalidOptions }

// Stage names the step of a batch in which an error happened.
type Stage string

// The stages of a batch.
const (
	StageLock       Stage = "lock"
	StageCheckpoint Stage = "checkpoint"
	StageRead       Stage = "read"
	StageEnrich     Stage = "enrich"
	StageWrite      Stage = "write"
)

// BatchError is returned by Run when a batch fails as a whole: the Source
// or Sink returned an error, the failure policy stopped the run, or the
// context ended. It names the batch and the stage, and wraps the cause.
type BatchError struct {
	Batch int   // batch number, from 1
	Stage Stage // where it failed
	Err   error // the cause
}

// Error names the batch, the stage and the cause.
func (e *BatchError) Error() string {
	return "batchenrich: batch " + strconv.Itoa(e.Batch) + ": " + string(e.Stage) + ": " + e.Err.Error()
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

// Error names the batch, the item (index and key) and the cause.
func (e *ItemError) Error() string {
	s := "batchenrich: batch " + strconv.Itoa(e.Batch) + " item " + strconv.Itoa(e.Index)
	if e.Key != "" {
		s += " (" + e.Key + ")"
	}
	return s + ": " + e.Err.Error()
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

// PanicError is the cause of an *ItemError or *BatchError when user code
// (an Enricher, Source or Sink) panicked.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the goroutine's stack at the panic
}

// Error gives the value passed to panic.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

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
)

// String returns "transient", "permanent" or "unclassified".
func (c Class) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassPermanent:
		return "permanent"
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

// Classify returns the class of err: the outermost mark set by Transient or
// Permanent; otherwise ClassTransient for deadlines and network timeouts,
// and Unclassified for anything else (including nil).
func Classify(err error) Class {
	if err == nil {
		return Unclassified
	}
	var c *classified
	if errors.As(err, &c) {
		return c.class
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
