package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/jmoiron/sqlx"
)

// countingAPI counts the requests it gets and answers none usefully.
func countingAPI(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// TestBadInputRefusedBeforeWork runs in a directory of its own, so that a
// file created in the working directory (a keyword DSN once taken for a
// SQLite path) shows up.
func TestBadInputRefusedBeforeWork(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	api, requests := countingAPI(t)
	tests := []struct {
		name string
		args []string
		want string // the whole line after "travelers: "
	}{
		{"max-batches overflow", []string{"-max-batches", "4611686018427387904", "-profile-url", api},
			"-max-batches 4611686018427387904: must be between 1 and 10000000"},
		{"execution id with a newline", []string{"-execution-id", "x\nFAKE LINE", "-profile-url", api},
			`-execution-id "x\nFAKE LINE": use 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit`},
		{"execution id with an escape", []string{"-execution-id", "x\x1b[31mred", "-profile-url", api},
			`-execution-id "x\x1b[31mred": use 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit`},
		{"execution id not UTF-8", []string{"-execution-id", "x\xff", "-profile-url", api},
			`-execution-id "x\xff": use 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit`},
		{"profile URL parameter the job does not fill", []string{"-profile-url", api + "/anything/{x}"},
			"-profile-url: parameter {x} is not one the job fills (it fills {traveler_id} and {traveler_name})"},
		{"keyword DSN, unreachable", []string{"-dsn", "host=127.0.0.1 port=1 user=postgres password=s3cr3t dbname=x sslmode=disable", "-profile-url", api},
			"database PostgreSQL host=127.0.0.1 port=1 user=postgres password=xxxxx dbname=x sslmode=disable cannot be reached: dial tcp 127.0.0.1:1: connect: connection refused"},
		{"password in a DSN's query, unreachable", []string{"-dsn", "postgres://postgres@127.0.0.1:1/x?password=s3cr3t&sslmode=disable", "-profile-url", api},
			"database PostgreSQL postgres://postgres@127.0.0.1:1/x?password=xxxxx&sslmode=disable cannot be reached: dial tcp 127.0.0.1:1: connect: connection refused"},
		{"a bare word DSN", []string{"-dsn", "s3cr3t", "-profile-url", api},
			"-dsn: not a PostgreSQL URL (postgres://…), a keyword connection string (host=… dbname=…) or a SQLite file (an absolute path, ./x, a name ending in .db, .db3, .sqlite or .sqlite3, or file:x.db)"},
		{"profile URL credentials, unreachable", []string{"-dsn", "./x.db", "-profile-url", "http://me:s3cr3t@127.0.0.1:1/anything?API_KEY=s3cr3t"},
			"profile API http://xxxxx@127.0.0.1:1/anything?API_KEY=xxxxx cannot be reached: dial tcp 127.0.0.1:1: connect: connection refused"},
		{"profile URL not parsable", []string{"-profile-url", "http://me:s3/cr3t@h/x"},
			"-profile-url: not a valid URL (percent-encode any '/', '?', '#', '@' or ':' in a user name or password)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := program(t, context.Background(), tt.args...)
			if code != exitUsage || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			if stderr != "travelers: "+tt.want+"\n" {
				t.Fatalf("stderr = %q\nwant     %q", stderr, "travelers: "+tt.want+"\n")
			}
			if strings.Contains(stderr, "cr3t") {
				t.Fatalf("stderr shows the secret: %q", stderr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("bad input left files: %v", entries)
			}
			if n := requests.Load(); n != 0 {
				t.Fatalf("bad input sent %d HTTP requests", n)
			}
		})
	}
}

// dbFor returns a fresh database of kind k, a handle on it and its -dsn.
func dbFor(t *testing.T, k testdb.Kind) (*sqlx.DB, string) {
	t.Helper()
	if k == testdb.PostgreSQL {
		return testdb.PostgresWithURL(t)
	}
	path := filepath.Join(t.TempDir(), "travelers.db")
	db, err := sqlx.Open("sqlite", sqliteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func tableExists(t *testing.T, db *sqlx.DB, name string) bool {
	t.Helper()
	_, _, exists, err := describeTable(context.Background(), db, name)
	if err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestIncompatibleSchemaRefusedBeforeWork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ddl  func(k testdb.Kind) string
		want string
	}{
		{"a column of another type", func(k testdb.Kind) string {
			return `CREATE TABLE traveler_batch_results (execution_id TEXT, traveler_id TEXT, PRIMARY KEY (execution_id, traveler_id))`
		}, "table traveler_batch_results exists with an incompatible schema: column traveler_id is text, want "},
		{"a missing column", func(testdb.Kind) string {
			return `CREATE TABLE traveler_batch_source (execution_id TEXT, traveler_id INTEGER, PRIMARY KEY (execution_id, traveler_id))`
		}, "table traveler_batch_source exists with an incompatible schema: no column traveler_name; drop or rename it, or use another database"},
		{"no unique key", func(k testdb.Kind) string {
			return `CREATE TABLE traveler_batch_source (execution_id TEXT, traveler_id INTEGER, traveler_name TEXT)`
		}, "table traveler_batch_source exists with an incompatible schema: no primary key or unique index on (execution_id, traveler_id); drop or rename it, or use another database"},
		{"a NOT NULL column the job does not fill", func(k testdb.Kind) string {
			return `CREATE TABLE traveler_batch_source (execution_id TEXT, traveler_id INTEGER, traveler_name TEXT, owner TEXT NOT NULL, PRIMARY KEY (execution_id, traveler_id))`
		}, "table traveler_batch_source exists with an incompatible schema: column owner is NOT NULL without a default, and the job does not fill it; drop or rename it, or use another database"},
	}
	for _, k := range testdb.Kinds {
		for _, tt := range tests {
			t.Run(string(k)+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				db, dsn := dbFor(t, k)
				if _, err := db.Exec(tt.ddl(k)); err != nil {
					t.Fatal(err)
				}
				api, requests := countingAPI(t)
				for _, extra := range [][]string{nil, {"-dry-run"}} {
					args := append([]string{"-dsn", dsn, "-profile-url", api + "/anything", "-json"}, extra...)
					code, stdout, stderr := program(t, context.Background(), args...)
					if code != exitUsage || stdout != "" || !strings.HasPrefix(stderr, "travelers: "+tt.want) || strings.Count(stderr, "\n") != 1 {
						t.Fatalf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line starting %q", extra, code, stdout, stderr, tt.want)
					}
				}
				for _, name := range []string{"traveler_batch_source", "traveler_batch_results", "batchenrich_checkpoints"} {
					if strings.Contains(tt.ddl(k), name) {
						continue
					}
					if tableExists(t, db, name) {
						t.Errorf("table %s was created", name)
					}
				}
				if requests.Load() != 0 {
					t.Errorf("%d HTTP requests sent", requests.Load())
				}
			})
		}
	}
}

// TestConcurrentFirstRuns starts two runs at once on a fresh PostgreSQL
// database: both must create (or find) the tables and succeed.
func TestConcurrentFirstRuns(t *testing.T) {
	t.Parallel()
	for round := 0; round < 3; round++ {
		_, dsn := dbFor(t, testdb.PostgreSQL)
		var wg sync.WaitGroup
		codes := make([]int, 2)
		outs := make([]string, 2)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var stderr string
				codes[i], _, stderr = program(t, context.Background(), "-dsn", dsn, "-seed-rows", "40", "-batch-size", "20", "-json",
					"-execution-id", "twin-start-"+string(rune('a'+i)))
				outs[i] = stderr
			}()
		}
		wg.Wait()
		for i, c := range codes {
			if c != exitOK {
				t.Fatalf("round %d run %d: exit %d\n%s", round, i, c, outs[i])
			}
		}
	}
}

