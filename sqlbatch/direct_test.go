package sqlbatch_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// In a transaction the Sink began, the direct COPY runs without a
// savepoint; when it meets an existing key the whole transaction is rolled
// back and run again with the upsert: the batch and its checkpoint commit
// once, and the RowFunc is called once per result all the same.
func TestSinkDirectCopyConflictRunsAgain(t *testing.T) {
	forEachKind(t, []testdb.Kind{testdb.PostgreSQL, testdb.PGX}, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createResults(t, k, db)
		ctx := context.Background()
		var calls atomic.Int64
		s, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
			Table:       "traveler_batch_results",
			Key:         []string{"execution_id", "traveler_id"},
			Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "validation_error", "processed_at"},
			BatchColumn: "batch_number",
			Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
				calls.Add(1)
				return []any{r.Item.ExecutionID, r.Item.TravelerID, nil, r.Err == nil, nil, fixedTime}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CreateTable(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, batchOf(1, "e1", ids(1, 5)...)); err != nil {
			t.Fatal(err)
		}
		if s.Conflicted() {
			t.Fatal("fresh keys met a conflict")
		}
		calls.Store(0)
		// Keys 4 and 5 exist: the direct COPY fails, the upsert runs.
		cp := batchenrich.Checkpoint{RunKey: "direct", Batch: 2, Cursor: "8"}
		if err := s.WriteCheckpointed(ctx, batchOf(2, "e1", ids(4, 8)...), store, cp); err != nil {
			t.Fatal(err)
		}
		if !s.Conflicted() {
			t.Fatal("the rewrite of keys 4 and 5 met no conflict")
		}
		if n := calls.Load(); n != 5 {
			t.Fatalf("RowFunc called %d times for 5 results", n)
		}
		rows := readResults(t, db)
		if len(rows) != 8 || rows[2].BatchNumber != 1 || rows[3].BatchNumber != 2 || rows[7].BatchNumber != 2 {
			t.Fatalf("%d rows: %+v", len(rows), rows)
		}
		got, err := store.Load(ctx, "direct")
		if err != nil {
			t.Fatal(err)
		}
		if got.Batch != 2 || got.Cursor != "8" {
			t.Fatalf("checkpoint %+v, want batch 2 at cursor 8", got)
		}
	})
}
