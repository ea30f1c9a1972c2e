package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// item is a test item that names itself in errors.
type item int

func (i item) Key() string { return fmt.Sprintf("item-%d", int(i)) }

func items(n int) []item {
	out := make([]item, n)
	for i := range out {
		out[i] = item(i)
	}
	return out
}

func double(_ context.Context, i item) (int, error) { return 2 * int(i), nil }

type fixture struct {
	src  *batchenrichtest.SliceSource[item]
	enr  *batchenrichtest.Enricher[item, int]
	sink *batchenrichtest.Sink[item, int]
}

func newFixture(n int) *fixture {
	return &fixture{
		src:  batchenrichtest.NewSliceSource(items(n)),
		enr:  batchenrichtest.NewEnricher(double),
		sink: &batchenrichtest.Sink[item, int]{FirstBatch: 1},
	}
}

func (f *fixture) run(t *testing.T, ctx context.Context, o batchenrich.Options) (batchenrich.Report, error) {
	t.Helper()
	r, err := batchenrich.New[item, int](f.src, f.enr, f.sink, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rep, err := r.Run(ctx)
	if cerr := f.sink.Check(); cerr != nil {
		t.Errorf("sink saw a broken guarantee: %v", cerr)
	}
	return rep, err
}

// checkWritten asserts the sink holds items 0..n-1 in order, enriched,
// numbered in batches of size starting at batch first.
func (f *fixture) checkWritten(t *testing.T, from, n, size, first int) {
	t.Helper()
	res := f.sink.Results()
	if len(res) != n {
		t.Fatalf("sink has %d results, want %d", len(res), n)
	}
	for i, r := range res {
		if int(r.Item) != from+i {
			t.Fatalf("result %d is item %d, want %d", i, r.Item, from+i)
		}
		if r.Err == nil && r.Value != 2*int(r.Item) {
			t.Fatalf("item %d: value %d", r.Item, r.Value)
		}
	}
	for i, b := range f.sink.Batches() {
		if b.Number != first+i {
			t.Fatalf("batch %d has number %d, want %d", i, b.Number, first+i)
		}
		if i < len(f.sink.Batches())-1 && len(b.Results) != size {
			t.Fatalf("batch %d has %d results, want %d", b.Number, len(b.Results), size)
		}
	}
}

func TestRunShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		items       int
		size, cap   int
		wantItems   int
		wantBatches int
	}{
		{"exact", 2000, 100, 20, 2000, 20},
		{"capped", 2500, 100, 20, 2000, 20},
		{"short last batch", 250, 100, 0, 250, 3},
		{"multiple of size, no cap", 300, 100, 0, 300, 3},
		{"fewer than one batch", 7, 100, 5, 7, 1},
		{"empty source", 0, 100, 20, 0, 0},
		{"batch of one", 5, 1, 0, 5, 5},
		{"cap of one", 500, 100, 1, 100, 1},
	}
	for _, tt := range tests {
		for _, prefetch := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/prefetch=%v", tt.name, prefetch), func(t *testing.T) {
				t.Parallel()
				f := newFixture(tt.items)
				rep, err := f.run(t, context.Background(), batchenrich.Options{
					BatchSize: tt.size, MaxBatches: tt.cap, NoPrefetch: !prefetch,
				})
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				f.checkWritten(t, 0, tt.wantItems, tt.size, 1)
				if got := len(f.sink.Batches()); got != tt.wantBatches {
					t.Errorf("batches written = %d, want %d", got, tt.wantBatches)
				}
				if rep.BatchesRun != tt.wantBatches || rep.Read != tt.wantItems || rep.Written != tt.wantItems ||
					rep.Enriched != tt.wantItems || rep.Failed != 0 || len(rep.Batches) != tt.wantBatches {
					t.Errorf("report = %+v", rep)
				}
				// The Source is never asked for a window past the cap.
				if tt.cap > 0 && len(f.src.Reads()) > tt.cap {
					t.Errorf("source read %d times with a cap of %d", len(f.src.Reads()), tt.cap)
				}
			})
		}
	}
}

