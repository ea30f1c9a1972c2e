package batchenrich_test

import (
	"context"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// A run that ends at its MaxBatches cap, its Source not exhausted, is
// recorded as stopped in the checkpoint of its last batch (not left
// "running", which reads as a run whose process died); a run with a
// larger cap resumes it to the end, recorded as done.
func TestCappedRunRecordedStopped(t *testing.T) {
	ctx := context.Background()
	store := batchenrichtest.NewCheckpoints()
	items := make([]int, 50)
	run := func(maxBatches int) batchenrich.Report {
		t.Helper()
		r, err := batchenrich.New[int, int](batchenrichtest.NewSliceSource(items), batchenrich.EnricherFunc[int, int](func(ctx context.Context, i int) (int, error) { return i, nil }),
			batchenrichtest.NewSink[int, int](), batchenrich.Options{BatchSize: 10, MaxBatches: maxBatches, Durable: &batchenrich.Durable{Store: store, RunKey: "capped"}})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	check := func(state batchenrich.RunState, batch int) {
		t.Helper()
		cp, err := store.Load(ctx, "capped")
		if err != nil {
			t.Fatal(err)
		}
		if cp.State != state || cp.Batch != batch || cp.Done != (state == batchenrich.StateDone) || cp.LastError != "" || cp.Counts.Written != 10*batch {
			t.Fatalf("checkpoint %+v, want state %s after batch %d", cp, state, batch)
		}
	}
	run(3)
	check(batchenrich.StateStopped, 3)
	if rep := run(3); !rep.AlreadyDone {
		t.Fatalf("same cap again: %+v", rep)
	}
	check(batchenrich.StateStopped, 3)
	run(10)
	check(batchenrich.StateDone, 5)
}
