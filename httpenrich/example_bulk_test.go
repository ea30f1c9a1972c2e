package httpenrich_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/httpenrich"
)

// One GET per group of up to 100 ids (/profiles?ids=a,b,c) against an API
// that answers in its own order and leaves out what it does not know; each
// item gets its own entry, or its own failure.
func ExampleNewBulk() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out []map[string]string
		for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
			if id != "bob" { // unknown to the API
				out = append([]map[string]string{{"id": id, "name": strings.ToUpper(id)}}, out...)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"profiles": out})
	}))
	defer api.Close()

	type Profile struct {
		Name string `json:"name"`
	}
	enr, err := httpenrich.NewBulk(httpenrich.Config[string, Profile, string]{
		URL: api.URL + "/profiles",
		Validate: func(id string, r *httpenrich.Response[Profile]) (string, error) {
			return r.Body.Name, nil
		},
	}, httpenrich.Bulk[string]{
		MaxItems: 100,
		Key:      func(id string) string { return id },
		Request: func(ids []string) (httpenrich.Params, error) {
			return httpenrich.Params{Query: url.Values{"ids": {strings.Join(ids, ",")}}}, nil
		},
		Entries: httpenrich.JSONEntries("profiles", "id", "error"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer enr.Close()

	sink := batchenrichtest.NewSink[string, string]()
	r, err := batchenrich.New(batchenrichtest.NewSliceSource([]string{"ada", "bob", "cy"}), batchenrich.Enricher[string, string](enr), sink,
		batchenrich.Options{AllowAllFailed: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := r.Run(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	for _, res := range sink.Results() {
		if res.Err != nil {
			fmt.Printf("%s: failed: %s\n", res.Item, batchenrich.FailureReason(res.Err))
			continue
		}
		fmt.Printf("%s: %s\n", res.Item, res.Value)
	}
	// Output:
	// ada: ADA
	// bob: failed: missing from answer: the answer has no entry for the item's key (status 200, after 1 attempt)
	// cy: CY
}
