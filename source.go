package batchenrich

import "context"

// Cursor is an opaque position in a Source: the point after which the next
// window starts. The empty Cursor means "the beginning".
//
// A Source chooses its own encoding: an OFFSET source may store a decimal
// number, a keyset source the last key it returned. The Runner never looks
// inside a Cursor; it only hands the one returned with window n back to the
// Source to read window n+1, and records it in checkpoints so that a resumed
// run continues where the last committed batch ended. A Cursor should
// therefore be small and stable across process restarts.
type Cursor string

// Source reads the items to enrich, one window at a time.
//
// Read returns at most limit items that follow after, in a stable order, and
// the Cursor positioned just after the last item returned. Fewer than limit
// items (including none) means the Source is exhausted: the Runner ends the
// run after that window. Read must not return more than limit items.
//
// The Runner copies the returned slice before it asks for the next window,
// so Read may reuse its slice's backing array from call to call. It must
// not change the items themselves afterwards (what pointers in T point
// to): the Runner and the Sink read them after the next Read has begun.
// Read may be called while the previous window is being enriched (see
// Options.NoPrefetch), but never concurrently with itself within one Run.
//
// Because the next window is requested with the Cursor of the previous one,
// a Source can page by key ("WHERE key > last ORDER BY key LIMIT n"), so a
// window costs the same at the end of a large table as at its start.
type Source[T any] interface {
	Read(ctx context.Context, after Cursor, limit int) (items []T, next Cursor, err error)
}

// SourceFunc adapts a function to the Source interface.
type SourceFunc[T any] func(ctx context.Context, after Cursor, limit int) ([]T, Cursor, error)

// Read calls f(ctx, after, limit).
func (f SourceFunc[T]) Read(ctx context.Context, after Cursor, limit int) ([]T, Cursor, error) {
	return f(ctx, after, limit)
}
