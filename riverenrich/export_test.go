package riverenrich

import (
	"context"
	"time"
)

// TakeoverLook looks once for lost jobs as the takeover loop does, having
// seen job id, a minute ago, running with its partition unlocked in the
// execution (attempt, attemptedAt).
func (c *Client[T, R]) TakeoverLook(ctx context.Context, id int64, attempt int, attemptedAt time.Time) {
	c.takeoverOnce(ctx, map[int64]sighting{id: {attempt: attempt, attemptedAt: attemptedAt, at: time.Now().Add(-time.Minute)}})
}
