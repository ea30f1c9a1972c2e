package httpenrich

import (
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Config configures an Enricher for items of type T, response bodies
// decoded into B, and results of type R. Zero fields mean the exported
// defaults; New validates every field and reports the first bad one as a
// *batchenrich.ConfigError naming it.
type Config[T, B, R any] struct {
	// URL is the request URL template, required: an absolute http or
	// https URL in which {name} stands for a parameter set per item by
	// Params.Path. A parameter in the path is escaped as a single path
	// segment ("a/b" becomes "a%2Fb", "." and ".." are escaped too); one
	// in the query part is escaped as a query value. Parameters are not
	// allowed in the scheme or host, nor is a fragment. Example:
	// "https://api.example.com/travelers/{id}/profile".
	URL string

	// Method is the HTTP method. Empty means GET.
	Method string

	// Header is sent with every request. "Accept: application/json" is
	// added unless set here or in Params.Header, and "Content-Type:
	// application/json" when there is a body.
	Header http.Header

	// Request returns the per-item parts of the request. Nil means every
	// item gets the same request (a template without parameters).
	Request func(item T) (Params, error)

	// PathParams, if not nil, lists the keys Request sets in Params.Path
	// for every item. New then refuses a URL with a parameter not listed,
	// or a list naming a parameter the URL does not have, so that a URL
	// the requests cannot fill fails before the first item rather than on
	// every item. Nil means New cannot know, and only Enrich finds out.
	PathParams []string

	// Validate turns an item and its decoded response into the result, or
	// an item error: return an error to reject a response that decoded
	// but is wrong (an *Error with ReasonInvalid then wraps it,
	// classified permanent unless your error is marked
	// batchenrich.Transient). Nil is allowed only when B and R are the same
	// type: the decoded body is then the result.
	Validate func(item T, resp *Response[B]) (R, error)

	// AcceptStatus reports whether a final response's status is a
	// success, to be decoded and validated; any other status is an item
	// error with ReasonStatus. Nil means 2xx. It sees only statuses the
	// retry policy does not retry, or that retries ran out on.
	AcceptStatus func(status int) bool

	// Client, if set, is the caller's go-retryablehttp client. New never
	// modifies it: the Enricher sends through its own retryablehttp.Client
	// built from Client's settings, as follows.
	//
	//   - Client.HTTPClient's Transport (and so its connection pool),
	//     CheckRedirect, Jar and Timeout are used, in a new http.Client
	//     whose transport wraps Client's to apply AttemptTimeout and
	//     RateLimit. That transport is the caller's: Close leaves it open.
	//     If Client.HTTPClient is nil, the Enricher builds its own from
	//     Pool, as without a Client.
	//   - Client.RetryMax, RetryWaitMin, RetryWaitMax, CheckRetry, Backoff
	//     and Logger are used where the matching Config field is zero
	//     (MaxAttempts is RetryMax+1), and this package's defaults where
	//     Client's are zero too (so a zero Client, which panics in
	//     go-retryablehttp, works). Whatever Backoff is used, its waits are
	//     capped at the maximum wait.
	//   - RequestLogHook, ResponseLogHook and PrepareRetry are used as they
	//     are. ErrorHandler is not: the Enricher needs the last response to
	//     report its status.
	Client *retryablehttp.Client

	// Pool sizes the connection pool of the transport the Enricher builds
	// when Client (or Client.HTTPClient) is nil. It must be zero
	// otherwise. Zero fields mean the defaults; see Pool.ForConcurrency
	// and PoolFromEnv.
	Pool Pool

	// AttemptTimeout bounds each attempt, from sending the request to
	// reading the last byte of the response body; an attempt that times
	// out is retried like a transport error. Each redirect followed gets
	// its own. Zero means DefaultAttemptTimeout.
	AttemptTimeout time.Duration

	// MaxAttempts bounds the requests sent per item, the first included.
	// Zero means Client.RetryMax+1 with a Client, else
	// DefaultMaxAttempts.
	MaxAttempts int

	// RetryWaitMin and RetryWaitMax bound the waits between attempts, and
	// RetryWaitMax also caps a Retry-After. Zero means the Client's, else
	// DefaultRetryWaitMin (or RetryWaitMax if smaller) and
	// DefaultRetryWaitMax (or RetryWaitMin if larger).
	RetryWaitMin, RetryWaitMax time.Duration

	// CheckRetry decides whether to retry after an attempt. Nil means the
	// Client's, else DefaultCheckRetry. Whatever it says, retries stop
	// when the item's context ends.
	CheckRetry retryablehttp.CheckRetry

	// Backoff decides how long to wait before a retry; its result is
	// capped at RetryWaitMax. Nil means the Client's, else DefaultBackoff.
	Backoff retryablehttp.Backoff

	// MaxBodyBytes bounds the response body read per item; a longer body
	// is an item error (ReasonTooLarge) and is not read further. Zero
	// means DefaultMaxBodyBytes; at most MaxMaxBodyBytes.
	MaxBodyBytes int64

	// RateLimit, when positive, caps the requests sent by this Enricher
	// (by all the Runner's concurrent enrichments together) at that many
	// per second; every attempt, retries and redirects included, waits
	// for its turn, honouring the item's context. A wait that would
	// outlast the context's deadline fails the item at once
	// (ReasonRateLimit). Zero means no limit.
	RateLimit float64

	// RateBurst is how many requests may go at once above RateLimit. Zero
	// means 1. Only used with RateLimit.
	RateBurst int

	// Logger receives go-retryablehttp's records (see LeveledLogger).
	// Nil means the Client's Logger, or silent without a Client. Either
	// way, the URLs in the records have their credentials masked.
	Logger *slog.Logger

	// Adaptive, when set, adapts the requests in flight to each host to
	// what it admits (AIMD, at most Adaptive.MaxConcurrency), lowering it
	// on overload but not on items failing on their own, holds every
	// request to the host after a host-wide refusal's Retry-After, and
	// slows down when its rate-limit headers say the budget runs low. See
	// Adaptive. Nil means
	// none of this: the Runner's Options.Concurrency alone bounds the
	// requests in flight.
	Adaptive *Adaptive

	// Budget, when set, is a budget for the URL's host shared with other
	// processes (sqlbatch.Budget, on PostgreSQL): every attempt to the
	// host, retries included, waits for a place under this process's
	// share of its concurrency ceiling and rate, after Adaptive's limit
	// and gate and Config.RateLimit. The share is renewed in the
	// background, never per request. New refuses a Budget whose Upstream
	// is not the URL's host, and one whose Upstream or Adapts panics (a
	// ConfigError wrapping the *batchenrich.PanicError). Attempts to another host (a redirect) are
	// not budgeted. Several Enrichers of a process (the partitions of a
	// batchenrich.NewPartitioned run, a riverenrich worker's jobs) may
	// share one Budget: the process's share holds across them. A Budget
	// that is an AdaptiveBudget and Adapts needs Adaptive (New refuses it
	// without) and is told the host's limit, pauses and probes. Nil means
	// no shared budget.
	Budget Budget

	// IdempotencyKey, when true, sends an Idempotency-Key header with
	// every request, derived from the run key (batchenrich.RunKeyFromContext)
	// and the item's key by IdempotencyKeyFor: the same on every attempt
	// of an item and after a crash and resume, so that a server honouring
	// it performs a POST once. An item enriched outside a Run with a run
	// key (Durable.RunKey), or with an empty key, fails with ReasonRequest.
	// Items sharing a key share the header. A Params.Header setting the
	// header wins. The partitions of a run (batchenrich.Options.Partition)
	// share its run key; a replay (batchenrich.NewReplay) runs under a run
	// key of its own (batchenrich.ReplayReport.ReplayKey), so its requests carry new
	// keys.
	IdempotencyKey bool

	// ItemKey names an item for IdempotencyKey. Nil means the item's Key
	// method (batchenrich.Keyer); New refuses IdempotencyKey when T has
	// none. Only used with IdempotencyKey.
	ItemKey func(item T) string
}

// MaxMaxBodyBytes bounds Config.MaxBodyBytes.
const MaxMaxBodyBytes = 1 << 40

// Params are the parts of a request that vary per item.
type Params struct {
	// Path holds the values of the URL template's parameters, unescaped.
	// Every parameter must have one, non-empty in the path, and every key
	// must be a parameter of the template: either mistake fails the item
	// with ReasonRequest.
	Path map[string]string
	// Query is appended to the URL's query, sorted by key, with spaces
	// encoded as %20.
	Query url.Values
	// Header is added to Config.Header, replacing the values of the keys
	// it sets.
	Header http.Header
	// Body, if not nil, is encoded as JSON and sent as the request body
	// (the same bytes on every attempt).
	Body any
}

// settings is a Config resolved against the Client and the defaults.
type settings struct {
	method       string
	attempts     int
	waitMin      time.Duration
	waitMax      time.Duration
	timeout      time.Duration
	checkRetry   retryablehttp.CheckRetry
	backoff      retryablehttp.Backoff
	maxBody      int64
	logger       any // nil, retryablehttp.Logger or retryablehttp.LeveledLogger
	accept       func(int) bool
	rateBurst    int
	ownTransport bool
	callerPolicy bool // checkRetry or backoff is the caller's (Config's or Client's)
}

// resolve validates c and fills in the defaults.
func (c *Config[T, B, R]) resolve() (settings, error) {
	var s settings
	cl := c.Client
	switch {
	case strings.TrimSpace(c.URL) == "":
		return s, optErr("URL", "required")
	case c.Method != "" && !isToken(c.Method):
		return s, optErr("Method", "not a valid HTTP method: "+c.Method)
	case c.AttemptTimeout < 0:
		return s, optErr("AttemptTimeout", "must not be negative")
	case c.MaxAttempts < 0:
		return s, optErr("MaxAttempts", "must not be negative")
	case c.RetryWaitMin < 0:
		return s, optErr("RetryWaitMin", "must not be negative")
	case c.RetryWaitMax < 0:
		return s, optErr("RetryWaitMax", "must not be negative")
	case c.MaxBodyBytes < 0:
		return s, optErr("MaxBodyBytes", "must not be negative")
	case c.MaxBodyBytes > MaxMaxBodyBytes:
		return s, optErr("MaxBodyBytes", "must be at most MaxMaxBodyBytes")
	case c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0):
		return s, optErr("RateLimit", "must be a finite number, positive or 0 for no limit")
	case c.RateBurst < 0:
		return s, optErr("RateBurst", "must not be negative")
	case c.RateBurst > 0 && c.RateLimit == 0:
		return s, optErr("RateBurst", "set without RateLimit")
	case cl != nil && cl.RetryMax < 0:
		return s, optErr("Client.RetryMax", "must not be negative")
	case cl != nil && (cl.RetryWaitMin < 0 || cl.RetryWaitMax < 0):
		return s, optErr("Client.RetryWaitMin", "the Client's waits must not be negative")
	}
	for k, vs := range c.Header {
		if !isToken(k) {
			return s, optErr("Header", "invalid header name "+strconv.Quote(k))
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return s, optErr("Header", "invalid value for "+k)
			}
		}
	}
	if err := c.Pool.validate("Pool."); err != nil {
		return s, err
	}
	s.ownTransport = cl == nil || cl.HTTPClient == nil
	if !s.ownTransport && c.Pool != (Pool{}) {
		return s, optErr("Pool", "must be zero when Client.HTTPClient is set: size the Client's transport instead")
	}

	s.method = c.Method
	if s.method == "" {
		s.method = http.MethodGet
	}
	s.attempts = c.MaxAttempts
	s.waitMin, s.waitMax = c.RetryWaitMin, c.RetryWaitMax
	s.checkRetry, s.backoff = c.CheckRetry, c.Backoff
	if c.Logger != nil {
		s.logger = LeveledLogger(c.Logger)
	}
	if cl != nil {
		if s.attempts == 0 {
			s.attempts = cl.RetryMax + 1
		}
		if s.waitMin == 0 {
			s.waitMin = cl.RetryWaitMin
		}
		if s.waitMax == 0 {
			s.waitMax = cl.RetryWaitMax
		}
		if s.checkRetry == nil {
			s.checkRetry = cl.CheckRetry
		}
		if s.backoff == nil {
			s.backoff = cl.Backoff
		}
		if s.logger == nil && cl.Logger != nil {
			switch cl.Logger.(type) {
			case retryablehttp.Logger, retryablehttp.LeveledLogger:
				s.logger = cl.Logger
			default:
				return s, optErr("Client.Logger", "must be a retryablehttp.Logger or LeveledLogger")
			}
		}
	}
	if s.attempts == 0 {
		s.attempts = DefaultMaxAttempts
	}
	if s.waitMin == 0 {
		s.waitMin = DefaultRetryWaitMin
		if s.waitMax > 0 {
			s.waitMin = min(s.waitMin, s.waitMax)
		}
	}
	if s.waitMax == 0 {
		s.waitMax = max(DefaultRetryWaitMax, s.waitMin)
	}
	if s.waitMin > s.waitMax {
		return s, optErr("RetryWaitMin", "must not exceed RetryWaitMax")
	}
	s.callerPolicy = s.checkRetry != nil || s.backoff != nil
	if s.checkRetry == nil {
		s.checkRetry = DefaultCheckRetry
	}
	if s.backoff == nil {
		s.backoff = DefaultBackoff
	}
	s.timeout = c.AttemptTimeout
	if s.timeout == 0 {
		s.timeout = DefaultAttemptTimeout
	}
	s.maxBody = c.MaxBodyBytes
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	s.accept = c.AcceptStatus
	if s.accept == nil {
		s.accept = func(code int) bool { return code >= 200 && code <= 299 }
	}
	s.rateBurst = c.RateBurst
	if s.rateBurst == 0 {
		s.rateBurst = 1
	}
	return s, nil
}

// isToken reports whether s is an RFC 9110 token (a method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool {
	return !strings.ContainsAny(v, "\r\n\x00")
}
