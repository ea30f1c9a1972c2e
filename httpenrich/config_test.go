package httpenrich_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/hashicorp/go-retryablehttp"
)

type raw = httpenrich.Config[int, json.RawMessage, json.RawMessage]

func TestNewValidation(t *testing.T) {
	t.Parallel()
	const u = "http://127.0.0.1:1/x"
	tests := []struct {
		field string
		cfg   raw
	}{
		{"URL", raw{}},
		{"URL", raw{URL: "127.0.0.1/x"}},
		{"URL", raw{URL: "ftp://h/x"}},
		{"URL", raw{URL: "http://{host}/x"}},
		{"URL", raw{URL: "http://h/{id"}},
		{"URL", raw{URL: "http://h/{}"}},
		{"URL", raw{URL: "http://h/x}"}},
		{"URL", raw{URL: "http://h/x#frag"}},
		{"URL", raw{URL: "http://h/{a b}"}},
		{"Request", raw{URL: "http://h/{id}"}},
		{"Method", raw{URL: u, Method: "GE T"}},
		{"Header", raw{URL: u, Header: http.Header{"Bad Name": {"v"}}}},
		{"Header", raw{URL: u, Header: http.Header{"X": {"a\r\nb"}}}},
		{"AttemptTimeout", raw{URL: u, AttemptTimeout: -1}},
		{"MaxAttempts", raw{URL: u, MaxAttempts: -1}},
		{"RetryWaitMin", raw{URL: u, RetryWaitMin: -1}},
		{"RetryWaitMax", raw{URL: u, RetryWaitMax: -1}},
		{"RetryWaitMin", raw{URL: u, RetryWaitMin: time.Second, RetryWaitMax: time.Millisecond}},
		{"MaxBodyBytes", raw{URL: u, MaxBodyBytes: -1}},
		{"MaxBodyBytes", raw{URL: u, MaxBodyBytes: math.MaxInt64}},
		{"RateLimit", raw{URL: u, RateLimit: -1}},
		{"RateLimit", raw{URL: u, RateLimit: math.NaN()}},
		{"RateLimit", raw{URL: u, RateLimit: math.Inf(1)}},
		{"RateBurst", raw{URL: u, RateLimit: 1, RateBurst: -1}},
		{"RateBurst", raw{URL: u, RateBurst: 2}},
		{"Pool.MaxConnections", raw{URL: u, Pool: httpenrich.Pool{MaxConnections: -1}}},
		{"Pool.MaxKeepAliveConnections", raw{URL: u, Pool: httpenrich.Pool{MaxKeepAliveConnections: -1}}},
		{"Pool.KeepAliveExpiry", raw{URL: u, Pool: httpenrich.Pool{KeepAliveExpiry: -1}}},
		{"Pool", raw{URL: u, Client: retryablehttp.NewClient(), Pool: httpenrich.Pool{MaxConnections: 3}}},
		{"Client.RetryMax", raw{URL: u, Client: &retryablehttp.Client{RetryMax: -1}}},
		{"Client.Logger", raw{URL: u, Client: &retryablehttp.Client{Logger: "stderr"}}},
	}
	for _, tt := range tests {
		e, err := httpenrich.New(tt.cfg)
		var oe *batchenrich.ConfigError
		if !errors.As(err, &oe) || oe.Package != "httpenrich" || oe.Field != tt.field || !errors.Is(err, batchenrich.ErrInvalidConfig) ||
			!strings.HasPrefix(err.Error(), "httpenrich: invalid "+tt.field+": ") {
			t.Errorf("%+v: got %v, want httpenrich's ConfigError for %s", tt.cfg, err, tt.field)
		}
		if e != nil {
			t.Errorf("%+v: non-nil Enricher with an error", tt.cfg)
		}
	}

	// Validate may only be left out when the body is the result.
	_, err := httpenrich.New(httpenrich.Config[int, json.RawMessage, string]{URL: u})
	var oe *batchenrich.ConfigError
	if !errors.As(err, &oe) || oe.Field != "Validate" {
		t.Errorf("missing Validate: got %v", err)
	}
}

