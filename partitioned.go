package batchenrich

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// PartitionedConfig configures a Partitioned run: one run split into
// Partitions key partitions, all worked on in this process.
type PartitionedConfig[T, R any] struct {
	// Partitions is the number of partitions P, from 1 to 4,096.
	// Zero means 1: a single Runner, exactly an unpartitioned run.
	Partitions int

	// Source returns the Source of partition p: it must read that
	// partition's items only, and together the P Sources must read every
	// item exactly once (sqlbatch.SourceConfig.Partition does this).
	Source func(p Partition) (Source[T], error)

	// Enricher is shared by all partitions, so it must be safe for
	// concurrent use (httpenrich's is).
	Enricher Enricher[T, R]

	// Sink returns the Sink of partition p. It may return the same Sink
	// for every partition if that Sink is safe for concurrent use
	// (sqlbatch's is); Batch.Partition tells a Sink which partition a
	// batch belongs to.
	Sink func(p Partition) (Sink[T, R], error)

	// Options are each partition's Runner options. Options.Partition is
	// set per partition; RunKey is the run's key (each partition keeps
	// its checkpoint under Partition.RunKey(RunKey)); Concurrency is the
	// bound of one partition; MaxBatches caps each partition's batches;
	// Tracer, if set, observes all partitions (see
	// TraceRun.Partition).
	Options Options

	// Concurrency bounds the enrichments in flight over all partitions:
	// the process's total. Zero means Partitions × Options.Concurrency
	// (each partition's own bound, no shared one).
	Concurrency int
}

// Partitioned runs the partitions of one run concurrently in this
// process. Create one with NewPartitioned.
type Partitioned[T, R any] struct {
	runners []*Runner[T, R]
	// stop is every runner's siblingStop.
	stop atomic.Bool
}

// NewPartitioned validates cfg and returns a Partitioned run. It returns
// an *ConfigError naming the first bad field (Options fields are named as
// in Options), or the error of cfg.Source, wrapped.
func NewPartitioned[T, R any](cfg PartitionedConfig[T, R]) (*Partitioned[T, R], error) {
	p := cfg.Partitions
	switch {
	case p < 0 || p > maxPartitions:
		return nil, optionErr("Partitions", fmt.Sprintf("%d: must be between 0 and %d", p, maxPartitions))
	case cfg.Source == nil:
		return nil, optionErr("Source", "nil Source function")
	case cfg.Sink == nil:
		return nil, optionErr("Sink", "nil Sink function")
	case cfg.Concurrency < 0 || cfg.Concurrency > maxConcurrency:
		return nil, optionErr("Concurrency", fmt.Sprintf("%d: must be between 0 and %d", cfg.Concurrency, maxConcurrency))
	case cfg.Options.RunsAtOnce != 0:
		return nil, optionErr("Options.RunsAtOnce", "the partitions of a NewPartitioned run are checked together; leave it zero")
	case cfg.Options.Partition != (Partition{}):
		return nil, optionErr("Options.Partition", "set per partition by Partitioned; leave it zero")
	}
	p = max(p, 1)
	enr := cfg.Enricher
	if cfg.Concurrency > 0 && enr != nil {
		enr = limitEnricher(newLimiter(cfg.Concurrency), enr)
	}
	pr := &Partitioned[T, R]{runners: make([]*Runner[T, R], p)}
	for i := range p {
		part := Partition{Index: i, Count: p}
		src, err := cfg.Source(part)
		if err != nil {
			return nil, fmt.Errorf("batchenrich: source of partition %s: %w", part, err)
		}
		sink, err := cfg.Sink(part)
		if err != nil {
			return nil, fmt.Errorf("batchenrich: sink of partition %s: %w", part, err)
		}
		opts := cfg.Options
		opts.Partition = part
		r, err := New(src, enr, sink, opts)
		if err != nil {
			return nil, err
		}
		r.siblingStop = &pr.stop
		pr.runners[i] = r
	}
	return pr, nil
}

// Runners returns the Runner of each partition, by index.
func (pr *Partitioned[T, R]) Runners() []*Runner[T, R] { return pr.runners }

