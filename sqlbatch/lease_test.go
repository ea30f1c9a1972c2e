package sqlbatch_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// On SQLite, a lease recorded by a process of this host that no longer
// holds its OS lock is taken over at once; one of another host blocks
// until it expires, and the error names it; a live holder blocks, named.
func TestLeaseTakeover(t *testing.T) {
	ctx := context.Background()
	host, _ := os.Hostname()
	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	setLease := func(t *testing.T, s *sqlbatch.CheckpointStore, owner string) {
		t.Helper()
		db := s.DB()
		mustExec(t, db, `INSERT INTO batchenrich_checkpoints (run_key, batch, "cursor", done, updated_at, lock_owner, lock_expires_at)
			VALUES ('e1', 1, '', 0, ?, ?, ?)`, time.Now().UTC(), owner, expires.UnixMilli())
	}

	t.Run("dead holder of this host", func(t *testing.T) {
		db := testdb.SQLiteDB(t)
		s := checkpointStore(t, db)
		setLease(t, s, "0123abcd "+host+" 999999999")
		unlock, ok, err := s.TryLock(ctx, "e1")
		if err != nil || !ok {
			t.Fatalf("TryLock over a dead holder's lease: ok %v, err %v; want it taken at once", ok, err)
		}
		if err := s.Save(ctx, batchenrich.Checkpoint{RunKey: "e1", Batch: 2}); err != nil {
			t.Fatal(err)
		}
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
		if m, _ := filepath.Glob(filepath.Join(filepath.Dir(s.File()), "*.lock")); len(m) != 0 {
			t.Fatalf("lock files left after unlock: %v", m)
		}
	})

	t.Run("holder of another host", func(t *testing.T) {
		db := testdb.SQLiteDB(t)
		s := checkpointStore(t, db)
		setLease(t, s, "0123abcd build-7 4242")
		_, ok, err := s.TryLock(ctx, "e1")
		var held *sqlbatch.LockHeldError
		if ok || !errors.As(err, &held) || !errors.Is(err, batchenrich.ErrRunLocked) ||
			held.Host != "build-7" || held.PID != 4242 || !held.Expires.Equal(expires) || held.Alive {
			t.Fatalf("TryLock: ok %v, err %#v", ok, err)
		}
		r, err := batchenrich.New(batchenrichtest.NewSliceSource([]int{1, 2}), batchenrichtest.NewEnricher(func(ctx context.Context, i int) (int, error) { return i, nil }), batchenrichtest.NewSink[int, int](),
			batchenrich.Options{Durable: &batchenrich.Durable{Store: s, RunKey: "e1"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Run(ctx)
		want := `batchenrich: run "e1": lock: held by pid 4242 on host build-7 until ` + expires.UTC().Format(time.RFC3339) +
			" unless it renews its lease: if that runner is gone, run again after then (a holder that died on this host is recognised at once)"
		if !errors.Is(err, batchenrich.ErrRunLocked) || err.Error() != want {
			t.Fatalf("Run: %v\nwant %s", err, want)
		}
		t.Log(err)
	})

	t.Run("live holder", func(t *testing.T) {
		db := testdb.SQLiteDB(t)
		a, b := checkpointStore(t, db), checkpointStore(t, db)
		unlock, ok, err := a.TryLock(ctx, "e1")
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		_, ok, err = b.TryLock(ctx, "e1")
		var held *sqlbatch.LockHeldError
		if ok || !errors.As(err, &held) || held.Host != host || held.PID != os.Getpid() || !held.Alive {
			t.Fatalf("TryLock while held: ok %v, err %v", ok, err)
		}
		if !strings.Contains(err.Error(), "held by pid "+strconv.Itoa(os.Getpid())+" on host "+host+", alive (lease renewed until ") {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
		unlock, ok, err = b.TryLock(ctx, "e1")
		if err != nil || !ok {
			t.Fatalf("after unlock: %v, %v", ok, err)
		}
		unlock()
	})
}
