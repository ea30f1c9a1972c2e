package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
)

// errIncompatibleSchema marks an existing table the job cannot use.
var errIncompatibleSchema = errors.New("incompatible schema")

// wantColumn is a column the job reads or writes, with the types it
// accepts on each database (as the catalog names them, lower case; for
// SQLite, a substring of the declared type, following SQLite's affinity
// rules).
type wantColumn struct {
	name     string
	postgres []string
	sqlite   []string
}

var (
	intTypes  = colTypes{[]string{"integer", "bigint", "smallint"}, []string{"int"}}
	textTypes = colTypes{[]string{"text", "character varying"}, []string{"text", "char", "clob"}}
)

type colTypes struct{ postgres, sqlite []string }

func col(name string, t colTypes) wantColumn { return wantColumn{name, t.postgres, t.sqlite} }

// wantTables are the columns of the fixture's tables the job uses, each
// table keyed by (execution_id, traveler_id).
var wantTables = []struct {
	name string
	cols []wantColumn
}{
	{"traveler_batch_source", []wantColumn{
		col("execution_id", textTypes), col("traveler_id", intTypes), col("traveler_name", textTypes),
	}},
	{"traveler_batch_results", []wantColumn{
		col("execution_id", textTypes), col("traveler_id", intTypes), col("traveler_name", textTypes),
		col("normalized_name", textTypes), col("profile_status", intTypes), col("profile_hash", textTypes),
		{"profile_payload", []string{"jsonb", "json"}, []string{"text", "json"}},
		{"is_valid", []string{"boolean"}, []string{"int", "bool"}},
		col("validation_error", textTypes), col("batch_number", intTypes),
		{"processed_at", []string{"timestamp with time zone", "timestamp without time zone"}, []string{"text", "date", "time"}},
	}},
}

// tableKey is the unique key both tables need (the upserts' conflict
// target).
var tableKey = []string{"execution_id", "traveler_id"}

// columnInfo is a column as the catalog describes it.
type columnInfo struct {
	Name       string `db:"name"`
	Type       string `db:"type"`
	NotNull    bool   `db:"not_null"`
	HasDefault bool   `db:"has_default"`
}

// checkSchema reads the catalog, and only reads it: it returns an error
// wrapping errIncompatibleSchema, naming the table and the column, if a
// table of the job exists but cannot take the job's rows. Missing tables
// are fine (createTables makes them).
func checkSchema(ctx context.Context, db *sqlx.DB) error {
	for _, t := range wantTables {
		cols, keys, exists, err := describeTable(ctx, db, t.name)
		if err != nil {
			return fmt.Errorf("check table %s: %w", t.name, err)
		}
		if !exists {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("table %s exists with an %w: %s; drop or rename it, or use another database",
				t.name, errIncompatibleSchema, fmt.Sprintf(format, a...))
		}
		byName := map[string]columnInfo{}
		for _, c := range cols {
			byName[strings.ToLower(c.Name)] = c
		}
		var used []string
		for _, w := range t.cols {
			used = append(used, w.name)
			c, ok := byName[w.name]
			if !ok {
				return bad("no column %s", w.name)
			}
			accepted := w.postgres
			if db.DriverName() == "sqlite" {
				accepted = w.sqlite
			}
			if typ := strings.ToLower(c.Type); !typeAccepted(db.DriverName(), typ, accepted) {
				if db.DriverName() == "sqlite" {
					return bad("column %s is %s, want a type containing %s", w.name, typ, strings.Join(accepted, " or "))
				}
				return bad("column %s is %s, want %s", w.name, typ, strings.Join(accepted, " or "))
			}
		}
		for _, c := range cols {
			if c.NotNull && !c.HasDefault && !slices.Contains(used, strings.ToLower(c.Name)) {
				return bad("column %s is NOT NULL without a default, and the job does not fill it", c.Name)
			}
		}
		if !slices.ContainsFunc(keys, func(k []string) bool { return sameSet(k, tableKey) }) {
			return bad("no primary key or unique index on (%s)", strings.Join(tableKey, ", "))
		}
	}
	return nil
}

func typeAccepted(driver, typ string, accepted []string) bool {
	if driver == "sqlite" {
		return slices.ContainsFunc(accepted, func(a string) bool { return strings.Contains(typ, a) })
	}
	return slices.Contains(accepted, typ)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, strings.ToLower(x)) {
			return false
		}
	}
	return true
}

// describeTable returns the columns of table and the column sets of its
// primary key and unique indexes (non-partial), or exists=false.
func describeTable(ctx context.Context, db *sqlx.DB, table string) (cols []columnInfo, keys [][]string, exists bool, err error) {
	if db.DriverName() == "sqlite" {
		if err = db.SelectContext(ctx, &cols, `SELECT name, type, "notnull" AS not_null, dflt_value IS NOT NULL AS has_default
			FROM pragma_table_info(?)`, table); err != nil || len(cols) == 0 {
			return nil, nil, false, err
		}
		var idx []struct {
			Name    string `db:"name"`
			Unique  bool   `db:"unique"`
			Partial bool   `db:"partial"`
		}
		if err = db.SelectContext(ctx, &idx, `SELECT name, "unique", partial FROM pragma_index_list(?)`, table); err != nil {
			return nil, nil, false, err
		}
		for _, ix := range idx {
			if !ix.Unique || ix.Partial {
				continue
			}
			var names []string
			if err = db.SelectContext(ctx, &names, `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, ix.Name); err != nil {
				return nil, nil, false, err
			}
			keys = append(keys, names)
		}
		// A rowid table's INTEGER PRIMARY KEY has no index of its own.
		var pk []string
		if err = db.SelectContext(ctx, &pk, `SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`, table); err != nil {
			return nil, nil, false, err
		}
		if len(pk) > 0 {
			keys = append(keys, pk)
		}
		return cols, keys, true, nil
	}
	var oid *int64
	if err = db.GetContext(ctx, &oid, `SELECT to_regclass($1)::oid::bigint`, table); err != nil || oid == nil {
		return nil, nil, false, err
	}
	if err = db.SelectContext(ctx, &cols, `SELECT attname AS name, format_type(atttypid, NULL) AS type,
			attnotnull AS not_null, atthasdef AS has_default
		FROM pg_attribute WHERE attrelid = $1::bigint::oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, *oid); err != nil {
		return nil, nil, false, err
	}
	var keyText []string
	if err = db.SelectContext(ctx, &keyText, `SELECT array_to_string(ARRAY(
			SELECT a.attname FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k), ',')
		FROM pg_index i WHERE i.indrelid = $1::bigint::oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL`, *oid); err != nil {
		return nil, nil, false, err
	}
	for _, k := range keyText {
		keys = append(keys, strings.Split(k, ","))
	}
	return cols, keys, true, nil
}
