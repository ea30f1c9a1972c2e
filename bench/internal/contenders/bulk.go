package contenders

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
	"golang.org/x/sync/errgroup"

	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/job"
	"github.com/batchenrich/batchenrich/bench/internal/profileapi"
	"github.com/batchenrich/batchenrich/httpenrich"
)

// LibraryBulk is Library with a bulk Enricher (httpenrich.NewBulk): one
// GET /bulk?traveler_id=1,2,… per group of up to profileapi.MaxBulkIDs
// travelers, the answer matched to travelers by traveler_id; Concurrency
// then counts requests.
func LibraryBulk(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	return library(ctx, cfg, variant{bulk: true})
}

// LibraryBulkOverlapped is LibraryBulk with Options.Overlap: each batch's
// write, and the tail of its enrichment, hidden behind the next batch's
// enrichment.
func LibraryBulkOverlapped(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	return library(ctx, cfg, variant{bulk: true, overlap: true})
}

// libBulkEnricher is LibraryBulk's Enricher.
func libBulkEnricher(cfg harness.Config) (*httpenrich.BulkEnricher[libTraveler, job.Echo, job.Row], error) {
	return httpenrich.NewBulk(httpenrich.Config[libTraveler, job.Echo, job.Row]{
		URL: strings.TrimSuffix(cfg.TargetURL, "/") + "/bulk",
		Validate: func(t libTraveler, resp *httpenrich.Response[job.Echo]) (job.Row, error) {
			return job.FromEcho(job.Traveler(t), 0, resp.Status, resp.Raw, &resp.Body), nil
		},
		Pool: httpenrich.Pool{}.ForConcurrency(cfg.Concurrency),
	}, httpenrich.Bulk[libTraveler]{
		MaxItems: profileapi.MaxBulkIDs,
		Key:      func(t libTraveler) string { return strconv.FormatInt(t.ID, 10) },
		Request: func(ts []libTraveler) (httpenrich.Params, error) {
			return httpenrich.Params{Query: url.Values{"traveler_id": {joinIDs(ts, func(t libTraveler) int64 { return t.ID })}}}, nil
		},
		Entries: httpenrich.JSONEntries("profiles", "traveler_id", ""),
	})
}

func joinIDs[T any](ts []T, id func(T) int64) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id(t), 10))
	}
	return b.String()
}

// BulkLoop is the bulk job as a user writes it by hand: keyset windows one
// after the other; per window, one GET /bulk per group of up to
// profileapi.MaxBulkIDs ids, at most Concurrency at once (an errgroup),
// over the tuned keep-alive client; the answer matched by traveler_id; then
// one COPY of the window's rows in a transaction. No retries, no
// checkpoints, no per-item failure handling beyond a missing entry. Its
// Detail gives the reads, waves (requests and transforms) and commits,
// each summed over the windows.
func BulkLoop(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	var st harness.Stats
	db, err := sql.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		return st, err
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	client, tr := tunedClient(cfg.Concurrency)
	defer tr.CloseIdleConnections()
	base := strings.TrimSuffix(cfg.TargetURL, "/") + "/bulk?traveler_id="
	var reads, waves, commits time.Duration

	var last int64
	for b := 1; cfg.MaxBatches == 0 || b <= cfg.MaxBatches; b++ {
		t0 := time.Now()
		page, err := keysetWindow(ctx, db, cfg, last)
		reads += time.Since(t0)
		if err != nil {
			return st, err
		}
		if len(page) == 0 {
			break
		}
		t1 := time.Now()
		rows := make([]job.Row, len(page))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(cfg.Concurrency)
		for lo := 0; lo < len(page); lo += profileapi.MaxBulkIDs {
			hi := min(lo+profileapi.MaxBulkIDs, len(page))
			g.Go(func() error {
				return bulkCall(gctx, client, base, page[lo:hi], rows[lo:hi], b)
			})
		}
		if err := g.Wait(); err != nil {
			return st, err
		}
		t2 := time.Now()
		waves += t2.Sub(t1)
		if err := copyRows(ctx, db, cfg.ExecutionID, rows); err != nil {
			return st, err
		}
		commits += time.Since(t2)
		st.Written += len(rows)
		st.Batches++
		if len(page) < cfg.BatchSize {
			break
		}
		last = page[len(page)-1].ID
	}
	st.Detail = fmt.Sprintf("reads %.1f ms, waves %.1f, commits %.1f (sums over windows)", ms(reads), ms(waves), ms(commits))
	return st, nil
}

// bulkCall fetches the profiles of ts in one request into rows.
func bulkCall(ctx context.Context, client *http.Client, base string, ts []job.Traveler, rows []job.Row, batch int) error {
	status, body, err := get(ctx, client, base+joinIDs(ts, func(t job.Traveler) int64 { return t.ID }))
	if err != nil {
		return err
	}
	var answer struct {
		Profiles []json.RawMessage `json:"profiles"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("bulk answer: %w", err)
	}
	byID := make(map[string]int, len(answer.Profiles))
	echoes := make([]job.Echo, len(answer.Profiles))
	for i, raw := range answer.Profiles {
		var e struct {
			TravelerID string `json:"traveler_id"`
			job.Echo
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("bulk entry: %w", err)
		}
		byID[e.TravelerID], echoes[i] = i, e.Echo
	}
	for i, t := range ts {
		k, ok := byID[strconv.FormatInt(t.ID, 10)]
		if !ok {
			r := job.FromEcho(t, batch, status, nil, nil)
			r.IsValid, r.ValidationError = false, "missing from the answer"
			r.ProfilePayload = []byte(`{"error":"missing"}`)
			rows[i] = r
			continue
		}
		rows[i] = job.FromEcho(t, batch, status, answer.Profiles[k], &echoes[k])
	}
	return nil
}

// copyRows stores rows with one COPY in a transaction.
func copyRows(ctx context.Context, db *sql.DB, exec string, rows []job.Row) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: ErrTxDone
	if err := copyIn(ctx, tx, exec, rows); err != nil {
		return err
	}
	return tx.Commit()
}

// copyIn COPYs rows into the results table within tx.
func copyIn(ctx context.Context, tx *sql.Tx, exec string, rows []job.Row) error {
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("traveler_batch_results", "execution_id", "traveler_id", "traveler_name",
		"normalized_name", "profile_status", "profile_hash", "profile_payload", "is_valid", "validation_error", "batch_number"))
	if err != nil {
		return err
	}
	for _, r := range rows {
		var verr any
		if r.ValidationError != "" {
			verr = r.ValidationError
		}
		if _, err := stmt.ExecContext(ctx, exec, r.TravelerID, r.TravelerName, r.NormalizedName, r.ProfileStatus,
			r.ProfileHash, string(r.ProfilePayload), r.IsValid, verr, r.BatchNumber); err != nil {
			stmt.Close()
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return err
	}
	return stmt.Close()
}
