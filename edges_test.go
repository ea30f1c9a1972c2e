package batchenrich_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// Defect 1: a panic in Keyer.Key (here a nil *ptrItem) becomes an error
// naming the item instead of crashing the process.
type ptrItem struct{ id string }

func (p *ptrItem) Key() string { return p.id } // panics for a nil *ptrItem

func TestKeyerPanicIsAnError(t *testing.T) {
	t.Parallel()
	src := batchenrichtest.NewSliceSource([]*ptrItem{{"a"}, nil, {"c"}})
	enr := batchenrich.EnricherFunc[*ptrItem, int](func(_ context.Context, p *ptrItem) (int, error) {
		if p == nil {
			return 0, errors.New("no item")
		}
		return 1, nil
	})
	sink := batchenrichtest.NewSink[*ptrItem, int]()
	r, err := batchenrich.New[*ptrItem, int](src, enr, sink, batchenrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background())
	var ie *batchenrich.ItemError
	var pe *batchenrich.PanicError
	if !errors.As(err, &ie) || ie.Batch != 1 || ie.Index != 1 || !errors.As(err, &pe) || !strings.Contains(err.Error(), "Keyer.Key") {
		t.Fatalf("err = %v, want batch 1 item 1's *ItemError wrapping a *PanicError from Keyer.Key", err)
	}
	if len(sink.Batches()) != 0 {
		t.Fatal("the batch was written")
	}
}

// locker is a CheckpointStore and Locker whose TryLock and unlock are
// scripted.
type locker struct {
	*batchenrichtest.Checkpoints
	tryLock func() (func() error, bool, error)
}

func (l *locker) TryLock(ctx context.Context, key string) (func() error, bool, error) {
	return l.tryLock()
}

// Defect 2: panics in TryLock and in the unlock function become errors.
func TestLockPanicsAreErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		tryLock func() (func() error, bool, error)
		written int
	}{
		{"TryLock", func() (func() error, bool, error) { panic("boom in TryLock") }, 0},
		{"unlock", func() (func() error, bool, error) { return func() error { panic("boom in unlock") }, true, nil }, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(10)
			store := &locker{Checkpoints: batchenrichtest.NewCheckpoints(), tryLock: tc.tryLock}
			rep, err := f.run(t, context.Background(), batchenrich.Options{Durable: &batchenrich.Durable{Store: store, RunKey: "r"}})
			var be *batchenrich.BatchError
			var pe *batchenrich.PanicError
			if !errors.As(err, &be) || (be.Stage != batchenrich.StageLock && be.Stage != batchenrich.StageUnlock) || be.RunKey != "r" || !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a StageLock *BatchError wrapping a *PanicError", err)
			}
			if rep.Written != tc.written {
				t.Fatalf("written = %d, want %d", rep.Written, tc.written)
			}
		})
	}
}

// Defect 2: the test kit's Checkpoints works from its zero value.
func TestZeroCheckpoints(t *testing.T) {
	t.Parallel()
	saveErr := errors.New("save failed")
	store := &batchenrichtest.Checkpoints{FailSave: func(cp batchenrich.Checkpoint) error {
		if cp.Batch == 2 {
			return saveErr
		}
		return nil
	}}
	f := newFixture(50)
	_, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: store, RunKey: "r"}})
	if !errors.Is(err, saveErr) {
		t.Fatalf("err = %v", err)
	}
	if cp, _ := store.Load(context.Background(), "r"); cp.Batch != 1 {
		t.Fatalf("checkpoint = %+v", cp)
	}
}

// Defect 3: an error from the unlock function reaches the caller.
func TestUnlockErrorReturned(t *testing.T) {
	t.Parallel()
	lost := errors.New("run lock lost")
	store := &locker{Checkpoints: batchenrichtest.NewCheckpoints(), tryLock: func() (func() error, bool, error) {
		return func() error { return lost }, true, nil
	}}
	f := newFixture(10)
	rep, err := f.run(t, context.Background(), batchenrich.Options{Durable: &batchenrich.Durable{Store: store, RunKey: "r"}})
	var be *batchenrich.BatchError
	if !errors.Is(err, lost) || !errors.As(err, &be) || be.Stage != batchenrich.StageUnlock {
		t.Fatalf("err = %v, want the unlock error in a StageUnlock *BatchError", err)
	}
	if want := `batchenrich: run "r": unlock: run lock lost`; err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
	if rep.Written != 10 {
		t.Fatalf("report = %+v", rep)
	}
}

