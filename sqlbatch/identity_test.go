package sqlbatch_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// A run key belongs to one job: resuming it under another Job, or with a
// Sink writing another table, is refused before anything is read, naming
// what differs, even with AllowReshape; the same job resumes it.
func TestRunIdentityRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 30)
		createResults(t, k, db)
		mustExec(t, db, ddl(k, `CREATE TABLE other_results (
			execution_id TEXT NOT NULL, traveler_id BIGINT NOT NULL, batch_number INTEGER NOT NULL,
			payload JSONB, is_valid BOOLEAN NOT NULL, validation_error TEXT, processed_at TIMESTAMPTZ NOT NULL,
			PRIMARY KEY (execution_id, traveler_id))`))
		store := checkpointStore(t, db)
		ctx := context.Background()
		maxBatches := 1
		run := func(job string, sink batchenrich.Sink[Traveler, Enriched], reshape bool) (batchenrich.Report, error) {
			t.Helper()
			r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), batchenrichtest.NewEnricher(enrich), sink,
				batchenrich.Options{BatchSize: 10, MaxBatches: maxBatches, Durable: &batchenrich.Durable{Store: store, RunKey: "e1", Job: job, AllowReshape: reshape}})
			if err != nil {
				t.Fatal(err)
			}
			return r.Run(ctx)
		}
		if _, err := run("travelers", resultsSink(t, db), false); err != nil {
			t.Fatal(err)
		}
		cp, err := store.Load(ctx, "e1")
		if err != nil || cp.Job != "travelers" || !strings.Contains(cp.Definition, `sink: table "traveler_batch_results"`) ||
			!strings.Contains(cp.Definition, `source: table "traveler_batch_source" key ("traveler_id") filter ("execution_id" = "e1")`) {
			t.Fatalf("checkpoint = %+v, %v", cp, err)
		}

		other := resultsSink(t, db)
		otherSink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
			Table: "other_results", Key: []string{"execution_id", "traveler_id"},
			Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "validation_error", "processed_at"},
			BatchColumn: "batch_number",
			Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
				return []any{r.Item.ExecutionID, r.Item.TravelerID, nil, r.Err == nil, nil, fixedTime}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			job  string
			sink batchenrich.Sink[Traveler, Enriched]
			want []string
		}{
			{"OtherJob", "billing", other, []string{`Job "travelers" (this run: "billing")`}},
			{"OtherSink", "travelers", otherSink, []string{`sink "table \"traveler_batch_results\"`, `(this run: "table \"other_results\"`}},
		} {
			for _, reshape := range []bool{false, true} {
				rep, err := run(tc.job, tc.sink, reshape)
				if !errors.Is(err, batchenrich.ErrCheckpointMismatch) || rep.Read != 0 {
					t.Fatalf("%s (AllowReshape %v): err = %v, read %d", tc.name, reshape, err, rep.Read)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not say %q", tc.name, err, w)
					}
				}
				if strings.Contains(err.Error(), "AllowReshape") {
					t.Errorf("%s: error %q suggests AllowReshape, which cannot change a job", tc.name, err)
				}
			}
		}
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM other_results`); err != nil || n != 0 {
			t.Fatalf("other job's table has %d rows, %v", n, err)
		}
		// A checkpoint of an older version (no job, no definition)
		// resumes, and records them from then on.
		mustExec(t, db, `UPDATE batchenrich_checkpoints SET job = '', definition = ''`)
		maxBatches = 2
		if _, err := run("travelers", resultsSink(t, db), false); err != nil {
			t.Fatal(err)
		}
		if cp, err := store.Load(ctx, "e1"); err != nil || cp.Job != "travelers" || cp.Definition == "" || cp.Batch != 2 {
			t.Fatalf("checkpoint = %+v, %v", cp, err)
		}
	})
}
