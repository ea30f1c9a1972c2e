package httpenrich

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"github.com/hashicorp/go-retryablehttp"
)

// TestNewRequestURL holds the request URL built from a fixed prefix (no
// parse per item) to the one net/http builds by parsing the whole expanded
// URL, and the shared header to the one a request would otherwise copy.
func TestNewRequestURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tmpl  string
		path  map[string]string
		query url.Values
		fixed bool
	}{
		{tmpl: "http://h/anything", fixed: true},
		{tmpl: "http://h/anything", query: url.Values{"id": {"1"}, "name": {"a b/c?&#"}}, fixed: true},
		{tmpl: "http://h:/p", fixed: true},
		{tmpl: "http://h:8080", query: url.Values{"a": {"1"}}, fixed: true},
		{tmpl: "https://u:p@h/a%2Fb/", query: url.Values{"a": {""}}, fixed: true},
		{tmpl: "http://H/p?", fixed: true},
		{tmpl: "http://h/p?", query: url.Values{"a": {"1"}}, fixed: true},
		{tmpl: "http://h/p?x=1&y", query: url.Values{"a": {"1", "2"}}, fixed: true},
		{tmpl: "http://h/p?x={x}", path: map[string]string{"x": ""}, fixed: true},
		{tmpl: "http://h/p?x={x}", path: map[string]string{"x": "é?"}, query: url.Values{"b": {"1"}}, fixed: true},
		{tmpl: "http://h/p?x=?", fixed: true},
		{tmpl: "http://h/a/{id}", path: map[string]string{"id": "x y"}, query: url.Values{"a": {"1"}}},
		{tmpl: "http://h/a/{id}?q={id}", path: map[string]string{"id": ".."}},
	}
	for _, tc := range tests {
		cfg := Config[int, json.RawMessage, json.RawMessage]{
			URL: tc.tmpl,
			Request: func(int) (Params, error) {
				return Params{Path: tc.path, Query: tc.query}, nil
			},
		}
		e, err := New(cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
		if got := e.proto != nil; got != tc.fixed {
			t.Errorf("%s: fixed prefix %v, want %v", tc.tmpl, got, tc.fixed)
		}
		if !e.shareHeader {
			t.Errorf("%s: header not shared without a Client", tc.tmpl)
		}
		ctx := context.WithValue(context.Background(), struct{}{}, 1)
		c := &call[json.RawMessage]{}
		req, err := e.newRequest(ctx, c, 1)
		if err != nil {
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
		raw, err := e.tmpl.ExpandQuery(tc.path, tc.query)
		if err != nil {
			t.Fatal(err)
		}
		want, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		want.Header = e.header.Clone()
		if !reflect.DeepEqual(req.URL, want.URL) || req.Host != want.Host || req.URL.String() != want.URL.String() {
			t.Errorf("%s: URL %#v (host %q), want %#v (host %q)", raw, req.URL, req.Host, want.URL, want.Host)
		}
		if req.Method != want.Method || req.Proto != want.Proto || req.ContentLength != want.ContentLength ||
			req.Context() != ctx || !reflect.DeepEqual(req.Header, want.Header) {
			t.Errorf("%s: request %+v, want %+v", raw, req.Request, want.Request)
		}
		if req.GetBody == nil || req.Body != nil {
			t.Errorf("%s: body %v, GetBody set %v: want no body, and a GetBody as NewRequest sets", raw, req.Body, req.GetBody != nil)
		}
	}
}

// TestNewRequestHeaderCopied checks that a request with headers of its own,
// or one a Client's hook may see, gets its own copy of the header.
func TestNewRequestHeaderCopied(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		client *retryablehttp.Client
		header http.Header
	}{
		{name: "Params.Header", header: http.Header{"X-A": {"1"}}},
		{name: "PrepareRetry", client: &retryablehttp.Client{PrepareRetry: func(*http.Request) error { return nil }}},
		{name: "RequestLogHook", client: &retryablehttp.Client{RequestLogHook: func(retryablehttp.Logger, *http.Request, int) {}}},
		{name: "Client.CheckRetry", client: &retryablehttp.Client{CheckRetry: DefaultCheckRetry}},
		{name: "Client.Backoff", client: &retryablehttp.Client{Backoff: DefaultBackoff}},
		{name: "HTTPClient", client: &retryablehttp.Client{HTTPClient: &http.Client{}}},
	} {
		e, err := New(Config[int, json.RawMessage, json.RawMessage]{
			URL:     "http://h/p",
			Client:  tc.client,
			Request: func(int) (Params, error) { return Params{Header: tc.header}, nil },
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		req, err := e.newRequest(context.Background(), &call[json.RawMessage]{}, 1)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		req.Header.Set("X-Written", "1")
		if e.header.Get("X-Written") != "" {
			t.Errorf("%s: the request shares the Enricher's header", tc.name)
		}
	}
}
