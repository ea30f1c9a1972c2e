package httpenrich_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/httpenrich"
)

type person struct{ ID int }

func (p person) Key() string { return strconv.Itoa(p.ID) }

type profile struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// bulkAPI serves GET /profiles?ids=1,2,3 answering, in reverse order,
// {"profiles":[{"id":3,"name":"P3"},…]}; ids divisible by 7 are left out
// and ids divisible by 5 get {"id":5,"error":"not found"}. It records the
// ids of each request.
type bulkAPI struct {
	mu    sync.Mutex
	calls [][]int
	keys  []string // Idempotency-Key headers
}

func (a *bulkAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ids []int
	for _, s := range strings.Split(r.URL.Query().Get("ids"), ",") {
		id, err := strconv.Atoi(s)
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		ids = append(ids, id)
	}
	a.mu.Lock()
	a.calls = append(a.calls, ids)
	a.keys = append(a.keys, r.Header.Get(httpenrich.IdempotencyKeyHeader))
	a.mu.Unlock()
	var out []map[string]any
	for _, id := range slices.Backward(ids) {
		switch {
		case id%7 == 0:
		case id%5 == 0:
			out = append(out, map[string]any{"id": id, "error": "not found"})
		default:
			out = append(out, map[string]any{"id": id, "name": fmt.Sprintf("P%d", id)})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"profiles": out})
}

func (a *bulkAPI) Calls() [][]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

func bulkConfig(base string) (httpenrich.Config[person, profile, profile], httpenrich.Bulk[person]) {
	cfg := httpenrich.Config[person, profile, profile]{
		URL: base + "/profiles",
		Validate: func(p person, r *httpenrich.Response[profile]) (profile, error) {
			if r.Body.ID != p.ID || r.Body.Name == "" {
				return profile{}, fmt.Errorf("profile %d for person %d", r.Body.ID, p.ID)
			}
			return r.Body, nil
		},
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
	}
	b := httpenrich.Bulk[person]{
		MaxItems: 10,
		Key:      person.Key,
		Request: func(ps []person) (httpenrich.Params, error) {
			ids := make([]string, len(ps))
			for i, p := range ps {
				ids[i] = p.Key()
			}
			return httpenrich.Params{Query: url.Values{"ids": {strings.Join(ids, ",")}}}, nil
		},
		Entries: httpenrich.JSONEntries("profiles", "id", "error"),
	}
	return cfg, b
}

func people(n int) []person {
	ps := make([]person, n)
	for i := range ps {
		ps[i] = person{ID: i + 1}
	}
	return ps
}

func runPeople(t *testing.T, enr batchenrich.Enricher[person, profile], n int, o batchenrich.Options) (*batchenrichtest.Sink[person, profile], error) {
	t.Helper()
	sink := &batchenrichtest.Sink[person, profile]{FirstBatch: 1}
	r, err := batchenrich.New[person, profile](batchenrichtest.NewSliceSource(people(n)), enr, sink, o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background())
	if cerr := sink.Check(); cerr != nil {
		t.Errorf("sink: %v", cerr)
	}
	return sink, err
}

// checkPeople checks each result against what bulkAPI answers.
func checkPeople(t *testing.T, res []batchenrich.Result[person, profile], n int) {
	t.Helper()
	if len(res) != n {
		t.Fatalf("%d results, want %d", len(res), n)
	}
	for i, r := range res {
		id := i + 1
		var he *httpenrich.Error
		switch {
		case r.Item.ID != id:
			t.Fatalf("result %d is person %d", i, r.Item.ID)
		case id%7 == 0:
			if !errors.As(r.Err, &he) || he.Reason != httpenrich.ReasonMissing || batchenrich.Classify(r.Err) != batchenrich.ClassPermanent {
				t.Fatalf("person %d: %v, want missing from answer", id, r.Err)
			}
			if got := batchenrich.FailureReason(r.Err); got != "missing from answer: the answer has no entry for the item's key (status 200, after 1 attempt)" {
				t.Fatalf("person %d: reason %q", id, got)
			}
		case id%5 == 0:
			if !errors.As(r.Err, &he) || he.Reason != httpenrich.ReasonItem || batchenrich.Classify(r.Err) != batchenrich.ClassPermanent {
				t.Fatalf("person %d: %v, want item error", id, r.Err)
			}
			if got := batchenrich.FailureReason(r.Err); !strings.HasPrefix(got, "item error: not found") {
				t.Fatalf("person %d: reason %q", id, got)
			}
		default:
			if r.Err != nil || r.Value.ID != id || r.Value.Name != fmt.Sprintf("P%d", id) {
				t.Fatalf("person %d: %+v", id, r)
			}
		}
	}
}

