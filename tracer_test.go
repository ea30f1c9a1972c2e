package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

type spanKey struct{}

// span names the innermost traced part of a context: "run", "batch 2",
// "item 2/0", "write 2"; "" outside any.
func span(ctx context.Context) string {
	s, _ := ctx.Value(spanKey{}).(string)
	return s
}

// recorder is a Tracer that records each call as a line naming the
// part, its parent (the span of the context it was given) and its data,
// and can be told to panic in one method.
type recorder struct {
	panicIn string // method name

	mu    sync.Mutex
	lines []string
	items map[string]batchenrich.TraceItem
	run   batchenrich.TraceRun
	runOK bool
}

func (r *recorder) add(method, line string) {
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
	if method == r.panicIn {
		panic("tracer bug in " + method)
	}
}

func (r *recorder) start(ctx context.Context, method, name string) context.Context {
	r.add(method, fmt.Sprintf("start %s <- %q", name, span(ctx)))
	return context.WithValue(ctx, spanKey{}, name)
}

func (r *recorder) TraceRunStart(ctx context.Context, d batchenrich.TraceRun) context.Context {
	return r.start(ctx, "TraceRunStart", fmt.Sprintf("run(size=%d,cap=%d,conc=%d)", d.BatchSize, d.MaxBatches, d.Concurrency))
}

func (r *recorder) TraceRunEnd(ctx context.Context, d batchenrich.TraceRun) {
	r.mu.Lock()
	r.run, r.runOK = d, true
	r.mu.Unlock()
	r.add("TraceRunEnd", fmt.Sprintf("end %s err=%v", span(ctx), d.Err != nil))
}

func (r *recorder) TraceBatchStart(ctx context.Context, d batchenrich.TraceBatch) context.Context {
	return r.start(ctx, "TraceBatchStart", fmt.Sprintf("batch %d(%d)", d.Batch, d.Items))
}

func (r *recorder) TraceBatchEnd(ctx context.Context, d batchenrich.TraceBatch) {
	r.add("TraceBatchEnd", fmt.Sprintf("end %s written=%d failed=%d err=%v class=%s", span(ctx), d.Stats.Written, d.Stats.Failed, d.Err != nil, d.Class))
}

func (r *recorder) TraceItemStart(ctx context.Context, d batchenrich.TraceItem) context.Context {
	return r.start(ctx, "TraceItemStart", fmt.Sprintf("item %d/%d %s", d.Batch, d.Index, d.Key))
}

func (r *recorder) TraceItemEnd(ctx context.Context, d batchenrich.TraceItem) {
	r.mu.Lock()
	if r.items == nil {
		r.items = map[string]batchenrich.TraceItem{}
	}
	r.items[d.Key] = d
	r.mu.Unlock()
	r.add("TraceItemEnd", fmt.Sprintf("end %s %s", span(ctx), outcome(d)))
}

// outcome names what became of an item, as TraceItem's documentation
// tells it.
func outcome(d batchenrich.TraceItem) string {
	var pe *batchenrich.PanicError
	switch {
	case d.Canceled:
		return "canceled"
	case d.Err == nil:
		return "enriched"
	case errors.As(d.Err, &pe):
		return "panicked"
	default:
		return "failed"
	}
}

func (r *recorder) TraceStageStart(ctx context.Context, d batchenrich.TraceStage) context.Context {
	return r.start(ctx, "TraceStageStart", fmt.Sprintf("%s %d", d.Stage, d.Batch))
}

func (r *recorder) TraceStageEnd(ctx context.Context, d batchenrich.TraceStage) {
	r.add("TraceStageEnd", fmt.Sprintf("end %s items=%d err=%v", span(ctx), d.Items, d.Err != nil))
}

func (r *recorder) TraceLimitChange(context.Context, batchenrich.UpstreamLimit) {}

