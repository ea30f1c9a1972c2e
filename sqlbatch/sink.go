package sqlbatch

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// RowFunc maps one result to the values of one row, in the order of the
// target's Columns. It sees failed results too (r.Err != nil), and must
// return a row for them: a Sink never drops a result.
type RowFunc[T, R any] func(r batchenrich.Result[T, R]) ([]any, error)

// SinkConfig configures a Sink. Names of tables and columns are quoted, so
// give them exactly as stored. Values are always bound parameters (or
// COPY data), never SQL text.
//
// Values may be anything the driver accepts: integers, floats, strings,
// []byte, bool, time.Time, nil for NULL, and driver.Valuer
// implementations such as JSON, sql.NullString or a UUID type. A []byte
// (json.RawMessage included, or a driver.Valuer's []byte) given for a
// text, varchar, json, jsonb or xml column (in SQLite, a column of TEXT
// affinity or a type naming JSON) is converted to a string, as it means
// text there (sent as it is, PostgreSQL would store it as bytea text,
// "\x7b…", and SQLite as a BLOB); bytes that are not valid UTF-8 are
// refused with an error naming the column. For bytea and BLOB columns,
// []byte is binary data, as usual.
type SinkConfig[T, R any] struct {
	// Table is the table to write, optionally "schema.table". Required.
	Table string

	// Key lists the columns identifying a row, which must carry a
	// primary key or unique index: writing a row whose key exists
	// updates it (INSERT … ON CONFLICT (Key) DO UPDATE). This is what
	// makes a rewritten batch leave the same rows. Required; each must
	// be in Columns. Check refuses a Key that no primary key or unique
	// index covers exactly.
	Key []string

	// Columns lists the columns Row fills, in order. Required. Do not
	// list BatchColumn.
	Columns []string

	// Row maps a result to the values of Columns. Required. Unless
	// Failures is set it also maps failed results, which it can store
	// as invalid rows, e.g. is_valid = false and validation_error =
	// r.Err.Error().
	Row RowFunc[T, R]

	// BatchColumn, if set, names a column that receives the batch number
	// of each row. A replay's batch (batchenrich.Batch.Replay set) leaves
	// it as stored: the upsert updates every other column.
	BatchColumn string

	// Failures, if set, sends failed results to another table instead
	// of Row and Table.
	Failures *FailureTable[T, R]
}

// FailureTable is where a Sink stores failed results when they do not go
// to the main table. Its fields mean what they do in SinkConfig; Row sees
// only results with a non-nil Err.
//
// When a batch is rewritten (after a crash, without exactly-once
// checkpoints) and an item that failed the first time now succeeds, its
// old failure row stays: remove it yourself if that matters, for example
// in WriteTx's transaction.
type FailureTable[T, R any] struct {
	Table       string
	Key         []string
	Columns     []string
	Row         RowFunc[T, R]
	BatchColumn string
}

// Sink is a batchenrich.Sink and batchenrich.CheckpointSink writing each
// batch to SQL tables in one transaction, in bulk, as an upsert on a key.
// It is safe for concurrent use.
type Sink[T, R any] struct {
	db       *sqlx.DB
	d        sqldialect.Dialect
	main     *target[T, R]
	failures *target[T, R]

	// pg is the bulk strategy on PostgreSQL; tests and benchmarks change
	// it to compare.
	pg pgStrategy
	// pgBulk, if set, replaces the PostgreSQL strategy (benchmarks).
	pgBulk func(ctx context.Context, tx *sqlx.Tx, t *target[T, R], rows [][]any) error
	// chunkRows, if positive, caps the rows per statement (tests).
	chunkRows int
	// afterStatement, if set, runs after each statement of a write
	// (tests use it to break the connection mid-batch).
	afterStatement func(ctx context.Context, tx *sqlx.Tx) error
	// conflicted is set once an optimistic direct COPY met an existing
	// key; the Sink then goes straight to the upsert (see writeDirect).
	conflicted atomic.Bool
	// replay, if set, writes the batches of replays (see replay.go).
	replay *Sink[T, R]

	// pgxConns maps a transaction this Sink began on pgx to its
	// connection, through which it COPYs (see pgx.go).
	pgxConns sync.Map

	// config names the configuration in errors ("SinkConfig" if empty).
	config string

	// checked runs Check until it succeeds (see check.go).
	checked onceOK
}

// target is one table a Sink writes.
type target[T, R any] struct {
	name     string   // as configured, for messages
	ident    []string // name split into schema and table, unquoted
	table    string   // quoted
	names    []string // cols as configured
	keyNames []string // key as configured
	text     []int    // positions in cols of text and JSON columns (Check)
	fields   []string // struct field of each column, for messages (NewStructSink)
	cols     []string // quoted; the batch column last, if any
	ncol     int      // columns Row fills
	keyIdx   []int    // positions of the key columns in cols
	key      []string // quoted key columns
	conflict string   // " ON CONFLICT …" clause
	row      RowFunc[T, R]
	batchCol bool

	mu      sync.Mutex
	pgTypes []string // column types, for the unnest strategy
}

