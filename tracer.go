package batchenrich

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
)

// Tracer observes a run as it goes: its start and end, each batch's, and
// each item's. Set one in Options.Tracer; package otelenrich, a module of
// its own, implements it with OpenTelemetry spans and metrics.
//
// Each Start method returns the context that the matching part of the run
// continues with: the run's context is the parent of every batch's, a
// batch's the parent of its items', and an item's is the one its Enricher
// receives. That is what lets a span started in TraceRunStart be the parent
// of the batch spans, and an HTTP client span be the child of the item's.
// A Start method must return ctx or a context derived from it (nil means
// ctx); the Runner's cancellation reaches the run only through it.
//
// It is the one way to follow a run as it goes, beside the Report that Run
// returns and the records sent to Options.Logger: progress bars, metrics
// and traces are all built on it.
//
// # What runs where
//
// Every method is called synchronously, so a Tracer must be fast and safe
// for concurrent use:
//
//   - TraceRunStart and TraceRunEnd run in the goroutine that called Run:
//     the start first of all, before the run's lock is taken; the end last
//     of all, after every goroutine the run started has exited.
//   - TraceBatchStart and TraceBatchEnd run in the goroutine that called
//     Run: the start after the batch's window was read, before its first
//     enrichment; the end after the Sink (and checkpoint) write returned,
//     or after the batch failed. Batch n's end comes before batch n+1's
//     start, except with Options.Overlap: there batch n+1 may start while
//     batch n is still enriched or written, so batch spans overlap (each
//     batch keeps its own context), and a batch's end runs in the
//     goroutine that finishes the batch (waits for its enrichment, then
//     writes it); the ends still come one at a time in batch order.
//   - TraceItemStart and TraceItemEnd run in the goroutine that enriches
//     the item, inside one of the Options.Concurrency slots, so up to
//     Concurrency of them run at once. The end is called whatever the
//     Enricher did, panic included. Items never started (their batch was
//     abandoned first) get neither call. With a Tracer, an item that is a
//     Keyer is asked for its key before TraceItemStart (a panic there
//     stops the run like one in TraceItemStart).
//   - TraceStageStart and TraceStageEnd surround each Source read and each
//     Sink write. A read (StageRead) runs in the Runner's reading
//     goroutine, possibly while the previous batch is enriched (not with
//     Options.NoPrefetch), so its context is the run's, not a batch's. A
//     write (StageWrite, the Sink write together with its checkpoint) runs
//     in the goroutine that called Run (with Options.Overlap, in the one
//     finishing the batch), in the batch's context.
//   - TraceLimitChange runs in the goroutine of the Enricher that called
//     ReportLimitChange, with the context it passed (the item's).
//
// A resumed run is told by its first TraceBatchStart, whose Batch is one
// more than the batches committed earlier (Report.BatchesSkipped in
// TraceRunEnd); a partition's by TraceRun.Partition.
//
// The Run of a NewPartitioned Runner runs each partition as a run of its
// own, in a goroutine of its own: "the goroutine that called Run" above is
// then that goroutine, each partition gets its own TraceRunStart and
// TraceRunEnd (TraceRun.Partition says which), and the partitions' calls
// come concurrently. A NewPartitioned run refused before its partitions
// start (a pool too small for them, a changed partition count) calls no
// Tracer method.
//
// A slow Tracer slows the run and, in the item methods, holds a
// concurrency slot; it cannot reorder batches, lift a bound, or keep Run
// from returning once the Tracer returns. A panic in a Tracer method is an
// error like one in any user code, and stops the run: in TraceItemStart or
// TraceItemEnd it is a *PanicError in the *ItemError that Run returns; in
// TraceBatchStart or TraceBatchEnd it is a *PanicError in a *BatchError at
// StageTrace (a batch whose end panicked was already written); in
// TraceRunStart it is returned before anything else is done; in TraceRunEnd
// it is joined to Run's error; in TraceStageStart or TraceStageEnd of a
// read it is the cause of a *BatchError at StageRead, its text naming the
// method, and of a write a *BatchError at StageTrace. A panic in
// TraceLimitChange cannot reach Run's error (ReportLimitChange returns
// nothing): it is recovered and logged to Options.Logger at Error level.
//
// No Tracer set costs nothing: a nil check per item, no allocation.
type Tracer interface {
	// TraceRunStart is called when Run starts.
	TraceRunStart(ctx context.Context, data TraceRun) context.Context
	// TraceRunEnd is called when Run returns, with what it returns.
	TraceRunEnd(ctx context.Context, data TraceRun)
	// TraceBatchStart is called when a batch starts to be enriched.
	TraceBatchStart(ctx context.Context, data TraceBatch) context.Context
	// TraceBatchEnd is called when a batch was written or failed.
	TraceBatchEnd(ctx context.Context, data TraceBatch)
	// TraceItemStart is called just before an item is enriched.
	TraceItemStart(ctx context.Context, data TraceItem) context.Context
	// TraceItemEnd is called when the item's enrichment returned.
	TraceItemEnd(ctx context.Context, data TraceItem)
	// TraceStageStart is called before a Source read or Sink write.
	TraceStageStart(ctx context.Context, data TraceStage) context.Context
	// TraceStageEnd is called when it returned.
	TraceStageEnd(ctx context.Context, data TraceStage)
	// TraceLimitChange is called when the Enricher changed the
	// concurrency limit it applies to an upstream (ReportLimitChange;
	// httpenrich with Config.Adaptive does), with the upstream's limit
	// after the change: From, To and Reason describe the change.
	TraceLimitChange(ctx context.Context, limit UpstreamLimit)
}

