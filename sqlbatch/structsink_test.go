package sqlbatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// resultKey is embedded: its fields are columns of resultStruct.
type resultKey struct {
	ExecutionID string `db:"execution_id"`
	TravelerID  int64  `db:"traveler_id"`
}

// resultStruct is a row of traveler_batch_results, mapped by db tags.
type resultStruct struct {
	resultKey
	Payload         *sqlbatch.JSON[Enriched] `db:"payload"`
	IsValid         bool                     `db:"is_valid"`
	ValidationError *string                  `db:"validation_error"`
	ProcessedAt     time.Time                `db:"processed_at"`
	Note            string                   `db:"-"`
	internal        int
}

func structRow(r batchenrich.Result[Traveler, Enriched]) (resultStruct, error) {
	row := resultStruct{resultKey: resultKey{r.Item.ExecutionID, r.Item.TravelerID}, ProcessedAt: fixedTime, Note: "not a column"}
	if r.Err != nil {
		msg := r.Err.Error()
		row.ValidationError = &msg
		return row, nil
	}
	row.Payload, row.IsValid = &sqlbatch.JSON[Enriched]{V: r.Value}, true
	return row, nil
}

// A Sink configured from a struct's db tags writes its fields as the
// columns, and refuses a struct that does not fit when it is made.
func TestStructSink(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		createResults(t, k, db)
		s, err := sqlbatch.NewStructSink(db, sqlbatch.StructSinkConfig[Traveler, Enriched, resultStruct]{
			Table: "traveler_batch_results", Key: []string{"execution_id", "traveler_id"}, BatchColumn: "batch_number", Row: structRow,
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.Write(ctx, batchOf(4, "e1", 9, 10, 11)); err != nil {
				t.Fatal(err)
			}
		}
		rows := readResults(t, db)
		if len(rows) != 3 {
			t.Fatalf("%d rows, want 3", len(rows))
		}
		for _, r := range rows {
			valid := r.TravelerID != 10
			if r.BatchNumber != 4 || r.IsValid != valid || !r.ProcessedAt.Equal(fixedTime) || (valid && (r.Payload == nil || r.Payload.V.Score != int(r.TravelerID)*2)) ||
				(!valid && (r.Payload != nil || r.ValidationError == nil)) {
				t.Fatalf("row %+v", r)
			}
		}

		// A field whose column the table lacks: refused by Check, naming
		// the field.
		type misspelt struct {
			resultKey
			Valid bool `db:"is_vaild"`
		}
		bad, err := sqlbatch.NewStructSink(db, sqlbatch.StructSinkConfig[Traveler, Enriched, misspelt]{
			Table: "traveler_batch_results", Key: []string{"execution_id", "traveler_id"},
			Row: func(r batchenrich.Result[Traveler, Enriched]) (misspelt, error) { return misspelt{}, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		wantConfigErr(t, bad.Check(ctx), "StructSinkConfig", "Row", `has no column "is_vaild"`, "read from field Valid of the row type")
	})
}

func TestStructSinkConfigErrors(t *testing.T) {
	db := testdb.SQLiteDB(t)
	key := []string{"execution_id", "traveler_id"}
	_, err := sqlbatch.NewStructSink(db, sqlbatch.StructSinkConfig[Traveler, Enriched, resultStruct]{
		Table: "t", Key: []string{"execution_id", "traveller_id"}, Row: structRow,
	})
	wantConfigErr(t, err, "StructSinkConfig", "Key[1]", `column "traveller_id" is no field of sqlbatch_test.resultStruct`)

	type withBatch struct {
		resultKey
		Batch int `db:"batch_number"`
	}
	_, err = sqlbatch.NewStructSink(db, sqlbatch.StructSinkConfig[Traveler, Enriched, withBatch]{
		Table: "t", Key: key, BatchColumn: "batch_number",
		Row: func(batchenrich.Result[Traveler, Enriched]) (withBatch, error) { return withBatch{}, nil },
	})
	wantConfigErr(t, err, "StructSinkConfig", "BatchColumn", `field Batch of sqlbatch_test.withBatch maps to BatchColumn "batch_number"`)

	type twice struct {
		resultKey
		ID int64 `db:"traveler_id"`
	}
	_, err = sqlbatch.NewStructSink(db, sqlbatch.StructSinkConfig[Traveler, Enriched, twice]{
		Table: "t", Key: key, Row: func(batchenrich.Result[Traveler, Enriched]) (twice, error) { return twice{}, nil },
	})
	wantConfigErr(t, err, "StructSinkConfig", "Row", `fields TravelerID and ID of sqlbatch_test.twice both map to column "traveler_id"`)

	type badTag struct {
		resultKey
		Note string `db:"no\x00te"`
	}
	_, err = sqlbatch.NewStructSink(db, sqlbatch.StructSinkConfig[Traveler, Enriched, badTag]{
		Table: "t", Key: key, Row: func(batchenrich.Result[Traveler, Enriched]) (badTag, error) { return badTag{}, nil },
	})
	wantConfigErr(t, err, "StructSinkConfig", "Row", "field Note of the row type: bad column name")

	_, err = sqlbatch.NewStructSink(db, sqlbatch.StructSinkConfig[Traveler, Enriched, int]{
		Table: "t", Key: key, Row: func(batchenrich.Result[Traveler, Enriched]) (int, error) { return 0, nil },
	})
	wantConfigErr(t, err, "StructSinkConfig", "Row", "row type int is not a struct")

	_, err = sqlbatch.NewStructSink(db, sqlbatch.StructSinkConfig[Traveler, Enriched, resultStruct]{Key: key, Row: structRow})
	wantConfigErr(t, err, "StructSinkConfig", "Table", "required")
}
