package redact

import (
	"net/url"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		// PostgreSQL URLs: the user stays, the password goes, wherever it is.
		{"postgres://u:s3cr3t@h/db", "postgres://u:xxxxx@h/db"},
		{"postgresql://u@h/db?password=s3cr3t&sslmode=disable", "postgresql://u@h/db?password=xxxxx&sslmode=disable"},
		{"postgres://u@h/db?sslmode=disable&PASSWORD=s3cr3t", "postgres://u@h/db?sslmode=disable&PASSWORD=xxxxx"},
		{"postgres://u@h/db?sslpassword=s3cr3t", "postgres://u@h/db?sslpassword=xxxxx"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		// libpq keyword DSNs.
		{"host=127.0.0.1 user=postgres password=s3cr3t dbname=x", "host=127.0.0.1 user=postgres password=xxxxx dbname=x"},
		{"host = h  password = 's3 cr\\'3t' dbname=x", "host=h password=xxxxx dbname=x"},
		{"user=u dbname='my db'", "user=u dbname='my db'"},
		{"host=h password='s3cr3t", "[connection string not shown: it does not parse]"},
		// API URLs: the whole userinfo, credential parameters in any case.
		{"https://user:s3cr3t@api.example.com/x", "https://xxxxx@api.example.com/x"},
		{"https://ghp_s3cr3t@api.example.com/x", "https://xxxxx@api.example.com/x"},
		{"https://api.example.com/x?api_key=s3cr3t&q=1", "https://api.example.com/x?api_key=xxxxx&q=1"},
		{"https://h/x?API_KEY=s3cr3t", "https://h/x?API_KEY=xxxxx"},
		{"https://h/x?apiKey=s3cr3t", "https://h/x?apiKey=xxxxx"},
		{"https://h/x?x-api-key=s3cr3t", "https://h/x?x-api-key=xxxxx"},
		{"https://h/x?Token=s3cr3t", "https://h/x?Token=xxxxx"},
		{"https://h/x?access_token=s3cr3t", "https://h/x?access_token=xxxxx"},
		{"https://h/x?jwt=s3cr3t&id_jwt=s3cr3t&signature=s3cr3t&X-Amz-Signature=s3cr3t&X-Amz-Credential=s3cr3t&X-Amz-Security-Token=s3cr3t&X-Amz-Date=20260101", "https://h/x?jwt=xxxxx&id_jwt=xxxxx&signature=xxxxx&X-Amz-Signature=xxxxx&X-Amz-Credential=xxxxx&X-Amz-Security-Token=xxxxx&X-Amz-Date=20260101"},
		{"https://h/x?key=s3cr3t", "https://h/x?key=xxxxx"},
		{"https://h/x?Secret=s3cr3t", "https://h/x?Secret=xxxxx"},
		{"https://h/x?sig=s3cr3t&X-Amz-Signature=s3cr3t", "https://h/x?sig=xxxxx&X-Amz-Signature=xxxxx"},
		{"https://h/x?Password=s3cr3t", "https://h/x?Password=xxxxx"},
		{"https://h/x?auth=s3cr3t", "https://h/x?auth=xxxxx"},
		{"https://h/x?%61pi_key=s3cr3t", "https://h/x?%61pi_key=xxxxx"}, // an escaped name
		{"https://h/x?id={id}&name=a%20b", "https://h/x?id={id}&name=a%20b"},
		{"https://h/x#access_token=s3cr3t", "https://h/x#xxxxx"},
		{"http://127.0.0.1:8080/anything", "http://127.0.0.1:8080/anything"},
		// Unparsable URLs are not shown beyond their scheme.
		{"https://u:s3cr3t@h:port/x", "https://[rest of the URL not shown: it does not parse]"},
		{"http://h/%zz?token=s3cr3t", "http://[rest of the URL not shown: it does not parse]"},
		// SQLite.
		{"file:/tmp/x.db?mode=ro", "file:/tmp/x.db?mode=ro"},
		{"file:x.db?key=s3cr3t", "file:x.db?key=xxxxx"},
		{"/tmp/travelers.db", "/tmp/travelers.db"},
		{"./x.db", "./x.db"},
		{`C:\data\x.db`, `C:\data\x.db`},
	}
	for _, tt := range tests {
		got := String(tt.in)
		if got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "s3cr3t") || strings.Contains(got, "s3 cr") {
			t.Errorf("String(%q) = %q shows the secret", tt.in, got)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`Get "http://h/x?api_key=s3cr3t&q=1": dial tcp: refused`: `Get "http://h/x?api_key=xxxxx&q=1": dial tcp: refused`,
		"GET https://u:s3cr3t@h/x?token=s3cr3t (status: 500)":    "GET https://xxxxx@h/x?token=xxxxx (status: 500)",
		"no URL here, password=s3cr3t is not one":                "no URL here, password=s3cr3t is not one",
		// A URL without secrets stays as written, not re-encoded.
		"use postgres://…, a keyword string":     "use postgres://…, a keyword string",
		"GET http://h/a%2Fb?q=x y (status: 500)": "GET http://h/a%2Fb?q=x y (status: 500)",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseKeywords(t *testing.T) {
	t.Parallel()
	got, err := ParseKeywords(` host=h  user = 'a b' password='it\'s' port=5432 empty='' `)
	want := []KeywordPair{{"host", "h"}, {"user", "a b"}, {"password", "it's"}, {"port", "5432"}, {"empty", ""}}
	if err != nil || len(got) != len(want) {
		t.Fatalf("ParseKeywords = %q, %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("pair %d = %q, want %q", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"host=h password='s3cr3t", "host=h s3cr3t", "=s3cr3t"} {
		_, err := ParseKeywords(bad)
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("ParseKeywords(%q) error = %v: want one that does not show the value", bad, err)
		}
	}
}

func TestIsKeywordDSN(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"host=h dbname=x": true, " dbname = x": true, "x.db": false, "/tmp/a=b.db": false,
		"postgres://u@h/db": false, "": false, "=x": false,
	} {
		if got := IsKeywordDSN(s); got != want {
			t.Errorf("IsKeywordDSN(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestSensitiveQuery checks that SensitiveQuery reports exactly the
// queries String masks a value in, and allocates nothing for plain names.
func TestSensitiveQuery(t *testing.T) {
	for _, q := range []string{
		"", "id=7", "id=7&name=a%20b", "token=x", "id=7&API_KEY=x", "x-api-key=x", "X-Amz-Signature=x&a=b",
		"token", "token=", "%61pi_key=x", "api+key=x", "a=1&&b=2", "id=%zz", "%zz=1",
		"\u212aey=x", strings.Repeat("a", 70) + "token=x", "idjwt=1", "passage=1",
	} {
		want := redactQuery(q) != q
		if got := SensitiveQuery(q); got != want {
			t.Errorf("SensitiveQuery(%q) = %v, want %v (String masks: %q)", q, got, want, redactQuery(q))
		}
	}
	if n := testing.AllocsPerRun(100, func() { SensitiveQuery("id=12345&name=Ada&X-Request-Id=9") }); n != 0 {
		t.Errorf("SensitiveQuery allocates %v times", n)
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"postgres://u:p@h/db?password=p", "host=h password='p'", "https://u:p@h/x?token=p#p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = String(s) // never panics
		if u, err := url.Parse(s); err == nil && SensitiveQuery(u.RawQuery) != (redactQuery(u.RawQuery) != u.RawQuery) {
			t.Errorf("SensitiveQuery(%q) = %v, unlike String", u.RawQuery, SensitiveQuery(u.RawQuery))
		}
	})
}
