package sqlbatch

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
)

// StructSinkConfig configures a Sink whose rows are values of a struct
// type S with sqlx `db` tags, like the items of a Source: the columns are
// S's fields (those of embedded structs included; a field tagged `db:"-"`
// or unexported is left out, and an untagged field is its name in lower
// case), in declaration order, and each row's values are the fields'
// values. This keeps columns and values in step by construction, instead
// of a positional []any kept in step with SinkConfig.Columns by hand.
type StructSinkConfig[T, R, S any] struct {
	// Table is the table to write, optionally "schema.table". Required.
	Table string

	// Key lists the columns identifying a row, as in SinkConfig; each
	// must be the column of a field of S. Required.
	Key []string

	// Row maps a result to a row. Required. Unless Failures is set it
	// also maps failed results (r.Err != nil).
	Row func(r batchenrich.Result[T, R]) (S, error)

	// BatchColumn, if set, names a column that receives the batch number
	// of each row. S must not have a field for it.
	BatchColumn string

	// Failures, if set, sends failed results to another table.
	Failures *FailureTable[T, R]
}

// NewStructSink returns a Sink writing rows of type S to db as cfg says.
// It derives the columns from S's `db` tags (through db.Mapper, as sqlx
// reads them) and checks them when it is made: S must be a struct, with
// at least one column field, no column twice, every Key column among
// them, and no field for BatchColumn. It returns a *batchenrich.ConfigError naming
// the first problem. Like NewSink it does not touch the database; Check
// compares the columns with the catalog.
func NewStructSink[T, R, S any](db *sqlx.DB, cfg StructSinkConfig[T, R, S]) (_ *Sink[T, R], err error) {
	var names []string // the struct field of each column
	defer func() {
		if ce, ok := err.(*batchenrich.ConfigError); ok && ce.Package == "sqlbatch" {
			c, f := splitField(ce.Field)
			if c != "SinkConfig" {
				return
			}
			// StructSinkConfig has no Columns: they come from the
			// fields of the row type.
			var i int
			if _, e := fmt.Sscanf(f, "Columns[%d]", &i); e == nil && i >= 0 && i < len(names) {
				f = "Row"
				ce.Reason = "field " + names[i] + " of the row type: " + ce.Reason
			}
			ce.Field = "StructSinkConfig." + f
		}
	}()
	if db == nil {
		return nil, configErr("db", "nil *sqlx.DB", nil)
	}
	st := reflect.TypeFor[S]()
	if st.Kind() != reflect.Struct {
		return nil, configErr("StructSinkConfig.Row", fmt.Sprintf("row type %v is not a struct", st), nil)
	}
	if cfg.Row == nil {
		return nil, configErr("StructSinkConfig.Row", "required", nil)
	}
	fields := columnFields(db.Mapper.TypeMap(st).Tree)
	if len(fields) == 0 {
		return nil, configErr("StructSinkConfig.Row", fmt.Sprintf("row type %v has no exported field to write", st), nil)
	}
	cols := make([]string, len(fields))
	paths := make([][]int, len(fields))
	names = make([]string, len(fields))
	for i, f := range fields {
		if j := slices.Index(cols[:i], f.Path); j >= 0 {
			return nil, configErr("StructSinkConfig.Row",
				fmt.Sprintf("fields %s and %s of %v both map to column %q", names[j], f.Field.Name, st, f.Path), nil)
		}
		if f.Path == cfg.BatchColumn {
			return nil, configErr("StructSinkConfig.BatchColumn",
				fmt.Sprintf("field %s of %v maps to BatchColumn %q, which the Sink fills with the batch number (tag it `db:\"-\"`)", f.Field.Name, st, f.Path), nil)
		}
		cols[i], paths[i], names[i] = f.Path, f.Index, f.Field.Name
	}
	for i, k := range cfg.Key {
		if !slices.Contains(cols, k) {
			return nil, configErr(fmt.Sprintf("StructSinkConfig.Key[%d]", i),
				fmt.Sprintf("column %q is no field of %v (add a `db:%q` tag)", k, st, k), nil)
		}
	}
	row := func(r batchenrich.Result[T, R]) ([]any, error) {
		s, err := cfg.Row(r)
		if err != nil {
			return nil, err
		}
		v := reflect.ValueOf(&s).Elem()
		vals := make([]any, len(paths))
		for i, p := range paths {
			if f, ok := fieldAt(v, p); ok {
				vals[i] = f.Interface()
			} // else behind a nil embedded pointer: NULL
		}
		return vals, nil
	}
	sink, err := NewSink(db, SinkConfig[T, R]{
		Table: cfg.Table, Key: cfg.Key, Columns: cols, Row: row, BatchColumn: cfg.BatchColumn, Failures: cfg.Failures,
	})
	if err != nil {
		return nil, err
	}
	sink.main.fields = names
	sink.config = "StructSinkConfig"
	return sink, nil
}
