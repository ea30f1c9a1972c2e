package harness

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/batchenrich/batchenrich/bench/internal/job"
	"github.com/lib/pq"
)

// DefaultDatabaseURL is used when neither the flag nor
// BATCHENRICH_BENCH_DATABASE_URL is set.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/batchenrich_bench?sslmode=disable"

// DB is a throw-away schema in a PostgreSQL database, holding the job's
// tables.
type DB struct {
	// URL reaches the schema: the database URL with search_path set.
	URL    string
	Schema string
	db     *sql.DB
}

// OpenDB connects to rawURL, creating its database if it is missing, and
// creates a fresh schema with the job's tables.
func OpenDB(ctx context.Context, rawURL string) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("harness: database URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("harness: database URL: scheme %q, want postgres", u.Scheme)
	}
	if err := ensureDatabase(ctx, u); err != nil {
		return nil, err
	}
	schema := "bench_" + randomHex(6)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	d := &DB{URL: u.String(), Schema: schema}

	// Create the schema through a pool that does not depend on it.
	admin, err := sql.Open("postgres", rawURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+pq.QuoteIdentifier(schema)); err != nil {
		return nil, fmt.Errorf("harness: create schema: %w", err)
	}
	d.db, err = sql.Open("postgres", d.URL)
	if err != nil {
		return nil, err
	}
	d.db.SetMaxOpenConns(2)
	if _, err := d.db.ExecContext(ctx, job.Schema); err != nil {
		_ = d.Close(ctx)
		return nil, fmt.Errorf("harness: create tables: %w", err)
	}
	return d, nil
}

// ensureDatabase creates u's database if connecting to it fails with
// "database does not exist".
func ensureDatabase(ctx context.Context, u *url.URL) error {
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		return err
	}
	err = db.PingContext(ctx)
	db.Close()
	var pqErr *pq.Error
	if err == nil || !errors.As(err, &pqErr) || pqErr.Code != "3D000" {
		if err != nil {
			return fmt.Errorf("harness: connect to %s: %w", redact(u), err)
		}
		return nil
	}
	name := strings.TrimPrefix(u.Path, "/")
	adminURL := *u
	adminURL.Path = "/postgres"
	admin, err := sql.Open("postgres", adminURL.String())
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		var e *pq.Error
		if !errors.As(err, &e) || e.Code != "42P04" { // duplicate_database: created meanwhile
			return fmt.Errorf("harness: create database %q: %w", name, err)
		}
	}
	return nil
}

// Close drops the schema.
func (d *DB) Close(ctx context.Context) error {
	_, err := d.db.ExecContext(ctx, "DROP SCHEMA "+pq.QuoteIdentifier(d.Schema)+" CASCADE")
	return errors.Join(err, d.db.Close())
}

// Reset empties both tables and seeds rows travelers for exec, then
// analyzes the source so every contender reads with fresh statistics.
func (d *DB) Reset(ctx context.Context, exec string, rows int) error {
	if _, err := d.db.ExecContext(ctx, "TRUNCATE traveler_batch_source, traveler_batch_results"); err != nil {
		return fmt.Errorf("harness: truncate: %w", err)
	}
	if _, err := d.db.ExecContext(ctx, `INSERT INTO traveler_batch_source (execution_id, traveler_id, traveler_name)
		SELECT $1, g, 'Traveler ' || g FROM generate_series(1, $2::int) AS g`, exec, rows); err != nil {
		return fmt.Errorf("harness: seed: %w", err)
	}
	if _, err := d.db.ExecContext(ctx, "ANALYZE traveler_batch_source"); err != nil {
		return fmt.Errorf("harness: analyze: %w", err)
	}
	return nil
}

// Verify checks that the results of cfg's run are complete and right: one
// row per expected traveler, no other, each valid, with the right batch
// number, hash and echoed payload.
func (d *DB) Verify(ctx context.Context, cfg Config) error {
	var total, distinct, valid, ok200, badBatch, badHash, badName, badArgs int
	var minID, maxID sql.NullInt64
	err := d.db.QueryRowContext(ctx, `
SELECT count(*), count(DISTINCT traveler_id),
	count(*) FILTER (WHERE is_valid AND validation_error IS NULL),
	count(*) FILTER (WHERE profile_status = 200),
	min(traveler_id), max(traveler_id),
	count(*) FILTER (WHERE partition_index IS NULL AND batch_number <> (traveler_id - 1) / $2 + 1),
	count(*) FILTER (WHERE profile_hash <> substr(encode(sha256(convert_to(traveler_id || ':' || upper(btrim(traveler_name)), 'UTF8')), 'hex'), 1, 20)),
	count(*) FILTER (WHERE normalized_name <> upper(btrim(traveler_name)) OR traveler_name <> 'Traveler ' || traveler_id),
	count(*) FILTER (WHERE NOT (profile_payload -> 'args' ? 'traveler_id'))
FROM traveler_batch_results WHERE execution_id = $1`, cfg.ExecutionID, cfg.BatchSize).
		Scan(&total, &distinct, &valid, &ok200, &minID, &maxID, &badBatch, &badHash, &badName, &badArgs)
	if err != nil {
		return fmt.Errorf("harness: verify: %w", err)
	}
	want := cfg.Expected()
	var errs []error
	check := func(cond bool, format string, args ...any) {
		if !cond {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(total == want, "stored %d rows, want %d", total, want)
	check(distinct == total, "%d duplicate traveler ids", total-distinct)
	check(want == 0 || minID.Int64 == 1 && maxID.Int64 == int64(want), "traveler ids span %d..%d, want 1..%d", minID.Int64, maxID.Int64, want)
	check(valid == total, "%d rows not valid", total-valid)
	check(ok200 == total, "%d rows without status 200", total-ok200)
	check(badBatch == 0, "%d rows with a wrong batch_number", badBatch)
	if err := d.verifyPartitions(ctx, cfg); err != nil {
		errs = append(errs, err)
	}
	check(badHash == 0, "%d rows with a wrong profile_hash", badHash)
	check(badName == 0, "%d rows with a wrong name", badName)
	check(badArgs == 0, "%d payloads without args.traveler_id", badArgs)
	if len(errs) > 0 {
		return fmt.Errorf("harness: verify: %w", errors.Join(errs...))
	}
	return nil
}

// NewExecutionID returns a fresh execution id.
func NewExecutionID() string { return "bench-" + randomHex(8) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redact hides a password in u.
func redact(u *url.URL) string { return u.Redacted() }

// verifyPartitions checks the rows a partitioned contender stored (those
// with a partition_index): within each partition, batches numbered 1..n
// in traveler_id order, each of BatchSize rows but the last.
func (d *DB) verifyPartitions(ctx context.Context, cfg Config) error {
	rows, err := d.db.QueryContext(ctx, `SELECT partition_index, batch_number, count(*), min(traveler_id), max(traveler_id)
		FROM traveler_batch_results WHERE execution_id = $1 AND partition_index IS NOT NULL
		GROUP BY 1, 2 ORDER BY 1, 2`, cfg.ExecutionID)
	if err != nil {
		return fmt.Errorf("harness: verify partitions: %w", err)
	}
	defer rows.Close()
	type batch struct{ part, num, n, lo, hi int }
	var bs []batch
	for rows.Next() {
		var b batch
		if err := rows.Scan(&b.part, &b.num, &b.n, &b.lo, &b.hi); err != nil {
			return err
		}
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, b := range bs {
		first := i == 0 || bs[i-1].part != b.part
		last := i == len(bs)-1 || bs[i+1].part != b.part
		switch {
		case first && b.num != 1, !first && (b.num != bs[i-1].num+1 || b.lo <= bs[i-1].hi):
			return fmt.Errorf("partition %d: batch %d out of order", b.part, b.num)
		case b.n > cfg.BatchSize || (!last && b.n != cfg.BatchSize):
			return fmt.Errorf("partition %d: batch %d has %d rows", b.part, b.num, b.n)
		}
	}
	return nil
}
