package sqlbatch

import (
	"sync"
	"sync/atomic"
)

// checkOnce runs a Source's or Sink's check against the catalog until it
// first succeeds; after that, do does nothing. Concurrent callers wait
// for the check that is running.
type checkOnce struct {
	done atomic.Bool
	mu   sync.Mutex
}

// do runs check unless a check succeeded before. A *ConfigError it
// returns names config, or def when config is empty.
func (o *checkOnce) do(config, def string, check func() error) error {
	if o.done.Load() {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done.Load() {
		return nil
	}
	if err := check(); err != nil {
		if config == "" {
			config = def
		}
		return inConfig(config, err)
	}
	o.done.Store(true)
	return nil
}
