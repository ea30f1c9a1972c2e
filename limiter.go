package batchenrich

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// limiter bounds the enrichments in flight over the partitions of a
// Partitioned run (PartitionedConfig.Concurrency): each partition's Runner
// keeps its own Options.Concurrency, and the limiter caps their sum.
type limiter struct {
	sem *semaphore.Weighted
}

// newLimiter returns a limiter letting n enrichments run at once, n ≥ 1.
func newLimiter(n int) *limiter {
	return &limiter{sem: semaphore.NewWeighted(int64(n))}
}

// limitEnricher returns an Enricher that calls enr while holding one of
// l's slots, waiting for one first (or for ctx to end, returning its
// error). The slot is freed when enr returns, or panics.
//
// The returned Enricher hides enr's optional interfaces, if any, but
// BulkEnricher: for a BulkEnricher it is one too, each EnrichBulk call
// holding one slot for its whole group.
func limitEnricher[T, R any](l *limiter, enr Enricher[T, R]) Enricher[T, R] {
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
