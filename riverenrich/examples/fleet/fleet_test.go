package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
	"go.uber.org/goleak"

	"github.com/batchenrich/batchenrich/riverenrich/internal/testdb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// api is an httpbin /anything that counts requests and answers after
// delay.
func api(t *testing.T, delay time.Duration) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	h := httpbin.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		time.Sleep(delay)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/anything/profile", &n
}

func program(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, context.Background(), args, &out, &errOut, func(string) string { return "" })
	return code, out.String(), errOut.String()
}

func summaryOf(t *testing.T, stdout string) Summary {
	t.Helper()
	var s Summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("stdout is not one JSON summary: %v\n%s", err, stdout)
	}
	return s
}

// startWorkers starts n worker processes of the fleet binary bin, worker i
// with the arguments args(i). Each still running when the test ends gets
// a SIGTERM and is waited for; a failed test logs each one's stderr.
func startWorkers(t *testing.T, bin string, n int, args func(i int) []string) []*exec.Cmd {
	t.Helper()
	var workers []*exec.Cmd
	for i := range n {
		cmd := exec.Command(bin, args(i)...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		workers = append(workers, cmd)
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
			}
			if t.Failed() {
				t.Logf("worker %d stderr:\n%s", i, errb.String())
			}
		})
	}
	return workers
}

func TestFleetInOneProcess(t *testing.T) {
	_, dsn := testdb.PostgresWithURL(t)
	profile, requests := api(t, 0)
	args := []string{"-dsn", dsn, "-profile-url", profile, "-execution-id", "fleet-1", "-seed-rows", "300",
		"-batch-size", "20", "-partitions", "4", "-concurrency", "16", "-json"}
	code, stdout, stderr := program(t, context.Background(), args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	s := summaryOf(t, stdout)
	if s.Status != "ok" || s.Data.StoredRows != 300 || s.Data.ExpectedRows != 300 || s.Data.ValidRows != 300 ||
		s.Configured.Partitions != 4 || s.Data.MaxBatchNumber > 6 || s.Execution.BatchesRun < 15 {
		t.Fatalf("summary %+v", s)
	}
	// Enqueued again: the jobs exist, nothing runs twice.
	code, stdout, stderr = program(t, context.Background(), args...)
	if s := summaryOf(t, stdout); code != exitOK || s.Execution.BatchesRun != 0 || requests.Load() != 300 {
		t.Fatalf("again: exit %d %+v, %d requests\n%s", code, s, requests.Load(), stderr)
	}
	// Without -json, it says how to see the run from another shell.
	code, _, stderr = program(t, context.Background(), args[:len(args)-1]...)
	if code != exitOK || !strings.Contains(stderr, "(status: go run github.com/batchenrich/batchenrich/cmd/batchenrich status -dsn '"+dsn+"' fleet-1)\n") {
		t.Fatalf("again, without -json: exit %d\n%s", code, stderr)
	}
	// Other parameters than the run's jobs carry: refused, one line, no
	// summary, no request (River's unique jobs would keep the first ones).
	for _, c := range []struct{ flag, value, says string }{
		{"-batch-size", "50", "BatchSize 20 (this run: 50)"},
		{"-max-batches", "9", "MaxBatches 0 (this run: 9)"},
	} {
		code, stdout, stderr := program(t, context.Background(), append(slices.Clone(args), c.flag, c.value)...)
		if code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.says) || requests.Load() != 300 {
			t.Fatalf("%s %s: exit %d, %d requests\n%s%s", c.flag, c.value, code, requests.Load(), stdout, stderr)
		}
		t.Log(strings.TrimSpace(stderr))
	}
	// Another partition count for the run: refused before any request.
	args[11] = "2"
	code, _, stderr = program(t, context.Background(), args...)
	if code != exitUsage || !strings.Contains(stderr, "partition count changed") || requests.Load() != 300 {
		t.Fatalf("-partitions 2 after 4: exit %d, %d requests\n%s", code, requests.Load(), stderr)
	}
	t.Log(strings.TrimSpace(stderr))
}

