package batchenrichtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// The conformance suites must catch deliberately broken implementations.
// Each is run by TestBroken in a child process (a suite failing is a
// failed test), and the child must fail in the named subtest.
const brokenEnv = "BATCHENRICHTEST_BROKEN"

func TestSuitesCatchBrokenImplementations(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child")
	}
	t.Parallel()
	for _, c := range []struct{ impl, failing string }{
		{"SinkWritesRowByRow", "FailedWriteStoresNothing"},
		{"SinkKeepsFirstWrite", "LastWriteWins"},
		{"StoreLocksPerInstance", "Lock"},
		{"StoreIgnoresCtx", "CancelledContext"},
		{"StoreDropsEmptyDone", "SaveLoad"},
		{"SourceReusesItems", "ItemsStayIntact"},
	} {
		t.Run(c.impl, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBroken$/^"+c.impl+"$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"=1")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a broken implementation:\n%s", out)
			}
			if want := "--- FAIL: TestBroken/" + c.impl + "/" + c.failing; !strings.Contains(string(out), want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
		})
	}
}

// TestBroken runs the suites against broken implementations, in the child
// process only.
func TestBroken(t *testing.T) {
	if os.Getenv(brokenEnv) == "" {
		t.Skip("run by TestSuitesCatchBrokenImplementations")
	}
	t.Run("SinkWritesRowByRow", func(t *testing.T) {
		batchenrichtest.TestSink(t, mapSinkHarness(func() *mapSink { return &mapSink{rowByRow: true} }))
	})
	t.Run("SinkKeepsFirstWrite", func(t *testing.T) {
		batchenrichtest.TestSink(t, mapSinkHarness(func() *mapSink { return &mapSink{keepFirst: true} }))
	})
	t.Run("StoreLocksPerInstance", func(t *testing.T) {
		batchenrichtest.TestCheckpointStore(t, storeHarness(func(s *memStore) { s.lockPerInstance = true }))
	})
	t.Run("StoreIgnoresCtx", func(t *testing.T) {
		batchenrichtest.TestCheckpointStore(t, storeHarness(func(s *memStore) { s.ignoreCtx = true }))
	})
	t.Run("StoreDropsEmptyDone", func(t *testing.T) {
		batchenrichtest.TestCheckpointStore(t, storeHarness(func(s *memStore) { s.dropBatch0 = true }))
	})
	t.Run("SourceReusesItems", func(t *testing.T) {
		batchenrichtest.TestSource(t, batchenrichtest.SourceHarness[*int]{
			New: func(t *testing.T, n int) (func() batchenrich.Source[*int], []*int) {
				want := make([]*int, n)
				for i := range want {
					v := i
					want[i] = &v
				}
				return func() batchenrich.Source[*int] { return &reusingSource{n: n} }, want
			},
		})
	})
}

// The control: the same implementations, unbroken, pass.
func TestUnbrokenImplementationsPass(t *testing.T) {
	batchenrichtest.TestSink(t, mapSinkHarness(func() *mapSink { return &mapSink{} }))
	batchenrichtest.TestCheckpointStore(t, storeHarness(func(*memStore) {}))
}

// mapSink stores one row per item (ints; a negative one is poison).
type mapSink struct {
	rowByRow, keepFirst bool

	mu   sync.Mutex
	rows map[int]batchenrichtest.Stored
}

func (s *mapSink) Write(ctx context.Context, b batchenrich.Batch[int, string]) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rows == nil {
		s.rows = map[int]batchenrichtest.Stored{}
	}
	staged := map[int]batchenrichtest.Stored{}
	for _, r := range b.Results {
		if r.Item < 0 {
			return errors.New("poison")
		}
		if _, ok := s.rows[r.Item]; ok && s.keepFirst {
			continue
		}
		row := batchenrichtest.Stored{Key: fmt.Sprint(r.Item), Batch: b.Number, Failed: r.Err != nil}
		if s.rowByRow {
			s.rows[r.Item] = row
		} else {
			staged[r.Item] = row
		}
	}
	for k, v := range staged {
		s.rows[k] = v
	}
	return nil
}

func mapSinkHarness(newSink func() *mapSink) batchenrichtest.SinkHarness[int, string] {
	return batchenrichtest.SinkHarness[int, string]{
		New: func(t *testing.T) batchenrichtest.SinkFixture[int, string] {
			s := newSink()
			return batchenrichtest.SinkFixture[int, string]{Sink: s, Stored: func(t *testing.T) []batchenrichtest.Stored {
				s.mu.Lock()
				defer s.mu.Unlock()
				var out []batchenrichtest.Stored
				for _, r := range s.rows {
					out = append(out, r)
				}
				return out
			}}
		},
		Item:   func(i int) int { return i },
		Value:  func(i int) string { return fmt.Sprint(i) },
		Key:    func(i int) string { return fmt.Sprint(i) },
		Poison: func(i int) int { return -1 - i },
	}
}

// memStorage is the storage shared by memStore instances.
type memStorage struct {
	mu     sync.Mutex
	saved  map[string]batchenrich.Checkpoint
	locked map[string]bool
}

// memStore is a CheckpointStore and Locker over a memStorage.
type memStore struct {
	st                                     *memStorage
	lockPerInstance, ignoreCtx, dropBatch0 bool
	own                                    map[string]bool // locks, when per instance
}

func storeHarness(brk func(*memStore)) batchenrichtest.CheckpointHarness {
	return batchenrichtest.CheckpointHarness{New: func(t *testing.T) func() batchenrich.CheckpointStore {
		st := &memStorage{saved: map[string]batchenrich.Checkpoint{}, locked: map[string]bool{}}
		return func() batchenrich.CheckpointStore {
			s := &memStore{st: st, own: map[string]bool{}}
			brk(s)
			return s
		}
	}}
}

func (s *memStore) Load(ctx context.Context, key string) (batchenrich.Checkpoint, error) {
	if err := ctx.Err(); err != nil && !s.ignoreCtx {
		return batchenrich.Checkpoint{}, err
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if cp, ok := s.st.saved[key]; ok {
		return cp, nil
	}
	return batchenrich.Checkpoint{RunKey: key}, nil
}

func (s *memStore) Save(ctx context.Context, cp batchenrich.Checkpoint) error {
	if err := ctx.Err(); err != nil && !s.ignoreCtx {
		return err
	}
	if cp.Batch == 0 && s.dropBatch0 {
		return nil // "nothing committed yet"
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.saved[cp.RunKey] = cp
	return nil
}

func (s *memStore) TryLock(ctx context.Context, key string) (func() error, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	locked := s.st.locked
	if s.lockPerInstance {
		locked = s.own
	}
	if locked[key] {
		return nil, false, nil
	}
	locked[key] = true
	return func() error {
		s.st.mu.Lock()
		defer s.st.mu.Unlock()
		delete(locked, key)
		return nil
	}, true, nil
}

// reusingSource returns pointers into one buffer it overwrites on every
// Read.
type reusingSource struct {
	n   int
	buf [64]int
}

func (s *reusingSource) Read(ctx context.Context, after batchenrich.Cursor, limit int) ([]*int, batchenrich.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return nil, after, err
	}
	start := 0
	if after != "" {
		fmt.Sscan(string(after), &start)
	}
	end := min(start+limit, s.n)
	out := make([]*int, 0, end-start)
	for i := start; i < end; i++ {
		s.buf[i-start] = i
		out = append(out, &s.buf[i-start])
	}
	return out, batchenrich.Cursor(fmt.Sprint(end)), nil
}
