package httpenrich

import (
	"net/url"
	"strings"

	"github.com/batchenrich/batchenrich/redact"
)

// describe returns what defines the answers of requests to the URL
// template raw with method, for Enricher.Describe: the method, the
// scheme, the host name (without its port, which a test server picks
// anew each time, and without credentials), the path template and the
// query with the values of credential-like parameters masked.
func describe(method, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// The template's braces may not parse as a URL: keep only what
		// precedes its authority's end, without credentials.
		return method + " " + redact.String(raw)
	}
	path := u.EscapedPath()
	path = strings.NewReplacer("%7B", "{", "%7D", "}", "%7b", "{", "%7d", "}").Replace(path)
	s := u.Scheme + "://" + u.Hostname() + path
	if u.RawQuery != "" {
		q := redact.String("https://h/?" + u.RawQuery)
		_, q, _ = strings.Cut(q, "?")
		s += "?" + q
	}
	return method + " " + s
}

// Describe implements batchenrich.Describer: it returns the method and
// the URL template, without credentials, the values of credential-like
// query parameters masked and the host's port left out (see
// batchenrich.Describer).
func (e *Enricher[T, B, R]) Describe() string { return e.desc }
