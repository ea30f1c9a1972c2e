package otelenrich_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/otelenrich"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTransportURLRedacted checks that the url.full of an attempt's span
// shows no credential, through either transport: neither the userinfo nor
// a credential-like query value nor the fragment, while the other query
// parameters stay.
func TestTransportURLRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	tel := newTelemetry(t)
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tel.tp, MeterProvider: tel.mp})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()

	u := strings.Replace(srv.URL, "http://", "http://user:PWSECRET@", 1) +
		"/anything?token=TOKSECRET&jwt=JWTSECRET&X-Amz-Signature=SIGSECRET&traveler_id=7#FRAGSECRET"
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
		want int // client spans
	}{
		{"Transport", tr.Transport(base), 1},
		{"OTelHTTPTransport", tr.OTelHTTPTransport(base), 1},
		{"OTelHTTPTransport/filtered", tr.OTelHTTPTransport(base, otelhttp.WithFilter(func(*http.Request) bool { return false })), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel.spans.Reset()
			ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "parent")
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := (&http.Client{Transport: tc.rt}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			parent.End()

			clients := 0
			for _, s := range tel.spans.GetSpans() {
				for _, a := range s.Attributes {
					v := a.Value.Emit()
					if strings.Contains(v, "SECRET") {
						t.Errorf("span %q: %s = %q shows a secret", s.Name, a.Key, v)
					}
					if a.Key == "url.full" {
						if s.SpanKind != trace.SpanKindClient {
							t.Errorf("span %q (%v) got url.full %q", s.Name, s.SpanKind, v)
						}
						clients++
						want := "/anything?token=xxxxx&jwt=xxxxx&X-Amz-Signature=xxxxx&traveler_id=7#xxxxx"
						if !strings.HasSuffix(v, want) || strings.Contains(v, "@") {
							t.Errorf("url.full = %q, want http://host%s", v, want)
						}
					}
				}
			}
			if clients != tc.want {
				t.Errorf("%d spans with url.full, want %d", clients, tc.want)
			}
		})
	}
}

// attempt is a Transport's round trip in tests: the server, the Tracer on
// an in-memory exporter (spans appear there when they end), and the
// headers the server saw.
type attempt struct {
	tel  *telemetry
	tr   *otelenrich.Tracer
	srv  *httptest.Server
	base *http.Transport
	seen chan http.Header
}

// newAttempt starts a server answering /status/{code} with that status
// and a body; the rest of the path is ignored.
func newAttempt(t *testing.T, sampler sdktrace.Sampler) *attempt {
	t.Helper()
	a := &attempt{tel: &telemetry{spans: tracetest.NewInMemoryExporter()}, seen: make(chan http.Header, 16)}
	a.tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(a.tel.spans), sdktrace.WithSampler(sampler))
	t.Cleanup(func() { _ = a.tel.tp.Shutdown(context.Background()) })
	var err error
	a.tr, err = otelenrich.New(otelenrich.Config{TracerProvider: a.tel.tp, Propagators: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.tr.Close() })
	mux := http.NewServeMux()
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		a.seen <- r.Header.Clone()
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
		fmt.Fprint(w, "the body")
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	a.base = &http.Transport{}
	t.Cleanup(a.base.CloseIdleConnections)
	return a
}

// ended returns the attempt spans ended so far.
func (a *attempt) ended() []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range a.tel.spans.GetSpans() {
		if s.SpanKind == trace.SpanKindClient {
			out = append(out, s)
		}
	}
	return out
}

