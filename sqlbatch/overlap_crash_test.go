package sqlbatch_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// TestOverlapCrashAnywhere interrupts overlapped durable runs at random
// moments (the context's end, or an item's Fatal error) and resumes them
// until the run is done: after every attempt the results table holds
// exactly the batches the checkpoint says were committed, each row with
// its batch number, and an attempt enriches nothing past the two batches
// after its last commit.
func TestOverlapCrashAnywhere(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		const n, size = 95, 10
		createSource(t, db, n)
		createResults(t, k, db)
		store := checkpointStore(t, db)
		seed := rand.Uint64()
		rng := rand.New(rand.NewPCG(seed, 3))
		for attempt := 0; ; attempt++ {
			if attempt > 200 {
				t.Fatalf("seed %d: not done after %d attempts", seed, attempt)
			}
			before, err := store.Load(context.Background(), "e1")
			if err != nil {
				t.Fatal(err)
			}
			if before.Done {
				break
			}
			ctx, cancel := context.WithCancel(context.Background())
			wait := time.Duration(rng.IntN(40000)) * time.Microsecond
			if attempt > 40 {
				wait = time.Hour
			}
			tm := time.AfterFunc(wait, cancel)
			fatalAt := int64(-1)
			if rng.IntN(3) == 0 {
				fatalAt = 1 + rng.Int64N(n)
			}
			lat := make([]time.Duration, n+1)
			for i := range lat {
				lat[i] = time.Duration(rng.IntN(300)) * time.Microsecond
			}
			enr := batchenrichtest.NewEnricher(func(ctx context.Context, tr Traveler) (Enriched, error) {
				if tr.TravelerID == fatalAt {
					return Enriched{}, batchenrich.Fatal(errors.New("bug"))
				}
				return enrich(ctx, tr)
			})
			enr.Latency = func(tr Traveler) time.Duration { return lat[tr.TravelerID] }
			maxBatch := 0
			batchOf := make(chan int, n*2)
			enr.Started = func(tr Traveler, _ int) { batchOf <- int(tr.TravelerID-1)/size + 1 }
			r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), batchenrich.Enricher[Traveler, Enriched](enr), resultsSink(t, db),
				batchenrich.Options{BatchSize: size, Concurrency: 1 + rng.IntN(5), Overlap: true, Durable: &batchenrich.Durable{Store: store, RunKey: "e1"}})
			if err != nil {
				t.Fatal(err)
			}
			rep, runErr := r.Run(ctx)
			cancelled := ctx.Err() != nil
			tm.Stop()
			cancel()
			close(batchOf)
			for b := range batchOf {
				maxBatch = max(maxBatch, b)
			}
			cp, err := store.Load(context.Background(), "e1")
			if err != nil {
				t.Fatal(err)
			}
			if runErr == nil && !cp.Done {
				t.Fatalf("seed %d attempt %d: no error, checkpoint %+v", seed, attempt, cp)
			}
			if cp.Batch-before.Batch != rep.BatchesRun {
				t.Fatalf("seed %d attempt %d: checkpoint went %d → %d, report ran %d (err %v)", seed, attempt, before.Batch, cp.Batch, rep.BatchesRun, runErr)
			}
			if maxBatch > cp.Batch+2 {
				t.Fatalf("seed %d attempt %d: batch %d enriched, %d committed", seed, attempt, maxBatch, cp.Batch)
			}
			var be *batchenrich.BatchError
			var ie *batchenrich.ItemError
			switch {
			case runErr == nil:
			case rep.BatchesRun == 0 && cp.Batch == before.Batch && cancelled && len(rep.Batches) == 0:
				// Cancelled before the first batch (lock, checks, read).
			case errors.As(runErr, &ie):
				if ie.Batch != cp.Batch+1 {
					t.Fatalf("seed %d attempt %d: err %v, checkpoint at %d", seed, attempt, runErr, cp.Batch)
				}
			case errors.As(runErr, &be):
				if be.Batch != cp.Batch+1 {
					t.Fatalf("seed %d attempt %d: err %v, checkpoint at %d", seed, attempt, runErr, cp.Batch)
				}
			case !cancelled:
				t.Fatalf("seed %d attempt %d: err %v", seed, attempt, runErr)
			}
			checkRows(t, db, min(n, cp.Batch*size), size)
		}
		checkRows(t, db, n, size)
	})
}
