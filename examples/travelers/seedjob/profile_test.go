package seedjob

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTransform(t *testing.T) {
	t.Parallel()
	tr := Traveler{ExecutionID: "e", TravelerID: 2000, TravelerName: "  Traveler 2000 "}
	p := Transform(tr, 200, json.RawMessage(`{"args": {"traveler_id": ["2000"]}}`))
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
	if h := ProfileHash(1, "TRAVELER 1"); h != "15f4b3a55fcdb3bff2e6" {
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
		got := ValidateEcho([]byte(tt.payload), 7)
		if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
			t.Errorf("ValidateEcho(%s) = %q, want %q", tt.payload, got, tt.want)
		}
	}
}
