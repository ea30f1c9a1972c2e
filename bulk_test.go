package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// bulkEnricher is a BulkEnricher of items doubling them, one call per
// group, recording the groups it was given and how many calls were in
// flight at most.
type bulkEnricher struct {
	size int
	// fn, if set, replaces doubling for a whole group.
	fn func(ctx context.Context, group []item) ([]int, []error)

	mu     sync.Mutex
	groups [][]item
	single atomic.Int64 // calls of Enrich

	inFlight, maxInFlight atomic.Int64
}

func (b *bulkEnricher) BulkSize() int { return b.size }

func (b *bulkEnricher) Enrich(ctx context.Context, it item) (int, error) {
	b.single.Add(1)
	return double(ctx, it)
}

func (b *bulkEnricher) EnrichBulk(ctx context.Context, group []item) ([]int, []error) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for m := b.maxInFlight.Load(); n > m && !b.maxInFlight.CompareAndSwap(m, n); m = b.maxInFlight.Load() {
	}
	b.mu.Lock()
	b.groups = append(b.groups, slices.Clone(group))
	b.mu.Unlock()
	if b.fn != nil {
		return b.fn(ctx, group)
	}
	out := make([]int, len(group))
	for i, it := range group {
		out[i] = 2 * int(it)
	}
	return out, nil
}

func (b *bulkEnricher) Groups() [][]item {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.groups)
}

func runBulk(t *testing.T, n int, b *bulkEnricher, o batchenrich.Options) (*batchenrichtest.Sink[item, int], batchenrich.Report, error) {
	t.Helper()
	sink := &batchenrichtest.Sink[item, int]{FirstBatch: 1}
	r, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(n)), b, sink, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rep, err := r.Run(context.Background())
	if cerr := sink.Check(); cerr != nil {
		t.Errorf("sink saw a broken guarantee: %v", cerr)
	}
	return sink, rep, err
}

func TestBulkGroupsInSourceOrder(t *testing.T) {
	for _, overlap := range []bool{false, true} {
		t.Run(fmt.Sprintf("overlap=%v", overlap), func(t *testing.T) {
			b := &bulkEnricher{size: 30}
			sink, rep, err := runBulk(t, 250, b, batchenrich.Options{BatchSize: 100, Concurrency: 2, Overlap: overlap})
			if err != nil {
				t.Fatal(err)
			}
			res := sink.Results()
			if len(res) != 250 {
				t.Fatalf("%d results, want 250", len(res))
			}
			for i, r := range res {
				if int(r.Item) != i || r.Err != nil || r.Value != 2*i {
					t.Fatalf("result %d: %+v", i, r)
				}
			}
			// Each batch is split in groups of at most 30 in Source
			// order: 30, 30, 30, 10 for a batch of 100.
			groups := b.Groups()
			if len(groups) != 10 {
				t.Fatalf("%d calls, want 10 (4 + 4 + 2)", len(groups))
			}
			seen := map[item]bool{}
			for _, g := range groups {
				if len(g) > 30 || len(g) == 0 {
					t.Fatalf("a group of %d items", len(g))
				}
				if g[0]/100 != g[len(g)-1]/100 {
					t.Fatalf("a group spans two batches: %v", g)
				}
				for k, it := range g {
					if k > 0 && it != g[k-1]+1 {
						t.Fatalf("group not in Source order: %v", g)
					}
					seen[it] = true
				}
			}
			if len(seen) != 250 {
				t.Fatalf("%d items called, want 250", len(seen))
			}
			if m := b.maxInFlight.Load(); m > 2 {
				t.Fatalf("%d calls in flight, Concurrency 2", m)
			}
			if b.single.Load() != 0 {
				t.Fatalf("Enrich called %d times besides the bulk calls", b.single.Load())
			}
			if rep.Enriched != 250 {
				t.Fatalf("report: %d enriched", rep.Enriched)
			}
		})
	}
}

