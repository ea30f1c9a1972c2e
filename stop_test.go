package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// A Fatal item error stops the run at once, like a panic: the batch is not
// written and Run returns the *ItemError.
func TestFatalItemErrorStopsRun(t *testing.T) {
	t.Parallel()
	f := newFixture(300)
	bug := errors.New("template parameter {id} missing")
	f.enr.Fail = func(i item) error {
		if i == 150 {
			return batchenrich.Fatal(bug)
		}
		return nil
	}
	rep, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100, Concurrency: 1})
	var ie *batchenrich.ItemError
	if !errors.As(err, &ie) || ie.Batch != 2 || ie.Index != 50 || ie.Key != "item-150" || !errors.Is(err, bug) {
		t.Fatalf("err = %v, want batch 2 item 50's *ItemError", err)
	}
	if batchenrich.Classify(err) != batchenrich.ClassFatal {
		t.Fatalf("Classify = %v", batchenrich.Classify(err))
	}
	f.checkWritten(t, 0, 100, 100, 1)
	// At once: no item after it was started (Concurrency 1).
	if f.enr.Calls() != 151 {
		t.Fatalf("enrichments = %d, want 151", f.enr.Calls())
	}
	if b := rep.Batches[1]; b.Enriched != 50 || b.Failed != 1 || b.Written != 0 {
		t.Fatalf("stopped batch report = %+v", b)
	}
}

// A batch in which every item failed stops the run before it is written,
// naming the most common reason; AllowAllFailed turns this off; a batch
// smaller than 5 items (the all-failed stop's smallest batch) is written.
func TestAllFailedBatchStopsRun(t *testing.T) {
	t.Parallel()
	notFound := batchenrich.Permanent(errors.New("status 404 after 1 attempt"))
	failFrom := func(from int) func(i item) error {
		return func(i item) error {
			switch {
			case i < item(from):
				return nil
			case i%10 == 0:
				return batchenrich.Transient(errors.New("timeout"))
			default:
				return notFound
			}
		}
	}

	t.Run("Stops", func(t *testing.T) {
		t.Parallel()
		f := newFixture(300)
		f.enr.Fail = failFrom(100) // batch 2 on
		store := batchenrichtest.NewCheckpoints()
		rep, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100, Durable: &batchenrich.Durable{Store: store, RunKey: "r"}})
		var be *batchenrich.BatchError
		if !errors.As(err, &be) || be.Batch != 2 || be.Stage != batchenrich.StageEnrich || !errors.Is(err, batchenrich.ErrAllFailed) {
			t.Fatalf("err = %v", err)
		}
		want := "batchenrich: batch 2: enrich: all 100 items failed; most common reason (90 of them): status 404 after 1 attempt; " +
			"the batch was not written: fix the cause and run again with the same RunKey to resume from this batch, " +
			"or set Options.AllowAllFailed if whole batches may fail"
		if err.Error() != want {
			t.Fatalf("err =\n %s\nwant\n %s", err, want)
		}
		var ie *batchenrich.ItemError
		if !errors.As(err, &ie) || ie.Batch != 2 || batchenrich.Classify(err) != batchenrich.ClassPermanent {
			t.Fatalf("the example *ItemError is not reachable: %v", err)
		}
		f.checkWritten(t, 0, 100, 100, 1)
		if b := rep.Batches[1]; b.Failed != 100 || b.Enriched != 0 || b.Written != 0 {
			t.Fatalf("batch 2 report = %+v", b)
		}
		if cp, _ := store.Load(context.Background(), "r"); cp.Batch != 1 {
			t.Fatalf("checkpoint = %+v, want after batch 1", cp)
		}
	})

	t.Run("NotDurable", func(t *testing.T) {
		t.Parallel()
		f := newFixture(100)
		f.enr.Fail = failFrom(0)
		_, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100})
		if !errors.Is(err, batchenrich.ErrAllFailed) || strings.Contains(err.Error(), "RunKey") {
			t.Fatalf("err = %v; a run without checkpoints cannot be resumed", err)
		}
	})

	t.Run("AllowAllFailed", func(t *testing.T) {
		t.Parallel()
		f := newFixture(300)
		f.enr.Fail = failFrom(100)
		rep, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100, AllowAllFailed: true})
		if err != nil || rep.Failed != 200 || rep.Written != 300 {
			t.Fatalf("report %+v, err %v", rep, err)
		}
	})

	t.Run("SmallBatch", func(t *testing.T) {
		t.Parallel()
		n := 4 // one less than the all-failed stop's smallest batch, 5
		f := newFixture(100 + n)
		f.enr.Fail = failFrom(100) // only the short last batch
		rep, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100})
		if err != nil || rep.Failed != n || rep.Written != 100+n {
			t.Fatalf("report %+v, err %v", rep, err)
		}
	})

	t.Run("OneSuccessIsEnough", func(t *testing.T) {
		t.Parallel()
		f := newFixture(100)
		f.enr.Fail = failFrom(1)
		if _, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 100}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClassifyFatalAndJoined(t *testing.T) {
	t.Parallel()
	base := errors.New("x")
	tests := []struct {
		err  error
		want batchenrich.Class
	}{
		{batchenrich.Fatal(base), batchenrich.ClassFatal},
		{fmt.Errorf("w: %w", batchenrich.Fatal(base)), batchenrich.ClassFatal},
		{errors.Join(batchenrich.Transient(base), batchenrich.Permanent(base)), batchenrich.ClassPermanent},
		{errors.Join(batchenrich.Permanent(base), batchenrich.Transient(base)), batchenrich.ClassPermanent},
		{errors.Join(batchenrich.Transient(base), batchenrich.Fatal(base)), batchenrich.ClassFatal},
		{errors.Join(base, batchenrich.Transient(base)), batchenrich.ClassTransient},
		{errors.Join(base, context.DeadlineExceeded), batchenrich.ClassTransient},
		{errors.Join(batchenrich.Permanent(base), context.DeadlineExceeded), batchenrich.ClassPermanent},
		{batchenrich.Transient(errors.Join(batchenrich.Permanent(base))), batchenrich.ClassTransient}, // outermost wins
		{fmt.Errorf("%w and %w", batchenrich.Transient(base), batchenrich.Permanent(base)), batchenrich.ClassPermanent},
	}
	for _, tt := range tests {
		if got := batchenrich.Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if batchenrich.Fatal(nil) != nil || batchenrich.ClassFatal.String() != "fatal" {
		t.Error("Fatal(nil) or ClassFatal.String")
	}
}
