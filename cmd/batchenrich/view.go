package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/redact"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// clean returns s as the text output shows it: every URL's secrets
// masked (redact.Text), and control and format characters (a line break,
// an ANSI escape, a bidirectional mark) and invalid UTF-8 escaped as Go
// escapes (\n, \x1b, \u202e), so that a stored value can neither move the
// terminal's cursor nor forge a line.
func clean(s string) string {
	s = redact.Text(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// quoted is a path or name in an error or a line: clean, in double
// quotes when it has spaces or is empty.
func quoted(s string) string {
	c := clean(s)
	if c == "" || strings.ContainsAny(c, " \t\"'") {
		return strconv.Quote(redact.Text(s))
	}
	return c
}

// cut shortens s to at most n runes, ending with "…" when cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// rate is the items a run (or partition) read per second, averaged from
// its start to its last checkpoint (time between attempts included), or
// false when it cannot be told (nothing read yet, or no time elapsed).
func rate(c batchenrich.RunCounts, started, updated time.Time) (float64, bool) {
	if c.Read == 0 || started.IsZero() || !updated.After(started) {
		return 0, false
	}
	return float64(c.Read) / updated.Sub(started).Seconds(), true
}

// eta estimates how long a running partitioned run still needs: hash
// partitions hold about as many items each, so each unfinished partition
// has about as many left as the finished ones read on average, minus what
// it read already, at the run's rate. It is false for a run that is not
// running, unpartitioned, or with no partition finished yet (nothing
// tells its total then), or when the estimate is already behind.
func eta(st sqlbatch.RunStatus) (time.Duration, bool) {
	r, ok := rate(st.Counts, st.Started, st.Updated)
	if !ok || st.State != batchenrich.StateRunning || len(st.Partitions) < 2 {
		return 0, false
	}
	var doneRead, done int
	for _, p := range st.Partitions {
		if p.Done {
			doneRead += p.Counts.Read
			done++
		}
	}
	if done == 0 {
		return 0, false
	}
	avg := float64(doneRead) / float64(done)
	var left float64
	for _, p := range st.Partitions {
		if !p.Done {
			left += max(0, avg-float64(p.Counts.Read))
		}
	}
	if left == 0 {
		return 0, false
	}
	return time.Duration(left / r * float64(time.Second)).Round(time.Second), true
}

// partitionsDone counts the partitions recorded as done.
func partitionsDone(st sqlbatch.RunStatus) int {
	n := 0
	for _, p := range st.Partitions {
		if p.State == batchenrich.StateDone {
			n++
		}
	}
	return n
}

// state is a run's state for people: "running, not held" when it is
// recorded as running and no process holds any of its partitions (its
// processes died, or a queue is about to hand it to another).
func state(st sqlbatch.RunStatus) string {
	if st.State != batchenrich.StateRunning {
		return clean(string(st.State))
	}
	for _, p := range st.Partitions {
		if p.Held {
			return string(st.State)
		}
	}
	return "running, not held"
}

// partState is a partition's state for people: "-" before it saved
// anything, "running, not held" as for a run.
func partState(p sqlbatch.PartitionStatus) string {
	switch {
	case p.State == "":
		return "-"
	case p.State == batchenrich.StateRunning && !p.Held:
		return "running, not held"
	}
	return clean(string(p.State))
}

// failures is a count of failed items with its split by class:
// "12 (T4 P7 U1)" (transient, permanent, unclassified), "0".
func failures(c batchenrich.RunCounts) string {
	if c.Failed == 0 {
		return "0"
	}
	var parts []string
	other := c.Failed - c.FailedTransient - c.FailedPermanent
	for _, p := range []struct {
		tag string
		n   int
	}{{"T", c.FailedTransient}, {"P", c.FailedPermanent}, {"U", other}} {
		if p.n != 0 {
			parts = append(parts, p.tag+strconv.Itoa(p.n))
		}
	}
	return strconv.Itoa(c.Failed) + " (" + strings.Join(parts, " ") + ")"
}

// when is a time for people: UTC to the second, "-" when zero.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