func (r *recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

// tracedEnricher is double, checking that it runs in its item's context.
func tracedEnricher(t *testing.T) *batchenrichtest.Enricher[item, int] {
	return batchenrichtest.NewEnricher(func(ctx context.Context, i item) (int, error) {
		if s := span(ctx); !strings.HasPrefix(s, "item ") || !strings.HasSuffix(s, " "+i.Key()) {
			t.Errorf("item %d enriched in context of %q", i, s)
		}
		return 2 * int(i), nil
	})
}

func TestTracerSpanTree(t *testing.T) {
	t.Parallel()
	f := newFixture(5)
	f.enr = tracedEnricher(t)
	rec := &recorder{}
	// Concurrency 1 and no prefetch make the sequence deterministic.
	rep, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 2, Concurrency: 1, NoPrefetch: true, Tracer: rec})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{
		`start run(size=2,cap=0,conc=1) <- ""`,
		`start read 1 <- "run(size=2,cap=0,conc=1)"`,
		`end read 1 items=2 err=false`,
		`start batch 1(2) <- "run(size=2,cap=0,conc=1)"`,
		`start item 1/0 item-0 <- "batch 1(2)"`,
		`end item 1/0 item-0 enriched`,
		`start item 1/1 item-1 <- "batch 1(2)"`,
		`end item 1/1 item-1 enriched`,
		`start write 1 <- "batch 1(2)"`,
		`end write 1 items=2 err=false`,
		`end batch 1(2) written=2 failed=0 err=false class=unclassified`,
		`start read 2 <- "run(size=2,cap=0,conc=1)"`,
		`end read 2 items=2 err=false`,
		`start batch 2(2) <- "run(size=2,cap=0,conc=1)"`,
		`start item 2/0 item-2 <- "batch 2(2)"`,
		`end item 2/0 item-2 enriched`,
		`start item 2/1 item-3 <- "batch 2(2)"`,
		`end item 2/1 item-3 enriched`,
		`start write 2 <- "batch 2(2)"`,
		`end write 2 items=2 err=false`,
		`end batch 2(2) written=2 failed=0 err=false class=unclassified`,
		`start read 3 <- "run(size=2,cap=0,conc=1)"`,
		`end read 3 items=1 err=false`,
		`start batch 3(1) <- "run(size=2,cap=0,conc=1)"`,
		`start item 3/0 item-4 <- "batch 3(1)"`,
		`end item 3/0 item-4 enriched`,
		`start write 3 <- "batch 3(1)"`,
		`end write 3 items=1 err=false`,
		`end batch 3(1) written=1 failed=0 err=false class=unclassified`,
		`end run(size=2,cap=0,conc=1) err=false`,
	}
	if got := rec.Lines(); !slices.Equal(got, want) {
		t.Fatalf("trace:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !rec.runOK || rec.run.Report.BatchesRun != 3 || rec.run.Report.Written != 5 || rec.run.Report.Duration != rep.Duration {
		t.Fatalf("TraceRunEnd saw %+v, Run returned %+v", rec.run.Report, rep)
	}
}

