package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// outageAPI answers like httpbin, except that until healed 5 % of
// travelers (every 20th) get 503 at every attempt, and until healed404 1 %
// (traveler_id % 100 == 7) get 404. It counts requests per traveler, and
// calls onRequest, if set, with each traveler_id.
type outageAPI struct {
	*httptest.Server
	healed, healed404 atomic.Bool
	onRequest         func(id int)
	mu                sync.Mutex
	calls             map[int]int
}

func newOutageAPI(t *testing.T) *outageAPI {
	a := &outageAPI{calls: map[int]int{}}
	bin := httpbin.New()
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.URL.Query().Get("traveler_id"))
		a.mu.Lock()
		a.calls[id]++
		f := a.onRequest
		a.mu.Unlock()
		if f != nil {
			f(id)
		}
		switch {
		case id%20 == 0 && !a.healed.Load():
			w.Header().Set("Retry-After", "0")
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case id%100 == 7 && !a.healed404.Load():
			http.Error(w, "no such traveler", http.StatusNotFound)
		default:
			bin.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

// outageRun runs the program as execution id on a fresh database of kind
// k against an outage API (400 rows in batches of 50, no retries), then
// heals the API and forgets its requests. It returns the -dsn, the API,
// the arguments of a replay of the run's transient failures (in batches of
// 5, with a cap that still covers the 400 rows, so that the 20 transient
// failures take 4 batches) and the run's batch numbers.
func outageRun(t *testing.T, k testdb.Kind, id string) (dsn string, api *outageAPI, replayArgs []string, batches map[int]int) {
	t.Helper()
	dsn = dsnFor(t, k)
	api = newOutageAPI(t)
	args := []string{"-dsn", dsn, "-profile-url", api.URL + "/anything", "-seed-rows", "400", "-batch-size", "50",
		"-max-batches", "10", "-http-retries", "0", "-concurrency", "2", "-json", "-execution-id", id}
	replayArgs = append(args[:len(args):len(args)], "-batch-size", "5", "-max-batches", "80", "-retry-failed")
	if code, stdout, stderr := program(t, context.Background(), args...); code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	batches = batchNumbers(t, dsn, id)
	api.requests()
	api.healed.Store(true)
	return dsn, api, replayArgs, batches
}

// requests returns the requests received since the last call, per id.
func (a *outageAPI) requests() map[int]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.calls
	a.calls = map[int]int{}
	return c
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// batchNumbers reads traveler_id → batch_number of execution id.
func batchNumbers(t *testing.T, dsn, id string) map[int]int {
	t.Helper()
	db := openDSN(t, dsn)
	defer db.Close()
	var rows []struct {
		ID    int `db:"traveler_id"`
		Batch int `db:"batch_number"`
	}
	if err := db.Select(&rows, db.Rebind(`SELECT traveler_id, batch_number FROM traveler_batch_results WHERE execution_id = ?`), id); err != nil {
		t.Fatal(err)
	}
	m := map[int]int{}
	for _, r := range rows {
		m[r.ID] = r.Batch
	}
	return m
}

func TestRetryFailed(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			dsn := dsnFor(t, k)
			api := newOutageAPI(t)
			args := []string{"-dsn", dsn, "-profile-url", api.URL + "/anything", "-seed-rows", "600", "-batch-size", "50",
				"-max-batches", "12", "-http-retries", "1", "-json", "-execution-id", "out-1"}
			ctx := context.Background()

			// The outage: 30 travelers get 503 (transient after the
			// retry), 6 get 404 (permanent); all stored as invalid rows.
			code, stdout, stderr := program(t, ctx, args...)
			s := summaryOf(t, stdout)
			if code != exitOK || s.Data.ValidRows != 564 || s.Data.InvalidRows != 36 || s.Data.MaxBatchNumber != 12 || s.Replay != nil {
				t.Fatalf("run: exit %d %+v\n%s", code, s, stderr)
			}
			batches := batchNumbers(t, dsn, "out-1")
			api.requests()

			// Healed: the replay sends exactly one request per transient
			// failure, none for the 404s, and those rows are valid now,
			// each in its batch.
			api.healed.Store(true)
			code, stdout, stderr = program(t, ctx, append(args, "-retry-failed")...)
			s = summaryOf(t, stdout)
			sent := api.requests()
			want := ReplaySummary{Scope: "transient", Number: 1, Replayed: 30, Recovered: 30, StillFailed: 6, StillTransient: 0}
			if code != exitOK || s.Replay == nil || *s.Replay != want || s.Data.ValidRows != 594 || s.Data.InvalidRows != 6 ||
				s.Data.StoredRows != 600 || s.Data.MaxBatchNumber != 12 {
				t.Fatalf("replay: exit %d %+v %+v\n%s", code, s, s.Replay, stderr)
			}
			if sum(sent) != 30 || len(sent) != 30 {
				t.Fatalf("replay sent %d requests to %d travelers, want 30 to 30: %v", sum(sent), len(sent), sent)
			}
			for id := range sent {
				if id%20 != 0 {
					t.Fatalf("replay sent a request for traveler %d", id)
				}
			}
			if got := batchNumbers(t, dsn, "out-1"); !mapsEqual(got, batches) {
				t.Fatal("batch numbers changed by the replay")
			}

			// Again: nothing transient left; nothing sent, and it says so.
			code, stdout, stderr = program(t, ctx, append(args, "-retry-failed=true")...)
			s = summaryOf(t, stdout)
			if code != exitOK || s.Replay == nil || !s.Replay.NothingToReplay || s.Replay.StillFailed != 6 || sum(api.requests()) != 0 {
				t.Fatalf("second replay: exit %d %+v\n%s", code, s.Replay, stderr)
			}

			// With all, the 404s are retried too; while they still
			// answer 404, the batch of 6 that all fail again is written
			// (-retry-failed=all expects failures), and they stay failed.
			code, stdout, stderr = program(t, ctx, append(args, "-retry-failed=all")...)
			s = summaryOf(t, stdout)
			want = ReplaySummary{Scope: "all", Number: 2, Replayed: 6, Recovered: 0, StillFailed: 6}
			if code != exitOK || s.Replay == nil || *s.Replay != want || s.Data.InvalidRows != 6 || sum(api.requests()) != 6 {
				t.Fatalf("replay of all, 404s not healed: exit %d %+v %+v\n%s", code, s, s.Replay, stderr)
			}
			api.healed404.Store(true)
			code, stdout, stderr = program(t, ctx, append(args, "-retry-failed=all")...)
			s = summaryOf(t, stdout)
			sent = api.requests()
			want = ReplaySummary{Scope: "all", Number: 3, Replayed: 6, Recovered: 6}
			if code != exitOK || s.Replay == nil || *s.Replay != want || s.Data.ValidRows != 600 || s.Data.InvalidRows != 0 ||
				sum(sent) != 6 || sent[7] != 1 || sent[107] != 1 || sent[507] != 1 {
				t.Fatalf("replay of all: exit %d %+v %+v, sent %v\n%s", code, s, s.Replay, sent, stderr)
			}
			if got := batchNumbers(t, dsn, "out-1"); !mapsEqual(got, batches) {
				t.Fatal("batch numbers changed by the replay of all")
			}
		})
	}
}

