package sqlbatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// batchOf builds batch num from travelers ids, failing ids divisible by 10.
func batchOf(num int, exec string, ids ...int64) batchenrich.Batch[Traveler, Enriched] {
	b := batchenrich.Batch[Traveler, Enriched]{Number: num}
	for i, id := range ids {
		tr := Traveler{ExecutionID: exec, TravelerID: id, Name: fmt.Sprintf("traveler %d", id)}
		v, err := enrich(context.Background(), tr)
		if err != nil {
			err = &batchenrich.ItemError{Batch: num, Index: i, Key: tr.Key(), Err: err}
		}
		b.Results = append(b.Results, batchenrich.Result[Traveler, Enriched]{Index: i, Item: tr, Value: v, Err: err})
	}
	return b
}

func ids(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// pgModes runs f with each PostgreSQL bulk strategy (SQLite has one).
func pgModes(k testdb.Kind) []string {
	if k.Postgres() {
		return []string{"values", "copy", "auto"} // auto: direct COPY first
	}
	return []string{"values"}
}

func setMode(s *sqlbatch.Sink[Traveler, Enriched], mode string) {
	switch mode {
	case "copy":
		s.UseCopy()
	case "values":
		s.UseValues()
	}
}

func TestSinkWritesIdempotently(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		for _, mode := range pgModes(k) {
			t.Run(mode, func(t *testing.T) {
				mustExec(t, db, `DROP TABLE IF EXISTS traveler_batch_results`)
				createResults(t, k, db)
				ctx := context.Background()
				s := resultsSink(t, db)
				setMode(s, mode)
				s.SetChunkRows(7) // several statements per batch
				b := batchOf(1, "e1", ids(1, 25)...)
				for i := range 2 {
					if err := s.Write(ctx, b); err != nil {
						t.Fatal(err)
					}
					// The rewrite meets existing keys: the direct COPY
					// gives way to the upsert.
					if mode == "auto" && s.Conflicted() != (i == 1) {
						t.Fatalf("write %d: conflicted = %v", i+1, s.Conflicted())
					}
				}
				rows := readResults(t, db)
				if len(rows) != 25 {
					t.Fatalf("%d rows, want 25", len(rows))
				}
				for i, r := range rows {
					id := int64(i + 1)
					if r.TravelerID != id || r.BatchNumber != 1 || r.ExecutionID != "e1" || !r.ProcessedAt.Equal(fixedTime) {
						t.Fatalf("row %d = %+v", i, r)
					}
					if id%10 == 0 {
						if r.IsValid || r.ValidationError == nil || !strings.Contains(*r.ValidationError, "no passport") || r.Payload != nil {
							t.Errorf("failed row %d = %+v", i, r)
						}
						continue
					}
					if !r.IsValid || r.ValidationError != nil || r.Payload == nil || r.Payload.V.Score != int(id)*2 || r.Payload.V.Tags["name"] != fmt.Sprintf("traveler %d", id) {
						t.Errorf("row %d = %+v", i, r)
					}
				}
				// A later batch overwrites rows with the same key.
				if err := s.Write(ctx, batchOf(2, "e1", 24, 25, 26, 26)); err != nil {
					t.Fatal(err)
				}
				rows = readResults(t, db)
				if len(rows) != 26 || rows[23].BatchNumber != 2 || rows[25].BatchNumber != 2 || rows[0].BatchNumber != 1 {
					t.Fatalf("after batch 2: %d rows, %+v", len(rows), rows[23:])
				}
			})
		}
	})
}

func TestSinkFailuresTable(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createResults(t, k, db)
		mustExec(t, db, ddl(k, `CREATE TABLE traveler_failures (
			execution_id TEXT NOT NULL, traveler_id BIGINT NOT NULL, batch INTEGER NOT NULL, reason TEXT NOT NULL,
			PRIMARY KEY (execution_id, traveler_id))`))
		s, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
			Table:       "traveler_batch_results",
			Key:         []string{"execution_id", "traveler_id"},
			Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "processed_at"},
			BatchColumn: "batch_number",
			Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
				if r.Err != nil {
					return nil, errors.New("Row called with a failed result")
				}
				return []any{r.Item.ExecutionID, r.Item.TravelerID, sqlbatch.JSON[Enriched]{V: r.Value}, true, fixedTime}, nil
			},
			Failures: &sqlbatch.FailureTable[Traveler, Enriched]{
				Table:       "traveler_failures",
				Key:         []string{"execution_id", "traveler_id"},
				Columns:     []string{"execution_id", "traveler_id", "reason"},
				BatchColumn: "batch",
				Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
					return []any{r.Item.ExecutionID, r.Item.TravelerID, r.Err.Error()}, nil
				},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(context.Background(), batchOf(3, "e1", ids(1, 30)...)); err != nil {
			t.Fatal(err)
		}
		var nres, nfail, fbatch int
		if err := db.Get(&nres, `SELECT count(*) FROM traveler_batch_results`); err != nil {
			t.Fatal(err)
		}
		if err := db.Get(&nfail, `SELECT count(*) FROM traveler_failures`); err != nil {
			t.Fatal(err)
		}
		if err := db.Get(&fbatch, `SELECT min(batch) FROM traveler_failures`); err != nil {
			t.Fatal(err)
		}
		if nres != 27 || nfail != 3 || fbatch != 3 {
			t.Fatalf("results %d, failures %d (batch %d); want 27, 3 (3)", nres, nfail, fbatch)
		}
	})
}

func TestSinkRowErrorsWriteNothing(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createResults(t, k, db)
		ctx := context.Background()
		bad := errors.New("cannot map")
		for name, row := range map[string]sqlbatch.RowFunc[Traveler, Enriched]{
			"error":     func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) { return nil, bad },
			"short row": func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) { return []any{1}, nil },
			"bad values": func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
				return []any{"e1", r.Item.TravelerID, nil, true, "x", "not a time"}, nil
			},
		} {
			s, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
				Table: "traveler_batch_results", Key: []string{"execution_id", "traveler_id"},
				Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "validation_error", "processed_at"},
				BatchColumn: "batch_number", Row: row,
			})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Write(ctx, batchOf(4, "e1", ids(1, 5)...))
			if k == testdb.SQLite && name == "bad values" {
				// SQLite stores any value in any column.
				mustExec(t, db, `DELETE FROM traveler_batch_results`)
				continue
			}
			if err == nil || !strings.Contains(err.Error(), "traveler_batch_results") || strings.Contains(err.Error(), "sqlbatch:") {
				t.Errorf("%s: err = %v, want one naming the table, without a prefix (the Runner adds it)", name, err)
			}
			if name == "error" && !errors.Is(err, bad) {
				t.Errorf("%s: err = %v does not wrap the RowFunc's error", name, err)
			}
			if n := len(readResults(t, db)); n != 0 {
				t.Errorf("%s: %d rows written", name, n)
			}
		}
	})
}

// A connection lost or a context cancelled in the middle of a batch rolls
// the whole batch back, and the error names the batch.
func TestSinkInterruptedWriteLeavesNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createResults(t, k, db)
		interrupts := map[string]func(cancel context.CancelFunc) func(ctx context.Context, tx *sqlx.Tx) error{
			"cancel": func(cancel context.CancelFunc) func(ctx context.Context, tx *sqlx.Tx) error {
				return func(ctx context.Context, tx *sqlx.Tx) error { cancel(); return nil }
			},
		}
		if k.Postgres() {
			interrupts["terminate"] = func(context.CancelFunc) func(ctx context.Context, tx *sqlx.Tx) error {
				return func(ctx context.Context, tx *sqlx.Tx) error {
					var pid int
					if err := tx.GetContext(ctx, &pid, `SELECT pg_backend_pid()`); err != nil {
						return err
					}
					// From another connection: the server kills the
					// session in the middle of the transaction.
					_, err := db.ExecContext(context.Background(), `SELECT pg_terminate_backend($1)`, pid)
					return err
				}
			}
		}
		for name, interrupt := range interrupts {
			for _, mode := range pgModes(k) {
				t.Run(name+"/"+mode, func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					s := resultsSink(t, db)
					setMode(s, mode)
					s.SetChunkRows(10)
					var calls int
					hook := interrupt(cancel)
					s.SetAfterStatement(func(ctx context.Context, tx *sqlx.Tx) error {
						calls++
						if calls == 1 {
							return hook(ctx, tx)
						}
						return nil
					})
					err := s.Write(ctx, batchOf(7, "e1", ids(1, 35)...))
					want, what := "traveler_batch_results: ", "naming the table"
					if mode == "auto" {
						// The direct COPY is the batch's one statement
						// in a transaction the Sink began: the
						// interruption after it reaches the commit.
						want, what = "commit: ", "from the commit"
					}
					if err == nil || !strings.HasPrefix(err.Error(), want) {
						t.Fatalf("err = %v, want one %s", err, what)
					}
					if name == "cancel" && !errors.Is(err, context.Canceled) {
						t.Errorf("err = %v, want context.Canceled", err)
					}
					if n := len(readResults(t, db)); n != 0 {
						t.Fatalf("%d rows of the interrupted batch committed", n)
					}
					// The Sink and the pool recover.
					if err := s.Write(context.Background(), batchOf(7, "e1", ids(1, 35)...)); err != nil {
						t.Fatalf("next write: %v", err)
					}
					mustExec(t, db, `DELETE FROM traveler_batch_results`)
				})
			}
		}
	})
}

