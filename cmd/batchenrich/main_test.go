package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/goleak"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command in-process with args and no $DATABASE_URL.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	return cliEnv(t, nil, args...)
}

func cliEnv(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return result{code, out.String(), errOut.String()}
}

// ok fails unless r succeeded with nothing on stderr.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	return r
}

// refused fails unless r exited with code and one line on stderr
// holding want, and nothing on stdout.
func (r result) refused(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "batchenrich: ") ||
		!strings.Contains(r.stderr, want) || r.stdout != "" {
		t.Fatalf("exit %d (want %d), stderr %q (want one line with %q), stdout %q", r.code, code, r.stderr, want, r.stdout)
	}
}

// target is a database of one kind with a checkpoint table, and the -dsn
// the command reaches it with.
type target struct {
	kind  testdb.Kind
	db    *sqlx.DB
	dsn   string
	store *sqlbatch.CheckpointStore
}

// forEachDB runs f on a fresh database of each kind (PostgreSQL is
// skipped when BATCHENRICH_TEST_DATABASE_URL is unset).
func forEachDB(t *testing.T, f func(t *testing.T, tg target)) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			var tg target
			tg.kind = k
			if k == testdb.SQLite {
				path := filepath.Join(t.TempDir(), "runs.db")
				db, err := sqlx.Open("sqlite", testdb.SQLiteDSN(path))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				tg.db, tg.dsn = db, path
			} else {
				tg.db, tg.dsn = testdb.PostgresWithURL(t)
			}
			store, err := sqlbatch.NewCheckpointStore(tg.db, sqlbatch.CheckpointConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := store.CreateTable(context.Background()); err != nil {
				t.Fatal(err)
			}
			tg.store = store
			f(t, tg)
		})
	}
}