// keywordDSN turns a postgres:// test URL into a libpq keyword string.
func keywordDSN(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	kw := []string{"host=" + u.Hostname(), "port=" + u.Port(), "user=" + u.User.Username(), "dbname=" + strings.TrimPrefix(u.Path, "/")}
	for k, v := range u.Query() {
		kw = append(kw, k+"="+v[0])
	}
	return strings.Join(kw, " ")
}

// TestNoSecretPrinted runs the job with a password in the DSN (ignored by
// the test server's trust authentication) and credentials in the profile
// URL, and looks for them in everything printed and in the file names.
func TestNoSecretPrinted(t *testing.T) {
	t.Parallel()
	srv, _ := flakyAPI(t)
	u, _ := url.Parse(srv.URL + "/anything?api_key=s3cr3t&Token=s3cr3t")
	u.User = url.UserPassword("me", "s3cr3t")
	_, pgURL := dbFor(t, testdb.PostgreSQL)
	for _, dsn := range []string{
		pgURL + "&password=s3cr3t",
		keywordDSN(t, pgURL) + " password=s3cr3t",
		filepath.Join(t.TempDir(), "x.db"),
	} {
		for _, mode := range [][]string{{"-json"}, nil, {"-dry-run"}} {
			args := append([]string{"-dsn", dsn, "-profile-url", u.String(), "-seed-rows", "30", "-batch-size", "10", "-http-retries", "0",
				"-execution-id", "secrets-" + strings.Join(mode, "")}, mode...)
			code, stdout, stderr := program(t, context.Background(), args...)
			if code != exitOK {
				t.Fatalf("%s %q: exit %d\n%s\n%s", redactForTest(dsn), mode, code, stdout, stderr)
			}
			if strings.Contains(stdout+stderr, "s3cr3t") {
				t.Fatalf("%q: the secret is printed:\n%s\n%s", mode, stdout, stderr)
			}
			if mode == nil && (!strings.Contains(stderr, "profile API: http://xxxxx@127.0.0.1") ||
				!strings.Contains(stderr, "\nstatus: go run github.com/batchenrich/batchenrich/cmd/batchenrich status -dsn ") ||
				!strings.Contains(stderr, " secrets-\n")) {
				t.Fatalf("banner: %s", stderr)
			}
		}
	}
	if entries, _ := os.ReadDir("."); len(entries) > 0 {
		for _, e := range entries {
			if strings.Contains(e.Name(), "s3cr3t") {
				t.Fatalf("file %q created", e.Name())
			}
		}
	}
}

func redactForTest(s string) string { return strings.ReplaceAll(s, "s3cr3t", "…") }

// TestDSNErrorListsEverySQLiteSuffix checks that -dsn's error lists every
// file suffix taken for a SQLite file, and only those.
func TestDSNErrorListsEverySQLiteSuffix(t *testing.T) {
	for _, ext := range []string{".db", ".db3", ".sqlite", ".sqlite3"} {
		if !explicitSQLitePath("x" + ext) {
			t.Errorf("x%s is not taken for a SQLite file", ext)
		}
		if !strings.Contains(errDSNKind.Error(), " "+ext+",") && !strings.Contains(errDSNKind.Error(), " "+ext+" ") {
			t.Errorf("-dsn's error does not list %s: %v", ext, errDSNKind)
		}
	}
	if explicitSQLitePath("x.sqlite4") {
		t.Errorf("x.sqlite4 taken for a SQLite file")
	}
}
