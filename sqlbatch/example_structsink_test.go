package sqlbatch_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // SQLite driver, registered as "sqlite"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// A Sink whose rows are structs: the columns come from the db tags, so
// they cannot drift from the values; Check then compares them, the key's
// unique index included, with the table before any work. Failed items
// are stored as invalid rows with their reason. (SQLite here; PostgreSQL
// is the same code with another driver.)
func ExampleNewStructSink() {
	dir, err := os.MkdirTemp("", "sqlbatch-structsink")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlx.Open("sqlite", "file:"+filepath.Join(dir, "app.db")+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	db.MustExec(`CREATE TABLE traveler_results (
		execution_id TEXT NOT NULL, traveler_id INTEGER NOT NULL, batch_number INTEGER NOT NULL,
		payload TEXT, is_valid BOOLEAN NOT NULL, validation_error TEXT,
		PRIMARY KEY (execution_id, traveler_id))`)

	type Traveler struct {
		ExecutionID string
		TravelerID  int64
	}
	type Profile struct {
		Score int `json:"score"`
	}
	type ResultRow struct {
		ExecutionID     string                  `db:"execution_id"`
		TravelerID      int64                   `db:"traveler_id"`
		Payload         *sqlbatch.JSON[Profile] `db:"payload"`
		IsValid         bool                    `db:"is_valid"`
		ValidationError *string                 `db:"validation_error"`
	}
	sink, err := sqlbatch.NewStructSink(db, sqlbatch.StructSinkConfig[Traveler, Profile, ResultRow]{
		Table:       "traveler_results",
		Key:         []string{"execution_id", "traveler_id"},
		BatchColumn: "batch_number",
		Row: func(r batchenrich.Result[Traveler, Profile]) (ResultRow, error) {
			row := ResultRow{ExecutionID: r.Item.ExecutionID, TravelerID: r.Item.TravelerID}
			if r.Err != nil {
				reason := batchenrich.FailureReason(r.Err)
				row.ValidationError = &reason
				return row, nil
			}
			row.Payload, row.IsValid = &sqlbatch.JSON[Profile]{V: r.Value}, true
			return row, nil
		},
	})
	if err != nil {
		log.Fatal(err) // ResultRow does not fit: a Key column with no field, a column twice, …
	}
	if err := sink.Check(ctx); err != nil {
		log.Fatal(err) // the table disagrees: a missing column, no unique index on the key, …
	}

	travelers := []Traveler{{"e1", 1}, {"e1", 2}, {"e1", 3}}
	score := batchenrich.EnricherFunc[Traveler, Profile](func(ctx context.Context, t Traveler) (Profile, error) {
		if t.TravelerID == 2 {
			return Profile{}, errors.New("status 404")
		}
		return Profile{Score: int(t.TravelerID) * 10}, nil
	})
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(travelers), score, sink, batchenrich.Options{BatchSize: 2})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := r.Run(ctx); err != nil {
		log.Fatal(err)
	}

	var rows []struct {
		TravelerID int64   `db:"traveler_id"`
		Batch      int     `db:"batch_number"`
		Payload    *string `db:"payload"`
		Error      *string `db:"validation_error"`
	}
	if err := db.Select(&rows, `SELECT traveler_id, batch_number, payload, validation_error FROM traveler_results ORDER BY traveler_id`); err != nil {
		log.Fatal(err)
	}
	for _, row := range rows {
		if row.Error != nil {
			fmt.Printf("traveler %d (batch %d): invalid: %s\n", row.TravelerID, row.Batch, *row.Error)
		} else {
			fmt.Printf("traveler %d (batch %d): %s\n", row.TravelerID, row.Batch, *row.Payload)
		}
	}
	// Output:
	// traveler 1 (batch 1): {"score":10}
	// traveler 2 (batch 1): invalid: status 404
	// traveler 3 (batch 2): {"score":30}
}
