package batchenrichtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/batchenrich/batchenrich"
)

// Sink is a batchenrich.Sink that keeps every batch written to it, in
// memory, and checks the Runner's guarantees as it goes: the first batch
// kept has number FirstBatch (at least 1), batch numbers then increase by
// one, writes
// never overlap, results are in index order, and every failed result's Err
// is an *ItemError naming its batch and index. Check returns the first
// violation seen. The zero value is ready to use.
type Sink[T, R any] struct {
	// FirstBatch, if set, is the number the first batch kept must have:
	// 1 for a fresh run, the checkpoint's Batch + 1 for a resumed one.
	// Zero means any number from 1.
	FirstBatch int
	// FailItem, if set, is called with each result of a batch before the
	// batch is kept; a non-nil error is returned by that Write and
	// nothing of the batch is kept (all or nothing, like a transaction).
	FailItem func(r batchenrich.Result[T, R]) error

	// Latency, if set, is waited (honouring ctx) in each Write before the
	// batch is kept.
	Latency time.Duration
	// FailWrite, if set, is called with each batch number before it is
	// kept; a non-nil error is returned by that Write and the batch is
	// not kept.
	FailWrite func(batch int) error

	mu       sync.Mutex
	writing  bool
	batches  []batchenrich.Batch[T, R]
	attempts int
	bad      error
}

// NewSink returns an empty Sink.
func NewSink[T, R any]() *Sink[T, R] { return &Sink[T, R]{} }

// Write implements batchenrich.Sink.
func (s *Sink[T, R]) Write(ctx context.Context, b batchenrich.Batch[T, R]) error {
	s.mu.Lock()
	s.attempts++
	if s.writing {
		s.violate(fmt.Errorf("batch %d: Write called while another Write was running", b.Number))
	}
	s.writing = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.writing = false
		s.mu.Unlock()
	}()

	if err := sleep(ctx, s.Latency); err != nil {
		return err
	}
	if s.FailWrite != nil {
		if err := s.FailWrite(b.Number); err != nil {
			return err
		}
	}
	if s.FailItem != nil {
		for _, r := range b.Results {
			if err := s.FailItem(r); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch n := len(s.batches); {
	case n > 0 && b.Number != s.batches[n-1].Number+1:
		s.violate(fmt.Errorf("batch %d written after batch %d", b.Number, s.batches[n-1].Number))
	case n == 0 && s.FirstBatch > 0 && b.Number != s.FirstBatch:
		s.violate(fmt.Errorf("first batch written is batch %d, want %d", b.Number, s.FirstBatch))
	case n == 0 && b.Number < 1:
		s.violate(fmt.Errorf("first batch written is batch %d; batch numbers start at 1", b.Number))
	}
	for i, r := range b.Results {
		if r.Index != i {
			s.violate(fmt.Errorf("batch %d: result %d has Index %d", b.Number, i, r.Index))
		}
		if r.Err == nil {
			continue
		}
		var ie *batchenrich.ItemError
		if !errors.As(r.Err, &ie) {
			s.violate(fmt.Errorf("batch %d: result %d: Err is a %T, not an *batchenrich.ItemError: %v", b.Number, i, r.Err, r.Err))
		} else if ie.Batch != b.Number || ie.Index != i {
			s.violate(fmt.Errorf("batch %d: result %d: Err names batch %d item %d", b.Number, i, ie.Batch, ie.Index))
		}
	}
	b.Results = append([]batchenrich.Result[T, R](nil), b.Results...)
	s.batches = append(s.batches, b)
	return nil
}

func (s *Sink[T, R]) violate(err error) {
	if s.bad == nil {
		s.bad = errors.New("batchenrichtest: " + err.Error())
	}
}

// Check returns the first broken guarantee the Sink saw, or nil.
func (s *Sink[T, R]) Check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bad
}

// Batches returns the batches kept, in the order written.
func (s *Sink[T, R]) Batches() []batchenrich.Batch[T, R] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]batchenrich.Batch[T, R](nil), s.batches...)
}

// Results returns the results of every batch kept, in order.
func (s *Sink[T, R]) Results() []batchenrich.Result[T, R] {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []batchenrich.Result[T, R]
	for _, b := range s.batches {
		out = append(out, b.Results...)
	}
	return out
}

// Attempts returns how many times Write was called, including failed calls.
func (s *Sink[T, R]) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}
