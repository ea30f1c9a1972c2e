package httpenrich

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"strconv"

	"github.com/batchenrich/batchenrich"
)

// IdempotencyKeyHeader is the header Config.IdempotencyKey sets, as named
// by the IETF draft draft-ietf-httpapi-idempotency-key-header and used by
// Stripe, Adyen, PayPal and others.
const IdempotencyKeyHeader = "Idempotency-Key"

// IdempotencyKeyFor returns the Idempotency-Key an Enricher with
// Config.IdempotencyKey sends for the item named itemKey in the run named
// runKey: a UUID (version 8, RFC 9562) made of the SHA-256 of the two. It is
// the same on every attempt and after a crash and resume (same run key,
// same item), and differs between runs and between items, so a server that
// honours the header performs each item's request once per run.
func IdempotencyKeyFor(runKey, itemKey string) string {
	h := sha256.New()
	h.Write([]byte(strconv.Itoa(len(runKey)) + ":" + runKey))
	h.Write([]byte(itemKey))
	var sum [sha256.Size]byte
	b := h.Sum(sum[:0])[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // variant 10
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:16])
	return string(out[:])
}

// errNoRunKey is an item's failure with IdempotencyKey outside a Run with
// a run key.
var errNoRunKey = errors.New("IdempotencyKey needs a run key: run the Enricher in a batchenrich.Runner with Options.Durable set")

// idempotencyKeyOf returns a function naming an item for IdempotencyKey:
// itemKey, or the item's Key method. It returns an error naming the field
// when neither is there.
func idempotencyKeyOf[T any](on bool, itemKey func(T) string) (func(T) string, error) {
	switch {
	case !on && itemKey != nil:
		return nil, optErr("ItemKey", "set without IdempotencyKey")
	case !on:
		return nil, nil
	case itemKey != nil:
		return itemKey, nil
	}
	t := reflect.TypeFor[T]()
	if !t.Implements(reflect.TypeFor[batchenrich.Keyer]()) {
		return nil, optErr("ItemKey", "required with IdempotencyKey: "+t.String()+" does not implement batchenrich.Keyer")
	}
	return func(item T) string {
		if k, ok := any(item).(batchenrich.Keyer); ok {
			return k.Key()
		}
		return "" // a nil interface
	}, nil
}

// idempotencyKey returns the key for item in the run of ctx.
func idempotencyKey[T any](ctx context.Context, keyOf func(T) string, item T) (string, error) {
	run, ok := batchenrich.RunKeyFromContext(ctx)
	if !ok {
		return "", errNoRunKey
	}
	k := keyOf(item)
	if k == "" {
		return "", errors.New("IdempotencyKey: the item's key is empty")
	}
	return IdempotencyKeyFor(run, k), nil
}
