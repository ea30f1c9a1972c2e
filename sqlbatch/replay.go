package sqlbatch

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
)

// FailedSourceConfig configures NewFailedSource: the run's Source, and
// where and how its Sink stored the failed items.
type FailedSourceConfig struct {
	// Source is the run's SourceConfig, as given to NewSource: a replay
	// reads the same table or query, with the same Key, Filter and
	// Columns. Its Paging must be PageByKey: a replay heals failed items
	// as it goes, which would shift OFFSET windows. It must not set a
	// Partition: a replay covers the whole run.
	Source SourceConfig

	// Table is the table where the run's Sink stored its results,
	// failures included as rows (SinkConfig.Table), optionally
	// "schema.table". Required.
	Table string

	// On pairs each column of the Source that identifies an item's row
	// in Table with the column of Table holding the same value, e.g.
	// {"execution_id": "execution_id", "traveler_id": "traveler_id"}.
	// Required.
	On map[string]string

	// ClassColumn is the column of Table holding the class of each
	// stored failure, as batchenrich.Class.String spells it
	// ("transient", "permanent", …), and NULL in the row of an item that
	// did not fail. The Sink's RowFunc fills it, with
	// batchenrich.Classify(r.Err).String() for a failed result and nil
	// otherwise, so that a replay that heals an item clears it. Required.
	ClassColumn string

	// AllClasses, when set, reads every failure with a class; by default
	// only those of class "transient" (batchenrich.ClassTransient), which
	// may succeed now.
	AllClasses bool
}

// NewFailedSource returns a Source reading the items of a run that its
// Sink stored as failed, of the classes cfg says (AllClasses): the rows of cfg.Source that
// have a row in cfg.Table (joined on cfg.On) whose cfg.ClassColumn is in
// scope, in key order. It is the Source of a batchenrich.Replay:
//
//	SELECT … FROM (SELECT s.* FROM source AS s WHERE EXISTS (
//	    SELECT 1 FROM results AS f WHERE f.k = s.k … AND f.class = 'transient')) AS q
//	WHERE filters AND key > cursor ORDER BY key LIMIT n
//
// Each Read sees the rows as they are then: items that a replay healed
// (their class set to NULL) before the cursor are behind it, and those
// after it are read as the run left them, so an interrupted replay
// resumes where it stopped. Index Table on the On columns (its key
// usually is). It validates cfg and returns a *batchenrich.ConfigError naming the
// first bad field; it does not touch the database.
func NewFailedSource[T any](db *sqlx.DB, cfg FailedSourceConfig) (_ *Source[T], err error) {
	defer func() { err = inConfig("FailedSourceConfig", err) }()
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	src := cfg.Source
	if _, err := NewSource[T](db, src); err != nil {
		if ce := ownConfigErr(err); ce != nil {
			_, f := splitField(ce.Field)
			ce.Field = "FailedSourceConfig.Source." + f
		}
		return nil, err
	}
	if src.Paging != PageByKey {
		return nil, configErr("Source.Paging", "a replay pages by key (failed items heal as it goes, which would shift OFFSET windows)", nil)
	}
	if src.Partition.Partitioned() {
		return nil, configErr("Source.Partition", "a replay reads the failures of the whole run, not of one partition", nil)
	}
	table, err := quoteTable(d, "Table", cfg.Table)
	if err != nil {
		return nil, err
	}
	if len(cfg.On) == 0 {
		return nil, configErr("On", "required: the Source columns naming an item's row in Table, with Table's columns", nil)
	}
	class, err := d.QuoteIdent(cfg.ClassColumn)
	if err != nil {
		return nil, configErr("ClassColumn", "required: the column of Table holding each failure's class", err)
	}

	from, args := "", []any(nil)
	if src.Table != "" {
		from, _ = quoteTable(d, "Source.Table", src.Table) // checked by NewSource
	} else {
		from, args = "("+strings.TrimSpace(src.Query)+")", slices.Clone(src.Args)
	}
	var b strings.Builder
	b.WriteString("SELECT batchenrich_s.* FROM " + from + " AS batchenrich_s WHERE EXISTS (SELECT 1 FROM " + table + " AS batchenrich_f WHERE ")
	cols := make([]string, 0, len(cfg.On))
	for c := range cfg.On {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	for _, c := range cols {
		sc, err := d.QuoteIdent(c)
		if err != nil {
			return nil, configErr("On", fmt.Sprintf("bad Source column name %q", c), err)
		}
		fc, err := d.QuoteIdent(cfg.On[c])
		if err != nil {
			return nil, configErr("On", fmt.Sprintf("bad Table column name %q for %q", cfg.On[c], c), err)
		}
		b.WriteString("batchenrich_f." + fc + " = batchenrich_s." + sc + " AND ")
	}
	if cfg.AllClasses {
		b.WriteString("batchenrich_f." + class + " IS NOT NULL)")
	} else {
		b.WriteString("batchenrich_f." + class + " = ?)")
		args = append(args, batchenrich.ClassTransient.String())
	}
	src.Table, src.Query, src.Args = "", b.String(), args
	s, err := NewSource[T](db, src)
	if err != nil {
		return nil, err
	}
	// Check compares the failure table's names with the catalog too.
	need := needCols{field: "Table", table: cfg.Table, cols: []string{cfg.ClassColumn}, fields: []string{"ClassColumn"}}
	for _, c := range cols {
		need.cols, need.fields = append(need.cols, cfg.On[c]), append(need.fields, fmt.Sprintf("On[%q]", c))
	}
	s.config, s.needs = "FailedSourceConfig", []needCols{need}
	s.desc = describeFailed(cfg)
	if cfg.Source.Table != "" {
		// The join's other side: the run's table has the On columns.
		run := needCols{field: "Source.Table", table: cfg.Source.Table}
		for _, c := range cols {
			run.cols, run.fields = append(run.cols, c), append(run.fields, fmt.Sprintf("On[%q]", c))
		}
		s.needs = append(s.needs, run)
	}
	return s, nil
}

// replaySink returns the Sink that writes the batches of replays
// (batchenrich.Batch.Replay set) for a Sink configured by cfg: the same
// tables and rows, but an upsert that leaves the batch column of an
// existing row as it is, so that a replayed row keeps the batch number of
// the run it belongs to. A replay only writes over stored rows: its
// direct COPY would always meet them, so it goes straight to the upsert.
func (s *Sink[T, R]) replaySink(cfg SinkConfig[T, R]) (*Sink[T, R], error) {
	r := &Sink[T, R]{db: s.db, d: s.d, pg: s.pg}
	r.conflicted.Store(true)
	// The same tables, which s checks before it hands r a batch.
	r.checked.done.Store(true)
	var err error
	if r.main, err = newTarget(s.d, "", cfg.Table, cfg.Key, cfg.Columns, cfg.Row, cfg.BatchColumn); err != nil {
		return nil, err
	}
	if r.main.batchCol {
		r.main.conflict = s.d.OnConflict(r.main.cols[:len(r.main.cols)-1], r.main.key)
	}
	return r, nil
}

// writeReplay writes a replay's batch within tx.
func (s *Sink[T, R]) writeReplay(ctx context.Context, tx *sqlx.Tx, b batchenrich.Batch[T, R]) error {
	if s.failures != nil {
		// A healed item would get a new row in Table, with the replay's
		// batch number, and leave its failure row behind.
		return fmt.Errorf("replay %d: a replay writes over failures stored in Table; this Sink stores them in %s (SinkConfig.Failures)",
			b.Replay, s.failures.name)
	}
	return s.replay.WriteTx(ctx, tx, b)
}
