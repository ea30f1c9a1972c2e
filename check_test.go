package batchenrich_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// checkingSource is a Source whose Check calls check.
type checkingSource struct {
	*batchenrichtest.SliceSource[item]
	check func(context.Context) error
}

func (s checkingSource) Check(ctx context.Context) error { return s.check(ctx) }

// checkingSink is a Sink whose Check calls check.
type checkingSink struct {
	*batchenrichtest.Sink[item, int]
	check func(context.Context) error
}

func (s checkingSink) Check(ctx context.Context) error { return s.check(ctx) }

// The Checks run concurrently: the Source's waits for the Sink's to have
// started, which never happens if they run one after the other.
func TestChecksRunConcurrently(t *testing.T) {
	t.Parallel()
	sinkStarted := make(chan struct{})
	src := checkingSource{batchenrichtest.NewSliceSource(items(3)), func(ctx context.Context) error {
		select {
		case <-sinkStarted:
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("the Sink's Check did not start while the Source's ran")
		}
	}}
	sink := checkingSink{&batchenrichtest.Sink[item, int]{FirstBatch: 1}, func(context.Context) error {
		close(sinkStarted)
		return nil
	}}
	r, err := batchenrich.New[item, int](src, batchenrichtest.NewEnricher(double), sink, batchenrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Written != 3 {
		t.Fatalf("written %d, want 3", rep.Written)
	}
}

// Run returns the first failing Check's error in component order, even
// when a later component's Check failed first, and enriches nothing.
func TestChecksFirstErrorInOrder(t *testing.T) {
	t.Parallel()
	errSource, errSink := errors.New("source misconfigured"), errors.New("sink misconfigured")
	sinkFailed := make(chan struct{})
	src := checkingSource{batchenrichtest.NewSliceSource(items(3)), func(ctx context.Context) error {
		select {
		case <-sinkFailed:
		case <-time.After(30 * time.Second):
		}
		return errSource
	}}
	sink := checkingSink{&batchenrichtest.Sink[item, int]{FirstBatch: 1}, func(context.Context) error {
		defer close(sinkFailed)
		return errSink
	}}
	enr := batchenrichtest.NewEnricher(double)
	r, err := batchenrich.New[item, int](src, enr, sink, batchenrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != errSource {
		t.Fatalf("err = %v, want the Source's error as it is", err)
	}
	if n := enr.Calls(); n != 0 {
		t.Fatalf("%d items enriched after a failed Check", n)
	}
}
