package sqlbatch_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// flakyAPI answers GET /travelers/{id}: while broken, 5 % of ids (every
// 20th) get 503 at every attempt and 1 % (id%100 == 7) get 404; once
// healed, everything gets 200. It counts requests per id.
type flakyAPI struct {
	*httptest.Server
	healed  atomic.Bool
	healAll atomic.Bool // heal the 404s too
	mu      sync.Mutex
	calls   map[int64]int
}

func newFlakyAPI(t *testing.T) *flakyAPI {
	a := &flakyAPI{calls: map[int64]int{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/travelers/"), 10, 64)
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.calls[id]++
		a.mu.Unlock()
		switch {
		case id%20 == 0 && !a.healed.Load():
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case id%100 == 7 && !a.healAll.Load():
			http.Error(w, "no such traveler", http.StatusNotFound)
		default:
			fmt.Fprintf(w, `{"score": %d}`, 2*id)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

// requests returns the requests received since the last call, per id.
func (a *flakyAPI) requests() map[int64]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.calls
	a.calls = map[int64]int{}
	return c
}

func total(m map[int64]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// createReplayResults creates traveler_batch_results with the two
// nullable columns a replay needs: the failure's class and attempts.
func createReplayResults(t testing.TB, k testdb.Kind, db *sqlx.DB) {
	t.Helper()
	mustExec(t, db, ddl(k, `CREATE TABLE traveler_batch_results (
		execution_id TEXT NOT NULL,
		traveler_id BIGINT NOT NULL,
		batch_number INTEGER NOT NULL,
		payload JSONB,
		is_valid BOOLEAN NOT NULL,
		validation_error TEXT,
		failure_class TEXT,
		failure_attempts INTEGER,
		PRIMARY KEY (execution_id, traveler_id))`))
}

// replayJob is the pieces of a run against the flaky API.
type replayJob struct {
	db    *sqlx.DB
	api   *flakyAPI
	store *sqlbatch.CheckpointStore
	enr   *httpenrich.Enricher[Traveler, Enriched, Enriched]
	sink  *sqlbatch.Sink[Traveler, Enriched]
}

func newReplayJob(t *testing.T, k testdb.Kind, db *sqlx.DB) *replayJob {
	t.Helper()
	createSource(t, db, 200)
	createReplayResults(t, k, db)
	j := &replayJob{db: db, api: newFlakyAPI(t), store: checkpointStore(t, db)}
	var err error
	j.enr, err = httpenrich.New(httpenrich.Config[Traveler, Enriched, Enriched]{
		URL: j.api.URL + "/travelers/{id}",
		Request: func(tr Traveler) (httpenrich.Params, error) {
			return httpenrich.Params{Path: map[string]string{"id": strconv.FormatInt(tr.TravelerID, 10)}}, nil
		},
		MaxAttempts:  2,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.enr.Close() })
	j.sink, err = sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
		Table:       "traveler_batch_results",
		Key:         []string{"execution_id", "traveler_id"},
		Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "validation_error", "failure_class", "failure_attempts"},
		BatchColumn: "batch_number",
		Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
			if r.Err != nil {
				attempts := 0
				var he *httpenrich.Error
				if errors.As(r.Err, &he) {
					attempts = he.Attempts
				}
				return []any{r.Item.ExecutionID, r.Item.TravelerID, nil, false, r.Err.Error(),
					batchenrich.Classify(r.Err).String(), attempts}, nil
			}
			return []any{r.Item.ExecutionID, r.Item.TravelerID, sqlbatch.JSON[Enriched]{V: r.Value}, true, nil, nil, nil}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

var replaySourceConfig = sqlbatch.SourceConfig{
	Table:  "traveler_batch_source",
	Key:    []string{"traveler_id"},
	Filter: map[string]any{"execution_id": "e1"},
}

// run runs e1 in batches of 20.
func (j *replayJob) run(t *testing.T) batchenrich.Report {
	t.Helper()
	src, err := sqlbatch.NewSource[Traveler](j.db, replaySourceConfig)
	if err != nil {
		t.Fatal(err)
	}
	r, err := batchenrich.New(src, batchenrich.Enricher[Traveler, Enriched](j.enr), j.sink,
		batchenrich.Options{BatchSize: 20, Concurrency: 8, Durable: &batchenrich.Durable{Store: j.store, RunKey: "e1"}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// replayer is the replay of e1's transient failures (every failure if
// all), in batches of 3,
// with enr (nil: the job's Enricher).
func (j *replayJob) replayer(t *testing.T, all bool, enr batchenrich.Enricher[Traveler, Enriched]) *batchenrich.Replay[Traveler, Enriched] {
	t.Helper()
	failed, err := sqlbatch.NewFailedSource[Traveler](j.db, sqlbatch.FailedSourceConfig{
		Source:      replaySourceConfig,
		Table:       "traveler_batch_results",
		On:          map[string]string{"execution_id": "execution_id", "traveler_id": "traveler_id"},
		ClassColumn: "failure_class",
		AllClasses:  all,
	})
	if err != nil {
		t.Fatal(err)
	}
	if enr == nil {
		enr = j.enr
	}
	p, err := batchenrich.NewReplay(failed, enr, j.sink,
		batchenrich.Options{BatchSize: 3, Concurrency: 2, Durable: &batchenrich.Durable{Store: j.store, RunKey: "e1"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// replay runs j.replayer(t, all, enr).
func (j *replayJob) replay(t *testing.T, ctx context.Context, all bool, enr batchenrich.Enricher[Traveler, Enriched]) (batchenrich.ReplayReport, error) {
	t.Helper()
	return j.replayer(t, all, enr).Run(ctx)
}

// replayRow is a row of the results as a replay cares about it.
type replayRow struct {
	ID       int64   `db:"traveler_id"`
	Batch    int     `db:"batch_number"`
	Valid    bool    `db:"is_valid"`
	Class    *string `db:"failure_class"`
	Attempts *int    `db:"failure_attempts"`
}

func (j *replayJob) rows(t *testing.T) map[int64]replayRow {
	t.Helper()
	var rows []replayRow
	if err := j.db.Select(&rows, `SELECT traveler_id, batch_number, is_valid, failure_class, failure_attempts
		FROM traveler_batch_results WHERE execution_id = 'e1'`); err != nil {
		t.Fatal(err)
	}
	m := map[int64]replayRow{}
	for _, r := range rows {
		m[r.ID] = r
	}
	return m
}

// checkRows checks the 200 rows of e1: each in its batch of 20, the
// ids in stillFailed invalid with class and attempts, the others valid
// without.
func (j *replayJob) checkRows(t *testing.T, stillFailed func(id int64) (class string, attempts int, failed bool)) {
	t.Helper()
	rows := j.rows(t)
	if len(rows) != 200 {
		t.Fatalf("%d rows, want 200", len(rows))
	}
	for id := int64(1); id <= 200; id++ {
		r, ok := rows[id]
		if !ok {
			t.Fatalf("traveler %d: no row", id)
		}
		if want := int((id-1)/20) + 1; r.Batch != want {
			t.Fatalf("traveler %d: batch_number %d, want %d", id, r.Batch, want)
		}
		class, attempts, failed := stillFailed(id)
		switch {
		case failed && (r.Valid || r.Class == nil || *r.Class != class || r.Attempts == nil || *r.Attempts != attempts):
			t.Fatalf("traveler %d: %+v, want failed (%s, %d attempts)", id, r, class, attempts)
		case !failed && (!r.Valid || r.Class != nil || r.Attempts != nil):
			t.Fatalf("traveler %d: %+v, want valid", id, r)
		}
	}
}

func outage(id int64) (string, int, bool) {
	switch {
	case id%20 == 0:
		return "transient", 2, true
	case id%100 == 7:
		return "permanent", 1, true
	}
	return "", 0, false
}

func only404(id int64) (string, int, bool) {
	if id%100 == 7 {
		return "permanent", 1, true
	}
	return "", 0, false
}

func healed(int64) (string, int, bool) { return "", 0, false }

func TestReplay(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		j := newReplayJob(t, k, db)
		rep := j.run(t)
		if rep.Failed != 12 || rep.Written != 200 {
			t.Fatalf("run: %d failed, %d written; want 12, 200", rep.Failed, rep.Written)
		}
		j.checkRows(t, outage)
		j.api.requests()

		// The API heals: a replay sends one request per transient
		// failure (not the 404s) and each of those rows is now valid,
		// in its batch.
		j.api.healed.Store(true)
		rr, err := j.replay(t, ctx, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		sent := j.api.requests()
		if total(sent) != 10 || len(sent) != 10 {
			t.Fatalf("replay sent %v, want one request to each of the 10 transient failures", sent)
		}
		for id := range sent {
			if id%20 != 0 {
				t.Fatalf("replay sent a request for traveler %d", id)
			}
		}
		if rr.Number != 1 || rr.NothingToReplay || rr.Written != 10 || rr.Enriched != 10 || rr.BatchesRun != 4 || !rr.Atomic {
			t.Fatalf("replay report: %+v", rr)
		}
		j.checkRows(t, only404)

		// Nothing transient is left.
		rr, err = j.replay(t, ctx, false, nil)
		if err != nil || !rr.NothingToReplay || rr.Number != 2 || total(j.api.requests()) != 0 {
			t.Fatalf("second replay: %+v, %v", rr, err)
		}

		// The 404s still fail: replaying all records the new attempts.
		rr, err = j.replay(t, ctx, true, nil)
		if err != nil || rr.Number != 2 || rr.Written != 2 || rr.Failed != 2 || total(j.api.requests()) != 2 {
			t.Fatalf("replay of all, 404s not healed: %+v, %v", rr, err)
		}
		j.checkRows(t, only404)

		// Healed too: replaying all retries them, and every row is valid.
		j.api.healAll.Store(true)
		rr, err = j.replay(t, ctx, true, nil)
		sent = j.api.requests()
		if err != nil || rr.Number != 3 || rr.Written != 2 || rr.Enriched != 2 || total(sent) != 2 || sent[7] != 1 || sent[107] != 1 {
			t.Fatalf("replay of all: %+v, %v, sent %v", rr, err, sent)
		}
		j.checkRows(t, healed)
		rr, err = j.replay(t, ctx, true, nil)
		if err != nil || !rr.NothingToReplay {
			t.Fatalf("replay with no failure left: %+v, %v", rr, err)
		}
	})
}

// A replay while the outage goes on stores each failure again, with its
// latest reason and attempts.
func TestReplayRecordsTheLatestFailure(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		j := newReplayJob(t, k, db)
		j.run(t)
		j.api.requests()
		threeTries, err := httpenrich.New(httpenrich.Config[Traveler, Enriched, Enriched]{
			URL: j.api.URL + "/travelers/{id}",
			Request: func(tr Traveler) (httpenrich.Params, error) {
				return httpenrich.Params{Path: map[string]string{"id": strconv.FormatInt(tr.TravelerID, 10)}}, nil
			},
			MaxAttempts:  3,
			RetryWaitMin: time.Millisecond,
			RetryWaitMax: time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer threeTries.Close()
		rr, err := j.replay(t, context.Background(), false, threeTries)
		if err != nil || rr.Written != 10 || rr.Failed != 10 || total(j.api.requests()) != 30 {
			t.Fatalf("replay during the outage: %+v, %v", rr, err)
		}
		j.checkRows(t, func(id int64) (string, int, bool) {
			if id%20 == 0 {
				return "transient", 3, true
			}
			return outage(id)
		})
		var reason string
		if err := db.Get(&reason, `SELECT validation_error FROM traveler_batch_results WHERE traveler_id = 20`); err != nil ||
			!strings.Contains(reason, "3 attempts") {
			t.Fatalf("stored reason %q, %v; want the replay's", reason, err)
		}
	})
}

func TestReplayInterruptedThenResumed(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		j := newReplayJob(t, k, db)
		j.run(t)
		j.api.requests()
		j.api.healed.Store(true)

		// Transient failures 20, 40, …, 200 in replay batches of 3:
		// interrupted as traveler 120 (batch 2) is enriched. The cancel
		// waits for the request of batch 2 in flight, if any: a request
		// cancelled on the wire may reach the API after the replay
		// returned, and would be counted with the resumed replay's.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var (
			mu       sync.Mutex
			stopping bool
			inFlight sync.WaitGroup
		)
		enr := batchenrich.EnricherFunc[Traveler, Enriched](func(ctx context.Context, tr Traveler) (Enriched, error) {
			mu.Lock()
			if tr.TravelerID == 120 {
				stopping = true
				mu.Unlock()
				inFlight.Wait()
				cancel()
				<-ctx.Done()
				return Enriched{}, ctx.Err()
			}
			if stopping {
				mu.Unlock()
				<-ctx.Done()
				return Enriched{}, ctx.Err()
			}
			inFlight.Add(1)
			mu.Unlock()
			defer inFlight.Done()
			return j.enr.Enrich(ctx, tr)
		})
		rr, err := j.replay(t, ctx, false, enr)
		if !errors.Is(err, context.Canceled) || rr.Number != 1 || rr.BatchesRun != 1 {
			t.Fatalf("interrupted replay: %+v, %v", rr, err)
		}
		first := j.api.requests()

		// Run again: replay 1 resumes after its committed batch.
		rr, err = j.replay(t, context.Background(), false, nil)
		if err != nil || rr.Number != 1 || rr.BatchesSkipped != 1 || rr.Written != 7 {
			t.Fatalf("resumed replay: %+v, %v", rr, err)
		}
		second := j.api.requests()
		for id := int64(20); id <= 60; id += 20 {
			if second[id] != 0 {
				t.Fatalf("resumed replay retried traveler %d of the committed batch", id)
			}
		}
		if total(second) != 7 || total(first)+total(second) > 10+3 {
			t.Fatalf("requests: %v then %v", first, second)
		}
		j.checkRows(t, only404)
		cp, err := j.store.Load(context.Background(), "e1#replay-1")
		if err != nil || !cp.Done {
			t.Fatalf("replay checkpoint: %+v, %v", cp, err)
		}
	})
}

func TestReplayLockedByTheRun(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		j := newReplayJob(t, k, db)
		j.run(t)
		other := checkpointStore(t, db)
		unlock, ok, err := other.TryLock(context.Background(), "e1")
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		defer unlock()
		_, err = j.replay(t, context.Background(), false, nil)
		if !errors.Is(err, batchenrich.ErrRunLocked) {
			t.Fatalf("replay while the run is locked: %v", err)
		}
	})
}

func TestNewFailedSourceRefusesBadConfig(t *testing.T) {
	db := testdb.Open(t, testdb.SQLite)
	good := sqlbatch.FailedSourceConfig{
		Source: replaySourceConfig, Table: "r", On: map[string]string{"traveler_id": "traveler_id"}, ClassColumn: "c",
	}
	for _, c := range []struct {
		edit  func(*sqlbatch.FailedSourceConfig)
		field string
	}{
		{func(c *sqlbatch.FailedSourceConfig) { c.Source.Key = nil }, "Source.Key"},
		{func(c *sqlbatch.FailedSourceConfig) { c.Source.Paging = sqlbatch.PageByOffset }, "Source.Paging"},
		{func(c *sqlbatch.FailedSourceConfig) { c.Source.Partition = batchenrich.Partition{Index: 1, Count: 2} }, "Source.Partition"},
		{func(c *sqlbatch.FailedSourceConfig) { c.Table = "" }, "Table"},
		{func(c *sqlbatch.FailedSourceConfig) { c.On = nil }, "On"},
		{func(c *sqlbatch.FailedSourceConfig) { c.On = map[string]string{"traveler_id": ""} }, "On"},
		{func(c *sqlbatch.FailedSourceConfig) { c.ClassColumn = "" }, "ClassColumn"},
	} {
		cfg := good
		cfg.Source.Key = []string{"traveler_id"}
		c.edit(&cfg)
		_, err := sqlbatch.NewFailedSource[Traveler](db, cfg)
		var ce *batchenrich.ConfigError
		if !errors.As(err, &ce) || ce.Package != "sqlbatch" || ce.Field != "FailedSourceConfig."+c.field || !errors.Is(err, batchenrich.ErrInvalidConfig) {
			t.Errorf("want an error naming %s, got %v", c.field, err)
		}
	}
	if _, err := sqlbatch.NewFailedSource[Traveler](db, good); err != nil {
		t.Fatal(err)
	}
}

func TestReplayRefusesASinkWithAFailureTable(t *testing.T) {
	db := testdb.Open(t, testdb.SQLite)
	mustExec(t, db, `CREATE TABLE ok (id INTEGER PRIMARY KEY, b INTEGER NOT NULL)`)
	mustExec(t, db, `CREATE TABLE bad (id INTEGER PRIMARY KEY, b INTEGER NOT NULL)`)
	row := func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) { return []any{r.Item.TravelerID}, nil }
	sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
		Table: "ok", Key: []string{"id"}, Columns: []string{"id"}, Row: row, BatchColumn: "b",
		Failures: &sqlbatch.FailureTable[Traveler, Enriched]{Table: "bad", Key: []string{"id"}, Columns: []string{"id"}, Row: row, BatchColumn: "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := batchenrich.Batch[Traveler, Enriched]{Number: 1, Replay: 1, Results: []batchenrich.Result[Traveler, Enriched]{{Item: Traveler{TravelerID: 1}}}}
	err = sink.Write(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "SinkConfig.Failures") {
		t.Fatalf("replay write with a failure table: %v", err)
	}
}

// A replay whose Sink or failed-items Source does not match the database
// is refused before any request.
func TestReplayRefusesAMismatchBeforeWork(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		j := newReplayJob(t, k, db)
		j.run(t)
		j.api.requests()
		failed := func(class string, on map[string]string) *sqlbatch.Source[Traveler] {
			src, err := sqlbatch.NewFailedSource[Traveler](db, sqlbatch.FailedSourceConfig{
				Source: replaySourceConfig, Table: "traveler_batch_results", On: on, ClassColumn: class,
			})
			if err != nil {
				t.Fatal(err)
			}
			return src
		}
		badSink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
			Table: "traveler_batch_results", Key: []string{"execution_id", "traveler_id"},
			Columns: []string{"execution_id", "traveler_id", "failure_clas"}, BatchColumn: "batch_number",
			Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
				return []any{r.Item.ExecutionID, r.Item.TravelerID, nil}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		on := map[string]string{"execution_id": "execution_id", "traveler_id": "traveler_id"}
		for _, c := range []struct {
			src  *sqlbatch.Source[Traveler]
			sink *sqlbatch.Sink[Traveler, Enriched]
			want string
		}{
			{failed("failure_class", on), badSink, `sqlbatch: invalid SinkConfig.Columns[2]: table "traveler_batch_results" has no column "failure_clas"`},
			{failed("failure_klass", on), j.sink, `sqlbatch: invalid FailedSourceConfig.ClassColumn: table "traveler_batch_results" has no column "failure_klass"`},
			{failed("failure_class", map[string]string{"execution_id": "execution_id", "traveler_id": "travelr_id"}), j.sink,
				`sqlbatch: invalid FailedSourceConfig.On["traveler_id"]: table "traveler_batch_results" has no column "travelr_id"`},
			{failed("failure_class", map[string]string{"execution_id": "execution_id", "travelr_id": "traveler_id"}), j.sink,
				`sqlbatch: invalid FailedSourceConfig.On["travelr_id"]: table "traveler_batch_source" has no column "travelr_id"`},
		} {
			p, err := batchenrich.NewReplay(c.src, batchenrich.Enricher[Traveler, Enriched](j.enr), batchenrich.Sink[Traveler, Enriched](c.sink),
				batchenrich.Options{Durable: &batchenrich.Durable{Store: j.store, RunKey: "e1"}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Run(context.Background())
			if err == nil || !strings.HasPrefix(err.Error(), c.want) || total(j.api.requests()) != 0 {
				t.Errorf("replay with %s: %v", c.want, err)
			}
		}
		if cp, err := j.store.Load(context.Background(), "e1#replay-1"); err != nil || cp.Batch != 0 || cp.Done {
			t.Fatalf("replay checkpoint %+v, %v", cp, err)
		}
	})
}

// Two replays of one run never work at once, from two stores (as from two
// processes): the second is refused while the first works, sending
// nothing.
func TestTwoReplaysNeverAtOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		j := newReplayJob(t, k, db)
		j.run(t)
		j.api.requests()
		j.api.healed.Store(true)
		started, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		blocking := batchenrich.EnricherFunc[Traveler, Enriched](func(ctx context.Context, tr Traveler) (Enriched, error) {
			once.Do(func() { close(started) })
			select {
			case <-release:
			case <-ctx.Done():
				return Enriched{}, ctx.Err()
			}
			return j.enr.Enrich(ctx, tr)
		})
		p := j.replayer(t, false, blocking)
		first := make(chan error, 1)
		go func() {
			_, err := p.Run(context.Background())
			first <- err
		}()
		<-started

		other := *j
		other.store = checkpointStore(t, db)
		_, err := other.replay(t, context.Background(), true, nil)
		if !errors.Is(err, batchenrich.ErrRunLocked) || total(j.api.requests()) != 0 {
			t.Errorf("second replay while the first works: %v", err)
		}
		close(release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		j.checkRows(t, only404)
	})
}

// A replay of a partitioned run one of whose partitions is running (its
// run lock held by another runner) is refused before any request, naming
// the partition; once the partition is free, the replay works.
func TestReplayOfARunningPartitionedRunRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		j := newReplayJob(t, k, db)
		pr, err := batchenrich.NewPartitioned(2, func(p batchenrich.Partition) (batchenrich.Source[Traveler], error) {
			cfg := replaySourceConfig
			cfg.Partition = p
			return sqlbatch.NewSource[Traveler](db, cfg)
		}, j.enr, func(batchenrich.Partition) (batchenrich.Sink[Traveler, Enriched], error) { return j.sink, nil }, batchenrich.Options{BatchSize: 20, Durable: &batchenrich.Durable{Store: j.store, RunKey: "e1"}})
		if err != nil {
			t.Fatal(err)
		}
		if rep, err := pr.Run(ctx); err != nil || rep.Written != 200 || rep.Failed != 12 {
			t.Fatalf("partitioned run: wrote %d, %d failed, %v", rep.Written, rep.Failed, err)
		}
		other := checkpointStore(t, db)
		unlock, ok, err := other.TryLock(ctx, batchenrich.Partition{Index: 1, Count: 2}.RunKey("e1"))
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		j.api.healed.Store(true)
		j.api.requests()
		_, err = j.replay(t, ctx, false, nil)
		if !errors.Is(err, batchenrich.ErrRunLocked) || !strings.Contains(err.Error(), "partition 1 of the run is running") {
			t.Fatalf("replay while partition 1 runs: %v; want ErrRunLocked naming the partition", err)
		}
		if sent := j.api.requests(); len(sent) != 0 {
			t.Fatalf("refused replay sent %d requests", total(sent))
		}
		t.Log(err)
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
		if rr, err := j.replay(t, ctx, false, nil); err != nil || rr.Written != 10 {
			t.Fatalf("replay once the partition is free: %+v, %v", rr, err)
		}
	})
}
