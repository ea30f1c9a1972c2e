package sqlbatch

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/jmoiron/sqlx/reflectx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// LookupConfig configures a Lookup. Names are quoted and checked against
// the catalog as SourceConfig's are; values are always bound parameters.
type LookupConfig[T any] struct {
	// Table is the table or view to look items up in, optionally
	// schema-qualified. Set Table or Query, not both.
	Table string

	// Query is a SELECT to look items up in instead of a table, trusted
	// SQL text with '?' placeholders whose values are Args, as
	// SourceConfig.Query.
	Query string

	// Args are the values of Query's placeholders.
	Args []any

	// Key is the column each item's key is looked up in. Required. It
	// must map to a field of the result type through its `db` tag, so
	// that each row is matched to its items; its values should be unique
	// (a key with several rows fails its items).
	Key string

	// ItemKey returns an item's key, bound as a parameter and compared
	// with the Key column. Required. A row answers an item when the text
	// of its Key field (fmt.Sprint) equals that of the item's key, so an
	// int item key matches an int64 column field.
	ItemKey func(item T) any

	// Filter restricts the rows looked up in, as SourceConfig.Filter.
	Filter map[string]any

	// Columns lists the columns to select; each needs a field of the
	// result type. Empty means every column, each with a field and each
	// field with a column, which Check verifies.
	Columns []string

	// MaxItems is the most items looked up in one query: the Lookup's
	// BulkSize. Zero means 100. At most what the database binds in one
	// statement, less Filter's and Args's values.
	MaxItems int

	// ZeroIfMissing makes an item whose key has no row a success with the
	// zero result. By default it is a failure, permanent, whose reason
	// says so.
	ZeroIfMissing bool
}

// Lookup is a batchenrich.Enricher[T, R] that enriches items from another
// table or query by key, one query per group of items: a
// batchenrich.BulkEnricher, so a Runner looks up to LookupConfig.MaxItems
// items in one "WHERE key = ANY(…)" on PostgreSQL (the keys bound as one
// array) or "WHERE key IN (?, ?, …)" on SQLite. R is a struct (or pointer
// to struct) whose fields carry sqlx `db` tags, read as a Source reads
// its items. It is a batchenrich.Checker: the Runner checks its names
// against the catalog before any work. It is safe for concurrent use.
type Lookup[T, R any] struct {
	src      *Source[R] // its configuration, columns, Check and key field
	itemKey  func(T) any
	max      int
	zero     bool
	pgQuery  string // PostgreSQL: the SELECT, its keys one array cast to the Key column's type (Check)
	checked  onceOK
	selfScan bool // R is a sql.Scanner: rows are read through sqlx (see selectRows)
}

var _ batchenrich.BulkEnricher[int, struct{}] = (*Lookup[int, struct{}])(nil)

var int64Type = reflect.TypeFor[int64]()

// errNoRow is the reason of an item whose key has no row.
var errNoRow = errors.New("lookup: no row for the item's key")

// NewLookup returns a Lookup reading db as cfg says. It validates cfg and
// returns a *batchenrich.ConfigError (its Field under "LookupConfig.") naming the first bad
// field. It does not touch the database: Check compares cfg with the
// catalog, and runs before the first lookup if nobody called it earlier.
func NewLookup[T, R any](db *sqlx.DB, cfg LookupConfig[T]) (_ *Lookup[T, R], err error) {
	defer func() { err = inConfig("LookupConfig", err) }()
	switch {
	case cfg.Key == "":
		return nil, configErr("Key", "required: the column items are looked up by", nil)
	case cfg.ItemKey == nil:
		return nil, configErr("ItemKey", "required", nil)
	case cfg.MaxItems < 0:
		return nil, configErr("MaxItems", "must not be negative", nil)
	}
	src, err := NewSource[R](db, SourceConfig{Table: cfg.Table, Query: cfg.Query, Args: cfg.Args,
		Key: []string{cfg.Key}, Filter: cfg.Filter, Columns: cfg.Columns})
	if err != nil {
		if ce := ownConfigErr(err); ce != nil {
			_, f := splitField(ce.Field) // named again LookupConfig's
			switch f {
			case "Key[0]":
				f = "Key"
			case "T":
				f = "R"
			}
			ce.Field = f
		}
		return nil, err
	}
	src.config = "LookupConfig"
	max := cfg.MaxItems
	if max == 0 {
		max = 100
	}
	if room := src.d.MaxParams() - len(src.baseArg); src.d.Kind == sqldialect.SQLite && max > room {
		return nil, configErr("MaxItems", fmt.Sprintf("%d: SQLite binds at most %d values in one statement (%d left beside Filter and Args)", max, src.d.MaxParams(), room), nil)
	}
	return &Lookup[T, R]{src: src, itemKey: cfg.ItemKey, max: max, zero: cfg.ZeroIfMissing,
		selfScan: reflect.PointerTo(reflectx.Deref(reflect.TypeFor[R]())).Implements(scannerType)}, nil
}