// TestTransportSpan checks an attempt's span: its name, kind, parent and
// attributes per the HTTP client conventions, its status by the response's
// code, the trace context the server saw, and the caller's request left
// as it was.
func TestTransportSpan(t *testing.T) {
	a := newAttempt(t, sdktrace.AlwaysSample())
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(a.srv.URL, "http://"))
	for _, tc := range []struct {
		method, name string
		code         int
		status       codes.Code
		errorType    string
	}{
		{http.MethodGet, "GET", 200, codes.Unset, ""},
		{http.MethodPost, "POST", 201, codes.Unset, ""},
		{"", "GET", 302, codes.Unset, ""},
		{http.MethodGet, "GET", 404, codes.Error, "404"},
		{http.MethodGet, "GET", 503, codes.Error, "503"},
		{"PURGE", "HTTP", 200, codes.Unset, ""},
	} {
		t.Run(fmt.Sprintf("%s %d", tc.method, tc.code), func(t *testing.T) {
			a.tel.spans.Reset()
			ctx, parent := a.tel.tp.Tracer("test").Start(context.Background(), "parent")
			defer parent.End()
			u := a.srv.URL + "/status/" + strconv.Itoa(tc.code) + "?id=7"
			req, err := http.NewRequestWithContext(ctx, tc.method, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Caller", "yes")
			headers := fmt.Sprint(req.Header)
			resp, err := a.tr.Transport(a.base).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			if got := fmt.Sprint(req.Header); got != headers || req.Context() != ctx {
				t.Errorf("the caller's request was modified: headers %s, were %s", got, headers)
			}
			spans := a.ended()
			if len(spans) != 1 {
				t.Fatalf("%d attempt spans", len(spans))
			}
			s := spans[0]
			if s.Name != tc.name || s.Parent.SpanID() != parent.SpanContext().SpanID() || s.InstrumentationScope.Name != otelenrich.ScopeName {
				t.Errorf("span %q, parent %s, scope %s", s.Name, s.Parent.SpanID(), s.InstrumentationScope.Name)
			}
			method := tc.method
			if method == "" {
				method = "GET"
			}
			want := map[attribute.Key]string{
				"http.request.method":       method,
				"server.address":            host,
				"server.port":               port,
				"url.full":                  u,
				"http.response.status_code": strconv.Itoa(tc.code),
			}
			if tc.name == "HTTP" {
				want["http.request.method"], want["http.request.method_original"] = "_OTHER", tc.method
			}
			if tc.errorType != "" {
				want["error.type"] = tc.errorType
			}
			got := map[attribute.Key]string{}
			for _, kv := range s.Attributes {
				got[kv.Key] = kv.Value.Emit()
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("attributes\n%v, want\n%v", got, want)
			}
			if s.Status.Code != tc.status {
				t.Errorf("status %v, want %v", s.Status, tc.status)
			}
			seen := <-a.seen
			if tp, want := seen.Get("Traceparent"), fmt.Sprintf("00-%s-%s-01", s.SpanContext.TraceID(), s.SpanContext.SpanID()); tp != want {
				t.Errorf("the server saw traceparent %q, want %q", tp, want)
			}
			if seen.Get("X-Caller") != "yes" {
				t.Errorf("the server did not see the caller's header")
			}
		})
	}
}

