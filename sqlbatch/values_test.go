package sqlbatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// A []byte for a text or JSON column is stored as the text it holds, in
// every write path; before, PostgreSQL stored it as bytea text ("\x68…")
// and SQLite as a BLOB. Bytes that are not UTF-8 are refused, naming the
// column; bytea and BLOB columns still take binary data.
func TestBytesForTextColumns(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		blob := "BYTEA"
		if k == testdb.SQLite {
			blob = "BLOB"
		}
		for _, mode := range pgModes(k) {
			table := "bytes_" + mode
			mustExec(t, db, ddl(k, `CREATE TABLE `+table+` (id BIGINT PRIMARY KEY, txt TEXT, vc VARCHAR(20), doc JSONB, bin `+blob+`)`))
			var bad bool
			s, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
				Table: table, Key: []string{"id"}, Columns: []string{"id", "txt", "vc", "doc", "bin"},
				Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
					txt := []byte("héllo")
					if bad {
						txt = []byte{0xff, 0xfe}
					}
					return []any{r.Item.TravelerID, txt, []byte("short"), json.RawMessage(`{"a": 1}`), []byte{0, 1, 0xff}}, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			setMode(s, mode)
			for range 2 { // a fresh write, then a rewrite
				if err := s.Write(ctx, batchOf(1, "e1", 1, 2)); err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
			}
			var got struct {
				Txt string `db:"txt"`
				VC  string `db:"vc"`
				Doc string `db:"doc"`
				Bin []byte `db:"bin"`
				Typ string `db:"typ"`
			}
			typ := `pg_typeof(txt)::text`
			if k == testdb.SQLite {
				typ = `typeof(txt) || ',' || typeof(doc)`
			}
			if err := db.Get(&got, `SELECT txt, vc, doc, bin, `+typ+` AS typ FROM `+table+` WHERE id = 2`); err != nil {
				t.Fatal(err)
			}
			var doc map[string]int
			if got.Txt != "héllo" || got.VC != "short" || json.Unmarshal([]byte(got.Doc), &doc) != nil || doc["a"] != 1 || !bytes.Equal(got.Bin, []byte{0, 1, 0xff}) {
				t.Fatalf("%s: stored %+v", mode, got)
			}
			if k == testdb.SQLite && got.Typ != "text,text" {
				t.Fatalf("stored as %s, want text", got.Typ)
			}
			bad = true
			err = s.Write(ctx, batchOf(2, "e1", 3))
			if err == nil || !strings.Contains(err.Error(), `column "txt" of `+table+` is text, and the []byte given is not UTF-8`) {
				t.Fatalf("%s: err = %v", mode, err)
			}
			t.Logf("%v", err)
		}
	})
}

// A '?' in a quoted name is part of the name, not a placeholder: on
// PostgreSQL, "t?x" used to become "t$1x".
func TestQuestionMarkNames(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		mustExec(t, db, `CREATE TABLE "src?x" ("id?" BIGINT PRIMARY KEY, "e?" TEXT NOT NULL)`)
		mustExec(t, db, `INSERT INTO "src?x" ("id?", "e?") VALUES (1, 'e1'), (2, 'e1'), (3, 'e1'), (4, 'e1'), (5, 'e1')`)
		type row struct {
			ID int64  `db:"id?"`
			E  string `db:"e?"`
		}
		src, err := sqlbatch.NewSource[row](db, sqlbatch.SourceConfig{Table: "src?x", Key: []string{"id?"}, Filter: map[string]any{"e?": "e1"}})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := readAll(t, src, 2)
		if len(got) != 5 {
			t.Fatalf("read %v", got)
		}
		qsrc, err := sqlbatch.NewSource[row](db, sqlbatch.SourceConfig{Query: `SELECT "id?", "e?" FROM "src?x" WHERE "e?" = ? AND '?' = '?'`, Args: []any{"e1"}, Key: []string{"id?"}})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := readAll(t, qsrc, 2); len(got) != 5 {
			t.Fatalf("query read %v", got)
		}

		mustExec(t, db, `CREATE TABLE "dst?x" ("id?" BIGINT PRIMARY KEY, "v?" TEXT, "b?" INTEGER)`)
		store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{Table: "cp?x"})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CreateTable(ctx); err != nil {
			t.Fatal(err)
		}
		unlock, ok, err := store.TryLock(ctx, "run?")
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		defer unlock()
		for _, mode := range pgModes(k) {
			sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
				Table: "dst?x", Key: []string{"id?"}, Columns: []string{"id?", "v?"}, BatchColumn: "b?",
				Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
					return []any{r.Item.TravelerID, "v?" + mode}, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			setMode(sink, mode)
			for n := 1; n <= 2; n++ { // a write, then a rewrite
				cp := batchenrich.Checkpoint{RunKey: "run?", Batch: n, Cursor: "?"}
				if err := sink.WriteCheckpointed(ctx, batchOf(n, "e1", 1, 2, 3), store, cp); err != nil {
					t.Fatalf("%s: batch %d: %v", mode, n, err)
				}
			}
			var v string
			if err := db.Get(&v, `SELECT "v?" FROM "dst?x" WHERE "id?" = 3`); err != nil || v != "v?"+mode {
				t.Fatalf("%s: v = %q, %v", mode, v, err)
			}
		}
		cp, err := store.Load(ctx, "run?")
		if err != nil || cp.Batch != 2 || cp.Cursor != "?" {
			t.Fatalf("checkpoint %+v, %v", cp, err)
		}
	})
}

// A replay's batch converts []byte for text columns too.
func TestBytesForTextColumnsInReplay(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		mustExec(t, db, `CREATE TABLE replayed (id BIGINT PRIMARY KEY, txt TEXT, b INTEGER)`)
		s, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
			Table: "replayed", Key: []string{"id"}, Columns: []string{"id", "txt"}, BatchColumn: "b",
			Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
				return []any{r.Item.TravelerID, []byte("héllo")}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		// 200 rows of 3 values: PostgreSQL stages them with COPY.
		if err := s.Write(ctx, batchOf(1, "e1", ids(1, 200)...)); err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, `UPDATE replayed SET txt = NULL`)
		b := batchOf(1, "e1", ids(1, 200)...)
		b.Replay = 1
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		typ := `'text'`
		if k == testdb.SQLite {
			typ = `typeof(txt)`
		}
		var got struct {
			Txt string `db:"txt"`
			Typ string `db:"typ"`
		}
		if err := db.Get(&got, `SELECT txt, `+typ+` AS typ FROM replayed WHERE id = 7`); err != nil || got.Txt != "héllo" || got.Typ != "text" {
			t.Fatalf("replayed row: %+v, %v", got, err)
		}
	})
}
