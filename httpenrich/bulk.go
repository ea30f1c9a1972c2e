package httpenrich

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/httpx"
	"github.com/batchenrich/batchenrich/redact"
)

// Bulk limits.
const (
	// DefaultMaxRequestBytes is Bulk.MaxRequestBytes's default: the URL
	// and body of a group's request together. Many servers refuse a
	// request line above 8 KiB: ids in the query stay well below it at
	// the usual 100 per request.
	DefaultMaxRequestBytes = 64 << 10
	// MaxBulkItems bounds Bulk.MaxItems.
	MaxBulkItems = 1 << 16
)

// Bulk configures the bulk mode of NewBulk: one request for a group of
// items (ids joined in the path or query, or a JSON body), its answer
// matched to the items by key.
type Bulk[T any] struct {
	// MaxItems is the most items per request, as the API allows.
	// Required, at most MaxBulkItems. It is the BulkEnricher's BulkSize:
	// the Runner groups each batch's items by it.
	MaxItems int

	// MaxRequestBytes bounds the size of a group's request, its URL and
	// body together: a group whose request is larger is split in two
	// halves, sent apart, until each fits; a single item whose request
	// does not fit fails (ReasonRequest, permanent). Zero means
	// DefaultMaxRequestBytes.
	MaxRequestBytes int

	// Key returns an item's key as the answer names it (for example its
	// id as text). Required. Items are matched to the answer's entries by
	// key, never by position: an API may reorder or omit them.
	Key func(item T) string

	// Request returns the request for a group of items, in Source order
	// (Config.Request is not used; Config.PathParams lists the path
	// parameters this one sets). Required. For example:
	//
	//	Params{Query: url.Values{"ids": {strings.Join(ids, ",")}}}
	Request func(items []T) (Params, error)

	// Entries splits an accepted answer's body into one Entry per item it
	// answers. Required; JSONEntries covers the usual shapes. An error
	// fails every item of the group (ReasonMalformed, permanent).
	Entries func(raw []byte) ([]Entry, error)
}

// Entry is one item's part of a bulk answer.
type Entry struct {
	// Key is the item's key, as Bulk.Key gives it.
	Key string
	// Body is the item's part of the answer, decoded into B and handed to
	// Config.Validate as Response.Body (and as Response.Raw).
	Body json.RawMessage
	// Err, when not nil, is an error the answer gives for this item
	// alone: the item fails with ReasonItem, permanent unless Err is
	// marked batchenrich.Transient.
	Err error
}

// BulkEnricher is an Enricher in bulk mode, created by NewBulk: it is a
// batchenrich.BulkEnricher, so a Runner sends one request per group of at
// most Bulk.MaxItems items. Everything else is the Enricher's: retries with
// the policy and Retry-After, Config.Adaptive (whose limits count
// requests, so groups), Config.RateLimit, the body bound, Idempotency-Key
// headers (one per group: see NewBulk) and the *Error of each failure. It is
// safe for concurrent use; Close it when done.
type BulkEnricher[T, B, R any] struct {
	*Enricher[T, B, R]
	bulk   Bulk[T]
	maxReq int
	idem   bool
}

var _ batchenrich.BulkEnricher[int, json.RawMessage] = (*BulkEnricher[int, json.RawMessage, json.RawMessage])(nil)