// NewSink returns a Sink writing to db as cfg says. It validates cfg and
// returns a *batchenrich.ConfigError naming the first bad field. It does not touch the
// database: Check compares cfg with the catalog (tables, columns, the
// unique index behind Key), and runs before the first write if nobody
// called it earlier.
func NewSink[T, R any](db *sqlx.DB, cfg SinkConfig[T, R]) (_ *Sink[T, R], err error) {
	defer func() { err = inConfig("SinkConfig", err) }()
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	s := &Sink[T, R]{db: db, d: d, pg: defaultPGStrategy}
	if s.main, err = newTarget(d, "", cfg.Table, cfg.Key, cfg.Columns, cfg.Row, cfg.BatchColumn); err != nil {
		return nil, err
	}
	if f := cfg.Failures; f != nil {
		if s.failures, err = newTarget(d, "Failures.", f.Table, f.Key, f.Columns, f.Row, f.BatchColumn); err != nil {
			return nil, err
		}
	}
	if s.replay, err = s.replaySink(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

func newTarget[T, R any](d sqldialect.Dialect, prefix, table string, key, cols []string, row RowFunc[T, R], batchCol string) (*target[T, R], error) {
	t := &target[T, R]{name: table, row: row, ncol: len(cols)}
	var err error
	if t.table, err = quoteTable(d, prefix+"Table", table); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, configErr(prefix+"Columns", "required", nil)
	}
	all := slices.Clone(cols)
	if batchCol != "" {
		if slices.Contains(cols, batchCol) {
			return nil, configErr(prefix+"BatchColumn", fmt.Sprintf("%q is also in Columns; list it only as BatchColumn", batchCol), nil)
		}
		all = append(all, batchCol)
		t.batchCol = true
	}
	t.names = all
	t.ident = strings.Split(table, ".")
	if t.cols, err = quoteCols(d, prefix+"Columns", all); err != nil {
		if ce := ownConfigErr(err); batchCol != "" && ce != nil && ce.Field == fmt.Sprintf("%sColumns[%d]", prefix, len(cols)) {
			ce.Field = prefix + "BatchColumn"
		}
		return nil, err
	}
	if len(key) == 0 {
		return nil, configErr(prefix+"Key", "required: the columns of a unique index, for idempotent upserts", nil)
	}
	if t.key, err = quoteCols(d, prefix+"Key", key); err != nil {
		return nil, err
	}
	t.keyNames = slices.Clone(key)
	for i, k := range key {
		j := slices.Index(cols, k)
		if j < 0 {
			return nil, configErr(fmt.Sprintf("%sKey[%d]", prefix, i), fmt.Sprintf("column %q is not in Columns", k), nil)
		}
		t.keyIdx = append(t.keyIdx, j)
	}
	if row == nil {
		return nil, configErr(prefix+"Row", "required", nil)
	}
	if len(t.cols) > d.MaxParams() {
		return nil, configErr(prefix+"Columns", "too many columns", nil)
	}
	t.conflict = d.OnConflict(t.cols, t.key)
	return t, nil
}

// Describe implements batchenrich.Describer: it names the table, key,
// columns and batch column the Sink writes (and those of its failure
// table), which a durable run records as part of its definition.
func (s *Sink[T, R]) Describe() string {
	d := s.main.describe()
	if s.failures != nil {
		d += "; failures to " + s.failures.describe()
	}
	return d
}

// Write implements batchenrich.Sink: it writes every result of b in one
// transaction, which it commits, or rolls back on any error (a dropped
// connection included), leaving nothing of the batch. The error names the
// batch.
func (s *Sink[T, R]) Write(ctx context.Context, b batchenrich.Batch[T, R]) error {
	var rows batchRows
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.writeTx(ctx, tx, b, &rows) })
}

// WriteTx writes every result of b within tx, which the caller commits or
// rolls back. Use it to add work of your own to the batch's transaction.
// tx must belong to the Sink's database.
func (s *Sink[T, R]) WriteTx(ctx context.Context, tx *sqlx.Tx, b batchenrich.Batch[T, R]) error {
	return s.writeTx(ctx, tx, b, nil)
}

// batchRows are the rows of a batch, mapped once for the attempts of a
// transaction the Sink began (see inTx).
type batchRows struct {
	main, fail [][]any
	mapped     bool
}

