package httpenrich

import (
	"fmt"
	"testing"
)

// entriesBodies are answers for FuzzEntriesScanMatchesGeneral: usual ones,
// and ones only the general path reads (or refuses).
var entriesBodies = []string{
	`{"profiles":[{"id":"1","v":{"a":[1,2]}},{"id":2,"error":null},{"id":3,"error":"gone"},{"id":4,"error":{"code":9}}]}`,
	` { "x" : 1 , "profiles" : [ { "id" : "a\u00e9\n" } , {"v":[],"id":1.5e3} ] , "y":[{}] } `,
	`{"profiles":[{"id":"1"}],"profiles":[{"id":"2"},{"id":"3","id":"4"}]}`,
	`{"profiles":[{"ID":"1"}]}`, `{"profiles":[{"id":"1","ERROR":"x"}]}`, `{"Profiles":[{"id":"1"}]}`,
	`{"profiles":null}`, `{"profiles":[]}`, `{"profiles":[1]}`, `{"profiles":[{"id":true}]}`, `{"profiles":[{"id":null}]}`,
	`{"profiles":[{"name":1}]}`, `{"profiles":[{"id":"1"}]} x`, `{"profiles":[{"id":"1"}]}{}`, `{"profiles":[{"id":"\xff"}]}`,
	`{"profiles":[{"id":"1","error":false}, {"id":"2","error":""}, {"id":"3","error":"\u0041"}]}`, `[{"id":"1"}]`, `{}`, ``, `[`,
}

// FuzzEntriesScanMatchesGeneral holds JSONEntries' fast path to the
// general one: whenever it reads an answer, the same entries.
func FuzzEntriesScanMatchesGeneral(f *testing.F) {
	for _, b := range entriesBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, names := range [][3]string{{"profiles", "id", "error"}, {"profiles", "id", ""}, {"", "id", "error"}} {
			sameEntries(t, raw, names[0], names[1], names[2])
		}
	})
}

func TestEntriesScanMatchesGeneral(t *testing.T) {
	fast := 0
	for _, b := range entriesBodies {
		for _, names := range [][3]string{{"profiles", "id", "error"}, {"profiles", "id", ""}, {"", "id", "error"}} {
			if sameEntries(t, []byte(b), names[0], names[1], names[2]) {
				fast++
			}
		}
	}
	if fast < 8 {
		t.Errorf("the fast path read %d answers, want at least 8", fast)
	}
}

// sameEntries checks that the fast path, when it reads raw, gives what
// the general path gives, and reports whether it read it.
func sameEntries(t *testing.T, raw []byte, arrayField, keyField, errorField string) bool {
	t.Helper()
	raw = append([]byte(nil), raw...)
	s := newEntriesScan(arrayField, keyField, errorField)
	got, ok := s.entries(raw)
	if !ok {
		return false
	}
	want, err := generalEntries(arrayField, keyField, errorField)(raw)
	if err != nil {
		t.Fatalf("%q (%s, %s, %s): the fast path read %+v, the general one failed: %v", raw, arrayField, keyField, errorField, got, err)
	}
	if show(got) != show(want) {
		t.Fatalf("%q (%s, %s, %s):\nfast    %s\ngeneral %s", raw, arrayField, keyField, errorField, show(got), show(want))
	}
	if len(got) > 0 {
		before := string(got[0].Body)
		for i := range raw {
			raw[i] = ' '
		}
		if string(got[0].Body) != before {
			t.Fatalf("entry 0's body shares the answer's bytes")
		}
	}
	return true
}

func show(es []Entry) string {
	s := fmt.Sprint(len(es))
	for _, e := range es {
		s += fmt.Sprintf(" [%q %q %v]", e.Key, e.Body, e.Err)
	}
	return s
}

// BenchmarkEntriesScan reads BenchmarkJSONEntries' answer (100 entries
// shaped like bench's profile API's) with JSONEntries ("fast", its one
// pass) and with its general path alone ("general"):
//
//	go test -run '^$' -bench EntriesScan -benchmem -count 5 ./httpenrich
func BenchmarkEntriesScan(b *testing.B) {
	var body []byte
	body = append(body, `{"profiles":[`...)
	for i := range 100 {
		if i > 0 {
			body = append(body, ',')
		}
		body = fmt.Appendf(body, `{"traveler_id":"%d","args":{"traveler_id":["%d"]},"headers":{"Accept":["application/json"],"User-Agent":["Go-http-client/1.1"]},"method":"GET","origin":"127.0.0.1","url":"http://127.0.0.1/bulk?traveler_id=%d"}`, 1000+i, 1000+i, 1000+i)
	}
	body = append(body, `]}`...)
	for name, f := range map[string]func([]byte) ([]Entry, error){
		"fast":    JSONEntries("profiles", "traveler_id", "error"),
		"general": generalEntries("profiles", "traveler_id", "error"),
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if got, err := f(body); err != nil || len(got) != 100 || got[99].Key != "1099" {
					b.Fatalf("%d entries, %v", len(got), err)
				}
			}
		})
	}
}
