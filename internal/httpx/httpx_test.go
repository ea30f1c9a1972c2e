package httpx

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	tmpl, err := ParseTemplate("https://h:8080/a/{id}/b/{id}-{x}?q={x}&r=1")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tmpl.Names(), ","); got != "id,x" {
		t.Errorf("names = %s", got)
	}
	for _, tt := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"id": "1", "x": "y"}, "https://h:8080/a/1/b/1-y?q=y&r=1"},
		{map[string]string{"id": "a/b?c#d", "x": "a b&c=d+e"}, "https://h:8080/a/a%2Fb%3Fc%23d/b/a%2Fb%3Fc%23d-a%20b&c=d+e?q=a%20b%26c%3Dd%2Be&r=1"},
		{map[string]string{"id": "..", "x": "."}, "https://h:8080/a/%2E%2E/b/%2E%2E-%2E?q=.&r=1"},
	} {
		got, err := tmpl.Expand(tt.params)
		if err != nil || got != tt.want {
			t.Errorf("Expand(%v) = %s, %v; want %s", tt.params, got, err, tt.want)
		}
	}
	if _, err := tmpl.Expand(map[string]string{"id": "1"}); err == nil {
		t.Error("missing parameter accepted")
	}
	if _, err := tmpl.Expand(map[string]string{"id": "", "x": "1"}); err == nil {
		t.Error("empty path parameter accepted")
	}
	if _, err := tmpl.Expand(map[string]string{"id": "1", "x": "1", "y": "2"}); err == nil || err.Error() != "parameter {y} is not in the URL template" {
		t.Errorf("unused parameter: %v", err)
	}
	for _, tt := range []struct {
		names []string
		want  string
	}{
		{[]string{"id", "x"}, ""},
		{[]string{"x", "id"}, ""},
		{[]string{"id"}, "parameter {x} is not supplied"},
		{[]string{"id", "x", "z"}, "parameter {z} is not in the URL template"},
		{nil, "parameter {id} is not supplied"},
	} {
		err := tmpl.Check(tt.names)
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
			t.Errorf("Check(%q) = %v, want %q", tt.names, err, tt.want)
		}
	}
	if _, err := ParseTemplate("https://u:s3cr3t@h:port/{id}"); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("ParseTemplate of a bad URL: %v (must fail without showing the password)", err)
	}
	if got := EncodeQuery(url.Values{"b": {"x y"}, "a": {"1+1", "é"}}); got != "a=1%2B1&a=%C3%A9&b=x%20y" {
		t.Errorf("EncodeQuery = %s", got)
	}
}

// FuzzURLTemplate checks that parsing never panics, and that a value
// expanded into a path parameter comes back, unescaped, as exactly one
// path segment of the same host.
func FuzzURLTemplate(f *testing.F) {
	for _, s := range []string{"http://h/{id}", "https://a.b:1/x/{p}/y?q={q}", "http://h/{", "http://{h}/", "http://h/x}", "", "http://h/{a}{b}", "http://h/%zz/{a}"} {
		f.Add(s, "v")
	}
	f.Add("http://h/{id}", "../a b/%2F?#&=+é")
	f.Fuzz(func(t *testing.T, tmplStr, value string) {
		if tmpl, err := ParseTemplate(tmplStr); err == nil {
			params := map[string]string{}
			for _, n := range tmpl.Names() {
				params[n] = "x"
			}
			u, err := tmpl.Expand(params)
			if err != nil {
				t.Fatalf("Expand of %q with x: %v", tmplStr, err)
			}
			pu, err := url.Parse(u)
			if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				t.Fatalf("%q expands to %q: %v", tmplStr, u, err)
			}
		}

		if value == "" || !utf8.ValidString(value) {
			return
		}
		tmpl, err := ParseTemplate("http://example.com/a/{v}/b?q={v}")
		if err != nil {
			t.Fatal(err)
		}
		u, err := tmpl.Expand(map[string]string{"v": value})
		if err != nil {
			t.Fatal(err)
		}
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatalf("%q: %v", u, err)
		}
		if pu.Host != "example.com" || pu.Fragment != "" {
			t.Fatalf("%q: host %q fragment %q", u, pu.Host, pu.Fragment)
		}
		segs := strings.Split(pu.EscapedPath(), "/")
		if len(segs) != 4 || segs[1] != "a" || segs[3] != "b" {
			t.Fatalf("%q: segments %q", u, segs)
		}
		got, err := url.PathUnescape(segs[2])
		if err != nil || got != value {
			t.Fatalf("path segment of %q = %q, %v; want %q", u, got, err, value)
		}
		q := pu.Query()
		if len(q) != 1 || q.Get("q") != value {
			t.Fatalf("query of %q = %v, want q=%q", u, q, value)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"  ", 0, false},
		{"0", 0, true},
		{" 120 ", 120 * time.Second, true},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5", 0, false},
		{"9223372036", 9223372036 * time.Second, true},
		{"9223372037", math.MaxInt64, true},
		{"99999999999999999999999999", math.MaxInt64, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Thursday, 02-Jan-25 03:05:05 GMT", time.Minute, true}, // RFC 850
		{"Thu Jan  2 03:06:05 2025", 2 * time.Minute, true},     // ANSI C
		{"tomorrow", 0, false},
	} {
		got, ok := ParseRetryAfter(tt.v, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzRetryAfter checks that parsing never panics, never returns a negative
// wait, and reads back any number of seconds it is given.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-5", "1e3", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999", " 7 ", ""} {
		f.Add(s)
	}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now)
		if d < 0 {
			t.Fatalf("%q: negative wait %v", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("%q: not ok but %v", v, d)
		}
		if secs := strings.TrimSpace(v); isDigits(secs) && len(secs) < 10 {
			want := time.Duration(0)
			for _, c := range secs {
				want = want*10 + time.Duration(c-'0')
			}
			if !ok || d != want*time.Second {
				t.Fatalf("%q: %v, %v; want %v", v, d, ok, want*time.Second)
			}
		}
	})
}

