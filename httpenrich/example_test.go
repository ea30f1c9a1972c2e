package httpenrich_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// Traveler is an item to enrich.
type Traveler struct {
	ID   int
	Name string
}

// Profile is the part of the profile API's answer we keep: httpbin's
// /anything echoes the query in "args".
type Profile struct {
	Args url.Values `json:"args"`
}

// One GET per traveler against an httpbin-compatible profile API, the
// response validated against the item.
func Example() {
	srv := httptest.NewServer(httpbin.New())
	defer srv.Close()

	enr, err := httpenrich.New(httpenrich.Config[Traveler, Profile, string]{
		URL: srv.URL + "/anything",
		Request: func(t Traveler) (httpenrich.Params, error) {
			return httpenrich.Params{Query: url.Values{
				"traveler_id":   {strconv.Itoa(t.ID)},
				"traveler_name": {t.Name},
			}}, nil
		},
		Validate: func(t Traveler, r *httpenrich.Response[Profile]) (string, error) {
			if got := r.Body.Args.Get("traveler_id"); got != strconv.Itoa(t.ID) {
				return "", fmt.Errorf("args.traveler_id = %q, want %d", got, t.ID)
			}
			return r.Body.Args.Get("traveler_name"), nil
		},
		Pool: httpenrich.Pool{}.ForConcurrency(25), // the Runner's default Options.Concurrency
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer enr.Close()

	name, err := enr.Enrich(context.Background(), Traveler{ID: 4, Name: "Traveler 4"})
	fmt.Println(name, err)
	// Output: Traveler 4 <nil>
}

// A failed item's error carries the last HTTP status, the number of
// attempts and a short reason, and is classified for batchenrich.Classify.
func Example_errors() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/travelers/13" {
			http.Error(w, "unknown traveler", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	enr, err := httpenrich.New(httpenrich.Config[int, Profile, Profile]{
		URL: srv.URL + "/travelers/{id}",
		Request: func(id int) (httpenrich.Params, error) {
			return httpenrich.Params{Path: map[string]string{"id": strconv.Itoa(id)}}, nil
		},
		MaxAttempts:  3,
		RetryWaitMin: 1, // retry at once: this is an example
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer enr.Close()

	for _, id := range []int{13, 14} {
		_, err := enr.Enrich(context.Background(), id)
		var he *httpenrich.Error
		if errors.As(err, &he) {
			fmt.Printf("traveler %d: status %d, %s, %d attempt(s), %v\n",
				id, he.Status, he.Reason, he.Attempts, batchenrich.Classify(err))
		}
	}
	// Output:
	// traveler 13: status 404, unexpected status, 1 attempt(s), permanent
	// traveler 14: status 503, unexpected status, 3 attempt(s), transient
}

// Reading the pool's sizing from the environment, then fitting it to the
// Runner's concurrency.
func ExamplePoolFromEnv() {
	pool, err := httpenrich.PoolFromEnv()
	if err != nil {
		fmt.Println(err) // e.g. httpenrich: invalid BATCHENRICH_HTTP_MAX_CONNECTIONS: "ten" is not a positive integer
		return
	}
	opts := batchenrich.Options{Concurrency: 64}
	pool = pool.ForConcurrency(opts.Concurrency)
	fmt.Println(pool.MaxConnections, pool.MaxKeepAliveConnections >= 64)
	// Output: 64 true
}
