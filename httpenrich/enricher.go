package httpenrich

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/httpx"
	"github.com/batchenrich/batchenrich/redact"
	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/time/rate"
)

// Response is what Validate receives: the final response of an item's
// request, its body read and decoded.
type Response[B any] struct {
	// Status is the HTTP status code.
	Status int
	// Header is the response header.
	Header http.Header
	// Body is the body decoded from JSON; the zero value when the body is
	// empty.
	Body B
	// Raw is the body as received.
	Raw []byte
	// Attempts is the number of requests sent, retries included.
	Attempts int
}

// Enricher is a batchenrich.Enricher[T, R] that makes one HTTP request per
// item, with retries, and turns the JSON response into the item's result.
// T is the item type, B the type the response body is decoded into
// (json.RawMessage to keep it raw), R the result type. It is safe for
// concurrent use. Create one with New; Close it when done
// to release its idle connections.
type Enricher[T, B, R any] struct {
	tmpl     *httpx.Template
	method   string
	header   http.Header
	request  func(T) (Params, error)
	validate func(T, *Response[B]) (R, error)
	decode   func(raw []byte, dst *B) error
	accept   func(int) bool
	maxBody  int64
	client   *retryablehttp.Client
	owned    *http.Transport // the transport New built, nil if the caller's
	up       *upstreams      // Config.Adaptive's state, nil without
	keyOf    func(T) string  // Config.IdempotencyKey's item key, nil without
	desc     string          // what Describe returns

	// proto, when the URL template has no parameter before its query, is
	// a request for the text before it, which every item's request copies
	// instead of parsing its whole URL; prefixLen is that text's length.
	proto     *http.Request
	prefixLen int
	// shareHeader: requests without headers of their own may all carry
	// header itself rather than a copy. True when nothing but net/http
	// and this package sees the request (no Config.Client transport or
	// hooks, and no CheckRetry or Backoff of the caller's, which see it as
	// resp.Request), neither modifies a request's header, and no
	// Config.IdempotencyKey adds a header to each request.
	shareHeader bool
}

var _ batchenrich.Enricher[int, json.RawMessage] = (*Enricher[int, json.RawMessage, json.RawMessage])(nil)

// errGaveUp marks a request whose attempts ran out on a retryable status.
var errGaveUp = errors.New("retries exhausted")

