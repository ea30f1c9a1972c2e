// Package contenders holds the implementations of the seed job that the
// harness compares: two hand-written baselines and the library.
package contenders

import (
	"database/sql"
	"net"
	"net/http"
	"time"

	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/job"
)

// All returns every contender slot, in display order.
func All() []harness.Named {
	return []harness.Named{
		{Name: "naive", Run: Naive},
		{Name: "strong", Run: Strong},
		{Name: "batchenrich", Run: Library},
		{Name: "batchenrich-overlap", Run: LibraryOverlapped},
		{Name: "batchenrich-otel", Run: LibraryOTel},
		{Name: "batchenrich-otel-nohttp", Run: LibraryOTelNoHTTP},
		{Name: "batchenrich-otel-otelhttp", Run: LibraryOTelHTTP},
		{Name: "batchenrich-otel-floor", Run: LibraryOTelFloor},
		{Name: "batchenrich-8p", Run: LibraryPartitioned, Partitioned: true},
		{Name: "riverenrich-8p-3proc", Run: RiverFleet, Partitioned: true},
		{Name: "batchenrich-bulk", Run: LibraryBulk, Bulk: true},
		{Name: "batchenrich-bulk-overlap", Run: LibraryBulkOverlapped, Bulk: true},
		{Name: "bulk-loop", Run: BulkLoop, Bulk: true},
		{Name: "http-waves", Run: HTTPWaves, Probe: true},
		{Name: "strict-floor", Run: StrictFloor},
	}
}

// IsProbe reports whether the contender called name is a probe of the
// machine that stores nothing (see harness.Named.Probe).
func IsProbe(name string) bool {
	for _, c := range All() {
		if c.Name == name {
			return c.Probe
		}
	}
	return false
}

// IsPartitioned reports whether the contender called name splits the run
// into partitions (see harness.Named.Partitioned).
func IsPartitioned(name string) bool {
	for _, c := range All() {
		if c.Name == name {
			return c.Partitioned
		}
	}
	return false
}

// IsBulk reports whether the contender called name calls the API's bulk
// endpoint (see harness.Named.Bulk).
func IsBulk(name string) bool {
	for _, c := range All() {
		if c.Name == name {
			return c.Bulk
		}
	}
	return false
}

// Lookup returns the contender called name.
func Lookup(name string) (harness.Contender, bool) {
	for _, c := range All() {
		if c.Name == name {
			return c.Run, true
		}
	}
	return nil, false
}

// upsertColumns is the SET list both baselines use on conflict.
const upsertColumns = `traveler_name = EXCLUDED.traveler_name,
	normalized_name = EXCLUDED.normalized_name,
	profile_status = EXCLUDED.profile_status,
	profile_hash = EXCLUDED.profile_hash,
	profile_payload = EXCLUDED.profile_payload,
	is_valid = EXCLUDED.is_valid,
	validation_error = EXCLUDED.validation_error,
	batch_number = EXCLUDED.batch_number,
	processed_at = NOW()`

// tunedClient is the keep-alive HTTP client an expert writes for one host
// and concurrency in-flight requests: as many idle connections kept as may
// be busy, and no more opened.
func tunedClient(concurrency int) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		MaxConnsPerHost:     concurrency,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, tr
}

// scanTravelers reads the (traveler_id, traveler_name) rows of one window
// and closes rs.
func scanTravelers(rs *sql.Rows, sizeHint int) ([]job.Traveler, error) {
	defer rs.Close()
	ts := make([]job.Traveler, 0, sizeHint)
	for rs.Next() {
		var t job.Traveler
		if err := rs.Scan(&t.ID, &t.Name); err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, rs.Err()
}