// NewBulk returns an Enricher in bulk mode configured by cfg and bulk:
// each request carries a group of items, built by bulk.Request, and each
// item's result is Config.Validate's for its entry in the answer, found by
// key. It validates cfg as New does and bulk's fields, and returns a
// *batchenrich.ConfigError naming the first invalid one ("Bulk.MaxItems",
// …). cfg.Request must be nil: bulk.Request builds the requests.
//
// Failures are per item wherever the answer allows: an item whose key is
// not in the answer fails with ReasonMissing, one whose entry carries an
// error with ReasonItem, one whose entry Validate rejects with
// ReasonInvalid; a request that failed as a whole (a transport error, a
// timeout, a refused status, after its retries) fails every item of the
// group with the same *Error. With Config.IdempotencyKey the header is
// derived from the run key and the group's keys in order (which a resumed
// run forms again alike), and bulk.Key names items (Config.ItemKey is not
// used).
func NewBulk[T, B, R any](cfg Config[T, B, R], bulk Bulk[T]) (*BulkEnricher[T, B, R], error) {
	switch {
	case cfg.Request != nil:
		return nil, optErr("Request", "not used by NewBulk: Bulk.Request builds each group's request")
	case bulk.MaxItems < 1 || bulk.MaxItems > MaxBulkItems:
		return nil, optErr("Bulk.MaxItems", fmt.Sprintf("%d: must be between 1 and MaxBulkItems", bulk.MaxItems))
	case bulk.MaxRequestBytes < 0:
		return nil, optErr("Bulk.MaxRequestBytes", "must not be negative")
	case bulk.Key == nil:
		return nil, optErr("Bulk.Key", "required: answers are matched to items by key")
	case bulk.Request == nil:
		return nil, optErr("Bulk.Request", "required")
	case bulk.Entries == nil:
		return nil, optErr("Bulk.Entries", "required (JSONEntries covers the usual shapes)")
	}
	idem := cfg.IdempotencyKey
	if idem && cfg.ItemKey == nil {
		cfg.ItemKey = bulk.Key
	}
	// New checks the URL against a Request; requests are built from
	// bulk.Request's Params, never by this one.
	cfg.Request = func(T) (Params, error) {
		return Params{}, errors.New("httpenrich: bulk mode builds requests per group")
	}
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	maxReq := bulk.MaxRequestBytes
	if maxReq == 0 {
		maxReq = DefaultMaxRequestBytes
	}
	return &BulkEnricher[T, B, R]{Enricher: e, bulk: bulk, maxReq: maxReq, idem: idem}, nil
}

// BulkSize returns Bulk.MaxItems.
func (b *BulkEnricher[T, B, R]) BulkSize() int { return b.bulk.MaxItems }

// Enrich enriches one item with a request for it alone.
func (b *BulkEnricher[T, B, R]) Enrich(ctx context.Context, item T) (R, error) {
	vals, errs := b.EnrichBulk(ctx, []T{item})
	return vals[0], errs[0]
}

// EnrichBulk sends one request for items (more when it exceeds
// Bulk.MaxRequestBytes), with retries, and returns each item's result or
// error, matched by key. Every error is an *Error classified as Enrich's
// are.
func (b *BulkEnricher[T, B, R]) EnrichBulk(ctx context.Context, items []T) ([]R, []error) {
	vals, errs := make([]R, len(items)), make([]error, len(items))
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = b.bulk.Key(it)
	}
	b.group(ctx, items, keys, vals, errs)
	return vals, errs
}

