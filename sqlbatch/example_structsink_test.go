package sqlbatch_test

import (
	"context"
	"log"
	"os"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// A Sink whose rows are structs: the columns come from the db tags, so
// they cannot drift from the values; Check then compares them, the key's
// unique index included, with the table before any work.
func ExampleNewStructSink() {
	db, err := sqlx.Open("postgres", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	type Traveler struct {
		ExecutionID string `db:"execution_id"`
		TravelerID  int64  `db:"traveler_id"`
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
		Table:       "traveler_batch_results",
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
		log.Fatal(err) // S does not fit: a Key column with no field, a column twice, …
	}
	if err := sink.Check(context.Background()); err != nil {
		log.Fatal(err) // the table disagrees: a missing column, no unique index on the key, …
	}
}