func TestOrderUnderRandomLatency(t *testing.T) {
	t.Parallel()
	f := newFixture(1000)
	seed := rand.Uint64()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 0))
	f.enr.Latency = func(item) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return time.Duration(rng.IntN(2000)) * time.Microsecond
	}
	if _, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100, Concurrency: 16}); err != nil {
		t.Fatalf("Run (seed %d): %v", seed, err)
	}
	f.checkWritten(t, 0, 1000, 100, 1)
}

func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 3, 25} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			t.Parallel()
			f := newFixture(300)
			f.enr.Latency = func(item) time.Duration { return 200 * time.Microsecond }
			if _, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100, Concurrency: limit}); err != nil {
				t.Fatal(err)
			}
			if got := f.enr.MaxInFlight(); got > limit {
				t.Fatalf("max in flight = %d, limit %d", got, limit)
			}
			if got := f.enr.MaxInFlight(); limit > 1 && got < 2 {
				t.Errorf("max in flight = %d: enrichment did not run concurrently", got)
			}
			if f.enr.Calls() != 300 {
				t.Errorf("calls = %d", f.enr.Calls())
			}
		})
	}
}

// TestStrictBatchOrder checks that no item of batch n+1 starts before the
// Sink has returned from writing batch n, even with prefetching.
func TestStrictBatchOrder(t *testing.T) {
	t.Parallel()
	const size = 50
	var seq atomic.Int64
	var mu sync.Mutex
	written := map[int]int64{} // batch -> seq when its write returned
	var violation error
	enr := batchenrichtest.NewEnricher(double)
	enr.Started = func(it item, _ int) {
		s := seq.Add(1)
		batch := int(it)/size + 1
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := written[batch-1]; batch > 1 && (!ok || prev > s) && violation == nil {
			violation = fmt.Errorf("item %d of batch %d started before batch %d was written", it, batch, batch-1)
		}
	}
	inner := batchenrichtest.NewSink[item, int]()
	inner.Latency = time.Millisecond
	sink := batchenrich.SinkFunc[item, int](func(ctx context.Context, b batchenrich.Batch[item, int]) error {
		err := inner.Write(ctx, b)
		mu.Lock()
		written[b.Number] = seq.Add(1)
		mu.Unlock()
		return err
	})
	r, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(500)), enr, sink, batchenrich.Options{BatchSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if violation != nil {
		t.Fatal(violation)
	}
	if len(inner.Batches()) != 10 {
		t.Fatalf("batches = %d", len(inner.Batches()))
	}
}

func TestRecordFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(250)
	boom := errors.New("boom")
	f.enr.Fail = func(i item) error {
		if i%10 == 3 {
			return batchenrich.Permanent(boom)
		}
		return nil
	}
	events := make(chan event, 1000)
	rep, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100, Tracer: eventTracer(events)})
	if err != nil {
		t.Fatal(err)
	}
	f.checkWritten(t, 0, 250, 100, 1)
	failed := 0
	for _, r := range f.sink.Results() {
		if (r.Item%10 == 3) != (r.Err != nil) {
			t.Fatalf("item %d: err %v", r.Item, r.Err)
		}
		if r.Err == nil {
			continue
		}
		failed++
		var ie *batchenrich.ItemError
		if !errors.As(r.Err, &ie) || ie.Key != r.Item.Key() || ie.Index != r.Index || ie.Batch != int(r.Item)/100+1 {
			t.Fatalf("item %d: err %#v", r.Item, r.Err)
		}
		if !errors.Is(r.Err, boom) || batchenrich.Classify(r.Err) != batchenrich.ClassPermanent {
			t.Fatalf("item %d: cause lost or unclassified: %v", r.Item, r.Err)
		}
		if !strings.Contains(r.Err.Error(), r.Item.Key()) {
			t.Fatalf("error %q does not name the item", r.Err)
		}
	}
	if failed != 25 || rep.Failed != 25 || rep.Enriched != 225 || rep.Written != 250 {
		t.Fatalf("failed=%d report=%+v", failed, rep)
	}
	close(events)
	kinds := map[string]int{}
	for ev := range events {
		kinds[ev.Kind]++
	}
	if kinds[evItemFailed] != 25 || kinds[evBatchStarted] != 3 || kinds[evBatchWritten] != 3 {
		t.Fatalf("events = %v", kinds)
	}
}

func TestStopAfterFirstFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(300)
	f.enr.Fail = func(i item) error {
		if i == 150 {
			return errors.New("bad item")
		}
		return nil
	}
	_, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100, StopAfterFailures: 1})
	var be *batchenrich.BatchError
	var ie *batchenrich.ItemError
	if !errors.As(err, &be) || be.Batch != 2 || be.Stage != batchenrich.StageEnrich ||
		!errors.Is(err, batchenrich.ErrTooManyFailures) || !errors.As(err, &ie) || ie.Key != "item-150" {
		t.Fatalf("err = %v", err)
	}
	f.checkWritten(t, 0, 100, 100, 1) // batch 1 only; batch 2 not written
}

func TestStopAfterFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(300)
	f.enr.Fail = func(i item) error {
		// 5 failures in batch 1, 20 in batch 2.
		if (i < 100 && i%20 == 0) || (i >= 100 && i < 200 && i%5 == 0) {
			return errors.New("upstream down")
		}
		return nil
	}
	rep, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100, StopAfterFailures: 11})
	var be *batchenrich.BatchError
	if !errors.As(err, &be) || be.Batch != 2 || !errors.Is(err, batchenrich.ErrTooManyFailures) {
		t.Fatalf("err = %v", err)
	}
	if len(f.sink.Batches()) != 1 || f.sink.Batches()[0].Failed() != 5 {
		t.Fatalf("sink batches = %d", len(f.sink.Batches()))
	}
	if rep.BatchesRun != 1 || rep.Written != 100 {
		t.Fatalf("report = %+v", rep)
	}
}

func TestCancelMidBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.enr.Latency = func(item) time.Duration { return time.Millisecond }
	f.enr.Started = func(i item, _ int) {
		if i == 250 {
			cancel()
		}
	}
	rep, err := f.run(t, ctx, batchenrich.Options{BatchSize: 100, Concurrency: 10})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	var be *batchenrich.BatchError
	if !errors.As(err, &be) || be.Batch != 3 {
		t.Fatalf("err = %v, want batch 3", err)
	}
	f.checkWritten(t, 0, 200, 100, 1) // batches 1 and 2 whole, nothing of 3
	if f.enr.InFlight() != 0 {
		t.Fatalf("%d enrichments still in flight after Run", f.enr.InFlight())
	}
	if f.enr.Calls() >= 300 {
		t.Errorf("calls = %d: enrichment went on after cancel", f.enr.Calls())
	}
	if rep.BatchesRun != 2 {
		t.Errorf("report = %+v", rep)
	}
}

