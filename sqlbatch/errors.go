package sqlbatch

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// ErrLockLost is returned by CheckpointStore.Save and SaveTx (and so by
// Sink.WriteCheckpointed), and by the release function TryLock returned,
// when the run lock this store took with TryLock is no longer held: the
// PostgreSQL session holding the advisory lock ended, or the SQLite lease
// expired and another runner took it. Nothing is saved; the runner must
// stop. Use errors.Is to test for it.
var ErrLockLost = errors.New("run lock lost")

// configErr is this package's *batchenrich.ConfigError about field, with
// its cause if any. A constructor names the configuration struct in front
// of the field (inConfig) before it returns the error.
func configErr(field, reason string, err error) error {
	return &batchenrich.ConfigError{Package: "sqlbatch", Field: field, Reason: reason, Err: err}
}

// ownConfigErr returns the *batchenrich.ConfigError of this package in
// err's chain, or nil.
func ownConfigErr(err error) *batchenrich.ConfigError {
	var ce *batchenrich.ConfigError
	if errors.As(err, &ce) && ce.Package == "sqlbatch" {
		return ce
	}
	return nil
}

// splitField splits a field name into the configuration struct it names
// first, if any ("SinkConfig" of "SinkConfig.Key"), and the rest.
func splitField(name string) (config, field string) {
	if i := strings.IndexByte(name, '.'); i > 0 && strings.HasSuffix(name[:i], "Config") {
		return name[:i], name[i+1:]
	}
	return "", name
}

// inConfig names the configuration struct in front of the field of this
// package's *batchenrich.ConfigError in err, unless a struct is named
// already or the field is the db argument.
func inConfig(config string, err error) error {
	if ce := ownConfigErr(err); ce != nil {
		if c, f := splitField(ce.Field); c == "" && f != "db" {
			ce.Field = config + "." + f
		}
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
