package sqlbatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// Nickname is a row of traveler_profiles, the lookup's result.
type Nickname struct {
	TravelerID int64  `db:"traveler_id"`
	Nickname   string `db:"nickname"`
	Score      int    `db:"score"`
}

// createProfiles creates traveler_profiles with a row for each traveler
// 1..n but those divisible by 6, and a row of another region for each.
func createProfiles(t *testing.T, db *sqlx.DB, n int) {
	t.Helper()
	mustExec(t, db, `CREATE TABLE traveler_profiles (
		region TEXT NOT NULL,
		traveler_id BIGINT NOT NULL,
		nickname TEXT NOT NULL,
		score INTEGER NOT NULL,
		PRIMARY KEY (region, traveler_id))`)
	tx := db.MustBegin()
	for i := 1; i <= n; i++ {
		for _, region := range []string{"eu", "us"} {
			if i%6 == 0 && region == "eu" {
				continue
			}
			if _, err := tx.Exec(db.Rebind(`INSERT INTO traveler_profiles (region, traveler_id, nickname, score) VALUES (?, ?, ?, ?)`),
				region, i, fmt.Sprintf("%s-%d", region, i), i*3); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func lookupRun(t *testing.T, db *sqlx.DB, l batchenrich.Enricher[Traveler, Nickname], o batchenrich.Options) (*batchenrichtest.Sink[Traveler, Nickname], error) {
	t.Helper()
	sink := &batchenrichtest.Sink[Traveler, Nickname]{FirstBatch: 1}
	r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), l, sink, o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background())
	if cerr := sink.Check(); cerr != nil {
		t.Errorf("sink: %v", cerr)
	}
	return sink, err
}

func TestLookupByKey(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 50)
		createProfiles(t, db, 50)
		for _, zero := range []bool{false, true} {
			for _, query := range []bool{false, true} {
				cfg := sqlbatch.LookupConfig[Traveler]{
					Table:         "traveler_profiles",
					Key:           "traveler_id",
					ItemKey:       func(t Traveler) any { return t.TravelerID },
					Filter:        map[string]any{"region": "eu"},
					Columns:       []string{"traveler_id", "nickname", "score"},
					MaxItems:      7,
					ZeroIfMissing: zero,
				}
				if query {
					cfg.Table, cfg.Filter, cfg.Columns = "", nil, nil
					cfg.Query, cfg.Args = "SELECT traveler_id, nickname, score FROM traveler_profiles WHERE region = ?", []any{"eu"}
				}
				l, err := sqlbatch.NewLookup[Traveler, Nickname](db, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if l.BulkSize() != 7 {
					t.Fatalf("BulkSize %d", l.BulkSize())
				}
				sink, err := lookupRun(t, db, l, batchenrich.Options{BatchSize: 20, Concurrency: 2})
				if err != nil {
					t.Fatal(err)
				}
				res := sink.Results()
				if len(res) != 50 {
					t.Fatalf("%d results", len(res))
				}
				for i, r := range res {
					id := int64(i + 1)
					switch {
					case r.Item.TravelerID != id:
						t.Fatalf("result %d is traveler %d", i, r.Item.TravelerID)
					case id%6 == 0 && zero:
						if r.Err != nil || r.Value != (Nickname{}) {
							t.Fatalf("traveler %d: %+v, want the zero result", id, r)
						}
					case id%6 == 0:
						if batchenrich.Classify(r.Err) != batchenrich.ClassPermanent ||
							batchenrich.FailureReason(r.Err) != "lookup: no row for the item's key" {
							t.Fatalf("traveler %d: %v, want no row", id, r.Err)
						}
					default:
						want := Nickname{TravelerID: id, Nickname: fmt.Sprintf("eu-%d", id), Score: int(id) * 3}
						if r.Err != nil || r.Value != want {
							t.Fatalf("traveler %d (zero=%v query=%v): %+v", id, zero, query, r)
						}
					}
				}
			}
		}
	})
}

