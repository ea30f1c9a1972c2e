package riverenrich_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich/riverenrich"
)

// TestPoolTooSmallForThePartitions: a worker whose pool cannot hold the
// partitions it may work on at once (here 5, 3 connections each, on a
// pool capped at 12) cancels each job at its first attempt, before any
// enrichment, and the waiter returns the error naming SetMaxOpenConns and
// the minimum (the context's deadline guards a hang).
func TestPoolTooSmallForThePartitions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 50)
	cfg := f.config(t)
	cfg.MaxPartitions = 5
	w := f.start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := w.Enqueue(ctx, "run-pool", 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = w.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond})
	took := time.Since(start)
	// The waiter reads the error River recorded: its text, not its chain.
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("Wait after %v: %v; want the pool refused", took, err)
	}
	for _, s := range []string{"SetMaxOpenConns(12) is too small", "needs 15 connections at once (5 partitions at once, per partition: ", "SetMaxOpenConns(15)"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Wait's error does not say %q: %v", s, err)
		}
	}
	var rows, attempts int
	if err := f.db.Get(&rows, `SELECT count(*) FROM res`); err != nil || rows != 0 || f.calls.Load() != 0 {
		t.Fatalf("%d rows (%v), %d enrichments: want none", rows, err, f.calls.Load())
	}
	if err := f.db.Get(&attempts, `SELECT max(attempt) FROM river_job`); err != nil || attempts != 1 {
		t.Errorf("jobs took up to %d attempts (%v), want 1: retried", attempts, err)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
}
