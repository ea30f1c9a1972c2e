package sqlbatch

import (
	"math"
	"strconv"
)

// keyIndex numbers the distinct keys of a Lookup's group by their text
// (keyString), as the Lookup matches rows to items, without building the
// text of an integer: integer keys are kept as integers, other keys as
// text, and a key of one kind is looked for among the other's when that
// is not empty (an int 7 and a string "7" are the same key). Each text is
// in one map only, so a key has one number.
type keyIndex struct {
	ints  map[int64]int
	texts map[string]int
}

func newKeyIndex(n int) *keyIndex { return &keyIndex{ints: make(map[int64]int, n)} }

// find returns the number of k, or false.
func (x *keyIndex) find(k any) (int, bool) {
	if n, ok := asInt(k); ok {
		return x.findInt(n)
	}
	s := keyString(k)
	if p, ok := x.texts[s]; ok {
		return p, true
	}
	if len(x.ints) == 0 {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(n, 10) == s {
		p, ok := x.ints[n]
		return p, ok
	}
	return 0, false
}

// findInt is find of an integer key.
func (x *keyIndex) findInt(n int64) (int, bool) {
	if p, ok := x.ints[n]; ok {
		return p, true
	}
	if len(x.texts) == 0 {
		return 0, false
	}
	p, ok := x.texts[strconv.FormatInt(n, 10)]
	return p, ok
}

// add numbers k p; k must not be in x yet.
func (x *keyIndex) add(k any, p int) {
	if n, ok := asInt(k); ok {
		x.ints[n] = p
		return
	}
	if x.texts == nil {
		x.texts = make(map[string]int)
	}
	x.texts[keyString(k)] = p
}

// asInt returns k as an int64 when it is one of Go's integer types (not a
// named type, whose text may come from a String method) and fits.
func asInt(k any) (int64, bool) {
	switch n := k.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int16:
		return int64(n), true
	case int8:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint8:
		return int64(n), true
	case uint:
		return int64(n), uint64(n) <= math.MaxInt64
	case uint64:
		return int64(n), n <= math.MaxInt64
	}
	return 0, false
}
