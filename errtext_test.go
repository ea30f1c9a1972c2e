package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// Each layer adds only what the outer one does not say: one prefix, the
// batch number once, the stage once.
func TestErrorTextReadsOnce(t *testing.T) {
	t.Parallel()
	pq := errors.New("pq: relation \"product_prices\" does not exist")
	tests := []struct {
		err  error
		want string
	}{
		{&batchenrich.BatchError{Batch: 1, Stage: batchenrich.StageWrite, Err: fmt.Errorf("sqlbatch: batch 1: write product_prices: %w", pq)},
			`batchenrich: batch 1: write product_prices: pq: relation "product_prices" does not exist`},
		{&batchenrich.BatchError{Batch: 2, Stage: batchenrich.StageWrite, Err: pq},
			`batchenrich: batch 2: write: pq: relation "product_prices" does not exist`},
		{&batchenrich.BatchError{Batch: 3, Stage: batchenrich.StageEnrich, Err: fmt.Errorf("%w: more than 2", batchenrich.ErrTooManyFailures)},
			`batchenrich: batch 3: enrich: too many failed items in batch: more than 2`},
		{&batchenrich.BatchError{Batch: 3, Stage: batchenrich.StageWrite, Err: fmt.Errorf("sqlbatch: batch 2: %w", pq)}, // another batch: kept
			`batchenrich: batch 3: write: batch 2: pq: relation "product_prices" does not exist`},
		{&batchenrich.BatchError{Stage: batchenrich.StageLock, RunKey: "x", Err: batchenrich.ErrRunLocked},
			`batchenrich: run "x": lock: run key is locked by another runner`},
		{&batchenrich.ItemError{Batch: 4, Index: 2, Key: "k", Err: batchenrich.Permanent(errors.New("httpenrich: GET http://h/x: unexpected status (status 404, 1 attempt)"))},
			`batchenrich: batch 4 item 2 (k): GET http://h/x: unexpected status (status 404, 1 attempt)`},
		{&batchenrich.ItemError{Batch: 4, Index: 2, Err: pq},
			`batchenrich: batch 4 item 2: pq: relation "product_prices" does not exist`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

// The lock error of a real run reads once and is a *BatchError.
func TestRunLockedErrorText(t *testing.T) {
	t.Parallel()
	store := batchenrichtest.NewCheckpoints()
	unlock, _, _ := store.TryLock(context.Background(), "x")
	defer unlock()
	_, err := newFixture(10).run(t, context.Background(), batchenrich.Options{Checkpoints: store, RunKey: "x"})
	if want := `batchenrich: run "x": lock: run key is locked by another runner (set Options.LockWait to wait for it)`; err == nil || err.Error() != want {
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
		{&batchenrich.ItemError{Batch: 3, Index: 1, Err: errors.New("httpenrich: GET http://h: timeout")}, "GET http://h: timeout"},
		{&batchenrich.ItemError{Batch: 3, Index: 1, Err: reasoned{}}, "short reason"},
		{errors.New("batchenrich: plain"), "plain"},
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
