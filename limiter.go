package batchenrich

import (
	"context"
	"fmt"

	"golang.org/x/sync/semaphore"
)

// Limiter bounds the enrichments in flight over several Runners, such as
// the partitions of a run working in one process: each Runner keeps its
// own Options.Concurrency, and the Limiter caps their sum. Create one with
// NewLimiter and wrap each Runner's Enricher with LimitEnricher. A Limiter
// is safe for concurrent use.
type Limiter struct {
	sem *semaphore.Weighted
	n   int
}

// NewLimiter returns a Limiter letting at most n enrichments run at once.
// It returns an *ConfigError (field "Concurrency") unless 1 ≤ n ≤
// MaxConcurrency.
func NewLimiter(n int) (*Limiter, error) {
	if n < 1 || n > MaxConcurrency {
		return nil, optionErr("Concurrency", fmt.Sprintf("%d: must be between 1 and MaxConcurrency", n))
	}
	return &Limiter{sem: semaphore.NewWeighted(int64(n)), n: n}, nil
}

// Limit returns the number of enrichments the Limiter lets run at once.
func (l *Limiter) Limit() int { return l.n }

// LimitEnricher returns an Enricher that calls enr while holding one of
// l's slots, waiting for one first (or for ctx to end, returning its
// error). The slot is freed when enr returns, or panics.
//
// The returned Enricher hides enr's optional interfaces, if any, but
// BulkEnricher: for a BulkEnricher it is one too, each EnrichBulk call
// holding one slot for its whole group.
func LimitEnricher[T, R any](l *Limiter, enr Enricher[T, R]) Enricher[T, R] {
	one := EnricherFunc[T, R](func(ctx context.Context, item T) (R, error) {
		if err := l.sem.Acquire(ctx, 1); err != nil {
			var zero R
			return zero, err
		}
		defer l.sem.Release(1)
		return enr.Enrich(ctx, item)
	})
	if b, ok := enr.(BulkEnricher[T, R]); ok {
		return limitedBulk[T, R]{Enricher: one, l: l, b: b}
	}
	return one
}