func TestReadLimited(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		body  string
		limit int64
		large bool
	}{{"", 0, false}, {"abc", 3, false}, {"abcd", 3, true}, {"a", 0, true}} {
		b, large, err := ReadLimited(strings.NewReader(tt.body), tt.limit)
		if err != nil || large != tt.large || (!large && string(b) != tt.body) || (large && b != nil) {
			t.Errorf("ReadLimited(%q, %d) = %q, %v, %v", tt.body, tt.limit, b, large, err)
		}
		// An announced size, right or wrong, changes nothing but the
		// buffering.
		for _, size := range []int64{-1, 0, 1, int64(len(tt.body)), int64(len(tt.body)) + 5, tt.limit + 1} {
			b, large, err := ReadLimitedSize(iotest.OneByteReader(strings.NewReader(tt.body)), tt.limit, size)
			if err != nil || large != tt.large || (!large && string(b) != tt.body) || (large && b != nil) {
				t.Errorf("ReadLimitedSize(%q, %d, %d) = %q, %v, %v", tt.body, tt.limit, size, b, large, err)
			}
		}
	}
	if _, _, err := ReadLimitedSize(iotest.ErrReader(io.ErrUnexpectedEOF), 10, 3); err != io.ErrUnexpectedEOF {
		t.Errorf("ReadLimitedSize of a failing reader: %v", err)
	}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// FuzzQueryEscaping holds EscapeQuery and EncodeQuery to what they were
// first written as: net/url's escaping with every '+' turned into %20.
func FuzzQueryEscaping(f *testing.F) {
	for _, s := range []string{"", "x y", "1+1", "é", "a&b=c", "~-_.", "/?#[]@!$'()*,;%", "\x00\xff", "日本"} {
		f.Add(s, "k "+s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := EscapeQuery(a), strings.ReplaceAll(url.QueryEscape(a), "+", "%20"); got != want {
			t.Fatalf("EscapeQuery(%q) = %q, want %q", a, got, want)
		}
		v := url.Values{a: {b, a}, b: {a}, "z": {b}}
		if got, want := EncodeQuery(v), strings.ReplaceAll(v.Encode(), "+", "%20"); got != want {
			t.Fatalf("EncodeQuery(%v) = %q, want %q", v, got, want)
		}
	})
}

func TestExpandQuery(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{"http://h/a/{id}", "http://h/a/x%2Fy?a=1%2B1&a=%C3%A9&b=x%20y"},
		{"http://h/a/{id}?k={id}", "http://h/a/x%2Fy?k=x%2Fy&a=1%2B1&a=%C3%A9&b=x%20y"},
		{"http://h/a?", "http://h/a?&a=1%2B1&a=%C3%A9&b=x%20y"},
	} {
		tmpl, err := ParseTemplate(tc.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		params := map[string]string{"id": "x/y"}
		if len(tmpl.Names()) == 0 {
			params = nil
		}
		q := url.Values{"b": {"x y"}, "a": {"1+1", "é"}}
		got, err := tmpl.ExpandQuery(params, q)
		if err != nil || got != tc.want {
			t.Errorf("%s: ExpandQuery = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
		want, _ := tmpl.Expand(params)
		if got, err := tmpl.ExpandQuery(params, nil); err != nil || got != want {
			t.Errorf("%s: ExpandQuery without a query = %q, %v; want %q", tc.tmpl, got, err, want)
		}
		if _, err := tmpl.ExpandQuery(nil, q); err == nil && len(tmpl.Names()) > 0 {
			t.Errorf("%s: missing parameter not reported", tc.tmpl)
		}
		if _, err := tmpl.ExpandQuery(map[string]string{"id": "1", "other": "2"}, q); err == nil || !strings.Contains(err.Error(), "is not in the URL template") {
			t.Errorf("%s: unused parameter: err = %v", tc.tmpl, err)
		}
	}
}
