package httpenrich_test

import (
	"bytes"
	"context"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/hashicorp/go-retryablehttp"
)

func TestNewRefusesParametersRequestCannotFill(t *testing.T) {
	t.Parallel()
	req := func(int) (httpenrich.Params, error) { return httpenrich.Params{}, nil }
	tests := []struct {
		name  string
		cfg   raw
		field string
		want  string // in the error; "" for no error
	}{
		{"declared and used", raw{URL: "http://h/{id}?q={q}", Request: req, PathParams: []string{"q", "id"}}, "", ""},
		{"nothing declared: New cannot know", raw{URL: "http://h/{x}", Request: req}, "", ""},
		{"no parameters, none declared", raw{URL: "http://h/x", Request: req, PathParams: []string{}}, "", ""},
		{"a parameter not supplied", raw{URL: "http://h/{id}/{x}", Request: req, PathParams: []string{"id"}}, "URL", "parameter {x} is not supplied"},
		{"Request sets none", raw{URL: "http://h/x?k={x}", Request: req, PathParams: []string{}}, "URL", "parameter {x} is not supplied: Request sets no path parameters"},
		{"a declared key not in the URL", raw{URL: "http://h/{id}", Request: req, PathParams: []string{"id", "name"}}, "URL", "parameter {name} is not in the URL template"},
		{"no Request", raw{URL: "http://h/{id}"}, "Request", "required when URL has parameters"},
		{"PathParams without Request", raw{URL: "http://h/x", PathParams: []string{}}, "PathParams", "set without Request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := httpenrich.New(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = e.Close()
				return
			}
			var oe *batchenrich.ConfigError
			if !errors.As(err, &oe) || oe.Field != tt.field || !strings.Contains(oe.Reason, tt.want) {
				t.Fatalf("New = %v, want a ConfigError for %s containing %q", err, tt.field, tt.want)
			}
		})
	}
}

func TestUnusedPathParameterFailsTheItem(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	e := mustNew(t, raw{URL: srv.URL + "/x/{id}", Request: func(n int) (httpenrich.Params, error) {
		return httpenrich.Params{Path: map[string]string{"id": "1", "nmae": "typo"}}, nil
	}})
	_, err := e.Enrich(testCtx(t), 1)
	he := asError(t, err)
	if he.Reason != httpenrich.ReasonRequest || !strings.Contains(err.Error(), "parameter {nmae} is not in the URL template") || requests.Load() != 0 {
		t.Fatalf("got %v after %d requests; want a request error naming {nmae} and no request", err, requests.Load())
	}
}

func TestErrorURLHidesCredentials(t *testing.T) {
	t.Parallel()
	srv := newServer(t, status(http.StatusNotFound))
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("me", "s3cr3t")
	e := mustNew(t, raw{URL: u.String() + "/x?api_key=s3cr3t&q=1", Request: func(int) (httpenrich.Params, error) {
		return httpenrich.Params{Query: url.Values{"Token": {"s3cr3t"}}}, nil
	}})
	_, err := e.Enrich(context.Background(), 1)
	he := asError(t, err)
	if he.Status != 404 || strings.Contains(he.URL, "s3cr3t") || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(he.URL, "q=1") {
		t.Fatalf("URL %q, error %v: the credentials show", he.URL, err)
	}
}

func TestLogRecordsHideCredentials(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("me", "s3cr3t")
	var leveled, printf bytes.Buffer
	cfgs := []raw{
		fast(raw{Logger: slog.New(slog.NewTextHandler(&leveled, &slog.HandlerOptions{Level: slog.LevelDebug}))}),
		fast(raw{Client: &retryablehttp.Client{Logger: log.New(&printf, "", 0)}}),
	}
	for _, cfg := range cfgs {
		cfg.URL = u.String() + "/x?api_key=s3cr3t"
		cfg.MaxAttempts = 2
		cfg.Request = func(int) (httpenrich.Params, error) {
			return httpenrich.Params{Query: url.Values{"Token": {"s3cr3t"}}}, nil
		}
		_, err := mustNew(t, cfg).Enrich(testCtx(t), 1)
		if err == nil {
			t.Fatal("no error from a 503")
		}
	}
	for name, out := range map[string]string{"slog": leveled.String(), "Printf": printf.String()} {
		if !strings.Contains(out, "retrying") || !strings.Contains(out, "api_key=xxxxx") || strings.Contains(out, "s3cr3t") {
			t.Errorf("%s records show a credential, or none was logged:\n%s", name, out)
		}
	}
}
