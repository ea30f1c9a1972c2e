package batchenrich

import (
	"context"
	"sync"
)

// Checker is an optional ability of a Source, Enricher, Sink or
// CheckpointStore: checking its configuration against what it connects
// to — a database's catalog, say — before any work. Run calls Check on
// each of its Source, Enricher, Sink and CheckpointStore that implements
// it, before it takes the run lock or reads anything; the Checks run
// concurrently, each in a goroutine of its own (so that a run waits for
// the slowest, not for their sum; they must be safe to call at the same
// time), and Run waits for all of them. It returns, as it is, the first
// error in the order Source, Enricher, Sink, CheckpointStore (a panic in
// Check as a *PanicError), having enriched nothing. Its error should name
// the component and the problem (sqlbatch's say "sqlbatch: invalid
// SinkConfig.Key: …").
type Checker interface {
	Check(ctx context.Context) error
}

// check runs the Checks of the Runner's components, concurrently, and
// returns the first error in component order.
func (r *Runner[T, R]) check(ctx context.Context) error {
	var checkers []Checker
	for _, c := range [...]any{r.src, r.enr, r.sink, r.opts.store()} {
		if ch, ok := c.(Checker); ok {
			checkers = append(checkers, ch)
		}
	}
	errs := make([]error, len(checkers))
	var wg sync.WaitGroup
	for i, ch := range checkers[min(1, len(checkers)):] {
		wg.Go(func() { errs[i+1] = guarded(func() error { return ch.Check(ctx) }) })
	}
	if len(checkers) > 0 {
		errs[0] = guarded(func() error { return checkers[0].Check(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
