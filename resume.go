package batchenrich

import "context"

// CheckResume returns the error a Runner with options opts would return
// before it reads anything, without running: it makes the checks Run
// makes on the run key's recorded state, in opts.Durable.Store. It
// returns nil when the run may go on (or start), else a *BatchError of
// stage StageCheckpoint wrapping ErrPartitionsChanged (recorded with
// another partition count; a refusal of the run, Batch 0) or
// ErrCheckpointMismatch (another BatchSize or Fingerprint, unless
// Durable.AllowReshape; another Durable.Job, or, for opts taken from
// Runner.Options(), another definition; Batch is the batch the run would
// have gone on with), or the store's error as Run returns it (a
// *BatchError of batch 1 at StageCheckpoint). With opts.Durable nil it
// returns nil, checking nothing; otherwise invalid opts are a
// *ConfigError, as New's.
//
// For a partition of a split run (Options.Partition.Count above 1) it
// first claims the partition count, as Run does: it checks the count
// recorded under the run's own key (Durable.RunKey) and records it the
// first time, so that a later run, or enqueue, with another count is
// refused; when the store is a Locker the claim is made under the run's
// lock, held for a moment and taken as Run takes it (waiting for it up to
// 10 s, or as long as it takes with Durable.LockWait, trying again every
// Durable.LockRetryInterval; then a *BatchError at StageLock wrapping
// ErrRunLocked). Otherwise it only reads: a program planning a run
// without running it (a dry run) calls it to refuse what the run would
// refuse, with the same error, and an enqueuer of partitions (riverenrich)
// to refuse a changed count before enqueueing work.
//
// Given the Options() of a NewPartitioned Runner, it checks what that
// Runner's Run would: it claims the partition count, then checks every
// partition's checkpoint (and definition) in index order, returning the
// first refusal, whose RunKey is the partition's key.
func CheckResume(ctx context.Context, opts Options) error {
	if opts.Durable == nil {
		return nil
	}
	split := opts.split
	opts.split = nil
	if split != nil {
		// A NewPartitioned Runner's options: its partitions'.
		opts.Partition = Partition{Count: len(split.definitions)}
	}
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := claimRun(ctx, o); err != nil {
		return err
	}
	if split == nil || !o.Partition.Partitioned() {
		return loadAndCheck(ctx, o)
	}
	for i, def := range split.definitions {
		po := o
		po.Partition.Index, po.definition = i, def
		po.key = po.Partition.RunKey(o.Durable.RunKey)
		if err := loadAndCheck(ctx, po); err != nil {
			return err
		}
	}
	return nil
}

// loadAndCheck loads the checkpoint of o's run key and returns the error
// of a run with options o refusing it.
func loadAndCheck(ctx context.Context, o Options) error {
	var cp Checkpoint
	if err := guarded(func() (e error) { cp, e = o.Durable.Store.Load(ctx, o.key); return }); err != nil {
		return &BatchError{Batch: 1, Stage: StageCheckpoint, RunKey: o.key, Err: err}
	}
	return checkResume(cp, o, o.key)
}

// checkResume returns the error of a run with options opts refusing cp,
// loaded as the checkpoint of its run key key, opts.Durable set.
func checkResume(cp Checkpoint, opts Options, key string) error {
	cp.RunKey = key
	if err := checkPartitions(key, cp, opts.Partition.Count); err != nil {
		return err
	}
	if err := checkShape(cp, opts); err != nil {
		return &BatchError{Batch: cp.Batch + 1, Stage: StageCheckpoint, RunKey: key, Err: err}
	}
	return nil
}
