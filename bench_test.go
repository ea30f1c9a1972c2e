package batchenrich_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/batchenrich/batchenrich"
)

// benchSource serves the ints 0..total-1 from memory, in windows of the
// limit asked for, the cursor being the next int as text.
func benchSource(total int) batchenrich.Source[int] {
	return batchenrich.SourceFunc[int](func(_ context.Context, after batchenrich.Cursor, limit int) ([]int, batchenrich.Cursor, error) {
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
}

// BenchmarkRunner measures the Runner's own cost per item: a Source of
// in-memory windows, an Enricher and a Sink that do nothing, so that what
// is left is scheduling (errgroup, result slots, prefetch, events). One op
// is one item; allocs/op is allocations per item.
func BenchmarkRunner(b *testing.B) {
	for _, tc := range []struct{ batch, conc int }{{100, 100}, {1000, 64}, {100, 1}} {
		b.Run(fmt.Sprintf("batch=%d/concurrency=%d", tc.batch, tc.conc), func(b *testing.B) {
			ctx := context.Background()
			total := b.N
			src := benchSource(total)
			enr := batchenrich.EnricherFunc[int, int](func(_ context.Context, v int) (int, error) { return v, nil })
			written := 0
			sink := batchenrich.SinkFunc[int, int](func(_ context.Context, bt batchenrich.Batch[int, int]) error {
				written += len(bt.Results)
				return nil
			})
			events := make(chan event, 16)
			r, err := batchenrich.New(src, enr, sink, batchenrich.Options{BatchSize: tc.batch, Concurrency: tc.conc, Tracer: eventTracer(events)})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := r.Run(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if written != total {
				b.Fatalf("wrote %d items, want %d", written, total)
			}
		})
	}
}