// Under concurrency and prefetch, every start has its end, items nest in
// their batch, and batch n ends before batch n+1 starts.
func TestTracerConcurrentNesting(t *testing.T) {
	t.Parallel()
	f := newFixture(1000)
	f.enr = tracedEnricher(t)
	rec := &recorder{}
	if _, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100, Concurrency: 16, Tracer: rec}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	f.checkWritten(t, 0, 1000, 100, 1)
	open := map[string]bool{}
	batch := 0
	items := 0
	for _, l := range rec.Lines() {
		name, parent, ok := strings.Cut(strings.TrimPrefix(l, "start "), " <- ")
		switch {
		case ok && strings.HasPrefix(name, "batch "):
			batch++
			if !strings.HasPrefix(name, fmt.Sprintf("batch %d(", batch)) || strings.Contains(strings.Join(keys(open), ","), "batch") {
				t.Fatalf("%s while open: %v", l, keys(open))
			}
			open[name] = true
		case ok && strings.HasPrefix(name, "item "):
			items++
			if !strings.HasPrefix(name, fmt.Sprintf("item %d/", batch)) || !open[strings.Trim(parent, `"`)] {
				t.Fatalf("%s outside its batch (open: %v)", l, keys(open))
			}
			open[name] = true
		case ok:
			open[name] = true
		default:
			name, _, _ := strings.Cut(strings.TrimPrefix(l, "end "), " ")
			if strings.HasPrefix(name, "batch") || strings.HasPrefix(name, "item") || strings.HasPrefix(name, "read") || strings.HasPrefix(name, "write") {
				name = strings.Join(strings.Fields(strings.TrimPrefix(l, "end "))[:2], " ")
				if strings.HasPrefix(name, "item") {
					name = strings.Join(strings.Fields(strings.TrimPrefix(l, "end "))[:3], " ")
				}
			}
			if !open[name] {
				t.Fatalf("%s: not open (open: %v)", l, keys(open))
			}
			delete(open, name)
		}
	}
	if len(open) != 0 || batch != 10 || items != 1000 {
		t.Fatalf("open at the end: %v; %d batches, %d items", keys(open), batch, items)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestTracerOutcomes(t *testing.T) {
	t.Parallel()
	t.Run("failed items and their class", func(t *testing.T) {
		t.Parallel()
		f := newFixture(10)
		f.enr.Fail = func(i item) error {
			switch i {
			case 3:
				return batchenrich.Permanent(errors.New("bad row"))
			case 7:
				return batchenrich.Transient(errors.New("try later"))
			}
			return nil
		}
		rec := &recorder{}
		if _, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 5, Tracer: rec}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		for key, want := range map[string]batchenrich.Class{"item-3": batchenrich.ClassPermanent, "item-7": batchenrich.ClassTransient} {
			d := rec.items[key]
			var ie *batchenrich.ItemError
			if outcome(d) != "failed" || d.Class != want || !errors.As(d.Err, &ie) || ie.Key != key {
				t.Errorf("%s: %+v", key, d)
			}
		}
		if d := rec.items["item-4"]; outcome(d) != "enriched" || d.Err != nil || d.Class != batchenrich.Unclassified {
			t.Errorf("item-4: %+v", d)
		}
		if !slices.Contains(rec.Lines(), "end batch 1(5) written=5 failed=1 err=false class=unclassified") {
			t.Errorf("batch 1's end not seen:\n%s", strings.Join(rec.Lines(), "\n"))
		}
	})
	t.Run("the batch failing, the others cancelled", func(t *testing.T) {
		t.Parallel()
		f := newFixture(10)
		release := make(chan struct{})
		f.enr = batchenrichtest.NewEnricher(func(ctx context.Context, i item) (int, error) {
			if i == 0 {
				<-release
				return 0, errors.New("bad row")
			}
			close(release)
			<-ctx.Done() // cancelled by item 0's failure under StopAfterFailures 1
			return 0, ctx.Err()
		})
		rec := &recorder{}
		_, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 2, Concurrency: 2, StopAfterFailures: 1, Tracer: rec})
		if !errors.Is(err, batchenrich.ErrTooManyFailures) {
			t.Fatalf("Run: %v", err)
		}
		if outcome(rec.items["item-0"]) != "failed" || outcome(rec.items["item-1"]) != "canceled" {
			t.Errorf("outcomes: %+v", rec.items)
		}
		// Batch 1's end is the only batch end. Its place among the lines
		// is not fixed: batch 2's window is read ahead in the reading
		// goroutine, and that read may end (cancelled) before or after
		// batch 1 does. The run's end comes last of all.
		lines := rec.Lines()
		var batchEnds []string
		for _, l := range lines {
			if strings.HasPrefix(l, "end batch ") {
				batchEnds = append(batchEnds, l)
			}
		}
		if want := []string{"end batch 1(2) written=0 failed=1 err=true class=unclassified"}; !slices.Equal(batchEnds, want) {
			t.Errorf("batch ends = %q, want %q", batchEnds, want)
		}
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "end run(") {
			t.Errorf("last line = %q, want the run's end", last)
		}
		if !rec.runOK || !errors.Is(rec.run.Err, batchenrich.ErrTooManyFailures) {
			t.Errorf("TraceRunEnd saw %v", rec.run.Err)
		}
	})
	t.Run("a panicking enricher", func(t *testing.T) {
		t.Parallel()
		f := newFixture(3)
		f.enr.Fail = func(i item) error {
			if i == 1 {
				panic("enricher bug")
			}
			return nil
		}
		rec := &recorder{}
		_, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 5, Tracer: rec})
		var pe *batchenrich.PanicError
		if !errors.As(err, &pe) {
			t.Fatalf("Run: %v", err)
		}
		if d := rec.items["item-1"]; outcome(d) != "panicked" || !errors.As(d.Err, &pe) {
			t.Errorf("item-1: %+v", d)
		}
	})
}