// New returns an Enricher configured by cfg. It returns a
// *batchenrich.ConfigError (matching batchenrich.ErrInvalidConfig) naming
// the first invalid field. It never modifies cfg.Client.
func New[T, B, R any](cfg Config[T, B, R]) (*Enricher[T, B, R], error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	tmpl, err := httpx.ParseTemplate(cfg.URL)
	if err != nil {
		return nil, &batchenrich.ConfigError{Package: "httpenrich", Field: "URL", Err: err}
	}
	if err := checkParams(tmpl, cfg.Request != nil, cfg.PathParams); err != nil {
		return nil, err
	}
	validate := cfg.Validate
	if validate == nil {
		if reflect.TypeFor[B]() != reflect.TypeFor[R]() {
			return nil, optErr("Validate", "required unless the response and result types are the same")
		}
		validate = func(_ T, r *Response[B]) (R, error) { return any(r.Body).(R), nil }
	}

	up, err := newUpstreams(cfg.Adaptive, s.waitMax)
	if err != nil {
		return nil, err
	}
	if err := checkBudget(cfg.Budget, cfg.URL, up != nil); err != nil {
		return nil, err
	}
	if up != nil {
		up.budget = adaptiveBudget(cfg.Budget)
	}
	keyOf, err := idempotencyKeyOf(cfg.IdempotencyKey, cfg.ItemKey)
	if err != nil {
		return nil, err
	}

	e := &Enricher[T, B, R]{
		tmpl:     tmpl,
		method:   s.method,
		header:   cfg.Header.Clone(),
		request:  cfg.Request,
		validate: validate,
		decode:   decoder[B](),
		accept:   s.accept,
		maxBody:  s.maxBody,
		up:       up,
		keyOf:    keyOf,
		desc:     describe(s.method, cfg.URL),
	}
	if e.header == nil {
		e.header = http.Header{}
	}
	if e.header.Get("Accept") == "" {
		e.header.Set("Accept", "application/json")
	}
	if prefix, ok := tmpl.FixedPrefix(); ok {
		// If prefix does not make a request, neither will the whole URL:
		// each item's request then fails as it would have.
		if r, err := http.NewRequest(s.method, prefix, nil); err == nil {
			e.proto, e.prefixLen = r, len(prefix)
		}
	}
	cl := cfg.Client
	e.shareHeader = s.ownTransport && !s.callerPolicy && keyOf == nil &&
		(cl == nil || cl.RequestLogHook == nil && cl.ResponseLogHook == nil && cl.PrepareRetry == nil)

	var limiter *rate.Limiter
	if cfg.RateLimit > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), s.rateBurst)
	}
	hc := &http.Client{}
	var base http.RoundTripper
	if s.ownTransport {
		t, err := NewTransport(cfg.Pool)
		if err != nil {
			return nil, err
		}
		e.owned, base = t, t
	} else {
		src := cfg.Client.HTTPClient
		base = src.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		hc.CheckRedirect, hc.Jar, hc.Timeout = src.CheckRedirect, src.Jar, src.Timeout
	}
	ht := &httpx.Transport{Base: base, Timeout: s.timeout, Limiter: limiter}
	if up != nil {
		ht.Admit = up.admit
	}
	if cfg.Budget != nil {
		ht.Admit = budgetAdmit(cfg.Budget, ht.Admit)
	}
	hc.Transport = ht

	check, backoff, waitMax := s.checkRetry, s.backoff, s.waitMax
	c := &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       redactingLogger(s.logger),
		RetryWaitMin: s.waitMin,
		RetryWaitMax: s.waitMax,
		RetryMax:     s.attempts - 1,
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			st := httpx.StateFrom(ctx)
			if st != nil && st.Abort != nil {
				return false, st.Abort
			}
			retry, cerr := check(ctx, resp, err)
			if ctxErr := ctx.Err(); ctxErr != nil {
				retry = false
				if cerr == nil {
					cerr = ctxErr
				}
			}
			if st != nil {
				st.Retry = retry
			}
			return retry, cerr
		},
		Backoff: func(min, max time.Duration, n int, resp *http.Response) time.Duration {
			d := clamp(backoff(min, max, n, resp), 0, waitMax)
			if up != nil {
				d = up.retryWait(d, n, resp)
			}
			return d
		},
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if err == nil {
				err = errGaveUp
			}
			return resp, err
		},
	}
	if cl != nil {
		c.RequestLogHook, c.ResponseLogHook, c.PrepareRetry = cl.RequestLogHook, cl.ResponseLogHook, cl.PrepareRetry
	}
	e.client = c
	return e, nil
}

// Enrich sends item's request, with retries, and returns Validate's result
// for the final response. Every failure is an *Error, wrapped by
// batchenrich.Transient, batchenrich.Permanent or batchenrich.Fatal
// according to its Reason (ReasonCanceled is not wrapped); retrieve it with
// errors.As.
func (e *Enricher[T, B, R]) Enrich(ctx context.Context, item T) (R, error) {
	var zero R
	c := &call[B]{maxBody: e.maxBody}
	req, err := e.newRequest(httpx.WithState(ctx, &c.st), c, item)
	if err != nil {
		return zero, e.requestError(err)
	}
	if err := e.send(ctx, c, req); err != nil {
		return zero, err
	}
	// The *Error is built only for a failure: redacting copies the URL.
	newErr := func() *Error {
		return &Error{Method: e.method, URL: redact.String(req.URL.String()), Status: c.st.Status, Attempts: c.st.Attempts}
	}
	r := &c.resp
	r.Attempts = c.st.Attempts
	return e.result(item, r, newErr)
}

// classed wraps he by batchenrich.Transient, Permanent or Fatal as class
// says (not at all when Unclassified).
func classed(he *Error, class batchenrich.Class) error {
	switch class {
	case batchenrich.ClassTransient:
		return batchenrich.Transient(he)
	case batchenrich.ClassPermanent:
		return batchenrich.Permanent(he)
	case batchenrich.ClassFatal:
		return batchenrich.Fatal(he)
	}
	return he
}

