package sqlbatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"
)

// pgx, through database/sql (github.com/jackc/pgx/v5/stdlib, driver name
// "pgx"), is PostgreSQL like lib/pq, except for COPY: pgx does it with a
// method of its own connection, not with a prepared statement. So on pgx
// a Sink begins each batch's transaction on a *sql.Conn it keeps, and
// COPYs through that connection's *pgx.Conn (sql.Conn.Raw) within the
// transaction. In a transaction the caller began (WriteTx), the Sink has
// no such connection and writes with multi-row INSERT … ON CONFLICT
// statements instead.
//
// This file is the only one importing pgx; the package does not import
// pgx's stdlib (it registers no driver). For a program using lib/pq only,
// the cost is pgx's packages linked in (measured in doc.go) and its
// modules in the build list.

// pgxConner is what pgx's stdlib driver connection offers.
type pgxConner interface{ Conn() *pgx.Conn }

// begin starts a transaction for one batch and returns a function to call
// after it ended. On pgx it keeps the transaction's connection for COPY.
func (s *Sink[T, R]) begin(ctx context.Context) (*sqlx.Tx, func(), error) {
	if !s.d.PGX {
		tx, err := s.db.BeginTxx(ctx, nil)
		return tx, func() {}, err
	}
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	s.pgxConns.Store(tx, conn)
	return tx, func() {
		s.pgxConns.Delete(tx)
		conn.Close()
	}, nil
}

// canCopy reports whether the Sink can COPY within tx on pgx.
func (s *Sink[T, R]) canCopy(tx *sqlx.Tx) bool {
	_, ok := s.pgxConns.Load(tx)
	return ok
}

// pgxCopy COPYs rows into the table ident (schema and name, unquoted) on
// the pgx connection of tx.
func (s *Sink[T, R]) pgxCopy(ctx context.Context, tx *sqlx.Tx, ident, cols []string, rows [][]any) error {
	c, ok := s.pgxConns.Load(tx)
	if !ok {
		return errors.New("pgx: COPY outside a transaction the Sink began")
	}
	return c.(*sqlx.Conn).Raw(func(dc any) error {
		pc, ok := dc.(pgxConner)
		if !ok {
			return fmt.Errorf("pgx: driver connection %T has no pgx connection", dc)
		}
		_, err := pc.Conn().CopyFrom(ctx, pgx.Identifier(ident), cols, pgx.CopyFromRows(rows))
		return err
	})
}
