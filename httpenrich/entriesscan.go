package httpenrich

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// entriesScan is JSONEntries' fast path: it reads an answer in one pass
// of a JSON tokenizer (the array, each entry, its key and error members;
// every other value skipped, checked but not decoded), where the general
// path decodes the top-level object, then the array, then each entry's
// members, each a pass of its own. It handles the usual answer only: it
// returns ok=false, and the general path then reads the answer (with
// its results and errors), for anything else: malformed or invalid UTF-8
// JSON, a value that is not what the general path accepts, a member name
// matching a field only when case is ignored, names it cannot compare
// this way (see newEntriesScan). On ok it returns what the general path
// would: the same keys, errors and entry bodies (copies of the answer's
// bytes, in one allocation). BenchmarkJSONEntries measures both.
type entriesScan struct {
	array, key, errField string // errField "" when JSONEntries has none
}

// newEntriesScan returns the fast path for these names, or nil when one
// of them is not plain ASCII, whose case-insensitive matches are ASCII's
// (the general path's rules for other names are encoding/json's).
func newEntriesScan(arrayField, keyField, errorField string) *entriesScan {
	for _, n := range []string{arrayField, keyField, errorField} {
		for i := 0; i < len(n); i++ {
			if c := n[i]; c >= utf8.RuneSelf || c < 0x20 || c == '"' || c == '\\' || c == ',' || c == '`' {
				return nil
			}
		}
	}
	if keyField == "" || keyField == "-" || errorField == "-" {
		return nil
	}
	return &entriesScan{array: arrayField, key: keyField, errField: errorField}
}

var scanOptions = jsontext.AllowDuplicateNames(true) // the last one wins, as in the general path

// entries reads raw, or returns ok=false.
func (s *entriesScan) entries(raw []byte) (out []Entry, ok bool) {
	d := jsontext.NewDecoder(bytes.NewBuffer(raw), scanOptions)
	var arrStart, arrEnd int64
	if s.array == "" {
		if d.PeekKind() != '[' {
			return nil, false
		}
		arrStart = d.InputOffset()
		if out, ok = s.array1(d, raw); !ok {
			return nil, false
		}
		arrEnd = d.InputOffset()
	} else {
		if t, err := d.ReadToken(); err != nil || t.Kind() != '{' {
			return nil, false
		}
		found := false
		for d.PeekKind() != '}' {
			name, err := d.ReadToken()
			if err != nil {
				return nil, false
			}
			if name.String() != s.array { // exact: the general path looks it up in a map
				if d.SkipValue() != nil {
					return nil, false
				}
				continue
			}
			if d.PeekKind() != '[' {
				return nil, false
			}
			start := d.InputOffset()
			if out, ok = s.array1(d, raw); !ok {
				return nil, false
			}
			found, arrStart, arrEnd = true, start, d.InputOffset() // a later one replaces it
		}
		if _, err := d.ReadToken(); err != nil || !found {
			return nil, false
		}
	}
	if _, err := d.ReadToken(); err != io.EOF { // more after the top-level value
		return nil, false
	}
	// The entries' bodies: copies, in one allocation, as the general path
	// copies each (its json.RawMessage).
	own := bytes.Clone(raw[arrStart:arrEnd])
	for i := range out {
		b := out[i].Body
		lo := cap(raw[arrStart:]) - cap(b)
		out[i].Body = own[lo : lo+len(b) : lo+len(b)]
	}
	return out, true
}

// array1 reads the array at d's position, its entries' bodies slices of
// raw.
func (s *entriesScan) array1(d *jsontext.Decoder, raw []byte) ([]Entry, bool) {
	if t, err := d.ReadToken(); err != nil || t.Kind() != '[' {
		return nil, false
	}
	var out []Entry
	for d.PeekKind() != ']' {
		if d.PeekKind() != '{' {
			return nil, false
		}
		before := d.InputOffset()
		en, ok := s.entry(d)
		if !ok {
			return nil, false
		}
		body := bytes.TrimLeft(raw[before:d.InputOffset()], " \t\r\n,")
		en.Body = body
		out = append(out, en)
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, false
	}
	return out, true
}

// entry reads one entry object at d's position.
func (s *entriesScan) entry(d *jsontext.Decoder) (Entry, bool) {
	if _, err := d.ReadToken(); err != nil {
		return Entry{}, false
	}
	var kraw, eraw jsontext.Value
	for d.PeekKind() != '}' {
		name, err := d.ReadToken()
		if err != nil {
			return Entry{}, false
		}
		n := name.String()
		switch {
		case n == s.key:
			if kraw, err = d.ReadValue(); err != nil {
				return Entry{}, false
			}
		case s.errField != "" && n == s.errField:
			if eraw, err = d.ReadValue(); err != nil {
				return Entry{}, false
			}
		case strings.EqualFold(n, s.key) || (s.errField != "" && strings.EqualFold(n, s.errField)):
			return Entry{}, false // the general path's rules
		default:
			if d.SkipValue() != nil {
				return Entry{}, false
			}
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return Entry{}, false
	}
	if k := kraw.Kind(); k != '"' && k != '0' {
		return Entry{}, false // missing, or not a key: the general path says why
	}
	key, err := keyText(json.RawMessage(kraw))
	if err != nil {
		return Entry{}, false
	}
	en := Entry{Key: key}
	if eraw != nil {
		en.Err = entryError(json.RawMessage(eraw))
	}
	return en, true
}