func items(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// durable runs items through a Runner under runKey of job, with enr.
func (tg target) durable(t *testing.T, runKey, job string, n int, enr batchenrich.Enricher[int, int]) error {
	t.Helper()
	r, err := batchenrich.New[int, int](batchenrichtest.NewSliceSource(items(n)), enr, batchenrichtest.NewSink[int, int](),
		batchenrich.Options{BatchSize: 10, Concurrency: 2, Durable: &batchenrich.Durable{Store: tg.store, RunKey: runKey, Job: job}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background())
	return err
}

func double(ctx context.Context, i int) (int, error) { return 2 * i, nil }

// runJSON reads a status -json output.
func statusOf(t *testing.T, tg target, key string) runJSON {
	t.Helper()
	var st runJSON
	r := cli(t, "status", "-dsn", tg.dsn, "-json", key).ok(t)
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status -json: %v: %q", err, r.stdout)
	}
	return st
}

// The command shows runs made by the Runner in each state — done, failed
// (with its error), partitioned, running — stops a running one at its
// next batch boundary (recorded as stopped) after which a new run resumes
// it to the end, with text and JSON output.
func TestRunsStatusStop(t *testing.T) {
	forEachDB(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		// Done.
		if err := tg.durable(t, "done-1", "alpha", 35, batchenrich.EnricherFunc[int, int](double)); err != nil {
			t.Fatal(err)
		}
		// Failed: a Fatal error in batch 3, its text holding a secret.
		err := tg.durable(t, "fail-1", "alpha", 50, batchenrich.EnricherFunc[int, int](func(ctx context.Context, i int) (int, error) {
			switch {
			case i == 25:
				return 0, batchenrich.Fatal(errors.New("profile API gone: postgres://app:hunter2@db/x"))
			case i%7 == 0:
				return 0, batchenrich.Permanent(errors.New("not found"))
			case i%11 == 0:
				return 0, batchenrich.Transient(errors.New("503"))
			}
			return 2 * i, nil
		}))
		if err == nil {
			t.Fatal("fail-1 did not fail")
		}
		// Partitioned, 3 partitions.
		pr, err := batchenrich.NewPartitioned(3, func(p batchenrich.Partition) (batchenrich.Source[int], error) {
			var mine []int
			for _, i := range items(60) {
				if i%p.Count == p.Index {
					mine = append(mine, i)
				}
			}
			return batchenrichtest.NewSliceSource(mine), nil
		}, batchenrich.EnricherFunc[int, int](double), func(batchenrich.Partition) (batchenrich.Sink[int, int], error) {
			return batchenrichtest.NewSink[int, int](), nil
		}, batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: tg.store, RunKey: "part-1", Job: "beta"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pr.Run(ctx); err != nil {
			t.Fatal(err)
		}
		// Running: blocked in its batch 2 until released.
		entered, release := make(chan struct{}), make(chan struct{})
		var once bool
		live := batchenrich.EnricherFunc[int, int](func(ctx context.Context, i int) (int, error) {
			if i == 10 && !once {
				once = true
				close(entered)
				select {
				case <-release:
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}
			return 2 * i, nil
		})
		liveErr := make(chan error, 1)
		go func() { liveErr <- tg.durable(t, "live-1", "alpha", 40, live) }()
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatal("live-1 never reached its batch 2")
		}

		// runs: all four, the newest first; filters.
		var all runsJSON
		r := cli(t, "runs", "-dsn", tg.dsn, "-json").ok(t)
		if err := json.Unmarshal([]byte(r.stdout), &all); err != nil {
			t.Fatal(err)
		}
		byKey := map[string]runJSON{}
		for _, run := range all.Runs {
			byKey[run.RunKey] = run
		}
		if len(all.Runs) != 4 || all.Runs[0].RunKey != "live-1" {
			t.Fatalf("runs -json: %s", r.stdout)
		}
		if d := byKey["done-1"]; d.State != "done" || d.Job != "alpha" || d.Counts.Read != 35 || d.Counts.Written != 35 || d.Counts.Batches != 4 ||
			d.Finished == nil || d.PartitionCount != 1 || d.Partitions[0].Held || d.Partitions[0].PID != os.Getpid() {
			t.Fatalf("done-1: %+v", d)
		}
		if f := byKey["fail-1"]; f.State != "failed" || f.Counts.Batches != 2 || f.Counts.Failed != f.Counts.FailedTransient+f.Counts.FailedPermanent ||
			f.Counts.FailedPermanent != 3 || f.Counts.FailedTransient != 1 || !strings.Contains(f.LastError, "profile API gone") {
			t.Fatalf("fail-1: %+v", f)
		}
		if p := byKey["part-1"]; p.State != "done" || p.PartitionCount != 3 || p.PartitionsDone != 3 || p.Counts.Written != 60 || p.Job != "beta" {
			t.Fatalf("part-1: %+v", p)
		}
		if l := byKey["live-1"]; l.State != "running" || !l.Partitions[0].Held || l.Partitions[0].Batch != 1 || l.Finished != nil {
			t.Fatalf("live-1: %+v", l)
		}
		r = cli(t, "runs", "-dsn", tg.dsn, "-state", "running").ok(t)
		if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "live-1 ") {
			t.Fatalf("runs -state running:\n%s", r.stdout)
		}
		r = cli(t, "runs", "-job", "beta", "-dsn", tg.dsn).ok(t)
		if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "part-1 ") ||
			!strings.Contains(lines[1], "3/3 done") {
			t.Fatalf("runs -job beta:\n%s", r.stdout)
		}
		if r := cli(t, "runs", "-dsn", tg.dsn, "-limit", "2", "-json").ok(t); strings.Count(r.stdout, `"partition_count"`) != 2 {
			t.Fatalf("runs -limit 2: %s", r.stdout)
		}
		if r := cli(t, "runs", "-dsn", tg.dsn, "-job", "nobody").ok(t); r.stdout != "no runs\n" {
			t.Fatalf("runs of no job: %q", r.stdout)
		}

		// status, text.
		r = cli(t, "status", tg.dsn, "-dsn", tg.dsn, "fail-1")
		r.refused(t, exitUsage, "unexpected argument")
		r = cli(t, "status", "fail-1", "-dsn", tg.dsn).ok(t)
		for _, want := range []string{"state:", "failed", "failed 4 (T1 P3)", "profile API gone: postgres://app:xxxxx@db/x", "PARTITION"} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("status fail-1 lacks %q:\n%s", want, r.stdout)
			}
		}
		r = cli(t, "status", "-dsn", tg.dsn, "part-1").ok(t)
		if !strings.Contains(r.stdout, "3 (3 done)") || strings.Count(r.stdout, "\ndone ") != 0 || strings.Count(r.stdout, "  done  ") < 3 {
			t.Fatalf("status part-1:\n%s", r.stdout)
		}
		if st := statusOf(t, tg, "part-1"); len(st.Partitions) != 3 || st.Partitions[2].RunKey != "part-1#p2" || st.Counts.Read != 60 {
			t.Fatalf("status part-1 -json: %+v", st)
		}

		// stop: the running run commits the batch it is on and stops.
		r = cli(t, "stop", "-dsn", tg.dsn, "live-1").ok(t)
		if !strings.Contains(r.stdout, "stop requested for run live-1 (1 of 1 partitions running): 1 held by a runner") {
			t.Fatalf("stop: %q", r.stdout)
		}
		if st := statusOf(t, tg, "live-1"); !st.Partitions[0].StopRequested {
			t.Fatalf("after stop: %+v", st)
		}
		close(release)
		if err := <-liveErr; !errors.Is(err, batchenrich.ErrStopRequested) {
			t.Fatalf("live-1 after stop: %v", err)
		}
		if st := statusOf(t, tg, "live-1"); st.State != "stopped" || st.Partitions[0].Batch != 2 || st.Counts.Written != 20 || st.Partitions[0].StopRequested {
			t.Fatalf("live-1 stopped: %+v", st)
		}
		var stop stopJSON
		r = cli(t, "stop", "-json", "-dsn", tg.dsn, "live-1").ok(t)
		if err := json.Unmarshal([]byte(r.stdout), &stop); err != nil || stop != (stopJSON{RunKey: "live-1", State: "stopped"}) {
			t.Fatalf("stop -json of a stopped run: %q (%v)", r.stdout, err)
		}
		if r := cli(t, "stop", "-dsn", tg.dsn, "live-1").ok(t); !strings.Contains(r.stdout, "nothing to stop") {
			t.Fatalf("stop of a stopped run: %q", r.stdout)
		}
		// Resumed, it runs to the end.
		if err := tg.durable(t, "live-1", "alpha", 40, batchenrich.EnricherFunc[int, int](double)); err != nil {
			t.Fatal(err)
		}
		if st := statusOf(t, tg, "live-1"); st.State != "done" || st.Counts.Written != 40 || st.Counts.Batches != 4 {
			t.Fatalf("live-1 resumed: %+v", st)
		}
		cli(t, "status", "-dsn", tg.dsn, "nope").refused(t, exitUsage, `no such run`)
		cli(t, "stop", "-dsn", tg.dsn, "nope").refused(t, exitUsage, `no such run`)
	})
}