// A panic in any Tracer method stops the run with an error naming the
// method, like a panic in any user code; Run still returns only after its
// goroutines exited (goleak) and never writes a batch out of order (the
// test Sink checks).
func TestTracerPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method  string
		want    string
		written int
	}{
		{"TraceRunStart", "batchenrich: TraceRunStart: panic: tracer bug in TraceRunStart", 0},
		{"TraceRunEnd", "batchenrich: TraceRunEnd: panic: tracer bug in TraceRunEnd", 6},
		{"TraceBatchStart", "batchenrich: batch 1: trace: TraceBatchStart: panic: tracer bug in TraceBatchStart", 0},
		{"TraceBatchEnd", "batchenrich: batch 1: trace: TraceBatchEnd: panic: tracer bug in TraceBatchEnd", 3},
		{"TraceItemStart", "batchenrich: batch 1 item 0 (item-0): TraceItemStart: panic: tracer bug in TraceItemStart", 0},
		{"TraceItemEnd", "batchenrich: batch 1 item 0 (item-0): TraceItemEnd: panic: tracer bug in TraceItemEnd", 0},
		{"TraceStageStart", "batchenrich: batch 1: read: TraceStageStart: panic: tracer bug in TraceStageStart", 0},
		{"TraceStageEnd", "batchenrich: batch 1: read: TraceStageEnd: panic: tracer bug in TraceStageEnd", 0},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			f := newFixture(6)
			_, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 3, Concurrency: 1, Tracer: &recorder{panicIn: tt.method}})
			var pe *batchenrich.PanicError
			if err == nil || err.Error() != tt.want || !errors.As(err, &pe) || len(pe.Stack) == 0 {
				t.Fatalf("err = %v\nwant %s", err, tt.want)
			}
			f.checkWritten(t, 0, tt.written, 3, 1)
		})
	}
}

// A Tracer returning nil contexts is taken as returning the one it was
// given.
func TestTracerNilContexts(t *testing.T) {
	t.Parallel()
	f := newFixture(5)
	if _, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 2, Tracer: nilTracer{}}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	f.checkWritten(t, 0, 5, 2, 1)
}

type nilTracer struct{}

func (nilTracer) TraceRunStart(context.Context, batchenrich.TraceRun) context.Context {
	return nil
}
func (nilTracer) TraceRunEnd(context.Context, batchenrich.TraceRun) {}
func (nilTracer) TraceBatchStart(context.Context, batchenrich.TraceBatch) context.Context {
	return nil
}
func (nilTracer) TraceBatchEnd(context.Context, batchenrich.TraceBatch) {}
func (nilTracer) TraceItemStart(context.Context, batchenrich.TraceItem) context.Context {
	return nil
}
func (nilTracer) TraceItemEnd(context.Context, batchenrich.TraceItem) {}
func (nilTracer) TraceStageStart(context.Context, batchenrich.TraceStage) context.Context {
	return nil
}
func (nilTracer) TraceStageEnd(context.Context, batchenrich.TraceStage)       {}
func (nilTracer) TraceLimitChange(context.Context, batchenrich.UpstreamLimit) {}

