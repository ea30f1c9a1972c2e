package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// Each layer adds its context once, before the cause's text, which is
// never edited: not even the prefixes of this module's packages or a
// "batch N: " inside a user's error are taken out.
func TestErrorTextVerbatim(t *testing.T) {
	t.Parallel()
	pq := errors.New("pq: relation \"product_prices\" does not exist")
	user := errors.New("write quota exceeded for tenant: httpenrich: upstream says batch 3: full")
	tests := []struct {
		err  error
		want string
	}{
		{&batchenrich.BatchError{Batch: 1, Stage: batchenrich.StageWrite, Err: fmt.Errorf("product_prices: %w", pq)},
			`batchenrich: batch 1: write: product_prices: pq: relation "product_prices" does not exist`},
		{&batchenrich.BatchError{Batch: 2, Stage: batchenrich.StageWrite, Err: pq},
			`batchenrich: batch 2: write: pq: relation "product_prices" does not exist`},
		{&batchenrich.BatchError{Batch: 3, Stage: batchenrich.StageWrite, Err: user},
			`batchenrich: batch 3: write: write quota exceeded for tenant: httpenrich: upstream says batch 3: full`},
		{&batchenrich.BatchError{Batch: 3, Stage: batchenrich.StageWrite, Err: errors.New("sqlbatch: batch 3: batchenrich: x")},
			`batchenrich: batch 3: write: sqlbatch: batch 3: batchenrich: x`},
		{&batchenrich.BatchError{Batch: 3, Stage: batchenrich.StageEnrich, Err: fmt.Errorf("%w: more than 2", batchenrich.ErrTooManyFailures)},
			`batchenrich: batch 3: enrich: too many failed items in batch: more than 2`},
		{&batchenrich.BatchError{Stage: batchenrich.StageLock, RunKey: "x", Err: batchenrich.ErrRunLocked},
			`batchenrich: run "x": lock: run key is locked by another runner`},
		{&batchenrich.BatchError{Stage: batchenrich.StageUnlock, RunKey: "x", Err: errors.New(`unlock run "x": gone`)},
			`batchenrich: run "x": unlock: unlock run "x": gone`},
		{&batchenrich.ItemError{Batch: 4, Index: 2, Key: "k", Err: batchenrich.Permanent(errors.New("GET http://h/x: unexpected status (status 404, 1 attempt)"))},
			`batchenrich: batch 4 item 2 (k): GET http://h/x: unexpected status (status 404, 1 attempt)`},
		{&batchenrich.ItemError{Batch: 4, Index: 2, Err: user},
			`batchenrich: batch 4 item 2: write quota exceeded for tenant: httpenrich: upstream says batch 3: full`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

// A Sink's and an Enricher's errors reach Run's caller and FailureReason
// verbatim, wrapped with the Runner's context once.
func TestUserErrorVerbatimThroughRun(t *testing.T) {
	t.Parallel()
	const text = "write quota exceeded for tenant: httpenrich: upstream says batch 1: full"
	sink := batchenrich.SinkFunc[item, int](func(context.Context, batchenrich.Batch[item, int]) error { return errors.New(text) })
	f := newFixture(3)
	r, err := batchenrich.New[item, int](f.src, f.enr, sink, batchenrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background())
	if want := "batchenrich: batch 1: write: " + text; err == nil || err.Error() != want {
		t.Errorf("Run: err = %v\nwant %s", err, want)
	}

	enr := batchenrich.EnricherFunc[item, int](func(context.Context, item) (int, error) { return 0, errors.New(text) })
	sink2 := batchenrichtest.NewSink[item, int]()
	r2, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(3)), enr, sink2, batchenrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, res := range sink2.Results() {
		if got := batchenrich.FailureReason(res.Err); got != text {
			t.Errorf("FailureReason = %q, want %q", got, text)
		}
		if want := fmt.Sprintf("batchenrich: batch 1 item %d (item-%d): %s", res.Index, res.Index, text); res.Err.Error() != want {
			t.Errorf("Result.Err = %q, want %q", res.Err, want)
		}
	}
}

// The lock error of a real run reads once and is a *BatchError.
func TestRunLockedErrorText(t *testing.T) {
	t.Parallel()
	store := batchenrichtest.NewCheckpoints()
	unlock, _, _ := store.TryLock(context.Background(), "x")
	defer unlock()
	_, err := newFixture(10).run(t, context.Background(), batchenrich.Options{Durable: &batchenrich.Durable{Store: store, RunKey: "x"}})
	if want := `batchenrich: run "x": lock: run key is locked by another runner (set Durable.LockWait to wait for it)`; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestFailureReason(t *testing.T) {
	t.Parallel()
	cause := errors.New("no such traveler")
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&batchenrich.ItemError{Batch: 3, Index: 1, Key: "k", Err: batchenrich.Permanent(cause)}, "no such traveler"},
		{&batchenrich.ItemError{Batch: 3, Index: 1, Err: errors.New("httpenrich: GET http://h: batch 3: timeout")}, "httpenrich: GET http://h: batch 3: timeout"},
		{&batchenrich.ItemError{Batch: 3, Index: 1, Err: reasoned{}}, "short reason"},
		{errors.New("batchenrich: plain"), "batchenrich: plain"},
	}
	for _, tt := range tests {
		if got := batchenrich.FailureReason(tt.err); got != tt.want {
			t.Errorf("FailureReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

type reasoned struct{}

func (reasoned) Error() string         { return "long text with http://10.0.0.1:8080/x" }
func (reasoned) FailureReason() string { return "short reason" }
