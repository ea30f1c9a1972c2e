package sqlbatch

import (
	"sync"
	"sync/atomic"
)

// onceOK runs a step against the database until it first succeeds: a
// Source's or Sink's check against the catalog, a checkpoint table's
// upgrade. After that, do does nothing. Concurrent callers wait for the
// run in progress.
type onceOK struct {
	done atomic.Bool
	mu   sync.Mutex
}

// do runs f unless a run of f succeeded before, and returns its error.
func (o *onceOK) do(f func() error) error {
	if o.done.Load() {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done.Load() {
		return nil
	}
	if err := f(); err != nil {
		return err
	}
	o.done.Store(true)
	return nil
}
