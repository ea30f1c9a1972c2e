package httpenrich

import (
	"encoding/json"
	"reflect"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// A response body is decoded with the encoding/json/v2 implementation
// (github.com/go-json-experiment/json, the mirror of the standard
// library's encoding/json/v2) under encoding/json's semantics
// (jsonv1.DefaultOptionsV1: names matched case-insensitively, duplicate
// names and invalid UTF-8 accepted, numbers in an interface as float64,
// UnmarshalJSON and UnmarshalText methods honoured). It checks and decodes
// the body in one pass, where json.Unmarshal takes two (a validating scan,
// then the decode): on go-httpbin's /anything body, 7 allocations instead
// of 16–18 and 1.6–3× less time (BenchmarkDecode). FuzzDecoderMatchesEncodingJSON
// holds it to encoding/json's results.
//
// The one type it does not know is the standard library's json.Number
// (encoding/json special-cases it), so a B that can hold one is decoded
// with encoding/json itself: same results, the old cost.

// decoder returns the function decoding a response body into a B.
func decoder[B any]() func(raw []byte, dst *B) error {
	if holdsNumber(reflect.TypeFor[B](), map[reflect.Type]bool{}) {
		return func(raw []byte, dst *B) error { return json.Unmarshal(raw, dst) }
	}
	opts := jsonv1.DefaultOptionsV1()
	return func(raw []byte, dst *B) error { return jsonv2.Unmarshal(raw, dst, opts) }
}

// v1Options are encoding/json's semantics for the encoding/json/v2
// implementation.
var v1Options = jsonv1.DefaultOptionsV1()

// unmarshalV1 decodes raw into v as json.Unmarshal does, in one pass (see
// above); v must not hold a json.Number. JSONEntries reads answers with it.
func unmarshalV1(raw []byte, v any) error { return jsonv2.Unmarshal(raw, v, v1Options) }

var numberType = reflect.TypeFor[json.Number]()

// holdsNumber reports whether a value of type t can hold a json.Number
// that JSON decoding would fill: t is one, or has one in a field (exported
// or embedded), element or map value.
func holdsNumber(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == numberType {
		return true
	}
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return holdsNumber(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsNumber(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}
