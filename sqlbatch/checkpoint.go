package sqlbatch

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/sync/errgroup"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// Defaults of CheckpointConfig.
const (
	// DefaultCheckpointTable is the table a CheckpointStore uses when
	// CheckpointConfig.Table is empty.
	DefaultCheckpointTable = "batchenrich_checkpoints"

	// DefaultLeaseTTL is how long a SQLite run lock outlives its holder's
	// last heartbeat.
	DefaultLeaseTTL = 30 * time.Second

	// MinLeaseTTL bounds CheckpointConfig.LeaseTTL from below.
	MinLeaseTTL = 100 * time.Millisecond

	// unlockTimeout bounds the release of a lock, which runs without the
	// run's (possibly cancelled) context.
	unlockTimeout = 10 * time.Second
)

// CheckpointConfig configures a CheckpointStore. The zero value is valid.
type CheckpointConfig struct {
	// Table is the checkpoint table, optionally "schema.table". Empty
	// means DefaultCheckpointTable. CreateTable creates it.
	Table string

	// LeaseTTL is, on SQLite, how long a run lock stays taken after its
	// holder stopped renewing it (the holder renews it every LeaseTTL/3
	// while it runs). A runner that dies leaves the run locked for up to
	// this long. Zero means DefaultLeaseTTL. Unused on PostgreSQL, whose
	// locks end with the holder's session.
	LeaseTTL time.Duration
}

// CheckpointStore keeps batchenrich checkpoints in a table, one row per
// run key: the last committed batch, the Source cursor after it, whether
// the run is done, the run's batch size and fingerprint, and when the row
// was updated. It implements
// batchenrich.CheckpointStore and batchenrich.Locker, and a Sink on the
// same *sqlx.DB commits a batch and its checkpoint in one transaction.
//
// # Run locks
//
// On PostgreSQL, TryLock takes a session advisory lock
// (pg_try_advisory_lock on a 64-bit hash of the table's oid and the run
// key) on a
// connection it sets aside for the run; unlock releases it and returns the
// connection to the pool. If the process dies, the server ends the session
// and frees the lock at once. The store needs one connection per lock held
// on top of those the run uses; the Runner refuses a pool too small for
// that before any work (see the package documentation, PostgreSQL).
//
// On SQLite, which has no session locks, TryLock writes a lease into the
// run's row (an owner record naming its host and pid, and an expiry,
// LeaseTTL ahead) and renews it in the background; unlock clears it. The
// holder also takes an OS lock (flock) on a file beside the database file,
// <db>-batchenrich-<hash>.lock, which the kernel frees when the process
// dies, even by SIGKILL: a runner of the same host that finds the lease
// unexpired but that OS lock free knows the holder is dead and takes over
// at once. A live holder, or one on another host, still blocks: TryLock
// then returns a *LockHeldError (wrapping batchenrich.ErrRunLocked) naming
// its host, pid and lease expiry, e.g.
//
//	batchenrich: run "exec-42": lock: held by pid 4242 on host build-1, alive (lease renewed until 2026-11-29T06:05:30Z): wait for it to finish (Durable.LockWait), or stop that process
//
// What to do: wait for a live holder (Durable.LockWait), or stop it; a
// holder on another host that died blocks until its lease expires
// (LeaseTTL, 30 s by default), after which a new run takes over. Where
// flock is missing (Windows, an in-memory database, a read-only
// directory) leases alone lock runs, and a dead holder blocks until its
// lease expires there too. Leases rely on every runner seeing the same
// database file and roughly the same clock: processes on one machine, not
// a database file shared over a network file system (which SQLite does
// not support for locking anyway).
//
// On both, Save refuses to write, with ErrLockLost, once the lock it
// holds for the key is gone (the lock's connection dropped, or the lease
// expired and another runner took it), so a runner that lost its lock
// cannot commit over the one that took over.
type CheckpointStore struct {
	db    *sqlx.DB
	d     sqldialect.Dialect
	name  string // as configured
	table string // quoted
	ttl   time.Duration

	qLoad, qSave, qSaveFenced, qSaveLocked, qLease, qRenew, qRelease, qHolder string

	mu   sync.Mutex
	held map[string]*heldLock

	upgraded onceOK // the table has the columns of this version

	stops sync.Map // run key → bool: a stop request seen by the last Load or Save
}

