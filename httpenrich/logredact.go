package httpenrich

import (
	"fmt"

	"github.com/batchenrich/batchenrich/redact"
	"github.com/hashicorp/go-retryablehttp"
)

// redactingLogger wraps the logger go-retryablehttp writes to, so that the
// URLs in its records ("performing request", "retrying request", "request
// failed" and the transport error's text) show no credentials:
// go-retryablehttp masks a URL's password only, not its user name nor
// query parameters such as api_key or token. nil stays nil.
func redactingLogger(l any) any {
	switch v := l.(type) {
	case retryablehttp.LeveledLogger:
		return leveledRedactor{v}
	case retryablehttp.Logger:
		return printfRedactor{v}
	}
	return l
}

type leveledRedactor struct{ l retryablehttp.LeveledLogger }

func (r leveledRedactor) Error(msg string, kv ...any) { r.l.Error(msg, redactKV(kv)...) }
func (r leveledRedactor) Warn(msg string, kv ...any)  { r.l.Warn(msg, redactKV(kv)...) }
func (r leveledRedactor) Info(msg string, kv ...any)  { r.l.Info(msg, redactKV(kv)...) }
func (r leveledRedactor) Debug(msg string, kv ...any) { r.l.Debug(msg, redactKV(kv)...) }

type printfRedactor struct{ l retryablehttp.Logger }

func (r printfRedactor) Printf(format string, args ...any) {
	r.l.Printf("%s", redact.Text(fmt.Sprintf(format, args...)))
}

// redactKV masks the URLs in the string and error values of a record's
// key-value pairs.
func redactKV(kv []any) []any {
	out := make([]any, len(kv))
	for i, v := range kv {
		switch x := v.(type) {
		case string:
			out[i] = redact.Text(x)
		case error:
			out[i] = redactedError{x}
		default:
			out[i] = v
		}
	}
	return out
}

// redactedError is an error whose text has its URLs masked.
type redactedError struct{ err error }

func (e redactedError) Error() string { return redact.Text(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }
