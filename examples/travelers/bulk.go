package main

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/batchenrich/batchenrich/httpenrich"
)

// newBulkEnricher returns the Enricher of -bulk n: one POST per group of
// at most n travelers, {"travelers":[{"traveler_id":…,"traveler_name":…},
// …]}, to the embedded API's bulk endpoint (or -profile-url), whose answer
// {"profiles":[…]} is matched to the travelers by traveler_id; each
// traveler's entry is validated as a single answer is, by
// seedjob.Transform.
func newBulkEnricher(hc httpenrich.Config[Traveler, json.RawMessage, Profile], n int) (enricher, error) {
	hc.Method, hc.Request, hc.PathParams = http.MethodPost, nil, nil
	type traveler struct {
		TravelerID   string `json:"traveler_id"`
		TravelerName string `json:"traveler_name"`
	}
	return httpenrich.NewBulk(hc, httpenrich.Bulk[Traveler]{
		MaxItems: n,
		Key:      func(t Traveler) string { return strconv.FormatInt(t.TravelerID, 10) },
		Request: func(ts []Traveler) (httpenrich.Params, error) {
			body := make([]traveler, len(ts))
			for i, t := range ts {
				body[i] = traveler{strconv.FormatInt(t.TravelerID, 10), t.TravelerName}
			}
			return httpenrich.Params{Body: map[string]any{"travelers": body}}, nil
		},
		Entries: httpenrich.JSONEntries("profiles", "traveler_id", "error"),
	})
}
