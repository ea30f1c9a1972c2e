package batchenrich

// CheckResume returns the error Run returns, before it reads anything,
// when it loads cp as the checkpoint of its run: nil when the run may go
// on from cp, else a *BatchError of stage StageCheckpoint wrapping
// ErrPartitionsChanged (cp was recorded with another partition count; a
// refusal of the run, Batch 0, as ClaimPartitions returns it) or
// ErrCheckpointMismatch (another BatchSize or Fingerprint, unless
// Durable.AllowReshape; Batch is the batch the run would have gone on
// with). Of opts only BatchSize (zero means
// 100), Partition and Durable's RunKey, Fingerprint and
// AllowReshape matter; with opts.Durable nil it returns nil. A program
// planning a run without running it (a dry run) calls it to refuse what
// the run would refuse, with the same error.
func CheckResume(cp Checkpoint, opts Options) error {
	if opts.Durable == nil {
		return nil
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = defaultBatchSize
	}
	return checkResume(cp, opts, opts.Partition.RunKey(opts.Durable.RunKey))
}

// checkResume is CheckResume for the run key key, opts.Durable set.
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
