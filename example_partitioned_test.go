package batchenrich_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// One run split into three key partitions worked on at once in this
// process: each partition reads its own items (here id % 3; with
// sqlbatch, SourceConfig.Partition), numbers its own batches from 1 and
// keeps its own checkpoint, and at most 4 enrichments are in flight over
// all of them. Across partitions nothing is ordered, so the Sink, shared
// here, must be safe for concurrent use.
func ExampleNewPartitioned() {
	ids := make([]int, 10)
	for i := range ids {
		ids[i] = i + 1
	}
	var (
		mu      sync.Mutex
		written []string
	)
	sink := batchenrich.SinkFunc[int, int](func(ctx context.Context, b batchenrich.Batch[int, int]) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range b.Results {
			written = append(written, fmt.Sprintf("partition %d batch %d: %d -> %d", b.Partition.Index, b.Number, r.Item, r.Value))
		}
		return nil
	})
	source := func(p batchenrich.Partition) (batchenrich.Source[int], error) {
		var mine []int
		for _, id := range ids {
			if id%p.Count == p.Index {
				mine = append(mine, id)
			}
		}
		return batchenrichtest.NewSliceSource(mine), nil
	}
	square := batchenrich.EnricherFunc[int, int](func(ctx context.Context, id int) (int, error) { return id * id, nil })
	store := batchenrichtest.NewCheckpoints() // sqlbatch.CheckpointStore in production
	r, err := batchenrich.NewPartitioned(3, source, square,
		func(batchenrich.Partition) (batchenrich.Sink[int, int], error) { return sink, nil },
		batchenrich.Options{
			BatchSize:   2,
			Concurrency: 4, // over all partitions
			Durable: &batchenrich.Durable{
				Store:  store,
				RunKey: "squares", // partition p keeps its checkpoint under Partition.RunKey("squares")
			},
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	slices.Sort(written)
	for _, w := range written {
		fmt.Println(w)
	}
	fmt.Println("written:", rep.Written, "batches:", rep.BatchesRun, "partitions:", len(rep.Partitions))
	cp, _ := store.Load(context.Background(), batchenrich.Partition{Index: 1, Count: 3}.RunKey("squares"))
	fmt.Println("partition 1 checkpoint: batch", cp.Batch, "done", cp.Done)
	// Output:
	// partition 0 batch 1: 3 -> 9
	// partition 0 batch 1: 6 -> 36
	// partition 0 batch 2: 9 -> 81
	// partition 1 batch 1: 1 -> 1
	// partition 1 batch 1: 4 -> 16
	// partition 1 batch 2: 10 -> 100
	// partition 1 batch 2: 7 -> 49
	// partition 2 batch 1: 2 -> 4
	// partition 2 batch 1: 5 -> 25
	// partition 2 batch 2: 8 -> 64
	// written: 10 batches: 6 partitions: 3
	// partition 1 checkpoint: batch 2 done true
}
