package riverenrich_test

import (
	"io"
	"os"
	"testing"

	"github.com/batchenrich/batchenrich/riverenrich/internal/testdb"
)

// TestExample runs Example, which needs PostgreSQL and so has no Output
// for go test to check, against a fresh schema of the test database, and
// checks what it prints. It skips without a database.
func TestExample(t *testing.T) {
	_, dsn := testdb.PostgresWithURL(t)
	t.Setenv("DATABASE_URL", dsn)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stdout := os.Stdout
	os.Stdout = w
	func() {
		defer func() { os.Stdout = stdout; w.Close() }()
		Example()
	}()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := "run squares-1: 1000 squares stored by 3 partitions\n"; string(out) != want {
		t.Fatalf("Example printed %q, want %q", out, want)
	}
}
