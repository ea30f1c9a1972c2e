package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
)

// The stress test below runs overlapped (and, for comparison, strict) runs
// with one or two faults injected at random places — an item's error, panic or
// Fatal error, a Keyer's panic, a Source's error or panic, a Sink's error
// or panic, a checkpoint's failed save, a panic in any Tracer hook, the
// context's end at a random moment — then resumes each to the end, and
// checks every run against a journal of what it did.

// sfault is a fault of one stress run.
type sfault struct {
	kind string
	at   int // the item (item faults), the read (from 0) or the batch
}

// scfg is the configuration a stress run's components share.
type scfg struct {
	size      int
	fault     sfault
	also      sfault // a second fault, or none
	rng       func(n int) int
	j         *sjournal
	from      int  // the run's first batch
	failBatch bool // StopAfterFailures is 1: no recorded failures
	// cancel ends the run's context (fault "cancel").
	cancel context.CancelFunc
}

// sitem is a stress test item; its Key panics when the run's fault says so.
type sitem struct {
	n int
	c *scfg
}

func (it sitem) Key() string {
	if it.c.is("key-panic", it.n) {
		it.c.j.note("fault", it.n/it.c.size+1)
		panic("Key panics")
	}
	return strconv.Itoa(it.n)
}

// sjournal records a run: each step in one sequence, the calls of user
// code in progress, and whether Run has returned.
type sjournal struct {
	mu       sync.Mutex
	steps    []sstep
	returned bool
	late     []string // calls after Run returned
	inUser   int      // calls into user code in progress
	inEnrich int
	maxEnr   int
	inWrite  int
	inBEnd   int
	problems []string
}

type sstep struct {
	kind  string
	batch int
}

func (j *sjournal) note(kind string, batch int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.returned {
		j.late = append(j.late, fmt.Sprintf("%s %d", kind, batch))
	}
	j.steps = append(j.steps, sstep{kind, batch})
}

// enter and leave bracket a call into user code.
func (j *sjournal) enter(kind string, batch int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.returned {
		j.late = append(j.late, fmt.Sprintf("%s %d", kind, batch))
	}
	j.inUser++
	switch kind {
	case "enrich":
		j.inEnrich++
		j.maxEnr = max(j.maxEnr, j.inEnrich)
	case "write":
		j.inWrite++
		if j.inWrite > 1 {
			j.problems = append(j.problems, fmt.Sprintf("batch %d written while another write is in progress", batch))
		}
	case "batch-end":
		j.inBEnd++
		if j.inBEnd > 1 {
			j.problems = append(j.problems, fmt.Sprintf("TraceBatchEnd of batch %d while another one runs", batch))
		}
	}
	j.steps = append(j.steps, sstep{kind + "-start", batch})
}

func (j *sjournal) leave(kind string, batch int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.inUser--
	switch kind {
	case "enrich":
		j.inEnrich--
	case "write":
		j.inWrite--
	case "batch-end":
		j.inBEnd--
	}
	j.steps = append(j.steps, sstep{kind + "-end", batch})
}

func (j *sjournal) first(kind string, batch int) int {
	for i, s := range j.steps {
		if s.kind == kind && s.batch == batch {
			return i
		}
	}
	return -1
}

// is reports whether one of the run's faults is kind at at.
func (c *scfg) is(kind string, at int) bool {
	return (c.fault.kind == kind && c.fault.at == at) || (c.also.kind == kind && c.also.at == at)
}

// has reports whether one of the run's faults is of kind.
func (c *scfg) has(kind string) bool { return c.fault.kind == kind || c.also.kind == kind }

// maybe applies the run's fault if it is kind at at, noting it.
func (c *scfg) maybe(kind string, at, batch int) error {
	if !c.is(kind, at) {
		return nil
	}
	c.j.note("fault", batch)
	switch kind {
	case "enrich-panic", "source-panic", "sink-panic", "batch-start-panic", "batch-end-panic",
		"item-start-panic", "item-end-panic", "stage-start-panic", "stage-end-panic":
		panic(kind)
	case "enrich-fatal":
		return batchenrich.Fatal(errors.New(kind))
	}
	return errors.New(kind)
}

