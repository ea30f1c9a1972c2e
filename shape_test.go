package batchenrich_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// A checkpoint records the run's BatchSize and Fingerprint; a resume with
// other ones is refused before anything is read, unless AllowReshape.
func TestCheckpointShape(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := batchenrichtest.NewCheckpoints()
	f := newFixture(100)
	o := batchenrich.Options{BatchSize: 10, MaxBatches: 3, Durable: &batchenrich.Durable{Store: store, RunKey: "r", Fingerprint: "v1"}}
	if _, err := f.run(t, ctx, o); err != nil {
		t.Fatal(err)
	}
	cp, _ := store.Load(ctx, "r")
	if cp.BatchSize != 10 || cp.Fingerprint != "v1" || cp.Batch != 3 {
		t.Fatalf("checkpoint = %+v", cp)
	}

	for _, tc := range []struct {
		name    string
		size    int
		fp      string
		mention []string
	}{
		{"BatchSize", 20, "v1", []string{"BatchSize 10 (this run: 20)"}},
		{"Fingerprint", 10, "v2", []string{`Fingerprint "v1" (this run: "v2")`}},
		{"NoFingerprint", 10, "", []string{`Fingerprint "v1" (this run: "")`}},
		{"Both", 20, "v2", []string{"BatchSize 10 (this run: 20)", `Fingerprint "v1" (this run: "v2")`}},
	} {
		o := o
		o.BatchSize, o.Durable.Fingerprint, o.MaxBatches = tc.size, tc.fp, 0
		calls := f.enr.Calls()
		rep, err := f.run(t, ctx, o)
		var be *batchenrich.BatchError
		if !errors.As(err, &be) || be.Stage != batchenrich.StageCheckpoint || be.Batch != 4 || !errors.Is(err, batchenrich.ErrCheckpointMismatch) {
			t.Fatalf("%s: err = %v", tc.name, err)
		}
		for _, s := range append(tc.mention, `run "r" was checkpointed after batch 3`, "new RunKey", "AllowReshape") {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, s)
			}
		}
		if rep.Read != 0 || f.enr.Calls() != calls || len(f.src.Reads()) != 3 {
			t.Fatalf("%s: the refused run did work: %+v", tc.name, rep)
		}
	}

	// Unrecorded settings (a checkpoint of an older version) match.
	old := batchenrichtest.NewCheckpoints()
	_ = old.Save(ctx, batchenrich.Checkpoint{RunKey: "r", Batch: 3, Cursor: "30"})
	g := newFixture(100)
	g.sink.FirstBatch = 4
	if _, err := g.run(t, ctx, batchenrich.Options{BatchSize: 20, Durable: &batchenrich.Durable{Store: old, RunKey: "r", Fingerprint: "v9"}}); err != nil {
		t.Fatalf("resume of an unrecorded shape: %v", err)
	}
	if cp, _ := old.Load(ctx, "r"); cp.BatchSize != 20 || cp.Fingerprint != "v9" || !cp.Done {
		t.Fatalf("checkpoint = %+v", cp)
	}

	// AllowReshape goes on with this run's settings.
	o.BatchSize, o.Durable.Fingerprint, o.MaxBatches, o.Durable.AllowReshape = 35, "v2", 0, true
	if _, err := f.run(t, ctx, o); err != nil {
		t.Fatal(err)
	}
	if cp, _ := store.Load(ctx, "r"); cp.BatchSize != 35 || cp.Fingerprint != "v2" || !cp.Done || cp.Batch != 5 {
		t.Fatalf("checkpoint after reshape = %+v", cp)
	}
	for i, r := range f.sink.Results() {
		if int(r.Item) != i {
			t.Fatalf("result %d is item %d", i, r.Item)
		}
	}
	if n := len(f.sink.Results()); n != 100 {
		t.Fatalf("%d results", n)
	}
}
