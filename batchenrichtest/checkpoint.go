package batchenrichtest

import (
	"context"
	"errors"
	"sync"

	"github.com/batchenrich/batchenrich"
)

// Checkpoints is an in-memory batchenrich.CheckpointStore and
// batchenrich.Locker, for tests of durable runs within one process. The
// zero value is an empty store, like NewCheckpoints.
type Checkpoints struct {
	// FailSave, if set, is called before each Save; a non-nil error is
	// returned by that Save and nothing is saved.
	FailSave func(cp batchenrich.Checkpoint) error

	mu     sync.Mutex
	saved  map[string]batchenrich.Checkpoint
	locked map[string]bool
	saves  int
}

// NewCheckpoints returns an empty store.
func NewCheckpoints() *Checkpoints {
	return &Checkpoints{saved: map[string]batchenrich.Checkpoint{}, locked: map[string]bool{}}
}

// Load implements batchenrich.CheckpointStore.
func (c *Checkpoints) Load(ctx context.Context, key string) (batchenrich.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return batchenrich.Checkpoint{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.saved[key]
	if !ok {
		cp = batchenrich.Checkpoint{RunKey: key}
	}
	return cp, nil
}

// Save implements batchenrich.CheckpointStore.
func (c *Checkpoints) Save(ctx context.Context, cp batchenrich.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.FailSave != nil {
		if err := c.FailSave(cp); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.saved == nil {
		c.saved = map[string]batchenrich.Checkpoint{}
	}
	c.saved[cp.RunKey] = cp
	c.saves++
	return nil
}

// Saves returns how many checkpoints were saved.
func (c *Checkpoints) Saves() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.saves
}

// TryLock implements batchenrich.Locker.
func (c *Checkpoints) TryLock(ctx context.Context, key string) (func() error, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.locked[key] {
		return nil, false, nil
	}
	if c.locked == nil {
		c.locked = map[string]bool{}
	}
	c.locked[key] = true
	var once sync.Once
	return func() error {
		err := errors.New("lock released twice")
		once.Do(func() {
			c.mu.Lock()
			delete(c.locked, key)
			c.mu.Unlock()
			err = nil
		})
		return err
	}, true, nil
}
