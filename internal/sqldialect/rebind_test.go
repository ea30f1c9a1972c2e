package sqldialect

import "testing"

func TestRebind(t *testing.T) {
	pg := Dialect{Kind: PostgreSQL}
	for _, c := range []struct{ in, want string }{
		{`SELECT a FROM t WHERE a = ? AND b = ?`, `SELECT a FROM t WHERE a = $1 AND b = $2`},
		{`INSERT INTO "t?x" ("c?", d) VALUES (?, ?)`, `INSERT INTO "t?x" ("c?", d) VALUES ($1, $2)`},
		{`SELECT "a""?" FROM t WHERE x = ?`, `SELECT "a""?" FROM t WHERE x = $1`},
		{`SELECT 'it''s ?' , ? `, `SELECT 'it''s ?' , $1 `},
		{`SELECT E'a\'?', ?`, `SELECT E'a\'?', $1`},
		{`SELECT $$a ? b$$, ?, $tag$?$tag$, ?`, `SELECT $$a ? b$$, $1, $tag$?$tag$, $2`},
		{"SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
		{`SELECT /* a ? /* nested ? */ ? */ ?`, `SELECT /* a ? /* nested ? */ ? */ $1`},
		{`SELECT $1::int, $2 ? ?`, `SELECT $1::int, $2 $1 $2`}, // $1 is no dollar quote
		{`SELECT "unterminated ?`, `SELECT "unterminated ?`},
		{`no placeholders`, `no placeholders`},
	} {
		if got := pg.Rebind(c.in); got != c.want {
			t.Errorf("Rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	lite := Dialect{Kind: SQLite}
	if got := lite.Rebind(`SELECT "t?" WHERE a = ?`); got != `SELECT "t?" WHERE a = ?` {
		t.Errorf("SQLite Rebind changed the query: %q", got)
	}
	if n := CountPlaceholders(`SELECT "t?x", '?' FROM "a?" WHERE b = ? -- ?`); n != 1 {
		t.Errorf("CountPlaceholders = %d, want 1", n)
	}
}

func FuzzRebind(f *testing.F) {
	f.Add(`SELECT "t?x" FROM 'a?' WHERE $$?$$ = ? /* ? */ -- ?`)
	pg := Dialect{Kind: PostgreSQL}
	f.Fuzz(func(t *testing.T, q string) {
		out := pg.Rebind(q)
		if CountPlaceholders(q) == 0 && out != q {
			t.Fatalf("Rebind(%q) = %q with no placeholder", q, out)
		}
	})
}
