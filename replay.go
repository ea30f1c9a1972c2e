package batchenrich

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// replayKey returns the run key of replay n (from 1) of the run runKey:
// runKey + "#replay-" + n. A replay keeps its checkpoint and its lock
// under this key (ReplayReport.ReplayKey).
func replayKey(runKey string, n int) string {
	return runKey + "#replay-" + strconv.Itoa(n)
}

// Replay re-enriches the items that a durable run stored as failed, and
// writes the new results over the failed ones: a dead-letter replay.
// Create one with NewReplay.
//
// A replay is a durable run of its own: replay n of the run K keeps its
// checkpoint and lock under the key K#replay-n (ReplayReport.ReplayKey), so it can be interrupted and
// resumed like any run. Run finds the replay to work on itself: the first
// replay of K not yet finished (an interrupted one is resumed), else a new
// one. While it works, it also holds the lock of K itself, so that two
// replays of one run, or a replay and the run, never work at once; for a
// run split into partitions it holds each partition's lock too, so a
// replay of a run any of whose partitions is running is refused (or waits,
// with Durable.LockWait). Run refuses a run key with no recorded run
// (ErrUnknownRun), and a run recorded by another Durable.Job or with
// another Enricher or Sink definition (ErrCheckpointMismatch; see
// Describer). The Sink is not compared for a partitioned run: each of its
// partitions wrote through a Sink of its own (NewPartitioned's sink(p)),
// and the replay, one stream, writes through none of them.
//
// Which items a replay retries is up to its Source: it reads the items
// the run stored as failed, in a stable order: usually those of
// ClassTransient only, which may succeed now, or every one
// (sqlbatch.NewFailedSource builds one from where a sqlbatch.Sink stored
// them, FailedSourceConfig.AllClasses choosing). Each Batch a replay writes has Replay set
// to the replay's number, so that a Sink keeps the batch number the items
// were stored with (see Batch.Replay).
type Replay[T, R any] struct {
	base *Runner[T, R] // the components and options, RunKey the run's
}

// ReplayReport describes a replay. Its Report covers the batches of the
// replay that this call handled: Written counts the items it retried and
// stored, Enriched those that succeeded this time, Failed those that
// failed again (and stay stored as failed, with their latest reason).
type ReplayReport struct {
	Report

	// RunKey is the replayed run's key (Durable.RunKey).
	RunKey string
	// Number is the replay's number, from 1 (with NothingToReplay, the
	// number the next replay will take); ReplayKey its run key.
	Number    int
	ReplayKey string
	// NothingToReplay is set when the run had no failure in scope to
	// retry: Run then did nothing, and saved no checkpoint.
	NothingToReplay bool
}

// NewReplay returns a Replay of the run opts.Durable.RunKey: it reads the run's
// failed items from failed, enriches them with enr and writes them to
// sink, configured by opts like a Runner (New). opts.Durable is
// required, and its RunKey names the run to replay, not the replay.
// opts.MaxBatches caps the batches of one replay: a replay stopped at the
// cap is resumed by the next Run, which needs a larger cap (or none) to go
// on. It returns a *ConfigError naming the first invalid field or nil
// argument (the Source argument is named "failed").
func NewReplay[T, R any](failed Source[T], enr Enricher[T, R], sink Sink[T, R], opts Options) (*Replay[T, R], error) {
	switch {
	case opts.Durable == nil:
		return nil, optionErr("Durable", "required for a replay, a durable run of its own")
	case opts.Partition.Partitioned():
		return nil, optionErr("Partition", "a replay is not partitioned: it retries the failures of the whole run")
	}
	r, err := newRunner(failed, enr, sink, opts, argNames{"failed", "enr", "sink"})
	if err != nil {
		return nil, err
	}
	return &Replay[T, R]{base: r}, nil
}

