package crashtest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
)

// TestCancelThenResume cancels a run in-process during batch 3's
// enrichment, then its resumption during batch 4's write, then resumes to
// the end: committed batches are skipped, never enriched again, and the
// totals are exact.
func TestCancelThenResume(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			db := testdb.Open(t, k)
			createTables(t, db, nItems)
			total := batchesOf(nItems, batchSize)

			// run runs the job as writer, cancelling it when the enrichment
			// of item cancelEnrich starts or the row of item cancelRow is
			// built (0: never). It returns the Report and the enrichments
			// per item.
			run := func(writer string, cancelEnrich, cancelRow int64) (batchenrich.Report, map[int64]int, error) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				j, err := newJob(db, jobConfig{Writer: writer, Payload: 16, OnRow: func(r batchenrich.Result[item, profile]) {
					if r.Item.ID == cancelRow {
						cancel()
					}
				}})
				if err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				calls := map[int64]int{}
				enr := batchenrich.EnricherFunc[item, profile](func(ctx context.Context, it item) (profile, error) {
					mu.Lock()
					calls[it.ID]++
					mu.Unlock()
					if it.ID == cancelEnrich {
						cancel()
						<-ctx.Done()
						return profile{}, ctx.Err()
					}
					return profile{ID: it.ID, Score: scoreOf(it.ID)}, nil
				})
				r, err := batchenrich.New(j.src, enr, j.sink, batchenrich.Options{
					BatchSize:   batchSize,
					Concurrency: concurrency,
					Durable: &batchenrich.Durable{
						Store:  j.store,
						RunKey: runKey,
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				rep, err := r.Run(ctx)
				mu.Lock()
				defer mu.Unlock()
				return rep, calls, err
			}
			enrichedIn := func(calls map[int64]int) map[int]int {
				per := map[int]int{}
				for id, c := range calls {
					if c != 1 {
						t.Errorf("item %d enriched %d times in one run", id, c)
					}
					per[batchOf(id, batchSize)]++
				}
				return per
			}

			// 1. Cancelled while enriching batch 3 (item 23).
			rep, calls, err := run("run1", 23, 0)
			var be *batchenrich.BatchError
			if !errors.Is(err, context.Canceled) || !errors.As(err, &be) || be.Batch != 3 || be.Stage != batchenrich.StageEnrich {
				t.Fatalf("run 1: %v; want batch 3 cancelled in enrich", err)
			}
			if rep.BatchesRun != 2 || rep.Written != 20 {
				t.Fatalf("run 1: ran %d, wrote %d; want 2, 20", rep.BatchesRun, rep.Written)
			}
			if per := enrichedIn(calls); per[1] != 10 || per[2] != 10 || per[3] == 0 || len(per) != 3 {
				t.Fatalf("run 1 enriched per batch: %v", per)
			}
			checkCommitted(t, db, nItems, batchSize, 2, false)

			// 2. Resumed, cancelled in batch 4's write (building item 35's
			// row): batch 3 commits, batch 4 rolls back.
			rep, calls, err = run("run2", 0, 35)
			if !errors.Is(err, context.Canceled) || !errors.As(err, &be) || be.Batch != 4 || be.Stage != batchenrich.StageWrite {
				t.Fatalf("run 2: %v; want batch 4 cancelled in write", err)
			}
			if rep.BatchesSkipped != 2 || rep.BatchesRun != 1 {
				t.Fatalf("run 2: skipped %d, ran %d; want 2, 1", rep.BatchesSkipped, rep.BatchesRun)
			}
			if per := enrichedIn(calls); per[3] != 10 || per[4] != 10 || len(per) != 2 {
				t.Fatalf("run 2 enriched per batch: %v; want batches 3 and 4 only", per)
			}
			checkCommitted(t, db, nItems, batchSize, 3, false)

			// 3. Resumed to the end: batches 4..6, 25 items, each once.
			rep, calls, err = run("run3", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if rep.BatchesSkipped != 3 || rep.BatchesRun != 3 || rep.Written != 25 || rep.Enriched != 25 || len(calls) != 25 || !rep.Atomic {
				t.Fatalf("run 3: skipped %d, ran %d, wrote %d, enriched %d (%d calls), atomic %v; want 3, 3, 25, 25, true",
					rep.BatchesSkipped, rep.BatchesRun, rep.Written, rep.Enriched, len(calls), rep.Atomic)
			}
			if per := enrichedIn(calls); per[4] != 10 || per[5] != 10 || per[6] != 5 {
				t.Fatalf("run 3 enriched per batch: %v", per)
			}
			writers := checkCommitted(t, db, nItems, batchSize, total, true)
			want := map[int]string{1: "run1", 2: "run1", 3: "run2", 4: "run3", 5: "run3", 6: "run3"}
			for b, w := range want {
				if writers[b] != w {
					t.Errorf("batch %d written by %s, want %s", b, writers[b], w)
				}
			}

			// 4. Once more: done, nothing read or enriched.
			rep, calls, err = run("run4", 0, 0)
			if err != nil || !rep.AlreadyDone || len(calls) != 0 || rep.BatchesSkipped != total {
				t.Fatalf("run 4: %+v, %d enrichments, %v", rep, len(calls), err)
			}
		})
	}
}