// TestTransportSpanEnds checks that an attempt's span ends when its body
// is closed unread, when it is read to its end (not closed yet), or when
// the attempt fails without a response, and not before.
func TestTransportSpanEnds(t *testing.T) {
	a := newAttempt(t, sdktrace.AlwaysSample())
	do := func(t *testing.T, rawURL string) (*http.Response, error) {
		t.Helper()
		a.tel.spans.Reset()
		req, err := http.NewRequest(http.MethodGet, rawURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a.tr.Transport(a.base).RoundTrip(req)
	}
	t.Run("close", func(t *testing.T) {
		resp, err := do(t, a.srv.URL+"/status/200")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(a.ended()); n != 0 {
			t.Errorf("%d spans ended before the body was closed", n)
		}
		resp.Body.Close()
		if n := len(a.ended()); n != 1 {
			t.Errorf("%d spans ended after the body was closed", n)
		}
		resp.Body.Close()
		if n := len(a.ended()); n != 1 {
			t.Errorf("%d spans ended after the body was closed twice", n)
		}
	})
	t.Run("EOF", func(t *testing.T) {
		resp, err := do(t, a.srv.URL+"/status/200")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 3)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		if n := len(a.ended()); n != 0 {
			t.Errorf("%d spans ended before the end of the body", n)
		}
		if b, err := io.ReadAll(resp.Body); err != nil || string(buf)+string(b) != "the body" {
			t.Fatalf("body %q, %v", b, err)
		}
		if n := len(a.ended()); n != 1 {
			t.Errorf("%d spans ended at the end of the body", n)
		}
	})
	t.Run("error", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nobody listens there now
		resp, err := do(t, "http://"+addr+"/x?token=SECRET")
		if err == nil {
			resp.Body.Close()
			t.Fatal("no error")
		}
		var op *net.OpError
		if !errors.As(err, &op) {
			t.Errorf("the base transport's error is not returned as it was: %T %v", err, err)
		}
		spans := a.ended()
		if len(spans) != 1 {
			t.Fatalf("%d spans ended after the failed attempt", len(spans))
		}
		s := spans[0]
		et, _ := attr(s.Attributes, "error.type")
		if s.Status.Code != codes.Error || et.AsString() != "net.OpError" || strings.Contains(s.Status.Description, "SECRET") {
			t.Errorf("status %v, error.type %q", s.Status, et.AsString())
		}
		if _, ok := attr(s.Attributes, "http.response.status_code"); ok {
			t.Errorf("a status code without a response")
		}
	})
	t.Run("panic", func(t *testing.T) {
		// A panic in the base transport or the propagators (the Runner
		// makes an item of it) goes on, and ends the attempt's span.
		for _, tc := range []struct {
			name string
			prop propagation.TextMapPropagator
			base http.RoundTripper
		}{
			{"base", nil, roundTripperFunc(func(*http.Request) (*http.Response, error) { panic("in base") })},
			{"propagators", panicPropagator{}, a.base},
		} {
			t.Run(tc.name, func(t *testing.T) {
				spans := tracetest.NewInMemoryExporter()
				tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
				defer tp.Shutdown(context.Background())
				tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tp, Propagators: tc.prop})
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Close()
				req, err := http.NewRequest(http.MethodGet, a.srv.URL+"/status/200", nil)
				if err != nil {
					t.Fatal(err)
				}
				func() {
					defer func() {
						if p := recover(); p == nil {
							t.Error("the panic was swallowed")
						}
					}()
					resp, err := tr.Transport(tc.base).RoundTrip(req)
					if err == nil {
						resp.Body.Close()
					}
				}()
				s := spans.GetSpans()
				if len(s) != 1 {
					t.Fatalf("%d spans ended, want the attempt's", len(s))
				}
				if et, _ := attr(s[0].Attributes, "error.type"); s[0].Status.Code != codes.Error || et.AsString() != "panic" {
					t.Errorf("span status %v, error.type %q; want Error and panic", s[0].Status, et.AsString())
				}
			})
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.srv.URL+"/status/200", nil)
		if err != nil {
			t.Fatal(err)
		}
		a.tel.spans.Reset()
		if resp, err := a.tr.Transport(a.base).RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Fatal("no error")
		}
		spans := a.ended()
		if len(spans) != 1 {
			t.Fatalf("%d spans ended", len(spans))
		}
		if et, _ := attr(spans[0].Attributes, "error.type"); et.AsString() != "context.Canceled" {
			t.Errorf("error.type %q", et.AsString())
		}
	})
}

// TestTransportResendCount checks that the attempts of one item after
// the first carry http.request.resend_count, and those outside an item
// none.
func TestTransportResendCount(t *testing.T) {
	a := newAttempt(t, sdktrace.AlwaysSample())
	rt := a.tr.Transport(a.base)
	get := func(ctx context.Context) { roundTrip(t, ctx, rt, a.srv.URL+"/status/500") }
	get(context.Background())
	item := a.tr.TraceItemStart(context.Background(), batchenrich.TraceItem{Batch: 1})
	for range 3 {
		get(item)
	}
	a.tr.TraceItemEnd(item, batchenrich.TraceItem{Batch: 1})
	var got []string
	for _, s := range a.ended() {
		v, ok := attr(s.Attributes, "http.request.resend_count")
		got = append(got, fmt.Sprint(v.AsInt64(), ok))
	}
	if fmt.Sprint(got) != "[0 false 0 false 1 true 2 true]" {
		t.Errorf("resend counts = %v", got)
	}
}

