package seedjob

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Profile is the enrichment of one traveler: the fixture's transform of the
// profile API's answer.
type Profile struct {
	NormalizedName  string
	Status          int
	Hash            string
	Payload         json.RawMessage
	ValidationError string // empty when the echo matched
}

// Transform is the fixture's validate/transform step: the traveler's
// normalized name and hash, the answer's status and compacted payload,
// and ValidateEcho's verdict on it.
func Transform(t Traveler, status int, payload json.RawMessage) Profile {
	norm := NormalizeName(t.TravelerName)
	var compact bytes.Buffer
	if json.Compact(&compact, payload) == nil {
		payload = compact.Bytes()
	}
	return Profile{
		NormalizedName:  norm,
		Status:          status,
		Hash:            ProfileHash(t.TravelerID, norm),
		Payload:         payload,
		ValidationError: ValidateEcho(payload, t.TravelerID),
	}
}

// NormalizeName is the fixture's normalized_name: upper(trim(name)).
func NormalizeName(name string) string { return strings.ToUpper(strings.TrimSpace(name)) }

// ProfileHash is the fixture's profile_hash: the first 20 hex characters of
// sha256("<id>:<normalized_name>").
func ProfileHash(id int64, normalized string) string {
	sum := sha256.Sum256([]byte(strconv.FormatInt(id, 10) + ":" + normalized))
	return hex.EncodeToString(sum[:])[:20]
}

// ValidateEcho checks that an httpbin-compatible /anything response echoes
// the traveler id it was asked for. It returns "" when it does, else the
// fixture's validation_error text.
func ValidateEcho(payload []byte, want int64) string {
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
