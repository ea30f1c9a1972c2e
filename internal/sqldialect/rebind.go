package sqldialect

import (
	"strconv"
	"strings"
)

// Rebind turns the '?' placeholders of query into the dialect's own ($1,
// $2, … on PostgreSQL), leaving alone every '?' inside a quoted
// identifier ("t?x"), a string literal ('a?', E'a\'?'), a dollar-quoted
// string ($$a?$$, $tag$a?$tag$) or a comment (-- …, /* … */). sqlx's
// Rebind rewrites those too, which turns a table named "t?x" into "t$1x".
func (d Dialect) Rebind(query string) string {
	if d.Kind != PostgreSQL || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	scan(query, func(seg string, code bool) {
		if !code {
			b.WriteString(seg)
			return
		}
		for {
			i := strings.IndexByte(seg, '?')
			if i < 0 {
				b.WriteString(seg)
				return
			}
			n++
			b.WriteString(seg[:i])
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			seg = seg[i+1:]
		}
	})
	return b.String()
}

// CountPlaceholders returns the number of '?' placeholders of query that
// Rebind rewrites: those outside quoted identifiers, literals and
// comments.
func CountPlaceholders(query string) int {
	n := 0
	scan(query, func(seg string, code bool) {
		if code {
			n += strings.Count(seg, "?")
		}
	})
	return n
}

// scan splits query into SQL code and quoted or commented segments, in
// order, and calls f for each (code reports which). An unterminated quote
// or comment runs to the end of query.
func scan(query string, f func(seg string, code bool)) {
	start := 0
	i := 0
	for i < len(query) {
		c := query[i]
		var end int
		switch {
		case c == '"':
			end = closeQuote(query, i, '"', false)
		case c == '\'':
			// E'…' strings take backslash escapes.
			esc := i > 0 && (query[i-1] == 'E' || query[i-1] == 'e') && (i == 1 || !isIdentByte(query[i-2]))
			end = closeQuote(query, i, '\'', esc)
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			end = strings.IndexByte(query[i:], '\n')
			if end < 0 {
				end = len(query)
			} else {
				end += i + 1
			}
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			end = closeBlockComment(query, i)
		case c == '$' && (i == 0 || !isIdentByte(query[i-1])):
			tag, ok := dollarTag(query[i:])
			if !ok {
				i++
				continue
			}
			j := strings.Index(query[i+len(tag):], tag)
			if j < 0 {
				end = len(query)
			} else {
				end = i + len(tag) + j + len(tag)
			}
		default:
			i++
			continue
		}
		if start < i {
			f(query[start:i], true)
		}
		f(query[i:end], false)
		start, i = end, end
	}
	if start < len(query) {
		f(query[start:], true)
	}
}

// closeQuote returns the index after the quote closing the one at i; a
// doubled quote is an escaped one.
func closeQuote(q string, i int, quote byte, backslash bool) int {
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if backslash {
				j++
			}
		case quote:
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

// closeBlockComment returns the index after the comment starting at i;
// PostgreSQL's block comments nest.
func closeBlockComment(q string, i int) int {
	depth := 0
	for j := i; j+1 < len(q); j++ {
		switch {
		case q[j] == '/' && q[j+1] == '*':
			depth++
			j++
		case q[j] == '*' && q[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(q)
}

// dollarTag returns the $tag$ opening a dollar-quoted string at the start
// of s ($$ or $name$), if there is one ($1 is a parameter, not a tag).
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '$':
			return s[:j+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
		case c >= '0' && c <= '9' && j > 1:
		default:
			return "", false
		}
	}
	return "", false
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
