package contenders

import (
	"context"

	"github.com/batchenrich/batchenrich/bench/internal/harness"
)

// Library is the slot for batchenrich itself: the Runner driving the
// sqlbatch Source and Sink (PostgreSQL) and the httpenrich Enricher.
//
// TODO(issue 7): wire it once packages
// github.com/batchenrich/batchenrich/sqlbatch and .../httpenrich exist:
// keyset Source over traveler_batch_source, an Enricher calling
// job.ProfileURL and job.Transform, a Sink upserting into
// traveler_batch_results, Options{BatchSize, MaxBatches, Concurrency}.
// Until then it reports harness.ErrNotWired and the harness skips it.
func Library(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	return harness.Stats{}, harness.ErrNotWired
}
