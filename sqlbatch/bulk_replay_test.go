package sqlbatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
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

// bulkFlakyAPI answers GET /bulk?ids=1,2,3 with {"profiles":[…]} in
// reverse order: while broken, every 20th id gets an entry
// {"id":20,"error":"overloaded","transient":true} and id%100 == 7 an entry
// {"id":7,"error":"no such traveler"}; the others, and all once healed,
// {"id":1,"score":2}. When block is set, a request naming id 41 waits for
// the client to go away, after telling blocked. It records the ids asked
// for, with the run number the request carries (its "run" parameter,
// which newBulkTravelerEnricher sets from run when it builds the request):
// a request of an interrupted run may reach the handler after that run
// returned, and must not count as the next run's.
type bulkFlakyAPI struct {
	*httptest.Server
	healed  atomic.Bool
	block   atomic.Bool
	run     atomic.Int64 // read by the client side: the run number requests carry
	blocked chan struct{}
	mu      sync.Mutex
	asked   []askedID
}

// askedID is an id asked for by a request of run run.
type askedID struct{ run, id int64 }

func newBulkFlakyAPI(t *testing.T) *bulkFlakyAPI {
	a := &bulkFlakyAPI{blocked: make(chan struct{}, 1)}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ids []int64
		for _, s := range strings.Split(r.URL.Query().Get("ids"), ",") {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				http.Error(w, "bad id", http.StatusBadRequest)
				return
			}
			ids = append(ids, id)
		}
		if a.block.Load() && slices.Contains(ids, 41) {
			select {
			case a.blocked <- struct{}{}:
			default:
			}
			<-r.Context().Done()
			return
		}
		run, _ := strconv.ParseInt(r.URL.Query().Get("run"), 10, 64)
		a.mu.Lock()
		for _, id := range ids {
			a.asked = append(a.asked, askedID{run, id})
		}
		a.mu.Unlock()
		var out []map[string]any
		for _, id := range slices.Backward(ids) {
			switch {
			case id%20 == 0 && !a.healed.Load():
				out = append(out, map[string]any{"id": id, "error": "overloaded", "transient": true})
			case id%100 == 7 && !a.healed.Load():
				out = append(out, map[string]any{"id": id, "error": "no such traveler"})
			default:
				out = append(out, map[string]any{"id": id, "score": 2 * id})
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"profiles": out})
	}))
	t.Cleanup(a.Close)
	return a
}

// take returns the ids asked for since the last call, sorted.
func (a *bulkFlakyAPI) take() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []int64
	for _, x := range a.asked {
		ids = append(ids, x.id)
	}
	a.asked = nil
	slices.Sort(ids)
	return ids
}

// takeRun returns the ids asked for by run's requests since the last call,
// sorted, leaving the others'.
func (a *bulkFlakyAPI) takeRun(run int64) []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []int64
	a.asked = slices.DeleteFunc(a.asked, func(x askedID) bool {
		if x.run == run {
			ids = append(ids, x.id)
		}
		return x.run == run
	})
	slices.Sort(ids)
	return ids
}

