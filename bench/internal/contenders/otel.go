package contenders

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/bench/internal/job"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/otelenrich"
	"github.com/hashicorp/go-retryablehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// telemetry is what a service running the library under OpenTelemetry
// has: the SDK with the always-on sampler and a batch span processor, a
// MeterProvider, W3C trace context propagated to the API. Spans go to an
// exporter that counts them (no I/O, so that what is measured is the
// instrumentation, not a collector); metrics are collected once at the
// end, as a periodic reader would every few seconds.
type telemetry struct {
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	reader   *sdkmetric.ManualReader
	spans    *countingExporter
	tr       *otelenrich.Tracer
	once     sync.Once
	err      error
	metrics  int
	shutdown func() error
}

func startTelemetry() (*telemetry, error) {
	t := &telemetry{spans: &countingExporter{}, reader: sdkmetric.NewManualReader()}
	t.tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(t.spans))
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(t.reader))
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: t.tp, MeterProvider: t.mp, Propagators: propagation.TraceContext{}})
	if err != nil {
		return nil, err
	}
	t.tr = tr
	t.shutdown = func() error {
		t.once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var rm metricdata.ResourceMetrics
			if err := t.reader.Collect(ctx, &rm); err != nil {
				t.err = err
			}
			for _, sm := range rm.ScopeMetrics {
				t.metrics += len(sm.Metrics)
			}
			if err := t.tp.Shutdown(ctx); err != nil && t.err == nil {
				t.err = err
			}
			if err := t.mp.Shutdown(ctx); err != nil && t.err == nil {
				t.err = err
			}
		})
		return t.err
	}
	return t, nil
}

// tracer is the Runner's Tracer (floorTracer for attemptSpansFloor); nil
// without telemetry.
func (t *telemetry) tracer(which attemptSpans) batchenrich.Tracer {
	switch {
	case t == nil:
		return nil
	case which == attemptSpansFloor:
		return floorTracer{t.tp.Tracer("floor")}
	}
	return t.tr
}

// attemptSpans says which of the Tracer's transports makes the HTTP
// attempts' spans.
type attemptSpans int

const (
	noAttemptSpans       attemptSpans = iota
	attemptSpansLean                  // Tracer.Transport
	attemptSpansOTelHTTP              // Tracer.OTelHTTPTransport: otelhttp, with its metrics
	attemptSpansFloor                 // floorTracer and floorTransport: bare SDK spans
)

// instrument makes cfg send through the Tracer's transport (which) over a
// pool sized as without telemetry (the same default retries), and returns
// what closes the pool's idle connections.
func (t *telemetry) instrument(cfg *httpenrich.Config[libTraveler, job.Echo, job.Row], which attemptSpans) (func(), error) {
	base, err := httpenrich.NewTransport(cfg.Pool)
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper
	switch which {
	case attemptSpansOTelHTTP:
		rt = t.tr.OTelHTTPTransport(base)
	case attemptSpansFloor:
		rt = floorTransport{base: base, tr: t.tp.Tracer("floor")}
	default:
		rt = t.tr.Transport(base)
	}
	cfg.Pool = httpenrich.Pool{}
	cfg.Client = &retryablehttp.Client{HTTPClient: &http.Client{Transport: rt}}
	cfg.MaxAttempts = httpenrich.DefaultMaxAttempts
	return base.CloseIdleConnections, nil
}

func (t *telemetry) summary() string {
	return fmt.Sprintf("otel: %d spans exported, %d metrics", t.spans.n.Load(), t.metrics)
}

// countingExporter counts the spans a batch span processor hands it.
type countingExporter struct{ n atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.n.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

// floorTracer is the floor under otelenrich's Tracer: a span per item
// with no attribute, no metric, nothing for the run and the batches.
type floorTracer struct{ tr trace.Tracer }

func (f floorTracer) TraceRunStart(ctx context.Context, _ batchenrich.TraceRun) context.Context {
	return ctx
}

func (f floorTracer) TraceRunEnd(context.Context, batchenrich.TraceRun) {}

func (f floorTracer) TraceBatchStart(ctx context.Context, _ batchenrich.TraceBatch) context.Context {
	return ctx
}

func (f floorTracer) TraceBatchEnd(context.Context, batchenrich.TraceBatch) {}

func (f floorTracer) TraceItemStart(ctx context.Context, _ batchenrich.TraceItem) context.Context {
	ctx, _ = f.tr.Start(ctx, "item")
	return ctx
}

func (f floorTracer) TraceItemEnd(ctx context.Context, _ batchenrich.TraceItem) {
	trace.SpanFromContext(ctx).End()
}

func (f floorTracer) TraceStageStart(ctx context.Context, _ batchenrich.TraceStage) context.Context {
	return ctx
}

func (f floorTracer) TraceStageEnd(context.Context, batchenrich.TraceStage) {}

func (f floorTracer) TraceLimitChange(context.Context, batchenrich.UpstreamLimit) {}

// floorTransport is the floor under Tracer.Transport: a client span per
// attempt with no attribute, ended when the response's headers are in, no
// context propagated.
type floorTransport struct {
	base http.RoundTripper
	tr   trace.Tracer
}

func (f floorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	_, span := f.tr.Start(req.Context(), "GET", trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	return f.base.RoundTrip(req)
}
