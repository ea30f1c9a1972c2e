package sqlbatch_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// readAll reads src to the end in windows of limit.
func readAll[T any](t *testing.T, src batchenrich.Source[T], limit int) ([]T, []batchenrich.Cursor) {
	t.Helper()
	var all []T
	var cursors []batchenrich.Cursor
	var c batchenrich.Cursor
	for range 10000 {
		items, next, err := src.Read(context.Background(), c, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) > limit {
			t.Fatalf("Read returned %d items for limit %d", len(items), limit)
		}
		all = append(all, items...)
		cursors = append(cursors, next)
		if len(items) < limit {
			return all, cursors
		}
		c = next
	}
	t.Fatal("source never ended")
	return nil, nil
}

func TestSourceReadsInKeyOrder(t *testing.T) {
	for _, paging := range []sqlbatch.Paging{sqlbatch.PageByKey, sqlbatch.PageByOffset} {
		t.Run(fmt.Sprint(paging), func(t *testing.T) {
			t.Parallel()
			forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
				createSource(t, db, 95)
				src := travelerSource(t, db, "e1", paging)
				all, _ := readAll(t, src, 10)
				if len(all) != 95 {
					t.Fatalf("read %d items, want 95", len(all))
				}
				for i, tr := range all {
					if tr.ExecutionID != "e1" || tr.TravelerID != int64(i+1) || tr.Name != fmt.Sprintf("traveler %d", i+1) {
						t.Fatalf("item %d = %+v", i, tr)
					}
				}
			})
		})
	}
}

func TestSourceCursorSurvivesRestart(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 30)
		ctx := context.Background()
		first, c, err := travelerSource(t, db, "e1", sqlbatch.PageByKey).Read(ctx, "", 10)
		if err != nil || len(first) != 10 {
			t.Fatal(len(first), err)
		}
		if c != `[10]` {
			t.Errorf("cursor = %q, want [10]", c)
		}
		// A new Source, as in a new process, continues from the cursor.
		again, _, err := travelerSource(t, db, "e1", sqlbatch.PageByKey).Read(ctx, c, 10)
		if err != nil || len(again) != 10 || again[0].TravelerID != 11 {
			t.Fatalf("resumed read = %v, %v", again, err)
		}
	})
}

// Composite keys: the row-value comparison (a, b) > (?, ?).
type pair struct {
	A string `db:"a"`
	B int64  `db:"b"`
	V string `db:"v"`
}

func TestSourceCompositeKeyAndQuery(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		mustExec(t, db, `CREATE TABLE pairs (a TEXT NOT NULL, b BIGINT NOT NULL, v TEXT, PRIMARY KEY (a, b))`)
		var want []pair
		for _, a := range []string{"x", "y", "z"} {
			for b := int64(1); b <= 7; b++ {
				mustExec(t, db, db.Rebind(`INSERT INTO pairs (a, b, v) VALUES (?, ?, ?)`), a, b, a+fmt.Sprint(b))
				if b%2 == 1 {
					want = append(want, pair{a, b, a + fmt.Sprint(b)})
				}
			}
		}
		for _, cfg := range []sqlbatch.SourceConfig{
			{Query: `SELECT a, b, v FROM pairs WHERE b % 2 = ?`, Args: []any{1}, Key: []string{"a", "b"}},
			{Table: "pairs", Key: []string{"a", "b"}, Columns: []string{"a", "b", "v"}, Filter: map[string]any{}},
		} {
			src, err := sqlbatch.NewSource[pair](db, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := readAll(t, src, 4)
			if cfg.Table != "" {
				// all rows
				if len(got) != 21 || got[7] != (pair{"y", 1, "y1"}) {
					t.Fatalf("table read: %v", got)
				}
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("query read:\n got %v\nwant %v", got, want)
			}
		}
	})
}

func TestSourceBadCursor(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 3)
		ctx := context.Background()
		src := travelerSource(t, db, "e1", sqlbatch.PageByKey)
		for _, c := range []batchenrich.Cursor{"x", "[1,2]", `["a"]`, "[1] [2]", "{}"} {
			if _, _, err := src.Read(ctx, c, 5); err == nil {
				t.Errorf("cursor %q: no error", c)
			}
		}
		off := travelerSource(t, db, "e1", sqlbatch.PageByOffset)
		for _, c := range []batchenrich.Cursor{"x", "-1", "[1]"} {
			if _, _, err := off.Read(ctx, c, 5); err == nil {
				t.Errorf("offset cursor %q: no error", c)
			}
		}
		if _, _, err := src.Read(ctx, "", 0); err == nil {
			t.Error("limit 0: no error")
		}
		items, next, err := src.Read(ctx, `[3]`, 5)
		if err != nil || len(items) != 0 || next != `[3]` {
			t.Errorf("read past the end = %v, %q, %v", items, next, err)
		}
	})
}

func TestSourceConfigErrors(t *testing.T) {
	db := testdb.SQLiteDB(t)
	for _, tc := range []struct {
		name  string
		cfg   sqlbatch.SourceConfig
		field string
	}{
		{"no table", sqlbatch.SourceConfig{Key: []string{"traveler_id"}}, "Table"},
		{"both", sqlbatch.SourceConfig{Table: "t", Query: "SELECT 1", Key: []string{"traveler_id"}}, "Query"},
		{"no key", sqlbatch.SourceConfig{Table: "t"}, "Key"},
		{"unmapped key", sqlbatch.SourceConfig{Table: "t", Key: []string{"nope"}}, "Key[0]"},
		{"bad key", sqlbatch.SourceConfig{Table: "t", Key: []string{"a\x00b"}}, "Key[0]"},
		{"bad table", sqlbatch.SourceConfig{Table: "a.b.c", Key: []string{"traveler_id"}}, "Table"},
		{"args count", sqlbatch.SourceConfig{Query: "SELECT * FROM t WHERE a = ?", Key: []string{"traveler_id"}}, "Args"},
		{"semicolon", sqlbatch.SourceConfig{Query: "SELECT 1;", Key: []string{"traveler_id"}}, "Query"},
		{"columns miss key", sqlbatch.SourceConfig{Table: "t", Key: []string{"traveler_id"}, Columns: []string{"name"}}, "Columns"},
		{"paging", sqlbatch.SourceConfig{Table: "t", Key: []string{"traveler_id"}, Paging: 7}, "Paging"},
		{"bad filter", sqlbatch.SourceConfig{Table: "t", Key: []string{"traveler_id"}, Filter: map[string]any{"\u202e": 1}}, "Filter"},
	} {
		_, err := sqlbatch.NewSource[Traveler](db, tc.cfg)
		var ce *batchenrich.ConfigError
		if !errors.As(err, &ce) || ce.Package != "sqlbatch" || ce.Field != "SourceConfig."+tc.field || !errors.Is(err, batchenrich.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want a ConfigError for %s", tc.name, err, tc.field)
		}
	}
	if _, err := sqlbatch.NewSource[int](db, sqlbatch.SourceConfig{Table: "t", Key: []string{"x"}}); err == nil {
		t.Error("non-struct item type accepted")
	}
	if _, err := sqlbatch.NewSource[Traveler](nil, sqlbatch.SourceConfig{}); err == nil {
		t.Error("nil db accepted")
	}
	other := sqlx.NewDb(db.DB, "mysql")
	if _, err := sqlbatch.NewSource[Traveler](other, sqlbatch.SourceConfig{Table: "t", Key: []string{"traveler_id"}}); err == nil {
		t.Error("mysql accepted")
	}
}
