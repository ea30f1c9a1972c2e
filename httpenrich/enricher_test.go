package httpenrich_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// anything is the part of httpbin's /anything response the tests read.
type anything struct {
	Args    url.Values  `json:"args"`
	Headers http.Header `json:"headers"`
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	JSON    any         `json:"json"`
}

type traveler struct {
	ID   int
	Name string
}

func travelerConfig(base string) httpenrich.Config[traveler, anything, string] {
	return httpenrich.Config[traveler, anything, string]{
		URL: base + "/anything/{id}",
		Request: func(t traveler) (httpenrich.Params, error) {
			return httpenrich.Params{
				Path: map[string]string{"id": strconv.Itoa(t.ID)},
				Query: url.Values{
					"traveler_id":   {strconv.Itoa(t.ID)},
					"traveler_name": {t.Name},
				},
			}, nil
		},
		Validate: func(t traveler, r *httpenrich.Response[anything]) (string, error) {
			if got := r.Body.Args.Get("traveler_id"); got != strconv.Itoa(t.ID) {
				return "", fmt.Errorf("args.traveler_id = %q, want %d", got, t.ID)
			}
			return r.Body.Args.Get("traveler_name"), nil
		},
	}
}

func TestHTTPBinAnything(t *testing.T) {
	t.Parallel()
	srv := newServer(t, httpbin.New())
	e := mustNew(t, travelerConfig(srv.URL))
	got, err := e.Enrich(testCtx(t), traveler{ID: 7, Name: "Traveler 7/a&b=c"})
	if err != nil {
		t.Fatal(err)
	}
	if got != "Traveler 7/a&b=c" {
		t.Errorf("name = %q", got)
	}
}

