package otelenrich_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/otelenrich"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// benchProviders is the SDK as a service runs it: the always-on sampler,
// a batch span processor (exporting to nothing), a MeterProvider.
func benchProviders(b *testing.B) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider) {
	b.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return tp, mp
}

// BenchmarkSpanFloor is what the SDK costs for one span started and
// ended, with no attributes and with five: the floor under any span
// otelenrich makes.
func BenchmarkSpanFloor(b *testing.B) {
	tp, _ := benchProviders(b)
	tr := tp.Tracer("bench")
	ctx, parent := tr.Start(context.Background(), "parent")
	defer parent.End()
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, s := tr.Start(ctx, "span")
			s.End()
		}
	})
	b.Run("attrs=5", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, s := tr.Start(ctx, "span", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
				attribute.String("http.request.method", "GET"), attribute.String("server.address", "127.0.0.1"),
				attribute.Int("server.port", 8080), attribute.String("url.full", "http://127.0.0.1:8080/profile?id=12345"),
			))
			s.SetAttributes(attribute.Int("http.response.status_code", 200))
			s.End()
		}
	})
}

// BenchmarkItemHooks is one item's TraceItemStart and TraceItemEnd, in a
// batch of a run.
func BenchmarkItemHooks(b *testing.B) {
	tp, mp := benchProviders(b)
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	ctx := tr.TraceRunStart(context.Background(), batchenrich.TraceRun{BatchSize: 1000, Concurrency: 64})
	ctx = tr.TraceBatchStart(ctx, batchenrich.TraceBatch{Batch: 1, Items: 1000})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ictx := tr.TraceItemStart(ctx, batchenrich.TraceItem{Batch: 1, Index: i % 1000})
		tr.TraceItemEnd(ictx, batchenrich.TraceItem{Batch: 1, Index: i % 1000})
		i++
	}
}

// BenchmarkItemHooksFailed is BenchmarkItemHooks for an item whose
// enrichment failed: its outcome is told from the error without an
// allocation of its own (the rest is the span's error event and status).
func BenchmarkItemHooksFailed(b *testing.B) {
	tp, mp := benchProviders(b)
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	ctx := tr.TraceRunStart(context.Background(), batchenrich.TraceRun{BatchSize: 1000, Concurrency: 64})
	ctx = tr.TraceBatchStart(ctx, batchenrich.TraceBatch{Batch: 1, Items: 1000})
	ierr := &batchenrich.ItemError{Batch: 1, Err: batchenrich.Permanent(io.EOF)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d := batchenrich.TraceItem{Batch: 1, Index: i % 1000}
		ictx := tr.TraceItemStart(ctx, d)
		d.Err, d.Class = ierr, batchenrich.ClassPermanent
		tr.TraceItemEnd(ictx, d)
		i++
	}
}

// staticRoundTripper answers every request with a small 200 response,
// without a network.
type staticRoundTripper struct{}

func (staticRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, ContentLength: 13,
		Body: io.NopCloser(strings.NewReader(`{"id": 12345}`)), Request: req,
	}, nil
}

// BenchmarkAttempt is one HTTP attempt of an item through a transport
// that answers without a network: bare (no span), and through each of
// the Tracer's transports, the body read to EOF and closed.
func BenchmarkAttempt(b *testing.B) {
	tp, mp := benchProviders(b)
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tp, MeterProvider: mp, Propagators: propagation.TraceContext{}})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	ctx := tr.TraceRunStart(context.Background(), batchenrich.TraceRun{BatchSize: 1000, Concurrency: 64})
	ctx = tr.TraceBatchStart(ctx, batchenrich.TraceBatch{Batch: 1, Items: 1000})
	ctx = tr.TraceItemStart(ctx, batchenrich.TraceItem{Batch: 1})
	for _, v := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", staticRoundTripper{}},
		{"transport", tr.Transport(staticRoundTripper{})},
		{"otelhttp", tr.OTelHTTPTransport(staticRoundTripper{})},
		{"otelhttp-nometrics", tr.OTelHTTPTransport(staticRoundTripper{}, otelhttp.WithMeterProvider(noop.NewMeterProvider()))},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:8080/profile?id=12345", nil)
				if err != nil {
					b.Fatal(err)
				}
				resp, err := v.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
