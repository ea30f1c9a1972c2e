package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/jmoiron/sqlx"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// program runs the command in-process and returns its exit status, stdout
// and stderr.
func program(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut, noEnv)
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

// openDSN opens the database of -dsn dsn as the program does (parseFlags,
// openDB); the caller closes it.
func openDSN(t *testing.T, dsn string) *sqlx.DB {
	t.Helper()
	c, err := parseFlags([]string{"-dsn", dsn}, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openDB(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// dsnFor returns a -dsn of a fresh database of kind k.
func dsnFor(t *testing.T, k testdb.Kind) string {
	t.Helper()
	if k == testdb.PostgreSQL {
		_, dsn := testdb.PostgresWithURL(t)
		return dsn
	}
	return filepath.Join(t.TempDir(), "travelers.db")
}

func TestEndToEnd(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			dsn := dsnFor(t, k)
			args := []string{"-dsn", dsn, "-seed-rows", "450", "-batch-size", "100", "-max-batches", "4", "-json", "-execution-id", "e2e-1"}
			code, stdout, stderr := program(t, context.Background(), args...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			s := summaryOf(t, stdout)
			want := Data{SourceRows: 450, ExpectedRows: 400, StoredRows: 400, SuccessfulHTTPCalls: 400,
				ValidRows: 400, MaxBatchNumber: 4}
			if s.Status != "ok" || s.Data != want || s.Execution.BatchesRun != 4 || s.ExecutionID != "e2e-1" ||
				s.Configured != (Configured{BatchSize: 100, MaxBatches: 4, Concurrency: 25}) {
				t.Fatalf("summary = %+v", s)
			}
			// Again with the same id: resumes, finds the run done.
			code, stdout, stderr = program(t, context.Background(), args...)
			s = summaryOf(t, stdout)
			if code != exitOK || s.Execution.BatchesRun != 0 || s.Execution.BatchesSkipped != 4 || s.Data != want {
				t.Fatalf("rerun: exit %d, %+v\n%s", code, s, stderr)
			}
			// A second execution id shares the tables, not the rows.
			args[len(args)-1] = "e2e-2"
			args[7] = "3" // -max-batches 3
			code, stdout, _ = program(t, context.Background(), args...)
			if s := summaryOf(t, stdout); code != exitOK || s.Data.StoredRows != 300 || s.Data.MaxBatchNumber != 3 {
				t.Fatalf("second id: exit %d %+v", code, s)
			}
		})
	}
}

// flakyAPI answers like httpbin, except by traveler_id mod 10: 0 → 500
// always, 1 → echoes another id, 2 → 200 with a body that is not JSON,
// 3 → 503 once, then OK.
func flakyAPI(t *testing.T) (*httptest.Server, *atomic.Int64) {
	bin := httpbin.New()
	var requests atomic.Int64
	seen503 := make(map[string]bool)
	var mu = make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		id := r.URL.Query().Get("traveler_id")
		n, _ := strconv.Atoi(id)
		switch n % 10 {
		case 0:
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		case 1:
			q := r.URL.Query()
			q.Set("traveler_id", strconv.Itoa(n+1))
			r.URL.RawQuery = q.Encode()
		case 2:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, "<html>not json</html>")
			return
		case 3:
			mu <- struct{}{}
			first := !seen503[id]
			seen503[id] = true
			<-mu
			if first {
				w.Header().Set("Retry-After", "0")
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
		}
		bin.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}

func TestFailuresAreStoredNotDropped(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			srv, _ := flakyAPI(t)
			code, stdout, stderr := program(t, context.Background(), "-dsn", dsnFor(t, k), "-profile-url", srv.URL+"/anything",
				"-seed-rows", "200", "-batch-size", "50", "-max-batches", "10", "-http-retries", "1", "-http-timeout", "5s", "-json")
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			s := summaryOf(t, stdout)
			// 20 each of mod 0, 1, 2: invalid; mod 3 recovers on retry.
			// Successful calls: not the 500s, nor the 200s whose body is
			// not JSON; the 200s echoing the wrong id are.
			want := Data{SourceRows: 200, ExpectedRows: 200, StoredRows: 200, SuccessfulHTTPCalls: 160,
				ValidRows: 140, InvalidRows: 60, MaxBatchNumber: 4}
			if s.Data != want {
				t.Fatalf("data = %+v, want %+v", s.Data, want)
			}
		})
	}
}