// StageTrace is the Stage of a *BatchError caused by a panic in a Tracer's
// batch or stage methods.
const StageTrace Stage = "trace"

// TraceRun describes a run to Tracer.TraceRunStart and, with Report and
// Err filled in, to Tracer.TraceRunEnd.
type TraceRun struct {
	RunKey      string    // the run's key (see RunKeyFromContext), "" for a run that is not durable
	BatchSize   int       // Options.BatchSize, defaults filled in
	MaxBatches  int       // Options.MaxBatches: the batches planned; 0 for no cap
	Concurrency int       // Options.Concurrency, defaults filled in
	Partition   Partition // Options.Partition: which partition batch numbers count in (zero when the run is not split)

	// Set for TraceRunEnd only.
	Report Report // as Run returns it; read-only
	Err    error  // Run's error (before a panic in TraceRunEnd is joined to it)
}

// TraceBatch describes a batch to Tracer.TraceBatchStart and, with Stats,
// Err and Class filled in, to Tracer.TraceBatchEnd.
type TraceBatch struct {
	// Batch is the batch number, from 1; a resumed run continues the
	// numbering, so Batch-1 batches of the run are done when it starts.
	Batch int
	// Items is the number of items in the batch.
	Items int

	// Set for TraceBatchEnd only.
	Stats BatchReport // the batch's counts and durations
	Err   error       // nil if the batch was written, else what Run returns
	Class Class       // Classify(Err)
}

// TraceItem describes an item to Tracer.TraceItemStart and, with Err,
// Class and Canceled filled in, to Tracer.TraceItemEnd.
//
// At the end, the item was enriched when Err is nil and Canceled false.
// Canceled says that the batch's context ended first (the run was
// cancelled, or another item stopped the batch): the item is not counted
// as failed, and Err is the *ItemError of what the Enricher returned then,
// or nil when the item's enrichment was never called (a BulkEnricher's group abandoned
// before its call). Otherwise a non-nil Err is a failure, counted in
// BatchReport.Failed; it wraps a *PanicError when the Enricher (or the
// item's Keyer) panicked, which stops the run.
type TraceItem struct {
	Batch int    // the batch number
	Index int    // the item's position in the batch, from 0
	Key   string // the item's key if it implements Keyer, else ""

	// Set for TraceItemEnd only.
	Err      error // the *ItemError stored in the item's Result; nil when enriched
	Class    Class // Classify(Err)
	Canceled bool  // the batch's context ended first; not a failure
}

// TraceStage describes a Source read or a Sink write to
// Tracer.TraceStageStart and, with Items updated and Err filled in, to
// Tracer.TraceStageEnd.
type TraceStage struct {
	Stage Stage // StageRead or StageWrite
	Batch int   // the batch being read or written
	// Items is, at the start, the items handed to the Sink (StageWrite)
	// or 0 (StageRead); at the end, the items read (StageRead) or written
	// (StageWrite), 0 on error.
	Items int

	// Set for TraceStageEnd only.
	Err error // the Source's or Sink's error, nil on success
}