// writeTx is WriteTx. owned is set when the Sink began tx (inTx), which
// it then may roll back and run again (see writeDirect): it keeps the
// batch's rows, so that a second attempt does not call the RowFunc again.
func (s *Sink[T, R]) writeTx(ctx context.Context, tx *sqlx.Tx, b batchenrich.Batch[T, R], owned *batchRows) error {
	if tx == nil {
		return errors.New("nil transaction")
	}
	if err := s.check(ctx, tx); err != nil {
		return err
	}
	if b.Replay > 0 && s.replay != nil {
		return s.writeReplay(ctx, tx, b)
	}
	var rows batchRows
	if owned != nil && owned.mapped {
		rows = *owned
	} else {
		var err error
		if rows.main, rows.fail, err = s.rows(b); err != nil {
			return err
		}
		rows.mapped = true
		if owned != nil {
			*owned = rows
		}
	}
	if err := s.writeRows(ctx, tx, s.main, rows.main, owned != nil); err != nil {
		return fmt.Errorf("%s: %w", s.main.name, err)
	}
	if s.failures != nil {
		if err := s.writeRows(ctx, tx, s.failures, rows.fail, owned != nil); err != nil {
			return fmt.Errorf("%s: %w", s.failures.name, err)
		}
	}
	return nil
}

// WriteCheckpointed implements batchenrich.CheckpointSink: when store is a
// *CheckpointStore on the Sink's database (the same *sql.DB pool), it
// writes b and saves cp in one
// transaction, so that both or neither commit. For any other store it
// returns an error wrapping batchenrich.ErrCheckpointUnsupported, having
// written nothing.
func (s *Sink[T, R]) WriteCheckpointed(ctx context.Context, b batchenrich.Batch[T, R], store batchenrich.CheckpointStore, cp batchenrich.Checkpoint) error {
	cs, ok := store.(*CheckpointStore)
	switch {
	case !ok:
		return fmt.Errorf("checkpoint store %T: %w", store, batchenrich.ErrCheckpointUnsupported)
	case cs == nil || cs.db.DB != s.db.DB:
		return fmt.Errorf("checkpoint store on another *sqlx.DB: %w", batchenrich.ErrCheckpointUnsupported)
	}
	var rows batchRows
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.writeTx(ctx, tx, b, &rows); err != nil {
			return err
		}
		return cs.SaveTx(ctx, tx, cp)
	})
}

// inTx runs f in a new transaction and commits it. When f's direct COPY
// met an existing key (errDirectConflict: the transaction is aborted, and
// the Sink goes to the upsert from then on), it rolls back and runs f
// again in a new transaction.
func (s *Sink[T, R]) inTx(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	err := s.inTxOnce(ctx, f)
	if errors.Is(err, errDirectConflict) {
		err = s.inTxOnce(ctx, f)
	}
	return err
}

