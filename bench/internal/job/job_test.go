package job

import (
	"encoding/json"
	"testing"
)

func TestProfileURL(t *testing.T) {
	t.Parallel()
	got := ProfileURL("http://127.0.0.1:8080/", Traveler{ID: 7, Name: "Traveler 7"})
	want := "http://127.0.0.1:8080/anything?traveler_id=7&traveler_name=Traveler%207"
	if got != want {
		t.Fatalf("ProfileURL = %q, want %q", got, want)
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	// printf '1:TRAVELER 1' | sha256sum | cut -c1-20
	if got, want := Hash(1, "TRAVELER 1"), "15f4b3a55fcdb3bff2e6"; got != want {
		t.Fatalf("Hash = %q, want %q", got, want)
	}
}

func TestTransform(t *testing.T) {
	t.Parallel()
	tr := Traveler{ID: 3, Name: "  Traveler 3 "}
	tests := []struct {
		name      string
		body      string
		valid     bool
		wantError string
	}{
		{"go-httpbin list", `{"args":{"traveler_id":["3"]}}`, true, ""},
		{"httpbin.org string", `{"args":{"traveler_id":"3"}}`, true, ""},
		{"other id", `{"args":{"traveler_id":["4"]}}`, false, "echoed traveler_id=4, expected=3"},
		{"missing", `{"args":{}}`, false, "missing traveler_id in response args"},
		{"not JSON", `<html>`, false, "response is not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Transform(tr, 2, 200, []byte(tc.body))
			if r.IsValid != tc.valid || r.ValidationError != tc.wantError {
				t.Fatalf("valid=%v error=%q, want %v %q", r.IsValid, r.ValidationError, tc.valid, tc.wantError)
			}
			if r.NormalizedName != "TRAVELER 3" || r.BatchNumber != 2 || r.ProfileStatus != 200 || len(r.ProfileHash) != 20 {
				t.Fatalf("row = %+v", r)
			}
			if !json.Valid(r.ProfilePayload) {
				t.Fatalf("payload %q is not JSON", r.ProfilePayload)
			}
		})
	}
}
