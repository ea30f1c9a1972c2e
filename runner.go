package batchenrich

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Runner enriches the items of a Source in bounded, strictly ordered batches
// and writes them to a Sink. Create one with New; a Runner may be Run any
// number of times, though not concurrently with itself for the same RunKey
// unless its CheckpointStore is a Locker. Concurrent Runs of one Runner
// share its Source, Enricher and Sink, which must then be safe for
// concurrent use (the Sink's Write is called concurrently across Runs).
type Runner[T, R any] struct {
	src Source[T]
	enr Enricher[T, R]
	// bulk is enr when it is a BulkEnricher, bulkSize its BulkSize.
	bulk     BulkEnricher[T, R]
	bulkSize int
	sink     Sink[T, R]
	opts     Options
	// checked is set when the caller has run the components' Checks
	// already (a Replay, before it takes the run's lock), so Run does not
	// run them again.
	checked bool
	// siblingStop, in the partitions' Runners of a NewPartitioned run, is
	// set once one partition learnt of an operator's stop request: the others
	// then stop at their next batch boundary too, as if asked themselves.
	siblingStop *atomic.Bool
	// stopAsked, in the partitions' Runners of a NewPartitioned run, is
	// set when the store itself asked this partition to stop (not a
	// sibling), so that Run returns that partition's ErrStopRequested.
	stopAsked atomic.Bool
	// lim, in the partitions' Runners of a NewPartitioned run, bounds
	// their enrichments in flight together; nil otherwise.
	lim *limiter
	// parts, in the Runner NewPartitioned returns (which has no
	// components of its own), are its partitions' Runners, by index, and
	// partStop their siblingStop.
	parts    []*Runner[T, R]
	partStop atomic.Bool
}

// New returns a Runner that reads from src, enriches with enr and writes to
// sink, configured by opts. It returns a *ConfigError (matching
// ErrInvalidConfig) naming the first invalid field or nil argument (a nil
// interface, or a nil SourceFunc, EnricherFunc or SinkFunc in it).
func New[T, R any](src Source[T], enr Enricher[T, R], sink Sink[T, R], opts Options) (*Runner[T, R], error) {
	return newRunner(src, enr, sink, opts, argNames{"src", "enr", "sink"})
}

// argNames are the names of the Source, Enricher and Sink arguments in the
// *ConfigError about one of them: New's, or NewReplay's.
type argNames [3]string

