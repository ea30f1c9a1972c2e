package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
)

func TestTransform(t *testing.T) {
	t.Parallel()
	tr := Traveler{ExecutionID: "e", TravelerID: 2000, TravelerName: "  Traveler 2000 "}
	p := transform(tr, 200, json.RawMessage(`{"args": {"traveler_id": ["2000"]}}`))
	if p.NormalizedName != "TRAVELER 2000" || p.Status != 200 || p.ValidationError != "" {
		t.Fatalf("profile = %+v", p)
	}
	// sha256("2000:TRAVELER 2000"), first 20 hex characters (sha256sum).
	if p.Hash != "8f5ae5f691d33d7e7cb0" {
		t.Fatalf("hash = %s", p.Hash)
	}
	if string(p.Payload) != `{"args":{"traveler_id":["2000"]}}` {
		t.Fatalf("payload not compacted: %s", p.Payload)
	}
	if h := profileHash(1, "TRAVELER 1"); h != "15f4b3a55fcdb3bff2e6" {
		t.Fatalf("hash(1) = %s", h)
	}
}

func TestValidateEcho(t *testing.T) {
	t.Parallel()
	tests := []struct {
		payload string
		want    string
	}{
		{`{"args":{"traveler_id":["7"]}}`, ""}, // go-httpbin: lists
		{`{"args":{"traveler_id":"7"}}`, ""},   // httpbin.org: strings
		{`{"args":{"traveler_id":7}}`, ""},     // a number
		{`{"args":{"traveler_id":["8"]}}`, "echoed traveler_id=8, expected=7"},
		{`{"args":{"traveler_id":"x"}}`, "echoed traveler_id=x, expected=7"},
		{`{"args":{}}`, "missing traveler_id in response args"},
		{`{}`, "missing traveler_id in response args"},
		{`{"args":{"traveler_id":[]}}`, "missing traveler_id in response args"},
		{`{"args":{"traveler_id":{"a":1}}}`, "missing traveler_id in response args"},
		{`[1,2]`, "response is not a JSON object"},
	}
	for _, tt := range tests {
		got := validateEcho([]byte(tt.payload), 7)
		if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
			t.Errorf("validateEcho(%s) = %q, want %q", tt.payload, got, tt.want)
		}
	}
}

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

	ok := batchenrich.Result[Traveler, Profile]{Item: tr, Value: transform(tr, 200, json.RawMessage(`{"args":{"traveler_id":"5"}}`))}
	row, err := resultRow(ok)
	if err != nil || len(row) != len(resultColumns) {
		t.Fatal(row, err)
	}
	if col(row, "is_valid") != true || col(row, "validation_error") != nil || col(row, "profile_status") != 200 {
		t.Fatalf("valid row = %v", row)
	}

	bad := batchenrich.Result[Traveler, Profile]{Item: tr, Value: transform(tr, 200, json.RawMessage(`{"args":{"traveler_id":"6"}}`))}
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