// A stop request on a run no process holds (its runner died) waits for
// the next runner, which stops before any batch, recorded as stopped; the
// run after that resumes it.
func TestStopInterruptedRun(t *testing.T) {
	forEachDB(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		// A run that died after batch 1: its checkpoint says running.
		cp := batchenrich.Checkpoint{RunKey: "dead-1", Batch: 1, Cursor: "10", State: batchenrich.StateRunning, Job: "alpha",
			Counts: batchenrich.RunCounts{Batches: 1, Read: 10, Enriched: 10, Written: 10}}
		if err := tg.store.Save(ctx, cp); err != nil {
			t.Fatal(err)
		}
		r := cli(t, "runs", "-dsn", tg.dsn).ok(t)
		if !strings.Contains(r.stdout, "running, not held") {
			t.Fatalf("runs:\n%s", r.stdout)
		}
		r = cli(t, "stop", "-dsn", tg.dsn, "dead-1").ok(t)
		if !strings.Contains(r.stdout, "1 held by no process (interrupted) stop when a runner next starts them") {
			t.Fatalf("stop: %q", r.stdout)
		}
		if err := tg.durable(t, "dead-1", "alpha", 40, batchenrich.EnricherFunc[int, int](double)); !errors.Is(err, batchenrich.ErrStopRequested) {
			t.Fatalf("next run: %v", err)
		}
		if st := statusOf(t, tg, "dead-1"); st.State != "stopped" || st.Partitions[0].Batch != 1 {
			t.Fatalf("after the next run: %+v", st)
		}
		if err := tg.durable(t, "dead-1", "alpha", 40, batchenrich.EnricherFunc[int, int](double)); err != nil {
			t.Fatal(err)
		}
		if st := statusOf(t, tg, "dead-1"); st.State != "done" || st.Counts.Written != 40 {
			t.Fatalf("resumed: %+v", st)
		}
	})
}

