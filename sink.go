package batchenrich

import "context"

// Sink writes the results of one batch.
//
// Within one Run, Write is called once per batch, in batch order, never
// concurrently with itself. Several Runs at once (of one Runner or of
// several, for example one per partition or run key) call the Write of a
// Sink they share concurrently: such a Sink must be safe for that. It
// receives every item of the batch, including failed ones (Result.Err is
// non-nil), unless Options.StopAfterFailures stopped the run first. A Sink should
// write the whole batch or nothing (for example in one transaction), and
// should be idempotent on the items' keys, so that a batch written again
// after a crash leaves the same rows.
//
// The Runner does not call Write once ctx has ended, so a cancelled batch
// is not written even by a Sink that ignores ctx; a Sink should still
// honour a ctx that ends during Write. An error stops the run; Run returns
// it wrapped in a *BatchError naming the batch.
type Sink[T, R any] interface {
	Write(ctx context.Context, b Batch[T, R]) error
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc[T, R any] func(ctx context.Context, b Batch[T, R]) error

// Write calls f(ctx, b).
func (f SinkFunc[T, R]) Write(ctx context.Context, b Batch[T, R]) error {
	return f(ctx, b)
}