// group enriches items, whose keys are keys, into vals and errs.
func (b *BulkEnricher[T, B, R]) group(ctx context.Context, items []T, keys []string, vals []R, errs []error) {
	e := b.Enricher
	failAll := func(err error) {
		for i := range errs {
			errs[i] = err
		}
	}
	p, err := b.bulk.Request(items)
	if err != nil {
		failAll(e.requestError(err))
		return
	}
	c := &call[B]{maxBody: e.maxBody}
	var idem func() (string, error)
	if b.idem {
		idem = func() (string, error) { return groupKey(ctx, keys) }
	}
	req, err := e.buildRequest(httpx.WithState(ctx, &c.st), c, p, idem)
	if err != nil {
		failAll(e.requestError(err))
		return
	}
	if size := len(req.URL.String()) + int(req.ContentLength); size > b.maxReq {
		if len(items) > 1 {
			h := len(items) / 2
			b.group(ctx, items[:h], keys[:h], vals[:h], errs[:h])
			b.group(ctx, items[h:], keys[h:], vals[h:], errs[h:])
			return
		}
		failAll(classed(&Error{Method: e.method, URL: redact.String(e.tmpl.String()), Reason: ReasonRequest,
			Err: fmt.Errorf("the request for one item takes %d bytes, more than Bulk.MaxRequestBytes (%d)", size, b.maxReq)},
			batchenrich.ClassPermanent))
		return
	}
	if err := e.send(ctx, c, req); err != nil {
		failAll(err)
		return
	}
	newErr := func() *Error {
		return &Error{Method: e.method, URL: redact.String(req.URL.String()), Status: c.st.Status, Attempts: c.st.Attempts}
	}
	entries, err := b.bulk.Entries(c.resp.Raw)
	if err != nil {
		he := newErr()
		he.Status, he.Reason, he.Err = c.resp.Status, ReasonMalformed, err
		failAll(classed(he, batchenrich.ClassPermanent))
		return
	}
	byKey := make(map[string]int, len(entries))
	for i, en := range entries {
		if _, dup := byKey[en.Key]; !dup {
			byKey[en.Key] = i // the first entry of a key wins
		}
	}
	for i, it := range items {
		k, ok := byKey[keys[i]]
		if !ok {
			he := newErr()
			he.Status, he.Reason, he.Err = c.resp.Status, ReasonMissing, errors.New("the answer has no entry for the item's key")
			errs[i] = classed(he, batchenrich.ClassPermanent)
			continue
		}
		en := entries[k]
		if en.Err != nil {
			he := newErr()
			he.Status, he.Reason, he.Err = c.resp.Status, ReasonItem, en.Err
			class := batchenrich.Classify(en.Err)
			if class == batchenrich.Unclassified {
				class = batchenrich.ClassPermanent
			}
			errs[i] = classed(he, class)
			continue
		}
		r := &Response[B]{Status: c.resp.Status, Header: c.resp.Header, Raw: en.Body, Attempts: c.st.Attempts}
		vals[i], errs[i] = e.result(it, r, newErr)
	}
}

// groupKey returns the Idempotency-Key of a group's request in the run of
// ctx: IdempotencyKeyFor of the run key and the group's keys in order.
func groupKey(ctx context.Context, keys []string) (string, error) {
	for _, k := range keys {
		if k == "" {
			return "", errors.New("IdempotencyKey: an item's key is empty")
		}
	}
	return idempotencyKey(ctx, func(ks []string) string { return "bulk:" + strings.Join(ks, "\x00") }, keys)
}

// JSONEntries returns a Bulk.Entries for the usual JSON answers: an array
// of objects, at the top level when arrayField is "" or else under that
// member of a top-level object, each object answering the item whose key
// is its keyField member (a string, or a number as written in the JSON).
// When errorField is not "" and an object's errorField member is present
// and not null, false or "", the object is that item's error (its text, or
// the JSON as written when it is not a string). For example, for
// {"profiles":[{"id":1,"name":"Ada"},{"id":2,"error":"not found"}]}:
//
//	httpenrich.JSONEntries("profiles", "id", "error")
//
// An object without the key field makes the whole answer malformed.
// The key and error members' names are matched as encoding/json matches
// struct fields: an exact match first, else one differing in case; names
// a struct tag cannot carry ("", "-", or one with a '"', ',', '\' or
// '`') and arrayField are matched exactly.
func JSONEntries(arrayField, keyField, errorField string) func(raw []byte) ([]Entry, error) {
	general := generalEntries(arrayField, keyField, errorField)
	fast := newEntriesScan(arrayField, keyField, errorField)
	if fast == nil {
		return general
	}
	return func(raw []byte) ([]Entry, error) {
		if out, ok := fast.entries(raw); ok {
			return out, nil
		}
		return general(raw)
	}
}