func TestLookupSeveralRowsFailItem(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 10)
		createProfiles(t, db, 10)
		l, err := sqlbatch.NewLookup[Traveler, Nickname](db, sqlbatch.LookupConfig[Traveler]{
			Table: "traveler_profiles", Key: "traveler_id", Columns: []string{"traveler_id", "nickname", "score"},
			ItemKey: func(t Traveler) any { return t.TravelerID },
		})
		if err != nil {
			t.Fatal(err)
		}
		vals, errs := l.EnrichBulk(context.Background(), []Traveler{{TravelerID: 6}, {TravelerID: 5}, {TravelerID: 99}})
		if errs[0] != nil || vals[0].Nickname != "us-6" {
			t.Fatalf("traveler 6: %v %+v", errs[0], vals[0])
		}
		if errs[1] == nil || !strings.Contains(errs[1].Error(), "several rows") {
			t.Fatalf("traveler 5: %v", errs[1])
		}
		if !errors.Is(errs[2], errors.Unwrap(errs[2])) || !strings.Contains(errs[2].Error(), "no row") {
			t.Fatalf("traveler 99: %v", errs[2])
		}
	})
}

func TestLookupCheckedBeforeWork(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 10)
		createProfiles(t, db, 10)
		for field, cfg := range map[string]sqlbatch.LookupConfig[Traveler]{
			"LookupConfig.Key":        {Table: "traveler_profiles", Key: "travelr_id", Columns: []string{"travelr_id", "nickname", "score"}},
			"LookupConfig.Table":      {Table: "traveler_profile", Key: "traveler_id", Columns: []string{"traveler_id", "nickname", "score"}},
			"LookupConfig.Columns[1]": {Table: "traveler_profiles", Key: "traveler_id", Columns: []string{"traveler_id", "nick", "score"}},
			"LookupConfig.Filter[\"regio\"]": {Table: "traveler_profiles", Key: "traveler_id", Columns: []string{"traveler_id", "nickname", "score"},
				Filter: map[string]any{"regio": "eu"}},
		} {
			cfg.ItemKey = func(t Traveler) any { return t.TravelerID }
			type loose struct {
				TravelerID int64  `db:"traveler_id"`
				Nickname   string `db:"nickname"`
				Nick       string `db:"nick"`
				Score      int    `db:"score"`
				Typo       int64  `db:"travelr_id"`
			}
			l, err := sqlbatch.NewLookup[Traveler, loose](db, cfg)
			if err != nil {
				t.Fatalf("%s: NewLookup: %v", field, err)
			}
			sink := batchenrichtest.NewSink[Traveler, loose]()
			r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), l, sink, batchenrich.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Run(context.Background())
			var ce *batchenrich.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "invalid "+field+":") {
				t.Fatalf("%s: err = %v", field, err)
			}
			if len(sink.Batches()) != 0 {
				t.Fatalf("%s: a batch was written", field)
			}
		}
	})
}

func TestNewLookupRefuses(t *testing.T) {
	db := testdb.SQLiteDB(t)
	for field, cfg := range map[string]sqlbatch.LookupConfig[Traveler]{
		"LookupConfig.Key":      {Table: "t", ItemKey: func(Traveler) any { return 1 }},
		"LookupConfig.ItemKey":  {Table: "t", Key: "traveler_id"},
		"LookupConfig.MaxItems": {Table: "t", Key: "traveler_id", ItemKey: func(Traveler) any { return 1 }, MaxItems: 40000},
		"LookupConfig.Query":    {Table: "t", Query: "SELECT 1", Key: "traveler_id", ItemKey: func(Traveler) any { return 1 }},
	} {
		_, err := sqlbatch.NewLookup[Traveler, Nickname](db, cfg)
		if err == nil || !strings.Contains(err.Error(), "invalid "+field+":") {
			t.Errorf("%s: err = %v", field, err)
		}
	}
}
