package sqlbatch

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/bounds"
	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// partition validates p and adds its condition to the query under
// construction (PostgreSQL), or arranges for Read to filter (SQLite).
func (s *Source[T]) partition(p batchenrich.Partition, b *strings.Builder) error {
	switch {
	case p.Count > bounds.Partitions:
		return configErr("Partition", fmt.Sprintf("count %d: must be at most %d", p.Count, bounds.Partitions), nil)
	case p.Index < 0 || p.Index >= p.Count:
		return configErr("Partition", fmt.Sprintf("index %d: must be in [0, %d)", p.Index, p.Count), nil)
	case s.paging != PageByKey:
		return configErr("Partition", "needs PageByKey (an offset is not stable within a partition)", nil)
	}
	s.part = p
	if s.d.Kind != sqldialect.PostgreSQL {
		s.inGo = true
		return nil
	}
	if s.hasCond {
		b.WriteString(" AND ")
	} else {
		b.WriteString(" WHERE ")
	}
	b.WriteString("(hashtextextended(ROW(" + strings.Join(s.key, ", ") + ")::text, 0) & 9223372036854775807) % ? = ?")
	s.baseArg = append(s.baseArg, int64(p.Count), int64(p.Index))
	s.hasCond = true
	return nil
}

// partitionOf returns the partition, among count, of the key encoded as
// cursor c.
func partitionOf(c batchenrich.Cursor, count int) int {
	h := fnv.New64a()
	h.Write([]byte(c))
	return int(h.Sum64() % uint64(count))
}

// readPartition is Read for a partition filtered here: it reads windows of
// P × limit rows in key order and keeps those of its partition until it
// has limit of them or the rows run out.
func (s *Source[T]) readPartition(ctx context.Context, after batchenrich.Cursor, limit int) ([]T, batchenrich.Cursor, error) {
	chunk := limit * s.part.Count
	out := make([]T, 0, limit)
	next, scan := after, after
	for {
		q, args, _, err := s.query(scan, chunk)
		if err != nil {
			return nil, after, err
		}
		rows, err := selectRows[T](ctx, s.db, s.fields, nil, s.d.Rebind(q), args...)
		if err != nil {
			return nil, after, fmt.Errorf("partition %s after cursor %q: %w", s.part, scan, err)
		}
		for _, r := range rows {
			c, err := s.cursorOf(r)
			if err != nil {
				return nil, after, err
			}
			scan = c
			if partitionOf(c, s.part.Count) != s.part.Index {
				continue
			}
			out = append(out, r)
			next = c
			if len(out) == limit {
				return out, next, nil
			}
		}
		if len(rows) < chunk {
			return out, next, nil
		}
	}
}
