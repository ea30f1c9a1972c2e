package httpenrich_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
)

// countingBudget is a Budget of n places that records the places taken
// and given back.
type countingBudget struct {
	host  string
	slots chan struct{}
	err   error // Take's error, when set

	mu                      sync.Mutex
	taken, released, maxOut int
}

func newCountingBudget(host string, n int) *countingBudget {
	return &countingBudget{host: host, slots: make(chan struct{}, n)}
}

func (b *countingBudget) Upstream() string { return b.host }

func (b *countingBudget) Take(ctx context.Context) (func(), error) {
	if b.err != nil {
		return nil, b.err
	}
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b.mu.Lock()
	b.taken++
	b.maxOut = max(b.maxOut, b.taken-b.released)
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.released++
			b.mu.Unlock()
			<-b.slots
		})
	}, nil
}

func TestBudgetWrongHostRefused(t *testing.T) {
	_, err := httpenrich.New(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
		URL:    "http://api.example.com:8080/items",
		Budget: newCountingBudget("api.example.com", 1), // no port
	})
	var oe *batchenrich.ConfigError
	if !errors.As(err, &oe) || oe.Field != "Budget" || !strings.Contains(err.Error(), `"api.example.com:8080"`) {
		t.Fatalf("New = %v, want a ConfigError on Budget naming the URL's host", err)
	}
}

// TestBudgetPanicRefused: a Budget whose Upstream panics (here a nil
// *countingBudget) is New's *ConfigError on Budget wrapping the
// *batchenrich.PanicError, not a panic of New's caller.
func TestBudgetPanicRefused(t *testing.T) {
	var nilBudget *countingBudget
	var (
		err error
		pe  *batchenrich.PanicError
		oe  *batchenrich.ConfigError
	)
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("New panicked: %v", v)
			}
		}()
		_, err = httpenrich.New(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
			URL:    "http://api.example.com/items",
			Budget: nilBudget,
		})
	}()
	if !errors.As(err, &oe) || oe.Field != "Budget" || !errors.As(err, &pe) {
		t.Fatalf("New = %v, want a ConfigError on Budget wrapping a PanicError", err)
	}
}

// TestBudgetEveryAttempt: every attempt to the host, retries included,
// takes a place and gives it back, with and without Adaptive, and never
// more at once than the budget has.
func TestBudgetEveryAttempt(t *testing.T) {
	for _, adaptive := range []bool{false, true} {
		name := "fixed"
		if adaptive {
			name = "adaptive"
		}
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, script(status(503), status(500), body(200, `{}`)))
			b := newCountingBudget(strings.TrimPrefix(srv.URL, "http://"), 2)
			cfg := fast(httpenrich.Config[int, json.RawMessage, json.RawMessage]{URL: srv.URL + "/x", Budget: b})
			if adaptive {
				cfg.Adaptive = &httpenrich.Adaptive{MaxConcurrency: 8}
			}
			e := mustNew(t, cfg)
			ctx := testCtx(t)
			var wg sync.WaitGroup
			for i := range 8 {
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
			if want := int(srv.requests.Load()); b.taken != want || b.released != want {
				t.Errorf("taken %d, released %d, want %d each (the requests sent)", b.taken, b.released, want)
			}
			if b.maxOut > 2 {
				t.Errorf("%d places out at once, budget 2", b.maxOut)
			}
		})
	}
}

// TestBudgetTakeErrorFailsTheItem: a Budget that refuses (closed) fails
// the item without sending it.
func TestBudgetTakeErrorFailsTheItem(t *testing.T) {
	srv := newServer(t, script(body(200, `{}`)))
	b := newCountingBudget(strings.TrimPrefix(srv.URL, "http://"), 1)
	closed := errors.New("shared budget closed")
	b.err = closed
	e := mustNew(t, fast(httpenrich.Config[int, json.RawMessage, json.RawMessage]{URL: srv.URL + "/x", Budget: b}))
	_, err := e.Enrich(testCtx(t), 1)
	if !errors.Is(err, closed) {
		t.Fatalf("Enrich = %v, want the Budget's error", err)
	}
	if n := srv.requests.Load(); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}
