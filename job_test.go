package batchenrich_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// A user's run key that could collide with a key the library derives
// (a partition's, a replay's) or that would print wrongly is refused.
func TestRunKeyValidated(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"col#p1", "run#replay-1", "a\x1b[31mb", "tab\there", "nl\n", "\xff"} {
		_, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(1)), batchenrichtest.NewEnricher(double),
			batchenrichtest.NewSink[item, int](), batchenrich.Options{Durable: &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: key}})
		var oe *batchenrich.ConfigError
		if !errors.As(err, &oe) || oe.Field != "Durable.RunKey" {
			t.Errorf("RunKey %q: err = %v, want an *ConfigError for RunKey", key, err)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\x1b\t\n") {
			t.Errorf("error %q prints a control character raw", err)
		}
	}
	for _, job := range []string{"a\x1bb", strings.Repeat("j", 201)} {
		_, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(1)), batchenrichtest.NewEnricher(double),
			batchenrichtest.NewSink[item, int](), batchenrich.Options{Durable: &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: "k", Job: job}})
		var oe *batchenrich.ConfigError
		if !errors.As(err, &oe) || oe.Field != "Durable.Job" {
			t.Errorf("Job %q: err = %v, want an *ConfigError for Job", job, err)
		}
	}
}

// A replay of a run key with no recorded run is refused, replaying
// nothing.
func TestReplayUnknownRun(t *testing.T) {
	t.Parallel()
	sink := batchenrichtest.NewSink[item, int]()
	p, err := batchenrich.NewReplay[item, int](batchenrichtest.NewSliceSource(items(3)), batchenrichtest.NewEnricher(double), sink,
		batchenrich.Options{Durable: &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: "misspelled"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(context.Background()); !errors.Is(err, batchenrich.ErrUnknownRun) || len(sink.Batches()) != 0 {
		t.Fatalf("err = %v, %d batches written; want ErrUnknownRun and none", err, len(sink.Batches()))
	}
}

// A replay of a partitioned run one of whose partitions is running is
// refused: the replay takes each partition's lock.
func TestReplayOfRunningPartitionRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := batchenrichtest.NewCheckpoints()
	if err := batchenrich.CheckResume(ctx, batchenrich.Options{Partition: batchenrich.Partition{Index: 0, Count: 3},
		Durable: &batchenrich.Durable{Store: store, RunKey: "r"}}); err != nil {
		t.Fatal(err)
	}
	unlock, ok, err := store.TryLock(ctx, batchenrich.Partition{Index: 2, Count: 3}.RunKey("r"))
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	sink := batchenrichtest.NewSink[item, int]()
	p, err := batchenrich.NewReplay[item, int](batchenrichtest.NewSliceSource(items(3)), batchenrichtest.NewEnricher(double), sink,
		batchenrich.Options{Durable: &batchenrich.Durable{Store: store, RunKey: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(ctx); !errors.Is(err, batchenrich.ErrRunLocked) || !strings.Contains(err.Error(), "partition 2") || len(sink.Batches()) != 0 {
		t.Fatalf("err = %v, %d batches written; want ErrRunLocked naming partition 2", err, len(sink.Batches()))
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	// Once no partition runs, the replay goes on; and it released
	// every lock it took.
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		u, ok, err := store.TryLock(ctx, batchenrich.Partition{Index: i, Count: 3}.RunKey("r"))
		if !ok || err != nil {
			t.Fatalf("partition %d still locked after the replay: %v", i, err)
		}
		_ = u()
	}
}

// described gives a test component a description (Describer).
type describedSink struct {
	batchenrich.Sink[item, int]
	d string
}

func (s describedSink) Describe() string { return s.d }

type describedEnricher struct {
	batchenrich.Enricher[item, int]
	d string
}

func (e describedEnricher) Describe() string { return e.d }

// A replay of a partitioned run compares its Job and Enricher with the
// run's, not its Sink: each partition wrote through a Sink of its own
// (here one that writes the partition's index), which the replay, one
// stream, cannot be. A replay of an unpartitioned run compares its Sink
// too. The refusal says "recorded with other settings" once.
func TestReplayIdentityOfPartitionedRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	enr := func(d string) batchenrich.Enricher[item, int] {
		return describedEnricher{batchenrichtest.NewEnricher(double), d}
	}
	store := batchenrichtest.NewCheckpoints()
	pr, err := batchenrich.NewPartitioned(2, func(p batchenrich.Partition) (batchenrich.Source[item], error) {
		var mine []item
		for _, i := range items(10) {
			if int(i)%p.Count == p.Index {
				mine = append(mine, i)
			}
		}
		return batchenrichtest.NewSliceSource(mine), nil
	}, enr("double"), func(p batchenrich.Partition) (batchenrich.Sink[item, int], error) {
		return describedSink{batchenrichtest.NewSink[item, int](), "table t columns (v, partition_index)"}, nil
	}, batchenrich.Options{BatchSize: 3, Durable: &batchenrich.Durable{Store: store, RunKey: "parts"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(items(4)), enr("double"),
		describedSink{batchenrichtest.NewSink[item, int](), "table t columns (v, partition_index)"},
		batchenrich.Options{BatchSize: 3, Durable: &batchenrich.Durable{Store: store, RunKey: "whole"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}

	replay := func(run, enrDesc string) (*batchenrichtest.Sink[item, int], error) {
		t.Helper()
		sink := batchenrichtest.NewSink[item, int]()
		p, err := batchenrich.NewReplay(batchenrichtest.NewSliceSource(items(2)), enr(enrDesc), describedSink{sink, "table t columns (v)"},
			batchenrich.Options{Durable: &batchenrich.Durable{Store: store, RunKey: run}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Run(ctx)
		return sink, err
	}
	if sink, err := replay("parts", "double"); err != nil || len(sink.Batches()) != 1 {
		t.Fatalf("replay of the partitioned run with a one-stream Sink: %v, %d batches", err, len(sink.Batches()))
	}
	for _, c := range []struct{ run, enr, want string }{
		{"parts", "triple", `enricher "double" (this run: "triple")`},
		{"whole", "double", `sink "table t columns (v, partition_index)" (this run: "table t columns (v)")`},
	} {
		sink, err := replay(c.run, c.enr)
		if !errors.Is(err, batchenrich.ErrCheckpointMismatch) || !strings.Contains(err.Error(), c.want) || len(sink.Batches()) != 0 {
			t.Fatalf("replay of %q with enricher %q: %v, %d batches; want ErrCheckpointMismatch saying %s", c.run, c.enr, err, len(sink.Batches()), c.want)
		}
		if n := strings.Count(err.Error(), "checkpoint"); n != 1 {
			t.Errorf("error %q says checkpoint %d times", err, n)
		}
	}
}
