package batchenrich

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// limiter bounds the enrichments in flight over the partitions of a
// NewPartitioned run (Options.Concurrency): each partition's Runner holds
// one of its slots for each Enrich or EnrichBulk call. The Runner holds
// the limiter rather than wrapping the Enricher, so that the Enricher's
// optional abilities (Checker, Describer, ConnUser, BulkEnricher) stay
// visible.
type limiter struct {
	sem *semaphore.Weighted
}

// newLimiter returns a limiter letting n enrichments run at once, n ≥ 1.
func newLimiter(n int) *limiter {
	return &limiter{sem: semaphore.NewWeighted(int64(n))}
}

// acquire takes one of l's slots, waiting for one or for ctx to end
// (returning its error). A nil limiter takes nothing.
func (l *limiter) acquire(ctx context.Context) error {
	if l == nil {
		return nil
	}
	return l.sem.Acquire(ctx, 1)
}

// release frees a slot taken by acquire.
func (l *limiter) release() {
	if l != nil {
		l.sem.Release(1)
	}
}
