package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// The smallest run: a slice source, an enricher function and a sink
// function, in batches of two.
func Example() {
	src := batchenrichtest.NewSliceSource([]string{"ada", "grace", "edsger", "barbara", "ken"})
	upper := batchenrich.EnricherFunc[string, string](func(ctx context.Context, name string) (string, error) {
		return strings.ToUpper(name), nil
	})
	print := batchenrich.SinkFunc[string, string](func(ctx context.Context, b batchenrich.Batch[string, string]) error {
		for _, r := range b.Results {
			fmt.Printf("batch %d: %s -> %s\n", b.Number, r.Item, r.Value)
		}
		return nil
	})
	r, err := batchenrich.New[string, string](src, upper, print, batchenrich.Options{BatchSize: 2, Concurrency: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := r.Run(context.Background())
	fmt.Println(rep.BatchesRun, "batches,", rep.Written, "items,", err)
	// Output:
	// batch 1: ada -> ADA
	// batch 1: grace -> GRACE
	// batch 2: edsger -> EDSGER
	// batch 2: barbara -> BARBARA
	// batch 3: ken -> KEN
	// 3 batches, 5 items, <nil>
}

// Failed items reach the Sink with Err set, so they can be stored as
// invalid rows instead of being lost.
func ExampleResult_failed() {
	src := batchenrichtest.NewSliceSource([]int{1, 2, 3, 4})
	enr := batchenrich.EnricherFunc[int, float64](func(ctx context.Context, n int) (float64, error) {
		if n == 3 {
			return 0, batchenrich.Permanent(errors.New("three is not allowed"))
		}
		return 1 / float64(n), nil
	})
	sink := batchenrich.SinkFunc[int, float64](func(ctx context.Context, b batchenrich.Batch[int, float64]) error {
		for _, r := range b.Results {
			if r.Err != nil {
				fmt.Printf("%d: invalid (%s): %v\n", r.Item, batchenrich.Classify(r.Err), r.Err)
				continue
			}
			fmt.Printf("%d: %.2f\n", r.Item, r.Value)
		}
		return nil
	})
	r, _ := batchenrich.New[int, float64](src, enr, sink, batchenrich.Options{})
	rep, _ := r.Run(context.Background())
	fmt.Println("failed:", rep.Failed)
	// Output:
	// 1: 1.00
	// 2: 0.50
	// 3: invalid (permanent): batchenrich: batch 1 item 2: three is not allowed
	// 4: 0.25
	// failed: 1
}

// A durable run resumes after its last committed batch. Here the first
// attempt fails writing batch 3; the second skips batches 1 and 2, neither
// reading nor enriching them again, and goes on from batch 3.
func ExampleOptions_checkpoints() {
	store := batchenrichtest.NewCheckpoints() // sqlbatch.CheckpointStore in production
	src := batchenrichtest.NewSliceSource([]int{1, 2, 3, 4, 5, 6, 7})
	square := batchenrich.EnricherFunc[int, int](func(ctx context.Context, n int) (int, error) { return n * n, nil })
	sink := batchenrichtest.NewSink[int, int]()

	failOnce := true
	sink.FailWrite = func(batch int) error {
		if batch == 3 && failOnce {
			failOnce = false
			return errors.New("sink unavailable")
		}
		return nil
	}
	opts := batchenrich.Options{BatchSize: 2, Durable: &batchenrich.Durable{Store: store, RunKey: "nightly-2026-11-28"}}
	r, _ := batchenrich.New[int, int](src, square, sink, opts)
	_, err := r.Run(context.Background())
	fmt.Println("first attempt:", err)
	rep, err := r.Run(context.Background())
	fmt.Println("second attempt: skipped", rep.BatchesSkipped, "ran", rep.BatchesRun, "err", err)
	for _, b := range sink.Batches() {
		fmt.Print(b.Number, ":", len(b.Results), " ")
	}
	fmt.Println()
	// Output:
	// first attempt: batchenrich: batch 3: write: sink unavailable
	// second attempt: skipped 2 ran 2 err <nil>
	// 1:2 2:2 3:2 4:1
}