// outcome says what became of one item: what the Runner counts, and
// whether the Tracer is told the item was canceled.
type outcome int

const (
	outEnriched outcome = iota + 1 // the Enricher returned a result
	outFailed                      // an error, counted in BatchReport.Failed
	outCanceled                    // an error after the batch's context ended; not counted
	outPanicked                    // a panic in the Enricher or a hook; the run stops
)

// hookPanic turns the *PanicError of a Tracer method into an error naming
// the method.
func hookPanic(method string, err error) error {
	return fmt.Errorf("%s: %w", method, err)
}

// traceRunStart calls TraceRunStart. The Runner calls it only with a Tracer.
func (st *run[T, R]) traceRunStart(ctx context.Context) (context.Context, error) {
	st.tracer = st.opts.Tracer
	data := st.traceRun()
	tctx := ctx
	if err := guarded(func() error { tctx = st.tracer.TraceRunStart(ctx, data); return nil }); err != nil {
		return ctx, fmt.Errorf("batchenrich: %w", hookPanic("TraceRunStart", err))
	}
	return orCtx(tctx, ctx), nil
}

// traceRun returns what the Tracer is told of the run at its start.
func (st *run[T, R]) traceRun() TraceRun {
	o := st.opts
	return TraceRun{RunKey: o.key, BatchSize: o.BatchSize, MaxBatches: o.MaxBatches, Concurrency: o.Concurrency, Partition: o.Partition}
}

// traceRunEnd calls TraceRunEnd and returns Run's error, with the hook's
// panic joined to it.
func (st *run[T, R]) traceRunEnd(ctx context.Context, rep Report, err error) error {
	data := st.traceRun()
	data.Report, data.Err = rep, err
	if perr := guarded(func() error { st.tracer.TraceRunEnd(ctx, data); return nil }); perr != nil {
		return errors.Join(err, fmt.Errorf("batchenrich: %w", hookPanic("TraceRunEnd", perr)))
	}
	return err
}

// traceBatchStart calls TraceBatchStart if there is a Tracer.
func (st *run[T, R]) traceBatchStart(ctx context.Context, num, n int) (context.Context, error) {
	if st.tracer == nil {
		return ctx, nil
	}
	tctx := ctx
	data := TraceBatch{Batch: num, Items: n}
	if err := guarded(func() error { tctx = st.tracer.TraceBatchStart(ctx, data); return nil }); err != nil {
		return ctx, &BatchError{Batch: num, Stage: StageTrace, Err: hookPanic("TraceBatchStart", err)}
	}
	return orCtx(tctx, ctx), nil
}

// traceBatchEnd calls TraceBatchEnd if there is a Tracer, and returns the
// batch's error, or the hook's panic.
func (st *run[T, R]) traceBatchEnd(ctx context.Context, br BatchReport, err error) error {
	if st.tracer == nil {
		return err
	}
	data := TraceBatch{Batch: br.Number, Items: br.Read, Stats: br, Err: err, Class: Classify(err)}
	if perr := guarded(func() error { st.tracer.TraceBatchEnd(ctx, data); return nil }); perr != nil {
		return errors.Join(err, &BatchError{Batch: br.Number, Stage: StageTrace, Err: hookPanic("TraceBatchEnd", perr)})
	}
	return err
}

// traceItems wraps one, the enrichment of one item, with TraceItemStart
// and TraceItemEnd. The Runner calls it only with a Tracer.
func (st *run[T, R]) traceItems(num int, results []Result[T, R], items []T,
	one func(context.Context, int) (outcome, error)) func(context.Context, int) (outcome, error) {
	// Items are boxed to ask for their key only if they may have one:
	// boxing costs an allocation per item.
	var zero T
	_, keyed := any(zero).(Keyer)
	keyed = keyed || any(zero) == nil // T is an interface type: boxing is free
	return func(ctx context.Context, i int) (outcome, error) {
		var key string
		if keyed {
			var err error
			if key, err = itemKey(items[i]); err != nil {
				return st.hookFailed(results, num, i, key, "Keyer.Key", err)
			}
		}
		item := TraceItem{Batch: num, Index: i, Key: key}
		ictx, err := st.itemStart(ctx, item)
		if err != nil {
			return st.hookFailed(results, num, i, key, "TraceItemStart", err)
		}
		out, err := one(ictx, i)
		res := &results[i]
		item.Err, item.Class, item.Canceled = res.Err, Classify(res.Err), out == outCanceled
		if perr := st.itemEnd(ictx, item); perr != nil {
			return st.hookFailed(results, num, i, key, "TraceItemEnd", perr)
		}
		return out, err
	}
}

