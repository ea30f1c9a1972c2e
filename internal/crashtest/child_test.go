package crashtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// childEnv carries a child's configuration, as JSON.
const childEnv = "CRASHTEST_CHILD"

// Pause points.
const (
	pauseEnrich  = "enrich"  // in the enrichment of batch k
	pauseWrite   = "write"   // in batch k's transaction, before the commit
	pauseBetween = "between" // after batch k committed, before batch k+1
)

// Child exit codes.
const (
	exitOK      = 0
	exitRunErr  = 1
	exitSetup   = 2
	exitLocked  = 3 // batchenrich.ErrRunLocked
	exitTimeout = 4 // paused too long: the parent is gone or failed
)

// childConfig configures a child run.
type childConfig struct {
	Kind        testdb.Kind
	DSN         string
	Log         string // enrichment log
	BatchSize   int
	Concurrency int
	Payload     int           // bytes of payload per result row
	Delay       time.Duration // added to each enrichment
	LockWait    bool
	LeaseTTL    time.Duration
	PauseAt     string // a pause point, or ""
	PauseBatch  int
	// PauseEnrichToo, if set, is a batch whose enrichment pauses too
	// (with Overlap, while another batch's write is paused).
	PauseEnrichToo int
	Overlap        bool // Options.Overlap
}

// pauseLimit bounds a pause: a child nobody kills or resumes exits.
const pauseLimit = 60 * time.Second

// TestHelperProcess is the child process; it does nothing in a normal test
// run.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("child process only")
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad config:", err)
		os.Exit(exitSetup)
	}
	os.Exit(childMain(cfg))
}

// child is the state of a child process.
type child struct {
	cfg    childConfig
	outMu  sync.Mutex
	log    *os.File
	resume chan struct{}

	mu      sync.Mutex
	started map[int]bool // batches whose enrichment started
}

func (c *child) say(format string, args ...any) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// pause announces the point and waits for "go" on stdin, or for the
// parent's SIGKILL.
func (c *child) pause(point string, batch int) {
	if (c.cfg.PauseAt != point || c.cfg.PauseBatch != batch) && (point != pauseEnrich || c.cfg.PauseEnrichToo != batch) {
		return
	}
	c.say("paused %s %d", point, batch)
	select {
	case <-c.resume:
	case <-time.After(pauseLimit):
		fmt.Fprintln(os.Stderr, "child: paused for too long")
		os.Exit(exitTimeout)
	}
}

// enriching records the start of item's enrichment.
func (c *child) enriching(it item) {
	b := batchOf(it.ID, c.cfg.BatchSize)
	c.mu.Lock()
	first := !c.started[b]
	c.started[b] = true
	c.mu.Unlock()
	if first {
		c.say("enriching %d", b)
	}
	// One write per line, O_APPEND: lines of concurrent enrichments (and
	// of other processes) never interleave.
	if _, err := c.log.WriteString(strconv.Itoa(b) + " " + strconv.FormatInt(it.ID, 10) + "\n"); err != nil {
		fmt.Fprintln(os.Stderr, "child: enrichment log:", err)
		os.Exit(exitSetup)
	}
	// Pause on the third item of the batch, with others in flight.
	if it.ID == int64((b-1)*c.cfg.BatchSize+min(3, c.cfg.BatchSize)) {
		c.pause(pauseEnrich, b)
	}
}

// pausingSink is the job's Sink, announcing its writes and pausing where
// told. Batch k's write pauses inside its transaction, after the rows and
// the checkpoint were written, before the commit.
type pausingSink struct {
	*sqlbatch.Sink[item, profile]
	db *sqlx.DB
	c  *child
}

func (s *pausingSink) WriteCheckpointed(ctx context.Context, b batchenrich.Batch[item, profile], store batchenrich.CheckpointStore, cp batchenrich.Checkpoint) error {
	s.c.say("writing %d", b.Number)
	var err error
	if s.c.cfg.PauseAt == pauseWrite && s.c.cfg.PauseBatch == b.Number {
		err = s.writePaused(ctx, b, store, cp)
	} else {
		err = s.Sink.WriteCheckpointed(ctx, b, store, cp)
	}
	if err != nil {
		return err
	}
	s.c.say("written %d", b.Number)
	s.c.pause(pauseBetween, b.Number)
	return nil
}

