// Package redact hides the secrets a user may type into a connection
// string or a URL before it is shown: in a banner, an error, a summary, a
// log record or a file name. Every package and module of batchenrich
// (httpenrich, otelenrich, the example programs) shows URLs and connection
// strings through it, and a program built on batchenrich can do the same:
//
//	log.Printf("reading %s", redact.String(dsn))
//	// reading postgres://app:xxxxx@db:5432/app?sslmode=disable
//
// String masks the credentials of one URL or libpq connection string, Text
// every URL in a free text (an error's message), and Sensitive tells which
// query parameter or keyword names are treated as credentials.
package redact

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Mask replaces each secret.
const Mask = "xxxxx"

// String returns s with its secrets replaced by Mask. s is one of:
//
//   - a URL with a scheme (postgres://, https://, file:, …): the password
//     of its userinfo is masked, and for any scheme but postgres and
//     postgresql the user name too (an API's user name is often a token);
//     the value of every query parameter whose name looks like a
//     credential (see Sensitive) is masked, and so is any fragment. A
//     URL that does not parse is shown as its scheme only; one with
//     nothing to mask is returned as it is (not re-encoded).
//   - a libpq keyword connection string (host=h user=u password=p): the
//     values of credential keywords are masked. One that does not parse
//     (an unterminated quote) is not shown.
//   - anything else (a file path) is returned as it is.
func String(s string) string {
	if scheme, rest, ok := cutScheme(s); ok {
		return redactURL(s, scheme, rest)
	}
	if IsKeywordDSN(s) {
		out, ok := redactKeywords(s)
		if !ok {
			return "[connection string not shown: it does not parse]"
		}
		return out
	}
	return s
}

// urlInText finds the URLs with an authority (scheme://…) in free text,
// up to a space, a quote or an angle bracket.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]*`)

// Text returns s, a free text such as a log message or an error's text,
// with String applied to every scheme://… URL in it.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, String)
}

// cutScheme splits "scheme:rest" when scheme is a URL scheme (RFC 3986:
// a letter, then letters, digits, '+', '-', '.'), at least two characters
// long so that a Windows drive letter (C:\x.db) is a path.
func cutScheme(s string) (scheme, rest string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i < 2 {
		return "", "", false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (j == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", "", false
		}
	}
	return s[:i], s[i+1:], true
}

func redactURL(s, scheme, rest string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.HasPrefix(rest, "//") {
			return scheme + "://[rest of the URL not shown: it does not parse]"
		}
		return scheme + ":[rest of the URL not shown: it does not parse]"
	}
	masked := false
	if u.User != nil {
		lower := strings.ToLower(u.Scheme)
		if lower == "postgres" || lower == "postgresql" {
			if _, has := u.User.Password(); has {
				u.User, masked = url.UserPassword(u.User.Username(), Mask), true
			}
		} else {
			u.User, masked = url.User(Mask), true
		}
	}
	if u.RawQuery != "" {
		if q := redactQuery(u.RawQuery); q != u.RawQuery {
			u.RawQuery, masked = q, true
		}
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment, masked = Mask, "", true
	}
	if !masked {
		// Nothing to hide: the URL as given, not as url.URL.String
		// re-encodes it ("postgres://…" would read "postgres://%E2%80%A6").
		return s
	}
	return u.String()
}

// redactQuery masks the values of credential parameters in a raw query,
// keeping its order and encoding otherwise.
func redactQuery(raw string) string {
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, _, hasValue := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if hasValue && Sensitive(name) {
			parts[i] = k + "=" + Mask
		}
	}
	return strings.Join(parts, "&")
}

// SensitiveQuery reports whether String masks a value in the raw query
// raw (a URL's RawQuery): whether a parameter with a value has a name
// that Sensitive reports. It allocates nothing when the names are plain
// ASCII (no escapes), so that a caller can show a URL as it is, without
// String's parsing, when it has no userinfo, no fragment and no such
// parameter.
func SensitiveQuery(raw string) bool {
	for raw != "" {
		var p string
		p, raw, _ = strings.Cut(raw, "&")
		if k, _, hasValue := strings.Cut(p, "="); hasValue && sensitiveName(k) {
			return true
		}
	}
	return false
}

