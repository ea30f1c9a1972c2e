package batchenrich_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

func durable(store batchenrich.CheckpointStore, key string) batchenrich.Options {
	return batchenrich.Options{BatchSize: 100, MaxBatches: 8, Durable: &batchenrich.Durable{Store: store, RunKey: key}}
}

func TestResumeAfterSinkFailure(t *testing.T) {
	t.Parallel()
	store := batchenrichtest.NewCheckpoints()
	f := newFixture(1000)
	fail := true
	f.sink.FailWrite = func(n int) error {
		if n == 4 && fail {
			return errors.New("disk full")
		}
		return nil
	}
	if _, err := f.run(t, context.Background(), durable(store, "run-1")); err == nil {
		t.Fatal("first run did not fail")
	}
	cp, _ := store.Load(context.Background(), "run-1")
	if cp.Batch != 3 || cp.Cursor != "300" || cp.Done {
		t.Fatalf("checkpoint after failure = %+v", cp)
	}
	fail = false
	callsBefore := f.enr.Calls()
	events := make(chan event, 100)
	o := durable(store, "run-1")
	o.Tracer = eventTracer(events)
	rep, err := f.run(t, context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BatchesSkipped != 3 || rep.BatchesRun != 5 || rep.AlreadyDone || rep.Atomic {
		t.Fatalf("report = %+v", rep)
	}
	// Committed batches are neither re-read nor re-enriched.
	if got := f.enr.Calls() - callsBefore; got != 500 {
		t.Fatalf("resumed run enriched %d items, want 500", got)
	}
	f.checkWritten(t, 0, 800, 100, 1)
	// The Tracer tells the resume by the first batch's number.
	if ev := <-events; ev.Kind != evBatchStarted || ev.Batch != 4 {
		t.Fatalf("first event = %+v, want batch 4 started", ev)
	}
	cp, _ = store.Load(context.Background(), "run-1")
	if cp.Batch != 8 || cp.Done {
		t.Fatalf("checkpoint at the cap = %+v", cp)
	}

	// At the cap, the same cap has nothing left to do.
	callsBefore = f.enr.Calls()
	rep, err = f.run(t, context.Background(), durable(store, "run-1"))
	if err != nil || !rep.AlreadyDone || rep.BatchesRun != 0 || f.enr.Calls() != callsBefore || len(f.src.Reads()) != 10 {
		t.Fatalf("rerun: %+v, %v", rep, err)
	}
	// Without the cap, it goes on to the end of the Source.
	o = durable(store, "run-1")
	o.MaxBatches = 0
	rep, err = f.run(t, context.Background(), o)
	if err != nil || rep.AlreadyDone || rep.BatchesSkipped != 8 || rep.BatchesRun != 2 || f.enr.Calls()-callsBefore != 200 {
		t.Fatalf("uncapped: %+v, %v", rep, err)
	}
	f.checkWritten(t, 0, 1000, 100, 1)
	cp, _ = store.Load(context.Background(), "run-1")
	if cp.Batch != 10 || !cp.Done || cp.Cursor != "1000" {
		t.Fatalf("final checkpoint = %+v", cp)
	}
	// A finished run does nothing, whatever the cap.
	callsBefore = f.enr.Calls()
	rep, err = f.run(t, context.Background(), o)
	if err != nil || !rep.AlreadyDone || rep.BatchesRun != 0 || f.enr.Calls() != callsBefore {
		t.Fatalf("rerun after done: %+v, %v", rep, err)
	}
	// Another key starts from the beginning.
	g := newFixture(150)
	rep, err = g.run(t, context.Background(), durable(store, "run-2"))
	if err != nil || rep.BatchesRun != 2 || rep.BatchesSkipped != 0 {
		t.Fatalf("run-2: %+v, %v", rep, err)
	}
}

func TestCheckpointSaveFailureStopsRun(t *testing.T) {
	t.Parallel()
	store := batchenrichtest.NewCheckpoints()
	store.FailSave = func(cp batchenrich.Checkpoint) error {
		if cp.Batch == 2 {
			return errors.New("store down")
		}
		return nil
	}
	f := newFixture(1000)
	_, err := f.run(t, context.Background(), durable(store, "k"))
	var be *batchenrich.BatchError
	if !errors.As(err, &be) || be.Batch != 2 || be.Stage != batchenrich.StageCheckpoint {
		t.Fatalf("err = %v", err)
	}
}

func TestRunLocked(t *testing.T) {
	t.Parallel()
	store := batchenrichtest.NewCheckpoints()
	unlock, ok, err := store.TryLock(context.Background(), "busy")
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	f := newFixture(100)
	if _, err := f.run(t, context.Background(), durable(store, "busy")); !errors.Is(err, batchenrich.ErrRunLocked) {
		t.Fatalf("err = %v", err)
	}
	if f.enr.Calls() != 0 || len(f.src.Reads()) != 0 {
		t.Fatal("a locked run did work")
	}
	// Waiting: gives up with ctx.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	o := durable(store, "busy")
	o.Durable.LockWait, o.Durable.LockRetryInterval = true, 5*time.Millisecond
	if _, err := f.run(t, ctx, o); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err == nil {
		t.Fatal("double unlock not reported")
	}
}

// TestTwoRunnersOneKey starts two runners on one key together: the work is
// done once, and the one that waited finds it done.
func TestTwoRunnersOneKey(t *testing.T) {
	t.Parallel()
	store := batchenrichtest.NewCheckpoints()
	src := batchenrichtest.NewSliceSource(items(500))
	enr := batchenrichtest.NewEnricher(double)
	enr.Latency = func(item) time.Duration { return 100 * time.Microsecond }
	sink := batchenrichtest.NewSink[item, int]()
	o := durable(store, "shared")
	o.Durable.LockWait, o.Durable.LockRetryInterval = true, time.Millisecond
	var wg sync.WaitGroup
	reps := make([]batchenrich.Report, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := batchenrich.New[item, int](src, enr, sink, o)
			if err != nil {
				errs[i] = err
				return
			}
			reps[i], errs[i] = r.Run(context.Background())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("runner %d: %v", i, err)
		}
	}
	if enr.Calls() != 500 || len(sink.Results()) != 500 {
		t.Fatalf("calls=%d written=%d: work done more than once", enr.Calls(), len(sink.Results()))
	}
	if reps[0].AlreadyDone == reps[1].AlreadyDone {
		t.Fatalf("reports: %+v / %+v", reps[0], reps[1])
	}
	if err := sink.Check(); err != nil {
		t.Fatal(err)
	}
}

