package sqlbatch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/internal/sharelimit"
	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// Shared budget defaults.
const (
	// DefaultBudgetTable is the table BudgetConfig.Table defaults to.
	DefaultBudgetTable = "batchenrich_budgets"
	// DefaultBudgetLeaseTTL is how long a process's share outlives its
	// last renewal; shares are renewed every fifth of it.
	DefaultBudgetLeaseTTL = 5 * time.Second
	// MinBudgetLeaseTTL bounds BudgetConfig.LeaseTTL from below.
	MinBudgetLeaseTTL = time.Second
)

// ErrBudgetClosed is returned by Budget.Take once the Budget is closed.
var ErrBudgetClosed = sharelimit.ErrClosed

// BudgetConfig configures a Budget. Every process sharing a budget must
// configure it alike (Upstream, MaxConcurrency, Rate, Adaptive, under the
// same Name and Table): NewBudget refuses a configuration that differs
// from the live processes'. LeaseTTL is each process's own.
type BudgetConfig struct {
	// Name names the budget, required, UTF-8 text without NUL bytes: the
	// processes giving the same name share it.
	Name string
	// Upstream is the host the budget covers, required, as it appears in
	// the URL: "api.example.com", or "api.example.com:8443" with a port.
	// httpenrich.New refuses a Config whose URL's host differs.
	Upstream string
	// MaxConcurrency bounds the requests in flight to Upstream from all
	// the processes together. Zero means no bound. At least one of
	// MaxConcurrency and Rate is required.
	MaxConcurrency int
	// Rate bounds the requests sent per second to Upstream by all the
	// processes together (each attempt counts). Zero means no bound.
	Rate float64
	// Table is the table of the budgets' leases, created by NewBudget
	// when missing. Empty means DefaultBudgetTable. An adaptive budget
	// also keeps its pause in the table named Table with "_pause"
	// appended, created likewise (so its Table has at most 57 bytes, or
	// 57 after the schema's dot).
	Table string
	// Adaptive shares httpenrich's adaptive limit (httpenrich.Config.Adaptive,
	// which New then requires) among the processes: each process's
	// per-host limit adapts under its share, the sum of their limits is
	// reported (BudgetShare.Limit), and when the upstream refuses
	// everything (a host-wide refusal with Retry-After) the budget pauses
	// for every process, one of them probing. See Budget's "Adaptive"
	// section.
	Adaptive bool
	// LeaseTTL is how long a share outlives its process's last renewal:
	// the share of a process that died returns to the others within
	// LeaseTTL plus a fifth of it. Zero means DefaultBudgetLeaseTTL; at
	// least MinBudgetLeaseTTL.
	LeaseTTL time.Duration
}

// BudgetShare is a process's current part of a Budget.
type BudgetShare struct {
	// Concurrency is the requests this process may have in flight; -1
	// when the budget has no MaxConcurrency, except while an adaptive
	// budget is paused (Paused): 1 for the prober, else 0.
	Concurrency int
	// Rate is the requests per second this process may send; +Inf when
	// the budget has no Rate.
	Rate float64
	// Members is how many live processes shared the budget at the last
	// renewal, this one included.
	Members int
	// Limit is, for an adaptive budget (BudgetConfig.Adaptive), the sum
	// of the live processes' adaptive limits for the upstream as recorded
	// at their last renewals, this one's included (above MaxConcurrency
	// when the shares hold the processes back: see Budget); 0 otherwise.
	Limit int
	// Paused reports that the adaptive budget was paused at the last
	// renewal (the upstream refused everything): the shares are none but
	// the prober's.
	Paused bool
	// Err is the last renewal's error, nil when it succeeded.
	Err error
}

