// Package consumer is a program outside the repository, as a user writes
// one: .ci/consumer copies this file into a fresh module that fetches the
// core, riverenrich and otelenrich through a module proxy (no replace, no
// go.work), then runs these tests. Keep it to the API every user needs, so
// that it breaks only when users would.
package consumer

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/otelenrich"
	"github.com/batchenrich/batchenrich/riverenrich"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// numbers is a Source of the integers 1..n, paged by a decimal cursor.
func numbers(n int) batchenrich.Source[int] {
	return batchenrich.SourceFunc[int](func(ctx context.Context, after batchenrich.Cursor, limit int) ([]int, batchenrich.Cursor, error) {
		last := 0
		if after != "" {
			var err error
			if last, err = strconv.Atoi(string(after)); err != nil {
				return nil, "", err
			}
		}
		var items []int
		for i := last + 1; i <= n && len(items) < limit; i++ {
			items = append(items, i)
		}
		if len(items) > 0 {
			last = items[len(items)-1]
		}
		return items, batchenrich.Cursor(strconv.Itoa(last)), nil
	})
}

// run enriches 1..n into their squares and returns what the Sink received.
func run(t *testing.T, n int, opts batchenrich.Options) map[int]int {
	t.Helper()
	var mu sync.Mutex
	got := map[int]int{}
	square := batchenrich.EnricherFunc[int, int](func(ctx context.Context, i int) (int, error) { return i * i, nil })
	sink := batchenrich.SinkFunc[int, int](func(ctx context.Context, b batchenrich.Batch[int, int]) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range b.Results {
			if r.Err != nil {
				t.Errorf("item %d: %v", r.Item, r.Err)
			}
			got[r.Item] = r.Value
		}
		return nil
	})
	r, err := batchenrich.New(numbers(n), square, sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("the Sink received %d items, want %d", len(got), n)
	}
	for i := 1; i <= n; i++ {
		if got[i] != i*i {
			t.Fatalf("item %d enriched to %d, want %d", i, got[i], i*i)
		}
	}
	return got
}

func TestRunner(t *testing.T) {
	run(t, 25, batchenrich.Options{BatchSize: 10, Concurrency: 3})
}

func TestOtelenrichTracer(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	run(t, 5, batchenrich.Options{BatchSize: 2, Tracer: tr})
	names := map[string]int{}
	for _, s := range spans.GetSpans() {
		names[s.Name]++
	}
	if names["batchenrich.run"] != 1 || names["batchenrich.batch"] != 3 || names["batchenrich.item"] != 5 {
		t.Fatalf("spans: %v; want 1 run, 3 batches, 5 items", names)
	}
}

func TestRiverenrichRefusesConfig(t *testing.T) {
	if k := (riverenrich.PartitionArgs{}).Kind(); k != riverenrich.Kind {
		t.Fatalf("PartitionArgs.Kind() = %q, want %q", k, riverenrich.Kind)
	}
	// No database: refused before any connection is made.
	_, err := riverenrich.New(riverenrich.Config[int, int]{})
	if err == nil || !strings.Contains(err.Error(), "DB") {
		t.Fatalf("New without a DB: %v, want an error naming DB", err)
	}
}
