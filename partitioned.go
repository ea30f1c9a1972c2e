package batchenrich

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// NewPartitioned returns a Runner of one run split into partitions key
// partitions, all worked on at once in this process by its Run.
//
// source(p) returns the Source of partition p: it must read that
// partition's items only, and together the Sources must read every item
// exactly once (sqlbatch.SourceConfig.Partition does this). sink(p)
// returns the Sink of partition p; it may return the same Sink for every
// partition if that Sink is safe for concurrent use (sqlbatch's is), and
// Batch.Partition tells a Sink which partition a batch belongs to. enr
// is shared by all partitions, so it must be safe for concurrent use
// (httpenrich's is).
//
// opts are every partition's options, as for New, except that
// Options.Concurrency bounds the enrichments in flight over all
// partitions, the process's total (each partition may take any of them);
// MaxBatches caps each partition's batches; Durable.RunKey is the run's
// key, each partition keeping its checkpoint and lock under
// Partition.RunKey(RunKey); a Tracer observes every partition (see
// TraceRun.Partition). Options.Partition and Options.RunsAtOnce must be
// zero: they are set per partition. partitions is from 1 to 4,096; with
// 1, NewPartitioned is New with the Source and Sink of the one partition,
// exactly an unpartitioned run.
//
// It returns a *ConfigError naming the first bad argument or field
// (Options fields are named as in Options), or the error of source or
// sink, wrapped (a panic in them is a *PanicError, wrapped likewise).
func NewPartitioned[T, R any](partitions int, source func(p Partition) (Source[T], error), enr Enricher[T, R],
	sink func(p Partition) (Sink[T, R], error), opts Options) (*Runner[T, R], error) {
	switch {
	case partitions < 1 || partitions > maxPartitions:
		return nil, optionErr("partitions", fmt.Sprintf("%d: must be between 1 and %d", partitions, maxPartitions))
	case source == nil:
		return nil, optionErr("source", "nil Source function")
	case sink == nil:
		return nil, optionErr("sink", "nil Sink function")
	case opts.RunsAtOnce != 0:
		return nil, optionErr("RunsAtOnce", "the partitions of a NewPartitioned run are checked together; leave it zero")
	case opts.Partition != (Partition{}):
		return nil, optionErr("Partition", "set per partition by NewPartitioned; leave it zero")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	o.split = &splitRun{definitions: make([]string, partitions)}
	parent := &Runner[T, R]{opts: o, parts: make([]*Runner[T, R], partitions)}
	// Each partition may take any of the slots; the limiter caps their
	// sum.
	lim := newLimiter(o.Concurrency)
	for i := range partitions {
		part := Partition{Index: i, Count: partitions}
		var src Source[T]
		err := guarded(func() (err error) { src, err = source(part); return err })
		if err != nil {
			return nil, fmt.Errorf("batchenrich: source of partition %s: %w", part, err)
		}
		if src == nil {
			return nil, optionErr("source", "returned a nil Source for partition "+part.String())
		}
		var snk Sink[T, R]
		err = guarded(func() (err error) { snk, err = sink(part); return err })
		if err != nil {
			return nil, fmt.Errorf("batchenrich: sink of partition %s: %w", part, err)
		}
		if snk == nil {
			return nil, optionErr("sink", "returned a nil Sink for partition "+part.String())
		}
		po := opts
		po.Partition = part
		r, err := New(src, enr, snk, po)
		if err != nil {
			return nil, err
		}
		if partitions == 1 {
			return r, nil
		}
		r.siblingStop, r.lim = &parent.partStop, lim
		parent.parts[i] = r
		o.split.definitions[i] = r.opts.definition
	}
	return parent, nil
}

// splitRun is what the options of a NewPartitioned Runner keep of its
// partitions: each one's definition, by index (their count is the
// partition count).
type splitRun struct {
	definitions []string
}

// runPartitions is Run for a Runner of NewPartitioned: it runs every
// partition concurrently and returns when all have returned (see Run).
func (r *Runner[T, R]) runPartitions(ctx context.Context) (Report, error) {
	rep := Report{Partitions: make([]Report, len(r.parts)), Started: time.Now()}
	end := func(err error) (Report, error) {
		rep.sumPartitions()
		rep.Duration = time.Since(rep.Started)
		return rep, err
	}
	// The pools must hold every partition at once: checked here, once.
	if err := checkConns(ctx, r.parts, nil); err != nil {
		return end(err)
	}
	ctx = context.WithValue(ctx, connsCheckedKey{}, true)
	if o := r.parts[0].opts; o.Durable != nil {
		// Once for all partitions, so that a changed count is one error.
		if err := claimRun(ctx, o); err != nil {
			return end(err)
		}
	}
	r.partStop.Store(false)
	for _, pr := range r.parts {
		pr.stopAsked.Store(false)
	}
	errs := make([]error, len(r.parts))
	g, gctx := errgroup.WithContext(ctx)
	for i, pr := range r.parts {
		g.Go(func() error {
			var err error
			rep.Partitions[i], err = pr.Run(gctx)
			if err == nil {
				return nil
			}
			errs[i] = &partitionError{part: pr.opts.Partition, err: err}
			if errors.Is(err, ErrStopRequested) {
				// Not a failure: the others stop at their next batch
				// boundary, their batches committed, not cancelled.
				r.partStop.Store(true)
				return nil
			}
			return errs[i]
		})
	}
	first := g.Wait()
	if first == nil {
		return end(stopError(r.parts, errs))
	}
	var keep []error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if ctx.Err() == nil && err != first && errors.Is(err, context.Canceled) {
			continue // stopped by the failure of another partition
		}
		keep = append(keep, err)
	}
	if len(keep) == 1 {
		return end(keep[0])
	}
	return end(errors.Join(keep...))
}

// stopError returns the error of the partition an operator asked to stop
// (the first by index, when several were), else the first of those that
// stopped with it (each errs[i] is parts[i]'s error); nil when none stopped.
func stopError[T, R any](parts []*Runner[T, R], errs []error) error {
	var sibling error
	for i, err := range errs {
		if err == nil || !errors.Is(err, ErrStopRequested) {
			continue
		}
		if parts[i].stopAsked.Load() {
			return err
		}
		if sibling == nil {
			sibling = err
		}
	}
	return sibling
}

// partitionError is the failure of one partition of a NewPartitioned
// run: its text names the partition, then the cause.
type partitionError struct {
	part Partition
	err  error
}

// Partition returns the partition that failed.
func (e *partitionError) Partition() Partition { return e.part }

// Error reads "batchenrich: partition 1 of 3: " and the cause, whose own
// "batchenrich: " prefix is not repeated when this package made the
// cause (a *BatchError, an *ItemError, a *ConfigError): the text of an
// error made elsewhere is kept as it is.
func (e *partitionError) Error() string {
	msg := e.err.Error()
	switch e.err.(type) {
	case *BatchError, *ItemError, *ConfigError:
		msg = strings.TrimPrefix(msg, "batchenrich: ")
	}
	return "batchenrich: partition " + strconv.Itoa(e.part.Index) + " of " + strconv.Itoa(e.part.Count) + ": " + msg
}

// Unwrap returns the cause.
func (e *partitionError) Unwrap() error { return e.err }
