package batchenrich

import (
	"strconv"
	"strings"
)

// ownPrefixes are the prefixes of this module's packages, which an outer
// error of this package already says in its own "batchenrich: ".
var ownPrefixes = []string{"batchenrich: ", "sqlbatch: ", "httpenrich: ", "batchenrichtest: "}

// trimSaid returns msg, an inner error's text, without what the outer
// error's text already says: the prefixes of this module's packages (at
// the start, and after each ": "), then a leading "batch N: " for the
// outer error's batch N.
func trimSaid(msg string, batch int) string {
	for _, p := range ownPrefixes {
		msg = strings.TrimPrefix(msg, p)
		msg = strings.ReplaceAll(msg, ": "+p, ": ")
	}
	if batch > 0 {
		msg = strings.TrimPrefix(msg, "batch "+strconv.Itoa(batch)+": ")
	}
	return msg
}

// trimRun returns msg without its mentions of the run key that the outer
// error's head already names: "unlock run "k": x" reads "unlock: x".
func trimRun(msg, runKey string) string {
	r := "run " + strconv.Quote(runKey)
	msg = strings.TrimPrefix(msg, r+": ")
	return strings.ReplaceAll(msg, " "+r+": ", ": ")
}

// startsWithWord reports whether msg starts with word followed by a space
// or a colon.
func startsWithWord(msg, word string) bool {
	if word == "" || !strings.HasPrefix(msg, word) || len(msg) == len(word) {
		return false
	}
	c := msg[len(word)]
	return c == ' ' || c == ':'
}
