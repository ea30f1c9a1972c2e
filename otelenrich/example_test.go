package otelenrich_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/otelenrich"
	"github.com/hashicorp/go-retryablehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A Tracer on an SDK TracerProvider: each span ends after its children.
// A real program would use a batch span processor and an exporter of its
// choice (see examples/travelers), and a MeterProvider too.
func ExampleNew() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())

	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tp})
	if err != nil {
		fmt.Println(err)
		return
	}
	src := batchenrichtest.NewSliceSource([]string{"ada", "grace", "ken"})
	upper := batchenrich.EnricherFunc[string, string](func(ctx context.Context, s string) (string, error) {
		return strings.ToUpper(s), nil
	})
	sink := batchenrich.SinkFunc[string, string](func(ctx context.Context, b batchenrich.Batch[string, string]) error { return nil })
	r, err := batchenrich.New(src, upper, sink, batchenrich.Options{
		BatchSize: 2, Concurrency: 1, NoPrefetch: true, Tracer: tr,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := r.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	for _, s := range spans.GetSpans() {
		fmt.Println(s.Name)
	}
	// Output:
	// batchenrich.read
	// batchenrich.item
	// batchenrich.item
	// batchenrich.write
	// batchenrich.batch
	// batchenrich.read
	// batchenrich.item
	// batchenrich.write
	// batchenrich.batch
	// batchenrich.run
}

// Each HTTP attempt of an httpenrich Enricher is a client span under its
// item's span: hand the Enricher a Client over the Tracer's Transport.
// OTelHTTPTransport instead gives otelhttp's spans and client metrics, at
// several times the CPU per attempt.
func ExampleTracer_Transport() {
	tr, err := otelenrich.New(otelenrich.Config{}) // the global providers and propagators
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	base, err := httpenrich.NewTransport(httpenrich.Pool{}.ForConcurrency(16))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer base.CloseIdleConnections()
	enr, err := httpenrich.New(httpenrich.Config[string, json.RawMessage, json.RawMessage]{
		URL: "https://api.example/profiles/{id}",
		Request: func(id string) (httpenrich.Params, error) {
			return httpenrich.Params{Path: map[string]string{"id": id}}, nil
		},
		Client:      &retryablehttp.Client{HTTPClient: &http.Client{Transport: tr.Transport(base)}},
		MaxAttempts: httpenrich.DefaultMaxAttempts, // with a Client, it is otherwise the Client's RetryMax+1
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer enr.Close()
	// batchenrich.New(src, enr, sink, batchenrich.Options{Tracer: tr, …})
}
