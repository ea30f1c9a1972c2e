package otelenrich

import (
	"net/http"

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
// With httpenrich, hand it over in a Client:
//
//	tr := otelTracer.Transport(httpenrich.NewTransport(pool))
//	httpenrich.Config{…, Client: &retryablehttp.Client{HTTPClient: &http.Client{Transport: tr}}, MaxAttempts: 4}
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
	return otelhttp.NewTransport(&resendCounter{base: base, t: t}, all...)
}

// resendCounter sits inside otelhttp's transport, where the attempt's span
// is in the request's context, and numbers the attempts of an item.
type resendCounter struct {
	base http.RoundTripper
	t    *Tracer
}

func (rc *resendCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if s := itemFrom(ctx); s != nil {
		if n := s.attempts.Add(1); n > 1 {
			trace.SpanFromContext(ctx).SetAttributes(semconv.HTTPRequestResendCount(int(n - 1)))
			rc.t.m.retries.Add(ctx, 1)
		}
	}
	return rc.base.RoundTrip(req)
}
