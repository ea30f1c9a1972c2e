package httpenrich_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/httpenrich"
)

// Payment is an item charged with a POST: it names itself, so its
// Idempotency-Key is stable across retries and resumes.
type Payment struct {
	ID     int
	Amount int
}

// Key implements batchenrich.Keyer.
func (p Payment) Key() string { return "payment-" + strconv.Itoa(p.ID) }

// A run against an API that admits 5 requests at once and answers 429
// beyond: with Adaptive, the Enricher finds that limit by itself (the
// Runner's 50 workers are only the ceiling), no payment fails, and every
// request carries an Idempotency-Key derived from the run key and the
// payment's key, so a retried POST is charged once.
func ExampleAdaptive() {
	var (
		inflight atomic.Int64
		mu       sync.Mutex
		charged  = map[string]bool{} // Idempotency-Key → charged
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inflight.Add(1) > 5 {
			inflight.Add(-1)
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		defer inflight.Add(-1)
		time.Sleep(time.Millisecond)
		mu.Lock()
		charged[r.Header.Get("Idempotency-Key")] = true
		mu.Unlock()
		_, _ = w.Write([]byte(`{"status":"charged"}`))
	}))
	defer srv.Close()

	const workers = 50
	enr, err := httpenrich.New(httpenrich.Config[Payment, json.RawMessage, json.RawMessage]{
		URL:    srv.URL + "/charges",
		Method: http.MethodPost,
		Request: func(p Payment) (httpenrich.Params, error) {
			return httpenrich.Params{Body: map[string]int{"amount": p.Amount}}, nil
		},
		Adaptive:       &httpenrich.Adaptive{MaxConcurrency: workers},
		IdempotencyKey: true,
		MaxAttempts:    10,
		Pool:           httpenrich.Pool{}.ForConcurrency(workers),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer enr.Close()

	payments := make([]Payment, 300)
	for i := range payments {
		payments[i] = Payment{ID: i + 1, Amount: 100 + i}
	}
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(payments), enr,
		batchenrichtest.NewSink[Payment, json.RawMessage](),
		batchenrich.Options{
			Concurrency: workers,
			BatchSize:   100,
			Durable: &batchenrich.Durable{
				Store:  batchenrichtest.NewCheckpoints(), // sqlbatch.CheckpointStore in production
				RunKey: "charges-2026-11-29",
			},
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("failed:", rep.Failed, "charged:", len(charged))
	lim := rep.Limits[0]
	fmt.Println("limit stayed within [1, 50]:", lim.Min >= 1 && lim.Max <= workers, "lowered:", lim.Decreases > 0)
	fmt.Println("key of payment 1:", httpenrich.IdempotencyKeyFor("charges-2026-11-29", "payment-1"))
	// Output:
	// failed: 0 charged: 300
	// limit stayed within [1, 50]: true lowered: true
	// key of payment 1: 479fe459-0773-8657-89ce-9662a51cea01
}
