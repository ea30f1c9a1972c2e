package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// hangGuard bounds the waits of the overlap tests: a guard against a hang,
// not a timing assertion.
const hangGuard = 20 * time.Second

// journal records, in one sequence, what a run does: each enrichment's
// start and end, each write's start and outcome, each checkpoint saved.
type journal struct {
	mu     sync.Mutex
	events []step
}

// step is one entry of a journal.
type step struct {
	kind  string // enrich-start, enrich-end, write-start, write-ok, write-failed, checkpoint
	batch int
	item  item
	cp    batchenrich.Checkpoint
}

func (j *journal) add(s step) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, s)
}

// first and last return the position of the first and last step of kind
// for batch, or -1.
func (j *journal) first(kind string, batch int) int {
	for i, s := range j.events {
		if s.kind == kind && s.batch == batch {
			return i
		}
	}
	return -1
}

func (j *journal) last(kind string, batch int) int {
	for i := len(j.events) - 1; i >= 0; i-- {
		if s := j.events[i]; s.kind == kind && s.batch == batch {
			return i
		}
	}
	return -1
}

// txSink is a CheckpointSink keeping rows and checkpoint "in one
// transaction": a failed write keeps neither. It checks the Sink guarantees
// through a batchenrichtest.Sink and journals every write.
type txSink struct {
	j       *journal
	inner   *batchenrichtest.Sink[item, int]
	latency func() time.Duration
	fail    func(batch int) error
	mu      sync.Mutex
	rows    map[item]int // item → batch that committed it
}

func (s *txSink) Write(ctx context.Context, b batchenrich.Batch[item, int]) error {
	return errors.New("txSink: Write without a checkpoint")
}

func (s *txSink) WriteCheckpointed(ctx context.Context, b batchenrich.Batch[item, int], store batchenrich.CheckpointStore, cp batchenrich.Checkpoint) error {
	s.j.add(step{kind: "write-start", batch: b.Number})
	err := func() error {
		if s.latency != nil {
			t := time.NewTimer(s.latency())
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if s.fail != nil {
			if err := s.fail(b.Number); err != nil {
				return err
			}
		}
		if err := s.inner.Write(ctx, b); err != nil {
			return err
		}
		if err := store.Save(ctx, cp); err != nil {
			return err
		}
		s.j.add(step{kind: "checkpoint", batch: b.Number, cp: cp})
		s.mu.Lock()
		for _, r := range b.Results {
			s.rows[r.Item] = b.Number
		}
		s.mu.Unlock()
		return nil
	}()
	if err != nil {
		s.j.add(step{kind: "write-failed", batch: b.Number})
		return err
	}
	s.j.add(step{kind: "write-ok", batch: b.Number})
	return nil
}

// journalled wraps enr so that j records each enrichment's start and end;
// size maps an item to its batch (item i is in batch i/size+1).
func journalled(j *journal, enr batchenrich.Enricher[item, int], size int) batchenrich.Enricher[item, int] {
	return batchenrich.EnricherFunc[item, int](func(ctx context.Context, it item) (int, error) {
		b := int(it)/size + 1
		j.add(step{kind: "enrich-start", batch: b, item: it})
		defer j.add(step{kind: "enrich-end", batch: b, item: it})
		return enr.Enrich(ctx, it)
	})
}

// checkOverlapped checks a journal against the guarantees of Overlap:
// batch n+1's first enrichment only after batch n-1's write succeeded, so
// that at no point more than two batches are enriched (or being enriched)
// and not committed; batches written one at a time in order, batch n+1's
// write only after batch n's succeeded, each write with its own
// checkpoint. The run's first batch is from. It returns the last batch
// written (from-1 if none), and whether a batch's enrichment started
// before the enrichment of the batch before had ended.
func checkOverlapped(t *testing.T, j *journal, from, batches int) (written int, crossed bool) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	written = from - 1
	for b := from; b <= batches; b++ {
		es := j.first("enrich-start", b)
		if es < 0 {
			continue
		}
		if b > from && j.last("enrich-end", b-1) > es {
			crossed = true
		}
		if b > from+1 {
			if ok := j.first("write-ok", b-2); ok < 0 || ok > es {
				t.Errorf("batch %d enriched before batch %d's write succeeded (more than one batch ahead)", b, b-2)
			}
		}
	}
	// Replay the journal: the batches whose enrichment started and that
	// are not committed yet.
	open := map[int]bool{}
	for _, s := range j.events {
		switch s.kind {
		case "enrich-start":
			open[s.batch] = true
			if len(open) > 2 {
				t.Errorf("batch %d enriched while %d batches are uncommitted: %v", s.batch, len(open)-1, open)
			}
		case "write-ok":
			delete(open, s.batch)
		}
	}
	for b := from; b <= batches; b++ {
		ws := j.first("write-start", b)
		if ws < 0 {
			break
		}
		if ws != j.last("write-start", b) {
			t.Errorf("batch %d written twice", b)
		}
		if b > from {
			if ok := j.first("write-ok", b-1); ok < 0 || ok > ws {
				t.Errorf("batch %d written before batch %d's write succeeded", b, b-1)
			}
		}
		if j.last("enrich-end", b) > ws {
			t.Errorf("batch %d written before its enrichment ended", b)
		}
		if j.first("write-ok", b) >= 0 {
			written = b
			cp := j.first("checkpoint", b)
			if cp < 0 || j.events[cp].cp.Batch != b {
				t.Errorf("batch %d written without its checkpoint", b)
			}
		} else if j.first("checkpoint", b) >= 0 {
			t.Errorf("batch %d's write failed but its checkpoint was saved", b)
		}
	}
	for b := written + 2; b <= batches; b++ {
		if j.first("write-start", b) >= 0 {
			t.Errorf("batch %d written after batch %d's write failed", b, written+1)
		}
	}
	return written, crossed
}