// atomicSink commits batch and checkpoint together when given its own store.
type atomicSink struct {
	*batchenrichtest.Sink[item, int]
	store *batchenrichtest.Checkpoints
	calls int
}

func (s *atomicSink) WriteCheckpointed(ctx context.Context, b batchenrich.Batch[item, int], store batchenrich.CheckpointStore, cp batchenrich.Checkpoint) error {
	if store != batchenrich.CheckpointStore(s.store) {
		return batchenrich.ErrCheckpointUnsupported
	}
	s.calls++
	if err := s.Write(ctx, b); err != nil {
		return err
	}
	return store.Save(ctx, cp)
}

func TestCheckpointSink(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{true, false} {
		store := batchenrichtest.NewCheckpoints()
		sink := &atomicSink{Sink: batchenrichtest.NewSink[item, int](), store: store}
		if !shared {
			sink.store = batchenrichtest.NewCheckpoints()
		}
		r, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(250)), batchenrich.EnricherFunc[item, int](double), sink, durable(store, "k"))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Atomic != shared || len(sink.Results()) != 250 || store.Saves() != 3 {
			t.Fatalf("shared=%v: report %+v, results %d, saves %d", shared, rep, len(sink.Results()), store.Saves())
		}
		if want := map[bool]int{true: 3, false: 0}[shared]; sink.calls != want {
			t.Fatalf("shared=%v: atomic writes = %d, want %d", shared, sink.calls, want)
		}
	}
}
