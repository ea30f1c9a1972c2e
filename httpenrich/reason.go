package httpenrich

import (
	"errors"
	"net"
	"strconv"
	"strings"
)

// FailureReason implements batchenrich.FailureReasoner: the failure in a
// few words, without the method and URL that Error gives (so without host,
// port, path or query). A rejected status reads "status 404 after 1
// attempt"; anything else reads "reason: cause (status N, after K
// attempts)", the parts that do not apply left out, e.g. "transport error:
// dial: connect: connection refused (after 3 attempts)" or "invalid
// response: missing name (status 200, after 1 attempt)". Use
// batchenrich.FailureReason(res.Err) to get it from a Result.
func (e *Error) FailureReason() string {
	attempts := ""
	if e.Attempts > 0 {
		attempts = "after " + strconv.Itoa(e.Attempts) + " attempt"
		if e.Attempts != 1 {
			attempts += "s"
		}
	}
	if e.Reason == ReasonStatus && e.Status != 0 {
		s := "status " + strconv.Itoa(e.Status)
		if attempts != "" {
			s += " " + attempts
		}
		return s
	}
	s := string(e.Reason)
	if e.Err != nil {
		s += ": " + bareError(e.Err)
	}
	var paren []string
	if e.Status != 0 {
		paren = append(paren, "status "+strconv.Itoa(e.Status))
	}
	if attempts != "" {
		paren = append(paren, attempts)
	}
	if len(paren) > 0 {
		s += " (" + strings.Join(paren, ", ") + ")"
	}
	return s
}

// bareError returns err's text without the addresses that a *net.OpError
// names ("dial tcp 10.0.0.1:443: connect: connection refused" becomes
// "dial: connect: connection refused").
func bareError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	return err.Error()
}
