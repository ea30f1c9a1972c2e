package sqlbatch

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// budgetEvidence is what this process saw of the upstream since its last
// renewal, for an adaptive budget (BudgetConfig.Adaptive).
type budgetEvidence struct {
	pause   time.Duration // the longest host-wide pause reported, 0 for none
	resumed bool          // a probe got an answer after a pause
}

// Adapts reports whether the budget is adaptive (BudgetConfig.Adaptive):
// httpenrich discovers it (httpenrich.AdaptiveBudget) and reports its
// per-host limit and pauses to it.
func (b *Budget) Adapts() bool { return b.cfg.Adaptive }

// LimitChanged records this process's adaptive limit for the upstream
// (httpenrich's per-host limit), recorded with the lease at the next
// renewal: BudgetShare.Limit is the sum over the live processes. Several
// Enrichers of a process sharing the Budget each report theirs: the last
// one reported is recorded. It does no I/O. It does nothing unless the
// budget is adaptive.
func (b *Budget) LimitChanged(n int) {
	if !b.cfg.Adaptive {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hostLimit = n
}

// Pause records a host-wide refusal: the upstream refuses every request
// for d. The lease is renewed at once (in the background) with it, and the
// budget pauses: every process's share is none but the prober's, one
// request, until the prober's probe gets an answer (Resume) or the pause
// is over. It does nothing unless the budget is adaptive.
func (b *Budget) Pause(d time.Duration) {
	if !b.cfg.Adaptive || d <= 0 {
		return
	}
	b.mu.Lock()
	b.ev.pause = max(b.ev.pause, d)
	b.mu.Unlock()
	b.kickRenewal()
}

// Resume records that a probe after a pause got an answer: the pause
// ends at once for this process's renewal, and for the others at theirs.
// It does nothing unless the budget is adaptive and paused.
func (b *Budget) Resume() {
	if !b.cfg.Adaptive {
		return
	}
	b.mu.Lock()
	if !b.paused && b.ev.pause == 0 { // no pause to end
		b.mu.Unlock()
		return
	}
	b.ev.resumed = true
	b.mu.Unlock()
	b.kickRenewal()
}

// kickRenewal asks the renewal loop for a renewal now.
func (b *Budget) kickRenewal() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// takeEvidence returns the evidence gathered since the last renewal and
// this process's adaptive limit, and starts anew.
func (b *Budget) takeEvidence() (budgetEvidence, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ev := b.ev
	b.ev = budgetEvidence{}
	return ev, b.hostLimit
}

// giveBack restores evidence a failed renewal took.
func (b *Budget) giveBack(ev budgetEvidence) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ev.pause = max(b.ev.pause, ev.pause)
	b.ev.resumed = b.ev.resumed || ev.resumed
}

// pauseShare reads the budget's pause, applies this process's evidence to
// it and writes it back, in the renewal's transaction (under its advisory
// lock); members are the live members, this one included. It returns
// this process's share during a pause: 1 for the prober, else 0; -1 when
// there is no pause.
func (b *Budget) pauseShare(ctx context.Context, tx *sqlx.Tx, members []string, ev budgetEvidence) (int, error) {
	var (
		prober  string
		leftMs  sql.NullFloat64
		present = true
	)
	err := tx.QueryRowContext(ctx, b.qPauseRead, b.cfg.Name).Scan(&prober, &leftMs)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		present = false
	case err != nil:
		return -1, err
	}
	left := time.Duration(math.MinInt64) // no pause
	if leftMs.Valid {
		left = time.Duration(leftMs.Float64 * float64(time.Millisecond))
	}
	if ev.resumed {
		left = math.MinInt64
	}
	if ev.pause > 0 {
		left = max(left, ev.pause)
	}
	// The pause holds for a renewal interval past its end, for the
	// prober's answer to come (a failed probe extends it).
	paused := left > -b.ttl/5
	switch {
	case !paused:
		prober = ""
	case !slices.Contains(members, prober):
		prober = b.member // the first to report it, or to renew after the prober died
	}
	if present || paused {
		var leftArg any
		if left != math.MinInt64 {
			leftArg = left.Milliseconds()
		}
		if _, err := tx.ExecContext(ctx, b.qPauseWrite, b.cfg.Name, prober, leftArg); err != nil {
			return -1, err
		}
	}
	switch {
	case !paused:
		return -1, nil
	case prober == b.member:
		return 1, nil
	}
	return 0, nil
}
