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
// memory, and checks the Runner's guarantees as it goes: batch numbers
// increase by one, writes never overlap, results are in index order. Check
// returns the first violation seen.
type Sink[T, R any] struct {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.batches); n > 0 && b.Number != s.batches[n-1].Number+1 {
		s.violate(fmt.Errorf("batch %d written after batch %d", b.Number, s.batches[n-1].Number))
	}
	for i, r := range b.Results {
		if r.Index != i {
			s.violate(fmt.Errorf("batch %d: result %d has Index %d", b.Number, i, r.Index))
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
