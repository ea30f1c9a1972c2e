package sqlbatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/jmoiron/sqlx/reflectx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// Paging chooses how a Source finds the start of a window.
type Paging int

const (
	// PageByKey, the default, pages by the last key returned:
	// WHERE (k1, k2) > (last1, last2) ORDER BY k1, k2 LIMIT n. With an
	// index on the key, a window costs the same at the end of a large
	// table as at its start, and rows inserted or deleted behind the
	// cursor do not shift later windows.
	PageByKey Paging = iota

	// PageByOffset pages with ORDER BY key LIMIT n OFFSET m. Each window
	// costs more than the one before it (the database reads and discards
	// the first m rows), and a row inserted or deleted before the cursor
	// shifts the rest by one. Use it only to match an existing OFFSET
	// based process.
	PageByOffset
)

// SourceConfig configures a Source. Names of tables and columns are
// quoted, so give them exactly as stored (PostgreSQL folds unquoted names
// in DDL to lower case). Values are always bound parameters.
type SourceConfig struct {
	// Table is the table or view to read, optionally schema-qualified
	// ("schema.table"). Set Table or Query, not both.
	Table string

	// Query is a SELECT to read from instead of a table. It is trusted
	// SQL text, written by the programmer, never built from input: it
	// runs as a subquery, "SELECT … FROM (Query) AS q WHERE … ORDER BY
	// Key LIMIT n", so its result columns must include the Key columns.
	// Use '?' placeholders (rewritten for PostgreSQL), with values in
	// Args. Do not end it with a semicolon.
	Query string

	// Args are the values of Query's placeholders.
	Args []any

	// Key lists the columns of the stable order windows are read in.
	// Required. Together they must be unique and NOT NULL (a primary key
	// or unique index, ideally leading an index for the Filter columns
	// too), and each must map to a field of the item type through its
	// sqlx `db` tag, so that the Source can record the last key read.
	Key []string

	// Filter restricts the rows read to those whose columns equal the
	// given values, ANDed: {"execution_id": id}. A nil value matches
	// NULL. Values are bound parameters.
	Filter map[string]any

	// Columns lists the columns to select; each needs a field in the
	// item type. Empty means every column ("*"): then the item type must
	// have a field for each column and a column for each field, which
	// Check verifies.
	Columns []string

	// Paging chooses keyset (the default) or OFFSET paging.
	Paging Paging

	// Partition, when its Count is above 1, restricts the Source to one
	// key partition: the rows whose key hashes to Partition.Index modulo
	// Partition.Count. Every row is in exactly one partition, whatever
	// the key's types, and keyset paging works within the partition. See
	// the package documentation (Partitions) for how each database
	// computes it. Needs PageByKey.
	Partition batchenrich.Partition
}

// Source is a batchenrich.Source reading rows of a table or query into
// values of T, a struct (or pointer to struct) whose fields carry sqlx
// `db` tags.
//
// Its Cursor is the last key read, as a JSON array (["e-1", 42]), or with
// PageByOffset the number of rows read, in decimal. Both survive a process
// restart. A Source is safe for concurrent use; it holds no connection
// between calls to Read, so it can read the next window while a Sink
// writes on another connection (SQLite needs WAL mode and a busy timeout
// for that; see the package documentation).
type Source[T any] struct {
	db      *sqlx.DB
	d       sqldialect.Dialect
	paging  Paging
	key     []string // quoted
	keyPath [][]int  // field index path of each key column in T
	keyType []reflect.Type
	base    string // SELECT … FROM … WHERE filters (no trailing clause)
	baseArg []any
	hasCond bool
	order   string
	nkey    int
	part    batchenrich.Partition // Count > 1 when the Source reads one partition
	inGo    bool                  // the partition is filtered here, not in SQL (SQLite)

	// What Check compares with the catalog (see source_check.go).
	from    string // the quoted table, or the subquery
	table   string // Table as configured, or "" for a Query
	qArgs   []any  // Query's Args
	keys    []string
	filters []string // sorted
	cols    []string // Columns as configured; nil for every column
	fields  *reflectx.StructMap
	config  string     // names the configuration in errors ("SourceConfig" if empty)
	desc    string     // what Describe returns
	needs   []needCols // other tables the Source reads (NewFailedSource)
	checked onceOK     // runs Check until it succeeds
}

