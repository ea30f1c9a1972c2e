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

// A Sink error in a run reads once: the Runner's "batchenrich: batch N:
// write: ", then the Sink's error, which names the table and adds no
// prefix or batch number of its own.
func TestRunErrorTextReadsOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 25)
		createResults(t, k, db)
		sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
			Table: "traveler_batch_results", Key: []string{"execution_id", "traveler_id"},
			Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "validation_error", "processed_at"},
			BatchColumn: "batch_number",
			Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
				var at any = fixedTime
				if r.Item.TravelerID == 15 {
					at = nil // NOT NULL: the database refuses the batch
				}
				return []any{r.Item.ExecutionID, r.Item.TravelerID, sqlbatch.JSON[Enriched]{V: r.Value}, true, nil, at}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), batchenrichtest.NewEnricher(enrich), sink,
			batchenrich.Options{BatchSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Run(context.Background())
		msg := fmtErr(err)
		if !strings.HasPrefix(msg, "batchenrich: batch 2: write: traveler_batch_results: ") ||
			strings.Count(msg, "batchenrich:") != 1 || strings.Contains(msg, "sqlbatch:") || strings.Count(msg, "batch 2") != 1 {
			t.Fatalf("error text %q does not read once", msg)
		}
	})
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// lostAfterDone wraps a CheckpointStore: once the final (Done) checkpoint
// is saved, lose the run's lock.
type lostAfterDone struct {
	*sqlbatch.CheckpointStore
	lose func()
}

func (s lostAfterDone) Save(ctx context.Context, cp batchenrich.Checkpoint) error {
	err := s.CheckpointStore.Save(ctx, cp)
	if err == nil && cp.Done {
		s.lose()
	}
	return err
}

// A run whose lock was lost after its last checkpoint reports it: the
// release error reaches the caller as a StageLock *BatchError.
func TestRunReportsLockLostAtUnlock(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 25)
		createResults(t, k, db)
		store := checkpointStore(t, db)
		lose := func() {
			if k == testdb.PostgreSQL {
				terminateBackend(t, db, store.LockPID("e1"))
				return
			}
			// The lease expires and another runner takes it.
			mustExec(t, db, `UPDATE batchenrich_checkpoints SET lock_expires_at = 0 WHERE run_key = 'e1'`)
			other := checkpointStore(t, db)
			unlock, ok, err := other.TryLock(context.Background(), "e1")
			if err != nil || !ok {
				t.Fatalf("takeover: %v, %v", ok, err)
			}
			t.Cleanup(func() { _ = unlock() })
		}
		r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), batchenrichtest.NewEnricher(enrich), resultsSink(t, db),
			batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: lostAfterDone{store, lose}, RunKey: "e1"}})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(context.Background())
		var be *batchenrich.BatchError
		if !errors.As(err, &be) || be.Stage != batchenrich.StageUnlock || rep.Written != 25 {
			t.Fatalf("err = %v, written %d; want the lost lock reported at unlock", err, rep.Written)
		}
		want := `batchenrich: run "e1": unlock: pg_advisory_unlock: driver: bad connection` // the lock's session was ended
		if k == testdb.SQLite {
			want = `batchenrich: run "e1": unlock: run lock lost`
			if !errors.Is(err, sqlbatch.ErrLockLost) {
				t.Fatalf("err = %v, want ErrLockLost", err)
			}
		}
		if err.Error() != want {
			t.Fatalf("err = %q, want %q", err, want)
		}
	})
}

// An Enricher's error is stored as it is: FailureReason, in a column of
// invalid rows, keeps even the prefixes of this module's packages and a
// "batch N: " that are part of the user's text.
func TestStoredFailureReasonVerbatim(t *testing.T) {
	const text = "write quota exceeded for tenant: httpenrich: upstream says batch 1: sqlbatch: full"
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 5)
		createResults(t, k, db)
		sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
			Table: "traveler_batch_results", Key: []string{"execution_id", "traveler_id"},
			Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "validation_error", "processed_at"},
			BatchColumn: "batch_number",
			Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
				return []any{r.Item.ExecutionID, r.Item.TravelerID, nil, r.Err == nil, batchenrich.FailureReason(r.Err), fixedTime}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		enr := batchenrichtest.NewEnricher(func(context.Context, Traveler) (Enriched, error) { return Enriched{}, errors.New(text) })
		r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), enr, sink,
			batchenrich.Options{BatchSize: 10, AllowAllFailed: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		rows := readResults(t, db)
		if len(rows) != 5 {
			t.Fatalf("%d rows, want 5", len(rows))
		}
		for _, row := range rows {
			if got := row.ValidationError; got == nil || *got != text {
				t.Errorf("traveler %d: stored reason %q, want %q", row.TravelerID, fmtPtr(got), text)
			}
		}
	})
}

func fmtPtr(s *string) string {
	if s == nil {
		return "<NULL>"
	}
	return *s
}
