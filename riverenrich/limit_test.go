package riverenrich

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/batchenrich/batchenrich"
)

type bulkDouble struct{ calls int }

func (b *bulkDouble) Enrich(_ context.Context, n int) (int, error) { b.calls++; return 2 * n, nil }
func (b *bulkDouble) BulkSize() int                                { return 3 }
func (b *bulkDouble) EnrichBulk(_ context.Context, ns []int) ([]int, []error) {
	b.calls++
	out := make([]int, len(ns))
	for i, n := range ns {
		out[i] = 2 * n
	}
	return out, nil
}

// limited keeps a BulkEnricher one, and a call waits for a slot: with
// every slot taken it returns the context's error without calling the
// Enricher.
func TestLimitedHoldsASlotPerCall(t *testing.T) {
	sem := semaphore.NewWeighted(1)
	b := &bulkDouble{}
	enr := limited[int, int](sem, b)
	bulk, ok := enr.(batchenrich.BulkEnricher[int, int])
	if !ok || bulk.BulkSize() != 3 {
		t.Fatalf("limited hid BulkEnricher: %T", enr)
	}
	if v, errs := bulk.EnrichBulk(context.Background(), []int{1, 2}); len(v) != 2 || v[1] != 4 || errs != nil {
		t.Fatalf("EnrichBulk = %v, %v", v, errs)
	}
	if !sem.TryAcquire(1) {
		t.Fatal("a slot is still held after the call returned")
	}
	// Every slot is taken now.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := enr.Enrich(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enrich without a slot: %v", err)
	}
	if _, errs := bulk.EnrichBulk(ctx, []int{1, 2}); len(errs) != 2 || !errors.Is(errs[1], context.Canceled) {
		t.Fatalf("EnrichBulk without a slot: %v", errs)
	}
	if b.calls != 1 {
		t.Fatalf("the Enricher was called %d times, want 1", b.calls)
	}
	sem.Release(1)
	if _, ok := limited[int, int](sem, batchenrich.EnricherFunc[int, int](b.Enrich)).(batchenrich.BulkEnricher[int, int]); ok {
		t.Fatal("a plain Enricher became a BulkEnricher")
	}
}

// checkedDouble is an Enricher whose Check refuses its configuration.
type checkedDouble struct{ bulkDouble }

var errBadEnricher = errors.New("bad enricher configuration")

func (*checkedDouble) Check(context.Context) error { return errBadEnricher }

type describedChecked struct{ checkedDouble }

func (*describedChecked) Describe() string { return "checked" }

// The wrappers of Config.Concurrency keep the Enricher's Check, with or
// without a Describer, so that the Runner refuses its configuration
// before any work, as it would unwrapped.
func TestLimitedKeepsTheCheck(t *testing.T) {
	for name, enr := range map[string]batchenrich.Enricher[int, int]{
		"plain": &checkedDouble{}, "described": &describedChecked{},
	} {
		w := limited(semaphore.NewWeighted(1), enr)
		ch, ok := w.(batchenrich.Checker)
		if !ok {
			t.Fatalf("%s: the limited Enricher %T is no Checker", name, w)
		}
		if err := ch.Check(context.Background()); !errors.Is(err, errBadEnricher) {
			t.Fatalf("%s: Check = %v, want the Enricher's error", name, err)
		}
	}
}
