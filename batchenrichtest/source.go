package batchenrichtest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/batchenrich/batchenrich"
)

// SliceSource is a batchenrich.Source over a slice. Its Cursor is the index
// of the next item, in decimal, as a keyset Source would store its last key.
type SliceSource[T any] struct {
	// Items are returned in order.
	Items []T
	// Latency, if set, is waited (honouring ctx) before each Read.
	Latency time.Duration
	// FailRead, if set, is called before each Read with the 0-based call
	// number; a non-nil error is returned by that Read.
	FailRead func(call int) error

	mu    sync.Mutex
	calls int
	reads []batchenrich.Cursor
}

// NewSliceSource returns a SliceSource over items.
func NewSliceSource[T any](items []T) *SliceSource[T] {
	return &SliceSource[T]{Items: items}
}

// Read implements batchenrich.Source.
func (s *SliceSource[T]) Read(ctx context.Context, after batchenrich.Cursor, limit int) ([]T, batchenrich.Cursor, error) {
	s.mu.Lock()
	call := s.calls
	s.calls++
	s.reads = append(s.reads, after)
	s.mu.Unlock()
	if err := sleep(ctx, s.Latency); err != nil {
		return nil, after, err
	}
	if s.FailRead != nil {
		if err := s.FailRead(call); err != nil {
			return nil, after, err
		}
	}
	start := 0
	if after != "" {
		n, err := strconv.Atoi(string(after))
		if err != nil || n < 0 || n > len(s.Items) {
			return nil, after, fmt.Errorf("bad cursor %q", after)
		}
		start = n
	}
	if limit <= 0 {
		return nil, after, fmt.Errorf("limit %d: must be positive", limit)
	}
	end := min(start+limit, len(s.Items))
	out := append([]T(nil), s.Items[start:end]...)
	return out, batchenrich.Cursor(strconv.Itoa(end)), nil
}

// Reads returns the cursors each Read was called with, in call order.
func (s *SliceSource[T]) Reads() []batchenrich.Cursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]batchenrich.Cursor(nil), s.reads...)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