// heldLock is a run lock this store holds.
type heldLock struct {
	// PostgreSQL
	conn *sql.Conn
	pid  int64
	key  int64
	// SQLite
	token string
	file  *lockFile // the OS lock beside the database file, or nil
	stop  context.CancelFunc
	bg    errgroup.Group

	lost atomic.Bool
	once sync.Once
}

// NewCheckpointStore returns a CheckpointStore on db. It validates cfg and
// returns a *batchenrich.ConfigError naming the first bad field. It does not touch the
// database; call CreateTable once to create the table.
func NewCheckpointStore(db *sqlx.DB, cfg CheckpointConfig) (_ *CheckpointStore, err error) {
	defer func() { err = inConfig("CheckpointConfig", err) }()
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	name := cfg.Table
	if name == "" {
		name = DefaultCheckpointTable
	}
	table, err := quoteTable(d, "Table", name)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.LeaseTTL < 0:
		return nil, configErr("LeaseTTL", "must not be negative", nil)
	case cfg.LeaseTTL > 0 && cfg.LeaseTTL < MinLeaseTTL:
		return nil, configErr("LeaseTTL", "must be at least MinLeaseTTL", nil)
	}
	ttl := cfg.LeaseTTL
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	s := &CheckpointStore{db: db, d: d, name: name, table: table, ttl: ttl, held: map[string]*heldLock{}}
	// The columns a checkpoint fills, with their PostgreSQL types.
	cols := []struct{ name, pg string }{
		{"run_key", "text"}, {"batch", "bigint"}, {`"cursor"`, "text"}, {"done", "boolean"}, {"updated_at", "timestamptz"},
		{"partitions", "integer"}, {"batch_size", "bigint"}, {"fingerprint", "text"}, {"job", "text"}, {"definition", "text"},
		{"state", "text"}, {"batches", "bigint"}, {"items_read", "bigint"}, {"items_enriched", "bigint"}, {"items_failed", "bigint"},
		{"failed_transient", "bigint"}, {"failed_permanent", "bigint"}, {"items_written", "bigint"},
		{"started_at", "timestamptz"}, {"finished_at", "timestamptz"}, {"holder_host", "text"}, {"holder_pid", "bigint"}, {"last_error", "text"},
	}
	var names, set, marks, casts []string
	for i, c := range cols {
		names, marks = append(names, c.name), append(marks, "?")
		casts = append(casts, "$"+strconv.Itoa(i+1)+"::"+c.pg)
		switch c.name {
		case "run_key":
		case "started_at":
			// When the run first started: kept over resumes.
			set = append(set, c.name+" = COALESCE(cp."+c.name+", excluded."+c.name+")")
		default:
			set = append(set, c.name+" = excluded."+c.name)
		}
	}
	// A stop request stays until a run records that it stopped (or
	// ended otherwise); each save returns it, so that the runner learns
	// of it without a round trip of its own.
	set = append(set, `stop_requested = CASE WHEN excluded.state IN ('', 'running') THEN cp.stop_requested ELSE FALSE END`)
	insert := `INSERT INTO ` + table + ` AS cp (` + strings.Join(names, ", ") + `) `
	onConflict := ` ON CONFLICT (run_key) DO UPDATE SET ` + strings.Join(set, ", ")
	const returning = ` RETURNING stop_requested`
	upsert := insert + `VALUES (` + strings.Join(marks, ", ") + `)` + onConflict
	s.qLoad = d.Rebind(`SELECT batch, "cursor", done, COALESCE(partitions, 0), batch_size, fingerprint, job, definition,
		state, batches, items_read, items_enriched, items_failed, failed_transient, failed_permanent, items_written, last_error, stop_requested
		FROM ` + table + ` WHERE run_key = ?`)
	s.qSave = d.Rebind(upsert + returning)
	s.qSaveFenced = d.Rebind(upsert + ` WHERE cp.lock_owner = ?` + returning)
	if d.Kind == sqldialect.PostgreSQL {
		// Save under a session advisory lock: the upsert and the check
		// that the lock's session still holds the lock, in one statement
		// (one round trip). It writes no row when the lock is gone.
		n := len(cols)
		s.qSaveLocked = insert + `SELECT ` + strings.Join(casts, ", ") + `
		WHERE EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND pid = $` + strconv.Itoa(n+1) + ` AND classid = $` + strconv.Itoa(n+2) + `::bigint::oid AND objid = $` + strconv.Itoa(n+3) + `::bigint::oid AND objsubid = 1)` + onConflict + returning
	}
	// The lease is taken when free, expired, or held by a holder known
	// to be dead; a free lease (or a missing row) only when the
	// parameter "free" is true (see tryLease).
	s.qLease = d.Rebind(`INSERT INTO ` + table + ` AS cp (run_key, batch, "cursor", done, updated_at, lock_owner, lock_expires_at)
		SELECT ?, 0, '', ?, ?, ?, ? WHERE ? OR EXISTS (SELECT 1 FROM ` + table + ` WHERE run_key = ?)
		ON CONFLICT (run_key) DO UPDATE SET lock_owner = excluded.lock_owner, lock_expires_at = excluded.lock_expires_at
		WHERE (cp.lock_owner IS NULL AND ?) OR cp.lock_expires_at < ? OR cp.lock_owner = ?`)
	s.qHolder = d.Rebind(`SELECT lock_owner, lock_expires_at FROM ` + table + ` WHERE run_key = ?`)
	s.qRenew = d.Rebind(`UPDATE ` + table + ` SET lock_expires_at = ? WHERE run_key = ? AND lock_owner = ?`)
	s.qRelease = d.Rebind(`UPDATE ` + table + ` SET lock_owner = NULL, lock_expires_at = NULL WHERE run_key = ? AND lock_owner = ?`)
	return s, nil
}

