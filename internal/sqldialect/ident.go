package sqldialect

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxIdentLen is the longest identifier part accepted, in bytes:
// PostgreSQL silently truncates longer names (NAMEDATALEN-1), which could
// make two different names refer to one column.
const MaxIdentLen = 63

// ErrBadIdent is wrapped by the errors of the identifier checks.
var ErrBadIdent = errors.New("invalid identifier")

// CheckIdent reports whether name is acceptable as one identifier part
// (a column, or a table without schema): not empty, valid UTF-8, at most
// MaxIdentLen bytes, and free of control and format characters (NUL, line
// breaks, zero-width and bidirectional marks). Any other character,
// quotes and semicolons included, is fine: QuoteIdent makes it inert.
func CheckIdent(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrBadIdent)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrBadIdent, name)
	case len(name) > MaxIdentLen:
		return fmt.Errorf("%w %q: longer than %d bytes", ErrBadIdent, name, MaxIdentLen)
	}
	for _, r := range name {
		if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w %q: control or format character %U", ErrBadIdent, name, r)
		}
	}
	return nil
}

// QuoteIdent checks name with CheckIdent and returns it as a quoted
// identifier ("name", embedded double quotes doubled), which PostgreSQL
// and SQLite read as exactly name, case included, never as SQL.
func (d Dialect) QuoteIdent(name string) (string, error) {
	if err := CheckIdent(name); err != nil {
		return "", err
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`, nil
}

// QuoteTable quotes a table name, optionally qualified by one schema as
// "schema.table" (in SQLite, the schema is an attached database name such
// as "main"). The name is split at its dot, so a table whose own name
// contains a dot cannot be named.
func (d Dialect) QuoteTable(name string) (string, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("%w %q: more than one dot (want table or schema.table)", ErrBadIdent, name)
	}
	quoted := make([]string, len(parts))
	for i, p := range parts {
		q, err := d.QuoteIdent(p)
		if err != nil {
			if len(parts) > 1 {
				return "", fmt.Errorf("%w (in %q)", err, name)
			}
			return "", err
		}
		quoted[i] = q
	}
	return strings.Join(quoted, "."), nil
}

// QuoteIdents quotes each of names with QuoteIdent, refusing duplicates.
func (d Dialect) QuoteIdents(names []string) ([]string, error) {
	out := make([]string, len(names))
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		q, err := d.QuoteIdent(n)
		if err != nil {
			return nil, err
		}
		if seen[n] {
			return nil, fmt.Errorf("%w %q: listed twice", ErrBadIdent, n)
		}
		seen[n] = true
		out[i] = q
	}
	return out, nil
}
