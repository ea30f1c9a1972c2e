package batchenrich

import (
	"context"
	"sync"

	"golang.org/x/sync/errgroup"
)

// overlapper runs the batches of a run with Options.Overlap.
//
// The goroutine that called Run starts each batch's enrichment: batch n+1
// starts once each of batch n's workers holds its slot (a worker holds it
// until no item is left for it to take) and batch n-1's write has
// returned without error, so at most two batches are enriched or written
// at once, besides the window read ahead. The Concurrency slots are shared
// by the run's batches. Each batch then ends in a goroutine of its own
// (see finish): it waits for its enrichment, then for the batch before to
// be written, and writes its batch; so writes run one at a time in batch
// order, each only after the one before succeeded.
//
// The first batch to stop the run decides Run's error: a batch that stops
// it cancels the next batch's enrichment (that batch is never written),
// while the batch before it is still finished and written as usual.
type overlapper[T, R any] struct {
	st    *run[T, R]
	bg    *errgroup.Group
	slots chan struct{} // the run's Concurrency enrichment slots
	// last is the batch started last, prev the one before it; nil until
	// there is one.
	prev, last *flight
}

// flight is a batch of an overlapped run, from the start of its enrichment
// until it is written or has failed.
type flight struct {
	done chan struct{} // closed when the batch was written or failed
	// err, set before done is closed, is the run's error as of this
	// batch: its own, or that of an earlier batch, which abandoned it;
	// nil when it was written.
	err error

	mu      sync.Mutex
	stopped bool               // the run stops at this batch or before
	next    context.CancelFunc // cancels the next batch's enrichment
}

// follow ties the enrichment of the next batch, which cancel ends, to f:
// it is cancelled if f stops the run. follow reports false, having
// cancelled it, when f already did.
func (f *flight) follow(cancel context.CancelFunc) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		cancel()
		return false
	}
	f.next = cancel
	return true
}

// stop records that the run stops at f at the latest, and cancels the
// next batch's enrichment.
func (f *flight) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	if f.next != nil {
		f.next()
	}
}

// newOverlapper returns the overlapper of an Overlap run; its goroutines
// run in bg.
func (st *run[T, R]) newOverlapper(bg *errgroup.Group) *overlapper[T, R] {
	return &overlapper[T, R]{st: st, bg: bg, slots: make(chan struct{}, st.opts.Concurrency)}
}

// admit waits until the next batch may start: once the batch two before
// it was written (then at most one batch is unwritten). It returns the
// run's error if an earlier batch stopped it.
func (ov *overlapper[T, R]) admit() error {
	if ov.prev == nil {
		return nil
	}
	<-ov.prev.done
	return ov.prev.err
}

// start starts the enrichment of batch b's items (b.Results unset) in a
// context of its own derived from ctx, and the goroutine that will finish
// b, done marking its checkpoint finished. It returns when each of b's
// workers holds its slot (or b's enrichment ended first), or with the
// run's error if the run stops before b starts.
func (ov *overlapper[T, R]) start(ctx context.Context, b Batch[T, R], items []T, done bool, br BatchReport) error {
	st := ov.st
	bctx, cancel := context.WithCancel(ctx)
	if ov.last != nil && !ov.last.follow(cancel) {
		return ov.settle(nil) // the batch before stops the run: b never starts
	}
	st.started(ctx, b.Number, len(items))
	bctx, err := st.traceBatchStart(bctx, b.Number, len(items))
	if err != nil {
		defer cancel()
		if serr := ov.settle(nil); serr != nil {
			return st.traceBatchEnd(bctx, br, serr)
		}
		st.record(br, false)
		return st.traceBatchEnd(bctx, br, err)
	}
	en := st.startEnrich(bctx, b.Number, items, ov.slots)
	f, prev := &flight{done: make(chan struct{})}, ov.last
	ov.bg.Go(func() error {
		defer close(f.done)
		defer cancel()
		f.err = ov.finish(bctx, b, done, br, en, prev, f)
		return nil
	})
	ov.prev, ov.last = ov.last, f
	return nil
}

// finish waits for the enrichment en of batch b, whose flight is f and
// context bctx, and for the batch before (prev, nil for the run's first)
// to end; then writes b if both succeeded. It returns the run's error as
// of b (see flight.err).
func (ov *overlapper[T, R]) finish(bctx context.Context, b Batch[T, R], done bool, br BatchReport, en *enrichment[T, R], prev, f *flight) error {
	st := ov.st
	results, err := st.wait(bctx, en, &br)
	if err != nil {
		f.stop() // b is not written, so neither is the next batch
	}
	if prev != nil {
		<-prev.done
		if prev.err != nil {
			f.stop()
			return st.traceBatchEnd(bctx, br, prev.err) // b is abandoned
		}
	}
	if err != nil {
		st.record(br, false)
		return st.traceBatchEnd(bctx, br, err)
	}
	b.Results = results
	err = st.commit(bctx, b, done, &br)
	if err = st.account(br, err); err != nil {
		f.stop()
	}
	return err
}

// settle waits for the batches started to end, and returns the run's
// error: that of the first batch that stopped it, else err.
func (ov *overlapper[T, R]) settle(err error) error {
	if ov.last == nil {
		return err
	}
	<-ov.last.done
	if ov.last.err != nil {
		return ov.last.err
	}
	return err
}

// commit writes batch b (with its checkpoint), ends its trace and, if
// all went well, announces it. With Overlap it runs in the goroutine
// finishing the batch.
func (st *run[T, R]) commit(bctx context.Context, b Batch[T, R], done bool, br *BatchReport) error {
	err := st.writeBatch(bctx, b, done, br)
	if err = st.traceBatchEnd(bctx, *br, err); err != nil {
		return err
	}
	st.opts.Logger.InfoContext(bctx, "batchenrich: batch written", "batch", b.Number, "items", br.Written, "failed", br.Failed,
		"enrich", br.EnrichDuration, "write", br.WriteDuration)
	return nil
}

// account adds a batch whose write returned err to the report, and
// returns err.
func (st *run[T, R]) account(br BatchReport, err error) error {
	st.record(br, err == nil)
	return err
}