// TestFleetSurvivesAKilledWorker runs a split run over the enqueueing
// process and three worker processes, SIGKILLs a worker that holds
// partitions mid-run, and checks that the run finishes with every row
// stored once, that at most one batch per taken-over partition was
// enriched again, and how long the takeover took.
func TestFleetSurvivesAKilledWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs worker processes")
	}
	// The defaults keep CI short; FLEET_KILL_* give the measured job
	// (see BENCHMARKS.md): rows, batch size, partitions, latency per
	// request, concurrency per partition and takeover interval.
	env := func(name, def string) string {
		if v := os.Getenv("FLEET_KILL_" + name); v != "" {
			return v
		}
		return def
	}
	rows, _ := strconv.Atoi(env("ROWS", "1200"))
	batch, _ := strconv.Atoi(env("BATCH", "20"))
	parts, _ := strconv.Atoi(env("PARTITIONS", "6"))
	latency, _ := time.ParseDuration(env("LATENCY", "30ms"))
	perPart, _ := strconv.Atoi(env("CONCURRENCY", "5"))
	takeover := env("TAKEOVER", "1s")
	// Workers take up to 3 partitions each; the enqueuer's -concurrency
	// sets the run's concurrency per partition (its total ÷ partitions).
	workerConc, enqConc := fmt.Sprint(3*perPart), fmt.Sprint(parts*perPart)
	_, dsn := testdb.PostgresWithURL(t)
	profile, requests := api(t, latency)
	bin := filepath.Join(t.TempDir(), "fleet")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	withApp := func(name string) string {
		u, _ := url.Parse(dsn)
		q := u.Query()
		q.Set("application_name", name)
		u.RawQuery = q.Encode()
		return u.String()
	}
	workers := startWorkers(t, bin, 3, func(i int) []string {
		return []string{"-worker", "-dsn", withApp(fmt.Sprintf("fleet-w%d", i)), "-profile-url", profile,
			"-concurrency", workerConc, "-max-partitions", "3", "-takeover-interval", takeover}
	})
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// Kill, once a batch is committed, a worker holding partition locks:
	// one seen holding advisory locks twice in a row, 50 ms apart (a lock
	// held for a moment only is a claim or a takeover probe).
	killed := make(chan time.Time, 1)
	seenHolding := map[int]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go func() {
		defer close(killed)
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			var n int
			_ = db.Get(&n, `SELECT count(*) FROM batchenrich_checkpoints WHERE batch > 0`)
			if n == 0 {
				continue
			}
			for i, w := range workers {
				var held int
				_ = db.Get(&held, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
					WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1 AND a.datname = current_database()`, fmt.Sprintf("fleet-w%d", i))
				if held > 0 && !seenHolding[i] {
					seenHolding[i] = true
					continue
				}
				seenHolding[i] = held > 0
				if held > 0 {
					_ = w.Process.Signal(syscall.SIGKILL)
					_ = w.Wait()
					killed <- time.Now()
					return
				}
			}
		}
	}()
	start := time.Now()
	code, stdout, stderr := program(t, ctx, "-dsn", withApp("fleet-enqueuer"), "-profile-url", profile, "-execution-id", "fleet-kill",
		"-seed-rows", fmt.Sprint(rows), "-batch-size", fmt.Sprint(batch), "-partitions", fmt.Sprint(parts), "-concurrency", enqConc,
		"-max-partitions", "1", "-takeover-interval", takeover, "-json")
	wall := time.Since(start)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	killAt, ok := <-killed
	if !ok {
		t.Fatal("no worker was killed: the run ended before one held a partition")
	}
	s := summaryOf(t, stdout)
	if s.Status != "ok" || s.Data.StoredRows != rows || s.Data.MissingRows != 0 || s.Data.ValidRows != rows {
		t.Fatalf("summary %+v", s)
	}
	// The surviving workers stop cleanly on SIGTERM: exit 0, nothing
	// left running or locked.
	for i, w := range workers {
		if w.ProcessState != nil {
			continue // the one killed
		}
		_ = w.Process.Signal(syscall.SIGTERM)
		if err := w.Wait(); err != nil {
			t.Errorf("worker %d after SIGTERM: %v", i, err)
		}
	}
	var running, locks int
	if err := db.Get(&running, `SELECT count(*) FROM river_job WHERE state = 'running'`); err != nil || running != 0 {
		t.Errorf("%d jobs still running after the workers stopped (%v)", running, err)
	}
	// The killed worker's sessions end when the server notices: wait for
	// that, a minute at most (a loaded machine). Only this database's
	// sessions count: pg_locks and pg_stat_activity show the whole
	// server's, where other runs of these tests may have fleet workers of
	// the same names.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		err = db.Get(&locks, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND a.application_name LIKE 'fleet-%' AND a.datname = current_database()`)
		if err != nil || locks == 0 || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || locks != 0 {
		var held []string
		_ = db.Select(&held, `SELECT a.application_name || ' pid ' || a.pid || ' ' || a.state || ': ' || left(a.query, 120)
			FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND a.application_name LIKE 'fleet-%' AND a.datname = current_database()`)
		t.Errorf("%d advisory locks still held by fleet processes (%v): %q", locks, err, held)
	}
	var taken []struct {
		ID          int64     `db:"id"`
		AttemptedAt time.Time `db:"attempted_at"`
	}
	if err := db.Select(&taken, `SELECT id, attempted_at FROM river_job WHERE (metadata ->> 'batchenrich:takeovers')::int > 0`); err != nil {
		t.Fatal(err)
	}
	if len(taken) == 0 {
		t.Fatal("no job was taken over")
	}
	extra := int(requests.Load()) - rows
	if extra < 0 || extra > batch*len(taken) {
		t.Fatalf("%d requests for %d rows: %d re-enriched, more than one batch of %d for each of %d taken-over partitions",
			requests.Load(), rows, extra, batch, len(taken))
	}
	var worst time.Duration
	for _, j := range taken {
		worst = max(worst, j.AttemptedAt.Sub(killAt))
	}
	if worst > 30*time.Second {
		t.Errorf("takeover took %v, more than 30 s", worst)
	}
	t.Logf("killed a worker holding partitions %v into the run; %d partitions taken over within %v of the kill (takeover interval %s); %d requests re-enriched (batch %d); run %v",
		killAt.Sub(start).Round(10*time.Millisecond), len(taken), worst.Round(10*time.Millisecond), takeover, extra, batch, wall.Round(10*time.Millisecond))
}

// TestFleetRefusesBeforeWork: flags a process would silently ignore, and a
// -profile-url its requests cannot fill, are refused with one line and
// exit 2 before any request.
func TestFleetRefusesBeforeWork(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"-worker", "-batch-size", "50"}, "-worker and -batch-size: a worker takes each run's settings from its jobs"},
		{[]string{"-worker", "-partitions", "8", "-seed-rows", "10"}, "-worker and -partitions, -seed-rows:"},
		{[]string{"-worker", "-max-batches", "3"}, "-worker and -max-batches:"},
		// Execution ids outside travelers' safe set: one that would
		// collide with a partition's derived key, control characters and
		// ANSI escapes, shown escaped.
		{[]string{"-execution-id", "col#p1"}, `-execution-id "col#p1": use 1 to 128 letters`},
		{[]string{"-execution-id", "run\x1b[31mred"}, `-execution-id "run\x1b[31mred"`},
		{[]string{"-execution-id", "a\nb"}, `-execution-id "a\nb"`},
		// Every numeric flag has an upper bound.
		{[]string{"-seed-rows", "1000000000"}, "-seed-rows 1000000000: must be between 0 and 10000000"},
		{[]string{"-max-batches", "-1"}, "-max-batches -1: must be between 0 and 10000000"},
		{[]string{"-takeover-interval", "2h"}, "-takeover-interval 2h0m0s: must be positive and at most 1h"},
		{[]string{"-slice", "0s"}, "-slice 0s: must be positive and at most 24h"},
	} {
		args := append([]string{"-dsn", "postgres://u@127.0.0.1:1/x", "-profile-url", "http://127.0.0.1:1/a"}, c.args...)
		code, stdout, stderr := program(t, context.Background(), args...)
		if code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.says) || strings.Contains(stderr, "\x1b") {
			t.Errorf("%q: exit %d\n%s%s", c.args, code, stdout, stderr)
		}
	}

	db, dsn := testdb.PostgresWithURL(t)
	profile, requests := api(t, 0)
	// A profile API that cannot be reached: refused before anything is
	// created, its secrets masked.
	for _, mode := range [][]string{{"-worker"}, {"-execution-id", "fleet-noapi", "-seed-rows", "5"}} {
		args := append([]string{"-dsn", dsn, "-profile-url", "http://u:s3cret@127.0.0.1:1/anything?token=s3cret"}, mode...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, stdout, stderr := program(t, ctx, args...)
		cancel()
		if code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "profile API http://xxxxx@127.0.0.1:1/anything?token=xxxxx cannot be reached") {
			t.Errorf("%v: exit %d\n%s%s", mode, code, stdout, stderr)
		}
	}
	var tables int
	if err := db.Get(&tables, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('traveler_batch_source', 'river_job')`); err != nil || tables != 0 {
		t.Errorf("%d tables created (%v), want none", tables, err)
	}

	for _, mode := range [][]string{{"-worker"}, {"-execution-id", "fleet-param", "-seed-rows", "5"}} {
		args := append([]string{"-dsn", dsn, "-profile-url", profile + "/{x}?token=s3cret"}, mode...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a worker accepting it would work until then
		code, stdout, stderr := program(t, ctx, args...)
		cancel()
		if code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "{x}") ||
			strings.Contains(stderr, "s3cret") || requests.Load() != 0 {
			t.Errorf("%v: exit %d, %d requests\n%s%s", mode, code, requests.Load(), stdout, stderr)
		}
		t.Log(strings.TrimSpace(stderr))
	}
}

// TestFleetStoresTravelersFailureReason: an invalid row of a failed call
// holds travelers' reason (batchenrich.FailureReason: no host, no batch
// number), as the shared tables' rows must be the same whichever program
// wrote them.
func TestFleetStoresTravelersFailureReason(t *testing.T) {
	db, dsn := testdb.PostgresWithURL(t)
	h := httpbin.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("traveler_id") == "3" {
			http.Error(w, "no such traveler", http.StatusNotFound)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	code, stdout, stderr := program(t, context.Background(), "-dsn", dsn, "-profile-url", srv.URL+"/anything",
		"-execution-id", "fleet-reason", "-seed-rows", "10", "-batch-size", "5", "-partitions", "2", "-http-retries", "0", "-json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var reason string
	if err := db.Get(&reason, `SELECT validation_error FROM traveler_batch_results WHERE execution_id = 'fleet-reason' AND traveler_id = 3`); err != nil {
		t.Fatal(err)
	}
	if reason != "status 404 after 1 attempt" {
		t.Fatalf("validation_error %q, want travelers' %q", reason, "status 404 after 1 attempt")
	}
}

// TestFleetSIGTERMStopsSoftly sends SIGTERM, mid-run, to a worker process
// holding partitions and then to the enqueueing process: each lets the
// partitions it holds commit the batch they are on and exits, the first
// 0, the second 1 saying how to resume; the run, resumed, finishes with
// every row stored and no item requested twice (the test API counts).
func TestFleetSIGTERMStopsSoftly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs fleet processes")
	}
	const rows, batch, parts = 1200, 20, 4
	_, dsn := testdb.PostgresWithURL(t)
	profile, requests := api(t, 40*time.Millisecond)
	bin := filepath.Join(t.TempDir(), "fleet")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	withApp := func(name string) string {
		u, _ := url.Parse(dsn)
		q := u.Query()
		q.Set("application_name", name)
		u.RawQuery = q.Encode()
		return u.String()
	}
	type proc struct {
		cmd  *exec.Cmd
		errb *bytes.Buffer
		done chan struct{} // closed when it exited, with err
		err  error
	}
	startProc := func(name string, args ...string) *proc {
		p := &proc{cmd: exec.Command(bin, append([]string{"-dsn", withApp(name), "-profile-url", profile}, args...)...),
			errb: &bytes.Buffer{}, done: make(chan struct{})}
		p.cmd.Stderr = p.errb
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			p.err = p.cmd.Wait()
			close(p.done)
		}()
		t.Cleanup(func() {
			select {
			case <-p.done:
			default:
				_ = p.cmd.Process.Kill()
				<-p.done
			}
			if t.Failed() {
				t.Logf("%s stderr:\n%s", name, p.errb.String())
			}
		})
		return p
	}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// holding waits until the process named name holds partition locks
	// and some batches are committed.
	holding := func(name string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
			var held, committed int
			_ = db.Get(&held, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
				WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1 AND a.datname = current_database()`, name)
			_ = db.Get(&committed, `SELECT count(*) FROM traveler_batch_results`)
			if held > 0 && committed > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s held no partition within 2 minutes", name)
			}
		}
	}
	exited := func(p *proc, name string) error {
		t.Helper()
		select {
		case <-p.done:
			return p.err
		case <-time.After(time.Minute):
			t.Fatalf("%s still running a minute after SIGTERM", name)
			return nil
		}
	}

	w := startProc("fleet-soft-w", "-worker", "-concurrency", "10", "-max-partitions", "2")
	// The worker holds its partitions before the enqueuer works on any.
	enq := startProc("fleet-soft-enq", "-execution-id", "fleet-soft", "-seed-rows", fmt.Sprint(rows),
		"-batch-size", fmt.Sprint(batch), "-partitions", fmt.Sprint(parts), "-concurrency", "20", "-max-partitions", "2")
	holding("fleet-soft-w")
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	if err := exited(w, "the worker"); err != nil {
		t.Fatalf("worker after SIGTERM: %v\n%s", err, w.errb.String())
	}
	holding("fleet-soft-enq")
	_ = enq.cmd.Process.Signal(syscall.SIGTERM)
	err = exited(enq, "the enqueuer")
	var stored int
	_ = db.Get(&stored, `SELECT count(*) FROM traveler_batch_results`)
	if stored == rows {
		t.Skip("the run finished before the enqueuer's SIGTERM")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitIncomplete || !strings.Contains(enq.errb.String(), "run again with -execution-id fleet-soft") {
		t.Fatalf("enqueuer after SIGTERM: %v\n%s", err, enq.errb.String())
	}
	var running int
	if err := db.Get(&running, `SELECT count(*) FROM river_job WHERE state = 'running'`); err != nil || running != 0 {
		t.Fatalf("%d jobs still running after both stopped (%v)", running, err)
	}
	code, stdout, stderr := program(t, context.Background(), "-dsn", dsn, "-profile-url", profile, "-execution-id", "fleet-soft",
		"-seed-rows", fmt.Sprint(rows), "-batch-size", fmt.Sprint(batch), "-partitions", fmt.Sprint(parts), "-concurrency", "20", "-json")
	if code != exitOK {
		t.Fatalf("resume: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if s := summaryOf(t, stdout); s.Data.StoredRows != rows || s.Data.MissingRows != 0 {
		t.Fatalf("summary %+v", s)
	}
	if got := requests.Load(); got != rows {
		t.Fatalf("%d requests for %d rows: SIGTERM re-requested %d items", got, rows, got-rows)
	}
	t.Logf("stopped the worker, then the enqueuer with %d of %d rows stored; resumed: %d requests for %d rows", stored, rows, requests.Load(), rows)
}
