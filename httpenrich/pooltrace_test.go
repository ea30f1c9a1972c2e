package httpenrich_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/batchenrich/batchenrich/httpenrich"
)

// poolTrace follows, through an httptrace.ClientTrace in the requests'
// context, what net/http does with the connection of each attempt.
//
// A test cannot bound the connections a run opens by its concurrency
// alone: net/http drops a healthy keep-alive connection instead of pooling
// it when the goroutine that wrote the request has not reported so within
// 50ms of the response being read to its end (net/http's transport.go,
// persistConn.wroteRequest); on a starved CPU that happens, and a later
// request dials a replacement. What is exact is this: with
// MaxConnections n, a new connection beyond the first n replaces one that
// was closed, and net/http tells (PutIdleConn) which attempts' connections
// went back to the pool. So the tests bound the connections by n plus the
// attempts whose connection was not pooled, check that the pool refused
// none, and TestBodiesReadToTheEnd checks that the Enricher reads every
// body to its end, without which net/http would not pool any.
type poolTrace struct {
	attempts atomic.Int64 // connections got for an attempt, new or reused
	pooled   atomic.Int64 // of them, put back in the pool afterwards
	mu       sync.Mutex
	refused  []error // PutIdleConn errors: the pool did not take one back
}

// context returns ctx with p's ClientTrace.
func (p *poolTrace) context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { p.attempts.Add(1) },
		PutIdleConn: func(err error) {
			if err == nil {
				p.pooled.Add(1)
				return
			}
			p.mu.Lock()
			p.refused = append(p.refused, err)
			p.mu.Unlock()
		},
	})
}

// check fails t unless srv saw at most max new connections beyond those
// replacing a connection net/http did not pool, and the pool refused none.
// Call it after the requests are done: net/http pools a connection before
// the body's reader sees its end.
func (p *poolTrace) check(t *testing.T, srv *server, max int) {
	t.Helper()
	p.mu.Lock()
	refused := p.refused
	p.mu.Unlock()
	attempts, pooled := p.attempts.Load(), p.pooled.Load()
	if len(refused) > 0 {
		t.Errorf("the pool refused %d connections, the first: %v", len(refused), refused[0])
	}
	if n, lost := srv.conns.Load(), attempts-pooled; n > int64(max)+lost || n < 1 {
		t.Errorf("server saw %d new connections for %d requests (%d attempts, %d of their connections not pooled), want 1..%d+%d",
			n, srv.requests.Load(), attempts, lost, max, lost)
	}
	t.Logf("%d requests over %d connections (%d attempts, %d connections not pooled)",
		srv.requests.Load(), srv.conns.Load(), attempts, attempts-pooled)
}

// eofWatch is a RoundTripper that records, for each response, whether its
// body was read to its end before it was closed.
type eofWatch struct {
	base http.RoundTripper
	mu   sync.Mutex
	open int      // bodies not closed yet
	cut  []string // bodies closed before their end
	n    int      // bodies closed
}

func (w *eofWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := w.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.open++
	w.mu.Unlock()
	resp.Body = &eofBody{ReadCloser: resp.Body, w: w, what: req.URL.Path + ": " + resp.Status}
	return resp, nil
}

type eofBody struct {
	io.ReadCloser
	w      *eofWatch
	what   string
	eof    bool
	closed bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

func (b *eofBody) Close() error {
	if !b.closed {
		b.closed = true
		b.w.mu.Lock()
		b.w.open--
		b.w.n++
		if !b.eof {
			b.w.cut = append(b.w.cut, b.what)
		}
		b.w.mu.Unlock()
	}
	return b.ReadCloser.Close()
}

// TestBodiesReadToTheEnd: the Enricher reads every response body to its
// end before closing it, whether the answer is accepted, refused or
// retried, so that net/http can put the connection back in the pool.
func TestBodiesReadToTheEnd(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("/retried", script(status(503), body(200, `{}`)))
	mux.HandleFunc("/404", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such thing", http.StatusNotFound)
	})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"not": json`)) })
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		// 64 KiB of white space after the value: a reader stopping
		// after the JSON value cannot have seen the end of the body.
		w.Write([]byte(`{"a": [1, 2, 3]}` + strings.Repeat(" ", 64<<10)))
	})
	srv := newServer(t, mux)
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	watch := &eofWatch{base: transport}
	e := mustNew(t, httpenrich.Config[string, json.RawMessage, json.RawMessage]{
		URL: srv.URL + "/{path}",
		Request: func(p string) (httpenrich.Params, error) {
			return httpenrich.Params{Path: map[string]string{"path": p}}, nil
		},
		Client: &retryablehttp.Client{
			HTTPClient:   &http.Client{Transport: watch},
			RetryMax:     1,
			RetryWaitMin: time.Millisecond,
			RetryWaitMax: time.Millisecond,
		},
	})
	for _, p := range []string{"ok", "404", "bad", "retried"} {
		_, err := e.Enrich(testCtx(t), p)
		if (err == nil) != (p == "ok" || p == "retried") {
			t.Errorf("%s: %v", p, err)
		}
	}
	watch.mu.Lock()
	defer watch.mu.Unlock()
	if watch.open != 0 || watch.n != 5 || len(watch.cut) > 0 {
		t.Errorf("%d bodies closed, %d left open; closed before their end: %v", watch.n, watch.open, watch.cut)
	}
}
