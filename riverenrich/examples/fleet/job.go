package main

import (
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// The seed job is examples/travelers' (package seedjob): the same tables,
// the same transform and the same rows, so that fleet and travelers can
// share a database.

// jobName is the seed job's name in River (riverenrich.Config.Job): fleet
// works only on runs enqueued under it.
const jobName = "travelers"

// Traveler is one row of traveler_batch_source.
type Traveler = seedjob.Traveler

// Profile is the enrichment of one traveler: seedjob.Transform of the
// profile API's answer.
type Profile = seedjob.Profile

// partitionColumn is travelers' nullable column recording a row's
// partition.
const partitionColumn = "partition_index"

var resultColumns = []string{
	"execution_id", "traveler_id", "traveler_name", "normalized_name",
	"profile_status", "profile_hash", "profile_payload", "is_valid",
	"validation_error", "processed_at", partitionColumn,
}

// resultRow maps a result of partition part to a row of
// traveler_batch_results; a failed enrichment is stored as an invalid row
// with its reason (seedjob.Failed), never dropped.
func resultRow(part int, r batchenrich.Result[Traveler, Profile]) ([]any, error) {
	t := r.Item
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	if r.Err != nil {
		p, err := seedjob.Failed(t, r.Err)
		if err != nil {
			return nil, err
		}
		return []any{t.ExecutionID, t.TravelerID, t.TravelerName, p.NormalizedName, p.Status,
			p.Hash, string(p.Payload), false, p.ValidationError, now, part}, nil
	}
	p := r.Value
	var verr any
	if p.ValidationError != "" {
		verr = p.ValidationError
	}
	return []any{t.ExecutionID, t.TravelerID, t.TravelerName, p.NormalizedName, p.Status,
		p.Hash, string(p.Payload), p.ValidationError == "", verr, now, part}, nil
}

// sourceConfig reads partition p of executionID's travelers by
// traveler_id.
func sourceConfig(executionID string, p batchenrich.Partition) sqlbatch.SourceConfig {
	return sqlbatch.SourceConfig{
		Table:     "traveler_batch_source",
		Columns:   []string{"execution_id", "traveler_id", "traveler_name"},
		Key:       []string{"traveler_id"},
		Filter:    map[string]any{"execution_id": executionID},
		Partition: p,
	}
}

// newSource reads partition p of executionID's travelers.
func newSource(db *sqlx.DB, executionID string, p batchenrich.Partition) (*sqlbatch.Source[Traveler], error) {
	return sqlbatch.NewSource[Traveler](db, sourceConfig(executionID, p))
}

// newSink writes the results of partition part to traveler_batch_results,
// one row per (execution_id, traveler_id), with resultRow.
func newSink(db *sqlx.DB, part int) (*sqlbatch.Sink[Traveler, Profile], error) {
	return sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Profile]{
		Table:       "traveler_batch_results",
		Key:         []string{"execution_id", "traveler_id"},
		Columns:     resultColumns,
		Row:         func(r batchenrich.Result[Traveler, Profile]) ([]any, error) { return resultRow(part, r) },
		BatchColumn: "batch_number",
	})
}

// schema is travelers' PostgreSQL schema (seedjob.Schema), plus
// partitionColumn.
var schema = append(seedjob.Schema("postgres"),
	`ALTER TABLE traveler_batch_results ADD COLUMN IF NOT EXISTS `+partitionColumn+` INTEGER`)
