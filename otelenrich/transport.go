package otelenrich

import (
	"context"
	"net/http"

	"github.com/batchenrich/batchenrich/internal/redact"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Transport returns base (http.DefaultTransport if nil) wrapped with
// otelhttp, so that every HTTP attempt is a client span of its own, child
// of the item's span when the request's context comes from an item (as
// httpenrich's do). The second and later attempts of an item, retries and
// redirects alike, carry http.request.resend_count (1 for the first
// resend) per the HTTP semantic conventions, and are counted in
// MetricRetries. otelhttp's own client metrics (http.client.request.duration
// and others) are recorded on the Tracer's MeterProvider with
// Config.HTTPMetrics, else not at all. opts are passed to otelhttp after
// the Tracer's providers and propagators.
//
// The url.full attribute of an attempt's span never shows a secret: as
// with otelhttp, the userinfo is left out, and the value of every query
// parameter whose name looks like a credential (token, api_key, jwt,
// signature, …) is replaced by xxxxx, as is any fragment.
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
func (t *Tracer) Transport(base http.RoundTripper, opts ...otelhttp.Option) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	var mp metric.MeterProvider = noop.NewMeterProvider()
	if t.httpMetrics {
		mp = t.mp
	}
	all := append([]otelhttp.Option{
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(mp),
		otelhttp.WithPropagators(t.propagators),
	}, opts...)
	return outerSpan{otelhttp.NewTransport(&resendCounter{base: base, t: t}, all...)}
}

// outerSpan sits outside otelhttp's transport and puts the span context
// of the request's caller in the context, so that resendCounter, inside,
// knows whether otelhttp started a span of its own (a WithFilter option
// may have skipped it).
type outerSpan struct{ next http.RoundTripper }

type outerSpanKey struct{}

func (o outerSpan) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	return o.next.RoundTrip(req.WithContext(context.WithValue(ctx, outerSpanKey{}, trace.SpanContextFromContext(ctx))))
}

// resendCounter sits inside otelhttp's transport, where the attempt's span
// is in the request's context: it replaces otelhttp's url.full with the
// redacted URL, and numbers the attempts of an item.
type resendCounter struct {
	base http.RoundTripper
	t    *Tracer
}

func (rc *resendCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if outer, ok := ctx.Value(outerSpanKey{}).(trace.SpanContext); ok && req.URL != nil {
		if span := trace.SpanFromContext(ctx); span.IsRecording() && !span.SpanContext().Equal(outer) {
			span.SetAttributes(semconv.URLFull(spanURL(req)))
		}
	}
	if s := itemFrom(ctx); s != nil {
		if n := s.attempts.Add(1); n > 1 {
			trace.SpanFromContext(ctx).SetAttributes(semconv.HTTPRequestResendCount(int(n - 1)))
			rc.t.m.retries.Add(ctx, 1)
		}
	}
	return rc.base.RoundTrip(req)
}

// spanURL is req's URL as url.full shows it: without userinfo, with
// credential query values and the fragment masked.
func spanURL(req *http.Request) string {
	u := *req.URL
	u.User = nil
	return redact.String(u.String())
}