// CreateTable creates the checkpoint table if it does not exist, with
// ExecDDL: several processes may call it at once. It also adds to an
// existing table the columns that a table created by an older version
// lacks (partitions, batch_size, fingerprint), so existing stores keep
// working without a manual migration. A table that already has every
// column is only read, never written: CreateTable then takes no write
// lock, so on SQLite it succeeds while another process holds the
// database's write lock (a runner frozen in a write, or one writing for
// longer than the busy timeout).
func (s *CheckpointStore) CreateTable(ctx context.Context) error {
	if s.complete(ctx) {
		s.upgraded.done.Store(true)
		return nil
	}
	q := `CREATE TABLE IF NOT EXISTS ` + s.table + ` (
		run_key ` + s.d.TypeText() + ` PRIMARY KEY,
		batch ` + s.d.TypeBigInt() + ` NOT NULL,
		"cursor" ` + s.d.TypeText() + ` NOT NULL,
		done ` + s.d.TypeBool() + ` NOT NULL,
		updated_at ` + s.d.TypeTimestamp() + ` NOT NULL,
		lock_owner ` + s.d.TypeText() + `,
		lock_expires_at ` + s.d.TypeBigInt()
	for _, c := range shapeColumns {
		q += ",\n\t\t" + c.name + " " + c.def(s.d)
	}
	q += "\n\t)"
	if err := ExecDDL(ctx, s.db, q); err != nil {
		return fmt.Errorf("sqlbatch: create checkpoint table %s: %w", s.name, err)
	}
	return s.upgrade(ctx)
}

