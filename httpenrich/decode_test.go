package httpenrich

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"
)

// wide is a response type touching what encoding/json decodes specially:
// case-insensitive names, embedded structs, ,string, RawMessage, []byte as
// base64, TextUnmarshaler (time.Time), interfaces, maps, pointers, arrays.
type wide struct {
	Name  string
	Raw   json.RawMessage
	Any   any
	M     map[string]any
	Str   int `json:"str,string"`
	T     time.Time
	B     []byte
	P     *int
	F     float64 `json:"f,omitempty"`
	U     uint8
	Slice []int
	Arr   [2]int
	Args  url.Values
	H     http.Header
	Embed
	skipped int
}

type Embed struct{ X, Y string }

// decodeBodies are bodies on which the decoders must agree: valid ones of
// every shape, and broken ones (both must fail).
var decodeBodies = []string{
	`{"name":"a","raw":{"a":[1,2]},"any":[1,"x",null,true,{"k":1.5}],"m":{"z":1},"str":"42","t":"2024-01-02T03:04:05Z","b":"aGVsbG8=","p":7,"X":"x","slice":[1,2,3],"arr":[9],"args":{"id":["1"]},"h":{"Accept":["a","b"]}}`,
	`{"Name":"dup","name":"dup2","NAME":"dup3"}`,
	"{\"name\":\"\xff\xfe invalid utf-8\"}",
	`{"name":"\ud800 lone surrogate"}`,
	`{"name":null,"p":null,"slice":null,"m":null,"raw":null}`,
	`{"unknown":{"deep":[1,2,{"x":null}]},"name":"u","skipped":3}`,
	`{"y":"embedded","Embed":{"X":"not a field"}}`,
	`{"f":1e308,"u":255,"any":12345678901234567890}`,
	`  {"name":"spaces"}  `,
	`{}`, `null`, ``,
	`[1,2]`, `"x"`, `{"name":"a"} trailing`, `{"name":"a",}`, `{"p":1e400}`, `{"p":3.5}`,
	`{"u":256}`, `{"arr":[1,2,3,4]}`, `{"str":42}`, `{"str":"x"}`, `{"b":"not base64!"}`,
	`{"t":"yesterday"}`, `{"name":"unterminated}`, `{"name":1}`, `{"m":[]}`, `{"h":{"a":"b"}}`,
}

// sameDecode checks that decoder[B] and json.Unmarshal agree on raw: both
// fail, or both succeed with equal values.
func sameDecode[B any](t *testing.T, raw []byte) {
	t.Helper()
	var want, got B
	werr := json.Unmarshal(raw, &want)
	gerr := decoder[B]()(raw, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%T, body %q: encoding/json says %v, decoder says %v", want, raw, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%T, body %q:\nencoding/json %#v\ndecoder       %#v", want, raw, want, got)
	}
}

func TestDecoderMatchesEncodingJSON(t *testing.T) {
	for _, body := range decodeBodies {
		sameDecode[wide](t, []byte(body))
		sameDecode[json.RawMessage](t, []byte(body))
		sameDecode[any](t, []byte(body))
		sameDecode[map[string]any](t, []byte(body))
		sameDecode[numbered](t, []byte(body))
	}
}

// FuzzDecoderMatchesEncodingJSON looks for a body on which the decoder and
// encoding/json disagree.
func FuzzDecoderMatchesEncodingJSON(f *testing.F) {
	for _, body := range decodeBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameDecode[wide](t, raw)
		sameDecode[any](t, raw)
		sameDecode[json.RawMessage](t, raw)
	})
}

// numbered holds a json.Number, which only encoding/json decodes.
type numbered struct {
	N    json.Number
	More []map[string]*json.Number
}

func TestDecoderKeepsJSONNumber(t *testing.T) {
	for _, tc := range []struct {
		typ  reflect.Type
		want bool
	}{
		{reflect.TypeFor[numbered](), true},
		{reflect.TypeFor[[]map[string]*json.Number](), true},
		{reflect.TypeFor[json.Number](), true},
		{reflect.TypeFor[wide](), false},
		{reflect.TypeFor[json.RawMessage](), false},
		{reflect.TypeFor[any](), false},
		{reflect.TypeFor[node](), false}, // recursive
	} {
		if got := holdsNumber(tc.typ, map[reflect.Type]bool{}); got != tc.want {
			t.Errorf("holdsNumber(%v) = %v, want %v", tc.typ, got, tc.want)
		}
	}
	var n numbered
	if err := decoder[numbered]()([]byte(`{"n":12.50,"more":[{"a":1e3}]}`), &n); err != nil || n.N != "12.50" || *n.More[0]["a"] != "1e3" {
		t.Fatalf("decoded %+v, %v", n, err)
	}
}

type node struct {
	Next *node
	Kids []node
}

// httpbinBody is what go-httpbin's /anything answers to the seed job's
// request (609 bytes).
var httpbinBody = []byte(`{
  "args": {
    "traveler_id": [
      "1234"
    ],
    "traveler_name": [
      "Traveler 1234"
    ]
  },
  "headers": {
    "Accept": [
      "application/json"
    ],
    "Accept-Encoding": [
      "gzip"
    ],
    "Host": [
      "127.0.0.1:40000"
    ],
    "User-Agent": [
      "Go-http-client/1.1"
    ]
  },
  "method": "GET",
  "origin": "127.0.0.1:51234",
  "url": "http://127.0.0.1:40000/anything?traveler_id=1234&traveler_name=Traveler%201234",
  "data": "",
  "files": {},
  "form": {},
  "json": null
}
`)

// echo is the seed job's response type: the args only.
type echo struct {
	Args map[string]json.RawMessage `json:"args"`
}

// BenchmarkDecode compares the decoder with json.Unmarshal on an httpbin
// body, into the seed job's type and into a wider one.
func BenchmarkDecode(b *testing.B) {
	run := func(name string, f func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	dec, decWide := decoder[echo](), decoder[wide]()
	run("echo/encoding-json", func() error { var v echo; return json.Unmarshal(httpbinBody, &v) })
	run("echo/decoder", func() error { var v echo; return dec(httpbinBody, &v) })
	run("wide/encoding-json", func() error { var v wide; return json.Unmarshal(httpbinBody, &v) })
	run("wide/decoder", func() error { var v wide; return decWide(httpbinBody, &v) })
}
