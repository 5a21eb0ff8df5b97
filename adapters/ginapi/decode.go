package ginapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/patron"
)

// decodeJSON reads a request body into v strictly: JSON only, one value,
// no unknown fields, no more than the size limit. Each refusal says why.
func decodeJSON(c *gin.Context, limit int64, v any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &requestError{status: http.StatusUnsupportedMediaType, slug: "unsupported-media-type", detail: "the body must be application/json"}
		}
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	dec := json.NewDecoder(body)
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
			return &patron.Error{Kind: patron.Invalid, Detail: "a number is out of range",
				Fields: []patron.FieldError{{Field: field, Code: "out_of_range", Message: fmt.Sprintf("is out of range (%s)", strings.TrimPrefix(typ.Value, "number "))}}}
		}
		return badRequest("a field has the wrong type", patron.FieldError{Field: field, Code: "wrong_type", Message: fmt.Sprintf("expects %s, not a JSON %s", typ.Type.String(), typ.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest("the body has a field this API does not know", patron.FieldError{Field: name, Code: "unknown_field", Message: "is not a field of this resource"})
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
