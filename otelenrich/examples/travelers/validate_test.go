package main

import (
	"encoding/json"
	"testing"

	"github.com/batchenrich/batchenrich/httpenrich"
)

// TestValidateBothHttpbins accepts the echo of httpbin.org (args hold
// strings) and of go-httpbin (lists of strings), and refuses another id.
func TestValidateBothHttpbins(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"args":{"traveler_id":"7"}}`, true},
		{`{"args":{"traveler_id":["7"]}}`, true},
		{`{"args":{"traveler_id":"8"}}`, false},
		{`{"args":{"traveler_id":["8"]}}`, false},
		{`{"args":{}}`, false},
		{`not JSON`, false},
	} {
		_, err := validate(Traveler{TravelerID: 7}, &httpenrich.Response[json.RawMessage]{Status: 200, Body: json.RawMessage(tc.body)})
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", tc.body, err, tc.ok)
		}
	}
}
