package sqlbatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// newBudget opens a member of the budget named name on db, closed when
// the test ends.
func newBudget(t *testing.T, db *sqlx.DB, cfg sqlbatch.BudgetConfig) *sqlbatch.Budget {
	t.Helper()
	b, err := sqlbatch.NewBudget(context.Background(), db, cfg)
	if err != nil {
		t.Fatalf("NewBudget: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestBudgetConfigErrors(t *testing.T) {
	ctx := context.Background()
	pg := testdb.Postgres(t)
	ok := sqlbatch.BudgetConfig{Name: "api", Upstream: "api.example.com", MaxConcurrency: 10, LeaseTTL: time.Second}
	cases := []struct {
		name  string
		db    *sqlx.DB
		edit  func(c *sqlbatch.BudgetConfig)
		field string
	}{
		{"nil db", nil, func(*sqlbatch.BudgetConfig) {}, "db"},
		{"sqlite", testdb.SQLiteDB(t), func(*sqlbatch.BudgetConfig) {}, "db"},
		{"no name", pg, func(c *sqlbatch.BudgetConfig) { c.Name = " " }, "Name"},
		{"name with NUL", pg, func(c *sqlbatch.BudgetConfig) { c.Name = "a\x00b" }, "Name"},
		{"name not UTF-8", pg, func(c *sqlbatch.BudgetConfig) { c.Name = "a\xffb" }, "Name"},
		{"no upstream", pg, func(c *sqlbatch.BudgetConfig) { c.Upstream = "" }, "Upstream"},
		{"upstream is a URL", pg, func(c *sqlbatch.BudgetConfig) { c.Upstream = "https://api.example.com/x" }, "Upstream"},
		{"negative ceiling", pg, func(c *sqlbatch.BudgetConfig) { c.MaxConcurrency = -1 }, "MaxConcurrency"},
		{"nothing bounded", pg, func(c *sqlbatch.BudgetConfig) { c.MaxConcurrency = 0 }, "MaxConcurrency"},
		{"NaN rate", pg, func(c *sqlbatch.BudgetConfig) { c.Rate = math.NaN() }, "Rate"},
		{"short TTL", pg, func(c *sqlbatch.BudgetConfig) { c.LeaseTTL = time.Millisecond }, "LeaseTTL"},
		{"bad table", pg, func(c *sqlbatch.BudgetConfig) { c.Table = "a.b.c" }, "Table"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			b, err := sqlbatch.NewBudget(ctx, tc.db, cfg)
			want := "BudgetConfig." + tc.field
			if tc.field == "db" {
				want = "db"
			}
			var ce *batchenrich.ConfigError
			if !errors.As(err, &ce) || ce.Package != "sqlbatch" || ce.Field != want || !errors.Is(err, batchenrich.ErrInvalidConfig) {
				if b != nil {
					b.Close()
				}
				t.Fatalf("NewBudget = %v, want a ConfigError on %s", err, tc.field)
			}
		})
	}

	// A process configuring a live budget otherwise is refused.
	newBudget(t, pg, ok)
	for field, edit := range map[string]func(c *sqlbatch.BudgetConfig){
		"MaxConcurrency": func(c *sqlbatch.BudgetConfig) { c.MaxConcurrency = 20 },
		"Upstream":       func(c *sqlbatch.BudgetConfig) { c.Upstream = "other.example.com" },
		"Rate":           func(c *sqlbatch.BudgetConfig) { c.Rate = 5 },
	} {
		cfg := ok
		edit(&cfg)
		b, err := sqlbatch.NewBudget(ctx, pg, cfg)
		var ce *batchenrich.ConfigError
		if !errors.As(err, &ce) || ce.Field != "BudgetConfig."+field || !strings.Contains(err.Error(), "every process must configure it alike") {
			if b != nil {
				b.Close()
			}
			t.Fatalf("NewBudget with another %s = %v, want a ConfigError on it", field, err)
		}
	}
}

// shares returns the budgets' concurrency shares and their sum.
func shares(bs []*sqlbatch.Budget) ([]int, int) {
	var s []int
	sum := 0
	for _, b := range bs {
		c := b.Share().Concurrency
		s = append(s, c)
		sum += c
	}
	return s, sum
}

func TestBudgetFairSharesAndExpiry(t *testing.T) {
	db := testdb.Postgres(t)
	cfg := sqlbatch.BudgetConfig{Name: "api", Upstream: "api.example.com", MaxConcurrency: 31, LeaseTTL: time.Second}
	var bs []*sqlbatch.Budget
	// Processes join one by one; at every moment sampled, the shares add
	// up to no more than the ceiling, and they end even.
	var over []string
	for i := range 3 {
		bs = append(bs, newBudget(t, db, cfg))
		want := 31 / (i + 1)
		waitFor(t, fmt.Sprintf("%d members get their fair share", i+1), func() bool {
			s, sum := shares(bs)
			if sum > 31 {
				over = append(over, fmt.Sprint(s))
			}
			for _, c := range s {
				if c < want || c > want+1 {
					return false
				}
			}
			return sum == 31
		})
	}
	if len(over) > 0 {
		t.Errorf("shares above the ceiling: %v", over)
	}
	if m := bs[0].Share().Members; m != 3 {
		t.Errorf("Members = %d, want 3", m)
	}

	// A member whose renewals stop (its process killed) loses its share
	// to the others once its lease expires.
	bs[2].StopRenewing()
	took := waitFor(t, "the others take the share of the member that stopped renewing", func() bool {
		_, sum := shares(bs[:2])
		return sum == 31
	})
	// Issue 23 wants it within 10 s (LeaseTTL is 5 s): a figure, logged
	// and measured by the bench harness (fleetkill), not a timed
	// assertion a loaded machine could break.
	t.Logf("the share returned after %v", took.Round(time.Millisecond))
	s, _ := shares(bs[:2])
	if s[0] < 15 || s[1] < 15 {
		t.Errorf("shares after the expiry = %v, want 15 and 16", s)
	}

	// A member that closes returns its share at once (at the others'
	// next renewal).
	if err := bs[1].Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the last member gets the whole budget", func() bool { return bs[0].Share().Concurrency == 31 })
}

func TestBudgetTakeHoldsTheShare(t *testing.T) {
	db := testdb.Postgres(t)
	b := newBudget(t, db, sqlbatch.BudgetConfig{Name: "api", Upstream: "h", MaxConcurrency: 2, LeaseTTL: time.Second})
	ctx := context.Background()
	r1, err := b.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Take(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("a third Take with 2 slots = %v, want it to wait (context.Canceled)", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := b.Take(ctx)
		if err == nil {
			r()
		}
		got <- err
	}()
	r1()
	if err := <-got; err != nil {
		t.Fatalf("Take after a release: %v", err)
	}
	r2()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Take(ctx); !errors.Is(err, sqlbatch.ErrBudgetClosed) {
		t.Fatalf("Take after Close = %v, want ErrBudgetClosed", err)
	}
}

// TestBudgetRateAcrossProcesses: three members of a budget of R requests
// per second, each with its own Enricher as separate processes would have,
// send no more than R per second together: their 450 requests take at
// least (450 - 3) / (1.05 R) seconds (each member's limiter lets one
// request go at once; 5 % for the instants between a renewal's commit and
// its share applying). Load can only make the run longer, so the bound is
// not a schedule. The busiest 1-second window at the server is logged,
// not asserted: requests granted in order reach the server with the
// machine's delays, which can bunch them.
func TestBudgetRateAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 450 requests at 100/s")
	}
	db := testdb.Postgres(t)
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	const rate, perProcess = 100.0, 150
	start := time.Now() // before any request is granted
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for p := range 3 {
		b := newBudget(t, db, sqlbatch.BudgetConfig{Name: "rate", Upstream: host, Rate: rate, LeaseTTL: time.Second})
		e, err := httpenrich.New(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
			URL: srv.URL + "/item",
			Request: func(i int) (httpenrich.Params, error) {
				return httpenrich.Params{Query: url.Values{"id": {fmt.Sprint(i)}}}, nil
			},
			Budget: b,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		items := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range items {
					if _, err := e.Enrich(context.Background(), i); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(items)
			for i := range perProcess {
				items <- p*perProcess + i
			}
		}()
	}
	wg.Wait()
	took := time.Since(start) // after the last request was granted
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(times) != 3*perProcess {
		t.Fatalf("%d requests, want %d", len(times), 3*perProcess)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	worst, j := 0, 0
	for i := range times {
		for times[j].Before(times[i].Add(-time.Second)) || times[j].Equal(times[i].Add(-time.Second)) {
			j++
		}
		worst = max(worst, i-j+1)
	}
	t.Logf("%d requests in %v; most in a 1-second window at the server: %d (rate %v)", len(times), took.Round(time.Millisecond), worst, rate)
	if least := time.Duration(float64(len(times)-3) / (1.05 * rate) * float64(time.Second)); took < least {
		t.Errorf("%d requests in %v, want at least %v at %v per second", len(times), took, least, rate)
	}
}

// TestBudgetSharedByPartitions: the partitions of a NewPartitioned run
// share the process's Budget (through their one Enricher): 4 partitions
// with 40 enrichments in flight over them stay within the process's
// share, 3 of a budget of 6 shared with another process.
func TestBudgetSharedByPartitions(t *testing.T) {
	db := testdb.Postgres(t)
	var inflight, worst, requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := worst.Load(); n > m && !worst.CompareAndSwap(m, n); m = worst.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	cfg := sqlbatch.BudgetConfig{Name: "parts", Upstream: strings.TrimPrefix(srv.URL, "http://"), MaxConcurrency: 6, LeaseTTL: time.Second}
	other := newBudget(t, db, cfg) // another process, idle
	b := newBudget(t, db, cfg)
	waitFor(t, "both members hold 3", func() bool {
		return b.Share().Concurrency == 3 && other.Share().Concurrency == 3
	})
	e, err := httpenrich.New(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
		URL: srv.URL + "/item",
		Request: func(i int) (httpenrich.Params, error) {
			return httpenrich.Params{Query: url.Values{"id": {fmt.Sprint(i)}}}, nil
		},
		Budget: b,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const n, parts = 400, 4
	var written atomic.Int64
	pr, err := batchenrich.NewPartitioned(parts, func(p batchenrich.Partition) (batchenrich.Source[int], error) {
		var items []int
		for i := p.Index; i < n; i += parts {
			items = append(items, i)
		}
		return batchenrichtest.NewSliceSource(items), nil
	}, e, func(batchenrich.Partition) (batchenrich.Sink[int, json.RawMessage], error) {
		return batchenrich.SinkFunc[int, json.RawMessage](func(_ context.Context, b batchenrich.Batch[int, json.RawMessage]) error {
			if f := b.Failed(); f > 0 {
				return fmt.Errorf("%d items failed", f)
			}
			written.Add(int64(len(b.Results)))
			return nil
		}), nil
	}, batchenrich.Options{BatchSize: 50, Concurrency: 40})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if written.Load() != n {
		t.Fatalf("%d written, want %d", written.Load(), n)
	}
	if w := worst.Load(); w > 3 {
		t.Errorf("%d requests in flight at once, the process's share is 3", w)
	}
	t.Logf("%d requests, at most %d in flight (share 3 of 6; 4 partitions, 40 in flight)", requests.Load(), worst.Load())
}

// TestBudgetLongTableName: a Table name of the longest PostgreSQL keeps
// (63 bytes) serves a budget that is not adaptive, which has no pause
// table; an adaptive one, whose pause table's name (Table with "_pause")
// would be longer, is refused with a ConfigError on Table saying so.
func TestBudgetLongTableName(t *testing.T) {
	db := testdb.Postgres(t)
	long := "budgets_" + strings.Repeat("x", 55)
	cfg := sqlbatch.BudgetConfig{Name: "long-table", Upstream: "api.example.com", MaxConcurrency: 10, Table: long, LeaseTTL: time.Second}
	newBudget(t, db, cfg)
	cfg.Adaptive, cfg.Name = true, "long-table-adaptive"
	b, err := sqlbatch.NewBudget(context.Background(), db, cfg)
	var ce *batchenrich.ConfigError
	if !errors.As(err, &ce) || ce.Field != "BudgetConfig.Table" || !strings.Contains(err.Error(), `"_pause"`) {
		if b != nil {
			b.Close()
		}
		t.Fatalf("NewBudget adaptive with a %d-byte Table = %v, want a ConfigError on Table naming its pause table", len(long), err)
	}
}
