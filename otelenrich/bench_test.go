package otelenrich_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/otelenrich"
	"github.com/hashicorp/go-retryablehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// processCPU returns the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOverhead measures a Run of HTTP enrichments against a loopback
// server with no Tracer, with the Tracer alone (run, batch and item spans
// and metrics), with the Tracer and its Transport (a client span per
// attempt), and with the Tracer and OTelHTTPTransport (otelhttp's client
// span per attempt and its metrics), on the SDK with the always-on sampler
// and a batch span processor. One op is one item; the server's work is in the
// same process, so compare the variants, not absolute figures. cpu-ns/op
// is the process's CPU time per item, steadier than the elapsed time on a
// loaded machine.
func BenchmarkOverhead(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": %q}`, r.URL.Query().Get("id"))
	}))
	defer srv.Close()
	for _, v := range []string{"none", "tracer", "tracer+transport", "tracer+otelhttp"} {
		b.Run(v, func(b *testing.B) {
			ctx := context.Background()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			defer tp.Shutdown(ctx)
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			defer mp.Shutdown(ctx)
			tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tp, MeterProvider: mp, Propagators: propagation.TraceContext{}})
			if err != nil {
				b.Fatal(err)
			}
			base, err := httpenrich.NewTransport(httpenrich.Pool{}.ForConcurrency(64))
			if err != nil {
				b.Fatal(err)
			}
			defer base.CloseIdleConnections()
			var rt http.RoundTripper = base
			switch v {
			case "tracer+transport":
				rt = tr.Transport(base)
			case "tracer+otelhttp":
				rt = tr.OTelHTTPTransport(base)
			}
			enr, err := httpenrich.New(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
				URL: srv.URL + "/profile",
				Request: func(i int) (httpenrich.Params, error) {
					return httpenrich.Params{Query: map[string][]string{"id": {strconv.Itoa(i)}}}, nil
				},
				Client:      &retryablehttp.Client{HTTPClient: &http.Client{Transport: rt}},
				MaxAttempts: httpenrich.DefaultMaxAttempts,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer enr.Close()
			total := b.N
			src := batchenrich.SourceFunc[int](func(_ context.Context, after batchenrich.Cursor, limit int) ([]int, batchenrich.Cursor, error) {
				start := 0
				if after != "" {
					start, _ = strconv.Atoi(string(after))
				}
				n := min(limit, total-start)
				if n <= 0 {
					return nil, after, nil
				}
				items := make([]int, n)
				for i := range items {
					items[i] = start + i
				}
				return items, batchenrich.Cursor(strconv.Itoa(start + n)), nil
			})
			sink := batchenrich.SinkFunc[int, json.RawMessage](func(context.Context, batchenrich.Batch[int, json.RawMessage]) error { return nil })
			opts := batchenrich.Options{BatchSize: 1000, Concurrency: 64}
			if v != "none" {
				opts.Tracer = tr
			}
			r, err := batchenrich.New(src, enr, sink, opts)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			rep, err := r.Run(ctx)
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			if err != nil || rep.Enriched != total {
				b.Fatalf("enriched %d of %d: %v", rep.Enriched, total, err)
			}
		})
	}
}
