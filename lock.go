package batchenrich

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// lockRun takes the lock on o.RunKey if o.Checkpoints is a Locker,
// waiting for it if o.LockWait is set, and returns the function that
// releases it (nil when there is no Locker). Its errors are *BatchErrors
// at StageLock; a panic in TryLock is one. holder says who may hold the
// lock, if there is more to say than ErrRunLocked.
func lockRun(ctx context.Context, o Options, holder string) (func() error, error) {
	l, ok := o.Checkpoints.(Locker)
	if !ok {
		return nil, nil
	}
	key := o.RunKey
	fail := func(err error) error { return &BatchError{Stage: StageLock, RunKey: key, Err: err} }
	for {
		var (
			unlock func() error
			ok     bool
		)
		err := guarded(func() (e error) { unlock, ok, e = l.TryLock(ctx, key); return })
		if err != nil && (ok || !errors.Is(err, ErrRunLocked)) {
			return nil, fail(err)
		}
		if ok {
			if unlock == nil {
				return nil, fail(errors.New("TryLock returned ok with a nil unlock function"))
			}
			return unlock, nil
		}
		if !o.LockWait {
			if err != nil {
				// err wraps ErrRunLocked, names the holder and says
				// what to do.
				if holder != "" {
					err = fmt.Errorf("%w (%s)", err, holder)
				}
				return nil, fail(err)
			}
			if holder != "" {
				holder += "; "
			}
			return nil, fail(fmt.Errorf("%w (%sset Options.LockWait to wait for it)", ErrRunLocked, holder))
		}
		if err != nil {
			o.Logger.DebugContext(ctx, "batchenrich: run locked by another runner, waiting", "run_key", key, "holder", err.Error())
		} else {
			o.Logger.DebugContext(ctx, "batchenrich: run locked by another runner, waiting", "run_key", key)
		}
		t := time.NewTimer(o.LockRetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fail(fmt.Errorf("waiting for the lock: %w", ctx.Err()))
		case <-t.C:
		}
	}
}

// unlockRun calls unlock, returning its error (or panic) as a *BatchError
// at StageUnlock, joined to err.
func unlockRun(err error, unlock func() error, key string) error {
	if uerr := guarded(unlock); uerr != nil {
		return errors.Join(err, &BatchError{Stage: StageUnlock, RunKey: key, Err: uerr})
	}
	return err
}
