package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// partSink records the batches of each partition and checks that, within
// a partition, batch numbers run 1, 2, 3… and batches never overlap.
type partSink struct {
	mu      sync.Mutex
	byPart  map[int][]int // partition → batch numbers written
	items   map[item]int  // item → times written
	writing map[int]bool
	err     error
}

func newPartSink() *partSink {
	return &partSink{byPart: map[int][]int{}, items: map[item]int{}, writing: map[int]bool{}}
}

func (s *partSink) Write(ctx context.Context, b batchenrich.Batch[item, int]) error {
	p := b.Partition.Index
	s.mu.Lock()
	if s.writing[p] {
		s.err = fmt.Errorf("partition %d: two batches written at once", p)
	}
	s.writing[p] = true
	s.mu.Unlock()
	time.Sleep(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writing[p] = false
	if prev := s.byPart[p]; b.Number != len(prev)+1 && (len(prev) == 0 || b.Number != prev[len(prev)-1]+1) {
		s.err = fmt.Errorf("partition %d: batch %d after %v", p, b.Number, prev)
	}
	s.byPart[p] = append(s.byPart[p], b.Number)
	for _, r := range b.Results {
		if int(r.Item)%4 != p && b.Partition.Count == 4 {
			s.err = fmt.Errorf("item %d written by partition %d", r.Item, p)
		}
		s.items[r.Item]++
	}
	return nil
}

// modSource returns, for partition p of count, the items i with i mod
// count = p.
func modSource(n int) func(p batchenrich.Partition) (batchenrich.Source[item], error) {
	return func(p batchenrich.Partition) (batchenrich.Source[item], error) {
		var mine []item
		for i := range n {
			if p.Count <= 1 || i%p.Count == p.Index {
				mine = append(mine, item(i))
			}
		}
		return batchenrichtest.NewSliceSource(mine), nil
	}
}

// partitioned returns the Runner of a run of n items split into parts
// partitions, writing to sink, with total enrichments in flight at most
// (Options.Concurrency) unless total is 0.
func partitioned(t *testing.T, n, parts, total int, o batchenrich.Options, enr batchenrich.Enricher[item, int], sink *partSink) *batchenrich.Runner[item, int] {
	t.Helper()
	if total > 0 {
		o.Concurrency = total
	}
	pr, err := batchenrich.NewPartitioned(parts, modSource(n), enr, func(batchenrich.Partition) (batchenrich.Sink[item, int], error) { return sink, nil }, o)
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

func TestPartitionedRunsEveryItemOnceWithinTotalConcurrency(t *testing.T) {
	t.Parallel()
	enr := batchenrichtest.NewEnricher(func(ctx context.Context, i item) (int, error) {
		time.Sleep(200 * time.Microsecond)
		return 2 * int(i), nil
	})
	sink := newPartSink()
	store := batchenrichtest.NewCheckpoints()
	pr := partitioned(t, 1000, 4, 10, batchenrich.Options{BatchSize: 30, Durable: &batchenrich.Durable{Store: store, RunKey: "run"}}, enr, sink)
	rep, err := pr.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sink.err != nil {
		t.Fatal(sink.err)
	}
	if len(sink.items) != 1000 {
		t.Fatalf("%d distinct items written, want 1000", len(sink.items))
	}
	for i, n := range sink.items {
		if n != 1 {
			t.Fatalf("item %d written %d times", i, n)
		}
	}
	if got := enr.MaxInFlight(); got > 10 {
		t.Errorf("max in flight over partitions = %d, want ≤ 10 (the total)", got)
	}
	if got := enr.MaxInFlight(); got < 10 {
		t.Logf("max in flight %d: partitions did not overlap much", got)
	}
	for p := range 4 {
		if got := len(sink.byPart[p]); got != 9 { // 250 items in batches of 30
			t.Errorf("partition %d wrote %d batches, want 9", p, got)
		}
		cp, _ := store.Load(context.Background(), fmt.Sprintf("run#p%d", p))
		if !cp.Done || cp.Partitions != 4 || cp.Batch != 9 {
			t.Errorf("checkpoint of partition %d = %+v", p, cp)
		}
	}
	if rep.BatchesRun != 36 || rep.Written != 1000 || rep.Read != 1000 || rep.Enriched != 1000 || len(rep.Partitions) != 4 || rep.Batches != nil {
		t.Errorf("report: %d batches, %d read, %d enriched, %d written, %d partitions, %d Batches; want the partitions' totals",
			rep.BatchesRun, rep.Read, rep.Enriched, rep.Written, len(rep.Partitions), len(rep.Batches))
	}
	for p, pr := range rep.Partitions {
		if pr.BatchesRun != 9 || pr.Written != 250 || len(pr.Batches) != 9 {
			t.Errorf("partition %d's report: %d batches run, %d written, %d Batches; want 9, 250, 9", p, pr.BatchesRun, pr.Written, len(pr.Batches))
		}
	}
	if cp, _ := store.Load(context.Background(), "run"); cp.Partitions != 4 || cp.Batch != 0 {
		t.Errorf("the run's own checkpoint = %+v, want only the partition count", cp)
	}
}

func TestPartitionedMaxBatchesPerPartitionAndResume(t *testing.T) {
	t.Parallel()
	store := batchenrichtest.NewCheckpoints()
	sink := newPartSink()
	enr := batchenrichtest.NewEnricher(double)
	o := batchenrich.Options{BatchSize: 10, MaxBatches: 2, Durable: &batchenrich.Durable{Store: store, RunKey: "run"}}
	if _, err := partitioned(t, 200, 4, 0, o, enr, sink).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p := range 4 {
		if got := sink.byPart[p]; len(got) != 2 {
			t.Fatalf("partition %d batches %v, want 2 (MaxBatches per partition)", p, got)
		}
	}
	o.MaxBatches = 0
	rep, err := partitioned(t, 200, 4, 0, o, enr, sink).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sink.err != nil {
		t.Fatal(sink.err)
	}
	if rep.BatchesSkipped != 8 || len(sink.items) != 200 {
		t.Fatalf("resume skipped %d batches, %d items written", rep.BatchesSkipped, len(sink.items))
	}
	for i, n := range sink.items {
		if n != 1 {
			t.Fatalf("item %d written %d times", i, n)
		}
	}
}

func TestPartitionCountChangeIsRefusedBeforeWork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ first, then int }{{4, 2}, {4, 8}, {4, 1}, {1, 4}} {
		t.Run(fmt.Sprintf("%d-then-%d", tc.first, tc.then), func(t *testing.T) {
			t.Parallel()
			store := batchenrichtest.NewCheckpoints()
			o := batchenrich.Options{BatchSize: 10, MaxBatches: 1, Durable: &batchenrich.Durable{Store: store, RunKey: "run"}}
			if _, err := partitioned(t, 100, tc.first, 0, o, batchenrichtest.NewEnricher(double), newPartSink()).Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			enr := batchenrichtest.NewEnricher(double)
			o.MaxBatches = 0
			_, err := partitioned(t, 100, tc.then, 0, o, enr, newPartSink()).Run(context.Background())
			if !errors.Is(err, batchenrich.ErrPartitionsChanged) {
				t.Fatalf("err = %v, want ErrPartitionsChanged", err)
			}
			if enr.Calls() != 0 {
				t.Fatalf("%d enrichments after a refused run", enr.Calls())
			}
			// Whichever way the run was started, the refusal is the run's,
			// not a batch's, and reads alike.
			var be *batchenrich.BatchError
			want := fmt.Sprintf(`batchenrich: run "run": checkpoint: partition count changed: recorded with %s, this run has %d;`,
				map[bool]string{true: "1 partition", false: fmt.Sprint(tc.first, " partitions")}[tc.first == 1], tc.then)
			if !errors.As(err, &be) || be.Batch != 0 || be.Stage != batchenrich.StageCheckpoint || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v (%#v), want a run's *BatchError at StageCheckpoint starting %q", err, be, want)
			}
		})
	}
}

