package httpenrich_test

import (
	"testing"

	"github.com/batchenrich/batchenrich/httpenrich"
)

// BenchmarkEnricherAdaptive is BenchmarkEnricher with Config.Adaptive and
// a ceiling of the benchmark's concurrency, against a server that refuses
// nothing: the cost of the limit, the gate and the header parsing per
// request.
func BenchmarkEnricherAdaptive(b *testing.B) {
	benchEnricher(b, func(cfg *httpenrich.Config[traveler, anything, string]) {
		cfg.Adaptive = &httpenrich.Adaptive{MaxConcurrency: benchConcurrency, InitialConcurrency: benchConcurrency}
	})
}
