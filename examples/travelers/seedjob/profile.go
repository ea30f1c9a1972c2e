package seedjob

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
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

// Failed is the fixture's profile of a traveler whose enrichment failed
// with err (an HTTP error after the retries, a timeout, a non-JSON body),
// stored as an invalid row, never dropped: the traveler's normalized name
// and hash, the failed answer's status (0 without one), a JSON payload
// naming the error, its detail, status and class, and as ValidationError
// the detail, batchenrich.FailureReason's ("status 503 after 4 attempts",
// "malformed JSON: …"). The detail names no host and no batch, so it stays
// true when a replay rewrites the row keeping its batch_number.
func Failed(t Traveler, err error) (Profile, error) {
	norm := NormalizeName(t.TravelerName)
	status, reason, detail := 0, "error", batchenrich.FailureReason(err)
	var he *httpenrich.Error
	if errors.As(err, &he) {
		status, reason = he.Status, string(he.Reason)
	}
	payload, jerr := json.Marshal(map[string]any{
		"error": reason, "detail": detail, "status": status,
		"class": batchenrich.Classify(err).String(),
	})
	if jerr != nil {
		return Profile{}, jerr
	}
	return Profile{
		NormalizedName:  norm,
		Status:          status,
		Hash:            ProfileHash(t.TravelerID, norm),
		Payload:         payload,
		ValidationError: detail,
	}, nil
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
