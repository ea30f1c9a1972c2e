package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for the span exporter's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// The seed job under OpenTelemetry: the metrics are scraped over HTTP
// from outside the run, and the spans on stdout nest run → batch → item →
// HTTP attempt.
func TestSeedJobExportsSpansAndMetrics(t *testing.T) {
	cfg, err := parseFlags([]string{
		"-db", filepath.Join(t.TempDir(), "travelers.db"),
		"-rows", "300", "-batch-size", "50", "-max-batches", "5", "-concurrency", "8",
		"-execution-id", "otel-test", "-metrics-addr", "127.0.0.1:0", "-linger", "1h",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	served, finished := make(chan string, 1), make(chan struct{})
	cfg.served, cfg.finished = served, finished
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &stdout, &stderr) }()

	var addr string
	select {
	case addr = <-served:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, stderr.Bytes())
	}
	select {
	case <-finished:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, stderr.Bytes())
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	cancel() // ends the lingering
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.Bytes())
	}

	// 250 of the 300 rows: the cap is 5 batches of 50.
	for _, want := range []string{
		`batchenrich_items_total{batchenrich_item_outcome="enriched",otel_scope_name="github.com/batchenrich/batchenrich/otelenrich",otel_scope_schema_url="",otel_scope_version=""} 250`,
		`batchenrich_run_batches_done{batchenrich_run_key="otel-test",otel_scope_name="github.com/batchenrich/batchenrich/otelenrich",otel_scope_schema_url="",otel_scope_version=""} 5`,
		`batchenrich_run_batches_planned{batchenrich_run_key="otel-test",otel_scope_name="github.com/batchenrich/batchenrich/otelenrich",otel_scope_schema_url="",otel_scope_version=""} 5`,
		`batchenrich_items_in_flight{otel_scope_name="github.com/batchenrich/batchenrich/otelenrich",otel_scope_schema_url="",otel_scope_version=""} 0`,
		`batchenrich_batch_duration_seconds_count{batchenrich_batch_outcome="written",otel_scope_name="github.com/batchenrich/batchenrich/otelenrich",otel_scope_schema_url="",otel_scope_version=""} 5`,
		`batchenrich_item_duration_seconds_count{batchenrich_item_outcome="enriched",otel_scope_name="github.com/batchenrich/batchenrich/otelenrich",otel_scope_schema_url="",otel_scope_version=""} 250`,
	} {
		if !bytes.Contains(body, []byte(want+"\n")) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grep(body, "batchenrich_"))
	}

	// The spans, one JSON object each.
	type span struct {
		Name        string
		SpanContext struct{ SpanID string }
		Parent      struct{ SpanID string }
	}
	byID := map[string]span{}
	var spans []span
	dec := json.NewDecoder(bytes.NewReader(stdout.Bytes()))
	for {
		var s span
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("stdout is not JSON spans: %v", err)
		}
		spans = append(spans, s)
		byID[s.SpanContext.SpanID] = s
	}
	parentOf := map[string]string{"batchenrich.batch": "batchenrich.run", "batchenrich.read": "batchenrich.run",
		"batchenrich.item": "batchenrich.batch", "batchenrich.write": "batchenrich.batch", "GET": "batchenrich.item"}
	count := map[string]int{}
	for _, s := range spans {
		count[s.Name]++
		if want, ok := parentOf[s.Name]; ok && byID[s.Parent.SpanID].Name != want {
			t.Errorf("%s's parent is %q, want %s", s.Name, byID[s.Parent.SpanID].Name, want)
		}
	}
	want := map[string]int{"batchenrich.run": 1, "batchenrich.batch": 5, "batchenrich.read": 5, "batchenrich.write": 5,
		"batchenrich.item": 250, "GET": 250}
	for n, c := range want {
		if count[n] != c {
			t.Errorf("%d %s spans, want %d", count[n], n, c)
		}
	}
	if !strings.Contains(string(stderr.Bytes()), "run otel-test: 5 batches, 250 items written, 0 failed") {
		t.Errorf("stderr:\n%s", stderr.Bytes())
	}
}

func grep(b []byte, pattern string) string {
	re := regexp.MustCompile(pattern)
	var out strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if re.MatchString(sc.Text()) {
			out.WriteString(sc.Text() + "\n")
		}
	}
	return out.String()
}

func TestFlagsRefused(t *testing.T) {
	for _, tt := range []struct{ args, want string }{
		{"-batch-size 0", "-batch-size 0: must be between 1 and 100000"},
		{"-concurrency -1", "-concurrency -1: must be between 1 and 1000"},
		{"-concurrency 5000", "-concurrency 5000: must be between 1 and 1000"},
		{"-rows -5", "-rows -5: must be between 0 and 10000000"},
		{"-rows 1000000000", "-rows 1000000000: must be between 0 and 10000000"},
		{"-max-batches 99999999999", "-max-batches 99999999999: must be between 0 and 10000000"},
		{"-linger 5s", "-linger needs -metrics-addr"},
		{"-linger 2h -metrics-addr 127.0.0.1:0", "-linger 2h0m0s: must be between 0 and 1h"},
		// The execution id: the seed jobs' safe set, shown escaped.
		{"-execution-id a\x1b[2Jb", `-execution-id "a\x1b[2Jb": use 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit`},
		{"-execution-id col#p1", `-execution-id "col#p1": use 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit`},
		{"extra", `unexpected argument "extra"`},
	} {
		_, err := parseFlags(strings.Fields(tt.args), io.Discard)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: err = %v, want %s", tt.args, err, tt.want)
		}
	}
}
