package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// The seed job, as examples/travelers runs it (profile.go, job.go,
// schema.go there): the same tables, the same transform and the same
// rows, so that fleet and travelers can share a database. An example
// program cannot import another's package main, hence this copy.

// Traveler is one row of traveler_batch_source.
type Traveler struct {
	ExecutionID  string `db:"execution_id"`
	TravelerID   int64  `db:"traveler_id"`
	TravelerName string `db:"traveler_name"`
}

// Key names the traveler in errors and progress events.
func (t Traveler) Key() string { return "traveler " + strconv.FormatInt(t.TravelerID, 10) }

// Profile is the enrichment of one traveler.
type Profile struct {
	NormalizedName  string
	Status          int
	Hash            string
	Payload         json.RawMessage
	ValidationError string // empty when the echo matched
}

func normalizeName(name string) string { return strings.ToUpper(strings.TrimSpace(name)) }

func profileHash(id int64, normalized string) string {
	sum := sha256.Sum256([]byte(strconv.FormatInt(id, 10) + ":" + normalized))
	return hex.EncodeToString(sum[:])[:20]
}

// transform is the fixture's validate/transform step.
func transform(t Traveler, status int, payload json.RawMessage) Profile {
	norm := normalizeName(t.TravelerName)
	var compact bytes.Buffer
	if json.Compact(&compact, payload) == nil {
		payload = compact.Bytes()
	}
	return Profile{NormalizedName: norm, Status: status, Hash: profileHash(t.TravelerID, norm),
		Payload: payload, ValidationError: validateEcho(payload, t.TravelerID)}
}

// validateEcho checks that an httpbin /anything answer echoes the
// traveler id; "" when it does, else the validation_error text.
func validateEcho(payload []byte, want int64) string {
	var body struct {
		Args map[string]json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(payload, &body); err != nil {
		return "response is not a JSON object: " + err.Error()
	}
	raw, ok := body.Args["traveler_id"]
	if !ok {
		return "missing traveler_id in response args"
	}
	var s string
	var list []string
	switch {
	case json.Unmarshal(raw, &s) == nil:
	case json.Unmarshal(raw, &list) == nil && len(list) > 0:
		s = list[0]
	default:
		return "missing traveler_id in response args"
	}
	if s != strconv.FormatInt(want, 10) {
		return fmt.Sprintf("echoed traveler_id=%s, expected=%d", s, want)
	}
	return ""
}

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
// with its reason, never dropped.
func resultRow(part int, r batchenrich.Result[Traveler, Profile]) ([]any, error) {
	t := r.Item
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	if r.Err != nil {
		norm := normalizeName(t.TravelerName)
		status, reason, detail := 0, "error", batchenrich.FailureReason(r.Err) // no host, no batch number
		var he *httpenrich.Error
		if errors.As(r.Err, &he) {
			status, reason = he.Status, string(he.Reason)
		}
		payload, err := json.Marshal(map[string]any{"error": reason, "detail": detail, "status": status,
			"class": batchenrich.Classify(r.Err).String()})
		if err != nil {
			return nil, err
		}
		return []any{t.ExecutionID, t.TravelerID, t.TravelerName, norm, status,
			profileHash(t.TravelerID, norm), string(payload), false, detail, now, part}, nil
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

// schema is travelers' PostgreSQL schema, plus partitionColumn.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS traveler_batch_source (
		execution_id TEXT NOT NULL,
		traveler_id INTEGER NOT NULL,
		traveler_name TEXT NOT NULL,
		PRIMARY KEY (execution_id, traveler_id))`,
	`CREATE TABLE IF NOT EXISTS traveler_batch_results (
		execution_id TEXT NOT NULL,
		traveler_id INTEGER NOT NULL,
		traveler_name TEXT NOT NULL,
		normalized_name TEXT NOT NULL,
		profile_status INTEGER NOT NULL,
		profile_hash TEXT NOT NULL,
		profile_payload JSONB NOT NULL,
		is_valid BOOLEAN NOT NULL DEFAULT TRUE,
		validation_error TEXT,
		batch_number INTEGER NOT NULL,
		processed_at TIMESTAMPTZ DEFAULT NOW(),
		PRIMARY KEY (execution_id, traveler_id))`,
	`ALTER TABLE traveler_batch_results ADD COLUMN IF NOT EXISTS ` + partitionColumn + ` INTEGER`,
}