// sensitiveName is Sensitive of the query-unescaped k, without allocating
// for a short ASCII name with no escapes.
func sensitiveName(k string) bool {
	var buf [64]byte
	n := 0
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '%' || c == '+' || c >= utf8.RuneSelf || n == len(buf):
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			return Sensitive(name)
		case c == '_' || c == '-' || c == '.':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	for _, p := range sensitiveParts {
		if bytes.Contains(buf[:n], []byte(p)) {
			return true
		}
	}
	return false
}

// sensitiveParts are the fragments of a parameter name that mark it as a
// credential. Matching is on the name lower-cased without '_', '-' and
// '.', so "API_KEY", "x-api-key", "apiKey" and "sslpassword" all match.
var sensitiveParts = []string{
	"pass", "pwd", "secret", "token", "key", "sig", "auth", "credential", "session", "cookie", "bearer", "jwt",
}

// Sensitive reports whether a query parameter or keyword named name
// carries a credential: its name, in any case and with '_', '-' and '.'
// ignored, contains one of pass, pwd, secret, token, key, sig, auth,
// credential, session, cookie, bearer or jwt (so access_token, signature,
// X-Amz-Signature, X-Amz-Credential and X-Amz-Security-Token match too).
// It errs on the side of masking.
func Sensitive(name string) bool {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.':
			return -1
		}
		return r
	}, strings.ToLower(name))
	for _, p := range sensitiveParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	return false
}

// IsKeywordDSN reports whether s starts like a libpq keyword connection
// string: optional spaces, a keyword (letters, digits, '_'), optional
// spaces and '='.
func IsKeywordDSN(s string) bool {
	s = strings.TrimLeft(s, " \t\r\n")
	i := 0
	for i < len(s) && isKeywordByte(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	s = strings.TrimLeft(s[i:], " \t\r\n")
	return strings.HasPrefix(s, "=")
}

func isKeywordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// KeywordPair is one keyword=value of a libpq connection string.
type KeywordPair struct {
	Key, Value string
}

// ParseKeywords parses a libpq keyword connection string: keyword = value
// pairs separated by spaces, a value single-quoted when it holds spaces,
// with \' and \\ escapes. Its error gives an offset, never a keyword or
// value (a password typed without its keyword would be one).
func ParseKeywords(s string) ([]KeywordPair, error) {
	var pairs []KeywordPair
	i := 0
	skip := func() {
		for i < len(s) && strings.IndexByte(" \t\r\n", s[i]) >= 0 {
			i++
		}
	}
	for {
		skip()
		if i == len(s) {
			return pairs, nil
		}
		start := i
		for i < len(s) && isKeywordByte(s[i]) {
			i++
		}
		key := s[start:i]
		if key == "" {
			return nil, fmt.Errorf("a keyword is expected at offset %d", start)
		}
		skip()
		if i == len(s) || s[i] != '=' {
			return nil, fmt.Errorf("missing '=' after the keyword at offset %d", start)
		}
		i++
		skip()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					v.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if c == '\'' {
					closed = true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted value at offset %d", start)
			}
		} else {
			for i < len(s) && strings.IndexByte(" \t\r\n", s[i]) < 0 {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					v.WriteByte(s[i+1])
					i += 2
					continue
				}
				v.WriteByte(c)
				i++
			}
		}
		pairs = append(pairs, KeywordPair{Key: key, Value: v.String()})
	}
}

func redactKeywords(s string) (string, bool) {
	pairs, err := ParseKeywords(s)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := p.Value
		if Sensitive(p.Key) {
			v = Mask
		}
		b.WriteString(p.Key + "=" + quoteKeyword(v))
	}
	return b.String(), true
}

// quoteKeyword quotes v for a libpq connection string when it needs it.
func quoteKeyword(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\r\n'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
