package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob/seedjobtest"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// TestConformance runs the example's Source (newSource), Sink (newSink)
// and checkpoint store, on the program's own SQLite database (openDB,
// prepare), through batchenrichtest's suites. The example runs on SQLite
// only.
func TestConformance(t *testing.T) {
	t.Run("Source", func(t *testing.T) {
		batchenrichtest.TestSource(t, batchenrichtest.SourceHarness[Traveler]{
			New: func(t *testing.T, n int) (func() batchenrich.Source[Traveler], []Traveler) {
				db, _ := conformanceDB(t)
				for _, id := range []string{"other", seedjobtest.ExecutionID} { // the Filter must skip "other"
					if err := seedjob.Seed(context.Background(), db, id, n); err != nil {
						t.Fatal(err)
					}
				}
				return func() batchenrich.Source[Traveler] {
					src, err := newSource(db, seedjobtest.ExecutionID)
					if err != nil {
						t.Fatal(err)
					}
					return src
				}, seedjobtest.Travelers(n)
			},
		})
	})
	t.Run("Sink", func(t *testing.T) {
		batchenrichtest.TestSink(t, batchenrichtest.SinkHarness[Traveler, Profile]{
			New: func(t *testing.T) batchenrichtest.SinkFixture[Traveler, Profile] {
				db, store := conformanceDB(t)
				sink, err := newSink(db)
				if err != nil {
					t.Fatal(err)
				}
				return batchenrichtest.SinkFixture[Traveler, Profile]{
					Sink:        sink,
					Checkpoints: store,
					Stored:      func(t *testing.T) []batchenrichtest.Stored { return seedjobtest.Stored(t, db) },
				}
			},
			Item: seedjobtest.Traveler,
			Value: func(i int) Profile {
				return Profile{Status: 200, Payload: []byte(fmt.Sprintf(`{"args":{"traveler_id":["%d"]}}`, i+1))}
			},
			Key: Traveler.Key,
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

// conformanceDB returns a fresh database opened as the program opens it,
// with its tables (prepare, seeding nothing; the checkpoint table) and
// its checkpoint store.
func conformanceDB(t *testing.T) (*sqlx.DB, *sqlbatch.CheckpointStore) {
	t.Helper()
	db, err := openDB(filepath.Join(t.TempDir(), "conformance.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := prepare(ctx, db, seedjobtest.ExecutionID, 0); err != nil {
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
