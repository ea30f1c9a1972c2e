package httpenrich_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/batchenrich/batchenrich/httpenrich"
)

// benchConcurrency is the number of requests in flight in the benchmarks.
const benchConcurrency = 64

// benchServer answers every request at once with a small JSON body, like
// httpbin's /anything but without its cost.
func benchServer(b *testing.B) *server {
	payload := []byte(`{"args":{"traveler_id":["1"],"traveler_name":["Traveler 1"]},"url":"http://x/anything"}`)
	return newServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
		_, _ = w.Write(payload)
	}))
}

func runParallel(b *testing.B, do func(ctx context.Context, id int) error) {
	b.SetParallelism(max(1, benchConcurrency/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := do(ctx, int(next.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkEnricher measures requests per second through the Enricher: URL
// building, retryablehttp, the per-attempt transport, bounded read, JSON
// decode and validation.
func BenchmarkEnricher(b *testing.B) {
	benchEnricher(b, nil)
}

// benchEnricher runs BenchmarkEnricher's requests through an Enricher
// configured as it is, and then by adjust if not nil.
func benchEnricher(b *testing.B, adjust func(*httpenrich.Config[traveler, anything, string])) {
	srv := benchServer(b)
	cfg := travelerConfig(srv.URL)
	cfg.URL = srv.URL + "/anything"
	cfg.Request = func(t traveler) (httpenrich.Params, error) {
		return httpenrich.Params{Query: url.Values{"traveler_id": {"1"}, "traveler_name": {t.Name}}}, nil
	}
	cfg.Validate = func(t traveler, r *httpenrich.Response[anything]) (string, error) {
		return r.Body.Args.Get("traveler_name"), nil
	}
	cfg.Pool = httpenrich.Pool{}.ForConcurrency(benchConcurrency)
	if adjust != nil {
		adjust(&cfg)
	}
	e := mustNew(b, cfg)
	runParallel(b, func(ctx context.Context, id int) error {
		_, err := e.Enrich(ctx, traveler{ID: id, Name: "Traveler 1"})
		return err
	})
	b.ReportMetric(float64(srv.conns.Load()), "conns")
}

// BenchmarkNetHTTP is the baseline: a plain net/http client on the same
// tuned transport, building the same URL, reading and decoding the same
// body, without retries, timeouts or bounds.
func BenchmarkNetHTTP(b *testing.B) {
	srv := benchServer(b)
	tr, err := httpenrich.NewTransport(httpenrich.Pool{}.ForConcurrency(benchConcurrency))
	if err != nil {
		b.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	runParallel(b, func(ctx context.Context, id int) error {
		q := url.Values{"traveler_id": {"1"}, "traveler_name": {"Traveler 1"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/anything?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var a anything
		return json.Unmarshal(raw, &a)
	})
	b.ReportMetric(float64(srv.conns.Load()), "conns")
}