func TestCancelDuringWrite(t *testing.T) {
	t.Parallel()
	f := newFixture(500)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := batchenrichtest.NewSink[item, int]()
	slow.Latency = time.Hour // a write that only ends with ctx
	sink := batchenrich.SinkFunc[item, int](func(ctx context.Context, b batchenrich.Batch[item, int]) error {
		if b.Number < 2 {
			return f.sink.Write(ctx, b)
		}
		cancel() // the write is under way when ctx ends
		return slow.Write(ctx, b)
	})
	r, err := batchenrich.New[item, int](f.src, f.enr, sink, batchenrich.Options{BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(ctx)
	var be *batchenrich.BatchError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &be) || be.Batch != 2 || be.Stage != batchenrich.StageWrite {
		t.Fatalf("err = %v", err)
	}
	if len(f.sink.Batches()) != 1 || len(slow.Batches()) != 0 {
		t.Fatalf("batches written = %d+%d, want only batch 1", len(f.sink.Batches()), len(slow.Batches()))
	}
}

func TestCancelledBeforeRun(t *testing.T) {
	t.Parallel()
	f := newFixture(10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.run(t, ctx, batchenrich.Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if len(f.src.Reads()) != 0 {
		t.Fatal("source read after cancel")
	}
}

func TestSourceAndSinkErrorsNameTheBatch(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		setup func(f *fixture)
		stage batchenrich.Stage
	}{
		{"source", func(f *fixture) {
			f.src.FailRead = func(call int) error {
				if call == 3 {
					return boom
				}
				return nil
			}
		}, batchenrich.StageRead},
		{"sink", func(f *fixture) {
			f.sink.FailWrite = func(n int) error {
				if n == 4 {
					return boom
				}
				return nil
			}
		}, batchenrich.StageWrite},
		{"source panic", func(f *fixture) {
			f.src.FailRead = func(call int) error {
				if call == 3 {
					panic("source bug")
				}
				return nil
			}
		}, batchenrich.StageRead},
		{"sink panic", func(f *fixture) {
			f.sink.FailWrite = func(n int) error {
				if n == 4 {
					panic("sink bug")
				}
				return nil
			}
		}, batchenrich.StageWrite},
	} {
		for _, prefetch := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/prefetch=%v", tc.name, prefetch), func(t *testing.T) {
				t.Parallel()
				f := newFixture(1000)
				tc.setup(f)
				_, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100, NoPrefetch: !prefetch})
				var be *batchenrich.BatchError
				if !errors.As(err, &be) || be.Batch != 4 || be.Stage != tc.stage {
					t.Fatalf("err = %v, want batch 4 %s", err, tc.stage)
				}
				var pe *batchenrich.PanicError
				if strings.Contains(tc.name, "panic") != errors.As(err, &pe) {
					t.Fatalf("err = %v: panic cause mismatch", err)
				}
				if !strings.Contains(err.Error(), "batch 4") {
					t.Fatalf("error %q does not name the batch", err)
				}
				f.checkWritten(t, 0, 300, 100, 1)
			})
		}
	}
}

func TestEnricherPanicNamesItem(t *testing.T) {
	t.Parallel()
	f := newFixture(300)
	f.enr.Fail = func(i item) error {
		if i == 123 {
			panic("enricher bug")
		}
		return nil
	}
	_, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100})
	var ie *batchenrich.ItemError
	var pe *batchenrich.PanicError
	if !errors.As(err, &ie) || ie.Batch != 2 || ie.Index != 23 || ie.Key != "item-123" || !errors.As(err, &pe) {
		t.Fatalf("err = %v", err)
	}
	if pe.Value != "enricher bug" || len(pe.Stack) == 0 {
		t.Fatalf("panic error = %#v", pe)
	}
	f.checkWritten(t, 0, 100, 100, 1)
}

