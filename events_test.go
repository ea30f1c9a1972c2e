package batchenrich_test

import (
	"context"

	"github.com/batchenrich/batchenrich"
)

// The kinds of event an eventTracer sends.
const (
	evBatchStarted = "batch-started" // Batch, Items
	evItemFailed   = "item-failed"   // Batch, Index, Key, Err
	evBatchWritten = "batch-written" // Batch, Stats
	evLimitChanged = "limit-changed" // Limit
)

// event is one thing a run told its Tracer, for the tests that follow a
// run as a stream.
type event struct {
	Kind  string
	Batch int
	Items int
	Index int
	Key   string
	Err   error
	Stats batchenrich.BatchReport
	Limit *batchenrich.UpstreamLimit
}

// eventTracer is a Tracer sending a run's batch starts, failed items,
// written batches and limit changes to a channel, never blocking: an event
// that does not fit in the buffer is dropped.
type eventTracer chan<- event

func (t eventTracer) send(ev event) {
	select {
	case t <- ev:
	default:
	}
}

func (t eventTracer) TraceRunStart(ctx context.Context, _ batchenrich.TraceRun) context.Context {
	return ctx
}
func (t eventTracer) TraceRunEnd(context.Context, batchenrich.TraceRun) {}
func (t eventTracer) TraceBatchStart(ctx context.Context, d batchenrich.TraceBatch) context.Context {
	t.send(event{Kind: evBatchStarted, Batch: d.Batch, Items: d.Items})
	return ctx
}
func (t eventTracer) TraceBatchEnd(_ context.Context, d batchenrich.TraceBatch) {
	if d.Err == nil {
		t.send(event{Kind: evBatchWritten, Batch: d.Batch, Stats: d.Stats})
	}
}
func (t eventTracer) TraceItemStart(ctx context.Context, _ batchenrich.TraceItem) context.Context {
	return ctx
}
func (t eventTracer) TraceItemEnd(_ context.Context, d batchenrich.TraceItem) {
	if outcome(d) == "failed" {
		t.send(event{Kind: evItemFailed, Batch: d.Batch, Index: d.Index, Key: d.Key, Err: d.Err})
	}
}
func (t eventTracer) TraceStageStart(ctx context.Context, _ batchenrich.TraceStage) context.Context {
	return ctx
}
func (t eventTracer) TraceStageEnd(context.Context, batchenrich.TraceStage) {}
func (t eventTracer) TraceLimitChange(_ context.Context, c batchenrich.UpstreamLimit) {
	t.send(event{Kind: evLimitChanged, Limit: &c})
}
