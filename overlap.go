package batchenrich

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// writer writes the batches of one run, one at a time and in batch order.
//
// In strict mode (the default) a batch's write returns before the next
// batch's enrichment starts. With Options.Overlap the write of batch n runs
// in the background while batch n+1 is enriched; the write of batch n+1
// starts only after that of batch n returned without error, and a failed
// write ends the enrichment in flight.
type writer[T, R any] struct {
	st *run[T, R]
	// ectx is the parent of the batches' contexts: the run's context in
	// strict mode; with Overlap, one that also ends when a write fails,
	// ending the enrichment in flight (no later batch is written then).
	ectx   context.Context
	cancel context.CancelFunc // nil in strict mode
	bg     *errgroup.Group
	flight <-chan writeDone // the write in flight (Overlap), or nil
}

// writeDone is the outcome of a background write.
type writeDone struct {
	br  BatchReport
	err error
}

// newWriter returns the run's writer; its goroutines run in bg.
func (st *run[T, R]) newWriter(ctx context.Context, bg *errgroup.Group) *writer[T, R] {
	w := &writer[T, R]{st: st, ectx: ctx, bg: bg}
	if st.opts.Overlap {
		w.ectx, w.cancel = context.WithCancel(ctx)
	}
	return w
}

// write writes batch b in its context bctx, done marking its checkpoint
// finished. In strict mode it returns b's write error. With Overlap it
// waits for the write in flight, returns that write's error if it failed
// (b is then never written), and otherwise starts writing b in the
// background.
func (w *writer[T, R]) write(bctx context.Context, b Batch[T, R], done bool, br BatchReport) error {
	st := w.st
	if w.cancel == nil {
		return st.account(br, st.commit(bctx, b, done, &br))
	}
	if err := w.settle(nil); err != nil {
		return st.traceBatchEnd(bctx, br, err) // b is abandoned
	}
	ch := make(chan writeDone, 1)
	w.bg.Go(func() error {
		err := st.commit(bctx, b, done, &br)
		if err != nil {
			w.cancel() // the next batch will never be written: stop enriching it
		}
		ch <- writeDone{br, err} // buffered: never blocks
		return nil
	})
	w.flight = ch
	return nil
}

// failed ends the run on err, the failure before its write of the batch
// described by br, whose context is bctx: the write in flight is waited
// for first, and its error, if any, is returned instead (that batch comes
// first, and its failure may be what ended this one's enrichment; this
// one is then left out of the Report).
func (w *writer[T, R]) failed(bctx context.Context, br BatchReport, err error) error {
	if werr := w.settle(nil); werr != nil {
		return w.st.traceBatchEnd(bctx, br, werr)
	}
	w.st.rep.add(br)
	return w.st.traceBatchEnd(bctx, br, err)
}

// settle waits for the write in flight, if any, and accounts it. It returns
// that write's error if it failed, else err.
func (w *writer[T, R]) settle(err error) error {
	if w.flight == nil {
		return err
	}
	d := <-w.flight
	w.flight = nil
	if werr := w.st.account(d.br, d.err); werr != nil {
		return werr
	}
	return err
}

// close settles the write in flight and releases the writer; err is the
// run's outcome so far.
func (w *writer[T, R]) close(err error) error {
	err = w.settle(err)
	if w.cancel != nil {
		w.cancel()
	}
	return err
}

// commit writes batch b (with its checkpoint), ends its trace and, if
// all went well, announces it. With Overlap it runs in the background.
func (st *run[T, R]) commit(bctx context.Context, b Batch[T, R], done bool, br *BatchReport) error {
	err := st.writeBatch(bctx, b, done, br)
	if err = st.traceBatchEnd(bctx, *br, err); err != nil {
		return err
	}
	st.emit(Event{Kind: EventBatchWritten, Batch: b.Number, Stats: *br})
	st.opts.Logger.InfoContext(bctx, "batchenrich: batch written", "batch", b.Number, "items", br.Written, "failed", br.Failed,
		"enrich", br.EnrichDuration, "write", br.WriteDuration)
	return nil
}

// account adds a batch whose write returned err to the report.
func (st *run[T, R]) account(br BatchReport, err error) error {
	st.rep.add(br)
	if err != nil {
		return err
	}
	st.rep.BatchesRun++
	return nil
}