func TestPartitionedFailureStopsTheOthers(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	enr := batchenrich.EnricherFunc[item, int](func(ctx context.Context, i item) (int, error) {
		calls.Add(1)
		time.Sleep(100 * time.Microsecond)
		return int(i), ctx.Err()
	})
	boom := errors.New("disk full")
	pr, err := batchenrich.NewPartitioned(3, modSource(3000), enr, func(p batchenrich.Partition) (batchenrich.Sink[item, int], error) {
		return batchenrich.SinkFunc[item, int](func(ctx context.Context, b batchenrich.Batch[item, int]) error {
			if p.Index == 1 && b.Number == 2 {
				return boom
			}
			return nil
		}), nil
	}, batchenrich.Options{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pr.Run(context.Background())
	if p, ok := failedPartition(err); !ok || p != (batchenrich.Partition{Index: 1, Count: 3}) || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want partition 1's failure", err)
	}
	if want := "batchenrich: partition 1 of 3: batch 2: write: disk full"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if calls.Load() >= 3000 {
		t.Errorf("the other partitions went on to the end (%d calls)", calls.Load())
	}
}

func TestPartitionOptionsValidated(t *testing.T) {
	t.Parallel()
	src := batchenrichtest.NewSliceSource(items(1))
	for _, p := range []batchenrich.Partition{{Index: 4, Count: 4}, {Index: -1, Count: 2}, {Count: -1}, {Index: 1, Count: 0}} {
		_, err := batchenrich.New[item, int](src, batchenrichtest.NewEnricher(double), batchenrichtest.NewSink[item, int](), batchenrich.Options{Partition: p})
		if !errors.Is(err, batchenrich.ErrInvalidConfig) {
			t.Errorf("Partition %+v: err = %v, want ErrInvalidConfig", p, err)
		}
	}
	r, err := batchenrich.New[item, int](src, batchenrichtest.NewEnricher(double), batchenrichtest.NewSink[item, int](),
		batchenrich.Options{Partition: batchenrich.Partition{Index: 3, Count: 8}, Durable: &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	// Options reports the key as given; the partition's own key is what
	// its Enricher sees.
	if got := r.Options().Durable.RunKey; got != "r" {
		t.Errorf("Options().Durable.RunKey = %q, want r (as given)", got)
	}
	seen := make(chan string, 1)
	keyOf := batchenrichtest.NewEnricher(func(ctx context.Context, i item) (int, error) {
		k, _ := batchenrich.RunKeyFromContext(ctx)
		select {
		case seen <- k:
		default:
		}
		return int(i), nil
	})
	again, err := batchenrich.New[item, int](src, keyOf, batchenrichtest.NewSink[item, int](), r.Options())
	if err != nil {
		t.Fatal(err)
	}
	if again.Options().Durable.RunKey != "r" {
		t.Errorf("New(r.Options()).Options().Durable.RunKey = %q, want r", again.Options().Durable.RunKey)
	}
	if _, err := again.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k := <-seen; k != "r#p3" {
		t.Errorf("New(r.Options()) ran under key %q, want r#p3 (derived once)", k)
	}
	ro := r.Options()
	ro.Durable.RunKey = "changed"
	if r.Options().Durable.RunKey != "r" {
		t.Error("changing the result of Options changed the Runner")
	}
	one, _ := batchenrich.New[item, int](src, batchenrichtest.NewEnricher(double), batchenrichtest.NewSink[item, int](),
		batchenrich.Options{Partition: batchenrich.Partition{Count: 1}, Durable: &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: "r"}})
	if one.Options().Partition != (batchenrich.Partition{}) {
		t.Errorf("one partition: Partition = %v, want the zero value (an unpartitioned run)", one.Options().Partition)
	}
}

// failedPartition returns the partition whose failure err is (or wraps),
// as NewPartitioned's Run documents it.
func failedPartition(err error) (batchenrich.Partition, bool) {
	var pe interface{ Partition() batchenrich.Partition }
	if !errors.As(err, &pe) {
		return batchenrich.Partition{}, false
	}
	return pe.Partition(), true
}

// NewPartitioned refuses, naming it, a bad argument, a bad option
// (Options.Concurrency, the bound over all partitions, included) and the
// options it sets per partition.
func TestNewPartitionedValidates(t *testing.T) {
	t.Parallel()
	enr := batchenrichtest.NewEnricher(func(ctx context.Context, i item) (int, error) { return 0, nil })
	sink := func(batchenrich.Partition) (batchenrich.Sink[item, int], error) { return newPartSink(), nil }
	for _, tc := range []struct {
		field  string
		parts  int
		source func(batchenrich.Partition) (batchenrich.Source[item], error)
		sink   func(batchenrich.Partition) (batchenrich.Sink[item, int], error)
		opts   batchenrich.Options
	}{
		{"partitions", 0, modSource(10), sink, batchenrich.Options{}},
		{"partitions", 1<<12 + 1, modSource(10), sink, batchenrich.Options{}},
		{"source", 2, nil, sink, batchenrich.Options{}},
		{"sink", 2, modSource(10), nil, batchenrich.Options{}},
		{"Concurrency", 2, modSource(10), sink, batchenrich.Options{Concurrency: -1}},
		{"Concurrency", 2, modSource(10), sink, batchenrich.Options{Concurrency: 1<<16 + 1}},
		{"Partition", 2, modSource(10), sink, batchenrich.Options{Partition: batchenrich.Partition{Index: 1, Count: 2}}},
		{"RunsAtOnce", 2, modSource(10), sink, batchenrich.Options{RunsAtOnce: 2}},
		{"source", 2, func(batchenrich.Partition) (batchenrich.Source[item], error) { return nil, nil }, sink, batchenrich.Options{}},
		{"sink", 2, modSource(10), func(batchenrich.Partition) (batchenrich.Sink[item, int], error) { return nil, nil }, batchenrich.Options{}},
	} {
		r, err := batchenrich.NewPartitioned(tc.parts, tc.source, enr, tc.sink, tc.opts)
		var ce *batchenrich.ConfigError
		if r != nil || !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, batchenrich.ErrInvalidConfig) {
			t.Errorf("%s: NewPartitioned = %v, %v; want a *ConfigError for %s", tc.field, r, err, tc.field)
		}
	}
	var ce *batchenrich.ConfigError
	if _, err := batchenrich.NewPartitioned(2, modSource(10), nil, sink, batchenrich.Options{}); !errors.As(err, &ce) || ce.Field != "enr" {
		t.Errorf("nil Enricher: %v, want a *ConfigError for enr", err)
	}
}

// TestNewPartitionedSourceOrSinkPanics: a panic in the function returning a
// partition's Source or Sink is NewPartitioned's error, a *PanicError
// wrapped with the partition, not a panic of the caller.
func TestNewPartitionedSourceOrSinkPanics(t *testing.T) {
	t.Parallel()
	enr := batchenrichtest.NewEnricher(func(ctx context.Context, i item) (int, error) { return 0, nil })
	sink := func(batchenrich.Partition) (batchenrich.Sink[item, int], error) { return newPartSink(), nil }
	boomSource := func(batchenrich.Partition) (batchenrich.Source[item], error) { panic("source boom") }
	boomSink := func(batchenrich.Partition) (batchenrich.Sink[item, int], error) { panic("sink boom") }
	for _, tc := range []struct {
		name   string
		source func(batchenrich.Partition) (batchenrich.Source[item], error)
		sink   func(batchenrich.Partition) (batchenrich.Sink[item, int], error)
		want   string
	}{
		{"source", boomSource, sink, "batchenrich: source of partition 0/2: panic: source boom"},
		{"sink", modSource(10), boomSink, "batchenrich: sink of partition 0/2: panic: sink boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				r   *batchenrich.Runner[item, int]
				err error
			)
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("NewPartitioned panicked: %v", v)
					}
				}()
				r, err = batchenrich.NewPartitioned(2, tc.source, enr, tc.sink, batchenrich.Options{})
			}()
			var pe *batchenrich.PanicError
			if r != nil || !errors.As(err, &pe) || err.Error() != tc.want {
				t.Fatalf("NewPartitioned = %v, %v; want %q, a *PanicError", r, err, tc.want)
			}
		})
	}
}

