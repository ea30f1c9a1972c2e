package batchenrich

import (
	"fmt"
	"strconv"
	"strings"
)

// checkShape compares a loaded checkpoint with the run's settings. A zero
// BatchSize or empty Fingerprint in cp means "not recorded" (a checkpoint
// of an older version, or a run without a Fingerprint) and matches.
func checkShape(cp Checkpoint, o Options) error {
	if cp.Batch == 0 && !cp.Done {
		return nil
	}
	diffs := identityDiffs(cp, o, nil)
	if len(diffs) > 0 {
		return fmt.Errorf("%w: run %q was checkpointed after batch %d by another job or definition: %s; "+
			"run it with the recorded job and definition, or start afresh under a new RunKey",
			ErrCheckpointMismatch, cp.RunKey, cp.Batch, strings.Join(diffs, " and "))
	}
	if o.Durable.AllowReshape {
		return nil
	}
	if cp.BatchSize != 0 && cp.BatchSize != o.BatchSize {
		diffs = append(diffs, "BatchSize "+strconv.Itoa(cp.BatchSize)+" (this run: "+strconv.Itoa(o.BatchSize)+")")
	}
	if cp.Fingerprint != "" && cp.Fingerprint != o.Durable.Fingerprint {
		diffs = append(diffs, "Fingerprint "+strconv.Quote(cp.Fingerprint)+" (this run: "+strconv.Quote(o.Durable.Fingerprint)+")")
	}
	if len(diffs) == 0 {
		return nil
	}
	what := strings.Join(diffs, " and ")
	return fmt.Errorf("%w: run %q was checkpointed after batch %d with %s; "+
		"run it with the recorded settings, start afresh under a new RunKey, or set Durable.AllowReshape to go on with this run's",
		ErrCheckpointMismatch, cp.RunKey, cp.Batch, what)
}
