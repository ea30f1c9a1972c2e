package otelenrich

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"strconv"
	"sync/atomic"

	"github.com/batchenrich/batchenrich/redact"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Transport returns base (http.DefaultTransport if nil) wrapped so that
// every HTTP attempt is a client span of its own, child of the item's span
// when the request's context comes from an item (as httpenrich's do). The
// span follows the HTTP client semantic conventions: it is named after the
// method (GET; HTTP for a method the conventions do not list) and has
// http.request.method (with http.request.method_original for such a
// method), server.address, server.port, url.full,
// http.response.status_code when a response came, and error.type when the
// attempt failed: the status code (as a string) for a status of 400 or
// more (or an invalid one), else the error's Go type (or
// context.Canceled, context.DeadlineExceeded; panic when the base
// transport or the propagators panicked). Its status is Error in those
// cases, else unset. The second and later attempts of an item,
// retries and redirects alike, carry http.request.resend_count (1 for the
// first resend) and are counted in MetricRetries.
//
// The attributes are set when the response's headers or the error come,
// all at once, not given when the span starts: a Sampler does not see
// them (the conventions ask for the request's attributes at the start for
// samplers that decide on them; a parent-based sampler, the usual one
// under an item's span, does not; otelhttp's transport does not give them
// at the start either). Set at once, they are copied once:
// the transport allocates about 30 % fewer bytes per attempt than when
// they are given at the start. An attempt whose span is not recording (sampled
// out) gets no attributes and its body is not wrapped.
//
// The trace context is injected into the request's headers with the
// Tracer's propagators, on a copy of the request (the caller's request and
// its header map are not modified). The span ends when the response body
// is read to its end or closed, or when the attempt fails without a
// response, a panic included (which goes on to the caller): close every
// response body, as net/http asks, or its span is never exported.
//
// The url.full attribute never shows a secret: the userinfo is left out,
// and the value of every query parameter whose name looks like a
// credential (token, api_key, jwt, signature, …) is replaced by xxxxx, as
// is any fragment.
//
// This transport records no HTTP metrics of its own (MetricItemDuration
// and MetricRetries tell how the calls went). It is the default because it
// costs a third to a half of otelhttp's transport per attempt (see
// OTelHTTPTransport, and the repository's BENCHMARKS.md for the figures);
// use OTelHTTPTransport for otelhttp's spans, options and client metrics.
//
// With httpenrich, hand it over in a Client (and set MaxAttempts: with a
// Client it is otherwise the Client's RetryMax+1):
//
//	base, err := httpenrich.NewTransport(httpenrich.Pool{}.ForConcurrency(n))
//	…
//	cfg.Client = &retryablehttp.Client{HTTPClient: &http.Client{Transport: tracer.Transport(base)}}
//	cfg.MaxAttempts = httpenrich.DefaultMaxAttempts
//
// The returned transport does not close base's idle connections: close
// base when done.
func (t *Tracer) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, t: t}
}

// transport is Transport's RoundTripper.
type transport struct {
	base http.RoundTripper
	t    *Tracer
}

// clientKind is the start option of every attempt's span.
var clientKind = trace.WithSpanKind(trace.SpanKindClient)

// attempt is what an attempt needs beyond its span and request copy, in
// one allocation: the span's attributes (which it copies; room for those
// of a resent attempt with a response, more grow the slice) and the
// response body that ends it.
type attempt struct {
	attrs [6]attribute.KeyValue
	body  spanBody
}

func (tp *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	resend := tp.t.resend(ctx)
	m := methodOf(req.Method)
	ctx, span := tp.t.tracer.Start(ctx, m.name, clientKind)
	// A panic in the propagators or the base transport (the Runner makes
	// an item error of it) goes on, but ends the span first.
	var attrs []attribute.KeyValue
	sent := false
	defer func() {
		if !sent {
			span.SetAttributes(append(attrs, semconv.ErrorTypeKey.String("panic"))...)
			span.SetStatus(codes.Error, "panic")
			span.End()
		}
	}()

	// The RoundTripper contract forbids modifying req: the headers go to a
	// copy of its map (sharing the values, which Inject replaces, never
	// appends to).
	out := req.WithContext(ctx)
	out.Header = make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		out.Header[k] = v
	}
	tp.t.propagators.Inject(ctx, headerCarrier(out.Header))
	if !span.IsRecording() {
		resp, err := tp.base.RoundTrip(out)
		sent = true
		span.End()
		return resp, err
	}

	// The attributes are set once, when the response or the error comes:
	// the SDK copies them once, instead of the start option's copy, the
	// span's, and the span's again when it grows for the response's
	// (see Transport).
	a := &attempt{}
	attrs = append(a.attrs[:0], m.attr)
	if m.original.Valid() {
		attrs = append(attrs, m.original)
	}
	if req.URL != nil {
		host, port := serverOf(req)
		attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(port), semconv.URLFull(spanURL(req.URL)))
	}
	if resend > 0 {
		attrs = append(attrs, semconv.HTTPRequestResendCount(resend))
	}

	resp, err := tp.base.RoundTrip(out)
	sent = true
	if err != nil {
		span.SetAttributes(append(attrs, semconv.ErrorTypeKey.String(errorType(err)))...)
		span.SetStatus(codes.Error, redact.Text(err.Error()))
		span.End()
		return resp, err
	}
	code := resp.StatusCode
	attrs = append(attrs, semconv.HTTPResponseStatusCode(code))
	if code < 100 || code >= 400 {
		attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(code)))
	}
	span.SetAttributes(attrs...)
	switch {
	case code < 100 || code >= 600:
		span.SetStatus(codes.Error, fmt.Sprintf("invalid HTTP status code %d", code))
	case code >= 400:
		span.SetStatus(codes.Error, "")
	}
	a.body = spanBody{body: resp.Body, span: span}
	switch resp.Body.(type) {
	case nil:
		span.End()
	case io.ReadWriteCloser: // a protocol switch (101) answers with a writable body
		resp.Body = &spanBodyWriter{&a.body}
	default:
		resp.Body = &a.body
	}
	return resp, nil
}

