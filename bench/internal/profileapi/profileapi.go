// Package profileapi runs an httpbin-compatible profile API on loopback for
// the benchmarks: a configurable latency per request, and counters of the
// connections opened and requests served.
package profileapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// Kind selects the handler behind the latency.
type Kind string

const (
	// HTTPBin serves github.com/mccutchen/go-httpbin/v2's handler (all
	// endpoints; /anything echoes the query in "args" as lists).
	HTTPBin Kind = "httpbin"
	// Echo serves a minimal /anything that answers the same JSON shape,
	// for measuring how much of a run the server itself costs.
	Echo Kind = "echo"
)

// Server is a running profile API.
type Server struct {
	// URL is the base URL, http://127.0.0.1:port.
	URL string

	srv      *http.Server
	done     chan error
	latency  atomic.Int64 // nanoseconds
	conns    atomic.Int64
	requests atomic.Int64
}

// Start listens on a loopback port and serves kind with the given latency
// added to every request.
func Start(kind Kind, latency time.Duration) (*Server, error) {
	var h http.Handler
	switch kind {
	case HTTPBin, "":
		h = httpbin.New().Handler()
	case Echo:
		h = http.HandlerFunc(echo)
	default:
		return nil, fmt.Errorf("profileapi: unknown server kind %q (want httpbin or echo)", kind)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("profileapi: listen: %w", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), done: make(chan error, 1)}
	s.latency.Store(int64(latency))
	s.srv = &http.Server{
		Handler:           s.wrap(h),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		},
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// SetLatency changes the latency added to each request.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// Counters returns the connections accepted and requests served since the
// last Reset.
func (s *Server) Counters() (conns, requests int64) { return s.conns.Load(), s.requests.Load() }

// Reset zeroes the counters and closes idle connections, so that the next
// run starts from no connection at all.
func (s *Server) Reset() {
	s.srv.SetKeepAlivesEnabled(false) // closes idle connections
	s.srv.SetKeepAlivesEnabled(true)
	s.conns.Store(0)
	s.requests.Store(0)
}

// Close stops the server at once, closing every connection (a graceful
// Shutdown would wait up to 5 s for connections a client dialed but never
// used), and waits for it.
func (s *Server) Close() error {
	err := s.srv.Close()
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

func (s *Server) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if d := time.Duration(s.latency.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if r.URL.Path == "/bulk" {
			bulk(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// MaxBulkIDs is the most ids /bulk answers in one request.
const MaxBulkIDs = 100

// bulk is the bulk profile endpoint, whatever the kind:
// GET /bulk?traveler_id=1,2,3 answers {"profiles":[…]}, for each id an
// object {"traveler_id":"3","args":{"traveler_id":["3"]}}, as /anything
// echoes it, in reverse order (APIs reorder); more than MaxBulkIDs ids
// get 413.
func bulk(w http.ResponseWriter, r *http.Request) {
	ids := strings.Split(r.URL.Query().Get("traveler_id"), ",")
	if len(ids) > MaxBulkIDs {
		http.Error(w, "too many ids", http.StatusRequestEntityTooLarge)
		return
	}
	type entry struct {
		TravelerID string              `json:"traveler_id"`
		Args       map[string][]string `json:"args"`
	}
	out := struct {
		Profiles []entry `json:"profiles"`
	}{Profiles: make([]entry, 0, len(ids))}
	for i := len(ids) - 1; i >= 0; i-- {
		out.Profiles = append(out.Profiles, entry{TravelerID: ids[i], Args: map[string][]string{"traveler_id": {ids[i]}}})
	}
	body, err := json.Marshal(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// echoResponse is the shape of httpbin's /anything answer, less the body
// fields a GET never fills.
type echoResponse struct {
	Args    map[string][]string `json:"args"`
	Headers map[string][]string `json:"headers"`
	Method  string              `json:"method"`
	Origin  string              `json:"origin"`
	URL     string              `json:"url"`
}

func echo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/anything" && !strings.HasPrefix(r.URL.Path, "/anything/") {
		http.NotFound(w, r)
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	body, err := json.Marshal(echoResponse{
		Args:    r.URL.Query(),
		Headers: r.Header,
		Method:  r.Method,
		Origin:  host,
		URL:     "http://" + r.Host + r.URL.RequestURI(),
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	_, _ = w.Write(body)
}