// NewSource returns a Source reading db as cfg says. It validates cfg
// and returns a *batchenrich.ConfigError naming the first bad field. It does not
// touch the database: Check compares cfg with the catalog, and runs
// before the first read if nobody called it earlier.
func NewSource[T any](db *sqlx.DB, cfg SourceConfig) (_ *Source[T], err error) {
	defer func() { err = inConfig("SourceConfig", err) }()
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	s := &Source[T]{db: db, d: d, paging: cfg.Paging}
	if cfg.Paging != PageByKey && cfg.Paging != PageByOffset {
		return nil, configErr("Paging", "unknown paging mode "+strconv.Itoa(int(cfg.Paging)), nil)
	}

	var from string
	switch {
	case cfg.Table != "" && cfg.Query != "":
		return nil, configErr("Query", "set Table or Query, not both", nil)
	case cfg.Table != "":
		if from, err = quoteTable(d, "Table", cfg.Table); err != nil {
			return nil, err
		}
		if len(cfg.Args) > 0 {
			return nil, configErr("Args", "only used with Query", nil)
		}
	case cfg.Query != "":
		q := strings.TrimSpace(cfg.Query)
		if strings.HasSuffix(q, ";") {
			return nil, configErr("Query", "must not end with a semicolon", nil)
		}
		if n := sqldialect.CountPlaceholders(q); n != len(cfg.Args) {
			return nil, configErr("Args", fmt.Sprintf("Query has %d '?' placeholders but Args has %d values", n, len(cfg.Args)), nil)
		}
		from = "(" + q + ") AS batchenrich_q"
		s.baseArg = append(s.baseArg, cfg.Args...)
	default:
		return nil, configErr("Table", "set Table or Query", nil)
	}

	if len(cfg.Key) == 0 {
		return nil, configErr("Key", "required: the columns of a stable, unique order", nil)
	}
	if s.key, err = quoteCols(d, "Key", cfg.Key); err != nil {
		return nil, err
	}
	s.nkey = len(cfg.Key)
	s.order = " ORDER BY " + strings.Join(s.key, ", ")

	t := reflect.TypeFor[T]()
	st := reflectx.Deref(t)
	if st.Kind() != reflect.Struct {
		return nil, configErr("T", fmt.Sprintf("item type %v is not a struct or pointer to struct", t), nil)
	}
	tm := db.Mapper.TypeMap(st)
	s.fields, s.from, s.table, s.qArgs = tm, from, cfg.Table, cfg.Args
	s.keys, s.cols = slices.Clone(cfg.Key), slices.Clone(cfg.Columns)
	for i, k := range cfg.Key {
		fi, ok := tm.Names[k]
		if !ok {
			return nil, configErr(fmt.Sprintf("Key[%d]", i), fmt.Sprintf("column %q has no field in %v (add a `db:%q` tag)", k, st, k), nil)
		}
		s.keyPath = append(s.keyPath, fi.Index)
		s.keyType = append(s.keyType, fi.Field.Type)
	}

	cols := "*"
	if len(cfg.Columns) > 0 {
		qc, err := quoteCols(d, "Columns", cfg.Columns)
		if err != nil {
			return nil, err
		}
		for i, k := range cfg.Key {
			if !slices.Contains(cfg.Columns, k) {
				return nil, configErr("Columns", fmt.Sprintf("must include key column %q (Key[%d])", k, i), nil)
			}
		}
		for i, c := range cfg.Columns {
			if _, ok := tm.Names[c]; !ok {
				return nil, configErr(fmt.Sprintf("Columns[%d]", i), fmt.Sprintf("column %q has no field in %v (add a `db:%q` tag)", c, st, c), nil)
			}
		}
		cols = strings.Join(qc, ", ")
	}

	var b strings.Builder
	b.WriteString("SELECT " + cols + " FROM " + from)
	names := make([]string, 0, len(cfg.Filter))
	for n := range cfg.Filter {
		names = append(names, n)
	}
	slices.Sort(names)
	s.filters = names
	for i, n := range names {
		q, err := d.QuoteIdent(n)
		if err != nil {
			return nil, configErr("Filter", "bad column name", err)
		}
		if i == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		if v := cfg.Filter[n]; v == nil {
			b.WriteString(q + " IS NULL")
		} else {
			b.WriteString(q + " = ?")
			s.baseArg = append(s.baseArg, v)
		}
		s.hasCond = true
	}
	if cfg.Partition.Partitioned() {
		if err := s.partition(cfg.Partition, &b); err != nil {
			return nil, err
		}
	}
	s.base = b.String()
	s.desc = describeSource(cfg)
	return s, nil
}

