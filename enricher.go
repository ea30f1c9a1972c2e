package batchenrich

import "context"

// Enricher turns one item into one result.
//
// Enrich is called concurrently for the items of a batch, at most
// Options.Concurrency at a time, and must be safe for that. It should honour
// ctx: when the run is cancelled, in-flight calls see ctx end and should
// return promptly.
//
// An error is a per-item failure, not a crash: by default the Runner hands
// the item to the Sink as a failed Result carrying the error (see
// Options.StopAfterFailures). Wrap errors with Transient or Permanent to classify them.
// A panic in Enrich stops the run with an *ItemError wrapping a *PanicError.
//
// An Enricher that can enrich many items in one call implements
// BulkEnricher too, and the Runner then calls EnrichBulk instead.
type Enricher[T, R any] interface {
	Enrich(ctx context.Context, item T) (R, error)
}

// EnricherFunc adapts a function to the Enricher interface, like
// http.HandlerFunc.
type EnricherFunc[T, R any] func(ctx context.Context, item T) (R, error)

// Enrich calls f(ctx, item).
func (f EnricherFunc[T, R]) Enrich(ctx context.Context, item T) (R, error) {
	return f(ctx, item)
}
