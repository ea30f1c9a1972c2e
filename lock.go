package batchenrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// waitForever, as a lockRequest's wait, waits for a lock as long as ctx
// lasts.
const waitForever time.Duration = 1<<63 - 1

// lockRequest says how to take one lock. Every lock the package takes (a
// run's, a replay's, a partition claim's) is taken through take, so that
// each gets its panic guard, its nil-unlock check and its retry interval.
type lockRequest struct {
	key   string        // the run key to lock
	wait  time.Duration // how long to wait for a lock another runner holds: 0 not at all, waitForever as long as ctx lasts
	retry time.Duration // how often to try again while waiting
	log   *slog.Logger  // told when the lock is waited for; nil for none
	// holder says who may hold the lock, if there is more to say than
	// ErrRunLocked; todo says what to do when the lock is refused and
	// the Locker's error does not say it.
	holder, todo string
}

// take takes the lock on req.key if store is a Locker and returns the
// function that releases it (nil when store is no Locker). Its errors are
// *BatchErrors at StageLock: an error or a panic of TryLock, a TryLock
// that returned ok with a nil unlock function, the lock still held by
// another runner once req.wait has passed (wrapping ErrRunLocked), and the
// end of ctx while waiting.
func (req lockRequest) take(ctx context.Context, store CheckpointStore) (func() error, error) {
	l, ok := store.(Locker)
	if !ok {
		return nil, nil
	}
	fail := func(err error) error { return &BatchError{Stage: StageLock, RunKey: req.key, Err: err} }
	var deadline time.Time
	if req.wait != waitForever {
		deadline = time.Now().Add(req.wait)
	}
	for {
		var (
			unlock func() error
			ok     bool
		)
		err := guarded(func() (e error) { unlock, ok, e = l.TryLock(ctx, req.key); return })
		if err != nil && (ok || !errors.Is(err, ErrRunLocked)) {
			return nil, fail(err)
		}
		if ok {
			if unlock == nil {
				return nil, fail(errors.New("TryLock returned ok with a nil unlock function"))
			}
			return unlock, nil
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return nil, fail(req.refused(err))
		}
		if req.log != nil {
			if err != nil {
				req.log.DebugContext(ctx, "batchenrich: run locked by another runner, waiting", "run_key", req.key, "holder", err.Error())
			} else {
				req.log.DebugContext(ctx, "batchenrich: run locked by another runner, waiting", "run_key", req.key)
			}
		}
		retry := req.retry
		if !deadline.IsZero() {
			retry = min(retry, time.Until(deadline))
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fail(fmt.Errorf("waiting for the lock: %w", ctx.Err()))
		case <-t.C:
		}
	}
}

// refused returns the error for a lock another runner holds: err, the
// Locker's own error wrapping ErrRunLocked (which names the holder and
// says what to do), or ErrRunLocked; with req.holder and, when err is nil,
// req.todo in parentheses.
func (req lockRequest) refused(err error) error {
	if err != nil {
		if req.holder != "" {
			return fmt.Errorf("%w (%s)", err, req.holder)
		}
		return err
	}
	say := req.holder
	if req.todo != "" {
		if say != "" {
			say += "; "
		}
		say += req.todo
	}
	if say == "" {
		return ErrRunLocked
	}
	return fmt.Errorf("%w (%s)", ErrRunLocked, say)
}

// lockRun takes the lock on the run's key if o.Durable.Store is a Locker,
// waiting for it if o.Durable.LockWait is set, and returns the function that
// releases it (nil when there is no Locker). holder says who may hold the
// lock, if there is more to say than ErrRunLocked. See lockRequest.take.
func lockRun(ctx context.Context, o Options, holder string) (func() error, error) {
	if o.Durable == nil {
		return nil, nil
	}
	req := lockRequest{key: o.key, retry: o.Durable.LockRetryInterval, log: o.Logger, holder: holder,
		todo: "set Durable.LockWait to wait for it"}
	if o.Durable.LockWait {
		req.wait = waitForever
	}
	return req.take(ctx, o.Durable.Store)
}

// unlockRun calls unlock, returning its error (or panic) as a *BatchError
// at StageUnlock, joined to err.
func unlockRun(err error, unlock func() error, key string) error {
	if uerr := guarded(unlock); uerr != nil {
		return errors.Join(err, &BatchError{Stage: StageUnlock, RunKey: key, Err: uerr})
	}
	return err
}