// The item hooks are called through these rather than guarded, whose
// closures would cost an allocation per item.

// itemStart calls TraceItemStart, turning a panic into a *PanicError.
func (st *run[T, R]) itemStart(ctx context.Context, data TraceItem) (ictx context.Context, err error) {
	defer func() {
		if v := recover(); v != nil {
			ictx, err = ctx, &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return orCtx(st.tracer.TraceItemStart(ctx, data), ctx), nil
}

// itemEnd calls TraceItemEnd, turning a panic into a *PanicError.
func (st *run[T, R]) itemEnd(ctx context.Context, data TraceItem) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	st.tracer.TraceItemEnd(ctx, data)
	return nil
}

// hookFailed stores and returns the *ItemError of a panic in a hook for
// item i.
func (st *run[T, R]) hookFailed(results []Result[T, R], num, i int, key, method string, err error) (outcome, error) {
	ie := &ItemError{Batch: num, Index: i, Key: key, Err: hookPanic(method, err)}
	results[i].Err = ie
	return outPanicked, ie
}

// readSource reads the window after cursor for batch num, between
// TraceStageStart and TraceStageEnd with a Tracer.
func (st *run[T, R]) readSource(ctx context.Context, num int, after Cursor) (items []T, next Cursor, err error) {
	if st.tracer == nil {
		err = guarded(func() (e error) { items, next, e = st.src.Read(ctx, after, st.opts.BatchSize); return })
		return items, next, err
	}
	sctx, err := st.traceStageStart(ctx, StageRead, num, 0)
	if err != nil {
		return nil, after, err
	}
	err = guarded(func() (e error) { items, next, e = st.src.Read(sctx, after, st.opts.BatchSize); return })
	return items, next, st.traceStageEnd(sctx, StageRead, num, len(items), err)
}

// writeBatch writes b (st.write), between TraceStageStart and
// TraceStageEnd with a Tracer.
func (st *run[T, R]) writeBatch(ctx context.Context, b Batch[T, R], done bool, br *BatchReport) error {
	if st.tracer == nil {
		return st.write(ctx, b, done, br)
	}
	sctx, err := st.traceStageStart(ctx, StageWrite, b.Number, len(b.Results))
	if err != nil {
		return &BatchError{Batch: b.Number, Stage: StageTrace, Err: err}
	}
	err = st.write(sctx, b, done, br)
	return st.traceStageEnd(sctx, StageWrite, b.Number, br.Written, err)
}

func (st *run[T, R]) traceStageStart(ctx context.Context, stage Stage, num, n int) (context.Context, error) {
	tctx := ctx
	data := TraceStage{Stage: stage, Batch: num, Items: n}
	if err := guarded(func() error { tctx = st.tracer.TraceStageStart(ctx, data); return nil }); err != nil {
		return ctx, hookPanic("TraceStageStart", err)
	}
	return orCtx(tctx, ctx), nil
}

func (st *run[T, R]) traceStageEnd(ctx context.Context, stage Stage, num, n int, err error) error {
	if err != nil {
		n = 0
	}
	data := TraceStage{Stage: stage, Batch: num, Items: n, Err: err}
	if perr := guarded(func() error { st.tracer.TraceStageEnd(ctx, data); return nil }); perr != nil {
		perr = hookPanic("TraceStageEnd", perr)
		if stage != StageRead {
			perr = &BatchError{Batch: num, Stage: StageTrace, Err: perr}
		}
		return errors.Join(err, perr)
	}
	return err
}

// orCtx returns ctx, or def when a Tracer returned nil.
func orCtx(ctx, def context.Context) context.Context {
	if ctx == nil {
		return def
	}
	return ctx
}
