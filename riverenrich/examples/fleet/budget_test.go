package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mccutchen/go-httpbin/v2/httpbin"

	"github.com/batchenrich/batchenrich/riverenrich/internal/testdb"
)

// TestFleetSharedBudget: three worker processes and the enqueueing one,
// each allowed 15 calls in flight, share -budget-concurrency 6: the API
// never sees more than 6 at once; a worker SIGKILLed mid-run leaves its
// share to the others within 10 s; the run completes with exact rows.
func TestFleetSharedBudget(t *testing.T) { testFleetSharedBudget(t, false) }

// TestFleetSharedAdaptiveBudget: TestFleetSharedBudget with
// -budget-adaptive: each process's adaptive limit under its share.
func TestFleetSharedAdaptiveBudget(t *testing.T) { testFleetSharedBudget(t, true) }

func testFleetSharedBudget(t *testing.T, adaptive bool) {
	if testing.Short() {
		t.Skip("builds and runs worker processes")
	}
	const rows, batch, parts, ceiling = 1200, 20, 6, 6
	_, dsn := testdb.PostgresWithURL(t)
	var inflight, worst, requests atomic.Int64
	h := httpbin.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := worst.Load(); n > m && !worst.CompareAndSwap(m, n); m = worst.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	profile := srv.URL + "/anything/profile"
	bin := filepath.Join(t.TempDir(), "fleet")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	budgetArgs := []string{"-budget", "profiles", "-budget-concurrency", fmt.Sprint(ceiling), "-concurrency", "15"}
	if adaptive {
		budgetArgs = append(budgetArgs, "-budget-adaptive")
	}
	workers := startWorkers(t, bin, 3, func(int) []string {
		return append([]string{"-worker", "-dsn", dsn, "-profile-url", profile, "-max-partitions", "3",
			"-takeover-interval", "1s"}, budgetArgs...)
	})
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Once a batch is committed, SIGKILL worker 0, then wait for its lease
	// to go and the live members' shares to add up to the ceiling again.
	var (
		wg       sync.WaitGroup
		returned time.Duration
		killErr  error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			var n int
			_ = db.Get(&n, `SELECT count(*) FROM batchenrich_checkpoints WHERE batch > 0`)
			if n > 0 {
				break
			}
		}
		pid := workers[0].Process.Pid
		_ = workers[0].Process.Signal(syscall.SIGKILL)
		_ = workers[0].Wait()
		killed := time.Now()
		for ; ctx.Err() == nil; time.Sleep(20 * time.Millisecond) {
			var (
				gone bool
				sum  int
			)
			err := db.QueryRow(`SELECT count(*) FILTER (WHERE member LIKE $1) = 0, COALESCE(sum(concurrency) FILTER (WHERE member NOT LIKE $1), 0)
				FROM batchenrich_budgets WHERE budget = 'profiles'`, fmt.Sprintf("%% %d", pid)).Scan(&gone, &sum)
			if err != nil {
				killErr = err
				return
			}
			if gone && sum == ceiling {
				returned = time.Since(killed)
				return
			}
		}
		killErr = fmt.Errorf("the killed worker's share did not return: %w", ctx.Err())
	}()
	code, stdout, stderr := program(t, ctx, append([]string{"-dsn", dsn, "-profile-url", profile, "-execution-id", "fleet-budget",
		"-seed-rows", fmt.Sprint(rows), "-batch-size", fmt.Sprint(batch), "-partitions", fmt.Sprint(parts),
		"-max-partitions", "1", "-takeover-interval", "1s", "-json"}, budgetArgs...)...)
	wg.Wait()
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	s := summaryOf(t, stdout)
	if s.Status != "ok" || s.Data.StoredRows != rows || s.Data.MissingRows != 0 || s.Data.ValidRows != rows {
		t.Fatalf("summary %+v", s)
	}
	if killErr != nil {
		t.Fatal(killErr)
	}
	if returned > 10*time.Second {
		t.Errorf("the killed worker's share returned after %v, want within 10 s", returned)
	}
	if w := worst.Load(); w > ceiling {
		t.Errorf("%d requests in flight at once at the API, budget %d", w, ceiling)
	}
	t.Logf("%d requests, at most %d in flight (budget %d over 4 processes of 15 each); killed worker's share back in %v; run %d ms",
		requests.Load(), worst.Load(), ceiling, returned.Round(10*time.Millisecond), s.Execution.DurationMS)
}

// TestFleetBudgetFlagsRefused: budget flags that cannot work are refused
// with one line and exit 2 before any work.
func TestFleetBudgetFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"-budget-concurrency", "5"}, "-budget-concurrency, -budget-rate and -budget-adaptive need -budget"},
		{[]string{"-budget-adaptive"}, "-budget-concurrency, -budget-rate and -budget-adaptive need -budget"},
		{[]string{"-budget", "b"}, `-budget "b": set -budget-concurrency, -budget-rate or both`},
		{[]string{"-budget", "b", "-budget-concurrency", "-1"}, "-budget-concurrency -1: must be between 0 and 100000"},
		{[]string{"-budget", "b", "-budget-rate", "NaN"}, "-budget-rate NaN: must be between 0 and 1000000"},
		{[]string{"-budget", "b c", "-budget-rate", "5"}, `-budget "b c": use 1 to 128 letters`},
	} {
		args := append([]string{"-dsn", "postgres://u@127.0.0.1:1/x", "-profile-url", "http://127.0.0.1:1/a"}, c.args...)
		code, stdout, stderr := program(t, context.Background(), args...)
		if code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.says) {
			t.Errorf("%q: exit %d\n%s%s", c.args, code, stdout, stderr)
		}
	}

	// A process giving another ceiling than the live members is refused.
	db, dsn := testdb.PostgresWithURL(t)
	_ = db
	profile, _ := api(t, 0)
	u, _ := url.Parse(profile)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, context.Background(), []string{"-worker", "-dsn", dsn, "-profile-url", profile, "-budget", "b", "-budget-concurrency", "4"},
			&out, &bytes.Buffer{}, func(string) string { return "" })
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM batchenrich_budgets WHERE budget = 'b' AND upstream = $1`, u.Host)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("the first worker never joined the budget")
		}
	}
	code, stdout, stderr := program(t, context.Background(), "-worker", "-dsn", dsn, "-profile-url", profile, "-budget", "b", "-budget-concurrency", "5")
	cancel()
	if c := <-done; c != exitOK {
		t.Errorf("first worker: exit %d", c)
	}
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "every process must configure it alike") {
		t.Errorf("second worker with another ceiling: exit %d\n%s%s", code, stdout, stderr)
	}
}
