package seedjob

import (
	"regexp"
	"strings"

	"github.com/batchenrich/batchenrich/redact"
)

// StatusCommand is the command that shows the run runKey from a shell
// (cmd/batchenrich), for an example's output. dsn is the database as
// given; fromEnv says it is the value of $DATABASE_URL, which the command
// then names instead of the value. A PostgreSQL DSN given on the command
// line is shown with its password masked (redact.String): replace the
// mask with it to run the command. A SQLite file is shown as its path.
func StatusCommand(dsn string, fromEnv bool, runKey string) string {
	shown := `"$DATABASE_URL"`
	if !fromEnv {
		shown = shellQuote(redact.String(dsn))
	}
	return "go run github.com/batchenrich/batchenrich/cmd/batchenrich status -dsn " + shown + " " + shellQuote(runKey)
}

// shellSafe is what a POSIX shell reads as itself, unquoted.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
