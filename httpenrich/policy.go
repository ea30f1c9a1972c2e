package httpenrich

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/batchenrich/batchenrich/internal/httpx"
	"github.com/hashicorp/go-retryablehttp"
)

// Retry defaults, used for zero Config fields.
const (
	// DefaultMaxAttempts is the number of requests sent for an item at
	// most: the first and up to three retries.
	DefaultMaxAttempts = 4
	// DefaultRetryWaitMin is the wait before the first retry, doubled
	// for each further one.
	DefaultRetryWaitMin = 100 * time.Millisecond
	// DefaultRetryWaitMax caps every wait between attempts, including
	// one asked for by a Retry-After header.
	DefaultRetryWaitMax = 5 * time.Second
	// DefaultAttemptTimeout bounds each attempt, from sending the request
	// to reading the last byte of the response body.
	DefaultAttemptTimeout = 10 * time.Second
	// DefaultMaxBodyBytes bounds the response body read per item.
	DefaultMaxBodyBytes = 1 << 20
)

var (
	_ retryablehttp.CheckRetry = DefaultCheckRetry
	_ retryablehttp.Backoff    = DefaultBackoff
)

// DefaultCheckRetry is the default Config.CheckRetry. It retries transport
// errors and attempt timeouts, and the statuses 408 Request Timeout, 429 Too
// Many Requests and 5xx except 501 Not Implemented; it does not retry other
// statuses, nor errors that will not go away: certificate errors and too
// many redirects. When ctx has ended it stops at once, returning ctx's
// error.
func DefaultCheckRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if cerr := ctx.Err(); cerr != nil {
		return false, cerr
	}
	if err != nil {
		return !permanentTransportError(err), nil
	}
	if resp == nil {
		return false, nil
	}
	return RetryableStatus(resp.StatusCode), nil
}

// RetryableStatus reports whether DefaultCheckRetry retries a response with
// this status: 408, 429, and 5xx except 501.
func RetryableStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	case code == http.StatusNotImplemented:
		return false
	default:
		return code >= 500 && code <= 599
	}
}

func permanentTransportError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		invalidCert      x509.CertificateInvalidError
		hostname         x509.HostnameError
		verify           *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownAuthority) || errors.As(err, &invalidCert) ||
		errors.As(err, &hostname) || errors.As(err, &verify) {
		return true
	}
	// net/http reports a redirect loop only as text.
	return strings.Contains(err.Error(), "stopped after") && strings.Contains(err.Error(), "redirects")
}

// DefaultBackoff is the default Config.Backoff: exponential backoff with
// jitter, honouring Retry-After but never waiting more than max.
//
// Before retry n (from 0) it waits a random duration between half and all
// of min·2ⁿ, and at least min, capped at max. When the response carries a
// Retry-After header (seconds or an HTTP-date) it waits that long instead,
// also capped at max: unlike go-retryablehttp's DefaultBackoff (its issue
// #247), a server asking for an hour does not stall the run for an hour.
func DefaultBackoff(min, max time.Duration, attemptNum int, resp *http.Response) time.Duration {
	if d, ok := RetryAfter(resp, time.Now()); ok {
		return clamp(d, 0, max)
	}
	if min <= 0 {
		return 0
	}
	d := min
	for i := 0; i < attemptNum && d < max; i++ {
		d *= 2
		if d <= 0 { // overflow
			d = max
		}
	}
	d = clamp(d, min, max)
	half := d / 2
	d = half + rand.N(d-half+1)
	return clamp(d, min, max)
}

func clamp(d, lo, hi time.Duration) time.Duration {
	if d > hi {
		d = hi
	}
	if d < lo {
		d = lo
	}
	return d
}

// RetryAfter returns the wait a response's Retry-After header asks for,
// given as seconds or as an HTTP-date relative to now. ok is false when resp
// is nil or has no valid header. The wait is not capped: a Backoff must cap
// it. A date in the past gives 0.
func RetryAfter(resp *http.Response, now time.Time) (d time.Duration, ok bool) {
	if resp == nil {
		return 0, false
	}
	return httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
}
