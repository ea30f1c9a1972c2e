package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/batchenrich/batchenrich/riverenrich"
)

// enqueuedParams returns the parameters the run's jobs carry when e found
// them enqueued already (River's unique jobs keep the first enqueue's
// arguments), and whether it did.
func enqueuedParams(ctx context.Context, client *riverenrich.Client[Traveler, Profile], e riverenrich.Enqueued) (params, bool, error) {
	if e.Duplicates == 0 || len(e.JobIDs) == 0 {
		return params{}, false, nil
	}
	row, err := client.River().JobGet(ctx, e.JobIDs[0])
	if err != nil {
		return params{}, false, fmt.Errorf("read the run's job %d: %w", e.JobIDs[0], err)
	}
	var args riverenrich.PartitionArgs
	var p params
	if err := json.Unmarshal(row.EncodedArgs, &args); err != nil {
		return params{}, false, fmt.Errorf("read the run's job %d: %w", e.JobIDs[0], err)
	}
	if len(args.Params) > 0 {
		if err := json.Unmarshal(args.Params, &p); err != nil {
			return params{}, false, fmt.Errorf("read the run's job %d: %w", e.JobIDs[0], err)
		}
	}
	return p, true, nil
}

// paramsChanged says which flags differ from the parameters the run was
// enqueued with, "" if none: its jobs keep those, so a run with others
// would be reported with settings it did not run with.
func paramsChanged(was, now params) string {
	var diffs []string
	if was.BatchSize != now.BatchSize {
		diffs = append(diffs, fmt.Sprintf("-batch-size %d (this run: %d)", was.BatchSize, now.BatchSize))
	}
	if was.MaxBatches != now.MaxBatches {
		diffs = append(diffs, fmt.Sprintf("-max-batches %d (this run: %d)", was.MaxBatches, now.MaxBatches))
	}
	if was.Concurrency != now.Concurrency {
		diffs = append(diffs, fmt.Sprintf("-concurrency %d per partition (this run: %d)", was.Concurrency, now.Concurrency))
	}
	return strings.Join(diffs, ", ")
}
