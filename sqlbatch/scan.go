package sqlbatch

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"

	"github.com/jmoiron/sqlx"
	"github.com/jmoiron/sqlx/reflectx"
)

// selectRows runs q and appends its rows to dst, as sqlx's SelectContext
// would (columns matched to fields by fields' names, an error naming a
// column with no field unless db is sqlx's Unsafe, nil embedded pointers
// allocated), but without its reflection per row: the field of each
// column is found once per query, each row is scanned in place into the
// next element of dst, and the scan destinations are reused. A T (or *T)
// that scans itself (a sql.Scanner) goes through sqlx.
//
// Sources read windows with it, and Lookups groups with scanEach: sqlx's
// scanAll (a reflect.New, a traversal and a reflect.Append per row) was
// 28 % of a lookup's CPU (BenchmarkLookup; see BENCHMARKS.md, issue 25).
func selectRows[T any](ctx context.Context, db *sqlx.DB, fields *reflectx.StructMap, dst []T, q string, args ...any) ([]T, error) {
	if reflect.PointerTo(reflectx.Deref(reflect.TypeFor[T]())).Implements(scannerType) {
		err := db.SelectContext(ctx, &dst, q, args...)
		return dst, err
	}
	err := scanEach(ctx, db, fields, q, args, func() *T {
		var zero T
		dst = append(dst, zero)
		return &dst[len(dst)-1]
	}, nil)
	if err != nil {
		return dst[:0], err
	}
	return dst, nil
}

// scanEach runs q and scans each row, as selectRows does, into the T
// that into returns (a zero T), then calls got, if not nil. T must not
// scan itself (see selectRows).
func scanEach[T any](ctx context.Context, db *sqlx.DB, fields *reflectx.StructMap, q string, args []any, into func() *T, got func() error) error {
	t := reflect.TypeFor[T]()
	ptr := t.Kind() == reflect.Pointer
	base := reflectx.Deref(t)
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	paths := make([][]int, len(cols))
	for i, c := range cols {
		fi, ok := fields.Names[c]
		if !ok {
			// A column with no field: sqlx decides, as before (an error
			// naming the column, or with db.Unsafe() the column ignored).
			rows.Close()
			return selectEach(ctx, db, q, args, into, got)
		}
		paths[i] = fi.Index
	}
	vals := make([]any, len(cols))
	for rows.Next() {
		v := reflect.ValueOf(into()).Elem()
		if ptr {
			p := reflect.New(base)
			v.Set(p)
			v = p.Elem()
		}
		for i, path := range paths {
			vals[i] = dest(reflectx.FieldByIndexes(v, path).Addr())
		}
		if err := rows.Scan(vals...); err != nil {
			return err
		}
		if got != nil {
			if err := got(); err != nil {
				return err
			}
		}
	}
	return rows.Err()
}

var scannerType = reflect.TypeFor[sql.Scanner]()

// dest returns the scan destination of a field, given its address: the
// address itself, or for an int64 or int field a sql.Scanner storing an
// int64 value as it is. database/sql converts an int64 into such a field
// through reflection (an int by formatting and parsing it again); any
// other value still goes through its conversion (sql.Null's Scan), with
// the same results and errors.
func dest(addr reflect.Value) any {
	switch p := addr.Interface().(type) {
	case *int64:
		return intDest[int64]{p}
	case *int:
		return intDest[int]{p}
	default:
		return p
	}
}

// intDest scans into an int64 or int field (see dest).
type intDest[T int64 | int] struct{ p *T }

func (d intDest[T]) Scan(src any) error {
	if n, ok := src.(int64); ok {
		if t := T(n); int64(t) == n { // else an int of 32 bits: the conversion's error
			*d.p = t
			return nil
		}
	}
	var v sql.Null[T]
	if err := v.Scan(src); err != nil {
		return err
	}
	if !v.Valid {
		return fmt.Errorf("converting NULL to %s is unsupported", reflect.TypeFor[T]().Kind())
	}
	*d.p = v.V
	return nil
}

// selectEach is scanEach through sqlx's SelectContext, for a query with a
// column that no field takes: its rows are read at once, then handed out.
func selectEach[T any](ctx context.Context, db *sqlx.DB, q string, args []any, into func() *T, got func() error) error {
	var all []T
	if err := db.SelectContext(ctx, &all, q, args...); err != nil {
		return err
	}
	for _, r := range all {
		*into() = r
		if got != nil {
			if err := got(); err != nil {
				return err
			}
		}
	}
	return nil
}