func TestBulkPerItemFailures(t *testing.T) {
	b := &bulkEnricher{size: 10, fn: func(_ context.Context, g []item) ([]int, []error) {
		vals, errs := make([]int, len(g)), make([]error, len(g))
		for i, it := range g {
			switch {
			case it%3 == 0:
				errs[i] = batchenrich.Permanent(fmt.Errorf("no profile for %d", it))
			case it%3 == 1:
				errs[i] = batchenrich.Transient(errors.New("upstream busy"))
			default:
				vals[i] = 2 * int(it)
			}
		}
		return vals, errs
	}}
	sink, rep, err := runBulk(t, 25, b, batchenrich.Options{BatchSize: 10, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	res := sink.Results()
	for i, r := range res {
		var ie *batchenrich.ItemError
		switch i % 3 {
		case 0:
			if !errors.As(r.Err, &ie) || ie.Key != fmt.Sprintf("item-%d", i) || ie.Index != i%10 || ie.Batch != i/10+1 {
				t.Fatalf("item %d: %v", i, r.Err)
			}
			if c := batchenrich.Classify(r.Err); c != batchenrich.ClassPermanent {
				t.Fatalf("item %d: class %s", i, c)
			}
			if got, want := batchenrich.FailureReason(r.Err), fmt.Sprintf("no profile for %d", i); got != want {
				t.Fatalf("item %d: reason %q, want %q", i, got, want)
			}
		case 1:
			if c := batchenrich.Classify(r.Err); c != batchenrich.ClassTransient {
				t.Fatalf("item %d: class %s (%v)", i, c, r.Err)
			}
		default:
			if r.Err != nil || r.Value != 2*i {
				t.Fatalf("item %d: %+v", i, r)
			}
		}
	}
	if rep.Failed != 17 || rep.Enriched != 8 {
		t.Fatalf("report: %d failed, %d enriched; want 17 and 8", rep.Failed, rep.Enriched)
	}
}

func TestBulkCallFailureAllFailedStop(t *testing.T) {
	b := &bulkEnricher{size: 4, fn: func(_ context.Context, g []item) ([]int, []error) {
		errs := make([]error, len(g))
		for i := range errs {
			errs[i] = batchenrich.Transient(errors.New("status 503 after 3 attempts"))
		}
		return nil, errs
	}}
	sink, _, err := runBulk(t, 20, b, batchenrich.Options{BatchSize: 10})
	if !errors.Is(err, batchenrich.ErrAllFailed) || !strings.Contains(err.Error(), "status 503 after 3 attempts") {
		t.Fatalf("err = %v, want ErrAllFailed naming the reason", err)
	}
	if len(sink.Batches()) != 0 {
		t.Fatalf("%d batches written", len(sink.Batches()))
	}
}

func TestBulkStopAfterFirstFailure(t *testing.T) {
	b := &bulkEnricher{size: 5, fn: func(_ context.Context, g []item) ([]int, []error) {
		vals, errs := make([]int, len(g)), make([]error, len(g))
		for i, it := range g {
			if it == 7 {
				errs[i] = errors.New("bad seven")
			}
		}
		return vals, errs
	}}
	sink, _, err := runBulk(t, 20, b, batchenrich.Options{BatchSize: 10, StopAfterFailures: 1, Concurrency: 1})
	var ie *batchenrich.ItemError
	if !errors.Is(err, batchenrich.ErrTooManyFailures) || !errors.As(err, &ie) || ie.Key != "item-7" {
		t.Fatalf("err = %v", err)
	}
	if len(sink.Batches()) != 0 {
		t.Fatalf("%d batches written", len(sink.Batches()))
	}
}

func TestBulkPanicIsEveryItemsError(t *testing.T) {
	b := &bulkEnricher{size: 5, fn: func(_ context.Context, g []item) ([]int, []error) {
		if g[0] == 5 {
			panic("bulk bug")
		}
		return make([]int, len(g)), nil
	}}
	sink, _, err := runBulk(t, 20, b, batchenrich.Options{BatchSize: 10, Concurrency: 1})
	var ie *batchenrich.ItemError
	var pe *batchenrich.PanicError
	if !errors.As(err, &ie) || !errors.As(err, &pe) || ie.Key != "item-5" || pe.Value != "bulk bug" {
		t.Fatalf("err = %v, want an *ItemError for item-5 wrapping the panic", err)
	}
	if len(sink.Batches()) != 0 {
		t.Fatalf("%d batches written", len(sink.Batches()))
	}
}

func TestBulkWrongLengthIsFatal(t *testing.T) {
	b := &bulkEnricher{size: 5, fn: func(_ context.Context, g []item) ([]int, []error) {
		return make([]int, len(g)-1), nil
	}}
	_, _, err := runBulk(t, 20, b, batchenrich.Options{BatchSize: 10, Concurrency: 1})
	if batchenrich.Classify(err) != batchenrich.ClassFatal || !strings.Contains(err.Error(), "returned 4 values and 0 errors for 5 items") {
		t.Fatalf("err = %v", err)
	}
}

func TestBulkSizeRefused(t *testing.T) {
	for _, n := range []int{0, -1} {
		_, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(1)), &bulkEnricher{size: n},
			batchenrichtest.NewSink[item, int](), batchenrich.Options{})
		var oe *batchenrich.ConfigError
		if !errors.As(err, &oe) || oe.Field != "enr" || !strings.Contains(err.Error(), fmt.Sprintf("BulkSize() is %d", n)) {
			t.Fatalf("BulkSize %d: err = %v", n, err)
		}
	}
}

