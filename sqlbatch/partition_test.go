package sqlbatch_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// keyed is a row of the partition tables: an integer, a text and a
// composite (text, integer) key over the same rows.
type keyed struct {
	ID   int64  `db:"id"`
	Code string `db:"code"`
	Grp  string `db:"grp"`
	Seq  int64  `db:"seq"`
}

// TestPartitionsCoverEveryRowOnce is a property test: for random rows and
// several partition counts, reading every partition of a Source to the
// end (in small windows, through the cursor, as a run does) yields each
// row exactly once, in key order within each partition, for integer, text
// and composite keys.
func TestPartitionsCoverEveryRowOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		mustExec(t, db, `CREATE TABLE parts (id BIGINT NOT NULL UNIQUE, code TEXT NOT NULL UNIQUE, grp TEXT NOT NULL, seq BIGINT NOT NULL, run TEXT NOT NULL, PRIMARY KEY (grp, seq))`)
		for seed := range uint64(3) {
			rng := rand.New(rand.NewPCG(seed, 13))
			run := fmt.Sprintf("r%d", seed)
			n := 50 + rng.IntN(250)
			want := map[int64]bool{}
			tx := db.MustBegin()
			for len(want) < n {
				id := rng.Int64N(1<<40) - 1<<39 // negative keys too
				if want[id] {
					continue
				}
				want[id] = true
				code := fmt.Sprintf("%s-%x-é'\"%d", run, rng.Uint32(), id) // quotes, non-ASCII
				if _, err := tx.Exec(db.Rebind(`INSERT INTO parts (id, code, grp, seq, run) VALUES (?, ?, ?, ?, ?)`),
					id, code, fmt.Sprintf("%s-g%d", run, rng.IntN(5)), id, run); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			for _, key := range [][]string{{"id"}, {"code"}, {"grp", "seq"}} {
				// The database's own order of the whole set, to check
				// each partition's order against (collations differ).
				all, err := sqlbatch.NewSource[keyed](db, sqlbatch.SourceConfig{
					Table: "parts", Key: key, Columns: []string{"id", "code", "grp", "seq"},
					Filter: map[string]any{"run": run},
				})
				if err != nil {
					t.Fatal(err)
				}
				allRows, _ := readAll[keyed](t, all, 1000)
				pos := map[int64]int{}
				for i, r := range allRows {
					pos[r.ID] = i
				}
				for _, count := range []int{2, 3, 8} {
					seen := map[int64]int{}
					sizes := make([]int, count)
					for p := range count {
						src, err := sqlbatch.NewSource[keyed](db, sqlbatch.SourceConfig{
							Table: "parts", Key: key, Columns: []string{"id", "code", "grp", "seq"},
							Filter:    map[string]any{"run": run},
							Partition: batchenrich.Partition{Index: p, Count: count},
						})
						if err != nil {
							t.Fatal(err)
						}
						rows, _ := readAll[keyed](t, src, 7)
						sizes[p] = len(rows)
						if !slices.IsSortedFunc(rows, func(a, b keyed) int { return pos[a.ID] - pos[b.ID] }) {
							t.Fatalf("key %v, %d partitions: partition %d not in key order", key, count, p)
						}
						for _, r := range rows {
							seen[r.ID]++
						}
					}
					for id := range want {
						if seen[id] != 1 {
							t.Fatalf("seed %d key %v, %d partitions: row %d read %d times", seed, key, count, id, seen[id])
						}
					}
					if len(seen) != len(want) {
						t.Fatalf("key %v: read %d distinct rows, want %d", key, len(seen), len(want))
					}
					for p, n := range sizes {
						if n == 0 && len(want) > 20*count {
							t.Errorf("key %v, %d partitions: partition %d is empty (sizes %v)", key, count, p, sizes)
						}
					}
				}
			}
		}
	})
}

func TestPartitionConfigRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		for _, cfg := range []sqlbatch.SourceConfig{
			{Table: "t", Key: []string{"traveler_id"}, Partition: batchenrich.Partition{Index: 2, Count: 2}},
			{Table: "t", Key: []string{"traveler_id"}, Partition: batchenrich.Partition{Index: 0, Count: 2}, Paging: sqlbatch.PageByOffset},
		} {
			_, err := sqlbatch.NewSource[Traveler](db, cfg)
			var ce *batchenrich.ConfigError
			if !errors.As(err, &ce) || ce.Field != "SourceConfig.Partition" {
				t.Errorf("%+v: err = %v, want a ConfigError on Partition", cfg.Partition, err)
			}
		}
	})
}

// TestPartitionedRunOnDatabase runs a split run with sqlbatch's Sink and
// store: every row stored once, each partition's batches numbered from 1,
// and a changed partition count refused before any enrichment.
func TestPartitionedRunOnDatabase(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		createSource(t, db, 300)
		createResults(t, k, db)
		store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CreateTable(ctx); err != nil {
			t.Fatal(err)
		}
		var calls int
		newRun := func(parts int, o batchenrich.Options) *batchenrich.Runner[Traveler, Enriched] {
			pr, err := batchenrich.NewPartitioned(parts, func(p batchenrich.Partition) (batchenrich.Source[Traveler], error) {
				return sqlbatch.NewSource[Traveler](db, sqlbatch.SourceConfig{
					Table: "traveler_batch_source", Key: []string{"traveler_id"},
					Filter: map[string]any{"execution_id": "e1"}, Partition: p,
				})
			}, batchenrich.EnricherFunc[Traveler, Enriched](func(ctx context.Context, tr Traveler) (Enriched, error) {
				calls++ // Concurrency 1 in total: no race
				return enrich(ctx, tr)
			}), func(batchenrich.Partition) (batchenrich.Sink[Traveler, Enriched], error) {
				return resultsSink(t, db), nil
			}, o)
			if err != nil {
				t.Fatal(err)
			}
			return pr
		}
		o := batchenrich.Options{BatchSize: 20, Concurrency: 1, Durable: &batchenrich.Durable{Store: store, RunKey: "split"}, MaxBatches: 2}
		if _, err := newRun(3, o).Run(ctx); err != nil {
			t.Fatal(err)
		}
		first := calls
		o.MaxBatches = 0
		if _, err := newRun(4, o).Run(ctx); !errors.Is(err, batchenrich.ErrPartitionsChanged) {
			t.Fatalf("4 partitions after 3: err = %v", err)
		}
		if calls != first {
			t.Fatalf("refused run enriched %d items", calls-first)
		}
		rep, err := newRun(3, o).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.BatchesSkipped != 6 || calls != 300 {
			t.Fatalf("resume skipped %d batches, %d calls in all; want 6 and 300", rep.BatchesSkipped, calls)
		}
		rows := readResults(t, db)
		if len(rows) != 300 {
			t.Fatalf("%d rows stored, want 300", len(rows))
		}
		maxBatch := 0
		for _, r := range rows {
			maxBatch = max(maxBatch, r.BatchNumber)
		}
		if maxBatch > 6 { // about 100 rows per partition, batches of 20
			t.Errorf("max batch number %d: numbering is not per partition", maxBatch)
		}
	})
}

// TestPartitionOfAQuery splits a Query source: its partitions, read to
// the end, hold each row of the query once.
func TestPartitionOfAQuery(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 120)
		seen := map[int64]int{}
		for p := range 3 {
			src, err := sqlbatch.NewSource[Traveler](db, sqlbatch.SourceConfig{
				Query:     `SELECT execution_id, traveler_id, name FROM traveler_batch_source WHERE execution_id = ? AND traveler_id > ?`,
				Args:      []any{"e1", 20},
				Key:       []string{"traveler_id"},
				Partition: batchenrich.Partition{Index: p, Count: 3},
			})
			if err != nil {
				t.Fatal(err)
			}
			rows, _ := readAll[Traveler](t, src, 9)
			for _, r := range rows {
				seen[r.TravelerID]++
			}
		}
		if len(seen) != 100 {
			t.Fatalf("%d distinct rows over the partitions, want 100", len(seen))
		}
		for id, n := range seen {
			if n != 1 || id <= 20 {
				t.Fatalf("row %d read %d times", id, n)
			}
		}
	})
}