func TestSourceOverflow(t *testing.T) {
	t.Parallel()
	src := batchenrich.SourceFunc[item](func(ctx context.Context, after batchenrich.Cursor, limit int) ([]item, batchenrich.Cursor, error) {
		return items(limit + 1), "x", nil
	})
	r, err := batchenrich.New[item, int](src, batchenrich.EnricherFunc[item, int](double), batchenrichtest.NewSink[item, int](), batchenrich.Options{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background())
	var be *batchenrich.BatchError
	if !errors.As(err, &be) || be.Stage != batchenrich.StageRead || be.Batch != 1 ||
		err.Error() != "batchenrich: batch 1: read: source returned more items than asked: 11 > 10" {
		t.Fatalf("err = %v, want a StageRead *BatchError of batch 1 saying the Source returned 11 > 10 items", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	t.Parallel()
	store := batchenrichtest.NewCheckpoints()
	tests := []struct {
		field string
		opts  batchenrich.Options
	}{
		{"BatchSize", batchenrich.Options{BatchSize: -1}},
		{"BatchSize", batchenrich.Options{BatchSize: 1<<20 + 1}},
		{"MaxBatches", batchenrich.Options{MaxBatches: -5}},
		{"Concurrency", batchenrich.Options{Concurrency: -1}},
		{"Concurrency", batchenrich.Options{Concurrency: 1<<16 + 1}},
		{"Partition.Count", batchenrich.Options{Partition: batchenrich.Partition{Count: 1<<12 + 1}}},
		{"RunsAtOnce", batchenrich.Options{RunsAtOnce: -1}},
		{"RunsAtOnce", batchenrich.Options{RunsAtOnce: 1<<12 + 1}},
		{"StopAfterFailures", batchenrich.Options{StopAfterFailures: -1}},
		{"Durable.RunKey", batchenrich.Options{Durable: &batchenrich.Durable{Store: store}}},
		{"Durable.Store", batchenrich.Options{Durable: &batchenrich.Durable{RunKey: "x"}}},
		{"Durable.LockRetryInterval", batchenrich.Options{Durable: &batchenrich.Durable{Store: store, RunKey: "x", LockRetryInterval: -time.Second}}},
	}
	for _, tt := range tests {
		f := newFixture(1)
		r, err := batchenrich.New[item, int](f.src, f.enr, f.sink, tt.opts)
		var oe *batchenrich.ConfigError
		if r != nil || !errors.As(err, &oe) || oe.Package != "batchenrich" || oe.Field != tt.field || !errors.Is(err, batchenrich.ErrInvalidConfig) ||
			!strings.HasPrefix(err.Error(), "batchenrich: invalid "+tt.field+": ") {
			t.Errorf("%+v: New = %v, %v; want an error naming %s", tt.opts, r, err, tt.field)
		}
	}
	f := newFixture(1)
	for _, tc := range []struct {
		field string
		new   func() error
	}{
		{"src", func() error {
			_, err := batchenrich.New[item, int](nil, f.enr, f.sink, batchenrich.Options{})
			return err
		}},
		{"enr", func() error {
			_, err := batchenrich.New[item, int](f.src, nil, f.sink, batchenrich.Options{})
			return err
		}},
		{"sink", func() error {
			_, err := batchenrich.New[item, int](f.src, f.enr, nil, batchenrich.Options{})
			return err
		}},
	} {
		var oe *batchenrich.ConfigError
		if err := tc.new(); !errors.As(err, &oe) || oe.Field != tc.field {
			t.Errorf("nil %s: err = %v", tc.field, err)
		}
	}
	r, err := batchenrich.New[item, int](f.src, f.enr, f.sink, batchenrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o := r.Options(); o.BatchSize != 100 || o.Concurrency != 25 || o.MaxBatches != 0 {
		t.Fatalf("defaults = %+v", o)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	base := errors.New("x")
	tests := []struct {
		err  error
		want batchenrich.Class
	}{
		{nil, batchenrich.Unclassified},
		{base, batchenrich.Unclassified},
		{batchenrich.Transient(base), batchenrich.ClassTransient},
		{fmt.Errorf("wrapped: %w", batchenrich.Permanent(base)), batchenrich.ClassPermanent},
		{batchenrich.Permanent(batchenrich.Transient(base)), batchenrich.ClassPermanent},
		{context.DeadlineExceeded, batchenrich.ClassTransient},
	}
	for _, tt := range tests {
		if got := batchenrich.Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if batchenrich.Transient(nil) != nil || batchenrich.Permanent(nil) != nil {
		t.Error("marking nil must give nil")
	}
	if !errors.Is(batchenrich.Transient(base), base) {
		t.Error("mark hides its cause")
	}
}
