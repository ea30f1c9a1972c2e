// Package admitapi is a test API for adaptive concurrency: it answers at
// most K requests at once, each after a fixed latency, and 429 Too Many
// Requests at once to the requests beyond K. K can change while it runs,
// and an outage can be switched on, during which every request is answered
// 503 with a Retry-After header. It counts what it answered, and records
// the arrival time of the requests refused during an outage.
package admitapi

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the API's handler. The zero value is not usable: use New.
type Server struct {
	k        atomic.Int64
	latency  time.Duration
	inflight atomic.Int64

	ok, over, outage503 atomic.Int64

	mu          sync.Mutex
	outageUntil time.Time
	retryAfter  int
	outageHits  []time.Time // arrivals answered 503
}

// New returns a Server admitting k requests at once, each answered after
// latency.
func New(k int, latency time.Duration) *Server {
	s := &Server{latency: latency}
	s.k.Store(int64(k))
	return s
}

// SetK changes how many requests are admitted at once.
func (s *Server) SetK(k int) { s.k.Store(int64(k)) }

// Outage answers every request with 503 and "Retry-After: retryAfter"
// (seconds) for d from now.
func (s *Server) Outage(d time.Duration, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outageUntil, s.retryAfter = time.Now().Add(d), retryAfter
}

// Counts returns the requests answered 200, 429 and 503.
func (s *Server) Counts() (ok, tooMany, unavailable int64) {
	return s.ok.Load(), s.over.Load(), s.outage503.Load()
}

// OutageHits returns the arrival times of the requests answered 503.
func (s *Server) OutageHits() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.outageHits...)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	if now.Before(s.outageUntil) {
		s.outageHits = append(s.outageHits, now)
		ra := s.retryAfter
		s.mu.Unlock()
		s.outage503.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.mu.Unlock()
	if s.inflight.Add(1) > s.k.Load() {
		s.inflight.Add(-1)
		s.over.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	time.Sleep(s.latency)
	s.inflight.Add(-1)
	s.ok.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}
