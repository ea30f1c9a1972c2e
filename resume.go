package batchenrich

// CheckResume returns the error Run returns, before it reads anything,
// when it loads cp as the checkpoint of opts.RunKey: nil when the run may
// go on from cp, else a *BatchError of stage StageCheckpoint wrapping
// ErrPartitionsChanged (cp was recorded with another partition count) or
// ErrCheckpointMismatch (another BatchSize or Fingerprint, unless
// opts.AllowReshape). Of opts only BatchSize (zero means
// DefaultBatchSize), Fingerprint, AllowReshape, Partition.Count and
// RunKey matter. A program planning a run without running it (a dry run)
// calls it to refuse what the run would refuse, with the same error.
func CheckResume(cp Checkpoint, opts Options) error {
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	cp.RunKey = opts.RunKey
	err := checkPartitions(opts.RunKey, cp, opts.Partition.Count)
	if err == nil {
		err = checkShape(cp, opts)
	}
	if err != nil {
		return &BatchError{Batch: cp.Batch + 1, Stage: StageCheckpoint, RunKey: opts.RunKey, Err: err}
	}
	return nil
}
