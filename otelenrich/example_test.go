package otelenrich_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/otelenrich"
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
