package httpenrich_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// TestKeepAliveAcrossBatches runs several batches through a real Runner
// and checks that the server saw no more connections than the concurrency,
// but for those replacing one net/http did not pool (see poolTrace).
func TestKeepAliveAcrossBatches(t *testing.T) {
	t.Parallel()
	const concurrency, batchSize, batches = 8, 24, 4
	srv := newServer(t, httpbin.New())
	items := make([]traveler, batchSize*batches)
	for i := range items {
		items[i] = traveler{ID: i + 1, Name: "Traveler " + strconv.Itoa(i+1)}
	}
	cfg := travelerConfig(srv.URL)
	cfg.Pool = httpenrich.Pool{MaxKeepAliveConnections: 2}.ForConcurrency(concurrency)
	e := mustNew(t, cfg)
	sink := batchenrichtest.NewSink[traveler, string]()
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(items), e, sink,
		batchenrich.Options{BatchSize: batchSize, Concurrency: concurrency})
	if err != nil {
		t.Fatal(err)
	}
	var pool poolTrace
	rep, err := r.Run(pool.context(testCtx(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Check(); err != nil {
		t.Fatal(err)
	}
	if rep.BatchesRun != batches || rep.Failed != 0 || rep.Written != len(items) {
		t.Fatalf("report: %+v", rep)
	}
	for i, res := range sink.Results() {
		if want := "Traveler " + strconv.Itoa(i+1); res.Value != want {
			t.Fatalf("result %d = %q, want %q", i, res.Value, want)
		}
	}
	pool.check(t, srv, concurrency)
}

// TestFailedItemsInRun: failed items reach the Sink with the status and
// reason, and do not empty the pool.
func TestFailedItemsInRun(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, _ := strconv.Atoi(r.URL.Query().Get("traveler_id")); id%5 == 0 {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		httpbin.New().ServeHTTP(w, r)
	}))
	items := make([]traveler, 40)
	for i := range items {
		items[i] = traveler{ID: i + 1, Name: fmt.Sprint("T", i+1)}
	}
	cfg := travelerConfig(srv.URL)
	cfg.Pool = httpenrich.Pool{}.ForConcurrency(4)
	e := mustNew(t, cfg)
	sink := batchenrichtest.NewSink[traveler, string]()
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(items), e, sink,
		batchenrich.Options{BatchSize: 10, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	var pool poolTrace
	rep, err := r.Run(pool.context(testCtx(t)))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 8 {
		t.Errorf("failed = %d, want 8", rep.Failed)
	}
	for _, res := range sink.Results() {
		if res.Item.ID%5 != 0 {
			continue
		}
		he := asError(t, res.Err)
		if he.Status != 404 || he.Reason != httpenrich.ReasonStatus || batchenrich.Classify(res.Err) != batchenrich.ClassPermanent {
			t.Errorf("item %d: %v", res.Item.ID, res.Err)
		}
	}
	pool.check(t, srv, 4)
}

// TestRateLimit: with a burst of 3 and a rate so low that a fourth token
// would take hours, exactly 3 requests are sent and the other items fail at
// once, because waiting would outlast their deadline.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	srv := newServer(t, httpbin.New())
	cfg := travelerConfig(srv.URL)
	cfg.RateLimit, cfg.RateBurst = 0.0001, 3
	e := mustNew(t, cfg)
	items := make([]traveler, 10)
	for i := range items {
		items[i] = traveler{ID: i + 1}
	}
	sink := batchenrichtest.NewSink[traveler, string]()
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(items), e, sink,
		batchenrich.Options{BatchSize: 4, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(testCtx(t)) // has a deadline
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 3 {
		t.Errorf("server saw %d requests, want 3", n)
	}
	if rep.Enriched != 3 || rep.Failed != 7 {
		t.Errorf("enriched %d, failed %d", rep.Enriched, rep.Failed)
	}
	for _, res := range sink.Results() {
		if res.Err == nil {
			continue
		}
		if he := asError(t, res.Err); he.Reason != httpenrich.ReasonRateLimit || he.Attempts != 0 {
			t.Errorf("item %d: %v", res.Item.ID, res.Err)
		}
		if batchenrich.Classify(res.Err) != batchenrich.ClassTransient {
			t.Errorf("item %d: class %v", res.Item.ID, batchenrich.Classify(res.Err))
		}
	}
}

// TestRateLimitCountsRetries: every attempt takes a token.
func TestRateLimitCountsRetries(t *testing.T) {
	t.Parallel()
	srv := newServer(t, script(status(503), status(503), body(200, `{}`)))
	e := mustNew(t, fast(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
		URL:       srv.URL,
		RateLimit: 0.0001,
		RateBurst: 2,
	}))
	_, err := e.Enrich(testCtx(t), 1)
	he := asError(t, err)
	if he.Reason != httpenrich.ReasonRateLimit || he.Attempts != 2 || he.Status != 503 {
		t.Errorf("got %v", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
	// A cancelled context ends the wait for a token.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.Enrich(ctx, 2)
	if he := asError(t, err); he.Reason != httpenrich.ReasonCanceled {
		t.Errorf("got %v", err)
	}
}
