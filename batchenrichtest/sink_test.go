package batchenrichtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// The Sink catches a wrong first batch number and a failed result whose
// Err is not the *ItemError naming it.
func TestSinkChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ok := func(num int) batchenrich.Batch[int, int] {
		return batchenrich.Batch[int, int]{Number: num, Results: []batchenrich.Result[int, int]{{Index: 0, Item: 1, Value: 2}}}
	}
	failed := func(num int, err error) batchenrich.Batch[int, int] {
		return batchenrich.Batch[int, int]{Number: num, Results: []batchenrich.Result[int, int]{{Index: 0, Item: 1, Err: err}}}
	}
	for _, tc := range []struct {
		name  string
		sink  *batchenrichtest.Sink[int, int]
		batch batchenrich.Batch[int, int]
		want  string // in Check's error; "" for none
	}{
		{"FreshRunFromBatch1", &batchenrichtest.Sink[int, int]{FirstBatch: 1}, ok(1), ""},
		{"FreshRunFromBatch2", &batchenrichtest.Sink[int, int]{FirstBatch: 1}, ok(2), "first batch written is batch 2, want 1"},
		{"Batch0", batchenrichtest.NewSink[int, int](), ok(0), "batch numbers start at 1"},
		{"ResumedRun", &batchenrichtest.Sink[int, int]{FirstBatch: 4}, ok(4), ""},
		{"ItemError", batchenrichtest.NewSink[int, int](), failed(1, &batchenrich.ItemError{Batch: 1, Index: 0, Err: errors.New("x")}), ""},
		{"PlainError", batchenrichtest.NewSink[int, int](), failed(1, errors.New("x")), "not an *batchenrich.ItemError"},
		{"ItemErrorOfAnotherBatch", batchenrichtest.NewSink[int, int](), failed(1, &batchenrich.ItemError{Batch: 2, Index: 0, Err: errors.New("x")}), "names batch 2 item 0"},
	} {
		if err := tc.sink.Write(ctx, tc.batch); err != nil {
			t.Fatal(err)
		}
		err := tc.sink.Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: Check = %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: Check = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// The zero values of the kit's types work, or refuse clearly.
func TestZeroValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var cps batchenrichtest.Checkpoints
	unlock, ok, err := cps.TryLock(ctx, "k")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := cps.Save(ctx, batchenrich.Checkpoint{RunKey: "k", Batch: 1}); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	var enr batchenrichtest.Enricher[int, int]
	_, err = enr.Enrich(ctx, 1)
	if batchenrich.Classify(err) != batchenrich.ClassFatal || !strings.Contains(err.Error(), "Enricher.Fn is nil") {
		t.Fatalf("zero Enricher: %v", err)
	}
}
