package contenders

import (
	"context"
	"io"
	"net/http"
)

// get sends one GET of url with client and reads the whole answer: what
// every hand-written contender does per request (the library's own
// requests go through httpenrich).
func get(ctx context.Context, client *http.Client, url string) (status int, body []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}
