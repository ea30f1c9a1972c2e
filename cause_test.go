package batchenrich_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
)

// A Source that fails when the run's context ends gives its own error,
// which Run keeps as the cause beside the context's: nothing is replaced.
func TestSourceErrorKeptWhenCancelled(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection reset by peer")
	reading := make(chan struct{})
	src := batchenrich.SourceFunc[item](func(ctx context.Context, after batchenrich.Cursor, limit int) ([]item, batchenrich.Cursor, error) {
		close(reading)
		<-ctx.Done()
		return nil, after, cause
	})
	f := newFixture(0)
	r, err := batchenrich.New[item, int](src, f.enr, f.sink, batchenrich.Options{NoPrefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := r.Run(ctx); done <- err }()
	select {
	case <-reading:
	case <-time.After(time.Minute):
		t.Fatal("the Source was never read")
	}
	cancel()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context was cancelled")
	}
	var be *batchenrich.BatchError
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) || !errors.As(err, &be) || be.Stage != batchenrich.StageRead {
		t.Fatalf("err = %v, want a *BatchError at StageRead wrapping context.Canceled and the Source's error", err)
	}
}