// Run works on the first unfinished replay of the run, or starts a new
// one, until every failed item read from the Source was retried, an error
// stops it, or ctx ends. A run with no failure left to replay is left as
// it is: Run returns a report with NothingToReplay set and a nil error.
//
// An unfinished replay goes on after its checkpoint's cursor with the
// Source given now: resumed with another scope, it retries the failures
// of that scope after the cursor, and the next replay those before it.
// The all-failed stop applies as in any run (see ErrAllFailed): a replay
// during an outage that goes on stops at its first batch whose every item
// failed again, leaving the stored failures as they were, and goes on
// when Run is called again.
//
// It returns an error wrapping ErrRunLocked when the run or another replay
// of it holds the run's lock and Durable.LockWait is false; the other
// errors are those of Runner.Run.
func (p *Replay[T, R]) Run(ctx context.Context) (rr ReplayReport, err error) {
	o := p.base.opts
	rr.RunKey = o.key
	if err := ctx.Err(); err != nil {
		return rr, err
	}
	if err := p.base.check(ctx); err != nil {
		return rr, err
	}
	// The run's own lock, taken as a Runner of the run takes it.
	unlock, lerr := lockRun(ctx, o, "the run or a replay of it is running")
	if lerr != nil {
		return rr, lerr
	}
	if unlock != nil {
		defer func() { err = unlockRun(err, unlock, o.key) }()
	}
	parts, err := p.checkRun(ctx)
	if err != nil {
		return rr, err
	}
	// The replay's run holds, besides what a run holds, the run's lock
	// and each partition's.
	if err := checkConns(ctx, []*Runner[T, R]{p.base}, lockUses(o, 1+parts, "the replayed run and its partitions")); err != nil {
		return rr, err
	}
	// A partitioned run's partitions take only their own locks while
	// they work: hold each of them too.
	for i := range parts {
		po := o
		po.key = Partition{Index: i, Count: parts}.RunKey(o.key)
		unlock, lerr := lockRun(ctx, po, "partition "+strconv.Itoa(i)+" of the run is running")
		if lerr != nil {
			return rr, lerr
		}
		if unlock != nil {
			defer func() { err = unlockRun(err, unlock, po.key) }()
		}
	}

	for rr.Number = 1; ; rr.Number++ {
		rk := replayKey(o.key, rr.Number)
		var cp Checkpoint
		if err := guarded(func() (e error) { cp, e = o.Durable.Store.Load(ctx, rk); return }); err != nil {
			return rr, &BatchError{Stage: StageCheckpoint, RunKey: rk, Err: err}
		}
		if cp.Done {
			continue
		}
		rr.ReplayKey = rk
		if cp.Batch == 0 {
			// Not started yet (or nothing of it committed): is there
			// anything to replay at all?
			var items []T
			if err := guarded(func() (e error) { items, _, e = p.base.src.Read(ctx, "", 1); return }); err != nil {
				return rr, &BatchError{Batch: 1, Stage: StageRead, RunKey: rk, Err: err}
			}
			if len(items) == 0 {
				rr.NothingToReplay = true
				o.Logger.InfoContext(ctx, "batchenrich: nothing to replay", "run_key", o.key)
				return rr, nil
			}
		}
		break
	}

	ro, d := o, *o.Durable
	d.RunKey = rr.ReplayKey
	ro.Durable, ro.derivedKey = &d, true
	r, err := New[T, R](p.base.src, p.base.enr, &replaySink[T, R]{Sink: p.base.sink, n: rr.Number}, ro)
	if err != nil {
		return rr, err
	}
	r.checked = true // above, before the run's lock
	o.Logger.InfoContext(ctx, "batchenrich: replay", "run_key", o.key, "replay", rr.Number)
	rr.Report, err = r.Run(ctx)
	return rr, err
}

// checkRun refuses a replay of a run key with no recorded run
// (ErrUnknownRun), or recorded by another job or with another Enricher or
// (unless the run is partitioned) Sink (ErrCheckpointMismatch), and returns the run's partition count (0
// when it is not partitioned).
func (p *Replay[T, R]) checkRun(ctx context.Context) (int, error) {
	o := p.base.opts
	load := func(key string) (cp Checkpoint, err error) {
		if err := guarded(func() (e error) { cp, e = o.Durable.Store.Load(ctx, key); return }); err != nil {
			return cp, &BatchError{Stage: StageCheckpoint, RunKey: key, Err: err}
		}
		return cp, nil
	}
	cp, err := load(o.key)
	if err != nil {
		return 0, err
	}
	if !recorded(cp) {
		return 0, &BatchError{Stage: StageCheckpoint, RunKey: o.key, Err: fmt.Errorf(
			"%w: nothing is recorded under this key in the store; check the key, and the store's table", ErrUnknownRun)}
	}
	parts, compared := 0, []string{"enricher", "sink"}
	if cp.Partitions > 1 {
		// The run's own key records only the count: its partitions
		// record the rest. Each partition wrote through a Sink of its
		// own (NewPartitioned's sink(p)), which may write the partition's
		// index; the replay, one stream, writes through one Sink that is
		// none of them, so its Sink is not compared.
		parts, compared = cp.Partitions, []string{"enricher"}
		if cp, err = load(Partition{Index: 0, Count: parts}.RunKey(o.key)); err != nil {
			return 0, err
		}
	}
	if diffs := identityDiffs(cp, o, compared); len(diffs) > 0 {
		return 0, &BatchError{Stage: StageCheckpoint, RunKey: o.key, Err: fmt.Errorf(
			"%w: by another job or definition: %s; replay it with the run's own Job, Enricher and Sink",
			ErrCheckpointMismatch, strings.Join(diffs, " and "))}
	}
	return parts, nil
}

// replaySink marks each batch with the replay's number before handing it
// to the Sink.
type replaySink[T, R any] struct {
	Sink[T, R]
	n int
}

// Describe returns the wrapped Sink's description, if it has one.
func (s *replaySink[T, R]) Describe() string {
	if d, ok := s.Sink.(Describer); ok {
		return d.Describe()
	}
	return ""
}

func (s *replaySink[T, R]) Write(ctx context.Context, b Batch[T, R]) error {
	b.Replay = s.n
	return s.Sink.Write(ctx, b)
}

func (s *replaySink[T, R]) WriteCheckpointed(ctx context.Context, b Batch[T, R], store CheckpointStore, cp Checkpoint) error {
	cs, ok := s.Sink.(CheckpointSink[T, R])
	if !ok {
		return fmt.Errorf("sink %T: %w", s.Sink, ErrCheckpointUnsupported)
	}
	b.Replay = s.n
	return cs.WriteCheckpointed(ctx, b, store, cp)
}
