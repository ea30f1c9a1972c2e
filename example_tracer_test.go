package batchenrich_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// progress is a Tracer that prints the run's progress and counts the
// items in flight. Item methods run concurrently, hence the atomic.
type progress struct {
	planned  int
	inFlight atomic.Int64
}

func (p *progress) TraceRunStart(ctx context.Context, d batchenrich.TraceRun) context.Context {
	p.planned = d.MaxBatches
	return ctx
}

func (p *progress) TraceRunEnd(ctx context.Context, d batchenrich.TraceRun) {
	fmt.Printf("run: %d items written, error: %v\n", d.Report.Written, d.Err)
}

func (p *progress) TraceBatchStart(ctx context.Context, d batchenrich.TraceBatch) context.Context {
	return ctx
}

func (p *progress) TraceBatchEnd(ctx context.Context, d batchenrich.TraceBatch) {
	fmt.Printf("batch %d of %d: %d written, %d failed\n", d.Batch, p.planned, d.Stats.Written, d.Stats.Failed)
}

func (p *progress) TraceItemStart(ctx context.Context, d batchenrich.TraceItem) context.Context {
	p.inFlight.Add(1)
	return ctx
}

func (p *progress) TraceItemEnd(ctx context.Context, d batchenrich.TraceItem) {
	p.inFlight.Add(-1)
	if d.Err != nil && !d.Canceled {
		fmt.Printf("item %d of batch %d failed (%s)\n", d.Index, d.Batch, d.Class)
	}
}

// The Tracer's other methods: progress has nothing to do there.

func (p *progress) TraceStageStart(ctx context.Context, d batchenrich.TraceStage) context.Context {
	return ctx
}

func (p *progress) TraceStageEnd(ctx context.Context, d batchenrich.TraceStage) {}

func (p *progress) TraceLimitChange(ctx context.Context, c batchenrich.UpstreamLimit) {}

// A Tracer sees the run, each batch and each item start and end; the
// contexts it returns nest, which is what a tracing adapter needs.
func ExampleTracer() {
	src := batchenrichtest.NewSliceSource([]int{1, 2, 3, 4, 5, 6})
	enr := batchenrich.EnricherFunc[int, int](func(ctx context.Context, n int) (int, error) {
		if n == 5 {
			return 0, batchenrich.Permanent(fmt.Errorf("five is out"))
		}
		return n * n, nil
	})
	sink := batchenrich.SinkFunc[int, int](func(ctx context.Context, b batchenrich.Batch[int, int]) error { return nil })
	r, err := batchenrich.New[int, int](src, enr, sink, batchenrich.Options{
		BatchSize: 2, MaxBatches: 3, Tracer: &progress{},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r.Run(context.Background())
	// Output:
	// batch 1 of 3: 2 written, 0 failed
	// batch 2 of 3: 2 written, 0 failed
	// item 0 of batch 3 failed (permanent)
	// batch 3 of 3: 2 written, 1 failed
	// run: 6 items written, error: <nil>
}
