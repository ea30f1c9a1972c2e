package main

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob/seedjobtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// TestConformance runs the example's Source, Sink and checkpoint store, as
// newJob configures them (sourceConfig, newSink, the default checkpoint
// table, created as the program creates them), through batchenrichtest's
// suites on each database.
func TestConformance(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Run("Source", func(t *testing.T) {
				batchenrichtest.TestSource(t, batchenrichtest.SourceHarness[Traveler]{
					New: func(t *testing.T, n int) (func() batchenrich.Source[Traveler], []Traveler) {
						db, _ := conformanceDB(t, k)
						// Another execution's rows, which the Filter must skip.
						for _, id := range []string{"other", seedjobtest.ExecutionID} {
							if err := seedjob.Seed(context.Background(), db, id, n); err != nil {
								t.Fatal(err)
							}
						}
						return func() batchenrich.Source[Traveler] {
							src, err := sqlbatch.NewSource[Traveler](db, sourceConfig(seedjobtest.ExecutionID))
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
						db, store := conformanceDB(t, k)
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
					Item:   seedjobtest.Traveler,
					Value:  seedjobtest.Profile,
					Key:    Traveler.Key,
					Poison: poison(k),
				})
			})
			t.Run("CheckpointStore", func(t *testing.T) {
				batchenrichtest.TestCheckpointStore(t, batchenrichtest.CheckpointHarness{
					New: func(t *testing.T) func() batchenrich.CheckpointStore {
						db, _ := conformanceDB(t, k)
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
		})
	}
}

// poison returns TestSink's Poison for kind k: seedjobtest.Poison, a
// traveler whose name PostgreSQL refuses; nil on SQLite, which stores it.
func poison(k testdb.Kind) func(i int) Traveler {
	if k != testdb.PostgreSQL {
		return nil
	}
	return seedjobtest.Poison
}

// conformanceDB returns a fresh database of kind k with the program's
// tables (createTables, addFailureColumns) and its checkpoint store.
func conformanceDB(t *testing.T, k testdb.Kind) (*sqlx.DB, *sqlbatch.CheckpointStore) {
	t.Helper()
	db := testdb.Open(t, k)
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := createTables(ctx, db, store); err != nil {
		t.Fatal(err)
	}
	if err := addFailureColumns(ctx, db); err != nil {
		t.Fatal(err)
	}
	return db, store
}
