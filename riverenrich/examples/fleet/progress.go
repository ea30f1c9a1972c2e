package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/riverenrich"
)

// progressEvery is how often the waiting side prints each partition's
// progress (without -json).
const progressEvery = 5 * time.Second

// progress returns the riverenrich.WaitOptions.Progress of the
// enqueueing command: every progressEvery (when table), one line with
// each partition's last committed batch and job state; and at once, in
// any mode, each partition's new last error (a failed attempt that will
// be retried, a takeover), so that a run in trouble is never silent
// while its jobs are retried. Errors are redacted by riverenrich; %q
// shows any control character escaped.
func progress(w io.Writer, table bool) func(riverenrich.RunStatus) {
	var last time.Time
	seen := map[int]time.Time{} // partition → its last error's time, printed
	return func(st riverenrich.RunStatus) {
		for _, p := range st.Partitions {
			if p.LastError != "" && p.LastErrorAt.After(seen[p.Partition.Index]) {
				seen[p.Partition.Index] = p.LastErrorAt
				fmt.Fprintf(w, "fleet: partition %s (job %d, %s, attempt %d): %q\n", p.Partition, p.JobID, p.State, p.Attempt, p.LastError)
			}
		}
		if !table || time.Since(last) < progressEvery {
			return
		}
		last = time.Now()
		parts := make([]string, len(st.Partitions))
		for i, p := range st.Partitions {
			state := string(p.State)
			if p.CheckpointDone {
				state = "done"
			}
			parts[i] = fmt.Sprintf("%s batch %d %s", p.Partition, p.Batch, state)
		}
		fmt.Fprintf(w, "progress: %d of %d partitions done; %s\n", st.Done(), len(st.Partitions), strings.Join(parts, ", "))
	}
}

// serverHolds refuses a server whose free connections cannot hold this
// process's pool (the partitions it works on at once, each holding its
// run lock's session, a batch's transaction and the Source's read-ahead,
// and River's few), naming the server's limit and the minimum, before
// anything is created.
func serverHolds(ctx context.Context, db *sqlx.DB, conns int) error {
	var max, used int
	if err := db.GetContext(ctx, &max, `SELECT setting::int FROM pg_settings WHERE name = 'max_connections'`); err != nil {
		return fmt.Errorf("read the server's max_connections: %w", err)
	}
	if err := db.GetContext(ctx, &used, `SELECT count(*) FROM pg_stat_activity`); err != nil {
		return fmt.Errorf("count the server's connections: %w", err)
	}
	if free := max - used; free < conns {
		return fmt.Errorf("-max-partitions: this process needs up to %d connections (3 per partition plus 4); the server has %d free (max_connections %d, %d in use): lower -max-partitions, or raise max_connections", conns, free, max, used)
	}
	return nil
}
