package ginapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/fault"
)

// decodeJSON reads a request body into v strictly: JSON only, UTF-8, one
// value, no unknown fields, no field twice in one object, names matched
// exactly (encoding/json would take "Amount" for "amount" and let the last
// of two equal names win), no more than the size limit. Each refusal says
// why.
func decodeJSON(c *gin.Context, limit int64, v any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &requestError{status: http.StatusUnsupportedMediaType, slug: "unsupported-media-type", detail: "the body must be application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		return jsonError(err, limit)
	}
	if !utf8.Valid(body) {
		return badRequest("the body is not UTF-8 text, as JSON must be")
	}
	if err := checkKeys(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err, limit)
		}
		return badRequest("the body holds more than one JSON value")
	}
	return nil
}

// checkKeys reads the first JSON value of body and refuses a name given
// twice in one object, at any depth, and a name that matches a field of
// the type it is decoded into (t) only when case is ignored. A body that
// is not JSON passes: the decoder says what is wrong with it.
func checkKeys(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	err := scanValue(dec, t, "")
	var kerr *keyError
	if errors.As(err, &kerr) {
		return kerr.err
	}
	return nil
}

// keyError carries a refusal out of the scan, apart from the decoder's own
// errors.
type keyError struct{ err error }

func (e *keyError) Error() string { return e.err.Error() }

func scanValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return scanObject(dec, t, path)
	case json.Delim('['):
		var elem reflect.Type
		if t = plain(t); t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := scanValue(dec, elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ]
		return err
	}
	return nil
}

func scanObject(dec *json.Decoder, t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t = plain(t); t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = jsonFields(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		at := key
		if path != "" {
			at = path + "." + key
		}
		if seen[key] {
			return &keyError{badRequest("the body gives a field twice", fault.FieldError{Field: at, Code: "duplicate", Message: "appears twice in one object: give each field once"})}
		}
		seen[key] = true
		child := elem
		if fields != nil {
			ft, known := fields[key]
			if !known {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return &keyError{badRequest("the body has a field this API does not know", fault.FieldError{Field: at, Code: "unknown_field",
							Message: fmt.Sprintf("is not a field of this resource (names are case-sensitive): did you mean %q?", name)})}
					}
				}
			}
			child = ft
		}
		if err := scanValue(dec, child, at); err != nil {
			return err
		}
	}
	_, err := dec.Token() // }
	return err
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// plain is t without pointers, or nil when encoding/json hands the value to
// a method of its own (time.Time, json.RawMessage...) or to an interface:
// then its names are not known here.
func plain(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	p := reflect.PointerTo(t)
	if p.Implements(unmarshalerType) || (t.Kind() != reflect.Map && p.Implements(textUnmarshalerType)) {
		return nil
	}
	return t
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// jsonFields maps the JSON names of a struct's fields, as encoding/json
// sees them (embedded structs without a name spread their fields), to
// their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	var add func(t reflect.Type, depth int)
	depth := map[string]int{}
	add = func(t reflect.Type, d int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					add(ft, d+1)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if prev, ok := depth[name]; !ok || d < prev {
				m[name], depth[name] = ft, d
			}
		}
	}
	add(t, 0)
	fieldCache.Store(t, m)
	return m
}

func jsonError(err error, limit int64) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var big *http.MaxBytesError
	switch {
	case errors.As(err, &big):
		return &requestError{status: http.StatusRequestEntityTooLarge, slug: "too-large", detail: fmt.Sprintf("the body is larger than %d bytes", limit)}
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty; a JSON object is expected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the body ends in the middle of a JSON value")
	case errors.As(err, &syn):
		return badRequest(fmt.Sprintf("the body is not valid JSON (at byte %d): %s", syn.Offset, syn.Error()))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		if outOfRange(typ) {
			// A whole number, where one is expected, that no integer of the
			// field holds: a refused value, not a mistake of type.
			return &fault.Error{Kind: fault.Invalid, Detail: "a number is out of range",
				Fields: []fault.FieldError{{Field: field, Code: "out_of_range", Message: fmt.Sprintf("is out of range (%s)", strings.TrimPrefix(typ.Value, "number "))}}}
		}
		return badRequest("a field has the wrong type", fault.FieldError{Field: field, Code: "wrong_type", Message: fmt.Sprintf("expects %s, not a JSON %s", typ.Type.String(), typ.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest("the body has a field this API does not know", fault.FieldError{Field: name, Code: "unknown_field", Message: "is not a field of this resource"})
	default:
		return badRequest("the body cannot be read as JSON: " + err.Error())
	}
}

// outOfRange tells whether a type error is a whole number, written without
// a fraction or an exponent, too large (or small) for an integer field.
func outOfRange(typ *json.UnmarshalTypeError) bool {
	lit, ok := strings.CutPrefix(typ.Value, "number ")
	if !ok || typ.Type == nil {
		return false
	}
	switch typ.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return false
	}
	lit = strings.TrimPrefix(lit, "-")
	return lit != "" && !strings.ContainsFunc(lit, func(r rune) bool { return r < '0' || r > '9' })
}

// dryRun reads the query parameter dry_run (false when absent). A value
// that is not a boolean answers 400 naming it, and ok is false.
func dryRun(c *gin.Context) (dry, ok bool) {
	v, given := c.GetQuery("dry_run")
	if !given {
		return false, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		fail(c, badRequest("dry_run must be true or false", fault.FieldError{Field: "dry_run", Code: "bad_format", Message: "must be true or false"}))
		return false, false
	}
	return b, true
}