// Defect 4: lock failures are *BatchErrors; a BatchError's Batch is never
// 0 outside StageLock (here the final Done save after an empty first
// window).
func TestLockAndDoneSaveErrorsAreBatchErrors(t *testing.T) {
	t.Parallel()
	store := batchenrichtest.NewCheckpoints()
	unlock, _, _ := store.TryLock(context.Background(), "r")
	_, err := newFixture(10).run(t, context.Background(), batchenrich.Options{Durable: &batchenrich.Durable{Store: store, RunKey: "r"}})
	var be *batchenrich.BatchError
	if !errors.As(err, &be) || be.Stage != batchenrich.StageLock || be.Batch != 0 || be.RunKey != "r" || !errors.Is(err, batchenrich.ErrRunLocked) {
		t.Fatalf("locked: err = %#v", err)
	}
	_ = unlock()

	saveErr := errors.New("disk full")
	failing := &batchenrichtest.Checkpoints{FailSave: func(batchenrich.Checkpoint) error { return saveErr }}
	_, err = newFixture(0).run(t, context.Background(), batchenrich.Options{Durable: &batchenrich.Durable{Store: failing, RunKey: "r"}})
	if !errors.As(err, &be) || be.Stage != batchenrich.StageCheckpoint || be.Batch != 1 || !errors.Is(err, saveErr) {
		t.Fatalf("done save: err = %v (%#v)", err, be)
	}
}

// Defect 5: ReadDuration is what the run waited for: all of the read for
// a window not prefetched, next to nothing for a prefetched window read
// while the previous batch was enriched; SourceDuration is the time in
// Source.Read either way.
func TestReadDurationIsTheWait(t *testing.T) {
	t.Parallel()
	inner := batchenrichtest.NewSliceSource(items(30))
	inner.Latency = 20 * time.Millisecond
	var reads atomic.Int64
	read2 := make(chan struct{})
	src := batchenrich.SourceFunc[item](func(ctx context.Context, after batchenrich.Cursor, limit int) ([]item, batchenrich.Cursor, error) {
		items, next, err := inner.Read(ctx, after, limit)
		if reads.Add(1) == 2 {
			close(read2)
		}
		return items, next, err
	})
	// Batch 1's enrichment waits until window 2 has been read.
	enr := batchenrich.EnricherFunc[item, int](func(ctx context.Context, i item) (int, error) {
		if i == 0 {
			<-read2
		}
		return double(ctx, i)
	})
	r, err := batchenrich.New[item, int](src, enr, batchenrichtest.NewSink[item, int](), batchenrich.Options{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b1, b2 := rep.Batches[0], rep.Batches[1]
	if b1.ReadDuration != b1.SourceDuration || b1.SourceDuration < inner.Latency {
		t.Errorf("batch 1 (not prefetched): ReadDuration %v, SourceDuration %v; want equal, at least %v", b1.ReadDuration, b1.SourceDuration, inner.Latency)
	}
	if b2.SourceDuration < inner.Latency || b2.ReadDuration >= b2.SourceDuration {
		t.Errorf("batch 2 (prefetched while batch 1 was enriched): ReadDuration %v, SourceDuration %v; want the wait below the read", b2.ReadDuration, b2.SourceDuration)
	}
}

// Defect 5: a stopped batch reports what was enriched and failed.
func TestStoppedBatchReportsCounts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		opts     batchenrich.Options
		fail     func(i item) error
		panicAt  item
		enriched int
		failed   int
	}{
		{"StopAfterFailures=1", batchenrich.Options{StopAfterFailures: 1}, func(i item) error {
			if i == 5 {
				return errors.New("bad")
			}
			return nil
		}, -1, 5, 1},
		{"StopAfterFailures=3", batchenrich.Options{StopAfterFailures: 3}, func(i item) error {
			if i%3 == 2 {
				return errors.New("bad")
			}
			return nil
		}, -1, 6, 3},
		{"Panic", batchenrich.Options{}, nil, 4, 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(20)
			f.enr.Fail = tc.fail
			if tc.panicAt >= 0 {
				f.enr.Fn = func(ctx context.Context, i item) (int, error) {
					if i == tc.panicAt {
						panic("boom")
					}
					return double(ctx, i)
				}
			}
			o := tc.opts
			o.BatchSize, o.Concurrency = 20, 1 // in order, stopping at the first stop
			rep, err := f.run(t, context.Background(), o)
			if err == nil {
				t.Fatal("run not stopped")
			}
			if len(rep.Batches) != 1 {
				t.Fatalf("batches = %+v", rep.Batches)
			}
			if b := rep.Batches[0]; b.Enriched != tc.enriched || b.Failed != tc.failed || b.Written != 0 || rep.Enriched != tc.enriched || rep.Failed != tc.failed {
				t.Fatalf("report = %+v, want %d enriched, %d failed", rep, tc.enriched, tc.failed)
			}
		})
	}
}