func TestRetryFailedInterruptedThenResumed(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			dsn, api, replayArgs, batches := outageRun(t, k, "out-2")

			// Ctrl-C as the replay's third batch (travelers 220..300)
			// is enriched. The interrupted replay has an API of its own:
			// a request it cancelled may reach an API after the
			// replay returned, and must not be counted with the resumed
			// replay's.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			interruptedAPI := newOutageAPI(t)
			interruptedAPI.healed.Store(true)
			interruptedAPI.mu.Lock()
			interruptedAPI.onRequest = func(id int) {
				if id == 260 {
					cancel()
				}
			}
			interruptedAPI.mu.Unlock()
			code, stdout, stderr := program(t, ctx, append(replayArgs[:len(replayArgs):len(replayArgs)], "-profile-url", interruptedAPI.URL+"/anything")...)
			s := summaryOf(t, stdout)
			if code != exitIncomplete || s.Status != "failed" || s.Replay == nil || s.Replay.Replayed != 10 ||
				!strings.Contains(stderr, "run again with -execution-id out-2 -retry-failed=transient to resume") {
				t.Fatalf("interrupted replay: exit %d %+v\n%s", code, s.Replay, stderr)
			}
			first := interruptedAPI.requests()

			// Run again: the replay resumes after its committed batches
			// and completes with exact rows.
			code, stdout, stderr = program(t, context.Background(), replayArgs...)
			s = summaryOf(t, stdout)
			second := api.requests()
			if code != exitOK || s.Replay == nil || s.Replay.Number != 1 || s.Replay.StillTransient != 0 || s.Replay.StillFailed != 4 ||
				s.Execution.BatchesSkipped != 2 || s.Data.ValidRows != 396 || s.Data.StoredRows != 400 || s.Data.MissingRows != 0 {
				t.Fatalf("resumed replay: exit %d %+v %+v\n%s", code, s, s.Replay, stderr)
			}
			for id := 20; id <= 200; id += 20 {
				if second[id] != 0 {
					t.Fatalf("resumed replay retried traveler %d, committed before the interruption", id)
				}
			}
			if sum(second) != 10 || sum(first)+sum(second) > 20+5 {
				t.Fatalf("requests: %v, then %v", first, second)
			}
			if got := batchNumbers(t, dsn, "out-2"); !mapsEqual(got, batches) {
				t.Fatal("batch numbers changed by the replay")
			}
		})
	}
}