// TestOverlapOrderUnderRandomDelaysAndFailures runs overlapped durable runs
// of random shapes with random enrichment and write delays, random item
// failures, and a random failing write, failing batch (StopAfterFailures 1, or a
// panic), or two failing batches one after the other, then resumes each
// to the end; every run's journal must show the Overlap guarantees, the
// first batch to fail must be the one Run names, with every batch before
// it written, and across the failure and the resume only the batch that
// failed and the one after it are enriched twice. Some batch must start
// before the one before it has finished enriching.
func TestOverlapOrderUnderRandomDelaysAndFailures(t *testing.T) {
	t.Parallel()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 1))
	var rngMu sync.Mutex
	intN := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	crossed := 0
	defer func() {
		if !t.Failed() && crossed == 0 {
			t.Errorf("seed %d: no batch started before the batch before had finished enriching", seed)
		}
	}()
	for round := range 40 {
		n, size, conc := intN(400), 1+intN(40), 1+intN(12)
		batches := (n + size - 1) / size
		failWrite, failItem, alsoItem, panics := -1, -1, -1, false
		switch intN(5) {
		case 0:
			failWrite = 1 + intN(max(batches, 1))
		case 1:
			failItem = intN(max(n, 1))
		case 2:
			failItem, panics = intN(max(n, 1)), true
		case 3:
			// The batch before fails too, with an item anywhere in it
			// (perhaps after the later batch failed).
			failItem = intN(max(n, 1))
			if b := failItem / size; b > 0 {
				alsoItem = (b-1)*size + intN(size)
			}
		}
		name := fmt.Sprintf("seed %d round %d: %d items, batches of %d, concurrency %d, write of batch %d fails, items %d and %d fail their batch (panic %v)",
			seed, round, n, size, conc, failWrite, failItem, alsoItem, panics)
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			store := batchenrichtest.NewCheckpoints()
			rows := map[item]int{}
			enriched := map[item]int{}
			var enrMu sync.Mutex
			runOnce := func(failing bool) (*journal, batchenrich.Report, error) {
				j := &journal{}
				cp, _ := store.Load(context.Background(), "k") // a resumed run's first batch follows it
				sink := &txSink{j: j, inner: &batchenrichtest.Sink[item, int]{FirstBatch: cp.Batch + 1}, rows: rows,
					latency: func() time.Duration { return time.Duration(intN(400)) * time.Microsecond }}
				enr := batchenrichtest.NewEnricher(double)
				enr.Latency = func(item) time.Duration { return time.Duration(intN(200)) * time.Microsecond }
				enr.Started = func(it item, _ int) {
					enrMu.Lock()
					enriched[it]++
					enrMu.Unlock()
				}
				enr.Fail = func(it item) error {
					if failing && int(it) == failItem {
						return errors.New("this item fails its batch")
					}
					if it%7 == 3 {
						return errors.New("recorded failure")
					}
					return nil
				}
				policy := 0 // Options.StopAfterFailures
				if failing {
					sink.fail = func(b int) error {
						if b == failWrite {
							return errors.New("write fails")
						}
						return nil
					}
					if failItem >= 0 {
						enr.Fail = func(it item) error {
							if int(it) == failItem || int(it) == alsoItem {
								if panics {
									panic("this item fails its batch")
								}
								return errors.New("this item fails its batch")
							}
							return nil
						}
						if !panics {
							policy = 1
						}
					}
				}
				r, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(n)), journalled(j, enr, size), sink, batchenrich.Options{
					BatchSize:         size,
					Concurrency:       conc,
					Overlap:           true,
					StopAfterFailures: policy,
					Durable: &batchenrich.Durable{
						Store:  store,
						RunKey: "k",
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				rep, err := r.Run(context.Background())
				if cerr := sink.inner.Check(); cerr != nil {
					t.Errorf("%s: %v", name, cerr)
				}
				if enr.MaxInFlight() > conc {
					t.Errorf("%s: %d enrichments in flight, concurrency %d", name, enr.MaxInFlight(), conc)
				}
				return j, rep, err
			}

			j, rep, err := runOnce(true)
			written, cross := checkOverlapped(t, j, 1, batches)
			if cross {
				crossed++
			}
			var be *batchenrich.BatchError
			var ie *batchenrich.ItemError
			switch {
			case failWrite >= 1 && failWrite <= batches:
				if !errors.As(err, &be) || be.Batch != failWrite || be.Stage != batchenrich.StageWrite || written != failWrite-1 {
					t.Fatalf("%s: err = %v, written %d", name, err, written)
				}
			case failItem >= 0 && failItem < n && panics:
				fb := failItem/size + 1
				if !errors.As(err, &ie) || ie.Batch != fb || ie.Index != failItem%size || written != fb-1 {
					t.Fatalf("%s: err = %v, written %d", name, err, written)
				}
			case failItem >= 0 && failItem < n:
				fb := failItem/size + 1
				if alsoItem >= 0 {
					fb-- // the earlier batch's error wins
				}
				if !errors.As(err, &be) || be.Batch != fb || be.Stage != batchenrich.StageEnrich || written != fb-1 {
					t.Fatalf("%s: err = %v, written %d", name, err, written)
				}
			default:
				if err != nil || written != batches {
					t.Fatalf("%s: err = %v, written %d of %d", name, err, written, batches)
				}
			}
			if rep.BatchesRun != written || len(rep.Batches) < written || len(rep.Batches) > written+1 {
				t.Fatalf("%s: report lists %d batches, ran %d; written %d", name, len(rep.Batches), rep.BatchesRun, written)
			}
			for i, br := range rep.Batches {
				if br.Number != i+1 {
					t.Fatalf("%s: report's batch %d is number %d", name, i, br.Number)
				}
			}
			if cp, _ := store.Load(context.Background(), "k"); cp.Batch != written {
				t.Fatalf("%s: checkpoint at batch %d, written %d", name, cp.Batch, written)
			}
			if err == nil {
				return
			}

			// Resume: the run goes on after the last committed batch.
			j, rep, err = runOnce(false)
			if err != nil {
				t.Fatalf("%s: resumed run: %v", name, err)
			}
			if got, _ := checkOverlapped(t, j, written+1, batches); got != batches || rep.BatchesSkipped != written || rep.BatchesRun != batches-written {
				t.Fatalf("%s: resumed run skipped %d, ran %d (journal: last %d); want %d, %d", name, rep.BatchesSkipped, rep.BatchesRun, got, written, batches-written)
			}
			again := map[int]bool{}
			for i := range n {
				it := item(i)
				if rows[it] != i/size+1 {
					t.Fatalf("%s: item %d stored by batch %d", name, i, rows[it])
				}
				if c := enriched[it]; c > 1 {
					again[i/size+1] = true
				}
			}
			for b := range again {
				if b != written+1 && b != written+2 {
					t.Errorf("%s: batch %d enriched again; only %d and %d were in flight", name, b, written+1, written+2)
				}
			}
		})
	}
}

