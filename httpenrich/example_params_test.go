package httpenrich_test

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/batchenrich/batchenrich/httpenrich"
)

// With PathParams, New checks the URL template against what Request sets,
// so that a URL the requests cannot fill fails at startup, not on every
// item.
func ExampleConfig_pathParams() {
	request := func(id int) (httpenrich.Params, error) {
		return httpenrich.Params{Path: map[string]string{"id": strconv.Itoa(id)}}, nil
	}
	for _, u := range []string{
		"https://api.example.com/travelers/{id}",
		"https://api.example.com/travelers/{id}/{region}", // a parameter Request does not set
		"https://api.example.com/travelers",               // Request sets {id}, which the URL lacks
	} {
		enr, err := httpenrich.New(httpenrich.Config[int, json.RawMessage, json.RawMessage]{
			URL:        u,
			Request:    request,
			PathParams: []string{"id"},
		})
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println("ok:", u)
		enr.Close()
	}
	// Output:
	// ok: https://api.example.com/travelers/{id}
	// httpenrich: invalid URL: parameter {region} is not supplied (PathParams lists what Request sets)
	// httpenrich: invalid URL: parameter {id} is not in the URL template (PathParams lists what Request sets)
}