// TestTransportNotSampled checks that an attempt whose span is not
// sampled still propagates the trace context (unsampled), and hands the
// response body back as it came.
func TestTransportNotSampled(t *testing.T) {
	a := newAttempt(t, sdktrace.NeverSample())
	body := &countingBody{ReadCloser: io.NopCloser(strings.NewReader("x"))}
	rt := a.tr.Transport(roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		a.seen <- req.Header
		return &http.Response{StatusCode: 200, Body: body, Request: req}, nil
	}))
	req, err := http.NewRequest(http.MethodGet, "http://api.example/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body != body {
		t.Errorf("the body of an unsampled attempt is wrapped: %T", resp.Body)
	}
	resp.Body.Close()
	if tp := (<-a.seen).Get("Traceparent"); !strings.HasPrefix(tp, "00-") || !strings.HasSuffix(tp, "-00") {
		t.Errorf("traceparent %q, want an unsampled one", tp)
	}
	if len(req.Header) != 0 {
		t.Errorf("the caller's request got headers: %v", req.Header)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

type countingBody struct{ io.ReadCloser }

// TestTransportServerPort checks server.address and server.port when the
// URL has no port: the scheme's default.
func TestTransportServerPort(t *testing.T) {
	a := newAttempt(t, sdktrace.AlwaysSample())
	rt := a.tr.Transport(roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		return nil, errors.New("offline")
	}))
	for _, raw := range []string{"http://api.example/x", "https://api.example/x", "https://[::1]:8443/x"} {
		a.tel.spans.Reset()
		u, _ := url.Parse(raw)
		if _, err := rt.RoundTrip(&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}); err == nil {
			t.Fatal("no error")
		}
		s := a.ended()[0]
		host, _ := attr(s.Attributes, "server.address")
		port, _ := attr(s.Attributes, "server.port")
		if got, want := net.JoinHostPort(host.AsString(), strconv.FormatInt(port.AsInt64(), 10)), map[string]string{
			"http://api.example/x": "api.example:80", "https://api.example/x": "api.example:443", "https://[::1]:8443/x": "[::1]:8443",
		}[raw]; got != want {
			t.Errorf("%s: server %s, want %s", raw, got, want)
		}
	}
}

// panicPropagator panics when it injects.
type panicPropagator struct{ propagation.TraceContext }

func (panicPropagator) Inject(context.Context, propagation.TextMapCarrier) { panic("in Inject") }

// samplerSeen records the attributes a Sampler is given at each span's
// start, by span name.
type samplerSeen struct {
	mu    sync.Mutex
	attrs map[string][]attribute.KeyValue
}

func (s *samplerSeen) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	s.mu.Lock()
	s.attrs[p.Name] = append([]attribute.KeyValue(nil), p.Attributes...)
	s.mu.Unlock()
	return sdktrace.AlwaysSample().ShouldSample(p)
}

func (s *samplerSeen) Description() string { return "samplerSeen" }

// TestSamplerSeesNoRequestAttributes holds both transports to their docs:
// neither gives the request's attributes at the span's start, so a
// Sampler sees none of them (otelhttp sets its own just after the start).
func TestSamplerSeesNoRequestAttributes(t *testing.T) {
	a := newAttempt(t, sdktrace.AlwaysSample())
	seen := &samplerSeen{attrs: map[string][]attribute.KeyValue{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(seen))
	defer tp.Shutdown(context.Background())
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for name, rt := range map[string]http.RoundTripper{"GET": tr.Transport(a.base), "HTTP GET": tr.OTelHTTPTransport(a.base)} {
		roundTrip(t, context.Background(), rt, a.srv.URL+"/status/200")
		<-a.seen
		attrs, ok := seen.attrs[name]
		if !ok {
			t.Fatalf("no span %q sampled: %v", name, seen.attrs)
		}
		if len(attrs) != 0 {
			t.Errorf("span %q: the Sampler saw %v, the docs say it sees no attribute", name, attrs)
		}
	}
}

// roundTrip sends a GET of url through rt with ctx and closes the
// response's body.
func roundTrip(t *testing.T, ctx context.Context, rt http.RoundTripper, url string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
