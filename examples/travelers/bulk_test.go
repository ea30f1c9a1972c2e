package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// keptRow is what a run stores for a traveler, but for the moment it
// was processed and the parts of the payload that name the request (its
// headers, its URL's host): what -bulk must not change.
type keptRow struct {
	TravelerID      int64   `db:"traveler_id"`
	TravelerName    string  `db:"traveler_name"`
	NormalizedName  string  `db:"normalized_name"`
	ProfileStatus   int     `db:"profile_status"`
	ProfileHash     string  `db:"profile_hash"`
	Payload         string  `db:"profile_payload"`
	IsValid         bool    `db:"is_valid"`
	ValidationError *string `db:"validation_error"`
	BatchNumber     int     `db:"batch_number"`
	Args            string  `db:"-"`
}

func rowsOf(t *testing.T, dsn, execID string) []keptRow {
	t.Helper()
	db := openDSN(t, dsn)
	defer db.Close()
	var rows []keptRow
	if err := db.Select(&rows, db.Rebind(`SELECT traveler_id, traveler_name, normalized_name, profile_status, profile_hash,
		profile_payload, is_valid, validation_error, batch_number
		FROM traveler_batch_results WHERE execution_id = ? ORDER BY traveler_id`), execID); err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		var p struct {
			Args json.RawMessage `json:"args"`
		}
		if err := json.Unmarshal([]byte(rows[i].Payload), &p); err != nil {
			t.Fatalf("traveler %d: payload %s: %v", rows[i].TravelerID, rows[i].Payload, err)
		}
		rows[i].Args, rows[i].Payload = string(p.Args), ""
	}
	return rows
}

// TestBulkSameRows runs the seed job per traveler and with -bulk, on the
// embedded API, and compares what they stored: the same rows, validated
// alike.
func TestBulkSameRows(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			dsn := dsnFor(t, k)
			if k == testdb.SQLite {
				dsn = filepath.Join(t.TempDir(), "travelers.db")
			}
			base := []string{"-dsn", dsn, "-seed-rows", "450", "-batch-size", "100", "-max-batches", "5", "-concurrency", "4", "-json"}
			code, stdout, stderr := program(t, context.Background(), append(base, "-execution-id", "per-item")...)
			if code != exitOK {
				t.Fatalf("per item: exit %d\n%s\n%s", code, stdout, stderr)
			}
			code, stdout, stderr = program(t, context.Background(), append(base, "-execution-id", "bulk", "-bulk", "30")...)
			if code != exitOK {
				t.Fatalf("bulk: exit %d\n%s\n%s", code, stdout, stderr)
			}
			if s := summaryOf(t, stdout); s.Data.StoredRows != 450 || s.Data.ValidRows != 450 || s.Data.MaxBatchNumber != 5 {
				t.Fatalf("bulk summary: %+v", s.Data)
			}
			one, bulk := rowsOf(t, dsn, "per-item"), rowsOf(t, dsn, "bulk")
			if len(one) != 450 || !reflect.DeepEqual(one, bulk) {
				for i := range min(len(one), len(bulk)) {
					if !reflect.DeepEqual(one[i], bulk[i]) {
						t.Fatalf("row %d differs:\nper item %+v\nbulk     %+v", i, one[i], bulk[i])
					}
				}
				t.Fatalf("%d rows per item, %d in bulk", len(one), len(bulk))
			}
		})
	}
}

func TestBulkFlagRefused(t *testing.T) {
	for _, args := range [][]string{
		{"-bulk", "-1"},
		{"-bulk", "1001"},
		{"-bulk", "10", "-profile-url", "http://127.0.0.1:1/p/{traveler_id}"},
	} {
		code, _, stderr := program(t, context.Background(), args...)
		if code != exitUsage || stderr == "" {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
}
