package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Traveler is one row of traveler_batch_source.
type Traveler struct {
	ExecutionID  string `db:"execution_id"`
	TravelerID   int64  `db:"traveler_id"`
	TravelerName string `db:"traveler_name"`
}

// Key names the traveler in errors and progress events.
func (t Traveler) Key() string { return "traveler " + strconv.FormatInt(t.TravelerID, 10) }

// normalizeName is the fixture's normalized_name: upper(trim(name)).
func normalizeName(name string) string { return strings.ToUpper(strings.TrimSpace(name)) }

// profileHash is the fixture's profile_hash: the first 20 hex characters of
// sha256("<id>:<normalized_name>").
func profileHash(id int64, normalized string) string {
	sum := sha256.Sum256([]byte(strconv.FormatInt(id, 10) + ":" + normalized))
	return hex.EncodeToString(sum[:])[:20]
}

// validateEcho checks that an httpbin-compatible /anything response echoes
// the traveler id it was asked for. It returns "" when it does, else the
// fixture's validation_error text.
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
	got, ok := firstString(raw)
	if !ok {
		return "missing traveler_id in response args"
	}
	if got != strconv.FormatInt(want, 10) {
		return fmt.Sprintf("echoed traveler_id=%s, expected=%d", got, want)
	}
	return ""
}

// firstString reads an echoed query argument: a string (httpbin.org) or a
// list of strings (go-httpbin), whose first element counts.
func firstString(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		return list[0], true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}