// generalEntries is JSONEntries for every answer (see entriesScan for the
// usual one).
func generalEntries(arrayField, keyField, errorField string) func(raw []byte) ([]Entry, error) {
	members := entryMembers(keyField, errorField)
	return func(raw []byte) ([]Entry, error) {
		arr := json.RawMessage(raw)
		if arrayField != "" {
			var obj map[string]json.RawMessage
			if err := unmarshalV1(raw, &obj); err != nil {
				return nil, err
			}
			var ok bool
			if arr, ok = obj[arrayField]; !ok {
				return nil, fmt.Errorf("the answer has no %q member", arrayField)
			}
		}
		var elems []json.RawMessage
		if err := unmarshalV1(arr, &elems); err != nil {
			return nil, err
		}
		out := make([]Entry, len(elems))
		for i, el := range elems {
			kraw, eraw, err := members(el)
			if err != nil {
				return nil, fmt.Errorf("entry %d: %w", i, err)
			}
			if kraw == nil {
				return nil, fmt.Errorf("entry %d has no %q member", i, keyField)
			}
			key, err := keyText(kraw)
			if err != nil {
				return nil, fmt.Errorf("entry %d: %q: %w", i, keyField, err)
			}
			en := Entry{Key: key, Body: el}
			if eraw != nil {
				en.Err = entryError(eraw)
			}
			out[i] = en
		}
		return out, nil
	}
}

// entryError returns the error an entry's error member gives, or nil.
func entryError(eraw json.RawMessage) error {
	switch t := strings.TrimSpace(string(eraw)); t {
	case "null", "false", `""`:
		return nil
	default:
		var s string
		if unmarshalV1(eraw, &s) != nil {
			s = t
		}
		return errors.New(s)
	}
}

// entryMembers returns a function reading the key and error members
// (nil when absent; no error member when errorField is "") of a JSON
// object. It decodes into a struct of just those two members, built once,
// rather than into a map of all of them, unless a name cannot be a struct
// tag; encoding/json then matches the names as it matches struct fields,
// preferring an exact match but accepting another case.
func entryMembers(keyField, errorField string) func(el []byte) (k, e json.RawMessage, err error) {
	object := func(el []byte) error {
		if t := bytes.TrimSpace(el); len(t) == 0 || t[0] != '{' {
			return errors.New("not a JSON object")
		}
		return nil
	}
	// A name a struct tag cannot carry (a tag "" or "-" names no member)
	// is looked up in a map, exactly.
	if strings.ContainsAny(keyField+errorField, "\",\\`") || keyField == "" || keyField == "-" || errorField == "-" {
		return func(el []byte) (k, e json.RawMessage, err error) {
			if err := object(el); err != nil {
				return nil, nil, err
			}
			var o map[string]json.RawMessage
			if err := unmarshalV1(el, &o); err != nil {
				return nil, nil, err
			}
			if errorField != "" {
				e = o[errorField]
			}
			return o[keyField], e, nil
		}
	}
	raw := reflect.TypeFor[json.RawMessage]()
	fields := []reflect.StructField{{Name: "K", Type: raw, Tag: reflect.StructTag(`json:"` + keyField + `"`)}}
	if errorField != "" {
		fields = append(fields, reflect.StructField{Name: "E", Type: raw, Tag: reflect.StructTag(`json:"` + errorField + `"`)})
	}
	typ := reflect.StructOf(fields)
	return func(el []byte) (k, e json.RawMessage, err error) {
		if err := object(el); err != nil {
			return nil, nil, err
		}
		pv := reflect.New(typ)
		if err := unmarshalV1(el, pv.Interface()); err != nil {
			return nil, nil, err
		}
		v := pv.Elem()
		k = v.Field(0).Interface().(json.RawMessage)
		if errorField != "" {
			e = v.Field(1).Interface().(json.RawMessage)
		}
		return k, e, nil
	}
}

// keyText returns a JSON string's text, or a number as written.
func keyText(raw json.RawMessage) (string, error) {
	b := bytes.TrimSpace(raw)
	if len(b) > 0 && b[0] == '"' {
		if len(b) >= 2 && b[len(b)-1] == '"' && plainString(b[1:len(b)-1]) {
			return string(b[1 : len(b)-1]), nil // nothing to unescape
		}
		var s string
		err := unmarshalV1(b, &s)
		return s, err
	}
	t := string(b)
	if _, err := strconv.ParseFloat(t, 64); err != nil {
		return "", errors.New("neither a string nor a number")
	}
	return t, nil
}

// plainString reports whether b, the inside of a JSON string, is its text
// as it is: valid UTF-8 without quotes, backslashes or control characters.
func plainString(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.Valid(b)
}
