package batchenrich_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// Order is a row of the orders "table" that ordersSource reads.
type Order struct {
	ID     int
	Amount int
}

// ordersSource is a Source of your own: it pages by key, its Cursor being
// the last ID it returned, so a window costs the same anywhere in the
// table and a resumed run starts right after its last committed batch. A
// real one would run "SELECT … WHERE id > $1 ORDER BY id LIMIT $2".
type ordersSource struct {
	table map[int]Order // by ID
}

func (s ordersSource) Read(ctx context.Context, after batchenrich.Cursor, limit int) ([]Order, batchenrich.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return nil, after, err
	}
	last := 0
	if after != "" {
		var err error
		if last, err = strconv.Atoi(string(after)); err != nil {
			return nil, after, fmt.Errorf("orders: bad cursor %q: %w", after, err)
		}
	}
	ids := make([]int, 0, len(s.table))
	for id := range s.table {
		if id > last {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = ids[:min(limit, len(ids))] // never more than limit; fewer means the end
	out := make([]Order, len(ids))
	for i, id := range ids {
		out[i] = s.table[id]
	}
	if len(out) == 0 {
		return nil, after, nil
	}
	return out, batchenrich.Cursor(strconv.Itoa(out[len(out)-1].ID)), nil
}

// A custom Source: orders read by key, two per batch. The first run stops
// at its cap of two batches; the second resumes after the cursor its last
// batch committed. batchenrichtest.TestSource checks a Source of your own
// against this contract.
func ExampleSource() {
	src := ordersSource{table: map[int]Order{3: {3, 30}, 8: {8, 80}, 12: {12, 120}, 15: {15, 150}, 21: {21, 210}}}
	fee := batchenrich.EnricherFunc[Order, int](func(ctx context.Context, o Order) (int, error) { return o.Amount / 10, nil })
	sink := batchenrich.SinkFunc[Order, int](func(ctx context.Context, b batchenrich.Batch[Order, int]) error {
		for _, r := range b.Results {
			fmt.Printf("batch %d: order %d fee %d\n", b.Number, r.Item.ID, r.Value)
		}
		return nil
	})
	store := batchenrichtest.NewCheckpoints() // sqlbatch.CheckpointStore in production
	opts := batchenrich.Options{BatchSize: 2, MaxBatches: 2, Durable: &batchenrich.Durable{Store: store, RunKey: "fees"}}
	r, err := batchenrich.New[Order, int](src, fee, sink, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := r.Run(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	cp, _ := store.Load(context.Background(), "fees")
	fmt.Printf("stopped after batch %d, cursor %q\n", cp.Batch, cp.Cursor)

	opts.MaxBatches = 0 // no cap: go on to the end
	r, _ = batchenrich.New[Order, int](src, fee, sink, opts)
	rep, err := r.Run(context.Background())
	fmt.Println("resumed: skipped", rep.BatchesSkipped, "ran", rep.BatchesRun, err)
	// Output:
	// batch 1: order 3 fee 3
	// batch 1: order 8 fee 8
	// batch 2: order 12 fee 12
	// batch 2: order 15 fee 15
	// stopped after batch 2, cursor "15"
	// batch 3: order 21 fee 21
	// resumed: skipped 2 ran 1 <nil>
}