// Load implements batchenrich.CheckpointStore: it returns the checkpoint
// saved under runKey, or a zero Checkpoint with that RunKey. The first Load
// or Save of a store adds the columns that a table created by an older
// version lacks (see CreateTable).
func (s *CheckpointStore) Load(ctx context.Context, runKey string) (batchenrich.Checkpoint, error) {
	cp := batchenrich.Checkpoint{RunKey: runKey}
	if err := s.upgrade(ctx); err != nil {
		return cp, err
	}
	var (
		batch, parts, size   int64
		cursor, fp, job, def string
		done, stop           bool
		state, lastErr       string
		n                    [7]int64
	)
	err := s.db.QueryRowContext(ctx, s.qLoad, runKey).Scan(&batch, &cursor, &done, &parts, &size, &fp, &job, &def,
		&state, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6], &lastErr, &stop)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return cp, nil
	case err != nil:
		return cp, fmt.Errorf("load checkpoint %q from %s: %w", runKey, s.name, err)
	}
	cp.Batch, cp.Cursor, cp.Done, cp.Partitions = int(batch), batchenrich.Cursor(cursor), done, int(parts)
	cp.BatchSize, cp.Fingerprint, cp.Job, cp.Definition = int(size), fp, job, def
	cp.State, cp.LastError = batchenrich.RunState(state), lastErr
	cp.Counts = batchenrich.RunCounts{Batches: int(n[0]), Read: int(n[1]), Enriched: int(n[2]), Failed: int(n[3]),
		FailedTransient: int(n[4]), FailedPermanent: int(n[5]), Written: int(n[6])}
	s.stops.Store(runKey, stop)
	return cp, nil
}

// StopRequested implements batchenrich.StopRequester: it reports whether
// the last Load or Save of runKey by this store found a stop request
// (RequestStop) pending. It does no I/O.
func (s *CheckpointStore) StopRequested(runKey string) bool {
	v, ok := s.stops.Load(runKey)
	return ok && v.(bool)
}

// Save implements batchenrich.CheckpointStore: it replaces the checkpoint
// of cp.RunKey. It returns an error wrapping ErrLockLost, saving nothing,
// if this store took the run's lock and no longer holds it.
func (s *CheckpointStore) Save(ctx context.Context, cp batchenrich.Checkpoint) error {
	if err := s.upgrade(ctx); err != nil {
		return err
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save checkpoint %q: %w", cp.RunKey, err)
	}
	if err := s.SaveTx(ctx, tx, cp); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save checkpoint %q: commit: %w", cp.RunKey, err)
	}
	return nil
}

// SaveTx is Save within tx, which the caller commits. Use it to commit a
// checkpoint with work of your own; Sink.WriteCheckpointed uses it.
func (s *CheckpointStore) SaveTx(ctx context.Context, tx *sqlx.Tx, cp batchenrich.Checkpoint) error {
	if tx == nil {
		return fmt.Errorf("save checkpoint %q: nil transaction", cp.RunKey)
	}
	if cp.Batch < 0 || cp.BatchSize < 0 {
		return fmt.Errorf("save checkpoint %q: negative batch %d or batch size %d", cp.RunKey, cp.Batch, cp.BatchSize)
	}
	fail := func(err error) error {
		return fmt.Errorf("save checkpoint %q to %s: %w", cp.RunKey, s.name, err)
	}
	s.mu.Lock()
	h := s.held[cp.RunKey]
	s.mu.Unlock()
	if h != nil && h.lost.Load() {
		return fail(ErrLockLost)
	}
	if cp.Partitions < 0 {
		return fmt.Errorf("save checkpoint %q: negative partition count %d", cp.RunKey, cp.Partitions)
	}
	var parts any // NULL for an unpartitioned run, as before partitions existed
	if cp.Partitions > 0 {
		parts = int64(cp.Partitions)
	}
	now := time.Now().UTC()
	var finished any // NULL while the run goes on
	if cp.State != "" && cp.State != batchenrich.StateRunning {
		finished = now
	}
	c := cp.Counts
	args := []any{cp.RunKey, int64(cp.Batch), string(cp.Cursor), cp.Done, now, parts, int64(cp.BatchSize), cp.Fingerprint, cp.Job, cp.Definition,
		string(cp.State), int64(c.Batches), int64(c.Read), int64(c.Enriched), int64(c.Failed), int64(c.FailedTransient), int64(c.FailedPermanent), int64(c.Written),
		now, finished, holderHost, int64(holderPID), cp.LastError}
	q := s.qSave
	if h != nil {
		q = s.qSaveFenced
		if s.d.Kind == sqldialect.PostgreSQL {
			// The advisory lock belongs to the session of h.conn: save
			// only if, in this transaction, that session still holds it.
			q, args = s.qSaveLocked, append(args, h.pid, int64(uint32(uint64(h.key)>>32)), int64(uint32(h.key)))
		} else {
			args = append(args, h.token)
		}
	}
	var stop bool
	err := tx.QueryRowContext(ctx, q, args...).Scan(&stop)
	switch {
	case errors.Is(err, sql.ErrNoRows) && h != nil:
		h.lost.Store(true)
		return fail(ErrLockLost)
	case err != nil:
		return fail(err)
	}
	s.stops.Store(cp.RunKey, stop)
	return nil
}

