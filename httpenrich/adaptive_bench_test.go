package httpenrich_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/batchenrich/batchenrich/httpenrich"
)

// BenchmarkEnricherAdaptive is BenchmarkEnricher with Config.Adaptive and
// a ceiling of the benchmark's concurrency, against a server that refuses
// nothing: the cost of the limit, the gate and the header parsing per
// request.
func BenchmarkEnricherAdaptive(b *testing.B) {
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
	cfg.Adaptive = &httpenrich.Adaptive{MaxConcurrency: benchConcurrency, InitialConcurrency: benchConcurrency}
	e := mustNew(b, cfg)
	runParallel(b, func(ctx context.Context, id int) error {
		_, err := e.Enrich(ctx, traveler{ID: id, Name: "Traveler 1"})
		return err
	})
	b.ReportMetric(float64(srv.conns.Load()), "conns")
}