// NewPartitioned with one partition is an unpartitioned run: one Runner,
// its Report with no Partitions, its checkpoint under the run key itself.
func TestNewPartitionedOneIsUnpartitioned(t *testing.T) {
	t.Parallel()
	store := batchenrichtest.NewCheckpoints()
	sink := newPartSink()
	r := partitioned(t, 25, 1, 0, batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: store, RunKey: "one"}},
		batchenrichtest.NewEnricher(double), sink)
	rep, err := r.Run(context.Background())
	if err != nil || rep.Partitions != nil || rep.Written != 25 || rep.BatchesRun != 3 {
		t.Fatalf("Run = %+v, %v; want 25 written in 3 batches, no Partitions", rep, err)
	}
	if cp, _ := store.Load(context.Background(), "one"); !cp.Done || cp.Partitions != 0 || cp.Batch != 3 {
		t.Errorf("checkpoint %+v, want the run's own, done after batch 3", cp)
	}
}

// checkedEnricher is an Enricher whose Check refuses.
type checkedEnricher struct {
	batchenrich.Enricher[item, int]
	err error
}

func (e checkedEnricher) Check(context.Context) error { return e.err }

// The partitions of a NewPartitioned run share the Enricher under the
// bound over all partitions, and still see its optional abilities: its
// Check refuses the run before any enrichment (the bound used to be a
// wrapper hiding them).
func TestNewPartitionedKeepsTheEnrichersAbilities(t *testing.T) {
	t.Parallel()
	refused := errors.New("no API token")
	enr := batchenrichtest.NewEnricher(double)
	r := partitioned(t, 100, 3, 4, batchenrich.Options{BatchSize: 10}, checkedEnricher{enr, refused}, newPartSink())
	if _, err := r.Run(context.Background()); !errors.Is(err, refused) || enr.Calls() != 0 {
		t.Fatalf("Run = %v after %d enrichments; want the Enricher's Check to refuse it before any", err, enr.Calls())
	}
}
