package sqlbatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// TestBudgetAdaptivePause: a pause reported by one member holds every
// member's share at none but the prober's one request; when the prober
// dies, another member becomes the prober; its Resume ends the pause for
// all.
func TestBudgetAdaptivePause(t *testing.T) {
	db := testdb.Postgres(t)
	cfg := sqlbatch.BudgetConfig{Name: "adaptive-pause", Upstream: "api.example.com", MaxConcurrency: 30, Adaptive: true, LeaseTTL: time.Second}
	var bs []*sqlbatch.Budget
	for range 3 {
		bs = append(bs, newBudget(t, db, cfg))
	}
	waitFor(t, "three members hold 10 each", func() bool {
		s, sum := shares(bs)
		return sum == 30 && s[0] == 10 && s[1] == 10 && s[2] == 10
	})

	// pausedShares reports whether every member is paused, and the one
	// holding a share (of 1) while the others hold none, -1 if not so.
	pausedShares := func(bs []*sqlbatch.Budget) (bool, int) {
		prober := -1
		for i, b := range bs {
			s := b.Share()
			switch {
			case !s.Paused:
				return false, -1
			case s.Concurrency == 1 && prober < 0:
				prober = i
			case s.Concurrency != 0:
				return true, -1
			}
		}
		return true, prober
	}

	bs[0].Pause(time.Minute) // far past the test: the pause ends only by Resume
	var prober int
	waitFor(t, "every member paused, the first one probing", func() bool {
		ok, p := pausedShares(bs)
		prober = p
		return ok && p >= 0
	})
	if prober != 0 {
		t.Fatalf("member %d probes, want the one that reported the pause", prober)
	}

	// The prober dies: once its lease expired, one of the others probes.
	bs[0].StopRenewing()
	waitFor(t, "another member probes after the prober died", func() bool {
		ok, p := pausedShares(bs[1:])
		prober = p + 1
		return ok && p >= 0 && bs[1].Share().Members == 2 && bs[2].Share().Members == 2
	})

	bs[prober].Resume()
	waitFor(t, "the pause ends for both", func() bool {
		s, sum := shares(bs[1:])
		return !bs[1].Share().Paused && !bs[2].Share().Paused && sum == 30 && s[0] == 15
	})
}

// TestBudgetAdaptiveConfig: New refuses an adaptive budget without
// Config.Adaptive, and a process configuring a live budget's Adaptive
// otherwise is refused.
func TestBudgetAdaptiveConfig(t *testing.T) {
	db := testdb.Postgres(t)
	cfg := sqlbatch.BudgetConfig{Name: "adaptive-config", Upstream: "api.example.com", MaxConcurrency: 10, Adaptive: true, LeaseTTL: time.Second}
	b := newBudget(t, db, cfg)
	_, err := httpenrich.New(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
		URL:    "http://api.example.com/item",
		Budget: b,
	})
	var ce *batchenrich.ConfigError
	if !errors.As(err, &ce) || ce.Field != "Budget" || !strings.Contains(err.Error(), "Config.Adaptive is nil") {
		t.Fatalf("New with an adaptive budget and no Adaptive = %v, want a ConfigError on Budget", err)
	}
	cfg.Adaptive = false
	other, err := sqlbatch.NewBudget(context.Background(), db, cfg)
	if !errors.As(err, &ce) || ce.Field != "BudgetConfig.Adaptive" {
		if other != nil {
			other.Close()
		}
		t.Fatalf("NewBudget without Adaptive beside an adaptive member = %v, want a ConfigError on Adaptive", err)
	}
}

// fleetMember is one "process" of a fleet test: its Budget and Enricher.
type fleetMember struct {
	b *sqlbatch.Budget
	e *httpenrich.Enricher[int, json.RawMessage, json.RawMessage]
}