func TestFailedRowsContent(t *testing.T) {
	srv, _ := flakyAPI(t)
	dir := t.TempDir()
	dsn := filepath.Join(dir, "t.db")
	code, stdout, stderr := program(t, context.Background(), "-dsn", dsn, "-profile-url", srv.URL+"/anything",
		"-seed-rows", "12", "-http-retries", "0", "-json", "-execution-id", "x")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	db := openDSN(t, dsn)
	defer db.Close()
	type row struct {
		ID      int     `db:"traveler_id"`
		Status  int     `db:"profile_status"`
		Valid   bool    `db:"is_valid"`
		Err     *string `db:"validation_error"`
		Payload string  `db:"profile_payload"`
	}
	var rows []row
	if err := db.Select(&rows, `SELECT traveler_id, profile_status, is_valid, validation_error, profile_payload
		FROM traveler_batch_results WHERE execution_id = 'x' ORDER BY traveler_id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 12 {
		t.Fatalf("rows = %d", len(rows))
	}
	for _, r := range rows {
		msg := ""
		if r.Err != nil {
			msg = *r.Err
		}
		switch r.ID % 10 {
		case 0:
			if r.Valid || r.Status != 500 || !strings.HasPrefix(msg, "status 500 after ") || strings.Contains(msg, "127.0.0.1") || !strings.Contains(r.Payload, `"status":500`) {
				t.Errorf("500 row = %+v", r)
			}
		case 1:
			if r.Valid || r.Status != 200 || msg != fmt.Sprintf("echoed traveler_id=%d, expected=%d", r.ID+1, r.ID) {
				t.Errorf("wrong echo row = %+v", r)
			}
		case 2:
			if r.Valid || !strings.HasPrefix(msg, "malformed JSON: ") || strings.Contains(msg, "batch") || strings.Contains(msg, "127.0.0.1") {
				t.Errorf("non-JSON row = %+v", r)
			}
		case 3:
			if r.Valid || r.Status != 503 { // no retries allowed here
				t.Errorf("503 row = %+v", r)
			}
		default:
			if !r.Valid || r.Status != 200 || r.Err != nil {
				t.Errorf("good row = %+v", r)
			}
		}
	}
}

func TestInterruptThenResume(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			dsn := dsnFor(t, k)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			bin := httpbin.New()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("traveler_id") == "250" {
					cancel() // Ctrl-C during batch 3
				}
				bin.ServeHTTP(w, r)
			}))
			defer srv.Close()
			args := []string{"-dsn", dsn, "-profile-url", srv.URL + "/anything", "-seed-rows", "500", "-json", "-execution-id", "int-1"}
			code, stdout, stderr := program(t, ctx, args...)
			s := summaryOf(t, stdout)
			if code != exitIncomplete || s.Status != "failed" || s.Data.StoredRows != 200 || s.Data.MaxBatchNumber != 2 ||
				!strings.Contains(stderr, "-execution-id int-1") {
				t.Fatalf("interrupted: exit %d %+v\n%s", code, s, stderr)
			}
			code, stdout, stderr = program(t, context.Background(), args...)
			s = summaryOf(t, stdout)
			if code != exitOK || s.Execution.BatchesSkipped != 2 || s.Execution.BatchesRun != 3 || s.Data.StoredRows != 500 ||
				s.Data.MissingRows != 0 || s.Data.MaxBatchNumber != 5 {
				t.Fatalf("resumed: exit %d %+v\n%s", code, s, stderr)
			}
		})
	}
}

func TestBadInputFailsFastWithOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unreachable PostgreSQL", []string{"-dsn", "postgres://postgres@127.0.0.1:1/x?sslmode=disable"}, "cannot be reached"},
		{"unsupported scheme", []string{"-dsn", "mongodb://localhost/x"}, "unsupported scheme"},
		{"profile URL scheme", []string{"-profile-url", "file:///etc/passwd"}, "-profile-url"},
		{"unreachable API", []string{"-dsn", "DIR/x.db", "-profile-url", "http://127.0.0.1:1/anything"}, "profile API"},
		{"batch size", []string{"-batch-size", "0"}, "-batch-size"},
		{"batch size not a number", []string{"-batch-size", "x"}, "-batch-size"},
		{"unknown flag", []string{"-batchsize", "10"}, "-batchsize"},
		{"sqlite in a missing directory", []string{"-dsn", "/nonexistent/dir/x.db"}, "cannot be reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for i, a := range tt.args {
				tt.args[i] = strings.ReplaceAll(a, "DIR", dir)
			}
			start := time.Now()
			code, stdout, stderr := program(t, context.Background(), tt.args...)
			if code != exitUsage || stdout != "" {
				t.Fatalf("exit %d, stdout %q", code, stdout)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "travelers: ") || !strings.Contains(lines[0], tt.want) {
				t.Fatalf("stderr = %q, want one line containing %q", stderr, tt.want)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Fatalf("took %s", d) // a hang guard, not a benchmark
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("bad input left files: %v", entries)
			}
		})
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer srv.Close()
	dir := t.TempDir()
	code, stdout, stderr := program(t, context.Background(), "-dsn", filepath.Join(dir, "x.db"), "-profile-url", srv.URL+"/anything",
		"-seed-rows", "250", "-dry-run")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "batch 3: traveler_id 201..250") || !strings.Contains(stdout, "250 expected in 3 batches") {
		t.Fatalf("plan = %s", stdout)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 || requests.Load() != 0 {
		t.Fatalf("dry run created %v, sent %d requests", entries, requests.Load())
	}
}
