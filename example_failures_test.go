package batchenrich_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// FailureReason gives what to store in a reason column: the cause alone,
// without the batch, index and key that the *ItemError's text adds.
func ExampleFailureReason() {
	src := batchenrichtest.NewSliceSource([]int{1, 2, 3})
	enr := batchenrich.EnricherFunc[int, int](func(ctx context.Context, n int) (int, error) {
		if n == 2 {
			return 0, batchenrich.Permanent(errors.New("status 404 after 1 attempt"))
		}
		return n * n, nil
	})
	sink := batchenrich.SinkFunc[int, int](func(ctx context.Context, b batchenrich.Batch[int, int]) error {
		for _, r := range b.Results {
			if r.Err != nil {
				fmt.Printf("error:  %v\nreason: %s\n", r.Err, batchenrich.FailureReason(r.Err))
			}
		}
		return nil
	})
	r, _ := batchenrich.New[int, int](src, enr, sink, batchenrich.Options{})
	_, _ = r.Run(context.Background())
	// Output:
	// error:  batchenrich: batch 1 item 1: status 404 after 1 attempt
	// reason: status 404 after 1 attempt
}

// An error marked Fatal is the program's fault: the run stops at once
// instead of storing one invalid row per item.
func ExampleFatal() {
	src := batchenrichtest.NewSliceSource([]int{1, 2, 3, 4, 5, 6})
	enr := batchenrich.EnricherFunc[int, int](func(ctx context.Context, n int) (int, error) {
		return 0, batchenrich.Fatal(errors.New("URL template: missing parameter {id}"))
	})
	written := 0
	sink := batchenrich.SinkFunc[int, int](func(ctx context.Context, b batchenrich.Batch[int, int]) error {
		written += len(b.Results)
		return nil
	})
	r, _ := batchenrich.New[int, int](src, enr, sink, batchenrich.Options{Concurrency: 1})
	_, err := r.Run(context.Background())
	fmt.Println(err)
	fmt.Println(batchenrich.Classify(err), "- written:", written)
	// Output:
	// batchenrich: batch 1 item 0: URL template: missing parameter {id}
	// fatal - written: 0
}

// A batch in which every item failed stops the run before it is written,
// naming the most common reason.
func ExampleErrAllFailed() {
	src := batchenrichtest.NewSliceSource([]int{1, 2, 3, 4, 5, 6, 7, 8})
	enr := batchenrich.EnricherFunc[int, int](func(ctx context.Context, n int) (int, error) {
		if n%4 == 0 {
			return 0, errors.New("timeout")
		}
		return 0, errors.New("status 401 after 1 attempt")
	})
	sink := batchenrich.SinkFunc[int, int](func(context.Context, batchenrich.Batch[int, int]) error { return nil })
	r, _ := batchenrich.New[int, int](src, enr, sink, batchenrich.Options{BatchSize: 8})
	_, err := r.Run(context.Background())
	fmt.Println(errors.Is(err, batchenrich.ErrAllFailed))
	fmt.Println(err)
	// Output:
	// true
	// batchenrich: batch 1: enrich: all 8 items failed; most common reason (6 of them): status 401 after 1 attempt; the batch was not written: fix the cause and run again, or set Options.AllowAllFailed if whole batches may fail
}