func TestBulkTracerItemHooks(t *testing.T) {
	rec := &recorder{}
	b := &bulkEnricher{size: 4, fn: func(_ context.Context, g []item) ([]int, []error) {
		vals, errs := make([]int, len(g)), make([]error, len(g))
		for i, it := range g {
			if it == 2 {
				errs[i] = errors.New("two")
			}
			vals[i] = 2 * int(it)
		}
		return vals, errs
	}}
	_, _, err := runBulk(t, 10, b, batchenrich.Options{BatchSize: 10, Tracer: rec})
	if err != nil {
		t.Fatal(err)
	}
	starts, ends := 0, 0
	for _, l := range rec.Lines() {
		switch {
		case strings.HasPrefix(l, "start item 1/"):
			starts++
			if !strings.HasSuffix(l, `<- "batch 1(10)"`) {
				t.Fatalf("item span not under its batch: %s", l)
			}
		case strings.HasPrefix(l, "end item 1/"):
			ends++
		}
	}
	if starts != 10 || ends != 10 {
		t.Fatalf("%d item starts and %d ends, want 10 each:\n%s", starts, ends, strings.Join(rec.Lines(), "\n"))
	}
	if d := rec.items["item-2"]; outcome(d) != "failed" || d.Err == nil {
		t.Fatalf("item-2 ended with %+v", d)
	}
	if d := rec.items["item-3"]; outcome(d) != "enriched" {
		t.Fatalf("item-3 ended with %+v", d)
	}
}

// The bound over all partitions keeps a BulkEnricher's groups, each
// holding one slot.
func TestPartitionedConcurrencyKeepsBulk(t *testing.T) {
	b := &bulkEnricher{size: 10}
	sink := newPartSink()
	pr := partitioned(t, 35, 2, 1, batchenrich.Options{BatchSize: 20, Concurrency: 4}, b, sink)
	if _, err := pr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range b.Groups() {
		n += len(g)
	}
	// 18 and 17 items, one batch each, two groups each.
	if len(b.Groups()) != 4 || b.maxInFlight.Load() != 1 || n != 35 || sink.err != nil {
		t.Fatalf("%d calls of %d items, %d in flight at most; sink: %v", len(b.Groups()), n, b.maxInFlight.Load(), sink.err)
	}
}
