package harness

import (
	"slices"
	"time"
)

// Summary is the median of several runs of one contender in one setting,
// with the spread.
type Summary struct {
	Contender  string
	Runs       int
	Rows       int
	Median     time.Duration
	Min, Max   time.Duration
	RowsPerSec float64 // median rows/s
	Conns      int64   // median connections per run
	MaxConns   int64
	PeakRSSKB  int64 // median peak RSS, 0 if not measured
}

// Summarize reduces the runs of one contender.
func Summarize(name string, runs []Result) Summary {
	s := Summary{Contender: name, Runs: len(runs)}
	if len(runs) == 0 {
		return s
	}
	s.Rows = runs[0].Rows
	el := make([]time.Duration, len(runs))
	rps := make([]float64, len(runs))
	conns := make([]int64, len(runs))
	rss := make([]int64, len(runs))
	for i, r := range runs {
		el[i], rps[i], conns[i], rss[i] = r.Elapsed, r.RowsPerSecond(), r.Conns, r.PeakRSSKB
	}
	s.Median = Median(el)
	s.Min, s.Max = slices.Min(el), slices.Max(el)
	s.RowsPerSec = Median(rps)
	s.Conns = Median(conns)
	s.MaxConns = slices.Max(conns)
	s.PeakRSSKB = Median(rss)
	return s
}

// Median returns the middle value of v (the mean of the two middle ones
// for an even count), 0 for none.
func Median[T int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