// writePaused is what Sink.WriteCheckpointed does, with a pause before
// the commit.
func (s *pausingSink) writePaused(ctx context.Context, b batchenrich.Batch[item, profile], store batchenrich.CheckpointStore, cp batchenrich.Checkpoint) error {
	cs, ok := store.(*sqlbatch.CheckpointStore)
	if !ok {
		return fmt.Errorf("store %T: %w", store, batchenrich.ErrCheckpointUnsupported)
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.WriteTx(ctx, tx, b); err != nil {
		return err
	}
	if err := cs.SaveTx(ctx, tx, cp); err != nil {
		return err
	}
	s.c.pause(pauseWrite, b.Number)
	return tx.Commit()
}

// scoreServer is the profile API: GET /score/{id} answers {"id": id,
// "score": scoreOf(id)}.
func scoreServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/score/"), 10, 64)
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%d,"score":%d}`, id, scoreOf(id))
	}))
}

func childMain(cfg childConfig) int {
	c := &child{cfg: cfg, resume: make(chan struct{}, 1), started: map[int]bool{}}
	setup := func(err error) int {
		fmt.Fprintln(os.Stderr, "child: setup:", err)
		return exitSetup
	}
	go func() { // "go" lines on stdin end a pause
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "go" {
				c.resume <- struct{}{}
			}
		}
	}()
	var err error
	if c.log, err = os.OpenFile(cfg.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
		return setup(err)
	}
	db, err := sqlx.Open(driverOf(cfg.Kind), cfg.DSN)
	if err != nil {
		return setup(err)
	}
	defer db.Close()

	var tok [4]byte
	_, _ = rand.Read(tok[:])
	writer := strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(tok[:])
	j, err := newJob(db, jobConfig{Writer: writer, Payload: cfg.Payload, LeaseTTL: cfg.LeaseTTL})
	if err != nil {
		return setup(err)
	}
	// As a real deployment would: every runner makes sure the table is
	// there, possibly at the same time as another.
	ctx := context.Background()
	if err := j.store.CreateTable(ctx); err != nil {
		return setup(err)
	}

	srv := scoreServer()
	defer srv.Close()
	api, err := httpenrich.New(httpenrich.Config[item, profile, profile]{
		URL: srv.URL + "/score/{id}",
		Request: func(it item) (httpenrich.Params, error) {
			return httpenrich.Params{Path: map[string]string{"id": strconv.FormatInt(it.ID, 10)}}, nil
		},
		Validate: func(it item, r *httpenrich.Response[profile]) (profile, error) {
			if r.Body.ID != it.ID {
				return profile{}, fmt.Errorf("answer for item %d, want %d", r.Body.ID, it.ID)
			}
			return r.Body, nil
		},
		Pool: httpenrich.Pool{}.ForConcurrency(cfg.Concurrency),
	})
	if err != nil {
		return setup(err)
	}
	defer api.Close()
	enr := batchenrich.EnricherFunc[item, profile](func(ctx context.Context, it item) (profile, error) {
		c.enriching(it)
		if cfg.Delay > 0 {
			select {
			case <-time.After(cfg.Delay):
			case <-ctx.Done():
				return profile{}, ctx.Err()
			}
		}
		return api.Enrich(ctx, it)
	})

	r, err := batchenrich.New(j.src, enr, &pausingSink{Sink: j.sink, db: db, c: c}, batchenrich.Options{
		BatchSize:         cfg.BatchSize,
		Concurrency:       cfg.Concurrency,
		StopAfterFailures: 1, // a failed item is a test failure
		Durable: &batchenrich.Durable{
			Store:             j.store,
			RunKey:            runKey,
			LockWait:          cfg.LockWait,
			LockRetryInterval: 20 * time.Millisecond,
		},
		Overlap: cfg.Overlap,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		return setup(err)
	}
	c.say("start %s", writer)
	rep, err := r.Run(ctx)
	out, jerr := json.Marshal(rep)
	if jerr != nil {
		return setup(jerr)
	}
	c.say("report %s", out)
	switch {
	case errors.Is(err, batchenrich.ErrRunLocked):
		fmt.Fprintln(os.Stderr, "child:", err)
		return exitLocked
	case err != nil:
		fmt.Fprintln(os.Stderr, "child: run:", err)
		return exitRunErr
	}
	return exitOK
}