// requestError is the error of a request that could not be built:
// the program's fault, not the item's, since every item would fail alike
// (Fatal), unless the error is marked with a class itself.
func (e *Enricher[T, B, R]) requestError(err error) error {
	class := batchenrich.Classify(err)
	if class == batchenrich.Unclassified {
		class = batchenrich.ClassFatal
	}
	return classed(&Error{Method: e.method, URL: redact.String(e.tmpl.String()), Reason: ReasonRequest, Err: err}, class)
}

// send sends req, built in c, with retries, and reads the final response
// into c.resp. It returns nil when that response is one to decode (its
// status accepted, its body within bounds), else the classified *Error.
func (e *Enricher[T, B, R]) send(ctx context.Context, c *call[B], req *retryablehttp.Request) error {
	st := &c.st
	// The body is read inside the attempt, under its timeout, so that a
	// slow or broken body is retried like any other failed attempt.
	req.SetResponseHandler(c.handle)

	resp, err := e.client.Do(req)
	if resp != nil && !c.handled {
		drain(resp.Body)
	}
	// The *Error is built only for a failure: redacting copies the URL.
	newErr := func() *Error {
		return &Error{Method: e.method, URL: redact.String(req.URL.String()), Status: st.Status, Attempts: st.Attempts}
	}
	status := c.resp.Status
	if err != nil || !c.handled {
		he := newErr()
		if err == nil {
			err = errors.New("no response")
		}
		if cerr := ctx.Err(); cerr != nil {
			he.Reason, he.Err = ReasonCanceled, cerr
			return classed(he, batchenrich.Unclassified)
		}
		if st.Abort != nil {
			he.Reason, he.Err = ReasonRateLimit, st.Abort
			return classed(he, batchenrich.ClassTransient)
		}
		if errors.Is(err, errGaveUp) {
			he.Reason = ReasonStatus
			return classed(he, batchenrich.ClassTransient)
		}
		he.Err = err
		var ue *url.Error
		if errors.As(err, &ue) {
			he.Err = ue.Err // its message repeats the URL, query included
		}
		if isTimeout(err) {
			he.Reason = ReasonTimeout
			return classed(he, batchenrich.ClassTransient)
		}
		he.Reason = ReasonTransport
		if st.Retry {
			return classed(he, batchenrich.ClassTransient)
		}
		return classed(he, batchenrich.ClassPermanent)
	}

	switch {
	case c.tooLarge:
		he := newErr()
		he.Status, he.Reason, he.Err = status, ReasonTooLarge, fmt.Errorf("more than %d bytes", e.maxBody)
		return classed(he, batchenrich.ClassPermanent)
	case !e.accept(status):
		he := newErr()
		he.Status, he.Reason = status, ReasonStatus
		return classed(he, batchenrich.ClassPermanent)
	}
	return nil
}

// result decodes r.Raw into r.Body and returns Validate's result for item,
// or the classified *Error that newErr starts.
func (e *Enricher[T, B, R]) result(item T, r *Response[B], newErr func() *Error) (R, error) {
	var zero R
	if len(bytes.TrimSpace(r.Raw)) > 0 {
		if err := e.decode(r.Raw, &r.Body); err != nil {
			he := newErr()
			he.Status, he.Reason, he.Err = r.Status, ReasonMalformed, err
			return zero, classed(he, batchenrich.ClassPermanent)
		}
	}
	v, err := e.validate(item, r)
	if err != nil {
		he := newErr()
		he.Status, he.Reason, he.Err = r.Status, ReasonInvalid, err
		class := batchenrich.Classify(err)
		if class == batchenrich.Unclassified {
			class = batchenrich.ClassPermanent
		}
		return zero, classed(he, class)
	}
	return v, nil
}

// call is the state of one Enrich call, in one allocation: the request
// and its URL, the attempts' record, what the response handler read, and
// the Response handed to Validate.
type call[B any] struct {
	req      retryablehttp.Request
	url      url.URL
	st       httpx.State
	maxBody  int64
	handled  bool // the last attempt's response was read
	tooLarge bool
	resp     Response[B]
}

