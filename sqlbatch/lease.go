package sqlbatch

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batchenrich/batchenrich"
)

// Run locks on SQLite.
//
// SQLite has no session locks, so a run lock is a lease in the run's row
// of the checkpoint table: an owner record, "<token> <host> <pid>", and an
// expiry, renewed every LeaseTTL/3 while the holder runs. Alone, a lease
// outlives a holder killed with SIGKILL by up to LeaseTTL. So on systems
// with flock(2) the holder also takes an OS lock on a file beside the
// database file (<db>-batchenrich-<hash of table and run key>.lock), which
// the kernel frees when the process dies, however it dies. A runner that
// gets that OS lock and finds an unexpired lease recorded by a process of
// its own host knows that process is gone, and takes the lease over at
// once. A lease recorded on another host still blocks until it expires
// (SQLite on a network file system is unsupported anyway), and so does a
// live holder: an expired lease is taken over even from a live process
// (frozen, or stalled past LeaseTTL), whose next Save then fails with
// ErrLockLost.

// LockHeldError is TryLock's error, with ok=false, when another runner
// holds the lock on a run key of a SQLite CheckpointStore. It wraps
// batchenrich.ErrRunLocked, so a Runner reports it (or waits, with
// Durable.LockWait).
type LockHeldError struct {
	RunKey  string    // the run key whose lock is held
	Host    string    // the holder's host name; empty if unknown
	PID     int       // the holder's process id; 0 if unknown
	Expires time.Time // when its lease expires unless it renews it
	// Alive is true when the holder is known to be alive: a process of
	// this host holding the OS lock beside the database file.
	Alive bool
}

// Error names the holder and its lease's expiry, and says what to do.
func (e *LockHeldError) Error() string {
	who := "another runner"
	if e.PID != 0 {
		who = "pid " + strconv.Itoa(e.PID) + " on host " + e.Host
	}
	until := e.Expires.UTC().Format(time.RFC3339)
	if e.Alive {
		return "held by " + who + ", alive (lease renewed until " + until +
			"): wait for it to finish (Durable.LockWait), or stop that process"
	}
	return "held by " + who + " until " + until + " unless it renews its lease: if that runner is gone, run again after then" +
		" (a holder that died on this host is recognised at once)"
}

// Unwrap returns batchenrich.ErrRunLocked.
func (e *LockHeldError) Unwrap() error { return batchenrich.ErrRunLocked }

var (
	hostOnce sync.Once
	hostName string
)

// thisHost returns the host name recorded in leases.
func thisHost() string {
	hostOnce.Do(func() {
		h, err := os.Hostname()
		if err != nil || h == "" || strings.ContainsAny(h, " \t\n") {
			h = "unknown-host"
		}
		hostName = h
	})
	return hostName
}

// newOwner returns a fresh owner record for a lease.
func newOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:]) + " " + thisHost() + " " + strconv.Itoa(os.Getpid())
}

// parseOwner reads host and pid from an owner record; a bare token
// (written before owners named themselves) has neither.
func parseOwner(owner string) (host string, pid int) {
	f := strings.Fields(owner)
	if len(f) != 3 {
		return "", 0
	}
	pid, err := strconv.Atoi(f[2])
	if err != nil {
		return "", 0
	}
	return f[1], pid
}

