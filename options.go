package batchenrich

import (
	"fmt"
	"log/slog"

	"github.com/batchenrich/batchenrich/internal/bounds"
)

// maxBatchSize bounds Options.BatchSize.
const maxBatchSize = 1 << 20

// defaultBatchSize is Options.BatchSize when zero.
const defaultBatchSize = 100

// defaultConcurrency is Options.Concurrency when zero.
const defaultConcurrency = 25

// maxConcurrency bounds Options.Concurrency.
const maxConcurrency = bounds.Concurrency

// maxJobLen bounds the length of Durable.Job, in bytes.
const maxJobLen = 200

// Options configure a Runner. The zero value is valid and means the
// defaults; New validates every field and reports the first bad one as an
// *ConfigError.
type Options struct {
	// BatchSize is the number of items per batch (one Source window).
	// Zero means 100; at most 1 << 20 (1,048,576).
	BatchSize int

	// MaxBatches caps the number of batches of a run: it stops after that
	// many even if the Source has more, so a run handles at most
	// BatchSize × MaxBatches items. Zero means no cap. A resumed run
	// counts the batches its earlier attempts committed, and a durable run
	// that stopped at the cap goes on when run again with a larger one.
	MaxBatches int

	// Concurrency is the number of enrichments in flight at most: within
	// a batch, or with Overlap across the two batches that may be enriched
	// at once; for a NewPartitioned Runner, over all its partitions. Zero
	// means 25; at most 1 << 16 (65,536).
	Concurrency int

	// StopAfterFailures, when positive, stops the run at a batch's
	// StopAfterFailures-th failed item: the remaining enrichments of the
	// batch are cancelled, the batch is not written, and Run returns a
	// *BatchError wrapping ErrTooManyFailures and the latest *ItemError.
	// 1 stops at the first failed item. Zero, the default, never stops for
	// failed items: they reach the Sink as Results with Err set, and are
	// counted. Whatever it is, a batch whose every item failed (see
	// ErrAllFailed) and a Fatal item error stop the run.
	StopAfterFailures int

	// AllowAllFailed turns off the all-failed stop: by default a batch of
	// at least 5 items in which every item failed stops
	// the run before that batch is written, with ErrAllFailed. Set it for
	// jobs where a whole batch may legitimately fail.
	AllowAllFailed bool

	// NoPrefetch disables reading window n+1 from the Source while batch n
	// is being enriched. Prefetching never starts the next batch's
	// enrichment early: batch n+1 is enriched only after the Sink has
	// returned from writing batch n (unless Overlap is set). It cannot be
	// combined with Overlap.
	NoPrefetch bool

	// Overlap lets batches overlap: batch n+1's enrichment starts while
	// batch n is still being enriched or written, once batch n-1's write
	// has returned without error, taking the enrichment slots that batch
	// n's workers free when no item of batch n is left for them to take;
	// batch n's items never wait for a slot held by batch n+1. Everything
	// else holds: at most Concurrency enrichments are in flight in all,
	// the batches sharing them; batches are written, and checkpointed, one
	// at a time in batch order (each with its checkpoint in one
	// transaction when the Sink is a CheckpointSink sharing the store);
	// batch n+1's write starts only after batch n's returned, and never if
	// it failed; the batch cap and numbering are unchanged. When batch n
	// stops the run (see Runner.Run), batch n+1's enrichment is cancelled
	// and it is never written, while batch n-1 is still finished and
	// written (unless ctx ended, which reaches it too); Run returns the
	// error of the first batch, in batch order, that stopped the run, even
	// if a later one failed first. The cost: after a crash a durable run
	// re-enriches up to two batches (at most two are ever enriched, or
	// being enriched, and not committed) instead of one, and up to three
	// windows are held in memory instead of two (two batches being
	// enriched or written, one window read ahead). Off by default.
	Overlap bool

	// Durable, when set, makes runs durable: checkpoints, resume after a
	// crash, and one runner at a time per run key (see Durable). Nil is a
	// run that records nothing.
	Durable *Durable

	// Partition, when its Count is above 1, makes this Runner work on one
	// key partition of a run split into Count: its Source must read that
	// partition only (sqlbatch.SourceConfig.Partition), its checkpoint and
	// lock are its own (under Partition.RunKey(Durable.RunKey)), batch
	// numbers count within the partition, and MaxBatches caps the
	// partition's batches. The count is recorded with the checkpoints: a
	// run recorded with another count is refused before any read
	// (ErrPartitionsChanged). The zero value, like Count 1, is an
	// unpartitioned run. NewPartitioned returns a Runner of all the
	// partitions of a run, in one process, and sets it per partition.
	Partition Partition

	// RunsAtOnce, above 1, tells Run that up to RunsAtOnce runs like this
	// one work at once in this process on the same connection pools (the
	// partition jobs of a riverenrich worker, which sets it): the pools
	// are checked for RunsAtOnce times what this run holds (see ConnUser).
	// Zero or 1 means this run alone; at most 4,096. A NewPartitioned run
	// checks its partitions together and refuses it.
	RunsAtOnce int

	// key is the run key the Runner records its checkpoint and takes its
	// lock under: Durable.RunKey, or Partition.RunKey(Durable.RunKey) for
	// a partition of a split run. Set by withDefaults.
	key string

	// definition is the run's definition, derived by New from the
	// components (see definitionOf).
	definition string

	// derivedKey is set when Durable.RunKey was derived by the library (a
	// replay's), which checkRunKey would refuse from a user.
	derivedKey bool

	// split is set in the options of a NewPartitioned Runner (Partition
	// zero): its partitions, for CheckResume.
	split *splitRun

	// Logger receives the run's log records. Nil means silent. A record
	// whose handler panics is lost; the panic never escapes the Runner.
	Logger *slog.Logger

	// Tracer, when set, observes the run as it goes: the run, its
	// batches, its items, its reads and writes and the Enricher's limit
	// changes, for progress, tracing and metrics (see Tracer for what
	// runs where). Nil costs nothing.
	Tracer Tracer
}