// Without a Tracer, a run allocates nothing per item: a batch of 1000
// items costs about as many allocations as a batch of 10.
func TestNoTracerNoAllocationPerItem(t *testing.T) {
	allocs := func(n int) float64 {
		its := items(n)
		src := batchenrich.SourceFunc[item](func(_ context.Context, after batchenrich.Cursor, limit int) ([]item, batchenrich.Cursor, error) {
			if after != "" {
				return nil, after, nil
			}
			return its, "end", nil
		})
		enr := batchenrich.EnricherFunc[item, int](double)
		sink := batchenrich.SinkFunc[item, int](func(context.Context, batchenrich.Batch[item, int]) error { return nil })
		r, err := batchenrich.New(src, enr, sink, batchenrich.Options{BatchSize: 1000, Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(20, func() {
			if _, err := r.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A few allocations come and go with scheduling (goroutines parked
	// and woken); one per item would add a thousand.
	small, large := allocs(10), allocs(1000)
	if large > small+100 {
		t.Fatalf("a run of 1000 items allocates %.0f times, of 10 items %.0f", large, small)
	}
}

// nopTracer does nothing, returning the contexts it is given.
type nopTracer struct{}

func (nopTracer) TraceRunStart(ctx context.Context, _ batchenrich.TraceRun) context.Context {
	return ctx
}
func (nopTracer) TraceRunEnd(context.Context, batchenrich.TraceRun) {}
func (nopTracer) TraceBatchStart(ctx context.Context, _ batchenrich.TraceBatch) context.Context {
	return ctx
}
func (nopTracer) TraceBatchEnd(context.Context, batchenrich.TraceBatch) {}
func (nopTracer) TraceItemStart(ctx context.Context, _ batchenrich.TraceItem) context.Context {
	return ctx
}
func (nopTracer) TraceItemEnd(context.Context, batchenrich.TraceItem) {}
func (nopTracer) TraceStageStart(ctx context.Context, _ batchenrich.TraceStage) context.Context {
	return ctx
}
func (nopTracer) TraceStageEnd(context.Context, batchenrich.TraceStage)       {}
func (nopTracer) TraceLimitChange(context.Context, batchenrich.UpstreamLimit) {}

// BenchmarkRunnerNopTracer is BenchmarkRunner's batch=1000 case with a
// Tracer that does nothing: the cost of calling the hooks.
func BenchmarkRunnerNopTracer(b *testing.B) {
	ctx := context.Background()
	total := b.N
	src := benchSource(total)
	enr := batchenrich.EnricherFunc[int, int](func(_ context.Context, v int) (int, error) { return v, nil })
	sink := batchenrich.SinkFunc[int, int](func(context.Context, batchenrich.Batch[int, int]) error { return nil })
	r, err := batchenrich.New(src, enr, sink, batchenrich.Options{BatchSize: 1000, Concurrency: 64, Tracer: nopTracer{}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := r.Run(ctx); err != nil {
		b.Fatal(err)
	}
}

// slowTracer sleeps in every item hook and in the batch end.
type slowTracer struct{ nopTracer }

func (slowTracer) TraceItemStart(ctx context.Context, _ batchenrich.TraceItem) context.Context {
	time.Sleep(time.Millisecond)
	return ctx
}

func (slowTracer) TraceItemEnd(context.Context, batchenrich.TraceItem) {
	time.Sleep(time.Millisecond)
}

func (slowTracer) TraceBatchEnd(context.Context, batchenrich.TraceBatch) {
	time.Sleep(5 * time.Millisecond)
}

// A slow Tracer slows the run but keeps its guarantees: order (the test
// Sink checks it), the concurrency bound, and cancellation.
func TestTracerSlow(t *testing.T) {
	t.Parallel()
	f := newFixture(200)
	if _, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 50, Concurrency: 4, Tracer: slowTracer{}}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	f.checkWritten(t, 0, 200, 50, 1)
	if n := f.enr.MaxInFlight(); n > 4 {
		t.Errorf("%d enrichments in flight, Concurrency 4", n)
	}

	f = newFixture(100000)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := f.run(t, ctx, batchenrich.Options{BatchSize: 1000, Concurrency: 4, Tracer: slowTracer{}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
}
