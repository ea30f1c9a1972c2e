package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// TestAdaptive: with -adaptive, against an API admitting 5 calls at once
// and answering 429 beyond, a run with -concurrency 40 stores every row and
// reports the API's limit in its summary.
func TestAdaptive(t *testing.T) {
	bin := httpbin.New()
	var inflight, refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inflight.Add(1) > 5 {
			inflight.Add(-1)
			refused.Add(1)
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		defer inflight.Add(-1)
		time.Sleep(time.Millisecond)
		bin.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	dsn := filepath.Join(t.TempDir(), "travelers.db")
	code, stdout, stderr := program(t, context.Background(), "-dsn", dsn, "-profile-url", srv.URL+"/anything",
		"-seed-rows", "300", "-batch-size", "100", "-concurrency", "40", "-http-retries", "9", "-adaptive", "-json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	s := summaryOf(t, stdout)
	if s.Data.ValidRows != 300 || !s.Configured.Adaptive {
		t.Fatalf("summary = %+v", s)
	}
	if len(s.Execution.Limits) != 1 {
		t.Fatalf("limits = %+v, want the API's", s.Execution.Limits)
	}
	l := s.Execution.Limits[0]
	if l.Max > 40 || l.Min < 1 || (refused.Load() > 0 && l.Decreases == 0) {
		t.Errorf("limit %+v (%d calls refused)", l, refused.Load())
	}
	if rows := limitRows(s.Execution.Limits); len(rows) != 1 || rows[0][0] != "limit "+l.Upstream {
		t.Errorf("table rows %v", rows)
	}
}

// TestProgressThrottlesLimitEvents: a terminal's progress line is not
// redrawn for every change of the limit (hundreds per second).
func TestProgressThrottlesLimitEvents(t *testing.T) {
	var out strings.Builder
	p := newProgress(&out, 10, 1000, 0)
	p.tty = true
	events := make(chan event, 1000)
	for i := range 1000 {
		events <- event{Kind: evLimitChanged, Limit: &batchenrich.UpstreamLimit{Upstream: "h", From: i, To: i + 1}}
	}
	close(events)
	p.follow(events)
	if n := strings.Count(out.String(), "\r"); n > 100 {
		t.Errorf("%d redraws for 1000 limit events", n)
	}
}
