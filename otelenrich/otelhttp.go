package otelenrich

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// OTelHTTPTransport returns base (http.DefaultTransport if nil) wrapped
// with otelhttp's transport instead of Transport's: every HTTP attempt is
// otelhttp's client span (named "HTTP " and the method, with otelhttp's
// attributes, set just after the span's start: a Sampler does not see
// them either), child of the item's span, and
// otelhttp records its client metrics
// (http.client.request.duration, http.client.request.body.size) on the
// Tracer's MeterProvider. As with Transport, resends carry
// http.request.resend_count and are counted in MetricRetries, and url.full
// shows no secret. opts are passed to otelhttp after the Tracer's
// providers and propagators, so they may override them: for instance
// otelhttp.WithMeterProvider(noop.NewMeterProvider()) turns its metrics
// off, otelhttp.WithFilter skips some requests.
//
// It costs two to three times Transport's CPU per attempt, and 2.4 times
// its allocated bytes: otelhttp clones each request, builds the span's and the
// metrics' attributes (even with a no-op MeterProvider) and wraps both
// bodies; the repository's BENCHMARKS.md has the figures. The returned
// transport does not close base's idle connections: close base when done.
func (t *Tracer) OTelHTTPTransport(base http.RoundTripper, opts ...otelhttp.Option) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	all := append([]otelhttp.Option{
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(t.mp),
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
			span.SetAttributes(semconv.URLFull(spanURL(req.URL)))
		}
	}
	if n := rc.t.resend(ctx); n > 0 {
		trace.SpanFromContext(ctx).SetAttributes(semconv.HTTPRequestResendCount(n))
	}
	return rc.base.RoundTrip(req)
}
