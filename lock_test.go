package batchenrich_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// oddLocker is a CheckpointStore whose TryLock is tryLock, counting its
// calls and closing called at the first.
type oddLocker struct {
	*batchenrichtest.Checkpoints
	tryLock func() (func() error, bool, error)
	calls   atomic.Int64
	called  chan struct{}
}

func newOddLocker(tryLock func() (func() error, bool, error)) *oddLocker {
	return &oddLocker{Checkpoints: batchenrichtest.NewCheckpoints(), tryLock: tryLock, called: make(chan struct{})}
}

func (l *oddLocker) TryLock(ctx context.Context, key string) (func() error, bool, error) {
	if l.calls.Add(1) == 1 {
		close(l.called)
	}
	return l.tryLock()
}

// Every lock is taken alike, a partition claim's as the run's: a TryLock
// returning ok with a nil unlock function, or panicking, is an error at
// StageLock, never a panic out of Run or CheckResume.
func TestClaimPartitionsOddLocker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tryLock func() (func() error, bool, error)
		check   func(error) bool
	}{
		{"nil unlock", func() (func() error, bool, error) { return nil, true, nil }, func(err error) bool { return err != nil }},
		{"panic", func() (func() error, bool, error) { panic("locker bug") }, func(err error) bool {
			var pe *batchenrich.PanicError
			return errors.As(err, &pe) && pe.Value == "locker bug"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newOddLocker(tt.tryLock)
			err := batchenrich.CheckResume(context.Background(), batchenrich.Options{
				Durable:   &batchenrich.Durable{Store: l, RunKey: "r"},
				Partition: batchenrich.Partition{Index: 1, Count: 2},
			})
			var be *batchenrich.BatchError
			if !tt.check(err) || !errors.As(err, &be) || be.Stage != batchenrich.StageLock || be.RunKey != "r" {
				t.Fatalf("CheckResume: err = %v, want a *BatchError at StageLock for run r", err)
			}
			_, err = newFixture(10).run(t, context.Background(), batchenrich.Options{
				Durable: &batchenrich.Durable{
					Store:  newOddLocker(tt.tryLock),
					RunKey: "r",
				},
				Partition: batchenrich.Partition{Index: 1, Count: 2},
			})
			if !tt.check(err) || !errors.As(err, &be) || be.Stage != batchenrich.StageLock {
				t.Fatalf("Run: err = %v, want a *BatchError at StageLock", err)
			}
		})
	}
}

// A partition waiting for its run's lock to claim the partition count
// tries it again every Durable.LockRetryInterval, as Run does for its own
// lock: with an hour's interval, once in the time this test waits.
func TestClaimPartitionsLockRetryInterval(t *testing.T) {
	t.Parallel()
	l := newOddLocker(func() (func() error, bool, error) { return nil, false, nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := newFixture(10).run(t, ctx, batchenrich.Options{
			Durable: &batchenrich.Durable{
				Store:             l,
				RunKey:            "r",
				LockWait:          true,
				LockRetryInterval: time.Hour,
			},
			Partition: batchenrich.Partition{Index: 0, Count: 2},
		})
		done <- err
	}()
	select {
	case <-l.called:
	case <-time.After(time.Minute):
		t.Fatal("TryLock was never called")
	}
	// Not synchronisation: the window in which a wrong retry interval
	// (50 ms before the fix) would show. No retry can come in it.
	time.Sleep(time.Second)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if n := l.calls.Load(); n != 1 {
		t.Errorf("TryLock called %d times, want 1 (retried before LockRetryInterval)", n)
	}
}
