package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// csvFile writes n records under a header to a file and returns it open,
// with the records. Some records span lines and hold commas and quotes, so
// that only a byte offset finds the next record again.
func csvFile(t *testing.T, n int) (*os.File, [][]string) {
	t.Helper()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	want := make([][]string, n)
	_ = w.Write([]string{"id", "word"})
	for i := range want {
		word := fmt.Sprintf("word%d", i)
		if i%3 == 1 {
			word = fmt.Sprintf("two\nlines, \"quoted\" %d", i)
		}
		want[i] = []string{fmt.Sprint(i + 1), word}
		_ = w.Write(want[i])
	}
	w.Flush()
	path := filepath.Join(t.TempDir(), "words.csv")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, want
}

func TestCSVSourceConformance(t *testing.T) {
	batchenrichtest.TestSource(t, batchenrichtest.SourceHarness[[]string]{
		New: func(t *testing.T, n int) (func() batchenrich.Source[[]string], [][]string) {
			f, want := csvFile(t, n)
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			return func() batchenrich.Source[[]string] { return NewCSVSource(f, st.Size()) }, want
		},
	})
}

func TestCSVSourceRefusesABadCursor(t *testing.T) {
	src := NewCSVSource(strings.NewReader(sample), int64(len(sample)))
	for _, c := range []batchenrich.Cursor{"x", "-1", "100000"} {
		if _, _, err := src.Read(context.Background(), c, 3); err == nil {
			t.Errorf("cursor %q accepted", c)
		}
	}
}

func TestRunPrintsEveryBatch(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, &out, &errOut, batchenrich.Options{}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := `batch 1  id 1  BATCH (5 letters)
batch 1  id 2  ENRICH (6 letters)
batch 1  id 3  ORDER (5 letters)
batch 2  id 4  BOUNDED (7 letters)
batch 2  id 5  CURSOR (6 letters)
batch 2  id 6  RESUME (6 letters)
batch 3  id 7  SINK (4 letters)
7 rows in 3 batches, 0 failed
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestResumeAtTheRightRow runs one batch with checkpoints, then the rest
// with the same run key: the second run starts at row 4 of the file.
func TestResumeAtTheRightRow(t *testing.T) {
	f, _ := csvFile(t, 8)
	store := batchenrichtest.NewCheckpoints()
	var first, second, errOut bytes.Buffer
	opts := batchenrich.Options{Durable: &batchenrich.Durable{Store: store, RunKey: "words"}, MaxBatches: 1}
	if code := run(context.Background(), []string{f.Name()}, &first, &errOut, opts); code != 0 {
		t.Fatalf("first: exit %d: %s", code, errOut.String())
	}
	opts.MaxBatches = 0
	if code := run(context.Background(), []string{f.Name()}, &second, &errOut, opts); code != 0 {
		t.Fatalf("second: exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(second.String(), "batch 2  id 4  WORD3 (5 letters)\n") || !strings.Contains(second.String(), "5 rows in 2 batches") {
		t.Fatalf("resumed run:\n%s", second.String())
	}
}
