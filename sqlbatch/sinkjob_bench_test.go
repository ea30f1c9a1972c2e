package sqlbatch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// jobRow is a result of the bench harness's job (bench/internal/job.Row):
// nine columns and the batch number, a JSON payload of about 700 bytes.
type jobRow struct {
	ID                        int64
	Name, Norm, Hash, Payload string
	Status                    int
	Valid                     bool
	ValidationError           string
}

var jobColumns = []string{"execution_id", "traveler_id", "traveler_name", "normalized_name", "profile_status",
	"profile_hash", "profile_payload", "is_valid", "validation_error"}

// jobBatch is batch num of size fresh job rows.
func jobBatch(num, size int) batchenrich.Batch[int64, jobRow] {
	b := batchenrich.Batch[int64, jobRow]{Number: num, Results: make([]batchenrich.Result[int64, jobRow], size)}
	pad := strings.Repeat("x", 560)
	for i := range b.Results {
		id := int64(num*size + i)
		b.Results[i] = batchenrich.Result[int64, jobRow]{Index: i, Item: id, Value: jobRow{
			ID: id, Name: fmt.Sprint("Traveler ", id), Norm: fmt.Sprint("traveler ", id), Status: 200, Valid: true,
			Hash:    fmt.Sprintf("%064x", id),
			Payload: fmt.Sprintf(`{"args":{"traveler_id":["%d"]},"method":"GET","origin":"127.0.0.1","pad":"%s"}`, id, pad),
		}}
	}
	return b
}

// BenchmarkSinkJob writes batches of 2000 fresh rows of the bench
// harness's job, each with its checkpoint in the same transaction, under
// a held run lock: "sink" is Sink.WriteCheckpointed (what a strict run
// does per batch), "hand" a hand-written transaction of the same work (a
// COPY of the rows and a checkpoint upsert), "copy" the COPY alone in a
// transaction (the hand-written bulk loop's commit). Alternate them:
//
//	go test -run '^$' -bench BenchmarkSinkJob -benchmem -count 6 ./sqlbatch
func BenchmarkSinkJob(b *testing.B) {
	const size = 2000
	db := testdb.Postgres(b)
	mustExec(b, db, `CREATE TABLE traveler_batch_results (execution_id TEXT NOT NULL, traveler_id INTEGER NOT NULL,
		traveler_name TEXT NOT NULL, normalized_name TEXT NOT NULL, profile_status INTEGER NOT NULL, profile_hash TEXT NOT NULL,
		profile_payload JSONB NOT NULL, is_valid BOOLEAN NOT NULL DEFAULT TRUE, validation_error TEXT,
		batch_number INTEGER NOT NULL, processed_at TIMESTAMPTZ DEFAULT NOW(), PRIMARY KEY (execution_id, traveler_id))`)
	mustExec(b, db, `CREATE TABLE hand_checkpoints (run_key text PRIMARY KEY, batch bigint NOT NULL, "cursor" text NOT NULL, updated_at timestamptz NOT NULL)`)
	ctx := context.Background()
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		b.Fatal(err)
	}
	unlock, ok, err := store.TryLock(ctx, "bench")
	if err != nil || !ok {
		b.Fatal(ok, err)
	}
	b.Cleanup(func() { unlock() })
	sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[int64, jobRow]{
		Table: "traveler_batch_results", Key: []string{"execution_id", "traveler_id"}, Columns: jobColumns,
		BatchColumn: "batch_number",
		Row: func(r batchenrich.Result[int64, jobRow]) ([]any, error) {
			v := r.Value
			var verr any
			if v.ValidationError != "" {
				verr = v.ValidationError
			}
			return []any{"bench", v.ID, v.Name, v.Norm, v.Status, v.Hash, v.Payload, v.Valid, verr}, nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := sink.Check(ctx); err != nil {
		b.Fatal(err)
	}
	num := 0
	for _, mode := range []string{"sink", "hand", "copy"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				num++
				batch := jobBatch(num, size)
				cp := batchenrich.Checkpoint{RunKey: "bench", Batch: num, Cursor: batchenrich.Cursor(fmt.Sprint(num * size)), BatchSize: size}
				var err error
				switch mode {
				case "sink":
					err = sink.WriteCheckpointed(ctx, batch, store, cp)
				default:
					err = handJobWrite(ctx, db, batch, mode == "hand")
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// handJobWrite COPYs batch's rows in a transaction, with a checkpoint
// upsert if ckpt.
func handJobWrite(ctx context.Context, db *sqlx.DB, batch batchenrich.Batch[int64, jobRow], ckpt bool) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("traveler_batch_results", append(jobColumns, "batch_number")...))
	if err != nil {
		return err
	}
	for _, r := range batch.Results {
		v := r.Value
		var verr any
		if v.ValidationError != "" {
			verr = v.ValidationError
		}
		if _, err := stmt.ExecContext(ctx, "bench", v.ID, v.Name, v.Norm, v.Status, v.Hash, v.Payload, v.Valid, verr, batch.Number); err != nil {
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	if ckpt {
		if _, err := tx.ExecContext(ctx, `INSERT INTO hand_checkpoints (run_key, batch, "cursor", updated_at) VALUES ($1, $2, $3, now())
			ON CONFLICT (run_key) DO UPDATE SET batch = excluded.batch, "cursor" = excluded."cursor", updated_at = excluded.updated_at`,
			"bench", batch.Number, fmt.Sprint(batch.Number)); err != nil {
			return err
		}
	}
	return tx.Commit()
}