func TestBulkMatchesByKey(t *testing.T) {
	t.Parallel()
	api := &bulkAPI{}
	srv := newServer(t, api)
	cfg, b := bulkConfig(srv.URL)
	enr, err := httpenrich.NewBulk(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	defer enr.Close()
	sink, err := runPeople(t, enr, 95, batchenrich.Options{BatchSize: 25, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	checkPeople(t, sink.Results(), 95)
	// 4 batches (25, 25, 25, 20): 3, 3, 3 and 2 calls of at most 10 ids.
	calls := api.Calls()
	if len(calls) != 11 {
		t.Fatalf("%d requests, want 11", len(calls))
	}
	for _, c := range calls {
		if len(c) > 10 {
			t.Fatalf("a request for %d ids", len(c))
		}
	}
}

func TestBulkFailedCallRetried(t *testing.T) {
	t.Parallel()
	api := &bulkAPI{}
	srv := newServer(t, script(status(503, "Retry-After", "0"), status(500), status(429), api.ServeHTTP))
	cfg, b := bulkConfig(srv.URL)
	enr, err := httpenrich.NewBulk(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	defer enr.Close()
	sink, err := runPeople(t, enr, 10, batchenrich.Options{BatchSize: 10, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 4 {
		t.Fatalf("%d requests, want 4 (one call: 3 failed attempts and the answer)", n)
	}
	res := sink.Results()
	if res[0].Err != nil || res[0].Value.Name != "P1" {
		t.Fatalf("person 1: %+v", res[0])
	}
	var he *httpenrich.Error
	if !errors.As(res[4].Err, &he) || he.Attempts != 4 {
		t.Fatalf("person 5: %v, want its error after 4 attempts", res[4].Err)
	}
}

func TestBulkFailedCallFailsEveryItem(t *testing.T) {
	t.Parallel()
	srv := newServer(t, status(503))
	cfg, b := bulkConfig(srv.URL)
	cfg.MaxAttempts = 2
	enr, err := httpenrich.NewBulk(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	defer enr.Close()
	vals, errs := enr.EnrichBulk(context.Background(), people(3))
	if len(vals) != 3 || len(errs) != 3 {
		t.Fatalf("%d values, %d errors", len(vals), len(errs))
	}
	for i, err := range errs {
		if batchenrich.Classify(err) != batchenrich.ClassTransient || batchenrich.FailureReason(err) != "status 503 after 2 attempts" {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	// Through a Runner: every item of every group failed, so the
	// all-failed stop ends the run before anything is written.
	sink, err := runPeople(t, enr, 20, batchenrich.Options{BatchSize: 20})
	if !errors.Is(err, batchenrich.ErrAllFailed) || !strings.Contains(err.Error(), "status 503 after 2 attempts") {
		t.Fatalf("err = %v, want ErrAllFailed", err)
	}
	if len(sink.Batches()) != 0 {
		t.Fatal("a batch was written")
	}
}

func TestBulkRequestSplitBySize(t *testing.T) {
	t.Parallel()
	api := &bulkAPI{}
	srv := newServer(t, api)
	cfg, b := bulkConfig(srv.URL)
	b.MaxItems = 20
	// The URL with 20 ids is longer than this; with 5, shorter.
	b.MaxRequestBytes = len(srv.URL+"/profiles?ids=") + 5*3
	enr, err := httpenrich.NewBulk(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	defer enr.Close()
	sink, err := runPeople(t, enr, 40, batchenrich.Options{BatchSize: 20, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkPeople(t, sink.Results(), 40)
	for _, c := range api.Calls() {
		if len(c) > 5 || len(c) == 0 {
			t.Fatalf("a request for %v", c)
		}
	}
	// A single item that does not fit fails alone.
	b.MaxRequestBytes = 10
	tiny, err := httpenrich.NewBulk(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	defer tiny.Close()
	_, errs := tiny.EnrichBulk(context.Background(), people(2))
	var he *httpenrich.Error
	if !errors.As(errs[1], &he) || he.Reason != httpenrich.ReasonRequest || batchenrich.Classify(errs[1]) != batchenrich.ClassPermanent {
		t.Fatalf("err = %v", errs[1])
	}
}

func TestBulkIdempotencyKeyPerGroup(t *testing.T) {
	t.Parallel()
	api := &bulkAPI{}
	srv := newServer(t, script(status(503), api.ServeHTTP))
	cfg, b := bulkConfig(srv.URL)
	cfg.IdempotencyKey = true
	enr, err := httpenrich.NewBulk(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	defer enr.Close()
	store := batchenrichtest.NewCheckpoints()
	if _, err := runPeople(t, enr, 20, batchenrich.Options{BatchSize: 20, Concurrency: 1, Durable: &batchenrich.Durable{Store: store, RunKey: "run-1"}}); err != nil {
		t.Fatal(err)
	}
	keys := api.keys
	if len(keys) != 2 || keys[0] == "" || keys[0] == keys[1] {
		t.Fatalf("keys %q: want two different non-empty keys, one per group", keys)
	}
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = strconv.Itoa(i + 1)
	}
	if want := httpenrich.IdempotencyKeyFor("run-1", "bulk:"+strings.Join(ids, "\x00")); keys[0] != want {
		t.Fatalf("first group's key %s, want %s", keys[0], want)
	}
}

func TestNewBulkRefuses(t *testing.T) {
	t.Parallel()
	for field, mod := range map[string]func(*httpenrich.Config[person, profile, profile], *httpenrich.Bulk[person]){
		"Bulk.MaxItems": func(_ *httpenrich.Config[person, profile, profile], b *httpenrich.Bulk[person]) { b.MaxItems = 0 },
		"Bulk.MaxRequestBytes": func(_ *httpenrich.Config[person, profile, profile], b *httpenrich.Bulk[person]) {
			b.MaxRequestBytes = -1
		},
		"Bulk.Key":     func(_ *httpenrich.Config[person, profile, profile], b *httpenrich.Bulk[person]) { b.Key = nil },
		"Bulk.Request": func(_ *httpenrich.Config[person, profile, profile], b *httpenrich.Bulk[person]) { b.Request = nil },
		"Bulk.Entries": func(_ *httpenrich.Config[person, profile, profile], b *httpenrich.Bulk[person]) { b.Entries = nil },
		"Request": func(c *httpenrich.Config[person, profile, profile], _ *httpenrich.Bulk[person]) {
			c.Request = func(person) (httpenrich.Params, error) { return httpenrich.Params{}, nil }
		},
		"URL": func(c *httpenrich.Config[person, profile, profile], _ *httpenrich.Bulk[person]) {
			c.URL += "/{group}"
			c.PathParams = []string{}
		},
	} {
		cfg, b := bulkConfig("http://127.0.0.1:1")
		mod(&cfg, &b)
		_, err := httpenrich.NewBulk(cfg, b)
		var oe *batchenrich.ConfigError
		if !errors.As(err, &oe) || oe.Field != field {
			t.Errorf("%s: err = %v", field, err)
		}
	}
}

func TestJSONEntries(t *testing.T) {
	t.Parallel()
	got, err := httpenrich.JSONEntries("", "id", "error")([]byte(`[{"id":"a","v":1},{"id":2,"error":null},{"id":3,"error":{"code":9}},{"id":4,"error":"gone"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].Key != "a" || string(got[0].Body) != `{"id":"a","v":1}` || got[1].Key != "2" || got[1].Err != nil ||
		got[2].Err == nil || got[2].Err.Error() != `{"code":9}` || got[3].Err.Error() != "gone" {
		t.Fatalf("%+v", got)
	}
	for _, raw := range []string{`{"x":[]}`, `[{"name":1}]`, `[{"id":true}]`, `[1]`} {
		if _, err := httpenrich.JSONEntries("", "id", "")([]byte(raw)); err == nil {
			t.Errorf("%s: no error", raw)
		}
	}
}

// TestJSONEntriesNames: an empty keyField names the member "" (was any
// member named "K" or "k": the general path's struct field name), and
// arrayField is matched exactly, as documented.
func TestJSONEntriesNames(t *testing.T) {
	t.Parallel()
	if got, err := httpenrich.JSONEntries("", "", "")([]byte(`[{"K":5}]`)); err == nil {
		t.Errorf("keyField \"\" read a \"K\" member: %+v", got)
	}
	if got, err := httpenrich.JSONEntries("", "", "")([]byte(`[{"":5}]`)); err != nil || len(got) != 1 || got[0].Key != "5" {
		t.Errorf("keyField \"\" on its member: %+v, %v", got, err)
	}
	if got, err := httpenrich.JSONEntries("", "", "")([]byte(`[{"":5,"K":6}]`)); err != nil || len(got) != 1 || got[0].Key != "5" {
		t.Errorf("keyField \"\" beside a \"K\": %+v, %v", got, err)
	}
	if got, err := httpenrich.JSONEntries("Profiles", "id", "")([]byte(`{"profiles":[{"id":5}]}`)); err == nil {
		t.Errorf("arrayField matched in another case: %+v", got)
	}
	if got, err := httpenrich.JSONEntries("profiles", "ID", "Error")([]byte(`{"profiles":[{"id":5,"error":"gone"}]}`)); err != nil ||
		len(got) != 1 || got[0].Key != "5" || got[0].Err == nil {
		t.Errorf("key and error members in another case: %+v, %v", got, err)
	}
}

// BenchmarkJSONEntries splits a bulk answer of 100 entries shaped like
// bench's profile API's (/bulk):
//
//	go test -run '^$' -bench JSONEntries -benchmem ./httpenrich
func BenchmarkJSONEntries(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"profiles":[`)
	for i := range 100 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"traveler_id":"%d","args":{"traveler_id":["%d"]}}`, 1000+i, 1000+i)
	}
	body.WriteString(`]}`)
	raw := []byte(body.String())
	entries := httpenrich.JSONEntries("profiles", "traveler_id", "error")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if got, err := entries(raw); err != nil || len(got) != 100 || got[99].Key != "1099" {
			b.Fatalf("%d entries, %v", len(got), err)
		}
	}
}