// inTxOnce runs f in a new transaction and commits it.
func (s *Sink[T, R]) inTxOnce(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer done()
	if err := f(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, context.Canceled) && !errors.Is(rerr, context.DeadlineExceeded) && !isTxDone(rerr) {
			err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// database/sql rolled the transaction back when ctx ended,
			// before Commit looked: ErrTxDone, whose cause is ctx's end.
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// rows maps the results of b to rows of the main and failures tables.
func (s *Sink[T, R]) rows(b batchenrich.Batch[T, R]) (main, fail [][]any, err error) {
	main = make([][]any, 0, len(b.Results))
	for i := range b.Results {
		r := &b.Results[i]
		t := s.main
		if r.Err != nil && s.failures != nil {
			t = s.failures
		}
		row, err := t.rowOf(b.Number, r)
		if err != nil {
			return nil, nil, fmt.Errorf("item %d: %w", i, err)
		}
		if t == s.main {
			main = append(main, row)
		} else {
			fail = append(fail, row)
		}
	}
	return main, fail, nil
}

// rowOf calls the target's RowFunc and appends the batch number.
func (t *target[T, R]) rowOf(batch int, r *batchenrich.Result[T, R]) ([]any, error) {
	vals, err := t.row(*r)
	if err != nil {
		return nil, fmt.Errorf("row for %s: %w", t.name, err)
	}
	if len(vals) != t.ncol {
		return nil, fmt.Errorf("row for %s: %d values for %d columns", t.name, len(vals), t.ncol)
	}
	if err := t.textValues(vals); err != nil {
		return nil, err
	}
	if !t.batchCol {
		return vals, nil
	}
	row := make([]any, len(vals)+1)
	copy(row, vals)
	row[len(vals)] = int64(batch)
	return row, nil
}

// writeRows upserts rows into t, after removing rows whose key repeats a
// later row's (the later one wins, as if written one after the other;
// PostgreSQL refuses to update one row twice in a statement).
func (s *Sink[T, R]) writeRows(ctx context.Context, tx *sqlx.Tx, t *target[T, R], rows [][]any, owned bool) error {
	if len(rows) == 0 {
		return nil
	}
	rows, err := dedupe(rows, t.keyIdx)
	if err != nil {
		return err
	}
	if s.d.Kind == sqldialect.PostgreSQL {
		if s.pgBulk != nil {
			return s.pgBulk(ctx, tx, t, rows)
		}
		if s.d.PGX && !s.canCopy(tx) {
			// pgx COPYs through the connection of a transaction the
			// Sink began; in a caller's transaction, upsert instead.
			return s.writeValues(ctx, tx, t, rows)
		}
		if s.pg == pgAuto && !s.conflicted.Load() {
			done, err := s.writeDirect(ctx, tx, t, rows, owned)
			if done || err != nil {
				return err
			}
		}
		if s.pg == pgCopy || ((s.pg == pgAuto || s.pg == pgUpsertOnly) && len(rows)*len(t.cols) >= copyMinParams) {
			return s.writeCopy(ctx, tx, t, rows)
		}
	}
	return s.writeValues(ctx, tx, t, rows)
}

// writeValues runs multi-row INSERT … VALUES … ON CONFLICT statements,
// as many rows each as the parameter limit allows.
func (s *Sink[T, R]) writeValues(ctx context.Context, tx *sqlx.Tx, t *target[T, R], rows [][]any) error {
	ncol := len(t.cols)
	per := s.d.MaxParams() / ncol
	if s.chunkRows > 0 {
		per = min(per, s.chunkRows)
	}
	var full string // the statement for a full chunk, built once
	args := make([]any, 0, min(len(rows), per)*ncol)
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r...)
		}
		var q string
		if len(chunk) == per && full != "" {
			q = full
		} else {
			q = s.d.Rebind(s.d.Insert(t.table, t.cols, len(chunk)) + t.conflict)
			if len(chunk) == per {
				full = q
			}
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		if err := s.hook(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sink[T, R]) hook(ctx context.Context, tx *sqlx.Tx) error {
	if s.afterStatement == nil {
		return nil
	}
	return s.afterStatement(ctx, tx)
}

// dedupe keeps the last row of each key.
func dedupe(rows [][]any, keyIdx []int) ([][]any, error) {
	if len(rows) < 2 {
		return rows, nil
	}
	if distinct, err := distinctKeys(rows, keyIdx); distinct || err != nil {
		return rows, err
	}
	last := make(map[string]int, len(rows))
	var key []byte
	for i, r := range rows {
		var err error
		if key, err = rowKey(key[:0], r, keyIdx); err != nil {
			return nil, err
		}
		last[string(key)] = i
	}
	if len(last) == len(rows) {
		return rows, nil
	}
	keep := make([]bool, len(rows))
	for _, i := range last {
		keep[i] = true
	}
	out := make([][]any, 0, len(last))
	for i, r := range rows {
		if keep[i] {
			out = append(out, r)
		}
	}
	return out, nil
}

// rowKey appends to dst the key of row r, its columns keyIdx converted
// as the driver would convert them.
func rowKey(dst []byte, r []any, keyIdx []int) ([]byte, error) {
	for _, k := range keyIdx {
		v, err := driver.DefaultParameterConverter.ConvertValue(r[k])
		if err != nil {
			return dst, fmt.Errorf("key column value %T: %w", r[k], err)
		}
		dst = appendKey(dst, v)
	}
	return dst, nil
}

// keySeed seeds distinctKeys' hashes.
var keySeed = maphash.MakeSeed()

// distinctKeys reports whether the keys of rows are certainly all
// different, because their hashes are, without keeping the keys: the
// usual batch, checked without an allocation per row. When two hashes are
// equal (a repeated key, or rarely two keys with one hash) dedupe
// compares the keys themselves.
func distinctKeys(rows [][]any, keyIdx []int) (bool, error) {
	seen := make(map[uint64]struct{}, len(rows))
	var key []byte
	for _, r := range rows {
		var err error
		if key, err = rowKey(key[:0], r, keyIdx); err != nil {
			return false, err
		}
		h := maphash.Bytes(keySeed, key)
		if _, dup := seen[h]; dup {
			return false, nil
		}
		seen[h] = struct{}{}
	}
	return true, nil
}

// appendKey appends v, a driver.Value, to a row's key: a tag for its type,
// then the value in a form that says where it ends, so that two keys are
// equal only if their values are.
func appendKey(b []byte, v driver.Value) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, 'n')
	case int64:
		b = strconv.AppendInt(append(b, 'i'), v, 10)
		return append(b, ';')
	case string:
		b = strconv.AppendInt(append(b, 's'), int64(len(v)), 10)
		return append(append(b, ':'), v...)
	case []byte:
		b = strconv.AppendInt(append(b, 'b'), int64(len(v)), 10)
		return append(append(b, ':'), v...)
	}
	s := fmt.Sprintf("%T:%v", v, v)
	b = strconv.AppendInt(append(b, 'v'), int64(len(s)), 10)
	return append(append(b, ':'), s...)
}
