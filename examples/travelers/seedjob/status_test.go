package seedjob

import "testing"

// The status command names $DATABASE_URL rather than its value, masks a
// password given on the command line, and quotes what a shell would read
// otherwise.
func TestStatusCommand(t *testing.T) {
	t.Parallel()
	const cmd = "go run github.com/batchenrich/batchenrich/cmd/batchenrich status -dsn "
	for _, c := range []struct {
		dsn     string
		fromEnv bool
		key     string
		want    string
	}{
		{"postgres://u:hunter2@h/db", true, "e1", cmd + `"$DATABASE_URL" e1`},
		{"postgres://u:hunter2@h/db?sslmode=disable", false, "e1", cmd + `'postgres://u:xxxxx@h/db?sslmode=disable' e1`},
		{"host=h password=hunter2 dbname=d", false, "e1", cmd + `'host=h password=xxxxx dbname=d' e1`},
		{"/tmp/it's here/travelers.db", false, "a:b-1", cmd + `'/tmp/it'\''s here/travelers.db' a:b-1`},
		{"/tmp/travelers.db", false, "e1", cmd + `/tmp/travelers.db e1`},
	} {
		if got := StatusCommand(c.dsn, c.fromEnv, c.key); got != c.want {
			t.Errorf("StatusCommand(%q, %v, %q) =\n%s, want\n%s", c.dsn, c.fromEnv, c.key, got, c.want)
		}
	}
}
