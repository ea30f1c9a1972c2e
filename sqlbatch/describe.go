package sqlbatch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// describeSource returns what defines the rows a Source configured by
// cfg reads, for Source.Describe: its table or query (with its
// arguments), key, filter (with its values), columns, paging and
// partition count.
func describeSource(cfg SourceConfig) string {
	var b strings.Builder
	if cfg.Table != "" {
		b.WriteString("table " + strconv.Quote(cfg.Table))
	} else {
		b.WriteString("query " + strconv.Quote(strings.TrimSpace(cfg.Query)))
		if len(cfg.Args) > 0 {
			b.WriteString(" args " + describeValues(cfg.Args))
		}
	}
	b.WriteString(" key " + describeNames(cfg.Key))
	if len(cfg.Filter) > 0 {
		names := make([]string, 0, len(cfg.Filter))
		for n := range cfg.Filter {
			names = append(names, n)
		}
		slices.Sort(names)
		var parts []string
		for _, n := range names {
			parts = append(parts, strconv.Quote(n)+" = "+describeValue(cfg.Filter[n]))
		}
		b.WriteString(" filter (" + strings.Join(parts, ", ") + ")")
	}
	if len(cfg.Columns) > 0 {
		b.WriteString(" columns " + describeNames(cfg.Columns))
	}
	if cfg.Paging == PageByOffset {
		b.WriteString(" paged by offset")
	}
	if cfg.Partition.Partitioned() {
		b.WriteString(" in " + strconv.Itoa(cfg.Partition.Count) + " key partitions")
	}
	return b.String()
}

// describeFailed returns what defines the items a FailedSource reads.
func describeFailed(cfg FailedSourceConfig) string {
	cols := make([]string, 0, len(cfg.On))
	for c := range cfg.On {
		cols = append(cols, strconv.Quote(c)+" = "+strconv.Quote(cfg.On[c]))
	}
	slices.Sort(cols)
	scope := "transient" // the text recorded before AllClasses replaced ReplayScope
	if cfg.AllClasses {
		scope = "all"
	}
	return "failures (" + scope + ") in table " + strconv.Quote(cfg.Table) +
		" class column " + strconv.Quote(cfg.ClassColumn) + " on (" + strings.Join(cols, ", ") + ") of " + describeSource(cfg.Source)
}

// describe returns what defines the rows a target writes.
func (t *target[T, R]) describe() string {
	s := "table " + strconv.Quote(t.name) + " key " + describeNames(t.keyNames) + " columns " + describeNames(t.names[:t.ncol])
	if t.batchCol {
		s += " batch column " + strconv.Quote(t.names[len(t.names)-1])
	}
	return s
}

func describeNames(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return "(" + strings.Join(q, ", ") + ")"
}

func describeValues(vs []any) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = describeValue(v)
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// describeValue shows a filter or argument value, bounded.
func describeValue(v any) string {
	if v == nil {
		return "NULL"
	}
	s := strconv.Quote(fmt.Sprint(v))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