// newFleet opens n members of an adaptive budget for srv, each Enricher
// with Config.Adaptive (ceiling conc) and a header naming its member.
func newFleet(t *testing.T, n int, srv *httptest.Server, name string, ceiling, conc int) []fleetMember {
	t.Helper()
	db := testdb.Postgres(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	var fs []fleetMember
	for i := range n {
		b := newBudget(t, db, sqlbatch.BudgetConfig{Name: name, Upstream: host, MaxConcurrency: ceiling, Adaptive: true, LeaseTTL: time.Second})
		e, err := httpenrich.New(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
			URL: srv.URL + "/item",
			Request: func(i int) (httpenrich.Params, error) {
				return httpenrich.Params{Query: url.Values{"id": {strconv.Itoa(i)}}}, nil
			},
			Header:      http.Header{"X-Member": {strconv.Itoa(i)}},
			Adaptive:    &httpenrich.Adaptive{MaxConcurrency: conc},
			Budget:      b,
			MaxAttempts: 20,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		fs = append(fs, fleetMember{b, e})
	}
	waitFor(t, "every member holds its even share", func() bool {
		for _, f := range fs {
			if f.b.Share().Concurrency < ceiling/n {
				return false
			}
		}
		return true
	})
	return fs
}

// runFleet enriches per items in each member at concurrency conc, and
// returns the items failed.
func runFleet(fs []fleetMember, per, conc int) (int, error) {
	var failed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(fs))
	for i, f := range fs {
		items := make([]int, per)
		for j := range items {
			items[j] = i*per + j
		}
		sink := batchenrich.SinkFunc[int, json.RawMessage](func(_ context.Context, b batchenrich.Batch[int, json.RawMessage]) error {
			failed.Add(int64(b.Failed()))
			return nil
		})
		r, err := batchenrich.New(batchenrichtest.NewSliceSource(items), f.e, sink, batchenrich.Options{BatchSize: 50, Concurrency: conc})
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Run(context.Background()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return int(failed.Load()), errors.Join(all...)
}

// TestBudgetAdaptiveFollowsCapacity: three members, each with an adaptive
// limit (ceiling 10) under its share of an adaptive budget of 30, against
// an API admitting 6 at once: no item fails, and the fleet's limit (the
// sum of the members' limits) ends below the ceiling, near what the API
// admits, and equal to the sum of the Enrichers' limits.
func TestBudgetAdaptiveFollowsCapacity(t *testing.T) {
	const k = 6
	var inflight, refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inflight.Add(1) > k {
			inflight.Add(-1)
			refused.Add(1)
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		time.Sleep(2 * time.Millisecond)
		inflight.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	fs := newFleet(t, 3, srv, "adaptive-capacity", 30, 10)
	if failed, err := runFleet(fs, 600, 10); err != nil || failed != 0 {
		t.Fatalf("%d items failed, error %v", failed, err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	sum := 0
	for _, f := range fs {
		sum += f.e.Limits()[host]
	}
	if sum >= 30 {
		t.Errorf("the members' limits add up to %d: the ceiling, not what the API admits (%d)", sum, k)
	}
	waitFor(t, "every member's limit recorded", func() bool {
		for _, f := range fs {
			if f.b.Share().Limit != sum {
				return false
			}
		}
		return true
	})
	t.Logf("fleet limit %d against %d at once; %d requests refused", sum, k, refused.Load())
}

// TestBudgetAdaptiveOutageOneProber: during an outage (every request
// answered 503 with Retry-After), once the fleet is paused only the
// prober sends: the others send nothing while it probes, and every item
// succeeds once the API is back.
func TestBudgetAdaptiveOutageOneProber(t *testing.T) {
	if testing.Short() {
		t.Skip("probes once a second for 3 probes")
	}
	var outage atomic.Bool
	outage.Store(true)
	var mu sync.Mutex
	during := map[string]int{} // requests answered 503, by member
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if outage.Load() {
			mu.Lock()
			during[r.Header.Get("X-Member")]++
			mu.Unlock()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	fs := newFleet(t, 3, srv, "adaptive-outage", 30, 10)
	counts := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		m := map[string]int{}
		for k, v := range during {
			m[k] = v
		}
		return m
	}

	type result struct {
		failed int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		failed, err := runFleet(fs, 40, 4)
		done <- result{failed, err}
	}()

	prober := -1
	waitFor(t, "the fleet paused, one member probing", func() bool {
		n := 0
		for i, f := range fs {
			s := f.b.Share()
			if !s.Paused {
				return false
			}
			if s.Concurrency == 1 {
				prober, n = i, n+1
			}
		}
		return n == 1
	})
	p := strconv.Itoa(prober)
	first := counts()[p]
	waitFor(t, "the prober probes", func() bool { return counts()[p] > first })
	before := counts()
	waitFor(t, "the prober probes twice more", func() bool { return counts()[p] >= before[p]+2 })
	after := counts()
	for i := range fs {
		if m := strconv.Itoa(i); m != p && after[m] != before[m] {
			t.Errorf("member %s sent %d requests while member %s probed (%d probes)", m, after[m]-before[m], p, after[p]-before[p])
		}
	}
	outage.Store(false)
	if r := <-done; r.err != nil || r.failed != 0 {
		t.Fatalf("%d items failed, error %v", r.failed, r.err)
	}
	t.Logf("503s by member: %v (member %s probed)", counts(), p)
}

// TestBudgetTableUpgrade: a budget table created before the adaptive
// columns gets them from NewBudget, and an adaptive budget works on it.
func TestBudgetTableUpgrade(t *testing.T) {
	db := testdb.Postgres(t)
	if _, err := db.Exec(`CREATE TABLE batchenrich_budgets (
		budget text NOT NULL,
		member text NOT NULL,
		upstream text NOT NULL,
		max_concurrency bigint NOT NULL,
		rate double precision NOT NULL,
		concurrency bigint NOT NULL,
		granted_rate double precision NOT NULL,
		expires_at timestamptz NOT NULL,
		PRIMARY KEY (budget, member)
	)`); err != nil {
		t.Fatal(err)
	}
	b := newBudget(t, db, sqlbatch.BudgetConfig{Name: "upgrade", Upstream: "api.example.com", MaxConcurrency: 4, Adaptive: true, LeaseTTL: time.Second})
	b.LimitChanged(3)
	waitFor(t, "the limit recorded", func() bool { return b.Share().Limit == 3 })
	if s := b.Share(); s.Concurrency != 4 || s.Err != nil {
		t.Fatalf("share %+v, want 4", s)
	}
}

// TestBudgetNoAlterWhenUpToDate: on a table that has the adaptive columns,
// NewBudget alters nothing (an ALTER needs the table's owner and an
// exclusive lock): it joins while another session holds the table in ROW
// EXCLUSIVE mode, as renewals do.
func TestBudgetNoAlterWhenUpToDate(t *testing.T) {
	db := testdb.Postgres(t)
	cfg := sqlbatch.BudgetConfig{Name: "no-alter", Upstream: "api.example.com", MaxConcurrency: 4, LeaseTTL: time.Second}
	newBudget(t, db, cfg) // creates the table
	tx, err := db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`LOCK TABLE batchenrich_budgets IN ROW EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	// The deadline only guards a hang: an ALTER would wait for the lock.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := sqlbatch.NewBudget(ctx, db, cfg)
	if err != nil {
		t.Fatalf("NewBudget beside a ROW EXCLUSIVE lock: %v", err)
	}
	b.Close()
}
