package httpenrich

import "testing"

// An Enricher's description names the method and URL template, never a
// credential nor the port.
func TestDescribe(t *testing.T) {
	for _, tc := range []struct{ method, url, want string }{
		{"GET", "https://user:pw@api.example.com:8443/t/{id}?token=abc&x={q}", "GET https://api.example.com/t/{id}?token=xxxxx&x={q}"},
		{"POST", "http://127.0.0.1:43121/anything/{id}", "POST http://127.0.0.1/anything/{id}"},
	} {
		if got := describe(tc.method, tc.url); got != tc.want {
			t.Errorf("describe(%q, %q) = %q, want %q", tc.method, tc.url, got, tc.want)
		}
	}
}