// TestZeroClient: a zero retryablehttp.Client panics in go-retryablehttp;
// here it means "the defaults".
func TestZeroClient(t *testing.T) {
	t.Parallel()
	srv := newServer(t, script(status(503), body(200, `{"ok":1}`)))
	zero := &retryablehttp.Client{RetryMax: 1}
	e := mustNew(t, fast(raw{URL: srv.URL, Client: zero}))
	if _, err := e.Enrich(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(zero, &retryablehttp.Client{RetryMax: 1}) {
		t.Errorf("the caller's client was modified: %+v", zero)
	}
}

// TestClientNotModified: the caller's client's transport and policy are
// used, and the client is left as it was.
func TestClientNotModified(t *testing.T) {
	t.Parallel()
	srv := newServer(t, script(status(500), status(500), body(200, `{}`)))
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	var attempts []int
	checks := 0
	c := &retryablehttp.Client{
		HTTPClient:     &http.Client{Transport: transport},
		RetryMax:       2,
		RetryWaitMin:   time.Millisecond,
		RetryWaitMax:   time.Millisecond,
		RequestLogHook: func(_ retryablehttp.Logger, _ *http.Request, n int) { attempts = append(attempts, n) },
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			checks++
			return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
		},
	}
	hc, tr := c.HTTPClient, c.HTTPClient.Transport
	e := mustNew(t, raw{URL: srv.URL, Client: c})
	var pool poolTrace
	if _, err := e.Enrich(pool.context(testCtx(t)), 1); err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 3 || checks < 3 {
		t.Errorf("hook saw attempts %v, CheckRetry called %d times", attempts, checks)
	}
	if c.HTTPClient != hc || c.HTTPClient.Transport != tr || c.ErrorHandler != nil || c.Backoff != nil || c.Logger != nil || c.RetryMax != 2 {
		t.Errorf("the caller's client was modified: %+v", c)
	}
	pool.check(t, srv, 1) // one connection through the caller's transport
}

func TestLogger(t *testing.T) {
	t.Parallel()
	srv := newServer(t, script(status(503), body(200, `{}`)))
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := mustNew(t, fast(raw{URL: srv.URL, Logger: log}))
	if _, err := e.Enrich(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "httpenrich: performing request") || !strings.Contains(out, "httpenrich: retrying request") {
		t.Errorf("log:\n%s", out)
	}
}