// withDefaults validates o and returns it with defaults filled in.
func (o Options) withDefaults() (Options, error) {
	bad := func(field, reason string) (Options, error) {
		return o, optionErr(field, reason)
	}
	o.split = nil // NewPartitioned sets it after
	switch {
	case o.BatchSize < 0:
		return bad("BatchSize", "must not be negative")
	case o.BatchSize > maxBatchSize:
		return bad("BatchSize", fmt.Sprintf("%d: must be at most %d", o.BatchSize, maxBatchSize))
	case o.MaxBatches < 0:
		return bad("MaxBatches", "must not be negative (0 means no cap)")
	case o.Concurrency < 0:
		return bad("Concurrency", "must not be negative")
	case o.Concurrency > maxConcurrency:
		return bad("Concurrency", fmt.Sprintf("%d: must be at most %d", o.Concurrency, maxConcurrency))
	case o.RunsAtOnce < 0 || o.RunsAtOnce > maxPartitions:
		return bad("RunsAtOnce", fmt.Sprintf("%d: must be between 0 and %d", o.RunsAtOnce, maxPartitions))
	case o.StopAfterFailures < 0:
		return bad("StopAfterFailures", "must not be negative (0 means failed items never stop the run)")
	case o.Overlap && o.NoPrefetch:
		return bad("Overlap", "needs the next window read ahead; cannot be combined with NoPrefetch")
	}
	if err := o.Partition.validate(); err != nil {
		return o, err
	}
	if !o.Partition.Partitioned() {
		o.Partition = Partition{}
	}
	if o.Durable != nil {
		d := *o.Durable // the caller's may change after New
		if err := d.validate(o.derivedKey); err != nil {
			return o, err
		}
		if d.LockRetryInterval == 0 {
			d.LockRetryInterval = defaultLockRetryInterval
		}
		o.Durable = &d
		o.key = o.Partition.RunKey(d.RunKey)
	}
	if o.BatchSize == 0 {
		o.BatchSize = defaultBatchSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = defaultConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	} else {
		o.Logger = safeLogger(o.Logger)
	}
	return o, nil
}
