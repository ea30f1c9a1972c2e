package main

import (
	"context"

	"github.com/batchenrich/batchenrich"
)

// eventKind says what an event reports.
type eventKind int

// The kinds of event the progress bar follows.
const (
	evRunResumed   eventKind = iota + 1 // Batch: the batches committed earlier
	evBatchStarted                      // Batch
	evItemFailed                        // Batch
	evBatchWritten                      // Batch, Stats
	evLimitChanged                      // Limit
)

// event is one step of the run, as the progress bar draws it.
type event struct {
	Kind      eventKind
	Batch     int
	Partition int // the partition Batch counts in (-partitions)
	Stats     batchenrich.BatchReport
	Limit     *batchenrich.UpstreamLimit
}

// eventTracer is the run's batchenrich.Tracer for the progress bar: it
// sends events to a channel that the bar reads in a goroutine of its own,
// never blocking the run (an event that does not fit is dropped).
type eventTracer chan<- event

// tracerFor returns the Tracer sending to events, or nil without a bar.
func tracerFor(events chan<- event) batchenrich.Tracer {
	if events == nil {
		return nil
	}
	return eventTracer(events)
}

func (t eventTracer) send(ev event) {
	select {
	case t <- ev:
	default:
	}
}

// runOf is what TraceRunStart keeps for the run's batches, in the context.
type runOf struct {
	partition int
	first     bool // the next batch started is the run's first
}

type runOfKey struct{}

func (t eventTracer) TraceRunStart(ctx context.Context, d batchenrich.TraceRun) context.Context {
	return context.WithValue(ctx, runOfKey{}, &runOf{partition: d.Partition.Index, first: true})
}

func (t eventTracer) TraceBatchStart(ctx context.Context, d batchenrich.TraceBatch) context.Context {
	r, _ := ctx.Value(runOfKey{}).(*runOf)
	part := 0
	if r != nil {
		part = r.partition
		// Batch starts of one run come one at a time, in order.
		if r.first && d.Batch > 1 {
			t.send(event{Kind: evRunResumed, Batch: d.Batch - 1, Partition: part})
		}
		r.first = false
	}
	t.send(event{Kind: evBatchStarted, Batch: d.Batch, Partition: part})
	return ctx
}

func (t eventTracer) TraceBatchEnd(ctx context.Context, d batchenrich.TraceBatch) {
	if d.Err == nil {
		t.send(event{Kind: evBatchWritten, Batch: d.Batch, Stats: d.Stats})
	}
}

func (t eventTracer) TraceItemEnd(ctx context.Context, d batchenrich.TraceItem) {
	if d.Err != nil && !d.Canceled {
		t.send(event{Kind: evItemFailed, Batch: d.Batch})
	}
}

func (t eventTracer) TraceLimitChange(ctx context.Context, c batchenrich.UpstreamLimit) {
	t.send(event{Kind: evLimitChanged, Limit: &c})
}

// The rest of the Tracer: nothing to draw.

func (t eventTracer) TraceRunEnd(context.Context, batchenrich.TraceRun) {}
func (t eventTracer) TraceItemStart(ctx context.Context, _ batchenrich.TraceItem) context.Context {
	return ctx
}
func (t eventTracer) TraceStageStart(ctx context.Context, _ batchenrich.TraceStage) context.Context {
	return ctx
}
func (t eventTracer) TraceStageEnd(context.Context, batchenrich.TraceStage) {}