// resend numbers an HTTP attempt of the item whose context ctx is: it
// returns how many of the item's attempts came before (0 for its first,
// or outside an item), and counts a resend in MetricRetries.
func (t *Tracer) resend(ctx context.Context) int {
	s := itemFrom(ctx)
	if s == nil {
		return 0
	}
	n := int(s.attempts.Add(1)) - 1
	if n > 0 {
		t.m.retries.Add(ctx, 1)
	}
	return n
}

// method is the span name and attributes of a request method.
type method struct {
	name     string
	attr     attribute.KeyValue // http.request.method
	original attribute.KeyValue // http.request.method_original, or none
}

// methods are those the HTTP semantic conventions list.
var methods = map[string]method{}

func init() {
	for _, kv := range []attribute.KeyValue{
		semconv.HTTPRequestMethodConnect, semconv.HTTPRequestMethodDelete, semconv.HTTPRequestMethodGet,
		semconv.HTTPRequestMethodHead, semconv.HTTPRequestMethodOptions, semconv.HTTPRequestMethodPatch,
		semconv.HTTPRequestMethodPost, semconv.HTTPRequestMethodPut, semconv.HTTPRequestMethodTrace,
	} {
		methods[kv.Value.AsString()] = method{name: kv.Value.AsString(), attr: kv}
	}
}

// methodOf returns the span name and attributes of the request method m
// ("" meaning GET, as in net/http).
func methodOf(m string) method {
	if m == "" {
		m = http.MethodGet
	}
	if known, ok := methods[m]; ok {
		return known
	}
	return method{name: "HTTP", attr: semconv.HTTPRequestMethodOther, original: semconv.HTTPRequestMethodOriginal(m)}
}

// serverOf returns the host and port req goes to, the port being the
// scheme's default when the URL has none.
func serverOf(req *http.Request) (string, int) {
	u := req.URL
	host, port := u.Hostname(), u.Port()
	if u.Host == "" {
		h, err := url.Parse("//" + req.Host)
		if err != nil {
			return req.Host, 0
		}
		host, port = h.Hostname(), h.Port()
	}
	if n, err := strconv.Atoi(port); err == nil {
		return host, n
	}
	if u.Scheme == "https" {
		return host, 443
	}
	return host, 80
}

// spanURL is u as url.full shows it: without userinfo, with credential
// query values and the fragment masked.
func spanURL(u *url.URL) string {
	if u.User == nil && u.Fragment == "" && u.RawFragment == "" && !redact.SensitiveQuery(u.RawQuery) {
		return u.String() // nothing to mask: no need to parse it again
	}
	c := *u
	c.User = nil
	return redact.String(c.String())
}

// errorType is the error.type of an attempt that failed without a
// response: the error's Go type as package.Name (otelhttp's choice, of low
// cardinality), the context's errors by their names.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "context.Canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "context.DeadlineExceeded"
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" || t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// headerCarrier is propagation.HeaderCarrier with the W3C headers' keys
// canonicalized without allocating.
type headerCarrier http.Header

func canonicalKey(k string) string {
	switch k {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return textproto.CanonicalMIMEHeaderKey(k)
}

// Get returns the value of key.
func (c headerCarrier) Get(key string) string { return http.Header(c).Get(key) }

// Set sets key to value, replacing its values.
func (c headerCarrier) Set(key, value string) { c[canonicalKey(key)] = []string{value} }

// Keys lists the keys.
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// spanBody is a response body that ends its attempt's span when read to
// its end or closed, and marks it failed on a read error.
type spanBody struct {
	body  io.ReadCloser
	span  trace.Span
	ended atomic.Bool
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch err {
	case nil:
	case io.EOF:
		b.end()
	default:
		b.span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		b.span.SetStatus(codes.Error, redact.Text(err.Error()))
	}
	return n, err
}

func (b *spanBody) Close() error {
	b.end()
	return b.body.Close()
}

func (b *spanBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.span.End()
	}
}

// spanBodyWriter is a spanBody that stays writable, for a protocol
// switch's body.
type spanBodyWriter struct{ *spanBody }

func (b *spanBodyWriter) Write(p []byte) (int, error) {
	return b.body.(io.Writer).Write(p)
}