// TryLock implements batchenrich.Locker: it takes the lock on runKey if
// it is free and returns ok=true with a function releasing it, or
// ok=false at once if another holder has it. See CheckpointStore for how
// locks work on each database. Always call the release function: on
// SQLite it also stops the lease's renewal. It returns an error wrapping
// ErrLockLost when the lock was no longer held (the lease expired and
// another runner took it, or PostgreSQL found no lock to release), and an
// error when the lock's connection is gone. Calling it again returns nil
// and does nothing.
func (s *CheckpointStore) TryLock(ctx context.Context, runKey string) (unlock func() error, ok bool, err error) {
	if s.d.Kind == sqldialect.PostgreSQL {
		return s.tryAdvisoryLock(ctx, runKey)
	}
	return s.tryLease(ctx, runKey)
}

func (s *CheckpointStore) register(runKey string, h *heldLock) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.held[runKey]; dup {
		return false
	}
	s.held[runKey] = h
	return true
}

func (s *CheckpointStore) forget(runKey string, h *heldLock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[runKey] == h {
		delete(s.held, runKey)
	}
}

func (s *CheckpointStore) tryAdvisoryLock(ctx context.Context, runKey string) (func() error, bool, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("connect: %w", err)
	}
	// Advisory locks are per database, not per schema: key the lock by
	// the checkpoint table's oid, so that runs with the same key in other
	// schemas (or other tables) do not exclude each other.
	var oid int64
	if err := conn.QueryRowContext(ctx, `SELECT $1::regclass::oid::bigint`, s.table).Scan(&oid); err != nil {
		discard(conn)
		return nil, false, fmt.Errorf("checkpoint table %s (call CreateTable first): %w", s.name, err)
	}
	key := s.lockKey(oid, runKey)
	h := &heldLock{conn: conn, key: key}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1), pg_backend_pid()`, key).Scan(&got, &h.pid); err != nil {
		discard(conn)
		return nil, false, fmt.Errorf("pg_try_advisory_lock: %w", err)
	}
	if !got {
		conn.Close()
		return nil, false, nil
	}
	if !s.register(runKey, h) {
		// Unreachable while the lock above was free; be safe anyway.
		discard(conn)
		return nil, false, nil
	}
	return func() error {
		var err error
		h.once.Do(func() {
			defer s.forget(runKey, h)
			ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
			defer cancel()
			var released bool
			if err = conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&released); err != nil {
				// The session may still hold the lock: end it, which
				// frees the lock, rather than pool it.
				discard(conn)
				err = fmt.Errorf("pg_advisory_unlock: %w", err)
				return
			}
			conn.Close()
			if !released {
				err = ErrLockLost
			}
		})
		return err
	}, true, nil
}

// discard closes conn and keeps database/sql from reusing its session.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// heartbeat renews the lease of h every ttl/3 until ctx ends or the lease
// is found taken by another runner.
func (s *CheckpointStore) heartbeat(ctx context.Context, runKey string, h *heldLock) {
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := s.db.ExecContext(ctx, s.qRenew, time.Now().Add(s.ttl).UnixMilli(), runKey, h.token)
		if err != nil {
			continue // busy or cancelled: retry at the next tick; Save checks ownership
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			h.lost.Store(true)
			return
		}
	}
}

// sqliteBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED,
// from modernc.org/sqlite (a Code method) or another driver (the message),
// without importing a driver.
func sqliteBusy(err error) bool {
	if err == nil {
		return false
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "database table is locked")
}