func TestRequestParts(t *testing.T) {
	t.Parallel()
	var gotURI, gotCT, gotAccept, gotKey string
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotURI, gotCT, gotAccept, gotKey = r.RequestURI, r.Header.Get("Content-Type"), r.Header.Get("Accept"), r.Header.Get("X-Key")
		httpbin.New().ServeHTTP(w, r)
	}))
	e := mustNew(t, httpenrich.Config[string, anything, anything]{
		URL:    srv.URL + "/anything/{id}/x?fixed=1&p={p}",
		Method: http.MethodPost,
		Header: http.Header{"X-Key": {"static"}},
		Request: func(s string) (httpenrich.Params, error) {
			return httpenrich.Params{
				Path:   map[string]string{"id": s, "p": "a b&c"},
				Query:  url.Values{"name": {"Traveler 1"}, "plus": {"1+1"}},
				Header: http.Header{"x-key": {"item"}},
				Body:   map[string]string{"id": s},
			}, nil
		},
	})
	res, err := e.Enrich(testCtx(t), "a/b c")
	if err != nil {
		t.Fatal(err)
	}
	const wantURI = "/anything/a%2Fb%20c/x?fixed=1&p=a%20b%26c&name=Traveler%201&plus=1%2B1"
	if gotURI != wantURI {
		t.Errorf("request URI = %s, want %s", gotURI, wantURI)
	}
	if gotCT != "application/json" || gotAccept != "application/json" || gotKey != "item" {
		t.Errorf("headers: Content-Type %q, Accept %q, X-Key %q", gotCT, gotAccept, gotKey)
	}
	if res.Method != http.MethodPost || res.Args.Get("p") != "a b&c" || res.Args.Get("plus") != "1+1" {
		t.Errorf("echo: %+v", res)
	}
	if m, _ := res.JSON.(map[string]any); m["id"] != "a/b c" {
		t.Errorf("echoed JSON body = %v", res.JSON)
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	ok := body(200, `{"ok":true}`)
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name     string
		steps    []http.HandlerFunc
		attempts int // 0: DefaultMaxAttempts
		wantErr  bool
		want     httpenrich.Reason
		class    batchenrich.Class
		status   int
		requests int
	}{
		{name: "503 then ok", steps: []http.HandlerFunc{status(503), ok}, requests: 2},
		{name: "500 twice then ok", steps: []http.HandlerFunc{status(500), status(500), ok}, requests: 3},
		{name: "408 then ok", steps: []http.HandlerFunc{status(408), ok}, requests: 2},
		{name: "429 retry-after seconds", steps: []http.HandlerFunc{status(429, "Retry-After", "1"), ok}, requests: 2},
		{name: "429 retry-after date", steps: []http.HandlerFunc{status(429, "Retry-After", future), ok}, requests: 2},
		{name: "429 retry-after absurd", steps: []http.HandlerFunc{status(429, "Retry-After", "999999999999999999999999"), ok}, requests: 2},
		{name: "reset then ok", steps: []http.HandlerFunc{reset, ok}, requests: 2},
		{name: "503 always", steps: []http.HandlerFunc{status(503)}, attempts: 3, wantErr: true,
			want: httpenrich.ReasonStatus, class: batchenrich.ClassTransient, status: 503, requests: 3},
		{name: "reset always", steps: []http.HandlerFunc{reset}, attempts: 2, wantErr: true,
			want: httpenrich.ReasonTransport, class: batchenrich.ClassTransient, status: 0, requests: 2},
		{name: "400 not retried", steps: []http.HandlerFunc{status(400), ok}, wantErr: true,
			want: httpenrich.ReasonStatus, class: batchenrich.ClassPermanent, status: 400, requests: 1},
		{name: "404 not retried", steps: []http.HandlerFunc{body(404, `{"error":"no"}`), ok}, wantErr: true,
			want: httpenrich.ReasonStatus, class: batchenrich.ClassPermanent, status: 404, requests: 1},
		{name: "501 not retried", steps: []http.HandlerFunc{status(501), ok}, wantErr: true,
			want: httpenrich.ReasonStatus, class: batchenrich.ClassPermanent, status: 501, requests: 1},
		{name: "malformed JSON", steps: []http.HandlerFunc{body(200, `{"ok":`), ok}, wantErr: true,
			want: httpenrich.ReasonMalformed, class: batchenrich.ClassPermanent, status: 200, requests: 1},
		{name: "too large", steps: []http.HandlerFunc{body(200, `{"pad":"`+strings.Repeat("x", 2000)+`"}`), ok}, wantErr: true,
			want: httpenrich.ReasonTooLarge, class: batchenrich.ClassPermanent, status: 200, requests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, script(tt.steps...))
			e := mustNew(t, fast(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
				URL:          srv.URL + "/x",
				MaxAttempts:  tt.attempts,
				MaxBodyBytes: 1024,
				// A wait above the cap would stall this test: the cap
				// is what keeps Retry-After from doing so.
				RetryWaitMax: 10 * time.Millisecond,
			}))
			got, err := e.Enrich(testCtx(t), 1)
			if n := int(srv.requests.Load()); n != tt.requests {
				t.Errorf("server saw %d requests, want %d", n, tt.requests)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Enrich: %v", err)
				}
				if string(got) != `{"ok":true}` {
					t.Errorf("result = %s", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Enrich succeeded with %s, want an error", got)
			}
			he := asError(t, err)
			if he.Reason != tt.want || he.Status != tt.status || he.Attempts != tt.requests {
				t.Errorf("got Reason %q Status %d Attempts %d, want %q %d %d (%v)",
					he.Reason, he.Status, he.Attempts, tt.want, tt.status, tt.requests, err)
			}
			if c := batchenrich.Classify(err); c != tt.class {
				t.Errorf("Classify = %v, want %v", c, tt.class)
			}
			if strings.Contains(err.Error(), "?") {
				t.Errorf("error message shows the query: %v", err)
			}
		})
	}
}

// TestRetryAfterCapped checks the waits asked of Backoff: Retry-After is
// honoured below the cap and capped above it.
func TestRetryAfterCapped(t *testing.T) {
	t.Parallel()
	srv := newServer(t, script(
		status(429, "Retry-After", "0"),
		status(503, "Retry-After", "86400"),
		status(429, "Retry-After", time.Now().Add(48*time.Hour).UTC().Format(http.TimeFormat)),
		body(200, `{}`),
	))
	var waits []time.Duration
	e := mustNew(t, httpenrich.Config[int, json.RawMessage, json.RawMessage]{
		URL:          srv.URL,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 20 * time.Millisecond,
		Backoff: func(min, max time.Duration, n int, resp *http.Response) time.Duration {
			d := httpenrich.DefaultBackoff(min, max, n, resp)
			waits = append(waits, d)
			return d
		},
	})
	if _, err := e.Enrich(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{0, 20 * time.Millisecond, 20 * time.Millisecond}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", waits, want)
	}
}

