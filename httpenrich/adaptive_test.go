package httpenrich_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/httpenrich"
)

// keyed is an item that names itself (batchenrich.Keyer).
type keyed int

func (k keyed) Key() string { return "k" + strconv.Itoa(int(k)) }

func keyedItems(n int) []keyed {
	out := make([]keyed, n)
	for i := range out {
		out[i] = keyed(i + 1)
	}
	return out
}

func keyedConfig(base string) httpenrich.Config[keyed, json.RawMessage, json.RawMessage] {
	return httpenrich.Config[keyed, json.RawMessage, json.RawMessage]{
		URL: base + "/items/{id}",
		Request: func(k keyed) (httpenrich.Params, error) {
			return httpenrich.Params{Path: map[string]string{"id": strconv.Itoa(int(k))}}, nil
		},
	}
}

// admitting answers at most k requests at once, after delay, and 429 to
// those beyond; it counts both.
type admitting struct {
	k        int64
	delay    time.Duration
	inflight atomic.Int64
	ok, over atomic.Int64
}

func (a *admitting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.inflight.Add(1) > a.k {
		a.inflight.Add(-1)
		a.over.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	time.Sleep(a.delay)
	a.inflight.Add(-1)
	a.ok.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{}`))
}

func runKeyed(t *testing.T, e batchenrich.Enricher[keyed, json.RawMessage], items []keyed, o batchenrich.Options) (batchenrich.Report, *batchenrichtest.Sink[keyed, json.RawMessage], error) {
	t.Helper()
	sink := batchenrichtest.NewSink[keyed, json.RawMessage]()
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(items), e, sink, o)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(testCtx(t))
	if cerr := sink.Check(); cerr != nil {
		t.Error(cerr)
	}
	return rep, sink, err
}

// TestAdaptiveFindsTheAdmittedConcurrency: against a server admitting 4
// requests at once, a run with 32 workers loses no item, lowers its limit,
// and reports the changes in the Report and the events.
func TestAdaptiveFindsTheAdmittedConcurrency(t *testing.T) {
	t.Parallel()
	const k, ceiling = 4, 32
	api := &admitting{k: k, delay: 2 * time.Millisecond}
	srv := newServer(t, api)
	cfg := keyedConfig(srv.URL)
	cfg.Adaptive = &httpenrich.Adaptive{MaxConcurrency: ceiling}
	cfg.Pool = httpenrich.Pool{}.ForConcurrency(ceiling)
	cfg.MaxAttempts = 10
	e := mustNew(t, cfg)
	tr := &limitRecorder{}
	rep, _, err := runKeyed(t, e, keyedItems(400), batchenrich.Options{BatchSize: 100, Concurrency: ceiling, Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || rep.Written != 400 {
		t.Fatalf("failed %d, written %d; want 0, 400", rep.Failed, rep.Written)
	}
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Limits) != 1 || rep.Limits[0].Upstream != u.Host {
		t.Fatalf("Report.Limits = %+v, want one for %s", rep.Limits, u.Host)
	}
	l := rep.Limits[0]
	if l.First != 1 || l.Decreases == 0 || l.Increases == 0 || l.Min < 1 || l.Max > ceiling {
		t.Errorf("Report.Limits[0] = %+v: want first 1, increases and decreases, within [1, %d]", l, ceiling)
	}
	if api.over.Load() == 0 {
		t.Errorf("the server refused nothing: the test shows nothing")
	}
	if got := e.Limits()[u.Host]; got < 1 || got > ceiling {
		t.Errorf("Limits()[%s] = %d", u.Host, got)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, c := range tr.changes {
		if c.Upstream != u.Host || c.From == c.To || c.Reason == "" {
			t.Errorf("change %+v", c)
		}
	}
	if n := len(tr.changes); n != l.Increases+l.Decreases {
		t.Errorf("%d limit changes traced, want %d", n, l.Increases+l.Decreases)
	}
}

// limitRecorder is a Tracer recording the limit changes it is told of.
type limitRecorder struct {
	mu      sync.Mutex
	changes []batchenrich.UpstreamLimit
}

func (r *limitRecorder) TraceLimitChange(_ context.Context, c batchenrich.UpstreamLimit) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}
func (*limitRecorder) TraceRunStart(ctx context.Context, _ batchenrich.TraceRun) context.Context {
	return ctx
}
func (*limitRecorder) TraceRunEnd(context.Context, batchenrich.TraceRun) {}
func (*limitRecorder) TraceBatchStart(ctx context.Context, _ batchenrich.TraceBatch) context.Context {
	return ctx
}
func (*limitRecorder) TraceBatchEnd(context.Context, batchenrich.TraceBatch) {}
func (*limitRecorder) TraceItemStart(ctx context.Context, _ batchenrich.TraceItem) context.Context {
	return ctx
}
func (*limitRecorder) TraceItemEnd(context.Context, batchenrich.TraceItem) {}
func (*limitRecorder) TraceStageStart(ctx context.Context, _ batchenrich.TraceStage) context.Context {
	return ctx
}
func (*limitRecorder) TraceStageEnd(context.Context, batchenrich.TraceStage) {}

// TestRetryAfterGate: after a wave of 503s with Retry-After, the workers
// send one probe at a time until one gets through, instead of each
// retrying on its own: no request reaches the server while a probe is out.
func TestRetryAfterGate(t *testing.T) {
	t.Parallel()
	const n = 8
	var (
		mu       sync.Mutex
		arrived  int
		wave     = make(chan struct{})
		probeOut int // refused probes being answered
		overlaps int // requests that arrived while a probe was out
		statuses []int
	)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		i := arrived
		if i > n && probeOut > 0 {
			overlaps++
		}
		outage := i <= n+2 // the wave and two probes
		if i == n {
			close(wave)
		}
		if i > n && outage {
			probeOut++
		}
		mu.Unlock()
		if i <= n {
			<-wave // the first n requests are answered together
		}
		code := http.StatusOK
		if outage {
			code = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "1")
		}
		if i > n && outage {
			time.Sleep(50 * time.Millisecond) // a chance for others to overlap; never asserted on
			mu.Lock()
			probeOut--
			mu.Unlock()
		}
		mu.Lock()
		statuses = append(statuses, code)
		mu.Unlock()
		w.WriteHeader(code)
	}))
	cfg := keyedConfig(srv.URL)
	cfg.Adaptive = &httpenrich.Adaptive{MaxConcurrency: n, InitialConcurrency: n}
	cfg.MaxAttempts = 5
	cfg.RetryWaitMax = time.Second
	e := mustNew(t, cfg)
	rep, _, err := runKeyed(t, e, keyedItems(n), batchenrich.Options{Concurrency: n})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 {
		t.Fatalf("%d items failed", rep.Failed)
	}
	mu.Lock()
	defer mu.Unlock()
	if overlaps != 0 {
		t.Errorf("%d requests sent while a probe was out (statuses %v)", overlaps, statuses)
	}
	if len(statuses) != 2*n+2 { // the wave, two refused probes, a good one, the other n-1
		t.Errorf("%d requests (%v), want %d", len(statuses), statuses, 2*n+2)
	}
	if rep.Limits == nil || rep.Limits[0].Decreases == 0 {
		t.Errorf("no decrease reported: %+v", rep.Limits)
	}
}

// TestRateLimitHeadersPause: a host saying its budget is spent until a
// reset is not sent to before then; with IgnoreRateLimitHeaders it is.
func TestRateLimitHeadersPause(t *testing.T) {
	t.Parallel()
	for _, ignore := range []bool{false, true} {
		t.Run("ignore="+strconv.FormatBool(ignore), func(t *testing.T) {
			t.Parallel()
			var (
				mu      sync.Mutex
				served  int
				closed  time.Time // the server refuses requests before this
				refused int
			)
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				now := time.Now()
				if now.Before(closed) {
					refused++
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				served++
				if served == 1 {
					closed = now.Add(time.Second)
					w.Header().Set("X-RateLimit-Limit", "100")
					w.Header().Set("X-RateLimit-Remaining", "0")
					w.Header().Set("X-RateLimit-Reset", "1")
				}
				w.WriteHeader(http.StatusOK)
			}))
			cfg := keyedConfig(srv.URL)
			cfg.Adaptive = &httpenrich.Adaptive{MaxConcurrency: 4, IgnoreRateLimitHeaders: ignore}
			cfg.MaxAttempts = 20
			cfg.RetryWaitMin, cfg.RetryWaitMax = 50*time.Millisecond, 2*time.Second
			e := mustNew(t, cfg)
			rep, _, err := runKeyed(t, e, keyedItems(4), batchenrich.Options{Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !ignore && rep.Failed != 0:
				t.Errorf("%d items failed", rep.Failed)
			case !ignore && refused != 0:
				t.Errorf("%d requests sent before the announced reset", refused)
			case ignore && refused == 0:
				t.Errorf("ignoring the headers, nothing was refused: the test shows nothing")
			}
		})
	}
}

// TestIdempotencyKeyStable: every attempt of an item, and its retry after
// a crash and resume, carries the same Idempotency-Key, derived from the
// run key and the item's key.
func TestIdempotencyKeyStable(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		keys = map[string][]string{} // item path → keys sent
		hits = map[string]int{}
	)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys[r.URL.Path] = append(keys[r.URL.Path], r.Header.Get("Idempotency-Key"))
		hits[r.URL.Path]++
		first := hits[r.URL.Path] == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable) // every item is retried once
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	cfg := fast(keyedConfig(srv.URL))
	cfg.Method = http.MethodPost
	cfg.IdempotencyKey = true
	e := mustNew(t, cfg)

	const runKey = "nightly-2026-11-29"
	store := batchenrichtest.NewCheckpoints()
	items := keyedItems(6)
	// Run 1 crashes writing batch 2 (items 4..6, already enriched).
	crash := errors.New("crash")
	var batches atomic.Int64
	sink := batchenrich.SinkFunc[keyed, json.RawMessage](func(ctx context.Context, b batchenrich.Batch[keyed, json.RawMessage]) error {
		if batches.Add(1) == 2 {
			return crash
		}
		return nil
	})
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(items), e, sink,
		batchenrich.Options{BatchSize: 3, Durable: &batchenrich.Durable{Store: store, RunKey: runKey}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(testCtx(t)); !errors.Is(err, crash) {
		t.Fatalf("run 1: %v, want the crash", err)
	}
	// Run 2 resumes with batch 2.
	rep, _, err := runKeyed(t, e, items, batchenrich.Options{BatchSize: 3, Durable: &batchenrich.Durable{Store: store, RunKey: runKey}})
	if err != nil || rep.BatchesSkipped != 1 {
		t.Fatalf("run 2: %v, skipped %d", err, rep.BatchesSkipped)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, it := range items {
		path := "/items/" + strconv.Itoa(int(it))
		want := httpenrich.IdempotencyKeyFor(runKey, it.Key())
		ks := keys[path]
		wantN := 2
		if it >= 4 {
			wantN = 3 // a 503 and a 200 in run 1, a 200 after the resume
		}
		if len(ks) != wantN {
			t.Errorf("%s: %d requests, want %d", path, len(ks), wantN)
		}
		for _, k := range ks {
			if k != want {
				t.Errorf("%s: Idempotency-Key %q, want %q", path, k, want)
			}
		}
	}
}

func TestIdempotencyKeyRefusals(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) }))

	// T without a Key method and no ItemKey: refused by New.
	cfg := travelerConfig(srv.URL)
	cfg.IdempotencyKey = true
	_, err := httpenrich.New(cfg)
	var oe *batchenrich.ConfigError
	if !errors.As(err, &oe) || oe.Field != "ItemKey" {
		t.Errorf("IdempotencyKey on a type without Key: %v, want a ConfigError naming ItemKey", err)
	}
	cfg.IdempotencyKey = false
	cfg.ItemKey = func(t traveler) string { return strconv.Itoa(t.ID) }
	if _, err := httpenrich.New(cfg); !errors.As(err, &oe) || oe.Field != "ItemKey" {
		t.Errorf("ItemKey without IdempotencyKey: %v, want a ConfigError naming ItemKey", err)
	}
	// With ItemKey, the key is the function's.
	cfg.IdempotencyKey = true
	e := mustNew(t, cfg)
	// Outside a Run there is no run key: the item fails, saying why.
	_, err = e.Enrich(testCtx(t), traveler{ID: 1, Name: "A"})
	he := asError(t, err)
	if he.Reason != httpenrich.ReasonRequest || !errors.Is(err, err) || he.Err == nil ||
		he.Err.Error() != "IdempotencyKey needs a run key: run the Enricher in a batchenrich.Runner with Options.Durable set" {
		t.Errorf("outside a Run: %v", err)
	}
	// Adaptive without a ceiling: refused by New.
	kc := keyedConfig(srv.URL)
	kc.Adaptive = &httpenrich.Adaptive{}
	if _, err := httpenrich.New(kc); !errors.As(err, &oe) || oe.Field != "Adaptive.MaxConcurrency" {
		t.Errorf("Adaptive{}: %v, want a ConfigError naming Adaptive.MaxConcurrency", err)
	}
}

// TestAdaptiveTransientFaultsComplete is issue 23's hang as it was met: an
// API where some ids get transient faults on their first attempts — 503,
// 500, 429 with Retry-After: 0, connection resets, hangs — and the others
// answer after a short latency, except in short bursts where every
// request is answered 429 with Retry-After: 0. The run must complete with every item
// enriched (it stopped for good, every worker waiting at the gate, when a
// probe's return went uncounted). A hang shows as the test context's
// deadline. It depends on the goroutines' interleaving, and caught the
// hang in some runs only; TestGateProbeOutClearedWhenProbingEnded shows it
// deterministically, TestAdaptiveLiveness in every run of a few seeds.
func TestAdaptiveTransientFaultsComplete(t *testing.T) {
	t.Parallel()
	const n, conc = 1000, 16
	var mu sync.Mutex
	attempts := map[int]int{}
	served := 0
	faults := []http.HandlerFunc{
		status(http.StatusServiceUnavailable),
		status(http.StatusInternalServerError),
		status(http.StatusTooManyRequests, "Retry-After", "0"),
		reset,
		hang,
		status(http.StatusTooManyRequests, "Retry-After", "0"),
	}
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
		mu.Lock()
		attempts[id]++
		a := attempts[id]
		served++
		burst := served%100 < 12
		mu.Unlock()
		if burst { // host-wide: it closes the gate, and probes follow
			status(http.StatusTooManyRequests, "Retry-After", "0")(w, r)
			return
		}
		if id%4 == 0 && a <= 2 { // a quarter of the ids, their first two attempts
			faults[(id/4+a)%len(faults)](w, r)
			return
		}
		time.Sleep(time.Millisecond)
		body(http.StatusOK, `{}`)(w, r)
	}))
	cfg := fast(keyedConfig(srv.URL))
	cfg.Adaptive = &httpenrich.Adaptive{MaxConcurrency: conc}
	cfg.Pool = httpenrich.Pool{}.ForConcurrency(conc)
	cfg.AttemptTimeout = 100 * time.Millisecond // a hang ends its attempt
	cfg.MaxAttempts = 20                        // bursts can refuse one item several times
	e := mustNew(t, cfg)
	rep, _, err := runKeyed(t, e, keyedItems(n), batchenrich.Options{BatchSize: 20, Concurrency: conc})
	if err != nil {
		t.Fatalf("run: %v (limits %+v)", err, rep.Limits)
	}
	if rep.Failed != 0 || rep.Enriched != n {
		t.Fatalf("enriched %d, failed %d of %d", rep.Enriched, rep.Failed, n)
	}
}