// Budget is one process's member of a budget for an upstream shared by
// every process on a PostgreSQL database that opens it with the same
// name: a ceiling on the requests in flight and a rate limit, for the
// processes together. Give it to httpenrich.Config.Budget (several
// Enrichers of a process may share it: the process's share is enforced
// across them).
//
// # How it is shared
//
// Each process leases a share in a row of the budget table and renews it
// every fifth of LeaseTTL, in one short transaction (no request waits for
// the database: Take works from memory). At each renewal a process
// deletes the leases that expired, and takes its fair part — the ceiling
// and the rate divided among the live processes, the remainder of the
// ceiling going to the first ones in a fixed order — but never more than
// what the others' leases leave: a process that joins starts with what is
// free, the others come down to their fair part at their next renewal,
// and it gets its own at its next one, within twice the renewal interval.
// So the shares recorded never add up to more than the budget, and a
// process applies a lowered share before it records it (requests already
// in flight above it finish). A process whose
// renewals fail keeps its share until its lease would have expired, then
// sends nothing until a renewal succeeds (Share reports the error); Take
// itself checks the lease's end, so a renewal still waiting on the
// database does not stretch it. Close
// deletes the lease at once; a process killed leaves its lease to expire
// (within LeaseTTL plus a renewal interval, 6 s by default).
//
// Shares are split evenly among the live processes, whether or not they
// use theirs: a process that is idle still holds its part until it closes
// its Budget.
//
// # Adaptive
//
// With BudgetConfig.Adaptive, the processes also share httpenrich's
// adaptive limit (httpenrich.Config.Adaptive, required with it; Budget
// implements httpenrich.AdaptiveBudget):
//
//   - Each process's per-host limit adapts to the upstream's answers per
//     round trip, as without a Budget, under its share of the ceiling:
//     the processes' AIMD limits settle together at what the upstream
//     admits, as TCP flows share a link. Each process records its limit
//     with its lease; BudgetShare.Limit is the sum over the live
//     processes, the fleet's limit. When a share is below what the
//     upstream admits, the requests wait for the share and that process's
//     limit, which counts them, grows on to httpenrich's
//     Adaptive.MaxConcurrency (the sum then exceeds MaxConcurrency; the
//     requests in flight never do). The limit itself is not adapted
//     through the database: a renewal a second is too slow a loop for
//     answers that come every few milliseconds (one fleet limit adapted at
//     the renewals was tried and swung far more, with more refusals:
//     BENCHMARKS.md).
//   - Outages are shared: a host-wide refusal with Retry-After (see
//     httpenrich.Adaptive) pauses the budget for its Retry-After. The
//     process that reported it renews at once, in the background, and
//     becomes the prober: while the budget is paused its share is one
//     request and every other process's none (each applies it at its
//     next renewal, within a renewal interval), so that the fleet sends
//     one probe per Retry-After, not one per process. The prober's probe
//     that gets an answer ends the pause (the others, renewing every
//     twenty-fifth of LeaseTTL while held back, resume at their next
//     renewal); a failed probe extends it; without a probe it ends a
//     renewal interval after its Retry-After. A prober that dies is
//     replaced by the next process to renew once its lease expired.
//
// Limits: each process's limit adapts alone within its share, so the
// fleet probes the upstream's capacity N times as often as one process
// (the 429s stay a small share: BENCHMARKS.md); while paused, the
// processes other than the prober, renewing five times as often while
// held back (every 200 ms by default), resume up to that long after the
// pause ended; pauses come from Retry-After only (a host-wide refusal
// without one lowers each process's limit but pauses nothing), and the
// rate-limit headers' pauses (httpenrich.Adaptive) stay per process.
//
// A Budget needs PostgreSQL. Its renewals run in a goroutine of its own,
// from NewBudget until Close.
type Budget struct {
	db       *sqlx.DB
	cfg      BudgetConfig
	ttl      time.Duration
	member   string
	lockKey  int64
	lim      *sharelimit.Limiter
	qDelete  string
	qSelect  string
	qUpsert  string
	qRelease string
	// An adaptive budget's (BudgetConfig.Adaptive) queries of the pause
	// table.
	qPauseRead, qPauseWrite string

	mu         sync.Mutex
	members    int
	err        error
	validUntil time.Time
	// An adaptive budget's state: the evidence since the last renewal,
	// this process's adaptive limit, and the fleet's limit and pause as of
	// the last renewal.
	ev        budgetEvidence
	hostLimit int
	limit     int
	paused    bool

	kick chan struct{} // asks the loop for a renewal now

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewBudget validates cfg (a *batchenrich.ConfigError names the first bad field),
// creates the budget table if missing, takes this process's first share,
// and starts renewing it. Close it when done.
func NewBudget(ctx context.Context, db *sqlx.DB, cfg BudgetConfig) (_ *Budget, err error) {
	defer func() { err = inConfig("BudgetConfig", err) }()
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	if d.Kind != sqldialect.PostgreSQL {
		return nil, configErr("db", "a shared Budget needs PostgreSQL", nil)
	}
	switch {
	case strings.TrimSpace(cfg.Name) == "":
		return nil, configErr("Name", "required: the processes giving the same name share the budget", nil)
	case !utf8.ValidString(cfg.Name) || strings.ContainsRune(cfg.Name, 0):
		return nil, configErr("Name", "must be UTF-8 text without NUL bytes, as PostgreSQL stores it", nil)
	case strings.TrimSpace(cfg.Upstream) == "" || strings.ContainsAny(cfg.Upstream, "/ ?#@"):
		return nil, configErr("Upstream", "required: the host the budget covers, as in the URL (\"api.example.com\" or \"api.example.com:8443\")", nil)
	case cfg.MaxConcurrency < 0:
		return nil, configErr("MaxConcurrency", "must not be negative", nil)
	case cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0):
		return nil, configErr("Rate", "must be a finite number, positive or 0 for no limit", nil)
	case cfg.MaxConcurrency == 0 && cfg.Rate == 0:
		return nil, configErr("MaxConcurrency", "set MaxConcurrency, Rate or both: a budget bounds something", nil)
	case cfg.LeaseTTL < 0:
		return nil, configErr("LeaseTTL", "must not be negative", nil)
	case cfg.LeaseTTL > 0 && cfg.LeaseTTL < MinBudgetLeaseTTL:
		return nil, configErr("LeaseTTL", "must be at least MinBudgetLeaseTTL", nil)
	}
	name := cfg.Table
	if name == "" {
		name = DefaultBudgetTable
	}
	table, err := quoteTable(d, "Table", name)
	if err != nil {
		return nil, err
	}
	pauseTable := "" // an adaptive budget's only
	if cfg.Adaptive {
		if pauseTable, err = d.QuoteTable(name + "_pause"); err != nil {
			return nil, configErr("Table", `an adaptive budget keeps its pause in Table with "_pause" appended, a bad table name`, err)
		}
	}
	ttl := cfg.LeaseTTL
	if ttl == 0 {
		ttl = DefaultBudgetLeaseTTL
	}
	h := fnv.New64a()
	h.Write([]byte("batchenrich:budget:" + name + "\x00" + cfg.Name))
	b := &Budget{
		db: db, cfg: cfg, ttl: ttl, member: newOwner(), lockKey: int64(h.Sum64()),
		qDelete: `DELETE FROM ` + table + ` WHERE budget = $1 AND expires_at < now()`,
		qSelect: `SELECT member, upstream, max_concurrency, rate, adaptive, concurrency, granted_rate, host_limit FROM ` + table +
			` WHERE budget = $1 ORDER BY member`,
		qUpsert: `INSERT INTO ` + table + ` (budget, member, upstream, max_concurrency, rate, adaptive, concurrency, granted_rate, host_limit, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + $10 * interval '1 millisecond')
			ON CONFLICT (budget, member) DO UPDATE SET concurrency = excluded.concurrency,
			granted_rate = excluded.granted_rate, host_limit = excluded.host_limit, expires_at = excluded.expires_at`,
		qRelease: `DELETE FROM ` + table + ` WHERE budget = $1 AND member = $2`,
		qPauseRead: `SELECT prober, (extract(epoch FROM pause_until - clock_timestamp()) * 1000)::double precision
			FROM ` + pauseTable + ` WHERE budget = $1`,
		qPauseWrite: `INSERT INTO ` + pauseTable + ` (budget, prober, pause_until)
			VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
			ON CONFLICT (budget) DO UPDATE SET prober = excluded.prober, pause_until = excluded.pause_until`,
		kick: make(chan struct{}, 1),
	}
	b.lim = sharelimit.New(b.none())
	ddl := []string{`CREATE TABLE IF NOT EXISTS ` + table + ` (
		budget text NOT NULL,
		member text NOT NULL,
		upstream text NOT NULL,
		max_concurrency bigint NOT NULL,
		rate double precision NOT NULL,
		adaptive boolean NOT NULL DEFAULT false,
		concurrency bigint NOT NULL,
		granted_rate double precision NOT NULL,
		host_limit bigint NOT NULL DEFAULT 0,
		expires_at timestamptz NOT NULL,
		PRIMARY KEY (budget, member)
	)`}
	if cfg.Adaptive {
		ddl = append(ddl, `CREATE TABLE IF NOT EXISTS `+pauseTable+` (
		budget text PRIMARY KEY,
		prober text NOT NULL,
		pause_until timestamptz
	)`)
	}
	if err := ExecDDL(ctx, db, ddl...); err != nil {
		return nil, fmt.Errorf("sqlbatch: create budget table %s: %w", name, err)
	}
	// The adaptive and host_limit columns joined the table after its
	// first version: added to a table created before, only then (an ALTER
	// needs the table's owner).
	var cols int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1)
		AND attname IN ('adaptive', 'host_limit') AND NOT attisdropped`, table).Scan(&cols); err != nil {
		return nil, fmt.Errorf("sqlbatch: read budget table %s: %w", name, err)
	}
	if cols < 2 {
		if err := ExecDDL(ctx, db, `ALTER TABLE `+table+` ADD COLUMN IF NOT EXISTS adaptive boolean NOT NULL DEFAULT false,
			ADD COLUMN IF NOT EXISTS host_limit bigint NOT NULL DEFAULT 0`); err != nil {
			return nil, fmt.Errorf("sqlbatch: add the adaptive columns to budget table %s: %w", name, err)
		}
	}
	if err := b.renew(ctx); err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(context.Background())
	b.stop, b.done = stop, make(chan struct{})
	go b.loop(rctx)
	return b, nil
}

// Upstream returns the host the budget covers (BudgetConfig.Upstream).
func (b *Budget) Upstream() string { return b.cfg.Upstream }

// Take waits for a slot under this process's share of the concurrency,
// then for a turn under its share of the rate, honouring ctx, and returns
// the function that gives the slot back (call it once, when the request is
// over). It does no I/O. After Close it returns ErrBudgetClosed.
func (b *Budget) Take(ctx context.Context) (release func(), err error) {
	for {
		if release, err = b.lim.Take(ctx); err != nil {
			return nil, err
		}
		if !b.lapse() {
			return release, nil
		}
		// The lease lapsed while a renewal was still waiting on the
		// database: the share is now none, so Take waits for a renewal.
		release()
	}
}

// lapse reports whether this process's lease would have expired by now,
// without a renewal since, and sets the share to none if so: a renewal
// that fails slowly (waiting on the database) must not let the process
// keep sending past its lease, whose share the others may have taken.
func (b *Budget) lapse() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Now().Before(b.validUntil) {
		return false
	}
	b.lim.Set(b.none())
	return true
}

// Share returns this process's current share.
func (b *Budget) Share() BudgetShare {
	s := b.lim.Share()
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetShare{Concurrency: s.Concurrency, Rate: s.Rate, Members: b.members, Limit: b.limit, Paused: b.paused, Err: b.err}
}

// Close stops the renewals, makes Take return ErrBudgetClosed, and deletes
// this process's lease, so that the others get its share at their next
// renewal. It returns the deletion's error, if any (the lease then
// expires). Calling it again returns the first call's result.
func (b *Budget) Close() error {
	b.closeOnce.Do(func() {
		b.stop()
		<-b.done
		b.lim.Close()
		ctx, cancel := context.WithTimeout(context.Background(), b.ttl)
		defer cancel()
		if _, err := b.db.ExecContext(ctx, b.qRelease, b.cfg.Name, b.member); err != nil {
			b.closeErr = fmt.Errorf("sqlbatch: budget %q: release the lease: %w", b.cfg.Name, err)
		}
	})
	return b.closeErr
}

// none is the share of a process holding no lease.
func (b *Budget) none() sharelimit.Share {
	s := sharelimit.Share{Concurrency: 0, Rate: 0}
	if b.cfg.MaxConcurrency == 0 {
		s.Concurrency = -1
	}
	if b.cfg.Rate == 0 {
		s.Rate = math.Inf(1)
	}
	return s
}

// loop renews the lease every fifth of the TTL until ctx ends; after a
// failed renewal, the share stays until the lease would have expired.
func (b *Budget) loop(ctx context.Context) {
	defer close(b.done)
	t := time.NewTicker(b.ttl / 5)
	defer t.Stop()
	var soon <-chan time.Time // while paused and not probing
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.kick: // an adaptive budget's pause or its end
		case <-soon:
		}
		rctx, cancel := context.WithTimeout(ctx, b.ttl/2)
		err := b.renew(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			b.lapse()
		}
		// A process held back by another's probe renews five times as
		// often until the pause ends, to resume soon after the probe's
		// answer.
		soon = nil
		if s := b.Share(); s.Paused && s.Concurrency == 0 {
			soon = time.After(b.ttl / 25)
		}
	}
}

// renew deletes the expired leases and renews this process's, with its
// new share, in one transaction; the share applies at once when it is
// lowered (before the commit), else after the commit.
func (b *Budget) renew(ctx context.Context) (err error) {
	start := time.Now()
	defer func() {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}()
	fail := func(what string, err error) error {
		return fmt.Errorf("sqlbatch: budget %q: %s: %w", b.cfg.Name, what, err)
	}
	tx, err := b.db.BeginTxx(ctx, nil)
	if err != nil {
		return fail("renew", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, b.lockKey); err != nil {
		return fail("lock", err)
	}
	if _, err := tx.ExecContext(ctx, b.qDelete, b.cfg.Name); err != nil {
		return fail("delete expired leases", err)
	}
	rows, err := tx.QueryContext(ctx, b.qSelect, b.cfg.Name)
	if err != nil {
		return fail("read leases", err)
	}
	var (
		members               = []string{}
		othersC               int
		othersR               float64
		mismatch              error
		member, up            string
		maxC, grantC, hostL   int64
		rate, grantR          float64
		adaptive              bool
		alreadyIn, scanFailed bool
		fleetLimit            int
	)
	for rows.Next() {
		if err := rows.Scan(&member, &up, &maxC, &rate, &adaptive, &grantC, &grantR, &hostL); err != nil {
			scanFailed = true
			mismatch = err
			break
		}
		if member == b.member {
			alreadyIn = true
		} else {
			fleetLimit += int(hostL)
			othersC += int(grantC)
			othersR += grantR
			if mismatch == nil {
				mismatch = b.mismatch(up, int(maxC), rate, adaptive)
			}
		}
		members = append(members, member)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fail("read leases", err)
	}
	if scanFailed {
		return fail("read leases", mismatch)
	}
	if mismatch != nil {
		return mismatch
	}
	if !alreadyIn {
		members = append(members, b.member)
		slices.Sort(members)
	}
	pauseShare, myLimit := -1, 0
	if b.cfg.Adaptive {
		var ev budgetEvidence
		ev, myLimit = b.takeEvidence()
		fleetLimit += myLimit
		if pauseShare, err = b.pauseShare(ctx, tx, members, ev); err != nil {
			b.giveBack(ev)
			return fail("pause", err)
		}
		defer func() {
			if err != nil {
				b.giveBack(ev)
			}
		}()
	}
	next := b.fair(members, othersC, othersR)
	if pauseShare >= 0 {
		// Paused: none but the prober's one request (no bound becomes
		// that bound too).
		next.Concurrency = lower(next.Concurrency, pauseShare)
	}
	cur := b.lim.Share()
	lowered := sharelimit.Share{Concurrency: lower(cur.Concurrency, next.Concurrency), Rate: min(cur.Rate, next.Rate)}
	b.lim.Set(lowered)
	grantC = int64(max(next.Concurrency, 0))
	grantR = next.Rate
	if math.IsInf(grantR, 1) {
		grantR = 0
	}
	if _, err := tx.ExecContext(ctx, b.qUpsert, b.cfg.Name, b.member, b.cfg.Upstream, b.cfg.MaxConcurrency, b.cfg.Rate,
		b.cfg.Adaptive, grantC, grantR, myLimit, b.ttl.Milliseconds()); err != nil {
		return fail("renew the lease", err)
	}
	if err := tx.Commit(); err != nil {
		return fail("renew the lease", err)
	}
	// The share and the lease's end change together, so that a
	// concurrent lapse never sets none over the fresh share.
	b.mu.Lock()
	b.validUntil = start.Add(b.ttl)
	b.lim.Set(next)
	b.members = len(members)
	b.limit, b.paused = fleetLimit, pauseShare >= 0
	b.mu.Unlock()
	return nil
}

// lower returns the lower of two concurrencies, -1 meaning unbounded.
func lower(a, b int) int {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}

// fair returns this process's share among members (sorted, this one
// included): its even part, no more than the others' leases leave.
func (b *Budget) fair(members []string, othersC int, othersR float64) sharelimit.Share {
	s := b.none()
	n := len(members)
	i := 0
	for j, m := range members {
		if m == b.member {
			i = j
		}
	}
	if b.cfg.MaxConcurrency != 0 {
		c := b.cfg.MaxConcurrency
		part := c / n
		if i < c%n {
			part++
		}
		s.Concurrency = max(0, min(part, c-othersC))
	}
	if b.cfg.Rate != 0 {
		s.Rate = max(0, min(b.cfg.Rate/float64(n), b.cfg.Rate-othersR))
	}
	return s
}

// mismatch returns the error for a live member configured otherwise.
func (b *Budget) mismatch(upstream string, maxC int, rate float64, adaptive bool) error {
	field, theirs, ours := "", "", ""
	switch {
	case upstream != b.cfg.Upstream:
		field, theirs, ours = "Upstream", fmt.Sprintf("%q", upstream), fmt.Sprintf("%q", b.cfg.Upstream)
	case maxC != b.cfg.MaxConcurrency:
		field, theirs, ours = "MaxConcurrency", fmt.Sprint(maxC), fmt.Sprint(b.cfg.MaxConcurrency)
	case rate != b.cfg.Rate:
		field, theirs, ours = "Rate", fmt.Sprint(rate), fmt.Sprint(b.cfg.Rate)
	case adaptive != b.cfg.Adaptive:
		field, theirs, ours = "Adaptive", fmt.Sprint(adaptive), fmt.Sprint(b.cfg.Adaptive)
	default:
		return nil
	}
	return configErr(field, fmt.Sprintf("budget %q is shared by live processes with %s %s, not %s: every process must configure it alike",
		b.cfg.Name, field, theirs, ours), nil)
}