// TestBackoffOfCallerCapped: even go-retryablehttp's uncapped
// DefaultBackoff (its issue #247) is capped.
func TestBackoffOfCallerCapped(t *testing.T) {
	t.Parallel()
	srv := newServer(t, script(status(429, "Retry-After", "3600"), body(200, `{}`)))
	e := mustNew(t, httpenrich.Config[int, json.RawMessage, json.RawMessage]{
		URL:          srv.URL,
		RetryWaitMax: time.Millisecond,
		Backoff:      retryablehttpDefaultBackoff,
	})
	if _, err := e.Enrich(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
}

// TestPolicySeesItsOwnRequest checks that a caller's CheckRetry or
// Backoff, which see the attempt's request as resp.Request, see the item's
// own: a header one sets there for the item's retry is not sent with
// another item's request.
func TestPolicySeesItsOwnRequest(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var marked []string // the ids whose request came with X-Retry-Of
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, of := r.URL.Query().Get("id"), r.Header.Get("X-Retry-Of")
		if of != "" {
			mu.Lock()
			marked = append(marked, id)
			mu.Unlock()
		}
		if id == "1" && of == "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{}`)
	}))
	mark := func(resp *http.Response) {
		if resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
			resp.Request.Header.Set("X-Retry-Of", resp.Request.URL.Query().Get("id"))
		}
	}
	check := func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		mark(resp)
		return httpenrich.DefaultCheckRetry(ctx, resp, err)
	}
	backoff := func(min, max time.Duration, n int, resp *http.Response) time.Duration {
		mark(resp)
		return min
	}
	for _, tc := range []struct {
		name string
		set  func(*httpenrich.Config[int, json.RawMessage, json.RawMessage])
	}{
		{"Config.CheckRetry", func(c *httpenrich.Config[int, json.RawMessage, json.RawMessage]) { c.CheckRetry = check }},
		{"Config.Backoff", func(c *httpenrich.Config[int, json.RawMessage, json.RawMessage]) { c.Backoff = backoff }},
		{"Client.CheckRetry", func(c *httpenrich.Config[int, json.RawMessage, json.RawMessage]) {
			c.Client = &retryablehttp.Client{CheckRetry: check}
		}},
		{"Client.Backoff", func(c *httpenrich.Config[int, json.RawMessage, json.RawMessage]) {
			c.Client = &retryablehttp.Client{Backoff: backoff}
		}},
	} {
		mu.Lock()
		marked = nil
		mu.Unlock()
		cfg := httpenrich.Config[int, json.RawMessage, json.RawMessage]{
			URL: srv.URL + "/p",
			Request: func(id int) (httpenrich.Params, error) {
				return httpenrich.Params{Query: url.Values{"id": {strconv.Itoa(id)}}}, nil
			},
			MaxAttempts:  2,
			RetryWaitMin: time.Millisecond,
			RetryWaitMax: time.Millisecond,
		}
		tc.set(&cfg)
		e := mustNew(t, cfg)
		for id := 1; id <= 2; id++ {
			if _, err := e.Enrich(testCtx(t), id); err != nil {
				t.Fatalf("%s: item %d: %v", tc.name, id, err)
			}
		}
		mu.Lock()
		if fmt.Sprint(marked) != "[1]" {
			t.Errorf("%s: requests with the header set for item 1's retry: ids %v, want [1]", tc.name, marked)
		}
		mu.Unlock()
	}
}

