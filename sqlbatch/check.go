package sqlbatch

import (
	"cmp"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// Checking a configuration against the database.
//
// The constructors check what they can without the database. What only
// the catalog knows — that the tables and columns exist, that a primary
// key or unique index covers a Sink's Key, which columns hold text — is
// checked by Check, which a batchenrich.Runner calls before its first
// read, and which a Source runs by itself before its first read and a
// Sink before its first write. A mistake is then one *batchenrich.ConfigError naming
// the table, column or key, before any item is enriched, instead of rows
// silently wrong (SQLite reads a double-quoted name that is no column as
// a string literal) or duplicated (PostgreSQL's COPY ignores keys that no
// index enforces).

// Check checks the Sink's configuration against the database's catalog:
// each table exists and has every column of Columns, BatchColumn and Key,
// and a primary key or unique index covers exactly the Key columns (in
// any order; not partial, not on expressions, not deferrable). It returns
// a *batchenrich.ConfigError naming the first problem. It also learns which columns
// hold text or JSON (see SinkConfig). Once it has succeeded it does
// nothing more; Write and WriteTx call it before their first write.
func (s *Sink[T, R]) Check(ctx context.Context) error {
	return s.check(ctx, s.db)
}

func (s *Sink[T, R]) check(ctx context.Context, q sqldialect.Querier) error {
	return s.checked.do(func() error {
		return inConfig(cmp.Or(s.config, "SinkConfig"), s.checkTargets(ctx, q))
	})
}

// checkTargets is one run of check's checks.
func (s *Sink[T, R]) checkTargets(ctx context.Context, q sqldialect.Querier) error {
	if err := s.main.check(ctx, s.d, q, ""); err != nil {
		return err
	}
	if s.replay != nil {
		// The replay Sink writes the same columns; it is not checked
		// itself, so it learns its text columns here.
		s.replay.main.text = s.main.text
	}
	if s.failures != nil {
		return s.failures.check(ctx, s.d, q, "Failures.")
	}
	return nil
}

// check checks one target against the catalog.
func (t *target[T, R]) check(ctx context.Context, d sqldialect.Dialect, q sqldialect.Querier, prefix string) error {
	info, err := d.Describe(ctx, q, t.name)
	if errors.Is(err, sqldialect.ErrNoTable) {
		return configErr(prefix+"Table", "", err)
	}
	if err != nil {
		return fmt.Errorf("sqlbatch: check table %q: %w", t.name, err)
	}
	t.text = t.text[:0]
	for i, c := range t.names {
		col, ok := info.Column(c)
		if !ok {
			field := fmt.Sprintf("%sColumns[%d]", prefix, i)
			if t.batchCol && i == len(t.names)-1 {
				field = prefix + "BatchColumn"
			}
			reason := noColumn(t.name, c, info)
			if i < len(t.fields) {
				// A struct Sink's columns come from its row type,
				// which StructSinkConfig.Row returns.
				field = prefix + "Row"
				reason += ", read from field " + t.fields[i] + " of the row type"
			}
			return configErr(field, reason, nil)
		}
		if col.Text {
			t.text = append(t.text, i)
		}
	}
	if !info.UniqueOn(t.keyNames) {
		return configErr(prefix+"Key", noUnique(d, t.name, t.keyNames, info), nil)
	}
	return nil
}

// noColumn says that table has no column col, and which it has.
func noColumn(table, col string, info *sqldialect.Table) string {
	names := make([]string, len(info.Columns))
	for i, c := range info.Columns {
		names[i] = c.Name
	}
	return fmt.Sprintf("table %q has no column %q (it has %s)", table, col, strings.Join(names, ", "))
}

// noUnique says that no unique index of table covers key, and what to do.
func noUnique(d sqldialect.Dialect, table string, key []string, info *sqldialect.Table) string {
	has := "it has no primary key or unique index"
	if len(info.Unique) > 0 {
		sets := make([]string, len(info.Unique))
		for i, u := range info.Unique {
			sets[i] = "(" + strings.Join(u, ", ") + ")"
		}
		has = "it has unique keys on " + strings.Join(sets, ", ")
	}
	if len(info.Unusable) > 0 {
		// A partial or expression index cannot back ON CONFLICT:
		// say so rather than "no unique index".
		if len(info.Unique) == 0 {
			has = "it has no primary key or unique index ON CONFLICT can use"
		}
		has += "; " + strings.Join(info.Unusable, ", ") + ", which ON CONFLICT cannot use"
	}
	qt, _ := d.QuoteTable(table)
	qk, _ := d.QuoteIdents(key)
	return fmt.Sprintf("no primary key or unique index of table %q covers exactly (%s), so a rewritten batch would duplicate rows (%s); add one: CREATE UNIQUE INDEX ON %s (%s)",
		table, strings.Join(key, ", "), has, qt, strings.Join(qk, ", "))
}

// textValues turns []byte values for text and JSON columns into strings,
// in place: sent as they are, PostgreSQL would store them as bytea text
// ("\x7b22…") and SQLite as BLOBs. Bytes that are not UTF-8 are refused.
func (t *target[T, R]) textValues(row []any) error {
	for _, i := range t.text {
		v := row[i]
		switch x := v.(type) {
		case nil, string:
			continue
		case []byte:
			if err := t.utf8(i, x, v); err != nil {
				return err
			}
			row[i] = string(x)
			continue
		case driver.Valuer:
			rv := reflect.ValueOf(v)
			if rv.Kind() == reflect.Pointer && rv.IsNil() {
				row[i] = nil
				continue
			}
			dv, err := x.Value()
			if err != nil {
				return fmt.Errorf("column %q of %s: %w", t.names[i], t.name, err)
			}
			row[i] = dv
			if b, ok := dv.([]byte); ok {
				if err := t.utf8(i, b, v); err != nil {
					return err
				}
				row[i] = string(b)
			}
			continue
		}
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			b := rv.Bytes()
			if err := t.utf8(i, b, v); err != nil {
				return err
			}
			row[i] = string(b)
		}
	}
	return nil
}

// utf8 refuses b, the bytes of v given for the text column at position
// i, unless they are UTF-8.
func (t *target[T, R]) utf8(i int, b []byte, v any) error {
	if utf8.Valid(b) {
		return nil
	}
	given := fmt.Sprintf("%T", v)
	if _, ok := v.([]byte); ok {
		given = "[]byte"
	}
	return fmt.Errorf("column %q of %s is text, and the %s given is not UTF-8 (store binary data in a bytea or BLOB column)", t.names[i], t.name, given)
}