// Describe implements batchenrich.Describer: it names the table or query
// (with its arguments), the key, the filter (with its values), the columns,
// the paging and the partition count, which a durable run records as part
// of its definition. The partition's index is not part of it: the
// partitions of a run share one definition.
func (s *Source[T]) Describe() string { return s.desc }

// Read implements batchenrich.Source: it returns at most limit rows after
// the position after, in key order, and the Cursor after the last of them
// (after itself when none is left).
func (s *Source[T]) Read(ctx context.Context, after batchenrich.Cursor, limit int) ([]T, batchenrich.Cursor, error) {
	if limit <= 0 {
		return nil, after, fmt.Errorf("limit %d: must be positive", limit)
	}
	if err := s.Check(ctx); err != nil {
		return nil, after, err
	}
	if s.inGo {
		return s.readPartition(ctx, after, limit)
	}
	q, args, offset, err := s.query(after, limit)
	if err != nil {
		return nil, after, err
	}
	items, err := selectRows(ctx, s.db, s.fields, make([]T, 0, limit), s.d.Rebind(q), args...)
	if err != nil {
		return nil, after, fmt.Errorf("after cursor %q: %w", after, err)
	}
	if len(items) == 0 {
		return items, after, nil
	}
	if s.paging == PageByOffset {
		return items, batchenrich.Cursor(strconv.FormatInt(offset+int64(len(items)), 10)), nil
	}
	next, err := s.cursorOf(items[len(items)-1])
	if err != nil {
		return nil, after, err
	}
	return items, next, nil
}

// query builds the SELECT of the window after the cursor.
func (s *Source[T]) query(after batchenrich.Cursor, limit int) (q string, args []any, offset int64, err error) {
	args = append(make([]any, 0, len(s.baseArg)+s.nkey+2), s.baseArg...)
	q = s.base
	if s.paging == PageByOffset {
		if after != "" {
			offset, err = strconv.ParseInt(string(after), 10, 64)
			if err != nil || offset < 0 {
				return "", nil, 0, fmt.Errorf("bad offset cursor %q", after)
			}
		}
		return q + s.order + " LIMIT ? OFFSET ?", append(args, limit, offset), offset, nil
	}
	if after != "" {
		keys, err := s.decodeCursor(after)
		if err != nil {
			return "", nil, 0, err
		}
		if s.hasCond {
			q += " AND "
		} else {
			q += " WHERE "
		}
		q += s.d.After(s.key)
		args = append(args, keys...)
	}
	return q + s.order + " LIMIT ?", append(args, limit), 0, nil
}

// cursorOf encodes the key of item as a JSON array.
func (s *Source[T]) cursorOf(item T) (batchenrich.Cursor, error) {
	v := reflect.ValueOf(&item).Elem()
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", fmt.Errorf("nil item")
		}
		v = v.Elem()
	}
	keys := make([]any, len(s.keyPath))
	for i, path := range s.keyPath {
		f, ok := fieldAt(v, path)
		if !ok {
			return "", fmt.Errorf("key column %s is behind a nil pointer", s.key[i])
		}
		keys[i] = f.Interface()
	}
	b, err := json.Marshal(keys)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	return batchenrich.Cursor(b), nil
}

// decodeCursor turns a cursor back into key values of the key fields'
// types, so they bind exactly as the column values did.
func (s *Source[T]) decodeCursor(c batchenrich.Cursor) ([]any, error) {
	var raw []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader([]byte(c)))
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return nil, fmt.Errorf("bad cursor %q: want a JSON array of %d keys", c, s.nkey)
	}
	if len(raw) != s.nkey {
		return nil, fmt.Errorf("bad cursor %q: %d keys, want %d", c, len(raw), s.nkey)
	}
	out := make([]any, len(raw))
	for i, r := range raw {
		p := reflect.New(s.keyType[i])
		if err := json.Unmarshal(r, p.Interface()); err != nil {
			return nil, fmt.Errorf("bad cursor %q: key %d: %w", c, i, err)
		}
		out[i] = p.Elem().Interface()
	}
	return out, nil
}

// fieldAt follows path from struct v, reporting false at a nil pointer.
func fieldAt(v reflect.Value, path []int) (reflect.Value, bool) {
	for _, i := range path {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return v, false
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	return v, true
}
