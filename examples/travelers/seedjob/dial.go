package seedjob

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/batchenrich/batchenrich/redact"
)

// DialAPI checks that the profile API's host (raw is the -profile-url
// flag's value) accepts TCP connections within 5 seconds, sending no
// request: a run against an API that cannot be reached would fail every
// item. Its error names the URL with any password redacted.
func DialAPI(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("-profile-url: not a valid URL")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return fmt.Errorf("profile API %s cannot be reached: %w", redact.String(raw), err)
	}
	return conn.Close()
}