// newRunner is New, naming the arguments as args says.
func newRunner[T, R any](src Source[T], enr Enricher[T, R], sink Sink[T, R], opts Options, args argNames) (*Runner[T, R], error) {
	switch {
	case src == nil:
		return nil, optionErr(args[0], "nil Source")
	case enr == nil:
		return nil, optionErr(args[1], "nil Enricher")
	case sink == nil:
		return nil, optionErr(args[2], "nil Sink")
	}
	if err := checkFuncs(src, enr, sink, args); err != nil {
		return nil, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Durable != nil {
		if o.definition, err = definitionOf(src, enr, sink, args); err != nil {
			return nil, err
		}
	}
	r := &Runner[T, R]{src: src, enr: enr, sink: sink, opts: o}
	if err := r.setBulk(); err != nil {
		return nil, err
	}
	return r, nil
}

// Options returns the Runner's options as given to New, with defaults
// filled in (Durable.RunKey is the key given, also for a partition of a
// split run). The result is a copy: changing it does not change the
// Runner.
func (r *Runner[T, R]) Options() Options {
	o := r.opts
	if o.Durable != nil {
		d := *o.Durable
		o.Durable = &d
	}
	return o
}

// window is one Source read.
type window[T any] struct {
	items []T
	next  Cursor
	dur   time.Duration
	err   error
}

// run holds the state of one call to Run.
//
// Who owns what. The goroutine that called Run reads the Source's windows
// (through the read goroutines, which hand each window over a channel),
// starts each batch, and returns. A batch ends (its enrichment waited for,
// the batch written and accounted) in that goroutine too, or with
// Options.Overlap in a goroutine of its own (see overlapper), concurrently
// with the next batch's start and with the Run goroutine. The Enricher's
// workers (and the Tracer's item and limit methods they call) run
// concurrently with all of them.
// So:
//   - Runner, the embedded configuration, and tracing are set before the
//     first batch starts and only read afterwards: shared without a lock.
//   - rep is guarded by mu, whoever touches it: the Run goroutine sets its
//     run-level fields, the goroutine ending a batch adds that batch
//     (record), and Run copies it out at the end (report), after loop has
//     waited for every goroutine of the run. The lock keeps the report
//     whole whatever goroutine ends a batch; the order of its Batches is
//     the order in which batches end, which is batch order (with Overlap
//     each batch ends after the one before: see overlapper.finish).
//   - oneTx is atomic: it is cleared by the write of whichever batch finds
//     that the Sink cannot share the checkpoint's transaction.
//   - The state of one batch in flight (its results, its BatchReport, its
//     enrichment's counters) belongs to that batch: see enrichment and,
//     with Overlap, flight.
type run[T, R any] struct {
	*Runner[T, R]
	tracer Tracer // Options.Tracer, set by traceRunStart; nil when unset

	mu  sync.Mutex
	rep Report // guarded by mu

	oneTx atomic.Bool // still committing batches with their checkpoint in one transaction

	// last is the checkpoint of the run's last committed batch (the
	// loaded one until a batch commits), with the run's counts; owned is
	// set once the loaded checkpoint was accepted (checkResume), from
	// when the run's end is recorded in the store. Guarded by mu.
	last  Checkpoint
	owned bool
	// stopped is set when the store told, saving a batch, that an
	// operator asked the run to stop (StopRequester).
	stopped atomic.Bool
}

// update changes the run's report under its lock.
func (st *run[T, R]) update(f func(*Report)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(&st.rep)
}

// report returns a copy of the run's report.
func (st *run[T, R]) report() Report {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.rep
}

// record adds batch br to the run's report, counting it as run when its
// write succeeded.
func (st *run[T, R]) record(br BatchReport, written bool) {
	st.update(func(r *Report) {
		r.add(br)
		if written {
			r.BatchesRun++
		}
	})
}

// Run processes the Source batch after batch until it is exhausted, the
// batch cap is reached, an error stops it, or ctx ends.
//
// Batch n+1 is enriched only after the Sink has returned from writing batch
// n (with Options.Overlap: once batch n-1's write has returned, while batch
// n is enriched or written, the writes still one at a time in order); at
// most Options.Concurrency enrichments are in flight, and the Sink
// receives the results in Source order. Run returns only after every
// goroutine it started has exited.
//
// When ctx ends, no new enrichment starts, in-flight ones see the cancelled
// context, the current batch is not written, and Run returns an error for
// which errors.Is(err, ctx.Err()) holds; the error the Source or Sink
// returned meanwhile, if any, is kept in it as well (errors.Is finds it).
//
// With Options.Overlap, two batches may be in flight at once, and the run
// stops at the first of them, in batch order, that stops it: when batch n
// stops the run (Options.StopAfterFailures, the
// all-failed stop, a panic, a Fatal error, a failed write, or ctx's end),
// the enrichment of batch n+1 is cancelled and batch n+1 is never written
// (nor any later batch), while batch n-1, if still being enriched or
// written, is finished and written first; Run returns batch n's error,
// even if batch n+1 failed earlier in time. So when batch n+1 fails while
// batch n is being enriched, batch n is still written (unless it stops the
// run itself), and then Run returns batch n+1's error. The end of ctx
// reaches every batch in flight at once: the run stops at the first of
// them that it kept from being written (a batch whose Sink write was
// already under way and completed anyway is written).
//
// Before the run's lock is taken, Run returns as they are the error of a
// Checker (see Checker), of a pool too small for the run (see ConnUser),
// of a panic in Options.Tracer's TraceRunStart,
// and of a partitioned run's claim (see ErrPartitionsChanged). From then on,
// failures are reported as a *BatchError naming the batch and stage
// (StageLock and StageUnlock, with Batch 0, for the run's lock), or as an
// *ItemError when an Enricher panicked or returned a Fatal error; an
// error releasing the lock is joined to Run's result. The Report covers
// the batches handled until then.
//
// A Runner of NewPartitioned runs every partition concurrently, each as
// the Runner of one partition (Options.Partition) runs, and returns when
// all have returned: each partition keeps the guarantees above within
// itself (strict batch order, numbering, checkpoint and lock of its own,
// resume after its last committed batch); across partitions nothing is
// ordered, and at most Options.Concurrency enrichments are in flight in
// total. The pools are checked for all partitions at once (see
// ConnUser), and a changed partition count is refused once, before
// anything is read (ErrPartitionsChanged). The first partition to fail
// cancels the others (whose current batch is then not written; they
// resume from their checkpoints on the next run), and Run returns the
// failures joined with errors.Join, leaving out the partitions that only
// stopped because another failed. Each failure is its partition's error
// wrapped with the partition: its text begins "batchenrich: partition 1
// of 3: ", and errors.As(err, &pe), pe being an
// interface{ Partition() batchenrich.Partition }, finds which partition
// failed. A partition stopping at an operator's request
// (ErrStopRequested) is no failure: it cancels nothing, the others stop
// at their next batch boundary too, each committing the batch it is on,
// and Run returns the error of the partition that was asked to stop (the
// first by index when several were). The Report holds
// each partition's in Report.Partitions, and their totals.
func (r *Runner[T, R]) Run(ctx context.Context) (rep Report, err error) {
	if r.parts != nil {
		return r.runPartitions(ctx)
	}
	st := &run[T, R]{Runner: r}
	st.rep.Started = time.Now() // st is not shared yet
	ctx, ri := withRunInfo(ctx, r.opts)
	if r.opts.Tracer != nil {
		var terr error
		if ctx, terr = st.traceRunStart(ctx); terr != nil {
			return st.report(), terr
		}
		defer func() { err = st.traceRunEnd(ctx, rep, err) }() // after rep is set below
	}
	defer func() {
		// Every goroutine of the run has ended: loop waits for them.
		st.update(func(r *Report) {
			r.Limits = ri.reportLimits()
			r.Duration = time.Since(r.Started)
			r.Atomic = st.oneTx.Load() && r.BatchesRun > 0
		})
		rep = st.report()
	}()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if !r.checked {
		if err := r.check(ctx); err != nil {
			return rep, err
		}
		if err := r.checkOwnConns(ctx); err != nil {
			return rep, err
		}
	}
	if r.opts.Durable != nil {
		if err := claimRun(ctx, r.opts); err != nil {
			return rep, err
		}
		unlock, lerr := lockRun(ctx, r.opts, "")
		if lerr != nil {
			return rep, lerr
		}
		if unlock != nil {
			defer func() { err = unlockRun(err, unlock, r.opts.key) }()
		}
	}
	err = st.loop(ctx)
	if err != nil && r.opts.Durable != nil {
		st.recordEnd(ctx, err)
	}
	return rep, err // rep is set by the deferred report
}

// recordEnd records in the store that the run ended with err, after its
// last committed batch: StateStopped when an operator asked it to stop or
// ctx ended, else StateFailed, with err's text. It does nothing before the
// loaded checkpoint was accepted (the key may be another job's). A failure
// to record it is logged: err is what Run returns.
func (st *run[T, R]) recordEnd(ctx context.Context, err error) {
	st.mu.Lock()
	cp, owned := st.last, st.owned
	st.mu.Unlock()
	if !owned {
		return
	}
	o := st.opts
	cp.RunKey, cp.Partitions, cp.BatchSize, cp.Fingerprint, cp.Job, cp.Definition =
		o.key, o.Partition.Count, o.BatchSize, o.Durable.Fingerprint, o.Durable.Job, o.definition
	cp.State, cp.LastError = StateFailed, lastError(err)
	if errors.Is(err, ErrStopRequested) || ctx.Err() != nil {
		cp.State = StateStopped
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordEndTimeout)
	defer cancel()
	if serr := guarded(func() error { return o.Durable.Store.Save(sctx, cp) }); serr != nil {
		o.Logger.WarnContext(ctx, "batchenrich: could not record the run's end", "run_key", o.key, "state", string(cp.State), "error", serr)
	}
}

// recordEndTimeout bounds recordEnd's save, which runs after ctx may have
// ended.
const recordEndTimeout = 10 * time.Second

// stopRequested returns the error of a run stopping before batch num at
// an operator's request, or nil.
func (st *run[T, R]) stopRequested(num int) error {
	if !st.stopped.Load() {
		return nil
	}
	return st.batchError(num, StageCheckpoint, fmt.Errorf("%w by an operator: the run stopped after batch %d, its last committed one; run it again with the same key to resume",
		ErrStopRequested, num-1))
}

// noteStop asks the store, if it can tell, whether an operator asked the
// run to stop.
func (st *run[T, R]) noteStop() {
	if st.siblingStop != nil && st.siblingStop.Load() {
		st.stopped.Store(true)
		return
	}
	if sr, ok := st.opts.Durable.Store.(StopRequester); ok {
		var stop bool
		if guarded(func() error { stop = sr.StopRequested(st.opts.key); return nil }) == nil && stop {
			st.stopped.Store(true)
			st.stopAsked.Store(true)
			if st.siblingStop != nil {
				// At once, not when this partition's Run returns: the
				// others may reach their next batch boundary first.
				st.siblingStop.Store(true)
			}
		}
	}
}

// endedWith returns err, the error of user code called with ctx, so that
// errors.Is(result, ctx.Err()) holds once ctx has ended: err itself if it
// wraps ctx.Err() already, else ctx.Err() joined with err, which keeps its
// cause: "context canceled (connection reset)".
func endedWith(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// batchError returns a *BatchError for batch num of this run.
func (st *run[T, R]) batchError(num int, stage Stage, err error) error {
	return &BatchError{Batch: num, Stage: stage, RunKey: st.opts.key, Err: err}
}

func (st *run[T, R]) loop(ctx context.Context) (err error) {
	o := st.opts
	log := o.Logger
	var cp Checkpoint // only its Batch, Cursor and Done are read
	if o.Durable != nil {
		st.oneTx.Store(true)
		if err := guarded(func() (e error) { cp, e = o.Durable.Store.Load(ctx, o.key); return }); err != nil {
			return st.batchError(1, StageCheckpoint, err)
		}
		if err := checkResume(cp, o, o.key); err != nil {
			return err
		}
		st.update(func(r *Report) { r.BatchesSkipped, r.AlreadyDone = cp.Batch, cp.Done })
		if cp.State == "" && cp.Batch > 0 && cp.Counts == (RunCounts{}) {
			// An older version's checkpoint, which counted nothing: its
			// batches are known, its items are not (see RunCounts).
			cp.Counts.Batches = cp.Batch
		}
		st.mu.Lock()
		st.last, st.owned = cp, !cp.Done
		st.mu.Unlock()
		if cp.Done {
			log.InfoContext(ctx, "batchenrich: run already finished", "run_key", o.key, "batches", cp.Batch)
			return nil
		}
		if cp.Batch > 0 {
			log.InfoContext(ctx, "batchenrich: resuming run", "run_key", o.key, "after_batch", cp.Batch)
		}
	}

	// Reads run in bg, so that window n+1 can be read while batch n is
	// enriched and written. rctx ends them when Run returns early; Run
	// waits for them before returning.
	var bg errgroup.Group
	rctx, cancel := context.WithCancel(ctx)
	defer bg.Wait()
	defer cancel()
	// With Options.Overlap, batches are enriched and written in bg too;
	// Run waits for them and returns the first error in batch order.
	var ov *overlapper[T, R]
	if o.Overlap {
		ov = st.newOverlapper(&bg)
		defer func() { err = ov.settle(err) }()
	}

	n, cursor := cp.Batch, cp.Cursor
	if o.MaxBatches > 0 && n >= o.MaxBatches {
		// The cap was reached by the batches of an earlier run: nothing is
		// left to do under this cap. The checkpoint stays open, so a run
		// with a larger cap goes on from here.
		st.update(func(r *Report) { r.AlreadyDone = true })
		return nil
	}
	if o.Durable != nil {
		// A stop requested while no runner worked on the run.
		st.noteStop()
	}
	var pending <-chan window[T]
	for {
		num := n + 1
		if err := st.stopRequested(num); err != nil {
			return err
		}
		prefetched := pending != nil
		if !prefetched {
			pending = st.read(rctx, &bg, num, cursor)
		}
		w, waited, ok := receive(ctx, pending)
		if !ok {
			// The read sees ctx's end too, and Run waits for it
			// before returning anyway: its error is the cause.
			if w = <-pending; w.err == nil {
				return st.batchError(num, StageRead, ctx.Err())
			}
		}
		if !prefetched {
			waited = w.dur // the run waited for the whole read
		}
		pending = nil
		if w.err != nil {
			return st.batchError(num, StageRead, endedWith(ctx, w.err))
		}
		if len(w.items) > o.BatchSize {
			return st.batchError(num, StageRead, fmt.Errorf("source returned more items than asked: %d > %d", len(w.items), o.BatchSize))
		}
		if len(w.items) == 0 {
			if ov != nil {
				if err := ov.settle(nil); err != nil {
					return err
				}
			}
			return st.finish(ctx, num, cursor)
		}
		exhausted := len(w.items) < o.BatchSize
		last := exhausted || (o.MaxBatches > 0 && num >= o.MaxBatches)
		if ov != nil {
			// Batch num may start once batch num-2 is written; only
			// then is window num+1 read ahead, so that at most three
			// windows are held.
			if err := ov.admit(); err != nil {
				return err
			}
		}
		if !last {
			// The Source may reuse its slice for the next window,
			// which may be read while this one is enriched.
			w.items = slices.Clone(w.items)
			if !o.NoPrefetch {
				pending = st.read(rctx, &bg, num+1, w.next)
			}
		}

		br := BatchReport{Number: num, Read: len(w.items), ReadDuration: waited, SourceDuration: w.dur}
		b := Batch[T, R]{Number: num, After: cursor, Next: w.next, Partition: o.Partition}
		if ov != nil {
			if err := ov.start(ctx, b, w.items, exhausted, br); err != nil {
				return err
			}
		} else if err := st.strict(ctx, b, w.items, exhausted, br); err != nil {
			return err
		}
		n, cursor = num, w.next
		if last {
			return nil
		}
	}
}

// strict enriches batch b's items and writes b with them, done marking its
// checkpoint finished, in strict order: it returns once the write
// returned.
func (st *run[T, R]) strict(ctx context.Context, b Batch[T, R], items []T, done bool, br BatchReport) error {
	st.started(ctx, b.Number, len(items))
	bctx, err := st.traceBatchStart(ctx, b.Number, len(items))
	if err == nil {
		b.Results, err = st.enrich(bctx, b.Number, items, &br)
	}
	if err != nil {
		st.record(br, false)
		return st.traceBatchEnd(bctx, br, err)
	}
	return st.account(br, st.commit(bctx, b, done, &br))
}

// started announces that batch num, of n items, starts.
func (st *run[T, R]) started(ctx context.Context, num, n int) {
	st.opts.Logger.DebugContext(ctx, "batchenrich: batch started", "batch", num, "items", n)
}

// finish marks the run done in the checkpoint store after an empty window
// num (a short window's write marks it itself).
func (st *run[T, R]) finish(ctx context.Context, num int, cursor Cursor) error {
	if st.opts.Durable == nil {
		return nil
	}
	cp := st.checkpoint(num-1, cursor, true, nil)
	if err := guarded(func() error { return st.opts.Durable.Store.Save(ctx, cp) }); err != nil {
		return st.batchError(num, StageCheckpoint, err)
	}
	st.committed(cp)
	return nil
}

// checkpoint returns the checkpoint recording batch n of this run, whose
// results are results (none for the final checkpoint after an empty
// window): the counts of the last committed batch plus this one's.
func (st *run[T, R]) checkpoint(n int, cursor Cursor, done bool, results []Result[T, R]) Checkpoint {
	o := st.opts
	st.mu.Lock()
	c := st.last.Counts
	st.mu.Unlock()
	if results != nil {
		c.Batches++
		c.Read += len(results)
		c.Written += len(results)
		for _, r := range results {
			if r.Err == nil {
				c.Enriched++
				continue
			}
			c.Failed++
			switch Classify(r.Err) {
			case ClassTransient:
				c.FailedTransient++
			case ClassPermanent:
				c.FailedPermanent++
			}
		}
	}
	state := StateRunning
	switch {
	case done:
		state = StateDone
	case o.MaxBatches > 0 && n >= o.MaxBatches:
		// The last batch the cap allows: the run ends here, without
		// error, its Source not exhausted.
		state = StateStopped
	}
	return Checkpoint{RunKey: o.key, Batch: n, Cursor: cursor, Done: done,
		Partitions: o.Partition.Count, BatchSize: o.BatchSize, Fingerprint: o.Durable.Fingerprint,
		Job: o.Durable.Job, Definition: o.definition, State: state, Counts: c}
}

// committed records that cp was committed, and whether the store told of
// a stop request meanwhile.
func (st *run[T, R]) committed(cp Checkpoint) {
	st.mu.Lock()
	st.last = cp
	st.mu.Unlock()
	st.noteStop()
}

// receive waits for a window, and says how long it waited: 0 when the
// window was there already. ok is false when ctx ended first.
func receive[T any](ctx context.Context, pending <-chan window[T]) (w window[T], waited time.Duration, ok bool) {
	select {
	case w = <-pending:
		return w, 0, true
	default:
	}
	start := time.Now()
	select {
	case w = <-pending:
		return w, time.Since(start), true
	case <-ctx.Done():
		return w, time.Since(start), false
	}
}

// read starts reading the window of batch num, after cursor, in bg and
// returns where its result will arrive.
func (st *run[T, R]) read(ctx context.Context, bg *errgroup.Group, num int, after Cursor) <-chan window[T] {
	ch := make(chan window[T], 1)
	bg.Go(func() error {
		var w window[T]
		start := time.Now()
		w.items, w.next, w.err = st.readSource(ctx, num, after)
		w.dur = time.Since(start)
		ch <- w // buffered: never blocks
		return nil
	})
	return ch
}

// enrich runs the Enricher over items, at most Concurrency at a time, and
// returns their results in input order.
func (st *run[T, R]) enrich(ctx context.Context, num int, items []T, br *BatchReport) ([]Result[T, R], error) {
	return st.wait(ctx, st.startEnrich(ctx, num, items, nil), br)
}

// enrichment is the enrichment of one batch's items, under way.
type enrichment[T, R any] struct {
	g   *errgroup.Group
	ctx context.Context // the errgroup's: it ends at the first error
	one func(context.Context, int) (outcome, error)
	// group, set instead of one for a BulkEnricher, enriches group i in
	// one call and returns how many of its items were enriched.
	group   func(context.Context, int) (int, error)
	units   int           // items, or groups of items for a BulkEnricher
	slots   chan struct{} // see startEnrich
	results []Result[T, R]
	start   time.Time
	// next is the index of the next item to take; enriched and failed
	// count items.
	next, enriched, failed atomic.Int64
}

// startEnrich starts enriching items, batch num's, in ctx with
// min(Concurrency, len(items)) workers (with a BulkEnricher, one per group
// of items up to Concurrency, each taking a group at a time), and returns
// without waiting for them. When slots is not nil, each worker holds one of its slots from its
// start until it finds no item left to take, and the workers are started
// one at a time as slots come free (none once ctx ends): with Overlap,
// that is how a batch takes only the slots the batch before no longer
// needs.
func (st *run[T, R]) startEnrich(ctx context.Context, num int, items []T, slots chan struct{}) *enrichment[T, R] {
	o := st.opts
	en := &enrichment[T, R]{start: time.Now(), slots: slots}
	results := make([]Result[T, R], len(items))
	en.results = results
	g, gctx := errgroup.WithContext(ctx)
	en.g, en.ctx = g, gctx
	// settle records item i's value v or error err, and says what the
	// item's outcome does to the batch.
	settle := func(i int, v R, err error) (outcome, error) {
		item := items[i]
		res := &results[i]
		res.Index, res.Item = i, item
		if err == nil {
			res.Value = v
			return outEnriched, nil
		}
		key, kerr := itemKey(item)
		ie := &ItemError{Batch: num, Index: i, Key: key, Err: err}
		res.Err = ie
		var pe *PanicError
		if kerr != nil {
			// A panic in Keyer.Key is one in user code like any other.
			ie.Err = fmt.Errorf("Keyer.Key: %w (the enrichment failed: %w)", kerr, err)
			err = ie.Err
		}
		if errors.As(err, &pe) {
			en.failed.Add(1)
			return outPanicked, ie
		}
		if Classify(err) == ClassFatal {
			en.failed.Add(1)
			return outFailed, ie // stops the run: the program is at fault
		}
		if gctx.Err() != nil {
			// Cancelled: by the caller, or by a failure elsewhere
			// in the batch; either way the batch is abandoned.
			return outCanceled, nil
		}
		nf := en.failed.Add(1)
		o.Logger.DebugContext(ctx, "batchenrich: item failed", "batch", num, "index", i, "key", ie.Key, "error", err)
		switch {
		case o.StopAfterFailures == 1:
			return outFailed, fmt.Errorf("%w: %w", ErrTooManyFailures, ie)
		case o.StopAfterFailures > 1 && nf >= int64(o.StopAfterFailures):
			return outFailed, fmt.Errorf("%w: %d, Options.StopAfterFailures is %d (latest: %w)", ErrTooManyFailures, nf, o.StopAfterFailures, ie)
		}
		return outFailed, nil
	}
	units := len(items)
	if st.bulk != nil {
		units = (len(items) + st.bulkSize - 1) / st.bulkSize
		en.group = st.bulkGroup(num, results, items, settle)
	} else {
		one := func(ictx context.Context, i int) (outcome, error) {
			var v R
			err := st.lim.acquire(ictx)
			if err == nil {
				err = guarded(func() (e error) { v, e = st.enr.Enrich(ictx, items[i]); return })
				st.lim.release()
			}
			return settle(i, v, err)
		}
		if st.tracer != nil {
			one = st.traceItems(num, results, items, one)
		}
		en.one = one
	}
	en.units = units
	for k := range min(o.Concurrency, units) {
		if slots != nil {
			select {
			case slots <- struct{}{}:
			case <-gctx.Done():
				return en
			}
			if k == 0 {
				en.start = time.Now() // the first enrichment may start now
			}
		}
		g.Go(en.work)
	}
	return en
}

// work is one of the enrichment's workers: it takes the items in input
// order, the next one left each time, until none is left or the
// enrichment's context ends. Reusing a goroutine from item to item, rather
// than starting one per item, spares the growth of a fresh stack per item
// (about 5 % of the CPU of a run making HTTP calls).
func (en *enrichment[T, R]) work() error {
	n := 0 // enriched by this worker: one shared add, not one per item
	defer func() { en.enriched.Add(int64(n)) }()
	if en.slots != nil {
		defer func() { <-en.slots }()
	}
	for en.ctx.Err() == nil {
		i := int(en.next.Add(1) - 1)
		if i >= en.units {
			return nil
		}
		if en.group != nil {
			k, err := en.group(en.ctx, i)
			n += k
			if err != nil {
				return err
			}
			continue
		}
		out, err := en.one(en.ctx, i)
		if out == outEnriched {
			n++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// wait waits for the enrichment en of batch num, whose context is ctx, to
// end, and returns its results in input order, or the error that stops
// the run.
func (st *run[T, R]) wait(ctx context.Context, en *enrichment[T, R], br *BatchReport) ([]Result[T, R], error) {
	defer func() { br.EnrichDuration = time.Since(en.start) }()
	num := br.Number
	err := en.g.Wait()
	// Count what happened even when the batch is abandoned: items
	// enriched or failed before the stop, not those cut short by it.
	br.Enriched, br.Failed = int(en.enriched.Load()), int(en.failed.Load())
	if cerr := ctx.Err(); cerr != nil {
		return nil, st.batchError(num, StageEnrich, cerr)
	}
	if err != nil {
		var ie *ItemError
		if errors.As(err, &ie) && !errors.Is(err, ErrTooManyFailures) {
			return nil, ie // a panic or a Fatal error: it names the item
		}
		return nil, st.batchError(num, StageEnrich, err)
	}
	if n := len(en.results); br.Failed == n && n >= allFailedMinItems && !st.opts.AllowAllFailed {
		return nil, st.batchError(num, StageEnrich, allFailed(en.results, st.opts.Durable != nil))
	}
	return en.results, nil
}

// write hands the batch to the Sink, together with its checkpoint when the
// run is durable; done marks the checkpoint finished (the Source is
// exhausted).
func (st *run[T, R]) write(ctx context.Context, b Batch[T, R], done bool, br *BatchReport) error {
	o := st.opts
	start := time.Now()
	defer func() { br.WriteDuration = time.Since(start) }()
	fail := func(stage Stage, err error) error {
		return st.batchError(b.Number, stage, endedWith(ctx, err))
	}
	// A cancelled batch is not written, even by a Sink that would not
	// look at ctx.
	if err := ctx.Err(); err != nil {
		return fail(StageWrite, err)
	}
	if o.Durable == nil {
		if err := guarded(func() error { return st.sink.Write(ctx, b) }); err != nil {
			return fail(StageWrite, err)
		}
		br.Written = len(b.Results)
		return nil
	}
	cp := st.checkpoint(b.Number, b.Next, done, b.Results)
	if cs, ok := st.sink.(CheckpointSink[T, R]); ok && st.oneTx.Load() {
		err := guarded(func() error { return cs.WriteCheckpointed(ctx, b, o.Durable.Store, cp) })
		if err == nil {
			br.Written = len(b.Results)
			st.committed(cp)
			return nil
		}
		if !errors.Is(err, ErrCheckpointUnsupported) {
			return fail(StageWrite, err)
		}
		o.Logger.InfoContext(ctx, "batchenrich: sink cannot share the checkpoint transaction; at-least-once", "error", err)
	}
	st.oneTx.Store(false)
	if err := ctx.Err(); err != nil {
		return fail(StageWrite, err)
	}
	if err := guarded(func() error { return st.sink.Write(ctx, b) }); err != nil {
		return fail(StageWrite, err)
	}
	br.Written = len(b.Results)
	if err := guarded(func() error { return o.Durable.Store.Save(ctx, cp) }); err != nil {
		return fail(StageCheckpoint, err)
	}
	st.committed(cp)
	return nil
}
