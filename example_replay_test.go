package batchenrich_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// A replay of the transient failures a run stored: the Source reads the
// failed items back in a stable order, the Sink writes over them.
func ExampleReplay() {
	// What the run stored: each item's failure class, "" for a success.
	var mu sync.Mutex
	stored := map[string]string{"ada": "", "grace": "transient", "edsger": "permanent", "ken": "transient"}

	failed := batchenrich.SourceFunc[string](func(ctx context.Context, after batchenrich.Cursor, limit int) ([]string, batchenrich.Cursor, error) {
		mu.Lock()
		defer mu.Unlock()
		var names []string
		for name, class := range stored {
			if class != "" && classOf(class) == batchenrich.ClassTransient && name > string(after) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		names = names[:min(limit, len(names))]
		if len(names) == 0 {
			return nil, after, nil
		}
		return names, batchenrich.Cursor(names[len(names)-1]), nil
	})
	upper := batchenrich.EnricherFunc[string, string](func(ctx context.Context, name string) (string, error) {
		return strings.ToUpper(name), nil
	})
	sink := batchenrich.SinkFunc[string, string](func(ctx context.Context, b batchenrich.Batch[string, string]) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range b.Results {
			fmt.Printf("replay %d: %s -> %s\n", b.Replay, r.Item, r.Value)
			stored[r.Item] = "" // a success: no failure class any more
		}
		return nil
	})

	// The store in which the run recorded its checkpoints (a replay
	// refuses a run key that has none).
	store := batchenrichtest.NewCheckpoints()
	_ = store.Save(context.Background(), batchenrich.Checkpoint{RunKey: "names", Batch: 1, Done: true})

	p, err := batchenrich.NewReplay[string, string](failed, upper, sink, batchenrich.Options{
		BatchSize: 10,
		Durable: &batchenrich.Durable{
			Store:  store,
			RunKey: "names", // the run whose failures to retry
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rr, err := p.Run(context.Background())
	fmt.Println(rr.ReplayKey, "retried", rr.Written, err)
	rr, err = p.Run(context.Background())
	fmt.Println("again, nothing to replay:", rr.NothingToReplay, err)
	// Output:
	// replay 1: grace -> GRACE
	// replay 1: ken -> KEN
	// names#replay-1 retried 2 <nil>
	// again, nothing to replay: true <nil>
}

func classOf(s string) batchenrich.Class {
	switch s {
	case "transient":
		return batchenrich.ClassTransient
	case "permanent":
		return batchenrich.ClassPermanent
	}
	return batchenrich.Unclassified
}