// TestAttemptTimeout: an attempt whose headers or body do not come within
// AttemptTimeout times out and is retried; the error reports the status of
// the last attempt's response, or 0 when that attempt got none. Whether
// the stalled body's headers arrive within 50 ms is the machine's to
// decide, so the status wanted follows what the last attempt received (a
// transport under the Enricher's sees the headers), not a schedule.
func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	slowBody := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"a":`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	tests := []struct {
		name   string
		step   http.HandlerFunc
		status int // with the last attempt's headers received
	}{
		{"no headers", hang, 0},
		{"stalled body", slowBody, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, script(tt.step))
			tr := &headersSeen{base: http.DefaultTransport.(*http.Transport).Clone()}
			t.Cleanup(tr.base.CloseIdleConnections)
			e := mustNew(t, fast(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
				URL:            srv.URL,
				Client:         &retryablehttp.Client{HTTPClient: &http.Client{Transport: tr}},
				AttemptTimeout: 50 * time.Millisecond,
				MaxAttempts:    2,
			}))
			_, err := e.Enrich(testCtx(t), 1)
			he := asError(t, err)
			want := 0
			if tr.lastGotHeaders() {
				want = tt.status
			} else if tt.status != 0 {
				t.Logf("the last attempt timed out before its headers came")
			}
			if he.Reason != httpenrich.ReasonTimeout || he.Attempts != 2 || he.Status != want {
				t.Errorf("got %q, %d attempts, status %d; want timeout, 2, %d (%v)", he.Reason, he.Attempts, he.Status, want, err)
			}
			if c := batchenrich.Classify(err); c != batchenrich.ClassTransient {
				t.Errorf("Classify = %v", c)
			}
		})
	}
}

// headersSeen is a transport that records whether the last request it
// sent got its response headers.
type headersSeen struct {
	base *http.Transport
	mu   sync.Mutex
	got  bool
}

func (h *headersSeen) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.got = false
	h.mu.Unlock()
	resp, err := h.base.RoundTrip(r)
	h.mu.Lock()
	h.got = err == nil
	h.mu.Unlock()
	return resp, err
}

func (h *headersSeen) lastGotHeaders() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

// TestSlowBodyWithinTimeout: a body that trickles in, but within the
// attempt's timeout, is read whole.
func TestSlowBodyWithinTimeout(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		for _, part := range []string{`{"a"`, `:`, `[1,`, `2]}`} {
			_, _ = w.Write([]byte(part))
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}))
	e := mustNew(t, httpenrich.Config[int, map[string][]int, map[string][]int]{URL: srv.URL})
	got, err := e.Enrich(testCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "map[a:[1 2]]" {
		t.Errorf("got %v", got)
	}
}

func TestContextEndStopsRetries(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		w.WriteHeader(503)
	}))
	e := mustNew(t, httpenrich.Config[int, json.RawMessage, json.RawMessage]{
		URL:          srv.URL,
		MaxAttempts:  100,
		RetryWaitMin: time.Hour, // only the cancellation can end this
		RetryWaitMax: time.Hour,
	})
	_, err := e.Enrich(ctx, 1)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if he := asError(t, err); he.Reason != httpenrich.ReasonCanceled {
		t.Errorf("Reason = %q", he.Reason)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	srv := newServer(t, httpbin.New())
	e := mustNew(t, travelerConfig(srv.URL))
	ctx := testCtx(t)

	// A permanent rejection, with the status and reason the travelers
	// example stores.
	cfg := travelerConfig(srv.URL)
	cfg.Request = func(t traveler) (httpenrich.Params, error) {
		return httpenrich.Params{Path: map[string]string{"id": "1"}, Query: url.Values{"traveler_id": {"wrong"}}}, nil
	}
	bad := mustNew(t, cfg)
	_, err := bad.Enrich(ctx, traveler{ID: 3})
	he := asError(t, err)
	if he.Status != 200 || he.Reason != httpenrich.ReasonInvalid || !strings.Contains(err.Error(), `args.traveler_id = "wrong"`) {
		t.Errorf("got %v", err)
	}
	if batchenrich.Classify(err) != batchenrich.ClassPermanent {
		t.Errorf("Classify = %v", batchenrich.Classify(err))
	}

	// Validate's own class wins.
	cfg = travelerConfig(srv.URL)
	cfg.Validate = func(traveler, *httpenrich.Response[anything]) (string, error) {
		return "", batchenrich.Transient(errors.New("not ready"))
	}
	_, err = mustNew(t, cfg).Enrich(ctx, traveler{ID: 3})
	if batchenrich.Classify(err) != batchenrich.ClassTransient {
		t.Errorf("Classify = %v, want transient", batchenrich.Classify(err))
	}

	// A request that cannot be built.
	cfg = travelerConfig(srv.URL)
	cfg.Request = func(traveler) (httpenrich.Params, error) { return httpenrich.Params{}, nil }
	_, err = mustNew(t, cfg).Enrich(ctx, traveler{ID: 3})
	if he := asError(t, err); he.Reason != httpenrich.ReasonRequest || he.Attempts != 0 {
		t.Errorf("got %v", err)
	}
	if _, err := e.Enrich(ctx, traveler{ID: 4, Name: "ok"}); err != nil {
		t.Error(err)
	}
}

func TestAcceptStatus(t *testing.T) {
	t.Parallel()
	srv := newServer(t, script(body(404, `{"error":"no such traveler"}`)))
	e := mustNew(t, httpenrich.Config[int, map[string]string, string]{
		URL:          srv.URL,
		AcceptStatus: func(code int) bool { return code == 200 || code == 404 },
		Validate: func(_ int, r *httpenrich.Response[map[string]string]) (string, error) {
			return strconv.Itoa(r.Status) + " " + r.Body["error"], nil
		},
	})
	got, err := e.Enrich(testCtx(t), 1)
	if err != nil || got != "404 no such traveler" {
		t.Errorf("got %q, %v", got, err)
	}
}
