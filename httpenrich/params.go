package httpenrich

import "github.com/batchenrich/batchenrich/internal/httpx"

// checkParams refuses, before the first item, a URL template whose
// parameters the requests cannot fill: any parameter when there is no
// Request function, and, when Config.PathParams declares the keys Request
// sets, a parameter not declared or a declared key the template does not
// use.
func checkParams(tmpl *httpx.Template, hasRequest bool, declared []string) error {
	switch {
	case !hasRequest && len(tmpl.Names()) > 0:
		return optErr("Request", "required when URL has parameters")
	case !hasRequest && declared != nil:
		return optErr("PathParams", "set without Request")
	case declared == nil:
		return nil
	}
	if err := tmpl.Check(declared); err != nil {
		if len(tmpl.Names()) > 0 && len(declared) == 0 {
			return optErr("URL", err.Error()+": Request sets no path parameters")
		}
		return optErr("URL", err.Error()+" (PathParams lists what Request sets)")
	}
	return nil
}
