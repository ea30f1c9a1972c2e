package seedjob

import (
	"context"
	"fmt"

	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/jmoiron/sqlx"
)

// Data is the final validation of a run, computed from the database.
// examples/README.md documents each field. Count fills all but
// ExpectedRows and MissingRows, which depend on how the example bounds
// its run.
type Data struct {
	SourceRows          int `json:"source_rows"`
	ExpectedRows        int `json:"expected_rows"`
	StoredRows          int `json:"stored_rows"`
	MissingRows         int `json:"missing_rows"`
	SuccessfulHTTPCalls int `json:"successful_http_calls"` // 2xx with a JSON body within the size limit
	ValidRows           int `json:"valid_rows"`
	InvalidRows         int `json:"invalid_rows"`
	MaxBatchNumber      int `json:"max_batch_number"`
}

// OK reports whether every expected row was stored: the run's exit status.
func (d Data) OK() bool { return d.MissingRows == 0 && d.StoredRows == d.ExpectedRows }

// Field is one field of Data, named as in its JSON.
type Field struct {
	Name  string
	Value int
}

// Fields lists d's fields in the summary's order (the order of Data's
// declaration), for a program printing them as a table.
func (d Data) Fields() []Field {
	return []Field{
		{"source_rows", d.SourceRows},
		{"expected_rows", d.ExpectedRows},
		{"stored_rows", d.StoredRows},
		{"missing_rows", d.MissingRows},
		{"successful_http_calls", d.SuccessfulHTTPCalls},
		{"valid_rows", d.ValidRows},
		{"invalid_rows", d.InvalidRows},
		{"max_batch_number", d.MaxBatchNumber},
	}
}

// Count counts executionID's source rows and result rows: stored, valid,
// invalid, successful HTTP calls (a 2xx status whose body was neither
// malformed nor too large) and the highest batch number. Its errors start
// with "validate: ".
func Count(ctx context.Context, db *sqlx.DB, executionID string) (Data, error) {
	var d Data
	if err := db.GetContext(ctx, &d.SourceRows, db.Rebind(
		`SELECT count(*) FROM traveler_batch_source WHERE execution_id = ?`), executionID); err != nil {
		return d, fmt.Errorf("validate: %w", err)
	}
	var agg struct {
		Stored  int `db:"stored"`
		OK200   int `db:"ok200"`
		Valid   int `db:"valid"`
		MaxBtch int `db:"max_batch"`
	}
	if err := db.GetContext(ctx, &agg, db.Rebind(`
		SELECT count(*) AS stored,
		       COALESCE(SUM(CASE WHEN profile_status BETWEEN 200 AND 299
		           AND (validation_error IS NULL OR (validation_error NOT LIKE ? AND validation_error NOT LIKE ?))
		           THEN 1 ELSE 0 END), 0) AS ok200,
		       COALESCE(SUM(CASE WHEN is_valid THEN 1 ELSE 0 END), 0) AS valid,
		       COALESCE(MAX(batch_number), 0) AS max_batch
		FROM traveler_batch_results WHERE execution_id = ?`),
		failedPrefix(httpenrich.ReasonMalformed), failedPrefix(httpenrich.ReasonTooLarge), executionID); err != nil {
		return d, fmt.Errorf("validate: %w", err)
	}
	d.StoredRows, d.SuccessfulHTTPCalls, d.ValidRows, d.MaxBatchNumber = agg.Stored, agg.OK200, agg.Valid, agg.MaxBtch
	d.InvalidRows = d.StoredRows - d.ValidRows
	return d, nil
}

// failedPrefix is the LIKE pattern of the validation_error of a row whose
// enrichment failed for reason: "<reason>: …".
func failedPrefix(reason httpenrich.Reason) string {
	return string(reason) + ": %" // a literal _ or % in it matches itself too
}