// bulkEntries reads bulkFlakyAPI's answers: an entry with "transient" is a
// transient failure of its item.
func bulkEntries(raw []byte) ([]httpenrich.Entry, error) {
	var answer struct {
		Profiles []json.RawMessage `json:"profiles"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, err
	}
	out := make([]httpenrich.Entry, len(answer.Profiles))
	for i, p := range answer.Profiles {
		var e struct {
			ID        int64  `json:"id"`
			Error     string `json:"error"`
			Transient bool   `json:"transient"`
		}
		if err := json.Unmarshal(p, &e); err != nil {
			return nil, err
		}
		out[i] = httpenrich.Entry{Key: strconv.FormatInt(e.ID, 10), Body: p}
		switch {
		case e.Error != "" && e.Transient:
			out[i].Err = batchenrich.Transient(errors.New(e.Error))
		case e.Error != "":
			out[i].Err = errors.New(e.Error)
		}
	}
	return out, nil
}

func newBulkTravelerEnricher(t *testing.T, api *bulkFlakyAPI) *httpenrich.BulkEnricher[Traveler, Enriched, Enriched] {
	t.Helper()
	enr, err := httpenrich.NewBulk(httpenrich.Config[Traveler, Enriched, Enriched]{
		URL:          api.URL + "/bulk",
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: time.Millisecond,
	}, httpenrich.Bulk[Traveler]{
		MaxItems: 6,
		Key:      func(tr Traveler) string { return strconv.FormatInt(tr.TravelerID, 10) },
		Request: func(ts []Traveler) (httpenrich.Params, error) {
			ids := make([]string, len(ts))
			for i, tr := range ts {
				ids[i] = strconv.FormatInt(tr.TravelerID, 10)
			}
			return httpenrich.Params{Query: url.Values{"ids": {strings.Join(ids, ",")}, "run": {strconv.FormatInt(api.run.Load(), 10)}}}, nil
		},
		Entries: bulkEntries,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enr.Close() })
	return enr
}

// bulkOutage is what a bulk run stores during bulkFlakyAPI's outage: each
// failure in one attempt (the request succeeded; its entry failed).
func bulkOutage(id int64) (string, int, bool) {
	switch {
	case id%20 == 0:
		return "transient", 1, true
	case id%100 == 7:
		return "permanent", 1, true
	}
	return "", 0, false
}

// TestReplayBulkFailures runs e1 with a bulk Enricher whose answers fail
// some items (transient and permanent entries), then replays the
// transient failures with it: only they are asked for again, in groups,
// and their rows become valid in their batches.
func TestReplayBulkFailures(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		j := newReplayJob(t, k, db)
		api := newBulkFlakyAPI(t)
		enr := newBulkTravelerEnricher(t, api)
		src, err := sqlbatch.NewSource[Traveler](db, replaySourceConfig)
		if err != nil {
			t.Fatal(err)
		}
		r, err := batchenrich.New(src, batchenrich.Enricher[Traveler, Enriched](enr), j.sink,
			batchenrich.Options{BatchSize: 20, Concurrency: 3, Durable: &batchenrich.Durable{Store: j.store, RunKey: "e1"}})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(context.Background())
		if err != nil || rep.Failed != 12 || rep.Written != 200 {
			t.Fatalf("run: %+v, %v; want 12 failed of 200", rep, err)
		}
		j.checkRows(t, bulkOutage)
		if n := len(api.take()); n != 200 {
			t.Fatalf("the run asked for %d ids, want 200", n)
		}

		api.healed.Store(true)
		rr, err := j.replay(t, context.Background(), false, enr)
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for id := int64(20); id <= 200; id += 20 {
			want = append(want, id)
		}
		if got := api.take(); !slices.Equal(got, want) {
			t.Fatalf("the replay asked for %v, want the transient failures %v", got, want)
		}
		if rr.Written != 10 || rr.Enriched != 10 {
			t.Fatalf("replay: %+v", rr)
		}
		j.checkRows(t, only404)
	})
}

// TestBulkResumeAfterInterruption stops a durable bulk run while a group
// of batch 3 is in flight, then runs it again: it resumes after batch 2,
// asks for none of batches 1 and 2 again, and stores every row once in
// its batch.
func TestBulkResumeAfterInterruption(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		j := newReplayJob(t, k, db)
		api := newBulkFlakyAPI(t)
		api.healed.Store(true)
		api.block.Store(true)
		enr := newBulkTravelerEnricher(t, api)
		run := func(ctx context.Context) (batchenrich.Report, error) {
			src, err := sqlbatch.NewSource[Traveler](db, replaySourceConfig)
			if err != nil {
				t.Fatal(err)
			}
			r, err := batchenrich.New(src, batchenrich.Enricher[Traveler, Enriched](enr), j.sink,
				batchenrich.Options{BatchSize: 20, Concurrency: 3, Durable: &batchenrich.Durable{Store: j.store, RunKey: "e1"}})
			if err != nil {
				t.Fatal(err)
			}
			return r.Run(ctx)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		api.run.Store(1)
		go func() { _, err := run(ctx); done <- err }()
		select {
		case <-api.blocked:
		case <-time.After(time.Minute):
			t.Fatal("batch 3's group was never sent")
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: %v", err)
		}
		first := api.takeRun(1) // its requests that reached the API so far
		if len(first) < 40 || slices.ContainsFunc(first, func(id int64) bool { return id > 60 }) {
			t.Fatalf("the interrupted run asked for %d ids, up to %d", len(first), slices.Max(first))
		}
		if n := len(j.rows(t)); n != 40 {
			t.Fatalf("%d rows after the interruption, want batches 1 and 2 (40)", n)
		}

		api.block.Store(false)
		api.run.Store(2)
		rep, err := run(context.Background())
		if err != nil || rep.BatchesSkipped != 2 || rep.Written != 160 {
			t.Fatalf("resumed run: %+v, %v", rep, err)
		}
		if again := api.takeRun(2); slices.ContainsFunc(again, func(id int64) bool { return id <= 40 }) || len(again) != 160 {
			t.Fatalf("the resumed run asked for %d ids, from %d", len(again), slices.Min(again))
		}
		j.checkRows(t, healed)
	})
}
