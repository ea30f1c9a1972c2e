package sqlbatch_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// countingAPI is a profile API counting the requests it received; its
// Enricher asks it for each traveler.
type countingAPI struct {
	*httptest.Server
	requests atomic.Int64
}

func newCountingAPI(t *testing.T) *countingAPI {
	t.Helper()
	a := &countingAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *countingAPI) enricher() batchenrich.Enricher[Traveler, Enriched] {
	return batchenrich.EnricherFunc[Traveler, Enriched](func(ctx context.Context, tr Traveler) (Enriched, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+"/profile/"+strconv.FormatInt(tr.TravelerID, 10), nil)
		if err != nil {
			return Enriched{}, err
		}
		resp, err := a.Client().Do(req)
		if err != nil {
			return Enriched{}, err
		}
		resp.Body.Close()
		return Enriched{Score: int(tr.TravelerID)}, nil
	})
}

// A pool capped below what the run holds at once (on PostgreSQL the run
// lock's session, a batch's transaction and the Source's read-ahead; on
// SQLite the last two) is refused before any request, naming
// SetMaxOpenConns and the minimum, which is enough to run.
func TestPoolTooSmallRefusedBeforeAnyRequest(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 30)
		createResults(t, k, db)
		store := checkpointStore(t, db)
		api := newCountingAPI(t)
		want := 2
		if k.Postgres() {
			want = 3
		}
		run := func(conns int, opts batchenrich.Options) (batchenrich.Report, error) {
			db.SetMaxOpenConns(conns)
			opts.BatchSize = 10
			opts.Durable = &batchenrich.Durable{Store: store, RunKey: "e1-" + strconv.Itoa(conns) + strconv.FormatBool(opts.NoPrefetch)}
			r, err := batchenrich.New[Traveler, Enriched](travelerSource(t, db, "e1", sqlbatch.PageByKey), api.enricher(), resultsSink(t, db), opts)
			if err != nil {
				t.Fatal(err)
			}
			return r.Run(context.Background())
		}
		for conns := 1; conns < want; conns++ {
			_, err := run(conns, batchenrich.Options{})
			if !errors.Is(err, batchenrich.ErrInvalidConfig) || api.requests.Load() != 0 {
				t.Fatalf("pool of %d: %v after %d requests; want ErrInvalidConfig before any", conns, err, api.requests.Load())
			}
			for _, s := range []string{"SetMaxOpenConns(" + strconv.Itoa(conns) + ") is too small", "needs " + strconv.Itoa(want) + " connections at once",
				"call SetMaxOpenConns(" + strconv.Itoa(want) + ") or more"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not say %q: %v", s, err)
				}
			}
			t.Logf("pool of %d: %v", conns, err)
		}
		var rows int
		if err := db.Get(&rows, `SELECT count(*) FROM traveler_batch_results`); err != nil || rows != 0 {
			t.Fatalf("%d rows written (%v) by refused runs", rows, err)
		}
		// Without read-ahead, the Source's reads take turns with the
		// Sink's writes: one connection fewer.
		if _, err := run(want-1, batchenrich.Options{NoPrefetch: true}); err != nil {
			t.Fatalf("pool of %d without prefetch: %v", want-1, err)
		}
		rep, err := run(want, batchenrich.Options{})
		if err != nil || rep.Written != 30 {
			t.Fatalf("pool of %d: wrote %d, %v; want 30", want, rep.Written, err)
		}
	})
}

// A NewPartitioned run adds up its partitions: a pool that holds one
// partition but not four is refused, before any request.
func TestPoolTooSmallForThePartitions(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 40)
		createResults(t, k, db)
		per := 2
		if k.Postgres() {
			per = 3
		}
		db.SetMaxOpenConns(4*per - 1)
		api := newCountingAPI(t)
		_, err := partitionedRun(t, db, checkpointStore(t, db), api, 4).Run(context.Background())
		if !errors.Is(err, batchenrich.ErrInvalidConfig) || api.requests.Load() != 0 {
			t.Fatalf("%v after %d requests; want ErrInvalidConfig before any", err, api.requests.Load())
		}
		for _, s := range []string{"needs " + strconv.Itoa(4*per) + " connections at once (4 partitions at once, per partition: ", "SetMaxOpenConns(" + strconv.Itoa(4*per) + ")"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error does not say %q: %v", s, err)
			}
		}
		t.Log(err)
	})
}

// partitionedRun is the travelers job of execution e1 split into parts
// partitions, enriched by api.
func partitionedRun(t *testing.T, db *sqlx.DB, store *sqlbatch.CheckpointStore, api *countingAPI, parts int) *batchenrich.Runner[Traveler, Enriched] {
	t.Helper()
	pr, err := batchenrich.NewPartitioned(parts, func(p batchenrich.Partition) (batchenrich.Source[Traveler], error) {
		return sqlbatch.NewSource[Traveler](db, sqlbatch.SourceConfig{Table: "traveler_batch_source", Key: []string{"traveler_id"},
			Filter: map[string]any{"execution_id": "e1"}, Partition: p})
	}, api.enricher(), func(batchenrich.Partition) (batchenrich.Sink[Traveler, Enriched], error) {
		return resultsSink(t, db), nil
	}, batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: store, RunKey: "e1", Job: "travelers"}})
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

// A server that cannot open the connections the partitions need (here
// the role's CONNECTION LIMIT: the shared test server's max_connections
// is far above what a test may take) is refused before any request,
// naming the limit and the minimum.
func TestPartitionsTheServerCannotHoldRefused(t *testing.T) {
	t.Parallel()
	admin, dsn := testdb.PostgresWithURL(t)
	createSource(t, admin, 40)
	createResults(t, testdb.PostgreSQL, admin)
	checkpointStore(t, admin) // creates the table
	var schema string
	if err := admin.Get(&schema, `SELECT current_schema()`); err != nil {
		t.Fatal(err)
	}
	role := "r_" + schema // unique, as the test's schema
	mustExec(t, admin, `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 6`)
	t.Cleanup(func() { mustExec(t, admin, `DROP OWNED BY `+role+`; DROP ROLE `+role) })
	mustExec(t, admin, `GRANT USAGE ON SCHEMA `+schema+` TO `+role+`; GRANT ALL ON ALL TABLES IN SCHEMA `+schema+` TO `+role)

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	db, err := sqlx.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	api := newCountingAPI(t)
	_, err = partitionedRun(t, db, store, api, 4).Run(context.Background())
	if !errors.Is(err, batchenrich.ErrInvalidConfig) || api.requests.Load() != 0 {
		t.Fatalf("%v after %d requests; want ErrInvalidConfig before any", err, api.requests.Load())
	}
	for _, s := range []string{"needs 12 connections at once (4 partitions at once, per partition: ", `role "` + role + `"'s CONNECTION LIMIT 6`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not say %q: %v", s, err)
		}
	}
	t.Log(err)
	// Two partitions fit: the run completes.
	if rep, err := partitionedRun(t, db, store, api, 2).Run(context.Background()); err != nil || rep.Written != 40 {
		t.Fatalf("2 partitions: wrote %d, %v; want 40", rep.Written, err)
	}
}
