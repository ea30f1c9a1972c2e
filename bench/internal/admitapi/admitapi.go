// Package admitapi is a test API for adaptive concurrency: it answers at
// most K requests at once, each after a fixed latency, and 429 Too Many
// Requests at once to the requests beyond K. K can change while it runs,
// and an outage can be switched on, during which every request is answered
// 503 with a Retry-After header. Its 429s can carry Retry-After, and some
// ids can fail on every attempt (503 or 404), like items an API cannot
// serve. It counts what it answered, and records
// the arrival time of the requests refused during an outage.
package admitapi

import (
	"net/http"
	"strconv"
	"strings"
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

	// Set before serving (see RetryAfter429 and FailIDs).
	retryAfter429    int // > 0: the 429s carry "Retry-After: retryAfter429"
	fail503, fail404 int // > 0: ids divisible by it answer 503 (404) on every attempt
	failed           atomic.Int64

	mu          sync.Mutex
	outageUntil time.Time
	retryAfter  int
	outageHits  []time.Time // arrivals answered 503
	overHits    []time.Time // arrivals answered 429
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

// RetryAfter429 makes the 429s answered beyond K carry "Retry-After:
// seconds". Call it before serving.
func (s *Server) RetryAfter429(seconds int) { s.retryAfter429 = seconds }

// FailIDs makes the items whose id (the last segment of the path) is a
// multiple of every503 answer 503 Service Unavailable on every attempt,
// and those whose id is every404/4 more than a multiple of every404 (and
// not a multiple of every503) 404 Not Found; 0 turns either off. These answers take the latency and count in
// the K at once, like a real handler's. Call it before serving.
func (s *Server) FailIDs(every503, every404 int) { s.fail503, s.fail404 = every503, every404 }

// Failed returns the requests answered 503 or 404 by FailIDs.
func (s *Server) Failed() int64 { return s.failed.Load() }

// failCode returns the status FailIDs sets for the request, 0 for none.
func (s *Server) failCode(r *http.Request) int {
	if s.fail503 == 0 && s.fail404 == 0 {
		return 0
	}
	p := r.URL.Path
	id, err := strconv.Atoi(p[strings.LastIndexByte(p, '/')+1:])
	switch {
	case err != nil:
		return 0
	case s.fail503 > 0 && id%s.fail503 == 0:
		return http.StatusServiceUnavailable
	case s.fail404 > 0 && id%s.fail404 == s.fail404/4:
		return http.StatusNotFound
	}
	return 0
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

// TooManyHits returns the arrival times of the requests answered 429.
func (s *Server) TooManyHits() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.overHits...)
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
		s.mu.Lock()
		s.overHits = append(s.overHits, now)
		s.mu.Unlock()
		if s.retryAfter429 > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(s.retryAfter429))
		}
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	time.Sleep(s.latency)
	s.inflight.Add(-1)
	if code := s.failCode(r); code != 0 {
		s.failed.Add(1)
		w.WriteHeader(code)
		return
	}
	s.ok.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}
