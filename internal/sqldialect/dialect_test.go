package sqldialect

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDetect(t *testing.T) {
	for name, want := range map[string]Kind{"postgres": PostgreSQL, "pgx": PostgreSQL, "pgx/v5": PostgreSQL, "sqlite": SQLite, "sqlite3": SQLite} {
		d, err := Detect(name)
		if err != nil || d.Kind != want || d.PGX != strings.HasPrefix(name, "pgx") {
			t.Errorf("Detect(%q) = %v, %v", name, d.Kind, err)
		}
	}
	for _, name := range []string{"", "mysql", "pgx/v4", "Postgres"} {
		if _, err := Detect(name); !errors.Is(err, ErrUnsupportedDriver) {
			t.Errorf("Detect(%q): err = %v", name, err)
		}
	}
}

func TestQuote(t *testing.T) {
	d := Dialect{Kind: PostgreSQL}
	for _, tc := range []struct{ in, want string }{
		{"t", `"t"`},
		{`x; DROP TABLE y`, `"x; DROP TABLE y"`},
		{`we"ird`, `"we""ird"`},
		{`""`, `""""""`},
		{"名前", `"名前"`},
	} {
		if got, err := d.QuoteIdent(tc.in); err != nil || got != tc.want {
			t.Errorf("QuoteIdent(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	if got, err := d.QuoteTable("s.t"); err != nil || got != `"s"."t"` {
		t.Errorf("QuoteTable(s.t) = %s, %v", got, err)
	}
	for _, bad := range []string{"", "a\x00", "a\nb", "\u200b", "\u202e", strings.Repeat("x", 64), "\xff"} {
		if _, err := d.QuoteIdent(bad); !errors.Is(err, ErrBadIdent) {
			t.Errorf("QuoteIdent(%q): err = %v", bad, err)
		}
	}
	for _, bad := range []string{"a.b.c", ".t", "s.", "."} {
		if _, err := d.QuoteTable(bad); !errors.Is(err, ErrBadIdent) {
			t.Errorf("QuoteTable(%q): err = %v", bad, err)
		}
	}
	if _, err := d.QuoteIdents([]string{"a", "a"}); err == nil {
		t.Error("duplicate accepted")
	}
}

func TestStatements(t *testing.T) {
	pg, lite := Dialect{Kind: PostgreSQL}, Dialect{Kind: SQLite}
	q := pg.Rebind(pg.Upsert(`"t"`, []string{`"k"`, `"v"`}, []string{`"k"`}, 2))
	want := `INSERT INTO "t" ("k", "v") VALUES ($1, $2), ($3, $4) ON CONFLICT ("k") DO UPDATE SET "v" = excluded."v"`
	if q != want {
		t.Errorf("upsert:\n got %s\nwant %s", q, want)
	}
	if q := lite.Upsert(`"t"`, []string{`"k"`}, []string{`"k"`}, 1); q != `INSERT INTO "t" ("k") VALUES (?) ON CONFLICT ("k") DO NOTHING` {
		t.Errorf("key-only upsert: %s", q)
	}
	if got := pg.After([]string{`"a"`}); got != `"a" > ?` {
		t.Errorf("After 1 = %s", got)
	}
	if got := pg.After([]string{`"a"`, `"b"`}); got != `("a", "b") > (?, ?)` {
		t.Errorf("After 2 = %s", got)
	}
	if pg.MaxParams() != 65535 || lite.MaxParams() != 32766 {
		t.Error("MaxParams")
	}
	if LockKey("a") == LockKey("b") || LockKey("a") != LockKey("a") {
		t.Error("LockKey")
	}
}

// FuzzQuoteIdent: an accepted name quotes to a token that unquotes to
// exactly the name, with no unescaped quote inside.
func FuzzQuoteIdent(f *testing.F) {
	for _, s := range []string{"t", `x"; DROP TABLE y; --`, `""`, "名前", "a\x00"} {
		f.Add(s)
	}
	d := Dialect{Kind: SQLite}
	f.Fuzz(func(t *testing.T, name string) {
		q, err := d.QuoteIdent(name)
		if err != nil {
			return
		}
		if !utf8.ValidString(q) || len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
			t.Fatalf("QuoteIdent(%q) = %s", name, q)
		}
		inner := q[1 : len(q)-1]
		if strings.Contains(strings.ReplaceAll(inner, `""`, ""), `"`) {
			t.Fatalf("unescaped quote in %s", q)
		}
		if strings.ReplaceAll(inner, `""`, `"`) != name {
			t.Fatalf("QuoteIdent(%q) = %s does not unquote to the name", name, q)
		}
	})
}
