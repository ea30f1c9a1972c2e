package httpenrich_test

import "github.com/hashicorp/go-retryablehttp"

// retryablehttpDefaultBackoff is go-retryablehttp's own, uncapped, backoff.
var retryablehttpDefaultBackoff = retryablehttp.DefaultBackoff
