package httpenrich

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// budget is a host's announced request budget.
type budget struct {
	limit     int           // requests per window; -1 when not announced
	remaining int           // requests left in the window
	reset     time.Duration // until the window resets; 0 when not announced
}

// parseBudget reads a response's rate-limit headers, in this order of
// preference: the IETF draft's RateLimit (structured `"name";r=R;t=T`, with
// the quota q from RateLimit-Policy, or the older `limit=L, remaining=R,
// reset=T` dictionary), the draft's older RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset, and X-RateLimit-Limit,
// X-RateLimit-Remaining and X-RateLimit-Reset (seconds, or a Unix time in
// seconds or milliseconds). ok is false when no remaining count is
// announced.
func parseBudget(h http.Header, now time.Time) (b budget, ok bool) {
	if v := h.Get("RateLimit"); v != "" {
		if b, ok = parseRateLimitField(v); ok {
			if b.limit < 0 {
				b.limit = parsePolicyQuota(h.Get("RateLimit-Policy"))
			}
			return b, true
		}
	}
	for _, prefix := range []string{"RateLimit-", "X-RateLimit-"} {
		rem, ok := leadingInt(h.Get(prefix + "Remaining"))
		if !ok {
			continue
		}
		b = budget{limit: -1, remaining: rem}
		if l, ok := leadingInt(h.Get(prefix + "Limit")); ok {
			b.limit = l
		}
		if r, ok := leadingInt(h.Get(prefix + "Reset")); ok {
			b.reset = resetDelay(int64(r), now)
		}
		return b, true
	}
	return budget{}, false
}

// parseRateLimitField reads a RateLimit field. With several policies
// (comma-separated), the one with the fewest requests remaining counts.
func parseRateLimitField(v string) (budget, bool) {
	best, found := budget{limit: -1}, false
	var dict budget // the older one-dictionary form: limit=, remaining=, reset=
	dict.limit = -1
	dictOK := false
	for _, member := range strings.Split(v, ",") {
		b := budget{limit: -1, remaining: -1}
		for _, param := range strings.Split(member, ";") {
			k, val, has := strings.Cut(strings.TrimSpace(param), "=")
			if !has {
				continue
			}
			n, ok := leadingInt(val)
			if !ok {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "r":
				b.remaining = n
			case "t":
				b.reset = seconds(int64(n))
			case "q":
				b.limit = n
			case "limit":
				dict.limit = n
			case "remaining":
				dict.remaining, dictOK = n, true
			case "reset":
				dict.reset = seconds(int64(n))
			}
		}
		if b.remaining >= 0 && (!found || b.remaining < best.remaining) {
			best, found = b, true
		}
	}
	if found {
		return best, true
	}
	return dict, dictOK
}

// parsePolicyQuota returns the smallest quota (q=) of a RateLimit-Policy
// field, or -1.
func parsePolicyQuota(v string) int {
	q := -1
	for _, member := range strings.Split(v, ",") {
		for _, param := range strings.Split(member, ";") {
			k, val, has := strings.Cut(strings.TrimSpace(param), "=")
			if !has || strings.TrimSpace(k) != "q" {
				continue
			}
			if n, ok := leadingInt(val); ok && (q < 0 || n < q) {
				q = n
			}
		}
	}
	return q
}

// resetDelay turns an X-RateLimit-Reset value into a delay: a number of
// seconds, or a Unix time in seconds (after 2001) or milliseconds.
func resetDelay(v int64, now time.Time) time.Duration {
	switch {
	case v > 1e12:
		v = v/1000 - now.Unix()
	case v > 1e9:
		v -= now.Unix()
	}
	return seconds(v)
}

// maxReset caps an announced reset: whatever a header says, the pause is
// capped again at Config.RetryWaitMax.
const maxReset = 24 * time.Hour

// seconds returns v seconds, 0 if negative, at most maxReset.
func seconds(v int64) time.Duration {
	if v <= 0 {
		return 0
	}
	return time.Duration(min(v, int64(maxReset/time.Second))) * time.Second
}

// leadingInt parses the non-negative integer that v starts with, after
// spaces and an optional quote ("100", "100;w=60", "100, 100").
func leadingInt(v string) (int, bool) {
	v = strings.TrimLeft(v, " \t\"")
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 || i > 15 {
		return 0, false
	}
	n, err := strconv.Atoi(v[:i])
	return n, err == nil
}

// pace says what a budget asks of the requests to its host, given the
// current concurrency limit: a pause until the reset when nothing remains,
// an even spacing (requests per second) when little remains, or neither.
func (b budget) pace(concurrency int) (pause time.Duration, perSecond float64) {
	if b.reset <= 0 {
		return 0, 0 // no time to spread over
	}
	if b.remaining <= 0 {
		return b.reset, 0
	}
	low := b.remaining <= concurrency || (b.limit > 0 && b.remaining*10 <= b.limit)
	if !low {
		return 0, 0
	}
	return 0, float64(b.remaining) / b.reset.Seconds()
}
