package sqlbatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx/reflectx"

	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// Check checks the Source's configuration against the database: the
// table exists (for a Query, it runs with no row to learn its columns),
// and it has every column named in Key, Filter and Columns. With the
// default Columns (every column), each column must have a field of the
// item type and each field a column. It returns a *batchenrich.ConfigError naming the
// first problem. Once it has succeeded it does nothing more; Read calls it
// before its first read.
func (s *Source[T]) Check(ctx context.Context) error {
	return s.checked.do(func() error { return inConfig(cmp.Or(s.config, "SourceConfig"), s.check(ctx)) })
}

// check is one run of Check's checks.
func (s *Source[T]) check(ctx context.Context) error {
	for _, n := range s.needs {
		if err := n.check(ctx, s.d, s.db); err != nil {
			return err
		}
	}
	cols, what, err := s.columns(ctx)
	if err != nil {
		return err
	}
	has := func(field, name string) error {
		if slices.Contains(cols, name) {
			return nil
		}
		return configErr(field, fmt.Sprintf("%s has no column %q (it has %s)", what, name, strings.Join(cols, ", ")), nil)
	}
	for i, k := range s.keys {
		if err := has(fmt.Sprintf("Key[%d]", i), k); err != nil {
			return err
		}
	}
	for _, f := range s.filters {
		if err := has(fmt.Sprintf("Filter[%q]", f), f); err != nil {
			return err
		}
	}
	for i, c := range s.cols {
		if err := has(fmt.Sprintf("Columns[%d]", i), c); err != nil {
			return err
		}
	}
	if len(s.cols) == 0 {
		return s.matchFields(cols, what)
	}
	return nil
}

// columns returns the columns the Source reads from, and what they are
// the columns of, for messages.
func (s *Source[T]) columns(ctx context.Context) ([]string, string, error) {
	if s.table != "" {
		info, err := s.d.Describe(ctx, s.db, s.table)
		if errors.Is(err, sqldialect.ErrNoTable) {
			return nil, "", configErr("Table", "", err)
		}
		if err != nil {
			return nil, "", fmt.Errorf("sqlbatch: source: check table %q: %w", s.table, err)
		}
		cols := make([]string, len(info.Columns))
		for i, c := range info.Columns {
			cols[i] = c.Name
		}
		return cols, fmt.Sprintf("table %q", s.table), nil
	}
	rows, err := s.db.QueryContext(ctx, s.d.Rebind("SELECT * FROM "+s.from+" LIMIT 0"), s.qArgs...)
	if err != nil {
		return nil, "", configErr("Query", "cannot run", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, "", configErr("Query", "cannot read its columns", err)
	}
	return cols, "Query", nil
}

// matchFields checks that cols and the fields of the item type match one
// to one, as reading every column needs.
func (s *Source[T]) matchFields(cols []string, what string) error {
	st := reflectx.Deref(reflect.TypeFor[T]())
	for _, c := range cols {
		if _, ok := s.fields.Names[c]; !ok {
			return configErr("Columns", fmt.Sprintf("%s has column %q, which has no field in %v (add a `db:%q` field, or list the columns to read in Columns)",
				what, c, st, c), nil)
		}
	}
	for _, f := range columnFields(s.fields.Tree) {
		if !slices.Contains(cols, f.Path) {
			return configErr("Columns", fmt.Sprintf("field %s of %v reads column %q, which %s does not have (fix its `db` tag, tag it `db:\"-\"`, or list the columns to read in Columns)",
				f.Field.Name, st, f.Path, what), nil)
		}
	}
	return nil
}

// columnFields returns the fields of a struct that each read one column:
// its fields, and those of its embedded structs, but not the fields of
// its struct-typed fields (a time.Time, a JSON[T] is one column).
func columnFields(fi *reflectx.FieldInfo) []*reflectx.FieldInfo {
	var out []*reflectx.FieldInfo
	for _, c := range fi.Children {
		switch {
		case c == nil:
		case c.Embedded:
			out = append(out, columnFields(c)...)
		default:
			out = append(out, c)
		}
	}
	return out
}

// needCols is a table a Source reads besides its own, and the columns of
// it that it names, each with the configuration field naming it.
type needCols struct {
	field  string // the field naming the table
	table  string
	cols   []string
	fields []string
}

func (n needCols) check(ctx context.Context, d sqldialect.Dialect, q sqldialect.Querier) error {
	info, err := d.Describe(ctx, q, n.table)
	if errors.Is(err, sqldialect.ErrNoTable) {
		return configErr(n.field, "", err)
	}
	if err != nil {
		return fmt.Errorf("sqlbatch: source: check table %q: %w", n.table, err)
	}
	for i, c := range n.cols {
		if _, ok := info.Column(c); !ok {
			return configErr(n.fields[i], noColumn(n.table, c, info), nil)
		}
	}
	return nil
}
