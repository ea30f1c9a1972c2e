package sqlbatch

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
)

// JSON stores a Go value in a JSON column (json or jsonb in PostgreSQL,
// TEXT in SQLite) and reads it back. As a query argument it is the JSON
// text of V (a string, which PostgreSQL converts to the column's type); as
// a scan target it decodes the column into V.
//
// A nil V is stored as the JSON text null, not as SQL NULL: to store SQL
// NULL, pass nil instead of a JSON value (or use a *JSON[T]).
type JSON[T any] struct {
	// V is the value, encoded to and decoded from the column's JSON.
	V T
}

// Value implements driver.Valuer.
func (j JSON[T]) Value() (driver.Value, error) {
	b, err := json.Marshal(j.V)
	if err != nil {
		return nil, fmt.Errorf("sqlbatch: JSON value: %w", err)
	}
	return string(b), nil
}

// Scan implements sql.Scanner. SQL NULL leaves V at its zero value.
func (j *JSON[T]) Scan(src any) error {
	var b []byte
	switch s := src.(type) {
	case nil:
		var zero T
		j.V = zero
		return nil
	case []byte:
		b = s
	case string:
		b = []byte(s)
	default:
		return fmt.Errorf("sqlbatch: JSON scan: cannot decode %T", src)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("sqlbatch: JSON scan: %w", err)
	}
	j.V = v
	return nil
}
