package batchenrichtest

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/batchenrich/batchenrich"
)

// Enricher is a scriptable batchenrich.Enricher. It records how many calls
// were in flight at most, so a test can check the concurrency bound.
type Enricher[T, R any] struct {
	// Fn computes the result. Required: without it every call fails
	// with a batchenrich.Fatal error saying so, which stops a run.
	Fn func(ctx context.Context, item T) (R, error)
	// Latency, if set, returns how long to wait (honouring ctx) before Fn
	// is called for item: use it to make items finish out of order.
	Latency func(item T) time.Duration
	// Fail, if set, returns an error to fail item with, instead of
	// calling Fn.
	Fail func(item T) error
	// Started, if set, is called as each call starts, with the number of
	// calls then in flight (this one included). Use it to block calls or
	// cancel a context at a chosen moment.
	Started func(item T, inFlight int)

	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	calls       atomic.Int64
}

// NewEnricher returns an Enricher computing results with fn.
func NewEnricher[T, R any](fn func(ctx context.Context, item T) (R, error)) *Enricher[T, R] {
	return &Enricher[T, R]{Fn: fn}
}

// Enrich implements batchenrich.Enricher.
func (e *Enricher[T, R]) Enrich(ctx context.Context, item T) (R, error) {
	var zero R
	n := e.inFlight.Add(1)
	defer e.inFlight.Add(-1)
	e.calls.Add(1)
	for {
		m := e.maxInFlight.Load()
		if n <= m || e.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if e.Started != nil {
		e.Started(item, int(n))
	}
	if e.Latency != nil {
		if err := sleep(ctx, e.Latency(item)); err != nil {
			return zero, err
		}
	}
	if e.Fail != nil {
		if err := e.Fail(item); err != nil {
			return zero, err
		}
	}
	if e.Fn == nil {
		return zero, batchenrich.Fatal(errors.New("batchenrichtest.Enricher.Fn is nil"))
	}
	return e.Fn(ctx, item)
}

// MaxInFlight returns the largest number of calls that were in flight at
// once.
func (e *Enricher[T, R]) MaxInFlight() int { return int(e.maxInFlight.Load()) }

// InFlight returns the number of calls in flight now.
func (e *Enricher[T, R]) InFlight() int { return int(e.inFlight.Load()) }

// Calls returns the number of calls made.
func (e *Enricher[T, R]) Calls() int { return int(e.calls.Load()) }
