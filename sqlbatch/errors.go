package sqlbatch

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// Sentinel errors. Use errors.Is to test for them.
var (
	// ErrInvalidConfig is wrapped by the *ConfigError that the
	// constructors return for a bad configuration.
	ErrInvalidConfig = errors.New("sqlbatch: invalid config")

	// ErrLockLost is returned by CheckpointStore.Save and SaveTx (and so
	// by Sink.WriteCheckpointed), and by the release function TryLock
	// returned, when the run lock this store took with TryLock is no
	// longer held: the PostgreSQL session holding the
	// advisory lock ended, or the SQLite lease expired and another runner
	// took it. Nothing is saved; the runner must stop.
	ErrLockLost = errors.New("run lock lost")
)

// ConfigError reports an invalid configuration field. It wraps
// ErrInvalidConfig, and the cause when there is one.
type ConfigError struct {
	Config string // "SourceConfig", "SinkConfig" or "CheckpointConfig"; empty for the db argument
	Field  string // the field, e.g. "Key", "Columns[2]" or "Failures.Table"
	Reason string // what is wrong with it
	Err    error  // the underlying cause, or nil
}

// Error names the field, what is wrong with it, and the cause if any:
// "sqlbatch: invalid SinkConfig.Columns[2]: table "results" has no column
// "payloda" (it has …)".
func (e *ConfigError) Error() string {
	name := e.Field
	if e.Config != "" {
		name = e.Config + "." + e.Field
	}
	s := "sqlbatch: invalid " + name + ": " + e.Reason
	switch {
	case e.Err != nil && e.Reason == "":
		s += e.Err.Error()
	case e.Err != nil:
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrInvalidConfig and the cause.
func (e *ConfigError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidConfig}
	}
	return []error{ErrInvalidConfig, e.Err}
}

func configErr(field, reason string, err error) error {
	return &ConfigError{Field: field, Reason: reason, Err: err}
}

// inConfig names the configuration struct in a *ConfigError about one of
// its fields.
func inConfig(config string, err error) error {
	var ce *ConfigError
	if errors.As(err, &ce) && ce.Config == "" && ce.Field != "db" {
		ce.Config = config
	}
	return err
}

// dialectOf checks db and returns its dialect.
func dialectOf(db *sqlx.DB) (sqldialect.Dialect, error) {
	if db == nil {
		return sqldialect.Dialect{}, configErr("db", "nil *sqlx.DB", nil)
	}
	d, err := sqldialect.Detect(db.DriverName())
	if err != nil {
		return d, configErr("db", "cannot tell the SQL dialect", err)
	}
	return d, nil
}

// quoteCols quotes names for field, naming the bad entry.
func quoteCols(d sqldialect.Dialect, field string, names []string) ([]string, error) {
	out := make([]string, len(names))
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		q, err := d.QuoteIdent(n)
		if err != nil {
			return nil, configErr(fmt.Sprintf("%s[%d]", field, i), "bad column name", err)
		}
		if seen[n] {
			return nil, configErr(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("column %q listed twice", n), nil)
		}
		seen[n] = true
		out[i] = q
	}
	return out, nil
}

func quoteTable(d sqldialect.Dialect, field, name string) (string, error) {
	if name == "" {
		return "", configErr(field, "required", nil)
	}
	q, err := d.QuoteTable(name)
	if err != nil {
		return "", configErr(field, "bad table name", err)
	}
	return q, nil
}

// isTxDone reports whether err says the transaction had already ended
// (rolled back by a cancelled context, or the connection was lost).
func isTxDone(err error) bool { return errors.Is(err, sql.ErrTxDone) }
