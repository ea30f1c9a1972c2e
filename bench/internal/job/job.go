// Package job defines the seed job every contender performs: the tables, the
// profile request, the transform and the validation of NoETL's
// traveler_batch_enrichment_in_step fixture.
//
// It holds the job's semantics only, so that the contenders differ in their
// machinery (reads, HTTP client, writes, scheduling) and not in what they
// compute.
package job

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Schema creates the fixture's tables, exactly as the fixture has them.
const Schema = `
CREATE TABLE IF NOT EXISTS traveler_batch_source (
	execution_id TEXT NOT NULL,
	traveler_id INTEGER NOT NULL,
	traveler_name TEXT NOT NULL,
	PRIMARY KEY (execution_id, traveler_id)
);
CREATE TABLE IF NOT EXISTS traveler_batch_results (
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
	PRIMARY KEY (execution_id, traveler_id)
);
ALTER TABLE traveler_batch_results ADD COLUMN IF NOT EXISTS partition_index INTEGER;`

// Traveler is one source row.
type Traveler struct {
	ID   int64
	Name string
}

// Row is one result row, as stored in traveler_batch_results (less the
// execution id and processed_at).
type Row struct {
	TravelerID      int64
	TravelerName    string
	NormalizedName  string
	ProfileStatus   int
	ProfileHash     string
	ProfilePayload  []byte // JSON
	IsValid         bool
	ValidationError string // "" is stored as NULL
	BatchNumber     int
}

// ProfileURL is the profile request for t against base, an
// httpbin-compatible API: base/anything?traveler_id=N&traveler_name=Traveler%20N.
func ProfileURL(base string, t Traveler) string {
	var b strings.Builder
	b.Grow(len(base) + 48 + len(t.Name))
	b.WriteString(strings.TrimSuffix(base, "/"))
	b.WriteString("/anything?traveler_id=")
	b.WriteString(strconv.FormatInt(t.ID, 10))
	b.WriteString("&traveler_name=")
	b.WriteString(strings.ReplaceAll(url.QueryEscape(t.Name), "+", "%20"))
	return b.String()
}

// Normalize is the fixture's normalized_name: upper(trim(name)).
func Normalize(name string) string { return strings.ToUpper(strings.TrimSpace(name)) }

// Hash is the fixture's profile_hash: the first 20 hex characters of
// sha256("<id>:<normalized_name>").
func Hash(id int64, normalized string) string {
	sum := sha256.Sum256([]byte(strconv.FormatInt(id, 10) + ":" + normalized))
	return hex.EncodeToString(sum[:10])
}

// Echo is the part of an httpbin /anything response the job reads.
type Echo struct {
	Args map[string]json.RawMessage `json:"args"`
}

// Transform builds the result row of t from the profile response (HTTP
// status and body) for batch number batch.
func Transform(t Traveler, batch, status int, body []byte) Row {
	var e Echo
	if err := json.Unmarshal(body, &e); err != nil {
		r := FromEcho(t, batch, status, nil, nil)
		r.IsValid = false
		r.ValidationError = "response is not JSON"
		r.ProfilePayload, _ = json.Marshal(map[string]any{"error": "response is not JSON", "status": status})
		return r
	}
	return FromEcho(t, batch, status, body, &e)
}

// FromEcho is Transform for a body already decoded into e.
func FromEcho(t Traveler, batch, status int, body []byte, e *Echo) Row {
	norm := Normalize(t.Name)
	r := Row{
		TravelerID:     t.ID,
		TravelerName:   t.Name,
		NormalizedName: norm,
		ProfileStatus:  status,
		ProfileHash:    Hash(t.ID, norm),
		ProfilePayload: body,
		IsValid:        true,
		BatchNumber:    batch,
	}
	if e == nil {
		return r
	}
	got, ok := echoedArg(e.Args["traveler_id"])
	switch {
	case !ok:
		r.IsValid, r.ValidationError = false, "missing traveler_id in response args"
	case got != strconv.FormatInt(t.ID, 10):
		r.IsValid, r.ValidationError = false, fmt.Sprintf("echoed traveler_id=%s, expected=%d", got, t.ID)
	}
	return r
}

// echoedArg reads one query argument as httpbin echoes it: a string
// (httpbin.org) or a list of strings (go-httpbin).
func echoedArg(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var l []string
	if json.Unmarshal(raw, &l) == nil && len(l) > 0 {
		return l[0], true
	}
	return "", false
}
