package batchenrich

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/batchenrich/batchenrich/internal/bounds"
)

// maxPartitions bounds Partition.Count.
const maxPartitions = bounds.Partitions

// Partition names one of Count key partitions of a run (see
// Options.Partition). The zero value, like Count 1, means an unpartitioned
// run: today's single ordered stream.
type Partition struct {
	// Index is the partition's number, 0 ≤ Index < Count.
	Index int
	// Count is the number of partitions the run is split into, P: at
	// most 1 << 12 (4,096).
	Count int
}

// Partitioned reports whether p splits a run (Count > 1).
func (p Partition) Partitioned() bool { return p.Count > 1 }

// String returns "3/8" (Index/Count), or "0/1" for an unpartitioned run (partition 0 of 1).
func (p Partition) String() string {
	if !p.Partitioned() {
		return "0/1"
	}
	return strconv.Itoa(p.Index) + "/" + strconv.Itoa(p.Count)
}

// RunKey returns the key under which partition p of run records its
// checkpoint and takes its lock: run itself when p does not split the run
// (so that a run with one partition is exactly an unpartitioned run), else
// run + "#p" + Index. The count is deliberately not part of the key: the
// count is recorded in the checkpoints instead, so that running again with
// another count is refused (ErrPartitionsChanged) rather than silently
// starting new partitions over rows already stored.
func (p Partition) RunKey(run string) string {
	if !p.Partitioned() {
		return run
	}
	return run + "#p" + strconv.Itoa(p.Index)
}

// validate checks p as Options.Partition.
func (p Partition) validate() error {
	switch {
	case p.Count < 0:
		return optionErr("Partition.Count", "must not be negative")
	case p.Count > maxPartitions:
		return optionErr("Partition.Count", fmt.Sprintf("%d: must be at most %d", p.Count, maxPartitions))
	case p.Index < 0 || (p.Index >= p.Count && !(p.Index == 0 && p.Count == 0)):
		return optionErr("Partition.Index", fmt.Sprintf("%d: must be in [0, Count=%d)", p.Index, p.Count))
	}
	return nil
}

// partitionsOf is the partition count a checkpoint records, 1 for an
// unpartitioned run.
func partitionsOf(n int) int { return max(n, 1) }

// recorded reports whether cp was saved by some run (rather than being the
// zero Checkpoint Load returns for an unknown key).
func recorded(cp Checkpoint) bool { return cp.Batch > 0 || cp.Done || cp.Partitions > 0 }

// checkPartitions refuses a checkpoint recorded with another partition
// count than want, with a *BatchError (StageCheckpoint, Batch 0) wrapping
// ErrPartitionsChanged.
func checkPartitions(run string, cp Checkpoint, want int) error {
	if !recorded(cp) || partitionsOf(cp.Partitions) == partitionsOf(want) {
		return nil
	}
	// A refusal of the run, before any batch: the *BatchError names the
	// run, and no batch (Batch 0), whichever way the run was started.
	return &BatchError{Stage: StageCheckpoint, RunKey: run, Err: fmt.Errorf(
		"%w: recorded with %s, this run has %d; run it again with %s, or use a new run key",
		ErrPartitionsChanged, plural(partitionsOf(cp.Partitions)), partitionsOf(want), plural(partitionsOf(cp.Partitions)))}
}

func plural(n int) string {
	if n == 1 {
		return "1 partition"
	}
	return strconv.Itoa(n) + " partitions"
}

// claimPartitions records, under the run key run itself, that the run is
// split into count partitions, or checks that this is what was recorded.
// It returns a *BatchError (StageCheckpoint, Batch 0) wrapping
// ErrPartitionsChanged if run was recorded with another count, or started
// unpartitioned (count 1) and has committed batches. With count ≤ 1 it
// only checks. When store is a Locker, the check and the record happen
// under run's lock, taken as req says (held for a moment; an
// unpartitioned run holds it for its whole run). An error or a panic of
// the store's methods is returned as an error too, never a panic.
func claimPartitions(ctx context.Context, store CheckpointStore, run string, count int, req lockRequest) (err error) {
	if count > 1 {
		// Fast path, no lock: a count once recorded never changes (an
		// unpartitioned run refuses the key, a partitioned one saves only
		// its partitions' keys), so the partitions of a run starting
		// together do not queue for the run's lock.
		cp, err := loadClaim(ctx, store, run)
		if err != nil {
			return err
		}
		if recorded(cp) {
			return checkPartitions(run, cp, count)
		}
		req.holder = "an unpartitioned run of the same key, or a partition claim taking long"
		unlock, err := req.take(ctx, store)
		if err != nil {
			return err
		}
		if unlock != nil {
			defer func() { err = unlockRun(err, unlock, run) }()
		}
	}
	cp, err := loadClaim(ctx, store, run)
	if err != nil {
		return err
	}
	if err := checkPartitions(run, cp, count); err != nil {
		return err
	}
	if count <= 1 || cp.Partitions == count {
		return nil
	}
	// The run's own key carries no batches of a partitioned run: only
	// its partition count, for every later run to check.
	if err := guarded(func() error { return store.Save(ctx, Checkpoint{RunKey: run, Partitions: count}) }); err != nil {
		return fmt.Errorf("batchenrich: record %d partitions for run %q: %w", count, run, err)
	}
	return nil
}

// loadClaim loads the checkpoint of run for claimPartitions.
func loadClaim(ctx context.Context, store CheckpointStore, run string) (cp Checkpoint, err error) {
	if err := guarded(func() (e error) { cp, e = store.Load(ctx, run); return }); err != nil {
		return cp, fmt.Errorf("batchenrich: load checkpoint of run %q: %w", run, err)
	}
	return cp, nil
}

// claimRun checks, for a run working on partition o.Partition of a split
// run, the partition count recorded under the run's own key, and records
// it on the first run. It waits for the run's own lock claimLockWait, or
// as long as it takes with Durable.LockWait, trying it again every
// Durable.LockRetryInterval.
func claimRun(ctx context.Context, o Options) error {
	if !o.Partition.Partitioned() {
		return nil
	}
	d := o.Durable
	req := lockRequest{key: d.RunKey, wait: claimLockWait, retry: d.LockRetryInterval, log: o.Logger}
	if d.LockWait {
		req.wait = waitForever
	}
	return claimPartitions(ctx, d.Store, d.RunKey, o.Partition.Count, req)
}

// claimLockWait is how long a partition waits for its run's own lock,
// which other partitions hold for a moment each.
const claimLockWait = 10 * time.Second
