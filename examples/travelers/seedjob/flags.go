package seedjob

import (
	"fmt"
	"regexp"
	"strings"
)

// executionIDPattern is the safe set of an execution id: it is printed,
// stored and used as the run key, so nothing that could move a terminal's
// cursor, split a log line, fail to encode, or collide with a key the
// library derives from it (a partition's run#p1, a replay's run#replay-1).
var executionIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// CheckExecutionID refuses an -execution-id outside the safe set: 1 to
// 128 letters, digits, '.', '_', ':' or '-', starting with a letter or a
// digit. The error shows the value quoted (%q: a control character or an
// ANSI escape is escaped, never sent to the terminal) and truncated.
func CheckExecutionID(id string) error {
	if SafeName(id) {
		return nil
	}
	return fmt.Errorf("-execution-id %q: use 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", Truncate(id))
}

// SafeName reports whether s is in the safe set of an execution id (and
// of any other name a program prints and stores: fleet's -budget).
func SafeName(s string) bool { return executionIDPattern.MatchString(s) }

// Bound is an integer flag's value and its bounds, inclusive.
type Bound struct {
	Flag      string // "-rows"
	V, Lo, Hi int64
}

// CheckBounds refuses the first value outside its bounds, with "-flag v:
// must be between lo and hi". Every numeric flag of the seed-job programs
// has an upper bound, so that a typo fails at once rather than running
// for hours (or filling a disk).
func CheckBounds(bounds ...Bound) error {
	for _, b := range bounds {
		if b.V < b.Lo || b.V > b.Hi {
			return fmt.Errorf("%s %d: must be between %d and %d", b.Flag, b.V, b.Lo, b.Hi)
		}
	}
	return nil
}

// Truncate shortens a refused value for an error message.
func Truncate(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
