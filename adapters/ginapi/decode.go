package ginapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
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
		return badRequest("a field has the wrong type", patron.FieldError{Field: field, Code: "wrong_type", Message: fmt.Sprintf("expects %s, not a JSON %s", typ.Type.String(), typ.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest("the body has a field this API does not know", patron.FieldError{Field: name, Code: "unknown_field", Message: "is not a field of this resource"})
	default:
		return badRequest("the body cannot be read as JSON: " + err.Error())
	}
}
