package sqlbatch

import (
	"math"
	"testing"
)

// named is an integer key whose text comes from its String method.
type named int64

func (n named) String() string { return "n" }

// TestKeyIndexMatchesText checks that keyIndex matches keys exactly when
// their texts (keyString) are equal, integers kept as integers or not.
func TestKeyIndexMatchesText(t *testing.T) {
	seven := int64(7)
	keys := []any{int64(7), 7, int32(7), uint8(7), uint64(7), "7", []byte("7"), &seven, 7.0, "07", "+7", named(7), "n",
		uint64(math.MaxUint64), "18446744073709551615", int64(-3), "-3", "x"}
	for _, first := range keys {
		for _, other := range []any{nil, "other", int64(99)} {
			x := newKeyIndex(1)
			x.add(first, 0)
			if other != nil {
				x.add(other, 1)
			}
			for _, k := range keys {
				p, ok := x.find(k)
				want := keyString(k) == keyString(first)
				if ok != want || (ok && p != 0) {
					t.Errorf("after add(%T %v), add(%v): find(%T %v) = %d, %v; want found=%v", first, first, other, k, k, p, ok, want)
				}
			}
		}
	}
}
