package sqldialect

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Querier runs a query: a *sql.DB, *sql.Tx, *sql.Conn or their sqlx
// versions.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ErrNoTable is wrapped by Describe's error for a table that does not
// exist.
var ErrNoTable = errors.New("no such table")

// Column is a column of a table, as the catalog describes it.
type Column struct {
	Name string
	Type string // as declared, e.g. "jsonb", "character varying(20)", "TEXT"
	// Text is true for a column of text or JSON data (PostgreSQL: a
	// string-category type, json, jsonb, xml, or a domain over one;
	// SQLite: a declared type with TEXT affinity, or one naming JSON).
	Text bool
}

// Table is what the catalog says about a table or view.
type Table struct {
	Columns []Column
	// Unique lists the column sets of its primary key and of its unique
	// indexes that can back an ON CONFLICT clause: not partial, not on
	// expressions, not deferrable.
	Unique [][]string
	// Unusable describes its unique indexes that cannot, e.g.
	// `unique index "results_valid" is partial`, for messages.
	Unusable []string
}

// Column returns the column called name, exactly (names are quoted, so
// case-sensitive).
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// UniqueOn reports whether a primary key or unique index of t covers
// exactly the columns of key, in any order.
func (t *Table) UniqueOn(key []string) bool {
	want := slices.Clone(key)
	slices.Sort(want)
	for _, u := range t.Unique {
		got := slices.Clone(u)
		slices.Sort(got)
		if slices.Equal(got, want) {
			return true
		}
	}
	return false
}

// Describe reads the columns and unique keys of table, named as
// configured ("t" or "schema.t", unquoted), from the catalog. The error
// wraps ErrNoTable when it does not exist.
func (d Dialect) Describe(ctx context.Context, q Querier, table string) (*Table, error) {
	if d.Kind == PostgreSQL {
		return d.describePG(ctx, q, table)
	}
	return describeSQLite(ctx, q, table)
}

// describePGQuery reads what Describe returns for the table $1 in one
// statement (one round trip, where four queries took four): whether it
// exists, its columns, the columns of its usable unique indexes and why
// the others are not usable, each list as JSON text (NULL when empty).
const describePGQuery = `SELECT t.oid IS NOT NULL,
	(SELECT json_agg(json_build_array(a.attname::text, format_type(a.atttypid, a.atttypmod),
			bt.typcategory = 'S' OR bt.typname IN ('json', 'jsonb', 'xml')) ORDER BY a.attnum)
		FROM pg_attribute a
		JOIN pg_type ty ON ty.oid = a.atttypid
		JOIN pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
		WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped)::text,
	(SELECT json_agg(u.cols ORDER BY u.idx) FROM (
		SELECT i.indexrelid AS idx, json_agg(a.attname::text ORDER BY k.ord) AS cols
		FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = t.oid AND i.indisunique AND i.indimmediate AND i.indisvalid
			AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
		GROUP BY i.indexrelid) u)::text,
	(SELECT json_agg(json_build_array(c.relname::text, CASE WHEN i.indpred IS NOT NULL THEN 'partial'
			WHEN i.indexprs IS NOT NULL THEN 'on expressions' WHEN NOT i.indimmediate THEN 'deferrable' ELSE 'not valid' END)
			ORDER BY c.relname::text)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = t.oid AND i.indisunique
			AND NOT (i.indimmediate AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL))::text
	FROM (SELECT to_regclass($1)::oid AS oid) t`

func (d Dialect) describePG(ctx context.Context, q Querier, table string) (*Table, error) {
	quoted, err := d.QuoteTable(table)
	if err != nil {
		return nil, err
	}
	var (
		exists                bool
		cols, unique, useless sql.NullString
	)
	if err := queryRow(ctx, q, describePGQuery, []any{quoted}, &exists, &cols, &unique, &useless); err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("%w %q (searched %s)", ErrNoTable, table, searchPathNote(ctx, q, table))
	}
	t := &Table{}
	var raw struct {
		cols    [][3]json.RawMessage
		unique  [][]string
		useless [][2]string
	}
	for _, f := range []struct {
		s   sql.NullString
		dst any
	}{{cols, &raw.cols}, {unique, &raw.unique}, {useless, &raw.useless}} {
		if f.s.Valid {
			if err := json.Unmarshal([]byte(f.s.String), f.dst); err != nil {
				return nil, fmt.Errorf("read the catalog's description of %q: %w", table, err)
			}
		}
	}
	for _, c := range raw.cols {
		var col Column
		for i, dst := range []any{&col.Name, &col.Type, &col.Text} {
			if err := json.Unmarshal(c[i], dst); err != nil {
				return nil, fmt.Errorf("read the catalog's description of %q: %w", table, err)
			}
		}
		t.Columns = append(t.Columns, col)
	}
	t.Unique = raw.unique
	for _, u := range raw.useless {
		t.Unusable = append(t.Unusable, fmt.Sprintf("unique index %q is %s", u[0], u[1]))
	}
	return t, nil
}