// Control characters, ANSI escapes and bidirectional marks in stored run
// keys, jobs, hosts and errors are printed escaped in text output.
func TestControlCharactersEscaped(t *testing.T) {
	forEachDB(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		key := "evil\x1b[31mred\u202e\nnext"
		if err := tg.store.Save(ctx, batchenrich.Checkpoint{RunKey: key, Batch: 1, State: batchenrich.StateRunning, Job: "j\x07ob"}); err != nil {
			t.Fatal(err)
		}
		if _, err := tg.db.ExecContext(ctx, tg.db.Rebind(`UPDATE batchenrich_checkpoints SET last_error = ?, holder_host = ? WHERE run_key = ?`),
			"bad\x1b]0;title\x07 error\r\nforged line", "h\x1bost", key); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"runs"}, {"status", key}, {"stop", key}} {
			r := cli(t, append(args, "-dsn", tg.dsn)...).ok(t)
			if strings.ContainsAny(r.stdout, "\x1b\x07\r\u202e") || strings.Contains(r.stdout, "\nnext") || strings.Contains(r.stdout, "\nforged") {
				t.Fatalf("%s printed a control character raw:\n%q", args[0], r.stdout)
			}
			if !strings.Contains(r.stdout, `evil\x1b[31mred\u202e\nnext`) {
				t.Fatalf("%s did not show the key escaped:\n%q", args[0], r.stdout)
			}
		}
		r := cli(t, "status", "-dsn", tg.dsn, "--", key).ok(t)
		for _, want := range []string{`j\aob`, `bad\x1b]0;title\a error\r\nforged line`, `h\x1bost pid`} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("status lacks %q:\n%s", want, r.stdout)
			}
		}
		// In JSON, the encoder escapes them.
		if r := cli(t, "runs", "-json", "-dsn", tg.dsn).ok(t); strings.ContainsAny(r.stdout, "\x1b\x07\r") {
			t.Fatalf("runs -json: %q", r.stdout)
		}
	})
}

// Bad input is refused with one line on stderr and exit 2, before any
// query.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "dir.db")
	if err := os.Mkdir(notDB, 0o755); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no command; usage: batchenrich"},
		{[]string{"list"}, `unknown command "list"`},
		{[]string{"status", "-dsn", empty}, "status: missing RUNKEY"},
		{[]string{"stop", "-dsn", empty, "a", "b"}, `stop: unexpected argument "b" after RUNKEY`},
		{[]string{"status", "-dsn", empty, ""}, "RUNKEY is empty"},
		{[]string{"runs", "-dsn", empty, "x"}, `runs: unexpected argument "x"`},
		{[]string{"runs", "-bogus"}, "runs: flag provided but not defined: -bogus"},
		{[]string{"status", "-job", "x", "k"}, "status: flag provided but not defined: -job"},
		{[]string{"runs", "-dsn", empty, "-state", "gone"}, `-state "gone": want running, done, failed or stopped`},
		{[]string{"runs", "-dsn", empty, "-limit", "0"}, "-limit 0: must be between 1 and 1000"},
		{[]string{"runs", "-dsn", empty, "-limit", "1001"}, "-limit 1001"},
		{[]string{"runs", "-dsn", empty, "-table", "a.b.c"}, "-table: invalid identifier"},
		{[]string{"runs"}, "-dsn: required (or $DATABASE_URL)"},
		{[]string{"runs", "-dsn", "hunter2"}, "-dsn: not a PostgreSQL URL"},
		{[]string{"runs", "-dsn", "mysql://u:p@h/db"}, `unsupported scheme "mysql"`},
		{[]string{"runs", "-dsn", missing}, "-dsn: SQLite file " + missing + ": no such file or directory"},
		{[]string{"runs", "-dsn", "file:" + missing}, "-dsn: SQLite file " + missing},
		{[]string{"runs", "-dsn", notDB}, "is not a SQLite file"},
		{[]string{"runs", "-dsn", empty}, "no checkpoint table batchenrich_checkpoints in SQLite file " + empty},
		{[]string{"runs", "-dsn", "postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable"}, "database PostgreSQL postgres://u:xxxxx@127.0.0.1:1/db?sslmode=disable cannot be reached"},
	} {
		r := cli(t, c.args...)
		r.refused(t, exitUsage, c.want)
		if strings.Contains(r.stderr, "hunter2") {
			t.Fatalf("%q: printed the password: %q", c.args, r.stderr)
		}
	}
	cliEnv(t, map[string]string{"DATABASE_URL": "nonsense"}, "runs").refused(t, exitUsage, "(the value of $DATABASE_URL)")
	if r := cli(t, "-h"); r.code != exitOK || !strings.Contains(r.stderr, "batchenrich stop   [-dsn DSN]") {
		t.Fatalf("-h: %+v", r)
	}
	if r := cli(t, "runs", "-h"); r.code != exitOK || !strings.Contains(r.stderr, "-limit") {
		t.Fatalf("runs -h: %+v", r)
	}
}

