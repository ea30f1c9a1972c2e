package otelenrich_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/otelenrich"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// An item whose Enricher panicked is counted and marked "panicked", one
// cut short by the stop that follows "canceled" (no error status): told
// from batchenrich.TraceItem's Err and Canceled.
func TestItemOutcomes(t *testing.T) {
	tel := newTelemetry(t)
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tel.tp, MeterProvider: tel.mp, ItemKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	enr := batchenrich.EnricherFunc[traveler, int](func(ctx context.Context, tv traveler) (int, error) {
		if tv == 0 {
			<-started // traveler 1 is being enriched: the panic cancels it
			panic("boom")
		}
		close(started)
		<-ctx.Done()
		return 0, fmt.Errorf("traveler %d: %w", tv, ctx.Err())
	})
	src := batchenrichtest.NewSliceSource([]traveler{0, 1})
	sink := batchenrichtest.NewSink[traveler, int]()
	r, err := batchenrich.New(src, enr, sink, batchenrich.Options{BatchSize: 2, Concurrency: 2, Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	var pe *batchenrich.PanicError
	if _, err := r.Run(context.Background()); !errors.As(err, &pe) {
		t.Fatalf("Run: %v, want a panic", err)
	}
	got := map[string]string{}
	for _, s := range tel.spans.GetSpans() {
		if s.Name != otelenrich.SpanItem {
			continue
		}
		key, _ := attr(s.Attributes, otelenrich.AttrItemKey)
		outcome, _ := attr(s.Attributes, otelenrich.AttrOutcome)
		got[key.AsString()] = fmt.Sprintf("%s %v", outcome.AsString(), s.Status.Code == codes.Error)
	}
	if fmt.Sprint(got) != "map[traveler-0:panicked true traveler-1:canceled false]" {
		t.Errorf("item spans: outcome, error status = %v", got)
	}
	items := map[string]int64{}
	for _, p := range tel.metrics(t)[otelenrich.ScopeName+" "+otelenrich.MetricItems].Data.(metricdata.Sum[int64]).DataPoints {
		v, _ := p.Attributes.Value(otelenrich.AttrOutcome)
		items[v.AsString()] += p.Value
	}
	if fmt.Sprint(items) != "map[canceled:1 panicked:1]" {
		t.Errorf("%s by outcome = %v", otelenrich.MetricItems, items)
	}
}
