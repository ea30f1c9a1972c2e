package httpenrich

import (
	"strconv"
)

// Reason says in a few words why an item's request failed. It is meant to
// be stored or counted (an invalid row's reason column, a metric label);
// Error.Err has the details.
type Reason string

// The reasons an *Error can give.
const (
	// ReasonRequest: the request could not be built from the item (a
	// missing path parameter or one the URL template does not use, a
	// body that does not encode, an invalid
	// header, an error from Config.Request). Fatal (batchenrich.Fatal):
	// the program is at fault and every item would fail alike, so the
	// Runner stops the run at once instead of storing one invalid row per
	// item. An error from Config.Request that is itself marked
	// batchenrich.Transient or batchenrich.Permanent (this item's data is
	// bad) keeps its class.
	ReasonRequest Reason = "bad request"
	// ReasonTransport: no response (connection refused or reset, DNS,
	// TLS). Transient when retries ran out, permanent when the retry
	// policy refused to retry (for example a certificate error).
	ReasonTransport Reason = "transport error"
	// ReasonTimeout: the last attempt exceeded Config.AttemptTimeout,
	// waiting for headers or reading the body. Transient.
	ReasonTimeout Reason = "timeout"
	// ReasonStatus: the final response had a status that
	// Config.AcceptStatus rejects (by default, anything but 2xx). Transient
	// when retries ran out on a retryable status (408, 429, 5xx),
	// permanent otherwise (400, 404, ...).
	ReasonStatus Reason = "unexpected status"
	// ReasonTooLarge: the response body exceeded Config.MaxBodyBytes.
	// Permanent.
	ReasonTooLarge Reason = "body too large"
	// ReasonMalformed: the response body is not valid JSON for the
	// response type. Permanent.
	ReasonMalformed Reason = "malformed JSON"
	// ReasonInvalid: Config.Validate rejected the response. Permanent,
	// unless Validate's error is itself marked batchenrich.Transient.
	ReasonInvalid Reason = "invalid response"
	// ReasonRateLimit: waiting for the client-side rate limit would
	// outlast the context's deadline. Transient.
	ReasonRateLimit Reason = "rate limit"
	// ReasonMissing: a bulk answer (NewBulk) has no entry for the item's
	// key. Permanent.
	ReasonMissing Reason = "missing from answer"
	// ReasonItem: a bulk answer (NewBulk) gives an error for the item
	// (Entry.Err). Permanent, unless that error is marked
	// batchenrich.Transient.
	ReasonItem Reason = "item error"
	// ReasonCanceled: the context ended; Err is the context's error.
	// Unclassified (batchenrich.Classify reports a deadline as
	// transient).
	ReasonCanceled Reason = "canceled"
)

// Error is the failure of one item's request. Enrich returns it wrapped by
// batchenrich.Transient, batchenrich.Permanent or batchenrich.Fatal (see
// Reason), so batchenrich.Classify works on it; use errors.As to get at the
// fields, and batchenrich.FailureReason (which calls Error.FailureReason)
// for a short reason to store:
//
//	var he *httpenrich.Error
//	if errors.As(res.Err, &he) {
//		log.Print(he.Status, he.Reason)
//	}
type Error struct {
	// Method is the request's HTTP method.
	Method string
	// URL is the request URL (the template when the request could not be
	// built), its secrets masked: the userinfo, the values of query
	// parameters whose names look like credentials (api_key, token, sig,
	// password, … in any case) and any fragment.
	URL string
	// Status is the status of the last response received, or 0 if the
	// last attempt got none.
	Status int
	// Attempts is the number of requests sent, retries included.
	Attempts int
	// Reason is the short reason.
	Reason Reason
	// Err is the underlying error, if any: the transport's, the JSON
	// decoder's, Validate's, or the context's.
	Err error
}

// Error returns "METHOD URL: reason (status N, K attempts): err", with the
// URL's query left out, since it may carry keys or personal data. It has
// no package prefix: the Runner's *ItemError around it says
// "batchenrich: batch N item I (key): " (see "Errors" in package
// batchenrich).
func (e *Error) Error() string {
	u := e.URL
	for i := 0; i < len(u); i++ {
		if u[i] == '?' {
			u = u[:i]
			break
		}
	}
	s := e.Method + " " + u + ": " + string(e.Reason)
	if e.Status != 0 || e.Attempts != 0 {
		s += " (status " + strconv.Itoa(e.Status) + ", " + strconv.Itoa(e.Attempts) + " attempt"
		if e.Attempts != 1 {
			s += "s"
		}
		s += ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }
