package sqlbatch_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// wantConfigErr fails unless err is sqlbatch's *batchenrich.ConfigError for
// config.field (field alone when config is "") whose text contains each of
// parts.
func wantConfigErr(t *testing.T, err error, config, field string, parts ...string) {
	t.Helper()
	if config != "" {
		field = config + "." + field
	}
	var ce *batchenrich.ConfigError
	if !errors.As(err, &ce) || ce.Package != "sqlbatch" || ce.Field != field || !errors.Is(err, batchenrich.ErrInvalidConfig) ||
		!strings.HasPrefix(err.Error(), "sqlbatch: invalid "+field+": ") {
		t.Fatalf("err = %v, want a ConfigError for %s", err, field)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("err = %q, want it to say %q", err, p)
		}
	}
	t.Logf("%s", err)
}

func countRows(t *testing.T, db *sqlx.DB, table string) int {
	t.Helper()
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM `+table); err != nil {
		t.Fatal(err)
	}
	return n
}

// A Sink whose Key no unique index covers is refused before its first
// write; before, PostgreSQL's direct COPY wrote a batch twice as
// duplicate rows, and a Key matching no index failed only on a rewrite.
func TestSinkKeyNotUnique(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		mustExec(t, db, ddl(k, `CREATE TABLE nokey (
			execution_id TEXT NOT NULL, traveler_id BIGINT NOT NULL, batch_number INTEGER NOT NULL,
			payload JSONB, is_valid BOOLEAN NOT NULL, validation_error TEXT, processed_at TIMESTAMPTZ NOT NULL)`))
		mustExec(t, db, `CREATE UNIQUE INDEX nokey_partial ON nokey (execution_id, traveler_id) WHERE is_valid`)
		mustExec(t, db, `CREATE UNIQUE INDEX nokey_id ON nokey (traveler_id)`)
		for _, key := range [][]string{{"execution_id", "traveler_id"}, {"execution_id"}} {
			s := sinkOn(t, db, "nokey", key)
			for range 2 {
				err := s.Write(ctx, batchOf(1, "e1", 1, 2, 3))
				wantConfigErr(t, err, "SinkConfig", "Key", `no primary key or unique index of table "nokey" covers exactly (`+strings.Join(key, ", ")+")", "(traveler_id)", "CREATE UNIQUE INDEX ON")
			}
			if n := countRows(t, db, "nokey"); n != 0 {
				t.Fatalf("%d rows written", n)
			}
		}
		// Only a partial unique index: the error names it rather than
		// saying there is no unique index.
		mustExec(t, db, ddl(k, `CREATE TABLE partialkey (execution_id TEXT NOT NULL, traveler_id BIGINT NOT NULL,
			batch_number INTEGER NOT NULL, payload JSONB, is_valid BOOLEAN NOT NULL, validation_error TEXT, processed_at TIMESTAMPTZ NOT NULL)`))
		mustExec(t, db, `CREATE UNIQUE INDEX partialkey_valid ON partialkey (execution_id, traveler_id) WHERE is_valid`)
		err := sinkOn(t, db, "partialkey", []string{"execution_id", "traveler_id"}).Check(ctx)
		wantConfigErr(t, err, "SinkConfig", "Key", `(it has no primary key or unique index ON CONFLICT can use; unique index "partialkey_valid" is partial, which ON CONFLICT cannot use)`)
		// A key in another order than the index's is fine.
		s := sinkOn(t, db, "traveler_batch_results", []string{"traveler_id", "execution_id"})
		createResults(t, k, db)
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.Write(ctx, batchOf(1, "e1", 1, 2, 3)); err != nil {
				t.Fatal(err)
			}
		}
		if n := countRows(t, db, "traveler_batch_results"); n != 3 {
			t.Fatalf("%d rows, want 3", n)
		}
	})
}

// sinkOn is resultsSink with another table and key.
func sinkOn(t *testing.T, db *sqlx.DB, table string, key []string) *sqlbatch.Sink[Traveler, Enriched] {
	t.Helper()
	s, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
		Table:       table,
		Key:         key,
		Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "validation_error", "processed_at"},
		BatchColumn: "batch_number",
		Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
			return []any{r.Item.ExecutionID, r.Item.TravelerID, sqlbatch.JSON[Enriched]{V: r.Value}, r.Err == nil, nil, fixedTime}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every name a Sink writes is checked against the catalog.
func TestSinkUnknownNames(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		createResults(t, k, db)
		row := func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
			return []any{r.Item.ExecutionID, r.Item.TravelerID, true, fixedTime}, nil
		}
		good := sqlbatch.SinkConfig[Traveler, Enriched]{
			Table: "traveler_batch_results", Key: []string{"execution_id", "traveler_id"},
			Columns: []string{"execution_id", "traveler_id", "is_valid", "processed_at"}, BatchColumn: "batch_number", Row: row,
		}
		for _, tc := range []struct {
			edit  func(c *sqlbatch.SinkConfig[Traveler, Enriched])
			field string
			says  string
		}{
			{func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.Table = "traveler_batch_resluts" }, "Table", `no such table "traveler_batch_resluts"`},
			{func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.Columns[2] = "is_vaild" }, "Columns[2]", `table "traveler_batch_results" has no column "is_vaild" (it has execution_id, traveler_id, batch_number,`},
			{func(c *sqlbatch.SinkConfig[Traveler, Enriched]) {
				c.Columns[1] = "Traveler_ID"
				c.Key[1] = "Traveler_ID"
			}, "Columns[1]", `no column "Traveler_ID"`},
			{func(c *sqlbatch.SinkConfig[Traveler, Enriched]) { c.BatchColumn = "batch_no" }, "BatchColumn", `no column "batch_no"`},
			{func(c *sqlbatch.SinkConfig[Traveler, Enriched]) {
				c.Failures = &sqlbatch.FailureTable[Traveler, Enriched]{Table: "failures", Key: []string{"a"}, Columns: []string{"a"}, Row: row}
			}, "Failures.Table", `no such table "failures"`},
		} {
			cfg := good
			cfg.Key, cfg.Columns = append([]string(nil), good.Key...), append([]string(nil), good.Columns...)
			tc.edit(&cfg)
			s, err := sqlbatch.NewSink(db, cfg)
			if err != nil {
				t.Fatal(err)
			}
			wantConfigErr(t, s.Check(ctx), "SinkConfig", tc.field, tc.says)
			wantConfigErr(t, s.Write(ctx, batchOf(1, "e1", 1)), "SinkConfig", tc.field, tc.says)
		}
		if n := countRows(t, db, "traveler_batch_results"); n != 0 {
			t.Fatalf("%d rows written", n)
		}
	})
}

// A Runner checks its Sink before it enriches anything.
func TestRunnerChecksFirst(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 10)
		mustExec(t, db, ddl(k, `CREATE TABLE nokey (
			execution_id TEXT NOT NULL, traveler_id BIGINT NOT NULL, batch_number INTEGER NOT NULL,
			payload JSONB, is_valid BOOLEAN NOT NULL, validation_error TEXT, processed_at TIMESTAMPTZ NOT NULL)`))
		var calls atomic.Int64
		enr := batchenrich.EnricherFunc[Traveler, Enriched](func(ctx context.Context, tr Traveler) (Enriched, error) {
			calls.Add(1)
			return enrich(ctx, tr)
		})
		r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), enr, sinkOn(t, db, "nokey", []string{"execution_id", "traveler_id"}),
			batchenrich.Options{BatchSize: 5})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Run(context.Background())
		wantConfigErr(t, err, "SinkConfig", "Key", "no primary key or unique index")
		if calls.Load() != 0 {
			t.Fatalf("%d items enriched before the error", calls.Load())
		}
	})
}

// Names a Source reads are checked against the catalog: SQLite reads a
// double-quoted name that is no column as a string literal, which made
// a misspelt Filter match nothing (or everything), and a Key naming no
// column re-read the first window forever.
func TestSourceUnknownNames(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		createSource(t, db, 10)
		type Ghostly struct {
			Traveler
			Ghost string `db:"ghost"`
		}
		type Partial struct {
			ExecutionID string `db:"execution_id"`
			TravelerID  int64  `db:"traveler_id"`
		}
		read := func(src batchenrich.Source[Ghostly]) error {
			_, _, err := src.Read(ctx, "", 5)
			return err
		}
		for _, tc := range []struct {
			cfg   sqlbatch.SourceConfig
			field string
			says  string
		}{
			{sqlbatch.SourceConfig{Table: "traveler_batch_sauce", Key: []string{"traveler_id"}}, "Table", `no such table "traveler_batch_sauce"`},
			{sqlbatch.SourceConfig{Table: "traveler_batch_source", Key: []string{"traveler_id"}, Columns: []string{"traveler_id"},
				Filter: map[string]any{"executon_id": "e1"}}, `Filter["executon_id"]`, `table "traveler_batch_source" has no column "executon_id" (it has execution_id, traveler_id, name)`},
			{sqlbatch.SourceConfig{Table: "traveler_batch_source", Key: []string{"traveler_id"}, Columns: []string{"traveler_id"},
				Filter: map[string]any{"execution": "execution"}}, `Filter["execution"]`, `no column "execution"`},
			{sqlbatch.SourceConfig{Table: "traveler_batch_source", Key: []string{"ghost"}, Columns: []string{"ghost"}}, "Key[0]", `no column "ghost"`},
			{sqlbatch.SourceConfig{Table: "traveler_batch_source", Key: []string{"traveler_id"}, Columns: []string{"traveler_id", "ghost"}}, "Columns[1]", `no column "ghost"`},
			{sqlbatch.SourceConfig{Table: "traveler_batch_source", Key: []string{"traveler_id"}}, "Columns", `field Ghost of sqlbatch_test.Ghostly reads column "ghost", which table "traveler_batch_source" does not have`},
			{sqlbatch.SourceConfig{Query: `SELECT traveler_id, name FROM traveler_batch_source WHERE execution_id = ?`, Args: []any{"e1"},
				Key: []string{"traveler_id"}, Columns: []string{"traveler_id"}, Filter: map[string]any{"naem": "x"}}, `Filter["naem"]`, `Query has no column "naem" (it has traveler_id, name)`},
		} {
			src, err := sqlbatch.NewSource[Ghostly](db, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			wantConfigErr(t, src.Check(ctx), "SourceConfig", tc.field, tc.says)
			wantConfigErr(t, read(src), "SourceConfig", tc.field, tc.says)
		}
		// A column with no field.
		src, err := sqlbatch.NewSource[Partial](db, sqlbatch.SourceConfig{Table: "traveler_batch_source", Key: []string{"traveler_id"}})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = src.Read(ctx, "", 5)
		wantConfigErr(t, err, "SourceConfig", "Columns", `table "traveler_batch_source" has column "name", which has no field in sqlbatch_test.Partial`)
	})
}

// A replay's Source checks the failure table's names too: SQLite would
// read a misspelt class column as a string literal.
func TestFailedSourceUnknownNames(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		createSource(t, db, 10)
		createReplayResults(t, k, db)
		good := sqlbatch.FailedSourceConfig{
			Source: replaySourceConfig, Table: "traveler_batch_results",
			On: map[string]string{"execution_id": "execution_id", "traveler_id": "traveler_id"}, ClassColumn: "failure_class",
		}
		for _, tc := range []struct {
			edit  func(c *sqlbatch.FailedSourceConfig)
			field string
			says  string
		}{
			{func(c *sqlbatch.FailedSourceConfig) { c.Table = "traveler_batch_resluts" }, "Table", `no such table "traveler_batch_resluts"`},
			{func(c *sqlbatch.FailedSourceConfig) { c.ClassColumn = "failure_clas" }, "ClassColumn", `table "traveler_batch_results" has no column "failure_clas"`},
			{func(c *sqlbatch.FailedSourceConfig) { c.On = map[string]string{"traveler_id": "traveler"} }, `On["traveler_id"]`, `has no column "traveler"`},
		} {
			cfg := good
			tc.edit(&cfg)
			src, err := sqlbatch.NewFailedSource[Traveler](db, cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = src.Read(ctx, "", 5)
			wantConfigErr(t, err, "FailedSourceConfig", tc.field, tc.says)
		}
		src, err := sqlbatch.NewFailedSource[Traveler](db, good)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Check(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