// Defect 6: New refuses typed-nil Func adapters and lock options that
// cannot apply, naming the field.
func TestNewRefusesMisuse(t *testing.T) {
	t.Parallel()
	f := newFixture(1)
	var (
		nilSrc  batchenrich.SourceFunc[item]
		nilEnr  batchenrich.EnricherFunc[item, int]
		nilSink batchenrich.SinkFunc[item, int]
	)
	notLocker := struct{ batchenrich.CheckpointStore }{batchenrichtest.NewCheckpoints()}
	for _, tc := range []struct {
		field string
		new   func() error
	}{
		{"src", func() error {
			_, err := batchenrich.New[item, int](nilSrc, f.enr, f.sink, batchenrich.Options{})
			return err
		}},
		{"enr", func() error {
			_, err := batchenrich.New[item, int](f.src, nilEnr, f.sink, batchenrich.Options{})
			return err
		}},
		{"sink", func() error {
			_, err := batchenrich.New[item, int](f.src, f.enr, nilSink, batchenrich.Options{})
			return err
		}},
		{"Durable.Store", func() error {
			_, err := batchenrich.New[item, int](f.src, f.enr, f.sink, batchenrich.Options{Durable: &batchenrich.Durable{RunKey: "r", LockWait: true}})
			return err
		}},
		{"Durable.LockWait", func() error {
			_, err := batchenrich.New[item, int](f.src, f.enr, f.sink, batchenrich.Options{Durable: &batchenrich.Durable{Store: notLocker, RunKey: "r", LockWait: true}})
			return err
		}},
	} {
		var oe *batchenrich.ConfigError
		if err := tc.new(); !errors.As(err, &oe) || oe.Field != tc.field || !errors.Is(err, batchenrich.ErrInvalidConfig) {
			t.Errorf("%s: err = %v", tc.field, err)
		}
	}
	// A Locker with LockWait is fine.
	if _, err := batchenrich.New[item, int](f.src, f.enr, f.sink, batchenrich.Options{Durable: &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: "r", LockWait: true}}); err != nil {
		t.Fatal(err)
	}
}

// cancelBeforeWrite is a Tracer that cancels the run's context just
// before the Sink's write.
type cancelBeforeWrite struct{ cancel context.CancelFunc }

func (c cancelBeforeWrite) TraceRunStart(ctx context.Context, _ batchenrich.TraceRun) context.Context {
	return ctx
}
func (c cancelBeforeWrite) TraceRunEnd(context.Context, batchenrich.TraceRun) {}
func (c cancelBeforeWrite) TraceBatchStart(ctx context.Context, _ batchenrich.TraceBatch) context.Context {
	return ctx
}
func (c cancelBeforeWrite) TraceBatchEnd(context.Context, batchenrich.TraceBatch) {}
func (c cancelBeforeWrite) TraceItemStart(ctx context.Context, _ batchenrich.TraceItem) context.Context {
	return ctx
}
func (c cancelBeforeWrite) TraceItemEnd(context.Context, batchenrich.TraceItem) {}
func (c cancelBeforeWrite) TraceStageStart(ctx context.Context, d batchenrich.TraceStage) context.Context {
	if d.Stage == batchenrich.StageWrite {
		c.cancel()
	}
	return ctx
}
func (c cancelBeforeWrite) TraceStageEnd(context.Context, batchenrich.TraceStage)       {}
func (c cancelBeforeWrite) TraceLimitChange(context.Context, batchenrich.UpstreamLimit) {}

// Defect 7: a batch whose context ended before the write is not written,
// even by a Sink that ignores ctx.
func TestCancelledBatchNotWrittenBySinkIgnoringCtx(t *testing.T) {
	t.Parallel()
	for _, durable := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		var writes atomic.Int64
		sink := batchenrich.SinkFunc[item, int](func(context.Context, batchenrich.Batch[item, int]) error {
			writes.Add(1) // ignores ctx
			return nil
		})
		o := batchenrich.Options{BatchSize: 10, Tracer: cancelBeforeWrite{cancel}}
		if durable {
			o.Durable = &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: "r"}
		}
		r, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(30)), batchenrichtest.NewEnricher(double), sink, o)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Run(ctx)
		cancel()
		if !errors.Is(err, context.Canceled) || writes.Load() != 0 {
			t.Fatalf("durable=%v: err = %v, %d writes; want context.Canceled and none", durable, err, writes.Load())
		}
	}
}

