package sqlbatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/goleak"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Traveler is the test item: a row of traveler_batch_source.
type Traveler struct {
	ExecutionID string `db:"execution_id"`
	TravelerID  int64  `db:"traveler_id"`
	Name        string `db:"name"`
}

func (t Traveler) Key() string { return fmt.Sprintf("%s/%d", t.ExecutionID, t.TravelerID) }

// Enriched is the test result.
type Enriched struct {
	Score int               `json:"score"`
	Tags  map[string]string `json:"tags,omitempty"`
}

// forEachDB runs f on a fresh database of each kind, in parallel subtests.
func forEachDB(t *testing.T, f func(t *testing.T, k testdb.Kind, db *sqlx.DB)) {
	t.Helper()
	forEachKind(t, testdb.Kinds, f)
}

// forEachDriver is forEachDB with PostgreSQL through pgx too.
func forEachDriver(t *testing.T, f func(t *testing.T, k testdb.Kind, db *sqlx.DB)) {
	t.Helper()
	forEachKind(t, testdb.AllKinds, f)
}

func forEachKind(t *testing.T, kinds []testdb.Kind, f func(t *testing.T, k testdb.Kind, db *sqlx.DB)) {
	t.Helper()
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			db := testdb.Open(t, k)
			f(t, k, db)
		})
	}
}

func mustExec(t testing.TB, db *sqlx.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// ddl adapts a CREATE TABLE written for PostgreSQL to SQLite.
func ddl(k testdb.Kind, q string) string {
	if k == testdb.SQLite {
		q = strings.NewReplacer("JSONB", "TEXT", "TIMESTAMPTZ", "DATETIME", "BIGSERIAL", "INTEGER").Replace(q)
	}
	return q
}

// createSource creates traveler_batch_source with n travelers of
// execution "e1" and n/2 of "e2".
func createSource(t testing.TB, db *sqlx.DB, n int) {
	t.Helper()
	mustExec(t, db, `CREATE TABLE traveler_batch_source (
		execution_id TEXT NOT NULL,
		traveler_id BIGINT NOT NULL,
		name TEXT NOT NULL,
		PRIMARY KEY (execution_id, traveler_id))`)
	insertTravelers(t, db, "e1", n)
	insertTravelers(t, db, "e2", n/2)
}

func insertTravelers(t testing.TB, db *sqlx.DB, exec string, n int) {
	t.Helper()
	tx := db.MustBegin()
	for i := 1; i <= n; i++ {
		// Insert in a scrambled order: the Source must sort.
		id := int64((i*7919)%n + 1)
		if _, err := tx.Exec(db.Rebind(`INSERT INTO traveler_batch_source (execution_id, traveler_id, name) VALUES (?, ?, ?)`),
			exec, id, fmt.Sprintf("traveler %d", id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func rebind(db *sqlx.DB, q string) string {
	if db.DriverName() != "sqlite" {
		return sqlx.Rebind(sqlx.DOLLAR, q)
	}
	return q
}

// createResults creates traveler_batch_results.
func createResults(t testing.TB, k testdb.Kind, db *sqlx.DB) {
	t.Helper()
	mustExec(t, db, ddl(k, `CREATE TABLE traveler_batch_results (
		execution_id TEXT NOT NULL,
		traveler_id BIGINT NOT NULL,
		batch_number INTEGER NOT NULL,
		payload JSONB,
		is_valid BOOLEAN NOT NULL,
		validation_error TEXT,
		processed_at TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (execution_id, traveler_id))`))
}

// poisonName marks a Traveler that resultsSink's Row refuses.
const poisonName = "poison"

var fixedTime = time.Date(2025, 3, 1, 12, 30, 0, 123456000, time.UTC)

// resultsSink returns the travelers Sink, storing failures as invalid rows.
func resultsSink(t testing.TB, db *sqlx.DB) *sqlbatch.Sink[Traveler, Enriched] {
	t.Helper()
	s, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
		Table:       "traveler_batch_results",
		Key:         []string{"execution_id", "traveler_id"},
		Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "validation_error", "processed_at"},
		BatchColumn: "batch_number",
		Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
			if r.Item.Name == poisonName {
				return nil, errors.New("poison item")
			}
			if r.Err != nil {
				return []any{r.Item.ExecutionID, r.Item.TravelerID, nil, false, r.Err.Error(), fixedTime}, nil
			}
			return []any{r.Item.ExecutionID, r.Item.TravelerID, sqlbatch.JSON[Enriched]{V: r.Value}, true, nil, fixedTime}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func travelerSource(t testing.TB, db *sqlx.DB, exec string, paging sqlbatch.Paging) *sqlbatch.Source[Traveler] {
	t.Helper()
	src, err := sqlbatch.NewSource[Traveler](db, sqlbatch.SourceConfig{
		Table:  "traveler_batch_source",
		Key:    []string{"traveler_id"},
		Filter: map[string]any{"execution_id": exec},
		Paging: paging,
	})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// ResultRow is a row of traveler_batch_results as read back.
type ResultRow struct {
	ExecutionID     string                   `db:"execution_id"`
	TravelerID      int64                    `db:"traveler_id"`
	BatchNumber     int                      `db:"batch_number"`
	Payload         *sqlbatch.JSON[Enriched] `db:"payload"`
	IsValid         bool                     `db:"is_valid"`
	ValidationError *string                  `db:"validation_error"`
	ProcessedAt     time.Time                `db:"processed_at"`
}

func readResults(t testing.TB, db *sqlx.DB) []ResultRow {
	t.Helper()
	var rows []ResultRow
	if err := db.Select(&rows, `SELECT execution_id, traveler_id, batch_number, payload, is_valid, validation_error, processed_at
		FROM traveler_batch_results ORDER BY execution_id, traveler_id`); err != nil {
		t.Fatal(err)
	}
	return rows
}

func enrich(ctx context.Context, tr Traveler) (Enriched, error) {
	if tr.TravelerID%10 == 0 {
		return Enriched{}, batchenrich.Permanent(fmt.Errorf("traveler %d: no passport", tr.TravelerID))
	}
	return Enriched{Score: int(tr.TravelerID) * 2, Tags: map[string]string{"name": tr.Name}}, nil
}
