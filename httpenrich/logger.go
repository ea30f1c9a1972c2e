package httpenrich

import (
	"context"
	"log/slog"

	"github.com/hashicorp/go-retryablehttp"
)

// LeveledLogger adapts l to go-retryablehttp's LeveledLogger, so that its
// records ("performing request", "retrying request", "request failed") go
// to l at the matching slog level, prefixed "httpenrich: ", with the
// credentials in their URLs masked (userinfo, and query parameters such as
// api_key or token). A nil l gives a logger that discards everything.
func LeveledLogger(l *slog.Logger) retryablehttp.LeveledLogger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return slogLogger{l}
}

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) log(level slog.Level, msg string, kv []any) {
	ctx := context.Background()
	if s.l.Enabled(ctx, level) {
		s.l.Log(ctx, level, "httpenrich: "+msg, redactKV(kv)...)
	}
}

func (s slogLogger) Error(msg string, kv ...any) { s.log(slog.LevelError, msg, kv) }
func (s slogLogger) Warn(msg string, kv ...any)  { s.log(slog.LevelWarn, msg, kv) }
func (s slogLogger) Info(msg string, kv ...any)  { s.log(slog.LevelInfo, msg, kv) }
func (s slogLogger) Debug(msg string, kv ...any) { s.log(slog.LevelDebug, msg, kv) }