func TestPoolFromEnv(t *testing.T) {
	// t.Setenv: not parallel.
	vars := []string{httpenrich.EnvMaxConnections, httpenrich.EnvMaxKeepAliveConnections,
		httpenrich.EnvKeepAliveExpirySeconds, httpenrich.EnvEnableHTTP2}
	tests := []struct {
		env     []string // values in the order of vars
		want    httpenrich.Pool
		badVar  string
		comment string
	}{
		{env: []string{"", "", "", ""}, want: httpenrich.Pool{}},
		{env: []string{"10", " 5 ", "1.5", "false"}, want: httpenrich.Pool{MaxConnections: 10, MaxKeepAliveConnections: 5, KeepAliveExpiry: 1500 * time.Millisecond, DisableHTTP2: true}},
		{env: []string{"", "", "30", "1"}, want: httpenrich.Pool{KeepAliveExpiry: 30 * time.Second}},
		{env: []string{"ten", "", "", ""}, badVar: httpenrich.EnvMaxConnections},
		{env: []string{"0", "", "", ""}, badVar: httpenrich.EnvMaxConnections},
		{env: []string{"-3", "", "", ""}, badVar: httpenrich.EnvMaxConnections},
		{env: []string{"99999999999999999999", "", "", ""}, badVar: httpenrich.EnvMaxConnections},
		{env: []string{"", "1.5", "", ""}, badVar: httpenrich.EnvMaxKeepAliveConnections},
		{env: []string{"", "", "NaN", ""}, badVar: httpenrich.EnvKeepAliveExpirySeconds},
		{env: []string{"", "", "-1", ""}, badVar: httpenrich.EnvKeepAliveExpirySeconds},
		{env: []string{"", "", "1e300", ""}, badVar: httpenrich.EnvKeepAliveExpirySeconds},
		{env: []string{"", "", "1e-12", ""}, badVar: httpenrich.EnvKeepAliveExpirySeconds},
		{env: []string{"", "", "", "yes please"}, badVar: httpenrich.EnvEnableHTTP2},
	}
	for _, tt := range tests {
		for i, v := range vars {
			t.Setenv(v, tt.env[i])
		}
		got, err := httpenrich.PoolFromEnv()
		if tt.badVar != "" {
			var oe *batchenrich.ConfigError
			if !errors.As(err, &oe) || oe.Field != tt.badVar || !strings.Contains(err.Error(), tt.badVar) {
				t.Errorf("%q: got %v, want an error naming %s", tt.env, err, tt.badVar)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: got %+v, %v; want %+v", tt.env, got, err, tt.want)
		}
	}
}

func TestNewTransport(t *testing.T) {
	t.Parallel()
	tr, err := httpenrich.NewTransport(httpenrich.Pool{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.MaxConnsPerHost != httpenrich.DefaultMaxConnections ||
		tr.MaxIdleConns != httpenrich.DefaultMaxKeepAliveConnections ||
		tr.MaxIdleConnsPerHost != httpenrich.DefaultMaxKeepAliveConnections ||
		tr.IdleConnTimeout != httpenrich.DefaultKeepAliveExpiry || !tr.ForceAttemptHTTP2 {
		t.Errorf("defaults not applied: %+v", tr)
	}
	tr, err = httpenrich.NewTransport(httpenrich.Pool{DisableHTTP2: true}.ForConcurrency(300))
	if err != nil {
		t.Fatal(err)
	}
	if tr.MaxConnsPerHost != 300 || tr.MaxIdleConnsPerHost != 300 || tr.ForceAttemptHTTP2 || tr.Protocols.HTTP2() {
		t.Errorf("ForConcurrency(300), no HTTP/2: %+v", tr)
	}
	if _, err := httpenrich.NewTransport(httpenrich.Pool{MaxConnections: -1}); err == nil {
		t.Error("negative MaxConnections accepted")
	}
}

func TestDefaultBackoff(t *testing.T) {
	t.Parallel()
	const lo, hi = 100 * time.Millisecond, 2 * time.Second
	for n := range 10 {
		full := lo << n
		if full > hi {
			full = hi
		}
		for range 50 {
			d := httpenrich.DefaultBackoff(lo, hi, n, nil)
			if d < full/2 || d < lo || d > full {
				t.Fatalf("attempt %d: %v not in [%v, %v]", n, d, max(full/2, lo), full)
			}
		}
	}
	if d := httpenrich.DefaultBackoff(lo, hi, 1000, nil); d < hi/2 || d > hi {
		t.Errorf("huge attempt number: %v", d)
	}
	resp := func(v string) *http.Response {
		return &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {v}}}
	}
	for v, want := range map[string]time.Duration{
		"1":                             time.Second,
		"0":                             0,
		"3600":                          hi,
		"99999999999999999999999999999": hi,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0, // in the past
	} {
		if d := httpenrich.DefaultBackoff(lo, hi, 0, resp(v)); d != want {
			t.Errorf("Retry-After %q: %v, want %v", v, d, want)
		}
	}
	soon := time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
	if d := httpenrich.DefaultBackoff(lo, 2*time.Minute, 0, resp(soon)); d < 58*time.Second || d > time.Minute {
		t.Errorf("Retry-After in a minute: %v", d)
	}
}

func TestDefaultCheckRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for code, want := range map[int]bool{200: false, 301: false, 400: false, 401: false, 404: false, 408: true,
		409: false, 429: true, 500: true, 501: false, 502: true, 503: true, 504: true, 599: true} {
		got, err := httpenrich.DefaultCheckRetry(ctx, &http.Response{StatusCode: code}, nil)
		if got != want || err != nil {
			t.Errorf("status %d: %v, %v; want %v", code, got, err, want)
		}
	}
	if got, _ := httpenrich.DefaultCheckRetry(ctx, nil, errors.New("connection reset")); !got {
		t.Error("transport error not retried")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got, err := httpenrich.DefaultCheckRetry(cctx, &http.Response{StatusCode: 503}, nil); got || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, %v", got, err)
	}
}