func TestRetryFailedNeedsARun(t *testing.T) {
	dsn := dsnFor(t, testdb.SQLite)
	api := newOutageAPI(t)
	code, _, stderr := program(t, context.Background(), "-dsn", dsn, "-profile-url", api.URL+"/anything", "-execution-id", "never-ran", "-retry-failed")
	if code != exitUsage || !strings.HasSuffix(stderr, "\ntravelers: -retry-failed: no such run \"never-ran\" here: nothing was committed under that -execution-id\n") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if n := sum(api.requests()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

func TestRetryFailedFlag(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want retryMode
		err  string
	}{
		{[]string{"-execution-id", "x"}, retryOff, ""},
		{[]string{"-execution-id", "x", "-retry-failed"}, retryTransient, ""},
		{[]string{"-execution-id", "x", "-retry-failed=true"}, retryTransient, ""},
		{[]string{"-execution-id", "x", "-retry-failed=transient"}, retryTransient, ""},
		{[]string{"-execution-id", "x", "-retry-failed=all"}, retryAll, ""},
		{[]string{"-execution-id", "x", "-retry-failed=false"}, retryOff, ""},
		{[]string{"-execution-id", "x", "-retry-failed=some"}, retryOff, `invalid boolean value "some" for -retry-failed: want no value (transient failures), =transient or =all`},
		{[]string{"-retry-failed"}, retryOff, "-retry-failed: needs the -execution-id of the run whose failures to replay"},
		{[]string{"-execution-id", "x", "-retry-failed", "-dry-run"}, retryOff, "-retry-failed and -dry-run: give one or the other"},
		{[]string{"-execution-id", "x", "-retry-failed", "all"}, retryOff, `unexpected argument "all"`},
	} {
		c2, err := parseFlags(c.args, &bytes.Buffer{}, noEnv)
		switch {
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%v: error %v, want %s", c.args, err, c.err)
		case c.err == "" && (err != nil || c2.retryFailed != c.want):
			t.Errorf("%v: %v, %v; want %v", c.args, c2.retryFailed, err, c.want)
		}
	}
}

func mapsEqual(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A run split into partitions is replayed as one stream: its failures in
// every partition, each row keeping its batch number and partition, and
// the final validation that of the partitioned run.
func TestRetryFailedOfAPartitionedRun(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			dsn := dsnFor(t, k)
			api := newOutageAPI(t)
			args := []string{"-dsn", dsn, "-profile-url", api.URL + "/anything", "-seed-rows", "400", "-batch-size", "50",
				"-max-batches", "10", "-http-retries", "0", "-json", "-execution-id", "part-1"}
			code, stdout, stderr := program(t, context.Background(), append(args, "-partitions", "2")...)
			if s := summaryOf(t, stdout); code != exitOK || s.Data.InvalidRows != 24 {
				t.Fatalf("partitioned run: exit %d %+v\n%s", code, s, stderr)
			}
			batches := batchNumbers(t, dsn, "part-1")
			api.requests()
			api.healed.Store(true)
			code, stdout, stderr = program(t, context.Background(), append(args, "-retry-failed")...)
			s := summaryOf(t, stdout)
			if code != exitOK || s.Replay == nil || s.Replay.Replayed != 20 || s.Configured.Partitions != 2 ||
				s.Data.ExpectedRows != 400 || s.Data.StoredRows != 400 || s.Data.ValidRows != 396 || sum(api.requests()) != 20 {
				t.Fatalf("replay: exit %d %+v %+v\n%s", code, s, s.Replay, stderr)
			}
			if got := batchNumbers(t, dsn, "part-1"); !mapsEqual(got, batches) {
				t.Fatal("batch numbers changed by the replay")
			}
		})
	}
}
