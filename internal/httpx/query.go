package httpx

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// ExpandQuery is Expand followed by the query q (sorted by key, spaces as
// %20, like EncodeQuery), joined with '?' or '&': the whole URL built in
// one buffer. Its errors are Expand's.
func (t *Template) ExpandQuery(params map[string]string, q url.Values) (string, error) {
	var b strings.Builder
	b.Grow(len(t.raw) + 16 + 32*len(q))
	if err := t.write(&b, params); err != nil {
		return "", err
	}
	// write found every name in params, so any more keys are unused.
	if len(params) > len(t.names) {
		return "", fmt.Errorf("parameter {%s} is not in the URL template", t.unused(params))
	}
	if len(q) > 0 {
		sep := byte('?')
		if t.hasQuery {
			sep = '&'
		}
		b.WriteByte(sep)
		writeQuery(&b, q)
	}
	return b.String(), nil
}

// writeQuery writes q as url.Values.Encode does, with spaces as %20.
func writeQuery(b *strings.Builder, q url.Values) {
	var stack [8]string
	keys := stack[:0]
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	first := true
	for _, k := range keys {
		for _, v := range q[k] {
			if !first {
				b.WriteByte('&')
			}
			first = false
			writeEscaped(b, k)
			b.WriteByte('=')
			writeEscaped(b, v)
		}
	}
}

// writeEscaped writes s escaped as url.QueryEscape does, but with spaces
// as %20 instead of '+': every byte but the unreserved ones (letters,
// digits, '-', '_', '.', '~') as %XX.
func writeEscaped(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			continue
		}
		b.WriteString(s[start:i])
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
		start = i + 1
	}
	b.WriteString(s[start:])
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}
