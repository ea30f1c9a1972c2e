package batchenrichtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich"
)

// SourceHarness describes a batchenrich.Source implementation to
// TestSource.
type SourceHarness[T any] struct {
	// New stores n items (n may be 0) in a fresh backing store and
	// returns a function opening a Source over them, and the items in
	// the order the Source must return them. Each call of open must
	// return a new Source over the same data, as a restarted process
	// would get. Required.
	New func(t *testing.T, n int) (open func() batchenrich.Source[T], want []T)

	// Equal reports whether two items are the same. Nil means
	// reflect.DeepEqual.
	Equal func(a, b T) bool
}

// TestSource checks that a Source keeps the batchenrich.Source contract:
// windows of at most limit items in a stable order, a short window only at
// the end, an empty window after it, items that later reads leave intact,
// cursors that can be read again and that survive a restart, and an error
// for a cancelled context.
func TestSource[T any](t *testing.T, h SourceHarness[T]) {
	t.Helper()
	if h.New == nil {
		t.Fatal("batchenrichtest: SourceHarness.New is nil")
	}
	eq := h.Equal
	if eq == nil {
		eq = func(a, b T) bool { return reflect.DeepEqual(a, b) }
	}
	ctx := context.Background()

	t.Run("Empty", func(t *testing.T) {
		open, _ := h.New(t, 0)
		items, _, err := open().Read(ctx, "", 5)
		if err != nil || len(items) != 0 {
			t.Fatalf("Read of an empty source = %d items, %v; want 0, nil", len(items), err)
		}
	})

	t.Run("Windows", func(t *testing.T) {
		const n = 23
		open, want := h.New(t, n)
		if len(want) != n {
			t.Fatalf("harness returned %d items, want %d", len(want), n)
		}
		for _, limit := range []int{1, 5, n, 50} {
			src := open()
			var got []T
			var c batchenrich.Cursor
			for call := 0; ; call++ {
				if call > n+1 {
					t.Fatalf("limit %d: source never ended", limit)
				}
				items, next, err := src.Read(ctx, c, limit)
				if err != nil {
					t.Fatalf("limit %d: Read(%q): %v", limit, c, err)
				}
				if len(items) > limit {
					t.Fatalf("limit %d: Read returned %d items", limit, len(items))
				}
				got = append(got, items...)
				if len(items) < limit {
					// Exhausted: reading on gives nothing.
					more, _, err := src.Read(ctx, next, limit)
					if err != nil || len(more) != 0 {
						t.Fatalf("limit %d: Read after the end = %d items, %v; want 0, nil", limit, len(more), err)
					}
					break
				}
				c = next
			}
			if err := sameItems(got, want, eq); err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
		}
	})

	t.Run("ItemsStayIntact", func(t *testing.T) {
		// The Runner keeps a window's items (not its slice, which it
		// copies) while later windows are read.
		open, want := h.New(t, 12)
		src := open()
		w1, c1, err := src.Read(ctx, "", 4)
		if err != nil {
			t.Fatal(err)
		}
		w1 = slices.Clone(w1)
		if _, _, err := src.Read(ctx, c1, 4); err != nil {
			t.Fatal(err)
		}
		if err := sameItems(w1, want[:4], eq); err != nil {
			t.Fatalf("first window after later reads: %v (a Source must not change items it returned)", err)
		}
	})

	t.Run("CursorsRepeatAndSurviveRestart", func(t *testing.T) {
		open, want := h.New(t, 12)
		a := open()
		_, c1, err := a.Read(ctx, "", 4)
		if err != nil {
			t.Fatal(err)
		}
		w2, c2, err := a.Read(ctx, c1, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameItems(w2, want[4:8], eq); err != nil {
			t.Fatalf("second window: %v", err)
		}
		b := open() // as after a restart
		again, c2b, err := b.Read(ctx, c1, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameItems(again, w2, eq); err != nil {
			t.Fatalf("same cursor read again by a new Source: %v", err)
		}
		if c2b != c2 {
			t.Errorf("same window gave cursors %q and %q", c2, c2b)
		}
		w3, _, err := b.Read(ctx, c2, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameItems(w3, want[8:12], eq); err != nil {
			t.Fatalf("third window after restart: %v", err)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		open, _ := h.New(t, 3)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := open().Read(cctx, "", 2); err == nil {
			t.Fatal("Read with a cancelled context returned no error")
		}
	})
}

func sameItems[T any](got, want []T, eq func(a, b T) bool) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d items, want %d", len(got), len(want))
	}
	for i := range got {
		if !eq(got[i], want[i]) {
			return fmt.Errorf("item %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	return nil
}

// Stored is what a Sink under test holds for one item, as reported by a
// SinkFixture.
type Stored struct {
	Key    string // the item's key, as SinkHarness.Key gives it
	Batch  int    // the batch number stored with it
	Failed bool   // stored as a failure (Result.Err was set)
}

// SinkFixture is a Sink over fresh, empty storage.
type SinkFixture[T, R any] struct {
	// Sink is the Sink under test. Required.
	Sink batchenrich.Sink[T, R]
	// Stored lists what the storage holds, one entry per key, in any
	// order. Required.
	Stored func(t *testing.T) []Stored
	// Checkpoints, if set, is a store that Sink (then a
	// batchenrich.CheckpointSink) commits atomically with.
	Checkpoints batchenrich.CheckpointStore
}

// SinkHarness describes a batchenrich.Sink implementation to TestSink.
type SinkHarness[T, R any] struct {
	// New returns a Sink over fresh, empty storage. Required.
	New func(t *testing.T) SinkFixture[T, R]
	// Item returns the i-th test item; distinct i give distinct keys.
	// Required.
	Item func(i int) T
	// Value returns the enrichment result of the i-th item. Required.
	Value func(i int) R
	// Key names an item as Stored.Key does. Required.
	Key func(item T) string
	// Poison, optional but recommended, returns an item that the Sink
	// fails to write (a value its storage or Row function rejects), with
	// a key distinct from every Item's. TestSink puts one in the middle of a batch
	// to check that a failed write stores nothing of the batch. Without
	// it that check is skipped.
	Poison func(i int) T
}

// TestSink checks that a Sink keeps the batchenrich.Sink contract: every
// result stored, failed ones included and marked, with its batch number;
// writing a batch again leaves the same rows, and where the second write
// differs (an item failed the first time and not the second, or the other
// way round) the last write wins; a write with a cancelled context stores
// nothing; a write that fails in the middle of a batch stores nothing of it
// (with SinkHarness.Poison); and, for a CheckpointSink, that it refuses a
// foreign store with ErrCheckpointUnsupported having written nothing,
// commits a batch with its checkpoint, and neither when the write fails.
func TestSink[T, R any](t *testing.T, h SinkHarness[T, R]) {
	t.Helper()
	if h.New == nil || h.Item == nil || h.Value == nil || h.Key == nil {
		t.Fatal("batchenrichtest: SinkHarness needs New, Item, Value and Key")
	}
	ctx := context.Background()
	batch := func(num, from, to int, failed ...int) batchenrich.Batch[T, R] {
		b := batchenrich.Batch[T, R]{Number: num}
		for i := from; i < to; i++ {
			r := batchenrich.Result[T, R]{Index: i - from, Item: h.Item(i)}
			if slices.Contains(failed, i) {
				r.Err = &batchenrich.ItemError{Batch: num, Index: i - from, Key: h.Key(r.Item), Err: errors.New("enrichment failed")}
			} else {
				r.Value = h.Value(i)
			}
			b.Results = append(b.Results, r)
		}
		return b
	}
	expect := func(num, from, to int, failed ...int) []Stored {
		var out []Stored
		for i := from; i < to; i++ {
			out = append(out, Stored{Key: h.Key(h.Item(i)), Batch: num, Failed: slices.Contains(failed, i)})
		}
		return out
	}
	check := func(t *testing.T, f SinkFixture[T, R], want []Stored) {
		t.Helper()
		got := f.Stored(t)
		if err := sameStored(got, want); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("WritesEveryResult", func(t *testing.T) {
		f := h.New(t)
		if err := f.Sink.Write(ctx, batch(1, 0, 10, 3, 7)); err != nil {
			t.Fatal(err)
		}
		check(t, f, expect(1, 0, 10, 3, 7))
	})

	t.Run("IdempotentRewrite", func(t *testing.T) {
		f := h.New(t)
		b := batch(1, 0, 8, 2)
		for range 2 {
			if err := f.Sink.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		check(t, f, expect(1, 0, 8, 2))
	})

	t.Run("LastWriteWins", func(t *testing.T) {
		f := h.New(t)
		if err := f.Sink.Write(ctx, batch(1, 0, 8, 2, 5)); err != nil {
			t.Fatal(err)
		}
		// Written again (a resumed or replayed batch): item 2 now
		// enriched, item 5 still failed, item 6 failed this time.
		if err := f.Sink.Write(ctx, batch(1, 0, 8, 5, 6)); err != nil {
			t.Fatal(err)
		}
		check(t, f, expect(1, 0, 8, 5, 6))
	})

	t.Run("FailedWriteStoresNothing", func(t *testing.T) {
		if h.Poison == nil {
			t.Skip("SinkHarness.Poison not set")
		}
		f := h.New(t)
		if err := f.Sink.Write(ctx, batch(1, 0, 4)); err != nil {
			t.Fatal(err)
		}
		poisoned := func(num int) batchenrich.Batch[T, R] {
			b := batch(num, 4, 24, 6)
			b.Results[10].Item = h.Poison(14)
			return b
		}
		if err := f.Sink.Write(ctx, poisoned(2)); err == nil {
			t.Fatal("Write of a batch with a poison item returned no error")
		}
		check(t, f, expect(1, 0, 4))
		if cs, ok := f.Sink.(batchenrich.CheckpointSink[T, R]); ok && f.Checkpoints != nil {
			before, err := f.Checkpoints.Load(ctx, "conformance")
			if err != nil {
				t.Fatal(err)
			}
			cp := batchenrich.Checkpoint{RunKey: "conformance", Batch: 2, Cursor: "c2"}
			if err := cs.WriteCheckpointed(ctx, poisoned(2), f.Checkpoints, cp); err == nil {
				t.Fatal("WriteCheckpointed of a batch with a poison item returned no error")
			}
			check(t, f, expect(1, 0, 4))
			if after, err := f.Checkpoints.Load(ctx, "conformance"); err != nil || after != before {
				t.Fatalf("checkpoint after a failed WriteCheckpointed = %+v, %v; want %+v", after, err, before)
			}
		}
	})

	t.Run("BatchesAccumulate", func(t *testing.T) {
		f := h.New(t)
		if err := f.Sink.Write(ctx, batch(1, 0, 5)); err != nil {
			t.Fatal(err)
		}
		if err := f.Sink.Write(ctx, batch(2, 5, 9, 6)); err != nil {
			t.Fatal(err)
		}
		check(t, f, append(expect(1, 0, 5), expect(2, 5, 9, 6)...))
	})

	t.Run("CancelledContextWritesNothing", func(t *testing.T) {
		f := h.New(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := f.Sink.Write(cctx, batch(1, 0, 5)); err == nil {
			t.Fatal("Write with a cancelled context returned no error")
		}
		check(t, f, nil)
	})

	t.Run("Checkpointed", func(t *testing.T) {
		f := h.New(t)
		cs, ok := f.Sink.(batchenrich.CheckpointSink[T, R])
		if !ok {
			if f.Checkpoints != nil {
				t.Fatal("SinkFixture.Checkpoints is set but the Sink is not a CheckpointSink")
			}
			t.Skip("not a CheckpointSink")
		}
		cp := batchenrich.Checkpoint{RunKey: "conformance", Batch: 1, Cursor: "c1"}
		err := cs.WriteCheckpointed(ctx, batch(1, 0, 4), NewCheckpoints(), cp)
		if !errors.Is(err, batchenrich.ErrCheckpointUnsupported) {
			t.Fatalf("WriteCheckpointed with a foreign store: err = %v, want ErrCheckpointUnsupported", err)
		}
		check(t, f, nil)
		if f.Checkpoints == nil {
			return
		}
		if err := cs.WriteCheckpointed(ctx, batch(1, 0, 4, 1), f.Checkpoints, cp); err != nil {
			t.Fatal(err)
		}
		check(t, f, expect(1, 0, 4, 1))
		got, err := f.Checkpoints.Load(ctx, cp.RunKey)
		if err != nil {
			t.Fatal(err)
		}
		if got != cp {
			t.Fatalf("checkpoint = %+v, want %+v", got, cp)
		}
	})
}

func sameStored(got, want []Stored) error {
	sortStored := func(s []Stored) []Stored {
		s = slices.Clone(s)
		slices.SortFunc(s, func(a, b Stored) int { return strings.Compare(a.Key, b.Key) })
		return s
	}
	g, w := sortStored(got), sortStored(want)
	if !slices.Equal(g, w) {
		return fmt.Errorf("stored:\n got %+v\nwant %+v", g, w)
	}
	return nil
}

// CheckpointHarness describes a batchenrich.CheckpointStore implementation
// to TestCheckpointStore.
type CheckpointHarness struct {
	// New prepares fresh, empty storage and returns a function opening a
	// store over it. Each call of open must return a new store instance
	// over the same storage, as another process would get (for a
	// database, a new store on the same database). Required.
	New func(t *testing.T) (open func() batchenrich.CheckpointStore)
}

// TestCheckpointStore checks that a CheckpointStore keeps its contract:
// a zero checkpoint for an unknown key; Save then Load round trips, every
// field included (Partitions, BatchSize, Fingerprint), the checkpoint
// {Batch: 0, Done: true} that a run over an empty Source saves too; keys
// are independent; another instance over the same storage sees what was
// saved; Load and Save with a cancelled context return an error and Save
// then saves nothing. If the store is a batchenrich.Locker, it checks that
// a lock is exclusive, per key, across two instances over the same
// storage, and free again after unlock.
func TestCheckpointStore(t *testing.T, h CheckpointHarness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("batchenrichtest: CheckpointHarness.New is nil")
	}
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	load := func(t *testing.T, s batchenrich.CheckpointStore, key string) batchenrich.Checkpoint {
		t.Helper()
		cp, err := s.Load(ctx, key)
		if err != nil {
			t.Fatalf("Load(%q): %v", key, err)
		}
		return cp
	}

	t.Run("SaveLoad", func(t *testing.T) {
		open := h.New(t)
		s := open()
		if cp := load(t, s, "run-a"); cp != (batchenrich.Checkpoint{RunKey: "run-a"}) {
			t.Fatalf("Load of an unknown key = %+v, want a zero checkpoint with its RunKey", cp)
		}
		for _, want := range []batchenrich.Checkpoint{
			{RunKey: "run-a", Batch: 1, Cursor: `["e1",10]`, BatchSize: 10},
			{RunKey: "run-a", Batch: 2, Cursor: `["e1",20]`, BatchSize: 10, Fingerprint: "cfg-v1"},
			{RunKey: "run-a", Batch: 3, Cursor: `["e1",25]`, Done: true, BatchSize: 5, Fingerprint: "cfg-v2"},
			{RunKey: "run-a#p2", Batch: 4, Cursor: `["e1",40]`, Partitions: 8, BatchSize: 10},
			{RunKey: "run-a#p2", Partitions: 8},
			{RunKey: "run-empty", Batch: 0, Done: true, BatchSize: 100}, // a run over an empty Source
		} {
			if err := s.Save(ctx, want); err != nil {
				t.Fatalf("Save(%+v): %v", want, err)
			}
			if got := load(t, s, want.RunKey); got != want {
				t.Fatalf("Load after Save = %+v, want %+v", got, want)
			}
			if got := load(t, open(), want.RunKey); got != want {
				t.Fatalf("Load by another instance after Save = %+v, want %+v", got, want)
			}
		}
		if other := load(t, s, "run-b"); other != (batchenrich.Checkpoint{RunKey: "run-b"}) {
			t.Fatalf("another key = %+v; want a zero checkpoint", other)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := h.New(t)()
		if _, err := s.Load(cancelled, "run-a"); err == nil {
			t.Error("Load with a cancelled context returned no error")
		}
		if err := s.Save(cancelled, batchenrich.Checkpoint{RunKey: "run-a", Batch: 1, Cursor: "x"}); err == nil {
			t.Error("Save with a cancelled context returned no error")
		}
		if cp := load(t, s, "run-a"); cp != (batchenrich.Checkpoint{RunKey: "run-a"}) {
			t.Fatalf("Save with a cancelled context saved %+v", cp)
		}
	})

	t.Run("Lock", func(t *testing.T) {
		open := h.New(t)
		s := open()
		l, ok := s.(batchenrich.Locker)
		if !ok {
			t.Skip("not a Locker")
		}
		l2 := open().(batchenrich.Locker) // another process's store
		unlock, ok, err := l.TryLock(ctx, "run-a")
		if err != nil || !ok || unlock == nil {
			t.Fatalf("TryLock on a free key = %v, %v", ok, err)
		}
		if _, ok, err := l.TryLock(ctx, "run-a"); ok || (err != nil && !errors.Is(err, batchenrich.ErrRunLocked)) {
			t.Fatalf("TryLock on a held key = %v, %v; want false, and nil or an error wrapping ErrRunLocked", ok, err)
		}
		if _, ok, err := l2.TryLock(ctx, "run-a"); ok || (err != nil && !errors.Is(err, batchenrich.ErrRunLocked)) {
			t.Fatalf("TryLock on a held key by another instance = %v, %v; want false, and nil or an error wrapping ErrRunLocked", ok, err)
		}
		unlockB, ok, err := l2.TryLock(ctx, "run-b")
		if err != nil || !ok {
			t.Fatalf("TryLock on another key by another instance = %v, %v", ok, err)
		}
		// Saving under a held lock works.
		if err := s.Save(ctx, batchenrich.Checkpoint{RunKey: "run-a", Batch: 1, Cursor: "x"}); err != nil {
			t.Fatalf("Save while holding the lock: %v", err)
		}
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
		again, ok, err := l2.TryLock(ctx, "run-a")
		if err != nil || !ok {
			t.Fatalf("TryLock by another instance after unlock = %v, %v", ok, err)
		}
		if err := again(); err != nil {
			t.Fatal(err)
		}
		if err := unlockB(); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := l.TryLock(cancelled, "run-c"); err == nil || ok {
			t.Fatalf("TryLock with a cancelled context = %v, %v; want an error", ok, err)
		}
	})
}
