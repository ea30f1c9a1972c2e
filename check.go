package batchenrich

import "context"

// Checker is an optional ability of a Source, Enricher, Sink or
// CheckpointStore: checking its configuration against what it connects
// to — a database's catalog, say — before any work. Run calls Check on
// each of its Source, Enricher, Sink and CheckpointStore that implements
// it, in that order, before it
// takes the run lock or reads anything, and returns the first error as it
// is (a panic in Check as a *PanicError), having enriched nothing. Its error should name the component and
// the problem (sqlbatch's say "sqlbatch: invalid SinkConfig.Key: …").
type Checker interface {
	Check(ctx context.Context) error
}

// check runs the Checks of the Runner's components.
func (r *Runner[T, R]) check(ctx context.Context) error {
	for _, c := range [...]any{r.src, r.enr, r.sink, r.opts.store()} {
		if ch, ok := c.(Checker); ok {
			if err := guarded(func() error { return ch.Check(ctx) }); err != nil {
				return err
			}
		}
	}
	return nil
}
