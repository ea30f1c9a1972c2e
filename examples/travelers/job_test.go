package main

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/httpenrich"
)

func TestResultRow(t *testing.T) {
	t.Parallel()
	tr := Traveler{ExecutionID: "e", TravelerID: 5, TravelerName: "Traveler 5"}
	col := func(row []any, name string) any {
		for i, c := range resultColumns {
			if c == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return nil
	}

	ok := batchenrich.Result[Traveler, Profile]{Item: tr, Value: seedjob.Transform(tr, 200, json.RawMessage(`{"args":{"traveler_id":"5"}}`))}
	row, err := resultRow(ok)
	if err != nil || len(row) != len(resultColumns) {
		t.Fatal(row, err)
	}
	if col(row, "is_valid") != true || col(row, "validation_error") != nil || col(row, "profile_status") != 200 {
		t.Fatalf("valid row = %v", row)
	}

	bad := batchenrich.Result[Traveler, Profile]{Item: tr, Value: seedjob.Transform(tr, 200, json.RawMessage(`{"args":{"traveler_id":"6"}}`))}
	row, _ = resultRow(bad)
	if col(row, "is_valid") != false || col(row, "validation_error") != "echoed traveler_id=6, expected=5" {
		t.Fatalf("invalid row = %v", row)
	}

	herr := &httpenrich.Error{Status: 503, Attempts: 4, Reason: httpenrich.ReasonStatus, Err: errors.New("503 Service Unavailable")}
	failed := batchenrich.Result[Traveler, Profile]{Item: tr, Err: &batchenrich.ItemError{Batch: 1, Index: 4, Err: batchenrich.Transient(herr)}}
	row, err = resultRow(failed)
	if err != nil {
		t.Fatal(err)
	}
	if col(row, "is_valid") != false || col(row, "profile_status") != 503 || col(row, "normalized_name") != "TRAVELER 5" ||
		col(row, "validation_error") != "status 503 after 4 attempts" {
		t.Fatalf("failed row = %v", row)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(col(row, "profile_payload").(string)), &payload); err != nil ||
		payload["error"] != "unexpected status" || payload["detail"] != "status 503 after 4 attempts" || payload["status"] != 503.0 || payload["class"] != "transient" {
		t.Fatalf("failed payload = %v (%v)", payload, err)
	}
}
