package batchenrich_test

import (
	"context"
	"errors"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// failingLoad is a store whose Load fails.
type failingLoad struct {
	*batchenrichtest.Checkpoints
	err error
}

func (s failingLoad) Load(context.Context, string) (batchenrich.Checkpoint, error) {
	return batchenrich.Checkpoint{}, s.err
}

// CheckResume refuses what Run would refuse before reading anything, with
// Run's error, and claims a split run's partition count as Run does.
func TestCheckResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := batchenrichtest.NewCheckpoints()
	durable := func(key string) *batchenrich.Durable { return &batchenrich.Durable{Store: store, RunKey: key} }

	if err := batchenrich.CheckResume(ctx, batchenrich.Options{BatchSize: 7}); err != nil {
		t.Errorf("no Durable: %v, want nil", err)
	}
	var ce *batchenrich.ConfigError
	if err := batchenrich.CheckResume(ctx, batchenrich.Options{Durable: &batchenrich.Durable{RunKey: "x"}}); !errors.As(err, &ce) || ce.Field != "Durable.Store" {
		t.Errorf("no Store: %v, want a *ConfigError for Durable.Store", err)
	}
	if err := batchenrich.CheckResume(ctx, batchenrich.Options{Durable: durable("new")}); err != nil {
		t.Errorf("a new run: %v, want nil", err)
	}

	// An unpartitioned run stopped at its cap after batch 2 of 10.
	if _, err := newFixture(50).run(t, ctx, batchenrich.Options{BatchSize: 10, MaxBatches: 2, Durable: durable("whole")}); err != nil {
		t.Fatal(err)
	}
	if err := batchenrich.CheckResume(ctx, batchenrich.Options{BatchSize: 10, Durable: durable("whole")}); err != nil {
		t.Errorf("same settings: %v, want nil", err)
	}
	err := batchenrich.CheckResume(ctx, batchenrich.Options{BatchSize: 20, Durable: durable("whole")})
	var be *batchenrich.BatchError
	if !errors.Is(err, batchenrich.ErrCheckpointMismatch) || !errors.As(err, &be) || be.Batch != 3 || be.Stage != batchenrich.StageCheckpoint {
		t.Fatalf("another BatchSize: %v, want ErrCheckpointMismatch in a *BatchError of batch 3 at StageCheckpoint", err)
	}
	_, runErr := newFixture(50).run(t, ctx, batchenrich.Options{BatchSize: 20, Durable: durable("whole")})
	if runErr == nil || runErr.Error() != err.Error() {
		t.Errorf("Run's error %q, CheckResume's %q: want the same", runErr, err)
	}
	if err := batchenrich.CheckResume(ctx, batchenrich.Options{Partition: batchenrich.Partition{Index: 1, Count: 2}, Durable: durable("whole")}); !errors.Is(err, batchenrich.ErrPartitionsChanged) {
		t.Errorf("a partition of an unpartitioned run: %v, want ErrPartitionsChanged", err)
	}

	// A split run's count is claimed by the first check, then refused
	// when another.
	if err := batchenrich.CheckResume(ctx, batchenrich.Options{Partition: batchenrich.Partition{Index: 0, Count: 3}, Durable: durable("split")}); err != nil {
		t.Fatalf("first check of 3 partitions: %v", err)
	}
	if cp, _ := store.Load(ctx, "split"); cp.Partitions != 3 || cp.Batch != 0 {
		t.Errorf("the run's own checkpoint %+v, want the count 3 recorded", cp)
	}
	for _, o := range []batchenrich.Options{
		{Partition: batchenrich.Partition{Index: 2, Count: 4}, Durable: durable("split")},
		{Durable: durable("split")},
	} {
		err := batchenrich.CheckResume(ctx, o)
		if !errors.Is(err, batchenrich.ErrPartitionsChanged) || !errors.As(err, &be) || be.Batch != 0 || be.RunKey != "split" {
			t.Errorf("Partition %v after 3: %v, want ErrPartitionsChanged in a *BatchError of the run", o.Partition, err)
		}
	}

	// The store's error, as Run returns it.
	boom := errors.New("database is down")
	err = batchenrich.CheckResume(ctx, batchenrich.Options{Durable: &batchenrich.Durable{Store: failingLoad{store, boom}, RunKey: "whole"}})
	if !errors.Is(err, boom) || !errors.As(err, &be) || be.Batch != 1 || be.Stage != batchenrich.StageCheckpoint {
		t.Errorf("failing Load: %v, want it in a *BatchError of batch 1 at StageCheckpoint", err)
	}
}

// CheckResume given a NewPartitioned Runner's Options() checks what that
// Runner's Run would: the partition count it claims and every partition's
// checkpoint, not an unpartitioned run under the same key (which the
// recorded count refuses).
func TestCheckResumeOfPartitionedRunner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := batchenrichtest.NewCheckpoints()
	source := func(p batchenrich.Partition) (batchenrich.Source[int], error) {
		var mine []int
		for i := 1; i <= 30; i++ {
			if i%p.Count == p.Index {
				mine = append(mine, i)
			}
		}
		return batchenrichtest.NewSliceSource(mine), nil
	}
	id := batchenrich.EnricherFunc[int, int](func(ctx context.Context, i int) (int, error) { return i, nil })
	sink := func(batchenrich.Partition) (batchenrich.Sink[int, int], error) {
		return batchenrichtest.NewSink[int, int](), nil
	}
	runner := func(partitions, batchSize int) *batchenrich.Runner[int, int] {
		r, err := batchenrich.NewPartitioned(partitions, source, id, sink,
			batchenrich.Options{BatchSize: batchSize, MaxBatches: 1, Durable: &batchenrich.Durable{Store: store, RunKey: "split"}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := runner(3, 2)
	if err := batchenrich.CheckResume(ctx, r.Options()); err != nil {
		t.Fatalf("before the first run: %v, want nil", err)
	}
	if _, err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := batchenrich.CheckResume(ctx, r.Options()); err != nil {
		t.Errorf("the same Runner's options after a run: %v, want nil", err)
	}
	if err := batchenrich.CheckResume(ctx, runner(4, 2).Options()); !errors.Is(err, batchenrich.ErrPartitionsChanged) {
		t.Errorf("4 partitions after 3: %v, want ErrPartitionsChanged", err)
	}
	var be *batchenrich.BatchError
	err := batchenrich.CheckResume(ctx, runner(3, 5).Options())
	if !errors.Is(err, batchenrich.ErrCheckpointMismatch) || !errors.As(err, &be) || be.RunKey != "split#p0" {
		t.Errorf("another BatchSize: %v, want ErrCheckpointMismatch of partition 0", err)
	}
	// New given those options makes an unpartitioned Runner, checked as one.
	plain, err := batchenrich.New(batchenrichtest.NewSliceSource([]int{1}), id, batchenrichtest.NewSink[int, int](), r.Options())
	if err != nil {
		t.Fatal(err)
	}
	if err := batchenrich.CheckResume(ctx, plain.Options()); !errors.Is(err, batchenrich.ErrPartitionsChanged) {
		t.Errorf("an unpartitioned Runner under the split run's key: %v, want ErrPartitionsChanged", err)
	}
	_, runErr := runner(3, 5).Run(ctx)
	if !errors.Is(runErr, batchenrich.ErrCheckpointMismatch) {
		t.Errorf("Run with another BatchSize: %v, want ErrCheckpointMismatch", runErr)
	}
}
