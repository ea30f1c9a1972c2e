package sharelimit

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestConcurrencyFollowsTheShare(t *testing.T) {
	l := New(Share{Concurrency: 1, Rate: math.Inf(1)})
	r1, err := l.Take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Take(canceled()); !errors.Is(err, context.Canceled) {
		t.Fatalf("second Take of 1 = %v, want it to wait", err)
	}
	got := make(chan func(), 1)
	go func() {
		r, err := l.Take(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	l.Set(Share{Concurrency: 2, Rate: math.Inf(1)}) // a raised share wakes the waiter
	r2 := <-got
	l.Set(Share{Concurrency: 1, Rate: math.Inf(1)}) // lowered: both stay in flight, none more
	if n := l.InFlight(); n != 2 {
		t.Fatalf("InFlight = %d, want 2", n)
	}
	r1()
	if _, err := l.Take(canceled()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take at 1 in flight of 1 = %v, want it to wait", err)
	}
	r2()
	r2() // idempotent
	if n := l.InFlight(); n != 0 {
		t.Fatalf("InFlight = %d, want 0", n)
	}
}

func TestZeroRateWaitsForAShare(t *testing.T) {
	l := New(Share{Concurrency: -1, Rate: 0})
	if _, err := l.Take(canceled()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take at rate 0 = %v, want it to wait", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := l.Take(context.Background())
		if err == nil {
			r()
		}
		got <- err
	}()
	l.Set(Share{Concurrency: -1, Rate: 1000})
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestCloseEndsTheWaits(t *testing.T) {
	l := New(Share{Concurrency: 0, Rate: math.Inf(1)})
	got := make(chan error, 2)
	go func() { _, err := l.Take(context.Background()); got <- err }()
	r := New(Share{Concurrency: -1, Rate: 0})
	go func() { _, err := r.Take(context.Background()); got <- err }()
	l.Close()
	r.Close()
	for range 2 {
		if err := <-got; !errors.Is(err, ErrClosed) {
			t.Fatalf("Take = %v, want ErrClosed", err)
		}
	}
}

// TestRateChangeAppliesToTheWaiters: a waiter that reserved its turn at
// a slow rate reserves again when the share changes, and those queued
// behind it follow at the new rate.
func TestRateChangeAppliesToTheWaiters(t *testing.T) {
	l := New(Share{Concurrency: -1, Rate: 0.001}) // one now, the next in 1000 s
	r, err := l.Take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := make(chan error, 4)
	for range 4 {
		go func() {
			r, err := l.Take(ctx)
			if err == nil {
				r()
			}
			got <- err
		}()
	}
	l.Set(Share{Concurrency: -1, Rate: math.Inf(1)})
	for range 4 {
		if err := <-got; err != nil {
			t.Fatal(err)
		}
	}
}