// handle reads an attempt's response (go-retryablehttp's response
// handler).
func (c *call[B]) handle(resp *http.Response) error {
	defer resp.Body.Close()
	raw, tooLarge, err := httpx.ReadLimitedSize(resp.Body, c.maxBody, resp.ContentLength)
	if err != nil && !tooLarge {
		c.handled = false
		return err
	}
	c.handled, c.tooLarge = true, tooLarge
	c.resp.Status, c.resp.Header, c.resp.Raw = resp.StatusCode, resp.Header, raw
	return nil
}

// newRequest builds item's request in c.
func (e *Enricher[T, B, R]) newRequest(ctx context.Context, c *call[B], item T) (*retryablehttp.Request, error) {
	var p Params
	if e.request != nil {
		var err error
		if p, err = e.request(item); err != nil {
			return nil, err
		}
	}
	var idem func() (string, error) // nil without IdempotencyKey: no allocation
	if e.keyOf != nil {
		idem = func() (string, error) { return idempotencyKey(ctx, e.keyOf, item) }
	}
	return e.buildRequest(ctx, c, p, idem)
}

// buildRequest builds the request of p in c; idem, when not nil, returns
// its Idempotency-Key.
func (e *Enricher[T, B, R]) buildRequest(ctx context.Context, c *call[B], p Params, idem func() (string, error)) (*retryablehttp.Request, error) {
	u, err := e.tmpl.ExpandQuery(p.Path, p.Query)
	if err != nil {
		return nil, err
	}
	var body any // a nil interface: no body
	if p.Body != nil {
		b, err := json.Marshal(p.Body)
		if err != nil {
			return nil, fmt.Errorf("encode body: %w", err)
		}
		body = b
	}
	var hr *http.Request
	if e.proto != nil {
		// The URL as url.Parse would give it, without parsing: the
		// prefix's, then what ExpandQuery wrote after the prefix ("" or
		// '?' and the query).
		c.url = *e.proto.URL
		switch q := u[e.prefixLen:]; q {
		case "":
		case "?":
			c.url.ForceQuery = true
		default:
			c.url.RawQuery = q[1:]
		}
		hr = e.proto.WithContext(ctx)
		hr.URL = &c.url
	} else {
		var err error
		if hr, err = http.NewRequestWithContext(ctx, e.method, u, nil); err != nil {
			return nil, err
		}
	}
	req := &c.req
	req.Request = hr
	if err := req.SetBody(body); err != nil {
		return nil, err
	}
	if e.shareHeader && len(p.Header) == 0 && body == nil {
		// Nothing to add, and nothing downstream writes to it.
		req.Header = e.header
		return req, nil
	}
	h := e.header.Clone()
	for k, vs := range p.Header {
		if !isToken(k) {
			return nil, fmt.Errorf("invalid header name %q", k)
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return nil, fmt.Errorf("invalid value for header %s", k)
			}
		}
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if len(p.Header) > 0 && h.Get("Accept") == "" {
		// Params.Header emptied the Accept set by New.
		h.Set("Accept", "application/json")
	}
	if body != nil && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	if idem != nil && h.Get(IdempotencyKeyHeader) == "" {
		k, err := idem()
		if err != nil {
			return nil, err
		}
		h.Set(IdempotencyKeyHeader, k)
	}
	req.Header = h
	return req, nil
}

// Limits returns the current concurrency limit of each host the Enricher
// sent requests to (host or host:port, as in the URL), with
// Config.Adaptive; nil without. It is safe for concurrent use: e.Limits
// fits otelenrich's Config.Limits, which exports it as a gauge.
func (e *Enricher[T, B, R]) Limits() map[string]int {
	if e.up == nil {
		return nil
	}
	return e.up.limits()
}

// CloseIdleConnections closes the idle connections of the transport New
// built. It does nothing when the transport is the caller's (Config.Client).
// The Enricher stays usable.
func (e *Enricher[T, B, R]) CloseIdleConnections() {
	if e.owned != nil {
		e.owned.CloseIdleConnections()
	}
}

// Close calls CloseIdleConnections and returns nil. Call it when the
// Enricher is no longer used, so that no idle connection outlives it.
func (e *Enricher[T, B, R]) Close() error {
	e.CloseIdleConnections()
	return nil
}

// drain discards what is left of a body, up to a bound, so that its
// connection can be reused, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