// Defect 7: the Runner copies a window before reading the next, so a
// Source that reuses its slice cannot change a batch under enrichment.
func TestSourceReusingItsSlice(t *testing.T) {
	t.Parallel()
	all := items(95)
	buf := make([]item, 10)
	src := batchenrich.SourceFunc[item](func(_ context.Context, after batchenrich.Cursor, limit int) ([]item, batchenrich.Cursor, error) {
		start := 0
		if after != "" {
			start = int(after[0])<<8 | int(after[1])
		}
		end := min(start+limit, len(all))
		out := buf[:end-start] // the same backing array every time
		copy(out, all[start:end])
		return out, batchenrich.Cursor([]byte{byte(end >> 8), byte(end)}), nil
	})
	enr := batchenrichtest.NewEnricher(double)
	enr.Latency = func(item) time.Duration { return time.Millisecond } // the next window is read meanwhile
	sink := batchenrichtest.NewSink[item, int]()
	r, err := batchenrich.New[item, int](src, enr, sink, batchenrich.Options{BatchSize: 10, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := sink.Results()
	if len(res) != len(all) {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if int(r.Item) != i || r.Value != 2*i {
			t.Fatalf("result %d = item %d value %d", i, r.Item, r.Value)
		}
	}
}

// A Replay takes and releases the run's lock like Run: panics become
// errors, and an unlock error is joined to the result, not put in its
// place.
func TestReplayLockEdges(t *testing.T) {
	t.Parallel()
	lost := errors.New("run lock lost")
	for _, tc := range []struct {
		name    string
		tryLock func() (func() error, bool, error)
		stage   batchenrich.Stage
		is      error
	}{
		{"TryLockPanics", func() (func() error, bool, error) { panic("boom") }, batchenrich.StageLock, nil},
		{"UnlockPanics", func() (func() error, bool, error) { return func() error { panic("boom") }, true, nil }, batchenrich.StageUnlock, nil},
		{"UnlockFails", func() (func() error, bool, error) { return func() error { return lost }, true, nil }, batchenrich.StageUnlock, lost},
	} {
		store := &locker{Checkpoints: ranRun(t, "r"), tryLock: tc.tryLock}
		p, err := batchenrich.NewReplay[item, int](batchenrichtest.NewSliceSource(items(3)), batchenrichtest.NewEnricher(double),
			batchenrichtest.NewSink[item, int](), batchenrich.Options{Durable: &batchenrich.Durable{Store: store, RunKey: "r"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Run(context.Background())
		var be *batchenrich.BatchError
		if !errors.As(err, &be) || be.Stage != tc.stage || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

// panickyChecker is a Source whose Check panics.
type panickyChecker struct {
	*batchenrichtest.SliceSource[item]
}

func (panickyChecker) Check(context.Context) error { panic("boom in Check") }

// A panic in a Checker is an error, not a crash.
func TestCheckerPanicIsAnError(t *testing.T) {
	t.Parallel()
	src := panickyChecker{batchenrichtest.NewSliceSource(items(3))}
	r, err := batchenrich.New[item, int](src, batchenrichtest.NewEnricher(double), batchenrichtest.NewSink[item, int](), batchenrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var pe *batchenrich.PanicError
	if _, err := r.Run(context.Background()); !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *PanicError", err)
	}
}

// runKeyLocker is a CheckpointStore and Locker whose unlock of the run's
// own key ("r") fails, while the replay's key unlocks cleanly.
type runKeyLocker struct{ *batchenrichtest.Checkpoints }

var errRunLockLost = errors.New("run lock lost")

func (runKeyLocker) TryLock(ctx context.Context, key string) (func() error, bool, error) {
	if key == "r" {
		return func() error { return errRunLockLost }, true, nil
	}
	return func() error { return nil }, true, nil
}

// A Replay returns the error releasing the run's own lock, not only the
// replay's.
func TestReplayRunUnlockErrorReturned(t *testing.T) {
	t.Parallel()
	store := runKeyLocker{ranRun(t, "r")}
	p, err := batchenrich.NewReplay[item, int](batchenrichtest.NewSliceSource(items(3)), batchenrichtest.NewEnricher(double),
		batchenrichtest.NewSink[item, int](), batchenrich.Options{Durable: &batchenrich.Durable{Store: store, RunKey: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(context.Background())
	var be *batchenrich.BatchError
	if !errors.Is(err, errRunLockLost) || !errors.As(err, &be) || be.Stage != batchenrich.StageUnlock || be.RunKey != "r" {
		t.Fatalf("err = %v, want the run's unlock error in a StageUnlock *BatchError", err)
	}
}

// ranRun returns a store in which run key recorded a finished run, for
// a Replay to replay.
func ranRun(t *testing.T, key string) *batchenrichtest.Checkpoints {
	t.Helper()
	store := batchenrichtest.NewCheckpoints()
	if err := store.Save(context.Background(), batchenrich.Checkpoint{RunKey: key, Batch: 1, Done: true, State: batchenrich.StateDone}); err != nil {
		t.Fatal(err)
	}
	return store
}
