package httpenrich_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
)

// adaptiveBudget is a countingBudget that adapts: it records what the
// Enricher tells it.
type adaptiveBudget struct {
	*countingBudget
	adapts bool

	paused atomic.Bool // set by Pause

	mu      sync.Mutex
	limits  []int
	pauses  []time.Duration
	resumes int
}

func (b *adaptiveBudget) Adapts() bool { return b.adapts }

func (b *adaptiveBudget) LimitChanged(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limits = append(b.limits, n)
}

func (b *adaptiveBudget) Pause(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pauses = append(b.pauses, d)
	b.paused.Store(true)
}

func (b *adaptiveBudget) Resume() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resumes++
}

var _ httpenrich.AdaptiveBudget = (*adaptiveBudget)(nil)

// TestAdaptiveBudgetNeedsAdaptive: an adaptive Budget without
// Config.Adaptive is refused; one whose Adapts is false is a plain Budget.
func TestAdaptiveBudgetNeedsAdaptive(t *testing.T) {
	b := &adaptiveBudget{countingBudget: newCountingBudget("api.example.com", 1), adapts: true}
	cfg := httpenrich.Config[int, json.RawMessage, json.RawMessage]{URL: "http://api.example.com/items", Budget: b}
	_, err := httpenrich.New(cfg)
	var ce *batchenrich.ConfigError
	if !errors.As(err, &ce) || ce.Field != "Budget" || !strings.Contains(err.Error(), "Config.Adaptive is nil") {
		t.Fatalf("New = %v, want a ConfigError on Budget asking for Config.Adaptive", err)
	}
	b.adapts = false
	mustNew(t, cfg).Close()
}

// TestAdaptiveBudgetToldPauseAndResume: the adaptive Budget is told the
// host's limit (its first value and each change), the pause a host-wide
// refusal sets (four first attempts refused with Retry-After, none
// succeeding: every attempt is refused until the pause) and its end (the
// probe's success).
func TestAdaptiveBudgetToldPauseAndResume(t *testing.T) {
	const n = 4
	arrived := make(chan struct{})
	var mu sync.Mutex
	count := 0
	var b *adaptiveBudget
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.paused.Load() {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{}`))
			return
		}
		mu.Lock()
		if count++; count == n {
			close(arrived)
		}
		mu.Unlock()
		select { // the n first attempts are in flight together
		case <-arrived:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	b = &adaptiveBudget{countingBudget: newCountingBudget(strings.TrimPrefix(srv.URL, "http://"), n), adapts: true}
	e := mustNew(t, fast(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
		URL: srv.URL + "/x",
		Request: func(i int) (httpenrich.Params, error) {
			return httpenrich.Params{Query: url.Values{"id": {strconv.Itoa(i)}}}, nil
		},
		Adaptive:    &httpenrich.Adaptive{MaxConcurrency: n, InitialConcurrency: n},
		Budget:      b,
		MaxAttempts: 1000, // retries before the pause are refused too
	}))
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Enrich(ctx, i); err != nil {
				t.Errorf("item %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.limits) < 2 || b.limits[0] != n || slices.Min(b.limits) >= n {
		t.Errorf("limits told %v, want %d first, then a lower one", b.limits, n)
	}
	if len(b.pauses) != 1 || b.pauses[0] != 0 {
		t.Errorf("pauses told %v, want one of 0 (Retry-After: 0)", b.pauses)
	}
	if b.resumes != 1 {
		t.Errorf("resumes told %d, want 1", b.resumes)
	}
}
