package sqlbatch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// TestLookupKeyTypes looks items up by keys of other types than the Key
// field's: an int, a string, the same key twice in a group. A row answers
// an item when their keys' texts are equal.
func TestLookupKeyTypes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createProfiles(t, db, 10)
		l, err := sqlbatch.NewLookup[Traveler, Nickname](db, sqlbatch.LookupConfig[Traveler]{
			Table: "traveler_profiles", Key: "traveler_id", Filter: map[string]any{"region": "eu"},
			ItemKey: func(t Traveler) any {
				switch t.Name {
				case "int":
					return int(t.TravelerID)
				case "string":
					return fmt.Sprint(t.TravelerID)
				case "padded":
					return fmt.Sprintf("0%d", t.TravelerID)
				}
				return t.TravelerID
			},
			Columns: []string{"traveler_id", "nickname", "score"},
		})
		if err != nil {
			t.Fatal(err)
		}
		items := []Traveler{{TravelerID: 1, Name: "int"}, {TravelerID: 2, Name: "string"}, {TravelerID: 3}, {TravelerID: 3, Name: "string"},
			{TravelerID: 2, Name: "int"}, {TravelerID: 4, Name: "padded"}}
		vals, errs := l.EnrichBulk(context.Background(), items)
		for i, it := range items {
			if it.Name == "padded" {
				if errs[i] == nil || !strings.Contains(errs[i].Error(), "no row") {
					t.Errorf("item %d (%+v): %v, want no row", i, it, errs[i])
				}
				continue
			}
			if errs[i] != nil || vals[i].Nickname != fmt.Sprintf("eu-%d", it.TravelerID) {
				t.Errorf("item %d (%+v): %+v, %v", i, it, vals[i], errs[i])
			}
		}
	})
}

// Profile reads a traveler_profiles row through an embedded pointer.
type Profile struct {
	*ProfileKey
	Nickname string `db:"nickname"`
	Score    int    `db:"score"`
}

// ProfileKey is the key part of a Profile.
type ProfileKey struct {
	Region     string `db:"region"`
	TravelerID int64  `db:"traveler_id"`
}

// TestSourceScansPointersAndEmbedded reads rows into pointers to structs
// embedding a pointer to a struct, as sqlx does.
func TestSourceScansPointersAndEmbedded(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createProfiles(t, db, 6)
		src, err := sqlbatch.NewSource[*Profile](db, sqlbatch.SourceConfig{Table: "traveler_profiles", Key: []string{"region", "traveler_id"}})
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := src.Read(context.Background(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 11 {
			t.Fatalf("%d rows", len(got))
		}
		for i, p := range got {
			if p == nil || p.ProfileKey == nil || p.Nickname != fmt.Sprintf("%s-%d", p.Region, p.TravelerID) || p.Score != int(p.TravelerID)*3 {
				t.Fatalf("row %d: %+v", i, p)
			}
			if i > 0 && got[i-1].ProfileKey == p.ProfileKey {
				t.Fatalf("rows %d and %d share their key", i-1, i)
			}
		}
	})
}

// TestSourceColumnWithoutField reads every column of a table that gained
// one after the Check: an error naming the column, unless the *sqlx.DB is
// sqlx's Unsafe, which ignores it, as sqlx does.
func TestSourceColumnWithoutField(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		mustExec(t, db, `CREATE TABLE nicknames (traveler_id BIGINT PRIMARY KEY, nickname TEXT NOT NULL, score INTEGER NOT NULL)`)
		mustExec(t, db, `INSERT INTO nicknames VALUES (1, 'a', 3), (2, 'b', 6)`)
		var srcs []*sqlbatch.Source[Nickname]
		for _, udb := range []*sqlx.DB{db, db.Unsafe()} {
			src, err := sqlbatch.NewSource[Nickname](udb, sqlbatch.SourceConfig{Table: "nicknames", Key: []string{"traveler_id"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := src.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			srcs = append(srcs, src)
		}
		mustExec(t, db, `ALTER TABLE nicknames ADD COLUMN extra TEXT`)
		got, _, err := srcs[0].Read(context.Background(), "", 10)
		if err == nil || !strings.Contains(err.Error(), "missing destination name extra") {
			t.Fatalf("got %+v, %v; want an error naming column extra", got, err)
		}
		got, _, err = srcs[1].Read(context.Background(), "", 10)
		if err != nil || len(got) != 2 || got[1] != (Nickname{TravelerID: 2, Nickname: "b", Score: 6}) {
			t.Fatalf("Unsafe: %+v, %v", got, err)
		}
	})
}

// TestLookupScansPointersAndEmbedded looks rows up into pointers to
// structs embedding a pointer to a struct: each key's row is a struct of
// its own (items sharing a key share it, as before).
func TestLookupScansPointersAndEmbedded(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createProfiles(t, db, 6)
		l, err := sqlbatch.NewLookup[Traveler, *Profile](db, sqlbatch.LookupConfig[Traveler]{
			Table: "traveler_profiles", Key: "traveler_id", Filter: map[string]any{"region": "us"},
			ItemKey: func(t Traveler) any { return t.TravelerID },
		})
		if err != nil {
			t.Fatal(err)
		}
		items := []Traveler{{TravelerID: 2}, {TravelerID: 5}, {TravelerID: 2}, {TravelerID: 6}}
		vals, errs := l.EnrichBulk(context.Background(), items)
		for i, it := range items {
			p := vals[i]
			if errs[i] != nil || p == nil || p.ProfileKey == nil || p.TravelerID != it.TravelerID || p.Region != "us" || p.Nickname != fmt.Sprintf("us-%d", it.TravelerID) {
				t.Fatalf("item %d: %+v, %v", i, p, errs[i])
			}
		}
		if vals[0].ProfileKey == vals[1].ProfileKey || vals[1].ProfileKey == vals[3].ProfileKey {
			t.Fatal("rows share their embedded key")
		}
	})
}

// Counts reads integer columns into int64 and int fields.
type Counts struct {
	ID    int64 `db:"id"`
	Big   int64 `db:"big"`
	Small int   `db:"small"`
}

// TestScanIntegersAsDatabaseSQL reads integers, NULL, text and floats
// into int64 and int fields: the same values and errors as sqlx's
// SelectContext (database/sql's conversions).
func TestScanIntegersAsDatabaseSQL(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		for i, sel := range []string{
			"1 AS id, 9007199254740993 AS big, -7 AS small",
			"2 AS id, NULL AS big, 1 AS small",
			"3 AS id, 1 AS big, NULL AS small",
			"4 AS id, '12' AS big, '-3' AS small",
			"5 AS id, 'x' AS big, 1 AS small",
			"6 AS id, 2.5 AS big, 1 AS small",
			"7 AS id, 1 AS big, 99999999999999999 AS small",
		} {
			src, err := sqlbatch.NewSource[Counts](db, sqlbatch.SourceConfig{Query: "SELECT " + sel, Key: []string{"id"}})
			if err != nil {
				t.Fatal(err)
			}
			got, _, gerr := src.Read(context.Background(), "", 10)
			var want []Counts
			werr := db.Select(&want, "SELECT * FROM (SELECT "+sel+") AS q ORDER BY id")
			if (gerr == nil) != (werr == nil) || (gerr != nil && !strings.HasSuffix(gerr.Error(), werr.Error())) || fmt.Sprint(got) != fmt.Sprint(want) && werr == nil {
				t.Errorf("%d: %s: got %v, %v; sqlx %v, %v", i, sel, got, gerr, want, werr)
			}
		}
	})
}