func TestSinkWriteTxSharesTheTransaction(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createResults(t, k, db)
		mustExec(t, db, `CREATE TABLE audit (batch INTEGER NOT NULL)`)
		ctx := context.Background()
		s := resultsSink(t, db)
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WriteTx(ctx, tx, batchOf(1, "e1", 1, 2, 3)); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO audit (batch) VALUES (?)`), 1); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if n := len(readResults(t, db)); n != 0 {
			t.Fatalf("%d rows after rollback", n)
		}
		if err := s.WriteTx(ctx, nil, batchOf(1, "e1", 1)); err == nil {
			t.Fatal("nil tx accepted")
		}
	})
}

func TestSinkConfigErrors(t *testing.T) {
	db := testdb.SQLiteDB(t)
	row := func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) { return nil, nil }
	ok := sqlbatch.SinkConfig[Traveler, Enriched]{Table: "t", Key: []string{"a"}, Columns: []string{"a", "b"}, Row: row}
	for _, tc := range []struct {
		name  string
		edit  func(c *sqlbatch.SinkConfig[Traveler, Enriched])
		field string
	}{
		{"no table", func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.Table = "" }, "Table"},
		{"no key", func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.Key = nil }, "Key"},
		{"key not a column", func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.Key = []string{"z"} }, "Key[0]"},
		{"no columns", func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.Columns = nil }, "Columns"},
		{"duplicate column", func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.Columns = []string{"a", "a"} }, "Columns[1]"},
		{"no row", func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.Row = nil }, "Row"},
		{"batch column twice", func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.BatchColumn = "b" }, "BatchColumn"},
		{"bad batch column", func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.BatchColumn = "x\ny" }, "BatchColumn"},
		{"bad failures", func(c *sqlbatch.SinkConfig[Traveler, Enriched]) {
			c.Failures = &sqlbatch.FailureTable[Traveler, Enriched]{Table: "f", Columns: []string{"a"}, Row: row}
		}, "Failures.Key"},
	} {
		cfg := ok
		tc.edit(&cfg)
		_, err := sqlbatch.NewSink(db, cfg)
		var ce *batchenrich.ConfigError
		if !errors.As(err, &ce) || ce.Package != "sqlbatch" || ce.Field != "SinkConfig."+tc.field || !errors.Is(err, batchenrich.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want a ConfigError for %s", tc.name, err, tc.field)
		}
	}
	if _, err := sqlbatch.NewSink(db, ok); err != nil {
		t.Fatal(err)
	}
}

// Hostile names are quoted as exactly themselves: they create, fill and
// read tables of those names, and never run as SQL.
func TestHostileNames(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		mustExec(t, db, `CREATE TABLE y (id INTEGER)`)
		names := []string{`x; DROP TABLE y`, `we"ird`, `it's`, `Ünïcødé 名前`, `select`, `a--b/*c*/`}
		for i, name := range names {
			col := name + " col"
			q := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
			qc := `"` + strings.ReplaceAll(col, `"`, `""`) + `"`
			mustExec(t, db, `CREATE TABLE `+q+` (`+qc+` BIGINT PRIMARY KEY, v TEXT, b INTEGER)`)
			s, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
				Table: name, Key: []string{col}, Columns: []string{col, "v"}, BatchColumn: "b",
				Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
					return []any{r.Item.TravelerID, `'); DROP TABLE y; --`}, nil
				},
			})
			if err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			if err := s.Write(context.Background(), batchOf(i+1, "e1", 1, 2, 3)); err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			type row struct {
				ID int64 `db:"id"`
			}
			src, err := sqlbatch.NewSource[row](db, sqlbatch.SourceConfig{
				Query: `SELECT ` + qc + ` AS id FROM ` + q, Key: []string{"id"},
			})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := readAll(t, src, 2)
			if len(got) != 3 {
				t.Fatalf("%q: read %v", name, got)
			}
			var v string
			if err := db.Get(&v, `SELECT v FROM `+q+` WHERE `+qc+` = 1`); err != nil || v != `'); DROP TABLE y; --` {
				t.Fatalf("%q: v = %q, %v", name, v, err)
			}
		}
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM y`); err != nil {
			t.Fatalf("table y is gone: %v", err)
		}
		for _, bad := range []string{"", "a\x00b", "a\nb", "a\u200bb", "bidi\u202e", strings.Repeat("a", 64), "a.b.c", "\xff"} {
			_, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
				Table: bad, Key: []string{"a"}, Columns: []string{"a"},
				Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) { return nil, nil },
			})
			if !errors.Is(err, batchenrich.ErrInvalidConfig) {
				t.Errorf("table %q: err = %v, want ErrInvalidConfig", bad, err)
			}
		}
	})
}
