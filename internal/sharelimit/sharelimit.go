// Package sharelimit enforces, in one process, its current share of a
// budget shared with other processes: a number of requests in flight and a
// rate, both of which may change at any time. It does no I/O: whatever
// coordinates the processes (sqlbatch.Budget) calls Set.
package sharelimit

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ErrClosed is Take's error once the Limiter is closed.
var ErrClosed = errors.New("shared budget closed")

// Share is a process's part of a budget.
type Share struct {
	// Concurrency is how many requests may be in flight at once; -1 means
	// no bound (the budget has no concurrency ceiling).
	Concurrency int
	// Rate is how many requests may start per second; +Inf means no
	// bound (the budget has no rate limit). Zero stops every request.
	Rate float64
}

// Limiter hands out slots and turns under a Share that can change. Its
// methods are safe for concurrent use.
type Limiter struct {
	mu       sync.Mutex
	share    Share
	inflight int
	closed   bool
	changed  chan struct{} // closed (and replaced) on Set and Close
	waiters  []*waiter     // for a slot, in order of arrival

	rl   *rate.Limiter // burst 1
	turn chan struct{} // one rate waiter at a time: a lowered rate applies at once
}

// New returns a Limiter with share s.
func New(s Share) *Limiter {
	l := &Limiter{changed: make(chan struct{}), rl: rate.NewLimiter(rate.Inf, 1), turn: make(chan struct{}, 1)}
	l.Set(s)
	return l
}

// Share returns the current share.
func (l *Limiter) Share() Share {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.share
}

// InFlight returns the slots taken and not released.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}

// Set replaces the share. Requests already in flight above a lowered
// concurrency finish; no new one starts until the count is under it.
func (l *Limiter) Set(s Share) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.share = s
	if math.IsInf(s.Rate, 1) {
		l.rl.SetLimit(rate.Inf)
	} else if s.Rate > 0 {
		l.rl.SetLimit(rate.Limit(s.Rate))
	}
	l.wakeLocked()
}

// Close makes every waiting and later Take return ErrClosed.
func (l *Limiter) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.wakeLocked()
}

// waiter is a Take waiting for a slot.
type waiter struct {
	ready  chan struct{} // closed when granted, or on Close
	closed bool          // set before ready is closed by Close
}

// wakeLocked wakes the rate waiter and grants the slots the share allows;
// l.mu is held.
func (l *Limiter) wakeLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
	l.grantLocked()
}

// fitsLocked reports whether one more request fits the share; l.mu is
// held.
func (l *Limiter) fitsLocked() bool {
	return l.share.Concurrency < 0 || l.inflight < l.share.Concurrency
}

// grantLocked hands free slots to the waiters in order, one wake-up
// each; on Close it releases them all. l.mu is held.
func (l *Limiter) grantLocked() {
	for len(l.waiters) > 0 && (l.closed || l.fitsLocked()) {
		w := l.waiters[0]
		l.waiters[0] = nil
		l.waiters = l.waiters[1:]
		if l.closed {
			w.closed = true
		} else {
			l.inflight++
		}
		close(w.ready)
	}
}

// Take waits for a slot under the share's concurrency, then for a turn
// under its rate, honouring ctx, and returns the function giving the slot
// back (call it once, when the request is over).
func (l *Limiter) Take(ctx context.Context) (release func(), err error) {
	if err := l.slot(ctx); err != nil {
		return nil, err
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			l.mu.Lock()
			l.inflight--
			l.grantLocked()
			l.mu.Unlock()
		})
	}
	if err := l.pace(ctx); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// slot waits for a place among the requests in flight, in order of
// arrival: a release hands its slot to the first waiter (one wake-up, not
// every waiter's).
func (l *Limiter) slot(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if len(l.waiters) == 0 && l.fitsLocked() {
		l.inflight++
		l.mu.Unlock()
		return nil
	}
	w := &waiter{ready: make(chan struct{})}
	l.waiters = append(l.waiters, w)
	l.mu.Unlock()
	select {
	case <-w.ready:
		if w.closed {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			if !w.closed {
				l.inflight--
				l.grantLocked()
			}
		default:
			l.waiters = slices.DeleteFunc(l.waiters, func(x *waiter) bool { return x == w })
		}
		return ctx.Err()
	}
}

// pace waits for a turn under the rate. One waiter at a time reserves a
// token, so that a rate lowered meanwhile holds back every later request
// (concurrent waiters would each have reserved one at the old rate).
func (l *Limiter) pace(ctx context.Context) error {
	l.mu.Lock()
	unbounded := math.IsInf(l.share.Rate, 1)
	l.mu.Unlock()
	if unbounded { // the fast path: no rate limit
		return nil
	}
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.turn }()
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return ErrClosed
		}
		r := l.share.Rate
		ch := l.changed
		l.mu.Unlock()
		if math.IsInf(r, 1) {
			return nil
		}
		if r > 0 {
			// Reserve the token and sleep until it is due, unless the
			// share changes meanwhile (a lower rate, zero, a close).
			res := l.rl.Reserve()
			d := res.Delay()
			if d == 0 {
				return nil
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				res.Cancel()
				return ctx.Err()
			case <-t.C:
				return nil
			case <-ch:
				t.Stop()
				res.Cancel()
				continue // the share changed: reserve again at the new rate
			}
		}
		select { // a rate of zero: wait for a new share
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
