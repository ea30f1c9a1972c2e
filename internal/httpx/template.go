// Package httpx is the machinery behind package httpenrich: URL templates,
// Retry-After parsing, and the per-attempt transport.
package httpx

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Template is a parsed URL template: an absolute http or https URL in which
// {name} stands for a parameter. A parameter in the path is escaped as one
// path segment (url.PathEscape, so "/" cannot add segments and "." or ".."
// cannot climb); a parameter in the query is escaped as a query value.
// Parameters in the scheme, host or fragment are not allowed.
type Template struct {
	raw      string
	parts    []part
	names    []string
	hasQuery bool
}

type part struct {
	lit   string // literal text, when name is ""
	name  string
	query bool // the parameter is in the query
}

// ParseTemplate parses s. Its errors say what is wrong without the
// "httpenrich:" prefix; the caller names the field.
func ParseTemplate(s string) (*Template, error) {
	if s == "" {
		return nil, errors.New("must not be empty")
	}
	if strings.Contains(s, "#") {
		return nil, errors.New("must not contain a fragment (#)")
	}
	sep := strings.Index(s, "://")
	if sep < 0 {
		return nil, errors.New("must be an absolute http or https URL")
	}
	pathStart := len(s)
	if i := strings.IndexAny(s[sep+3:], "/?"); i >= 0 {
		pathStart = sep + 3 + i
	}
	t := &Template{raw: s, hasQuery: strings.Contains(s, "?")}
	seen := map[string]bool{}
	inQuery := false
	lit := strings.Builder{}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '?':
			inQuery = true
			lit.WriteByte(c)
		case '}':
			return nil, fmt.Errorf("unmatched '}' at offset %d", i)
		case '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed '{' at offset %d", i)
			}
			name := s[i+1 : i+1+end]
			if name == "" {
				return nil, fmt.Errorf("empty parameter name at offset %d", i)
			}
			for j := 0; j < len(name); j++ {
				if !isNameByte(name[j]) {
					return nil, fmt.Errorf("parameter name %q: only letters, digits, '_', '-' and '.' are allowed", name)
				}
			}
			if i < pathStart {
				return nil, fmt.Errorf("parameter {%s} in the scheme or host is not supported", name)
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, part{lit: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, part{name: name, query: inQuery})
			if !seen[name] {
				seen[name] = true
				t.names = append(t.names, name)
			}
			i += end + 1
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	// Check the shape with every parameter set to a harmless value.
	sample := map[string]string{}
	for _, n := range t.names {
		sample[n] = "x"
	}
	u, err := t.expand(sample)
	if err != nil {
		return nil, err
	}
	pu, err := url.Parse(u)
	if err != nil {
		// url.Error repeats the whole URL, password included: keep only
		// what is wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a valid URL: %v", err)
	}
	if pu.Scheme != "http" && pu.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: must be http or https", pu.Scheme)
	}
	if pu.Host == "" {
		return nil, errors.New("must have a host")
	}
	if pu.Opaque != "" {
		return nil, errors.New("must be an absolute http or https URL")
	}
	return t, nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// String returns the template as parsed.
func (t *Template) String() string { return t.raw }

// Names returns the parameter names, in order of first appearance.
func (t *Template) Names() []string { return append([]string(nil), t.names...) }

// HasQuery reports whether the template has a query part.
func (t *Template) HasQuery() bool { return t.hasQuery }

// FixedPrefix returns the template's text before its query ('?', or all of
// it without a query), and whether that text holds no parameter: then every
// URL the template expands to starts with it, and what follows (see
// ExpandQuery) is "" or '?' and the query.
func (t *Template) FixedPrefix() (string, bool) {
	prefix, _, _ := strings.Cut(t.raw, "?")
	return prefix, !strings.Contains(prefix, "{")
}

// Expand returns the URL with every parameter replaced by its escaped value
// from params. A missing parameter, an empty one in the path, or a key of
// params that the template does not use is an error.
func (t *Template) Expand(params map[string]string) (string, error) {
	u, err := t.expand(params)
	if err != nil {
		return "", err
	}
	// expand found every name in params, so any more keys are unused.
	if len(params) > len(t.names) {
		return "", fmt.Errorf("parameter {%s} is not in the URL template", t.unused(params))
	}
	return u, nil
}

// unused returns the first key of params, in sorted order, that the
// template does not use.
func (t *Template) unused(params map[string]string) string {
	var keys []string
	for k := range params {
		if !slices.Contains(t.names, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys[0]
}

// Check compares the template's parameters with names, the parameters a
// request will supply: it returns an error naming the first parameter of
// the template missing from names, or else the first of names the
// template does not use.
func (t *Template) Check(names []string) error {
	for _, n := range t.names {
		if !slices.Contains(names, n) {
			return fmt.Errorf("parameter {%s} is not supplied", n)
		}
	}
	for _, n := range names {
		if !slices.Contains(t.names, n) {
			return fmt.Errorf("parameter {%s} is not in the URL template", n)
		}
	}
	return nil
}

func (t *Template) expand(params map[string]string) (string, error) {
	var b strings.Builder
	b.Grow(len(t.raw) + 16)
	if err := t.write(&b, params); err != nil {
		return "", err
	}
	return b.String(), nil
}

// write writes the URL with params to b.
func (t *Template) write(b *strings.Builder, params map[string]string) error {
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		v, ok := params[p.name]
		if !ok {
			return fmt.Errorf("missing parameter {%s}", p.name)
		}
		if p.query {
			writeEscaped(b, v)
			continue
		}
		switch v {
		case "":
			return fmt.Errorf("empty path parameter {%s}", p.name)
		case ".":
			b.WriteString("%2E")
		case "..":
			b.WriteString("%2E%2E")
		default:
			b.WriteString(url.PathEscape(v))
		}
	}
	return nil
}

// EscapeQuery escapes s for a query key or value, with spaces as %20 rather
// than '+', which every server decodes alike.
func EscapeQuery(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	writeEscaped(&b, s)
	return b.String()
}

// EncodeQuery encodes v like url.Values.Encode (sorted by key), with spaces
// as %20.
func EncodeQuery(v url.Values) string {
	var b strings.Builder
	writeQuery(&b, v)
	return b.String()
}