// Run runs every partition concurrently and returns when all have
// returned. Each partition keeps a Runner's guarantees within itself
// (strict batch order, numbering, checkpoint and lock of its own, resume
// after its last committed batch); across partitions nothing is ordered.
// At most PartitionedConfig.Concurrency enrichments are in flight in
// total.
//
// The first partition to fail cancels the others (whose current batch is
// then not written; they resume from their checkpoints on the next run).
// Run returns the failures as *PartitionError values joined with
// errors.Join, leaving out the partitions that only stopped because
// another failed. A partition stopping at an operator's request
// (ErrStopRequested) is no failure: it cancels nothing, and the others
// stop at their next batch boundary too, each committing the batch it is
// on; Run then returns the first such *PartitionError. A changed
// partition count is refused before anything is read
// (ErrPartitionsChanged), and so is a connection pool that cannot hold
// every partition at once (see ConnUser).
func (pr *Partitioned[T, R]) Run(ctx context.Context) (PartitionedReport, error) {
	rep := PartitionedReport{Partitions: make([]Report, len(pr.runners)), Started: time.Now()}
	if len(pr.runners) == 1 {
		var err error
		rep.Partitions[0], err = pr.runners[0].Run(ctx)
		rep.Duration = time.Since(rep.Started)
		return rep, err
	}
	// The pools must hold every partition at once: checked here, once.
	if err := checkConns(ctx, pr.runners, nil); err != nil {
		rep.Duration = time.Since(rep.Started)
		return rep, err
	}
	ctx = context.WithValue(ctx, connsCheckedKey{}, true)
	if o := pr.runners[0].opts; o.Durable != nil {
		// Once for all partitions, so that a changed count is one error.
		if err := claimRun(ctx, o); err != nil {
			rep.Duration = time.Since(rep.Started)
			return rep, err
		}
	}
	pr.stop.Store(false)
	errs := make([]error, len(pr.runners))
	var (
		mu        sync.Mutex
		firstStop error // the first partition to stop at an operator's request
	)
	g, gctx := errgroup.WithContext(ctx)
	for i, r := range pr.runners {
		g.Go(func() error {
			var err error
			rep.Partitions[i], err = r.Run(gctx)
			if err == nil {
				return nil
			}
			errs[i] = &PartitionError{Partition: r.opts.Partition, Err: err}
			if errors.Is(err, ErrStopRequested) {
				// Not a failure: the others stop at their next batch
				// boundary, their batches committed, not cancelled.
				pr.stop.Store(true)
				mu.Lock()
				if firstStop == nil {
					firstStop = errs[i]
				}
				mu.Unlock()
				return nil
			}
			return errs[i]
		})
	}
	first := g.Wait()
	rep.Duration = time.Since(rep.Started)
	if first == nil {
		return rep, firstStop
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
		return rep, keep[0]
	}
	return rep, errors.Join(keep...)
}

// PartitionedReport describes a Partitioned run.
type PartitionedReport struct {
	// Partitions holds each partition's Report, by index.
	Partitions []Report
	// Started is when Run began, and Duration how long it took.
	Started  time.Time
	Duration time.Duration
}

// BatchesRun counts the batches written by this run over all partitions.
func (r PartitionedReport) BatchesRun() int { return r.sum(func(p Report) int { return p.BatchesRun }) }

// BatchesSkipped counts the batches found already committed, over all
// partitions.
func (r PartitionedReport) BatchesSkipped() int {
	return r.sum(func(p Report) int { return p.BatchesSkipped })
}

// Written counts the items written by this run over all partitions.
func (r PartitionedReport) Written() int { return r.sum(func(p Report) int { return p.Written }) }

// Failed counts the failed items of this run over all partitions.
func (r PartitionedReport) Failed() int { return r.sum(func(p Report) int { return p.Failed }) }

func (r PartitionedReport) sum(f func(Report) int) int {
	n := 0
	for _, p := range r.Partitions {
		n += f(p)
	}
	return n
}

// PartitionError is the failure of one partition of a split run.
type PartitionError struct {
	// Partition is the partition that failed, and Err its Runner's error.
	Partition Partition
	Err       error
}

// Error names the partition, then the cause (whose own "batchenrich: "
// prefix is not repeated).
func (e *PartitionError) Error() string {
	return "batchenrich: partition " + strconv.Itoa(e.Partition.Index) + " of " + strconv.Itoa(e.Partition.Count) + ": " +
		strings.TrimPrefix(e.Err.Error(), "batchenrich: ")
}

// Unwrap returns the cause.
func (e *PartitionError) Unwrap() error { return e.Err }