// TestOverlapHidesTheWrite checks that the next batch's enrichment really
// runs during a write: each write waits until the next batch's first
// enrichment has started, which in strict order would never happen.
func TestOverlapHidesTheWrite(t *testing.T) {
	t.Parallel()
	const n, size = 500, 50
	var starts batchStarts
	f := newFixture(n)
	f.enr.Started = func(it item, _ int) { starts.mark(int(it)/size + 1) }
	sink := batchenrich.SinkFunc[item, int](func(ctx context.Context, b batchenrich.Batch[item, int]) error {
		if b.Number < n/size {
			select {
			case <-starts.of(b.Number + 1):
			case <-time.After(hangGuard):
				return fmt.Errorf("batch %d's write: batch %d's enrichment never started", b.Number, b.Number+1)
			}
		}
		return f.sink.Write(ctx, b)
	})
	r, err := batchenrich.New[item, int](f.src, f.enr, sink, batchenrich.Options{BatchSize: size, Concurrency: 8, Overlap: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sink.Check(); err != nil {
		t.Fatal(err)
	}
	f.checkWritten(t, 0, n, size, 1)
	if rep.BatchesRun != n/size || rep.Written != n || len(rep.Batches) != n/size {
		t.Fatalf("report = %+v", rep)
	}
}

// awaitCancel is the enrichment of item it of batch 3 in the tests where
// batch 2 stops the run: it waits for ctx to end and records it in
// cancelled.
func awaitCancel(ctx context.Context, it item, cancelled *sync.Map) (int, error) {
	select {
	case <-ctx.Done():
		cancelled.Store(it, true)
		return 0, ctx.Err()
	case <-time.After(hangGuard):
		return 0, errors.New("batch 3's enrichment was not cancelled")
	}
}

// checkCancelled fails t unless awaitCancel saw batch 3's context end.
func checkCancelled(t *testing.T, cancelled *sync.Map) {
	t.Helper()
	n := 0
	cancelled.Range(func(any, any) bool { n++; return true })
	if n == 0 {
		t.Error("batch 3's enrichments never saw their context end")
	}
}

// TestOverlapFailedWriteStopsTheNextBatch fails batch 2's write while batch
// 3 is being enriched: batch 3's enrichments see their context end, batch 3
// is never written, batch 4 never enriched, and Run names batch 2's write.
func TestOverlapFailedWriteStopsTheNextBatch(t *testing.T) {
	t.Parallel()
	const size = 10
	f := newFixture(100)
	inBatch3 := make(chan struct{})
	var once sync.Once
	var cancelled, later sync.Map
	enr := batchenrich.EnricherFunc[item, int](func(ctx context.Context, it item) (int, error) {
		switch b := int(it)/size + 1; {
		case b == 3:
			once.Do(func() { close(inBatch3) })
			return awaitCancel(ctx, it, &cancelled)
		case b > 3:
			later.Store(it, true)
		}
		return double(ctx, it)
	})
	boom := errors.New("disk full")
	sink := batchenrich.SinkFunc[item, int](func(ctx context.Context, b batchenrich.Batch[item, int]) error {
		if b.Number == 2 {
			<-inBatch3 // batch 3 is being enriched
			return boom
		}
		return f.sink.Write(ctx, b)
	})
	events := make(chan event, 100)
	r, err := batchenrich.New[item, int](f.src, enr, sink, batchenrich.Options{BatchSize: size, Concurrency: 4, Overlap: true, Tracer: eventTracer(events)})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	var be *batchenrich.BatchError
	if !errors.As(err, &be) || be.Batch != 2 || be.Stage != batchenrich.StageWrite || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want batch 2's write error", err)
	}
	if got := len(f.sink.Batches()); got != 1 {
		t.Fatalf("%d batches written, want 1", got)
	}
	checkCancelled(t, &cancelled)
	later.Range(func(k, _ any) bool { t.Errorf("item %v of a later batch enriched", k); return false })
	if rep.BatchesRun != 1 || len(rep.Batches) != 2 || rep.Batches[1].Number != 2 || rep.Batches[1].Written != 0 {
		t.Fatalf("report = %+v", rep)
	}
	close(events)
	var written []int
	for ev := range events {
		if ev.Kind == evBatchWritten {
			written = append(written, ev.Batch)
		}
	}
	if fmt.Sprint(written) != "[1]" {
		t.Fatalf("batch-written events for %v, want [1]", written)
	}
}

// TestOverlapFailedBatchLetsTheWriteFinish fails batch 3 (StopAfterFailures 1) while
// batch 2 is being written: batch 2's write completes with its checkpoint,
// and Run names batch 3.
func TestOverlapFailedBatchLetsTheWriteFinish(t *testing.T) {
	t.Parallel()
	const size = 10
	f := newFixture(100)
	failed := make(chan struct{})
	f.enr.Fail = func(it item) error {
		if it == 25 {
			defer close(failed)
			return errors.New("bad item")
		}
		return nil
	}
	store := batchenrichtest.NewCheckpoints()
	sink := batchenrich.SinkFunc[item, int](func(ctx context.Context, b batchenrich.Batch[item, int]) error {
		if b.Number == 2 {
			<-failed // batch 3 has failed meanwhile
		}
		return f.sink.Write(ctx, b)
	})
	rep, err := func() (batchenrich.Report, error) {
		r, err := batchenrich.New[item, int](f.src, f.enr, sink, batchenrich.Options{
			BatchSize:         size,
			Concurrency:       4,
			Overlap:           true,
			StopAfterFailures: 1,
			Durable: &batchenrich.Durable{
				Store:  store,
				RunKey: "k",
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return r.Run(context.Background())
	}()
	var be *batchenrich.BatchError
	if !errors.As(err, &be) || be.Batch != 3 || be.Stage != batchenrich.StageEnrich || !errors.Is(err, batchenrich.ErrTooManyFailures) {
		t.Fatalf("err = %v, want batch 3's failure", err)
	}
	f.checkWritten(t, 0, 20, size, 1)
	if cp, _ := store.Load(context.Background(), "k"); cp.Batch != 2 || cp.Cursor != "20" {
		t.Fatalf("checkpoint = %+v, want batch 2 at 20", cp)
	}
	if rep.BatchesRun != 2 || len(rep.Batches) != 3 || rep.Batches[2].Number != 3 {
		t.Fatalf("report = %+v", rep)
	}
}

// TestOverlapCancelDuringWrite cancels the run while batch 2 is written and
// batch 3 enriched: neither is written, every goroutine has exited when Run
// returns (goleak), and the error is the context's.
func TestOverlapCancelDuringWrite(t *testing.T) {
	t.Parallel()
	f := newFixture(500)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in3 := make(chan struct{})
	f.enr.Started = func(it item, _ int) {
		if it == 205 {
			close(in3)
		}
	}
	f.enr.Latency = func(item) time.Duration { return 100 * time.Microsecond }
	sink := batchenrich.SinkFunc[item, int](func(ctx context.Context, b batchenrich.Batch[item, int]) error {
		if b.Number < 2 {
			return f.sink.Write(ctx, b)
		}
		select { // batch 3 is being enriched
		case <-in3:
		case <-time.After(hangGuard):
		}
		cancel()
		<-ctx.Done() // a write that only ends with ctx
		return ctx.Err()
	})
	r, err := batchenrich.New[item, int](f.src, f.enr, sink, batchenrich.Options{BatchSize: 100, Concurrency: 4, Overlap: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(ctx)
	var be *batchenrich.BatchError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &be) || be.Batch != 2 || be.Stage != batchenrich.StageWrite {
		t.Fatalf("err = %v", err)
	}
	if f.enr.InFlight() != 0 {
		t.Fatalf("%d enrichments in flight after Run", f.enr.InFlight())
	}
	f.checkWritten(t, 0, 100, 100, 1)
}

// TestOverlapShapes runs the shapes of TestRunShapes overlapped.
func TestOverlapShapes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		items, size, cap, want, batches int
	}{
		{2000, 100, 20, 2000, 20},
		{2500, 100, 20, 2000, 20},
		{250, 100, 0, 250, 3},
		{300, 100, 0, 300, 3},
		{7, 100, 5, 7, 1},
		{0, 100, 20, 0, 0},
		{5, 1, 0, 5, 5},
		{500, 100, 1, 100, 1},
	} {
		t.Run(fmt.Sprintf("%d/%d/%d", tt.items, tt.size, tt.cap), func(t *testing.T) {
			t.Parallel()
			f := newFixture(tt.items)
			store := batchenrichtest.NewCheckpoints()
			rep, err := f.run(t, context.Background(), batchenrich.Options{
				BatchSize:  tt.size,
				MaxBatches: tt.cap,
				Overlap:    true,
				Durable: &batchenrich.Durable{
					Store:  store,
					RunKey: "k",
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			f.checkWritten(t, 0, tt.want, tt.size, 1)
			if rep.BatchesRun != tt.batches || rep.Written != tt.want || len(rep.Batches) != tt.batches {
				t.Errorf("report = %+v", rep)
			}
			cp, _ := store.Load(context.Background(), "k")
			if done := tt.cap == 0 || tt.items < tt.size*tt.cap; cp.Batch != tt.batches || cp.Done != done {
				t.Errorf("checkpoint = %+v, want batch %d, done %v", cp, tt.batches, done)
			}
			if tt.cap > 0 && len(f.src.Reads()) > tt.cap {
				t.Errorf("source read %d times with a cap of %d", len(f.src.Reads()), tt.cap)
			}
		})
	}
}

func TestOverlapRefusesNoPrefetch(t *testing.T) {
	t.Parallel()
	f := newFixture(1)
	_, err := batchenrich.New[item, int](f.src, f.enr, f.sink, batchenrich.Options{Overlap: true, NoPrefetch: true})
	var oe *batchenrich.ConfigError
	if !errors.As(err, &oe) || oe.Field != "Overlap" || !strings.Contains(err.Error(), "NoPrefetch") {
		t.Fatalf("err = %v", err)
	}
}

// TestOverlapTracer checks the Tracer under Overlap: every batch started
// ends once, the ends of written batches come in order, each write runs in
// its batch's context, and with batch 3's write failing, batch 3 and the
// batch enriched meanwhile end with an error: whether that write fails
// during batch 4's enrichment or (late) after it.
func TestOverlapTracer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		failAt int
		late   bool
	}{{0, false}, {3, false}, {3, true}} {
		failAt := tc.failAt
		t.Run(fmt.Sprintf("write %d fails, late %v", failAt, tc.late), func(t *testing.T) {
			t.Parallel()
			f := newFixture(100)
			f.enr = tracedEnricher(t)
			batch4Done := make(chan struct{})
			if fn := f.enr.Fn; tc.late {
				f.enr.Fn = func(ctx context.Context, i item) (int, error) {
					v, err := fn(ctx, i)
					if i == 39 { // batch 4's last item
						close(batch4Done)
					}
					return v, err
				}
			}
			f.sink.FailWrite = func(n int) error {
				if n == failAt {
					if tc.late {
						// Most likely the Runner is then waiting for
						// this write to start batch 4's.
						<-batch4Done
						time.Sleep(20 * time.Millisecond)
					}
					return errors.New("disk full")
				}
				return nil
			}
			rec := &recorder{}
			_, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: 10, Concurrency: 3, Overlap: true, Tracer: rec})
			if (err != nil) != (failAt > 0) {
				t.Fatalf("err = %v", err)
			}
			starts, ends := map[int]int{}, map[int]int{}
			var ended []int
			for _, l := range rec.Lines() {
				var b, items int
				if _, e := fmt.Sscanf(l, "start batch %d(%d)", &b, &items); e == nil {
					starts[b]++
				}
				if _, e := fmt.Sscanf(l, "end batch %d(%d)", &b, &items); e == nil {
					ends[b]++
					ended = append(ended, b)
					if failed := strings.Contains(l, "err=true"); failed != (failAt > 0 && b >= failAt) {
						t.Errorf("%s: want err=%v", l, !failed)
					}
				}
				if _, e := fmt.Sscanf(l, "start write %d", &b); e == nil && !strings.HasSuffix(l, fmt.Sprintf(`<- "batch %d(10)"`, b)) {
					t.Errorf("%s: not in its batch's context", l)
				}
			}
			if !maps.Equal(starts, ends) {
				t.Fatalf("batch starts %v, ends %v", starts, ends)
			}
			if !slices.IsSorted(ended) {
				t.Errorf("batches ended in the order %v", ended)
			}
			// All ten; or 1..3 and perhaps 4, enriched during 3's write.
			if n := len(ended); (failAt == 0 && n != 10) || (failAt > 0 && (n < failAt || n > failAt+1)) {
				t.Errorf("batches ended: %v", ended)
			}
		})
	}
}

// TestOverlapPartitioned runs a partitioned run overlapped: each partition
// writes its batches in order, one at a time, every item once, within the
// total concurrency.
func TestOverlapPartitioned(t *testing.T) {
	t.Parallel()
	enr := batchenrichtest.NewEnricher(func(ctx context.Context, i item) (int, error) {
		time.Sleep(200 * time.Microsecond)
		return 2 * int(i), nil
	})
	sink := newPartSink()
	store := batchenrichtest.NewCheckpoints()
	pr := partitioned(t, 1000, 4, 10, batchenrich.Options{BatchSize: 30, Overlap: true, Durable: &batchenrich.Durable{Store: store, RunKey: "run"}}, enr, sink)
	rep, err := pr.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sink.err != nil {
		t.Fatal(sink.err)
	}
	for i := range 1000 {
		if n := sink.items[item(i)]; n != 1 {
			t.Fatalf("item %d written %d times", i, n)
		}
	}
	if got := enr.MaxInFlight(); got > 10 {
		t.Errorf("max in flight over partitions = %d, want ≤ 10 (the total)", got)
	}
	for p := range 4 {
		if cp, _ := store.Load(context.Background(), fmt.Sprintf("run#p%d", p)); !cp.Done || cp.Batch != 9 {
			t.Errorf("checkpoint of partition %d = %+v", p, cp)
		}
	}
	if rep.BatchesRun != 36 || rep.Written != 1000 {
		t.Errorf("report: %d batches, %d written", rep.BatchesRun, rep.Written)
	}
}

// TestOverlapCrossesTheBarrier checks that batch n+1's enrichment starts
// while batch n's is still under way: the last item of each batch waits
// until an item of the next batch has started, which a barrier between
// the batches' enrichments would never let happen.
func TestOverlapCrossesTheBarrier(t *testing.T) {
	t.Parallel()
	const n, size = 60, 10
	var starts batchStarts
	f := newFixture(n)
	f.enr.Fn = func(ctx context.Context, it item) (int, error) {
		b := int(it)/size + 1
		starts.mark(b)
		if int(it)%size == size-1 && b < n/size {
			select {
			case <-starts.of(b + 1):
			case <-time.After(hangGuard):
				return 0, batchenrich.Fatal(fmt.Errorf("batch %d's enrichment never started during batch %d's", b+1, b))
			}
		}
		return double(ctx, it)
	}
	rep, err := f.run(t, context.Background(), batchenrich.Options{BatchSize: size, Concurrency: 4, Overlap: true})
	if err != nil {
		t.Fatal(err)
	}
	f.checkWritten(t, 0, n, size, 1)
	if got := f.enr.MaxInFlight(); got > 4 {
		t.Errorf("%d enrichments in flight, concurrency 4", got)
	}
	if rep.BatchesRun != n/size || rep.Written != n {
		t.Fatalf("report = %+v", rep)
	}
}

// TestOverlapStopOrder stops an overlapped run in batch 2 or 3 while both
// are being enriched: the first batch to stop the run is the one Run
// names, every batch before it is written with its checkpoint, no batch
// after it is written, and the Report lists the batches up to it.
func TestOverlapStopOrder(t *testing.T) {
	t.Parallel()
	const size = 10
	// await waits for ch: a guard against a hang, not a timing assertion.
	await := func(ch <-chan struct{}) {
		select {
		case <-ch:
		case <-time.After(hangGuard):
		}
	}
	for _, tc := range []struct {
		name string
		// fails says whether item it fails (StopAfterFailures 1), once the signals
		// it waits for came: batch 3 started, item 25 failed.
		fails  func(it item, started3, failed25 <-chan struct{}) bool
		hold3  bool // batch 3's items wait for their context to end
		stopAt int  // the batch Run names
	}{
		{
			name: "batch 3 fails while batch 2 is enriched",
			fails: func(it item, started3, failed25 <-chan struct{}) bool {
				if it == 19 {
					await(failed25)
				}
				return it == 25
			},
			stopAt: 3,
		},
		{
			name: "batch 2 fails while batch 3 is enriched",
			fails: func(it item, started3, failed25 <-chan struct{}) bool {
				if it == 19 {
					await(started3)
					return true
				}
				return false
			},
			hold3: true, stopAt: 2,
		},
		{
			name: "batch 3 fails, then batch 2",
			fails: func(it item, started3, failed25 <-chan struct{}) bool {
				if it == 19 {
					await(failed25)
				}
				return it == 19 || it == 25
			},
			stopAt: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			started3, failed25 := make(chan struct{}), make(chan struct{})
			var once3 sync.Once
			var cancelled, later sync.Map
			f := newFixture(100)
			f.enr.Fn = func(ctx context.Context, it item) (int, error) {
				switch b := int(it)/size + 1; {
				case b == 3:
					once3.Do(func() { close(started3) })
					if tc.hold3 {
						return awaitCancel(ctx, it, &cancelled)
					}
				case b > 3:
					later.Store(it, true)
				}
				if tc.fails(it, started3, failed25) {
					if it == 25 {
						defer close(failed25)
					}
					return 0, fmt.Errorf("item %d fails", it)
				}
				return double(ctx, it)
			}
			store := batchenrichtest.NewCheckpoints()
			rep, err := f.run(t, context.Background(), batchenrich.Options{
				BatchSize:         size,
				Concurrency:       4,
				Overlap:           true,
				StopAfterFailures: 1,
				Durable: &batchenrich.Durable{
					Store:  store,
					RunKey: "k",
				},
			})
			var be *batchenrich.BatchError
			if !errors.As(err, &be) || be.Batch != tc.stopAt || be.Stage != batchenrich.StageEnrich || !errors.Is(err, batchenrich.ErrTooManyFailures) {
				t.Fatalf("err = %v, want batch %d's failure", err, tc.stopAt)
			}
			f.checkWritten(t, 0, (tc.stopAt-1)*size, size, 1)
			if cp, _ := store.Load(context.Background(), "k"); cp.Batch != tc.stopAt-1 {
				t.Fatalf("checkpoint = %+v, want batch %d", cp, tc.stopAt-1)
			}
			if rep.BatchesRun != tc.stopAt-1 || len(rep.Batches) != tc.stopAt || rep.Batches[tc.stopAt-1].Number != tc.stopAt {
				t.Fatalf("report = %+v", rep)
			}
			if tc.hold3 {
				checkCancelled(t, &cancelled)
			}
			if tc.stopAt == 2 {
				later.Range(func(k, _ any) bool { t.Errorf("item %v of batch 4 or later enriched", k); return false })
			}
		})
	}
}

// batchStarts signals, per batch number, that the batch's first enrichment
// has started. The zero value is ready to use.
type batchStarts struct {
	mu sync.Mutex
	ch map[int]chan struct{}
}

// of returns the channel closed once batch b has started.
func (s *batchStarts) of(b int) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = map[int]chan struct{}{}
	}
	if s.ch[b] == nil {
		s.ch[b] = make(chan struct{})
	}
	return s.ch[b]
}

// mark records that batch b has started; later calls do nothing.
func (s *batchStarts) mark(b int) {
	ch := s.of(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}