func (c *scfg) sleep(ctx context.Context, maxMicros int) {
	d := time.Duration(c.rng(maxMicros+1)) * time.Microsecond
	if d == 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// sSource reads windows of sitems.
type sSource struct {
	c     *scfg
	n     int
	reads int
}

func (s *sSource) Read(ctx context.Context, after batchenrich.Cursor, limit int) ([]sitem, batchenrich.Cursor, error) {
	start := 0
	if after != "" {
		start, _ = strconv.Atoi(string(after))
	}
	batch := s.c.from + s.reads
	read := s.reads
	s.reads++
	s.c.j.enter("read", batch)
	defer s.c.j.leave("read", batch)
	s.c.sleep(ctx, 100)
	if err := s.c.maybe("source-error", read, batch); err != nil {
		return nil, after, err
	}
	_ = s.c.maybe("source-panic", read, batch)
	if err := ctx.Err(); err != nil {
		return nil, after, err
	}
	end := min(start+limit, s.n)
	out := make([]sitem, 0, end-start)
	for i := start; i < end; i++ {
		out = append(out, sitem{i, s.c})
	}
	return out, batchenrich.Cursor(strconv.Itoa(end)), nil
}

// sEnricher doubles items, with the run's item faults.
type sEnricher struct{ c *scfg }

func (e sEnricher) Enrich(ctx context.Context, it sitem) (int, error) {
	b := it.n/e.c.size + 1
	e.c.j.enter("enrich", b)
	defer e.c.j.leave("enrich", b)
	e.c.sleep(ctx, 300)
	if e.c.is("cancel-item", it.n) {
		e.c.j.note("fault", b)
		e.c.cancel()
	}
	for _, k := range []string{"enrich-error", "enrich-panic", "enrich-fatal", "key-panic"} {
		if err := e.c.maybe(k, it.n, b); err != nil {
			return 0, err
		}
	}
	if e.c.is("key-panic", it.n) {
		return 0, errors.New("failing, so that its key is asked for")
	}
	if it.n%11 == 7 && !e.c.failBatch {
		return 0, errors.New("recorded failure")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return 2 * it.n, nil
}

// sStore is a CheckpointStore keeping one run's checkpoint.
type sStore struct {
	c      *scfg
	atomic bool
	mu     sync.Mutex
	cp     batchenrich.Checkpoint
}

func (s *sStore) Load(ctx context.Context, key string) (batchenrich.Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := s.cp
	cp.RunKey = key
	return cp, nil
}

func (s *sStore) Save(ctx context.Context, cp batchenrich.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.c.maybe("save-error", cp.Batch, cp.Batch); err != nil {
		if !s.atomic {
			s.c.j.note("write-failed", cp.Batch)
		}
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cp.Batch != s.cp.Batch && !s.atomic {
		s.c.j.note("write-ok", cp.Batch) // committed
	}
	s.cp = cp
	return nil
}

// sSink stores rows, with the checkpoint in one "transaction" when atomic.
type sSink struct {
	c      *scfg
	store  *sStore
	atomic bool
	mu     sync.Mutex
	rows   map[int]int // item → batch that stored it
	writes map[int]int // item → writes
}

func (s *sSink) Write(ctx context.Context, b batchenrich.Batch[sitem, int]) error {
	if s.atomic {
		return errors.New("sSink: Write without a checkpoint")
	}
	return s.write(ctx, b, nil)
}

func (s *sSink) WriteCheckpointed(ctx context.Context, b batchenrich.Batch[sitem, int], store batchenrich.CheckpointStore, cp batchenrich.Checkpoint) error {
	if !s.atomic {
		return batchenrich.ErrCheckpointUnsupported
	}
	return s.write(ctx, b, &cp)
}

func (s *sSink) write(ctx context.Context, b batchenrich.Batch[sitem, int], cp *batchenrich.Checkpoint) error {
	s.c.j.enter("write", b.Number)
	defer s.c.j.leave("write", b.Number)
	s.c.sleep(ctx, 300)
	if err := s.c.maybe("sink-error", b.Number, b.Number); err != nil {
		s.c.j.note("write-failed", b.Number)
		return err
	}
	if err := s.c.maybe("sink-panic", b.Number, b.Number); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		s.c.j.note("write-failed", b.Number)
		return err
	}
	if cp != nil {
		if err := s.store.Save(ctx, *cp); err != nil {
			s.c.j.note("write-failed", b.Number)
			return err
		}
	}
	s.mu.Lock()
	for i, r := range b.Results {
		if r.Index != i || r.Item.n/s.c.size+1 != b.Number {
			s.c.j.note("bad-result", b.Number)
		}
		if r.Err == nil && r.Value != 2*r.Item.n {
			s.c.j.note("bad-value", b.Number)
		}
		s.rows[r.Item.n] = b.Number
		s.writes[r.Item.n]++
	}
	s.mu.Unlock()
	if cp != nil {
		s.c.j.note("write-ok", b.Number) // committed with its checkpoint
	}
	return nil
}

// sTracer journals the batch ends, with the run's Tracer faults, and
// passes the written batches on to ev.
type sTracer struct {
	c  *scfg
	ev eventTracer
}

func (t sTracer) TraceRunStart(ctx context.Context, _ batchenrich.TraceRun) context.Context {
	return ctx
}
func (t sTracer) TraceRunEnd(context.Context, batchenrich.TraceRun) {}
func (t sTracer) TraceBatchStart(ctx context.Context, d batchenrich.TraceBatch) context.Context {
	t.c.j.note("batch-start", d.Batch)
	_ = t.c.maybe("batch-start-panic", d.Batch, d.Batch)
	return ctx
}
func (t sTracer) TraceBatchEnd(ctx context.Context, d batchenrich.TraceBatch) {
	t.c.j.enter("batch-end", d.Batch)
	defer t.c.j.leave("batch-end", d.Batch)
	_ = t.c.maybe("batch-end-panic", d.Batch, d.Batch)
	t.ev.TraceBatchEnd(ctx, d) // not reached after a panic: the batch is not written
}
func (t sTracer) TraceItemStart(ctx context.Context, d batchenrich.TraceItem) context.Context {
	_ = t.c.maybe("item-start-panic", d.Batch*1000+d.Index, d.Batch)
	return ctx
}
func (t sTracer) TraceItemEnd(ctx context.Context, d batchenrich.TraceItem) {
	_ = t.c.maybe("item-end-panic", d.Batch*1000+d.Index, d.Batch)
}
func (t sTracer) TraceStageStart(ctx context.Context, d batchenrich.TraceStage) context.Context {
	if d.Stage == batchenrich.StageWrite {
		_ = t.c.maybe("stage-start-panic", d.Batch, d.Batch)
	}
	return ctx
}
func (t sTracer) TraceStageEnd(ctx context.Context, d batchenrich.TraceStage) {
	if d.Stage == batchenrich.StageWrite {
		_ = t.c.maybe("stage-end-panic", d.Batch, d.Batch)
	}
}
func (t sTracer) TraceLimitChange(context.Context, batchenrich.UpstreamLimit) {}

// errBatch returns the batch Run's error names, or 0.
func errBatch(err error) int {
	var ie *batchenrich.ItemError
	var be *batchenrich.BatchError
	switch {
	case errors.As(err, &ie):
		return ie.Batch
	case errors.As(err, &be):
		return be.Batch
	}
	return 0
}

// TestOverlapStress runs overlapped and strict runs of random shapes with
// one or two random faults each (see sfault), then resumes each, and checks
// every guarantee it can see in the journal: enrichments in flight, batches
// enriched and windows read ahead of the last commit, writes one at a time
// in order, the batch Run's error names (the first not written), the
// Report, the events, the Tracer's batch ends, the checkpoint, no call of
// user code after Run returned; and, after the resume, every row stored
// once with its batch number. BATCHENRICH_STRESS_SEED replays a seed.
func TestOverlapStress(t *testing.T) {
	t.Parallel()
	seed := rand.Uint64()
	if s := os.Getenv("BATCHENRICH_STRESS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rounds := 150
	if testing.Short() {
		rounds = 60
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	var rngMu sync.Mutex
	intN := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	kinds := []string{"none", "enrich-error", "enrich-panic", "enrich-fatal", "key-panic", "source-error", "source-panic",
		"sink-error", "sink-panic", "save-error", "batch-start-panic", "batch-end-panic", "item-start-panic",
		"item-end-panic", "stage-start-panic", "stage-end-panic", "cancel", "cancel-item"}
	for round := range rounds {
		n, size, conc := intN(60), 1+intN(12), 1+intN(6)
		maxBatches := 0
		if intN(3) == 0 {
			maxBatches = 1 + intN(5)
		}
		batches := (n + size - 1) / size
		if maxBatches > 0 {
			batches = min(batches, maxBatches)
		}
		total := min(n, batches*size)
		pick := func() sfault {
			f := sfault{kind: kinds[intN(len(kinds))]}
			switch f.kind {
			case "enrich-error", "enrich-panic", "enrich-fatal", "key-panic", "cancel-item":
				f.at = intN(max(n, 1))
			case "source-error", "source-panic":
				f.at = intN(batches + 1)
			case "item-start-panic", "item-end-panic":
				f.at = (1+intN(max(batches, 1)))*1000 + intN(size)
			case "cancel":
				f.at = intN(3000) // µs
			default:
				f.at = 1 + intN(max(batches, 1))
			}
			return f
		}
		f, also := pick(), sfault{}
		if intN(2) == 0 {
			also = pick()
		}
		probe := &scfg{fault: f, also: also}
		policy := 0 // Options.StopAfterFailures
		if probe.has("enrich-error") || probe.has("key-panic") {
			policy = 1
		}
		overlap := intN(4) != 0
		atomicSink := intN(2) == 0
		tracer := intN(3) != 0
		for _, k := range []string{"batch-start-panic", "batch-end-panic", "item-start-panic", "item-end-panic", "stage-start-panic", "stage-end-panic"} {
			tracer = tracer || probe.has(k)
		}
		name := fmt.Sprintf("seed %d round %d: %d items, size %d, conc %d, cap %d, faults %+v %+v, overlap %v, atomic %v, tracer %v",
			seed, round, n, size, conc, maxBatches, f, also, overlap, atomicSink, tracer)
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			store := &sStore{}
			rows, writes := map[int]int{}, map[int]int{}
			enrichedIn := map[int]bool{} // batches enriched by the failed run
			runOnce := func(f, also sfault) (*sjournal, batchenrich.Report, error, bool) {
				cp, _ := store.Load(context.Background(), "k")
				j := &sjournal{}
				c := &scfg{size: size, fault: f, also: also, rng: intN, j: j, from: cp.Batch + 1, failBatch: policy == 1}
				store.c, store.atomic = c, atomicSink
				sink := &sSink{c: c, store: store, atomic: atomicSink, rows: rows, writes: writes}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				c.cancel = cancel
				if c.has("cancel") {
					at := f.at
					if also.kind == "cancel" {
						at = also.at
					}
					tm := time.AfterFunc(time.Duration(at)*time.Microsecond, cancel)
					defer tm.Stop()
				}
				events := make(chan event, 1000)
				o := batchenrich.Options{
					BatchSize:         size,
					Concurrency:       conc,
					MaxBatches:        maxBatches,
					Overlap:           overlap,
					StopAfterFailures: policy,
					Durable: &batchenrich.Durable{
						Store:  store,
						RunKey: "k",
					},
					Tracer: eventTracer(events),
				}
				if tracer {
					o.Tracer = sTracer{c: c, ev: events}
				}
				r, err := batchenrich.New[sitem, int](&sSource{c: c, n: n}, sEnricher{c}, sink, o)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := r.Run(ctx)
				j.mu.Lock()
				j.returned = true
				inUser := j.inUser
				j.mu.Unlock()
				if inUser != 0 {
					t.Errorf("%s: %d calls of user code in progress when Run returned", name, inUser)
				}
				close(events)
				var evWritten []int
				for ev := range events {
					if ev.Kind == evBatchWritten {
						evWritten = append(evWritten, ev.Batch)
					}
				}
				ctxEnded := ctx.Err() != nil
				time.Sleep(time.Millisecond)
				j.mu.Lock()
				defer j.mu.Unlock()
				if len(j.late) > 0 {
					t.Errorf("%s: calls after Run returned: %v", name, j.late)
				}
				for _, p := range j.problems {
					t.Errorf("%s: %s", name, p)
				}
				if j.maxEnr > conc {
					t.Errorf("%s: %d enrichments in flight, concurrency %d", name, j.maxEnr, conc)
				}
				// Batch b is enriched only once batch b-enrichAhead was
				// written, and read only once batch b-readAhead was.
				enrichAhead, readAhead := 1, 2
				if overlap {
					enrichAhead, readAhead = 2, 3
				}
				// Writes in order, each after the one before succeeded.
				var ok []int
				for i, s := range j.steps {
					switch s.kind {
					case "write-start":
						want := c.from + len(ok)
						if s.batch != want {
							t.Errorf("%s: batch %d written at step %d, want batch %d", name, s.batch, i, want)
						}
						if k := j.first("write-failed", s.batch-1); k >= 0 && k < i {
							t.Errorf("%s: batch %d written after batch %d's write failed", name, s.batch, s.batch-1)
						}
					case "write-ok":
						ok = append(ok, s.batch)
					case "enrich-start":
						if b := s.batch - enrichAhead; b >= c.from {
							if k := j.first("write-ok", b); k < 0 || k > i {
								t.Errorf("%s: batch %d enriched before batch %d was written", name, s.batch, b)
							}
						}
						enrichedIn[s.batch] = true
					case "read-start":
						if b := s.batch - readAhead; b >= c.from {
							if k := j.first("write-ok", b); k < 0 || k > i {
								t.Errorf("%s: batch %d read before batch %d was written: %d windows held", name, s.batch, b, readAhead+1)
							}
						}
					case "bad-result", "bad-value":
						t.Errorf("%s: batch %d: %s", name, s.batch, s.kind)
					}
				}
				written := len(ok)
				// The batch ends come in order, once per started batch.
				var ends []int
				for _, s := range j.steps {
					if s.kind == "batch-end-start" {
						ends = append(ends, s.batch)
					}
				}
				for i := range ends {
					if i > 0 && ends[i] <= ends[i-1] {
						t.Errorf("%s: batch ends in the order %v", name, ends)
						break
					}
				}
				for _, s := range j.steps {
					if s.kind == "batch-start" {
						if k := j.first("batch-end-start", s.batch); k < 0 {
							t.Errorf("%s: batch %d started but never ended (ends %v)", name, s.batch, ends)
						}
					}
				}
				eb := errBatch(err)
				endPanicked := err != nil && (c.is("batch-end-panic", eb) || c.is("stage-end-panic", eb)) &&
					j.first("fault", eb) >= 0 && written == eb-c.from+1
				// Run's error names the first batch not written.
				if err != nil {
					switch {
					case eb == 0:
						if !errors.Is(err, context.Canceled) || written != 0 {
							t.Errorf("%s: err = %v names no batch, %d written", name, err, written)
						}
					case endPanicked:
						// the batch was written, then its end panicked
					case eb != c.from+written:
						t.Errorf("%s: err = %v names batch %d; %d written from %d", name, err, eb, written, c.from)
					}
					fired := ctxEnded
					for _, s := range j.steps {
						fired = fired || s.kind == "fault"
					}
					if !fired {
						t.Errorf("%s: err = %v, but no fault fired", name, err)
					}
					if (f.kind == "cancel" || f.kind == "cancel-item") && also.kind == "" && !errors.Is(err, context.Canceled) {
						t.Errorf("%s: cancelled, err = %v", name, err)
					}
					// The failed run enriched at most the two batches
					// after the last written one (strict: one).
					ahead := 2
					if !overlap {
						ahead = 1
					}
					for b := range enrichedIn {
						if b > c.from+written-1+ahead {
							t.Errorf("%s: batch %d enriched, %d written from %d", name, b, written, c.from)
						}
					}
				} else if c.from+written-1 != batches {
					t.Errorf("%s: no error, but %d batches written from %d of %d", name, written, c.from, batches)
				}
				// Report.
				wantRun := written
				if endPanicked && err != nil {
					wantRun = written - 1
				}
				if rep.BatchesRun != wantRun || len(rep.Batches) < written || len(rep.Batches) > written+1 {
					t.Errorf("%s: report ran %d, lists %d batches; written %d (err %v)", name, rep.BatchesRun, len(rep.Batches), written, err)
				}
				for i, br := range rep.Batches {
					if br.Number != c.from+i {
						t.Errorf("%s: report's batch %d is number %d", name, i, br.Number)
					}
				}
				if len(evWritten) > written || (!endPanicked && len(evWritten) != written) {
					t.Errorf("%s: batch-written events %v, written %v", name, evWritten, ok)
				}
				for i, b := range evWritten {
					if b != ok[i] {
						t.Errorf("%s: batch-written events %v, written %v", name, evWritten, ok)
						break
					}
				}
				if cp, _ := store.Load(context.Background(), "k"); cp.Batch != c.from-1+written {
					t.Errorf("%s: checkpoint at batch %d; %d written from %d", name, cp.Batch, written, c.from)
				}
				return j, rep, err, ctxEnded
			}

			_, _, err, _ := runOnce(f, also)
			if err == nil {
				return
			}
			enrichedIn = map[int]bool{}
			if _, _, err, _ := runOnce(sfault{}, sfault{}); err != nil {
				t.Fatalf("%s: resumed run: %v", name, err)
			}
			if cp, _ := store.Load(context.Background(), "k"); cp.Batch != batches {
				t.Errorf("%s: resumed checkpoint at batch %d, want %d", name, cp.Batch, batches)
			}
			if len(rows) != total {
				t.Errorf("%s: %d rows, want %d", name, len(rows), total)
			}
			dup := map[int]bool{}
			for i := range total {
				if rows[i] != i/size+1 {
					t.Errorf("%s: item %d stored by batch %d", name, i, rows[i])
				}
				if writes[i] != 1 {
					// At-least-once, the checkpoint saved after the
					// write: only the batch whose save failed (a fault,
					// or the context's end) is written again.
					dup[i/size+1] = true
					if atomicSink || writes[i] > 2 {
						t.Errorf("%s: item %d written %d times", name, i, writes[i])
					}
				}
			}
			if len(dup) > 1 {
				t.Errorf("%s: batches %v written twice", name, dup)
			}
		})
	}
}