func (s *CheckpointStore) tryLease(ctx context.Context, runKey string) (func() error, bool, error) {
	lf, state, err := s.lockFile(ctx, runKey)
	if err != nil {
		return nil, false, fmt.Errorf("lock file: %w", err)
	}
	// fileBusy: a live process of this host holds the OS lock. Its lease
	// still decides: expired, it is taken over (the holder is frozen or
	// stalled; Save's fencing stops it if it wakes), else it blocks.
	fail := func(err error) (func() error, bool, error) {
		lf.release(false)
		return nil, false, err
	}
	owner := newOwner()
	now := time.Now()
	dead := "" // the owner record of a holder known to be dead
	if state == fileLocked {
		prev, _, err := s.holder(ctx, runKey)
		if err != nil && !sqliteBusy(err) {
			return fail(fmt.Errorf("lease holder: %w", err))
		}
		if host, _ := parseOwner(prev); host == thisHost() {
			dead = prev
		}
	}
	// A free lease (or no row yet) while a live process of this host
	// holds the OS lock means that holder is releasing the lock (it
	// clears the lease before the file) or taking it (it locks the file
	// before writing the lease): taken for now. Taking the lease then,
	// without the OS lock, would let the next runner that gets the OS
	// lock find a lease of this host without a file lock and take it
	// over from a live holder.
	free := state != fileBusy
	res, err := s.db.ExecContext(ctx, s.qLease, runKey, false, now.UTC(), owner, now.Add(s.ttl).UnixMilli(), free, runKey,
		free, now.UnixMilli(), dead)
	if sqliteBusy(err) && ctx.Err() == nil {
		// Another runner holds SQLite's write lock past the busy
		// timeout (a long write, or a frozen process): the run is
		// taken for now, which a waiting Runner retries.
		return fail(nil)
	}
	if err != nil {
		return fail(fmt.Errorf("lease: %w", err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fail(s.heldBy(ctx, runKey, state == fileBusy))
	}
	h := &heldLock{token: owner, file: lf}
	if !s.register(runKey, h) {
		return fail(nil)
	}
	hctx, stop := context.WithCancel(context.Background())
	h.stop = stop
	h.bg.Go(func() error {
		s.heartbeat(hctx, runKey, h)
		return nil
	})
	return func() error {
		var err error
		h.once.Do(func() {
			defer s.forget(runKey, h)
			h.stop()
			_ = h.bg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
			defer cancel()
			res, e := s.db.ExecContext(ctx, s.qRelease, runKey, owner)
			if e != nil {
				err = fmt.Errorf("release lease: %w", e)
			} else if n, e := res.RowsAffected(); e == nil && n == 0 {
				// The lease expired and another runner took it.
				err = ErrLockLost
			}
			// Remove the lock file only when the lease is cleared: a
			// file left behind is harmless, a missing one with a lease
			// still recorded would make the lease look abandoned.
			lf.release(e == nil)
		})
		return err
	}, true, nil
}

// holder reads the owner record and expiry of runKey's lease.
func (s *CheckpointStore) holder(ctx context.Context, runKey string) (string, time.Time, error) {
	var owner sql.NullString
	var exp sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.qHolder, runKey).Scan(&owner, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	}
	return owner.String, time.UnixMilli(exp.Int64), err
}

// heldBy returns the *LockHeldError describing runKey's holder, or nil
// when the lease looks free by now (the holder just released it: try
// again).
func (s *CheckpointStore) heldBy(ctx context.Context, runKey string, alive bool) error {
	owner, exp, err := s.holder(ctx, runKey)
	if err != nil || owner == "" {
		return nil
	}
	host, pid := parseOwner(owner)
	return &LockHeldError{RunKey: runKey, Host: host, PID: pid, Expires: exp, Alive: alive}
}

// fileState is the outcome of taking the OS lock beside the database.
type fileState int

const (
	fileNone   fileState = iota // no OS lock here (in-memory database, or no flock)
	fileLocked                  // taken
	fileBusy                    // held by a live process of this host
)

// lockFile takes the OS lock of runKey beside the database file.
func (s *CheckpointStore) lockFile(ctx context.Context, runKey string) (*lockFile, fileState, error) {
	schema, _, ok := strings.Cut(s.name, ".")
	if !ok {
		schema = "main"
	}
	var file string
	err := s.db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = ?`, schema).Scan(&file)
	if errors.Is(err, sql.ErrNoRows) || file == "" {
		return nil, fileNone, nil
	}
	if err != nil {
		return nil, fileNone, err
	}
	h := fnv.New64a()
	h.Write([]byte(s.name + "\x00" + runKey))
	path := file + "-batchenrich-" + strconv.FormatUint(h.Sum64(), 16) + ".lock"
	return flockPath(path)
}
