package sqlbatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// TestBudgetLapsedLeaseSendsNothing: a process whose renewals fail sends
// nothing once its lease would have expired (the others may have taken its
// share by then), even while a renewal is still waiting on the database.
func TestBudgetLapsedLeaseSendsNothing(t *testing.T) {
	ctx := context.Background()
	db := testdb.Postgres(t)
	b := newBudget(t, db, sqlbatch.BudgetConfig{Name: "lapse", Upstream: "h", MaxConcurrency: 4, LeaseTTL: time.Second})

	// Another session holds the budget's lock: every renewal waits for it
	// until its timeout, and fails.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, b.LockKey())
		_ = conn.Close()
	})
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, b.LockKey()); err != nil {
		t.Fatal(err)
	}
	// Once a renewal failed, no later one succeeds: the lease's end is known.
	waitFor(t, "a renewal fails", func() bool { return b.Share().Err != nil })
	until := b.ValidUntil()
	waitFor(t, "the lease's end passes", func() bool { return time.Now().After(until) })

	done, cancel := context.WithCancel(ctx)
	cancel()
	release, err := b.Take(done)
	if err == nil {
		release()
		t.Fatalf("Take after the lease lapsed (share %+v) = a place, want none (context.Canceled)", b.Share())
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Take after the lease lapsed = %v, want context.Canceled", err)
	}
}