// searchPathNote says where PostgreSQL looked for an unqualified table.
func searchPathNote(ctx context.Context, q Querier, table string) string {
	if strings.Contains(table, ".") {
		return "its schema"
	}
	var sp string
	if err := queryRow(ctx, q, `SELECT current_setting('search_path')`, nil, &sp); err != nil {
		return "the search_path"
	}
	return "search_path " + sp
}

func describeSQLite(ctx context.Context, q Querier, table string) (*Table, error) {
	name, schema := table, ""
	if i := strings.IndexByte(table, '.'); i >= 0 {
		schema, name = table[:i], table[i+1:]
	}
	args := func(a string) []any {
		if schema == "" {
			return []any{a}
		}
		return []any{a, schema}
	}
	fn := func(pragma string) string {
		if schema == "" {
			return "pragma_" + pragma + "(?)"
		}
		return "pragma_" + pragma + "(?, ?)"
	}
	type keyCol struct {
		n   int // its position in the primary key, from 1
		col string
	}
	t := &Table{}
	var pk []keyCol
	err := eachRow(ctx, q, `SELECT name, type, pk FROM `+fn("table_info")+` ORDER BY cid`, args(name), func(rows *sql.Rows) error {
		var c Column
		var n int
		if err := rows.Scan(&c.Name, &c.Type, &n); err != nil {
			return err
		}
		c.Text = sqliteText(c.Type)
		t.Columns = append(t.Columns, c)
		if n > 0 {
			pk = append(pk, keyCol{n, c.Name})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(t.Columns) == 0 {
		return nil, fmt.Errorf("%w %q", ErrNoTable, table)
	}
	if len(pk) > 0 {
		slices.SortFunc(pk, func(a, b keyCol) int { return a.n - b.n })
		var cols []string
		for _, p := range pk {
			cols = append(cols, p.col)
		}
		t.Unique = append(t.Unique, cols)
	}
	var indexes []string
	err = eachRow(ctx, q, `SELECT name, partial FROM `+fn("index_list")+` WHERE "unique" ORDER BY name`, args(name), func(rows *sql.Rows) error {
		var n string
		var partial bool
		if err := rows.Scan(&n, &partial); err != nil {
			return err
		}
		if partial {
			t.Unusable = append(t.Unusable, fmt.Sprintf("unique index %q is partial", n))
		} else {
			indexes = append(indexes, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, idx := range indexes {
		var cols []string
		expr := false
		err := eachRow(ctx, q, `SELECT name FROM `+fn("index_info")+` ORDER BY seqno`, args(idx), func(rows *sql.Rows) error {
			var n sql.NullString
			if err := rows.Scan(&n); err != nil {
				return err
			}
			if !n.Valid {
				expr = true
			}
			cols = append(cols, n.String)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !expr {
			t.Unique = append(t.Unique, cols)
		} else {
			t.Unusable = append(t.Unusable, fmt.Sprintf("unique index %q is on expressions", idx))
		}
	}
	return t, nil
}

// sqliteText reports whether a declared SQLite column type has TEXT
// affinity (it contains CHAR, CLOB or TEXT, and not INT), or names JSON.
func sqliteText(typ string) bool {
	u := strings.ToUpper(typ)
	if strings.Contains(u, "INT") {
		return false
	}
	return strings.Contains(u, "CHAR") || strings.Contains(u, "CLOB") || strings.Contains(u, "TEXT") || strings.Contains(u, "JSON")
}

// eachRow runs query and calls f, which scans, for each of its rows,
// stopping at f's first error.
func eachRow(ctx context.Context, q Querier, query string, args []any, f func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		if err := f(rows); err != nil {
			rows.Close()
			return err
		}
	}
	return closeRows(rows)
}

func queryRow(ctx context.Context, q Querier, query string, args []any, dest ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if !rows.Next() {
		if err := closeRows(rows); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		rows.Close()
		return err
	}
	return closeRows(rows)
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}
