package main

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob/seedjobtest"
	"github.com/batchenrich/batchenrich/riverenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// TestConformance runs the fleet's Source (newSource, whole and one of two
// partitions), Sink (newSink) and checkpoint store, on the program's own
// tables, through batchenrichtest's suites. The fleet runs on PostgreSQL
// only.
func TestConformance(t *testing.T) {
	for _, p := range []batchenrich.Partition{{}, {Index: 1, Count: 2}} {
		t.Run("Source/partition="+p.String(), func(t *testing.T) {
			batchenrichtest.TestSource(t, batchenrichtest.SourceHarness[Traveler]{
				New: func(t *testing.T, n int) (func() batchenrich.Source[Traveler], []Traveler) {
					db, _ := conformanceDB(t)
					if err := seedjob.Seed(context.Background(), db, "other", n); err != nil { // the Filter must skip it
						t.Fatal(err)
					}
					open := func() batchenrich.Source[Traveler] {
						src, err := newSource(db, seedjobtest.ExecutionID, p)
						if err != nil {
							t.Fatal(err)
						}
						return src
					}
					return open, partitionItems(t, db, n, p)
				},
			})
		})
	}
	t.Run("Sink", func(t *testing.T) {
		batchenrichtest.TestSink(t, batchenrichtest.SinkHarness[Traveler, Profile]{
			New: func(t *testing.T) batchenrichtest.SinkFixture[Traveler, Profile] {
				db, store := conformanceDB(t)
				sink, err := newSink(db, 1)
				if err != nil {
					t.Fatal(err)
				}
				return batchenrichtest.SinkFixture[Traveler, Profile]{
					Sink:        sink,
					Checkpoints: store,
					Stored:      func(t *testing.T) []batchenrichtest.Stored { return seedjobtest.Stored(t, db) },
				}
			},
			Item:   seedjobtest.Traveler,
			Value:  seedjobtest.Profile,
			Key:    Traveler.Key,
			Poison: seedjobtest.Poison, // PostgreSQL refuses a NUL byte in TEXT
		})
	})
	t.Run("CheckpointStore", func(t *testing.T) {
		batchenrichtest.TestCheckpointStore(t, batchenrichtest.CheckpointHarness{
			New: func(t *testing.T) func() batchenrich.CheckpointStore {
				db, _ := conformanceDB(t)
				return func() batchenrich.CheckpointStore {
					store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
					if err != nil {
						t.Fatal(err)
					}
					return store
				}
			},
		})
	})
}

// partitionItems seeds seedjobtest.ExecutionID with travelers such that partition p holds
// n of them, and returns those in key order. For a partitioned p it seeds
// more, checks that p's partitions together hold each exactly once, and
// deletes the travelers after p's n-th.
func partitionItems(t *testing.T, db *sqlx.DB, n int, p batchenrich.Partition) []Traveler {
	t.Helper()
	ctx := context.Background()
	if !p.Partitioned() {
		if err := seedjob.Seed(ctx, db, seedjobtest.ExecutionID, n); err != nil {
			t.Fatal(err)
		}
		return seedjobtest.Travelers(n)
	}
	seeded := 4*n + 16
	if err := seedjob.Seed(ctx, db, seedjobtest.ExecutionID, seeded); err != nil {
		t.Fatal(err)
	}
	seen := make(map[int64]int)
	var mine []Traveler
	for i := range p.Count {
		src, err := newSource(db, seedjobtest.ExecutionID, batchenrich.Partition{Index: i, Count: p.Count})
		if err != nil {
			t.Fatal(err)
		}
		items, _, err := src.Read(ctx, "", seeded+1)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			seen[it.TravelerID]++
		}
		if i == p.Index {
			mine = items
		}
	}
	for id := int64(1); id <= int64(seeded); id++ {
		if seen[id] != 1 {
			t.Fatalf("traveler %d is in %d of %d partitions", id, seen[id], p.Count)
		}
	}
	if len(seen) != seeded || len(mine) < n {
		t.Fatalf("the partitions hold %d travelers (want %d), partition %s %d (want at least %d)", len(seen), seeded, p, len(mine), n)
	}
	mine = mine[:n]
	last := int64(0)
	if n > 0 {
		last = mine[n-1].TravelerID
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM traveler_batch_source WHERE execution_id = $1 AND traveler_id > $2`, seedjobtest.ExecutionID, last); err != nil {
		t.Fatal(err)
	}
	return mine
}

// conformanceDB returns a fresh PostgreSQL database with the program's
// tables (schema, the checkpoint table) and its checkpoint store.
func conformanceDB(t *testing.T) (*sqlx.DB, *sqlbatch.CheckpointStore) {
	t.Helper()
	db := testdb.Postgres(t)
	ctx := context.Background()
	if err := sqlbatch.ExecDDL(ctx, db, schema...); err != nil {
		t.Fatal(err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	return db, store
}
