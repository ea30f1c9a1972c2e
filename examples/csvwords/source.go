package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/batchenrich/batchenrich"
)

// CSVSource is a batchenrich.Source of the records of a CSV file with a
// header line: the model of a Source of your own.
//
// What makes it correct:
//
//   - The cursor says where the next window starts, in terms that survive
//     a restart: here the byte offset after the last record returned. The
//     empty cursor means the start (the header is skipped). Each Read
//     starts a new csv.Reader at that offset, so the same cursor gives the
//     same window, from this Source or from a new one in another process;
//     a CheckpointStore can keep it, and a resumed run continues at the
//     right record. (A count of records would not do: it cannot be turned
//     back into a position without reading everything before it.)
//   - It honours ctx: a cancelled context fails the Read.
//   - It returns at most limit records, fewer only at the end, and nothing
//     after the end.
//
// It reads through an io.ReaderAt (an *os.File, a *strings.Reader), so
// concurrent Reads do not share a position.
type CSVSource struct {
	r    io.ReaderAt
	size int64
}

// NewCSVSource returns a CSVSource over the size bytes of r.
func NewCSVSource(r io.ReaderAt, size int64) *CSVSource {
	return &CSVSource{r: r, size: size}
}

// Read implements batchenrich.Source.
func (s *CSVSource) Read(ctx context.Context, after batchenrich.Cursor, limit int) ([][]string, batchenrich.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return nil, after, err
	}
	var start int64
	if after != "" {
		n, err := strconv.ParseInt(string(after), 10, 64)
		if err != nil || n < 0 || n > s.size {
			return nil, after, fmt.Errorf("csvwords: cursor %q is not an offset in the file", after)
		}
		start = n
	}
	cr := csv.NewReader(io.NewSectionReader(s.r, start, s.size-start))
	cr.FieldsPerRecord = -1 // a row of the wrong width is the Enricher's to report
	if after == "" {
		if _, err := cr.Read(); errors.Is(err, io.EOF) {
			return nil, after, nil // an empty file
		} else if err != nil {
			return nil, after, fmt.Errorf("csvwords: header: %w", err)
		}
	}
	var rows [][]string
	for len(rows) < limit {
		if err := ctx.Err(); err != nil {
			return nil, after, err
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, after, fmt.Errorf("csvwords: %w", err)
		}
		rows = append(rows, rec)
	}
	return rows, batchenrich.Cursor(strconv.FormatInt(start+cr.InputOffset(), 10)), nil
}