// A DSN's password never appears in any output or error, whatever the
// command and outcome, for URLs and keyword strings.
func TestPasswordNeverPrinted(t *testing.T) {
	base := testdb.PostgresURL(t) // the test server trusts local connections: a password is ignored
	const pw = "s3cr3t-Pa55"
	withPW := strings.Replace(base, "postgres://postgres@", "postgres://postgres:"+pw+"@", 1)
	if withPW == base {
		t.Skipf("%s is not of the form postgres://postgres@…", testdb.EnvVar)
	}
	_, dsn := testdb.PostgresWithURL(t)
	dsnPW := strings.Replace(dsn, "postgres://postgres@", "postgres://postgres:"+pw+"@", 1)
	tg := target{kind: testdb.PostgreSQL, dsn: dsnPW}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tg.db = db
	if tg.store, err = sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := tg.store.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tg.durable(t, "r1", "alpha", 15, batchenrich.EnricherFunc[int, int](func(ctx context.Context, i int) (int, error) {
		if i == 12 {
			return 0, batchenrich.Fatal(fmt.Errorf("failed at %s", dsnPW))
		}
		return i, nil
	})); err == nil {
		t.Fatal("r1 did not fail")
	}
	var outputs []result
	for _, json := range []bool{false, true} {
		for _, args := range [][]string{{"runs"}, {"status", "r1"}, {"stop", "r1"}, {"status", "nope"}, {"runs", "-table", "nope"}} {
			if json {
				args = append(args, "-json")
			}
			outputs = append(outputs, cli(t, append(args, "-dsn", dsnPW)...))
			outputs = append(outputs, cliEnv(t, map[string]string{"DATABASE_URL": dsnPW}, args...))
		}
	}
	for _, bad := range []string{
		"postgres://postgres:" + pw + "@127.0.0.1:1/db?sslmode=disable",
		"postgres://postgres:" + pw + "@127.0.0.1:99999/db",
		"postgres://postgres:" + pw + "@[::1/db",
		"host=127.0.0.1 port=1 user=postgres password=" + pw + " dbname=x sslmode=disable",
		"host=127.0.0.1 password='" + pw + " dbname=x",
		"postgres://postgres:" + pw + "@127.0.0.1:5432/no_such_database_here?sslmode=disable",
	} {
		outputs = append(outputs, cli(t, "runs", "-dsn", bad), cli(t, "status", "-json", "-dsn", bad, "k"))
	}
	sawOutput, sawError := false, false
	for _, r := range outputs {
		if strings.Contains(r.stdout+r.stderr, pw) {
			t.Fatalf("the password was printed: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		sawOutput = sawOutput || (r.code == exitOK && r.stdout != "")
		sawError = sawError || r.code != exitOK
	}
	if !sawOutput || !sawError {
		t.Fatal("the cases did not include both output and errors")
	}
	if r := cli(t, "status", "-dsn", dsnPW, "r1"); !strings.Contains(r.stdout, "failed at postgres://postgres:xxxxx@") {
		t.Fatalf("status r1: %+v", r)
	}
}