// Check checks the configuration against the database, as Source.Check
// does (the table or query, Key, Filter and Columns, and the fields of R),
// and on PostgreSQL learns the Key column's type. It returns a
// *batchenrich.ConfigError naming the first problem. Once it has succeeded it does
// nothing more.
func (l *Lookup[T, R]) Check(ctx context.Context) error {
	return l.checked.do(func() error {
		if err := l.src.Check(ctx); err != nil {
			if ce := ownConfigErr(err); ce != nil && ce.Field == "LookupConfig.Key[0]" {
				ce.Field = "LookupConfig.Key"
			}
			return err
		}
		if l.src.d.Kind != sqldialect.PostgreSQL {
			return nil
		}
		t, err := l.keyColumnType(ctx)
		if err != nil {
			return inConfig("LookupConfig", err)
		}
		l.pgQuery = l.src.d.Rebind(l.where() + " = ANY(CAST(? AS " + t + "[]))")
		return nil
	})
}

// keyColumnType returns the PostgreSQL type of the Key column.
func (l *Lookup[T, R]) keyColumnType(ctx context.Context) (string, error) {
	s := l.src
	key := s.keys[0]
	if s.table != "" { // the key's type comes from the Table, else from Query
		info, err := s.d.Describe(ctx, s.db, s.table)
		if err != nil {
			return "", configErr("Table", "", err)
		}
		c, ok := info.Column(key)
		if !ok {
			return "", configErr("Key", noColumn(s.table, key, info), nil)
		}
		return c.Type, nil
	}
	rows, err := s.db.QueryContext(ctx, s.d.Rebind("SELECT "+s.key[0]+" FROM "+s.from+" LIMIT 0"), s.qArgs...)
	if err != nil {
		return "", configErr("Query", "cannot run", err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil || len(cts) != 1 || cts[0].DatabaseTypeName() == "" {
		return "", configErr("Key", fmt.Sprintf("cannot learn the type of Query's column %q", key), err)
	}
	return cts[0].DatabaseTypeName(), nil
}

// BulkSize returns LookupConfig.MaxItems.
func (l *Lookup[T, R]) BulkSize() int { return l.max }

// Enrich looks one item up.
func (l *Lookup[T, R]) Enrich(ctx context.Context, item T) (R, error) {
	vals, errs := l.EnrichBulk(ctx, []T{item})
	return vals[0], errs[0]
}

// EnrichBulk looks items up in one query and returns each item's row, or
// its error: a key with no row fails permanently (unless ZeroIfMissing),
// a key with several rows fails permanently, a failed query fails every
// item, transient (unless the context ended).
func (l *Lookup[T, R]) EnrichBulk(ctx context.Context, items []T) ([]R, []error) {
	vals, errs := make([]R, len(items)), make([]error, len(items))
	failAll := func(err error) ([]R, []error) {
		for i := range errs {
			errs[i] = err
		}
		return vals, errs
	}
	if err := l.Check(ctx); err != nil {
		return failAll(batchenrich.Fatal(err))
	}
	keys := make([]any, 0, len(items))
	index := newKeyIndex(len(items))
	keyOf := make([]int, len(items)) // the number of each item's key
	var first []int                  // the first item of each key
	for i, it := range items {
		k := l.itemKey(it)
		if k == nil {
			errs[i] = batchenrich.Permanent(errors.New("lookup: the item's key is nil"))
			continue
		}
		p, ok := index.find(k)
		if !ok {
			p = len(keys)
			index.add(k, p)
			keys = append(keys, k)
			first = append(first, i)
		}
		keyOf[i] = p
	}
	if len(keys) == 0 {
		return vals, errs
	}
	q, args, err := l.query(keys)
	if err != nil {
		return failAll(batchenrich.Fatal(err))
	}
	// Each row goes to the first item of its key, and then to the others.
	const none, one, several = 0, 1, 2
	rowsOf := make([]uint8, len(keys)) // how many rows each key has
	var zero R
	match := func(row *R) {
		v := reflect.ValueOf(row).Elem()
		for v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		f, ok := fieldAt(v, l.src.keyPath[0])
		if !ok || v.Kind() == reflect.Pointer {
			return
		}
		var p int
		if f.Type() == int64Type { // the usual key: no boxing
			p, ok = index.findInt(f.Int())
		} else {
			p, ok = index.find(f.Interface())
		}
		switch {
		case !ok:
		case rowsOf[p] == none:
			rowsOf[p], vals[first[p]] = one, *row
		default:
			rowsOf[p], vals[first[p]] = several, zero
		}
	}
	if l.selfScan {
		var rows []R
		if rows, err = selectRows(ctx, l.src.db, l.src.fields, rows, q, args...); err == nil {
			for j := range rows {
				match(&rows[j])
			}
		}
	} else {
		var row R // scanned into, then matched
		err = scanEach(ctx, l.src.db, l.src.fields, q, args, func() *R { row = zero; return &row }, func() error { match(&row); return nil })
	}
	if err != nil {
		clear(vals)
		err = fmt.Errorf("lookup of %d keys: %w", len(keys), err)
		if ctx.Err() != nil {
			return failAll(err)
		}
		return failAll(batchenrich.Transient(err))
	}
	for i := range items {
		if errs[i] != nil {
			continue
		}
		switch p := keyOf[i]; rowsOf[p] {
		case none:
			if !l.zero {
				errs[i] = batchenrich.Permanent(errNoRow)
			}
		case several:
			errs[i] = batchenrich.Permanent(errors.New("lookup: several rows for the item's key"))
		default:
			vals[i] = vals[first[p]]
		}
	}
	return vals, errs
}

// query returns the SELECT of the rows of keys, rebound.
func (l *Lookup[T, R]) query(keys []any) (string, []any, error) {
	s := l.src
	if s.d.Kind == sqldialect.PostgreSQL {
		// One array parameter, sent as text and cast to the column's
		// type: the same statement text whatever the number of keys,
		// with either driver (built once, by Check).
		lit, err := pgArray(keys)
		if err != nil {
			return "", nil, err
		}
		return l.pgQuery, append(append(make([]any, 0, len(s.baseArg)+1), s.baseArg...), lit), nil
	}
	args := append(make([]any, 0, len(s.baseArg)+len(keys)), s.baseArg...)
	var b strings.Builder
	b.WriteString(l.where())
	b.WriteString(" IN (")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("?")
		args = append(args, k)
	}
	b.WriteString(")")
	return s.d.Rebind(b.String()), args, nil
}

// where returns the SELECT up to the Key column of its condition.
func (l *Lookup[T, R]) where() string {
	s := l.src
	if s.hasCond {
		return s.base + " AND " + s.key[0]
	}
	return s.base + " WHERE " + s.key[0]
}

// keyString is the text keys are matched by.
func keyString(v any) string {
	switch k := v.(type) {
	case string:
		return k
	case []byte:
		return string(k)
	case int64:
		return strconv.FormatInt(k, 10)
	case int:
		return strconv.Itoa(k)
	case int32:
		return strconv.FormatInt(int64(k), 10)
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	return fmt.Sprint(rv.Interface())
}

// pgArray returns keys as a PostgreSQL array literal of quoted elements:
// {"1","2"}.
func pgArray(keys []any) (string, error) {
	var b strings.Builder
	b.Grow(2 + len(keys)*12)
	b.WriteByte('{')
	var num [20]byte
	for i, k := range keys {
		if v, ok := k.(driver.Valuer); ok {
			var err error
			if k, err = v.Value(); err != nil {
				return "", fmt.Errorf("lookup: key %d: %w", i, err)
			}
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		if n, ok := asInt(k); ok {
			b.Write(strconv.AppendInt(num[:0], n, 10))
			b.WriteByte('"')
			continue
		}
		s := keyString(k)
		if strings.ContainsRune(s, 0) {
			return "", fmt.Errorf("lookup: key %d contains a NUL byte", i)
		}
		for _, r := range s { // invalid UTF-8 becomes U+FFFD
			if r == '"' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}
