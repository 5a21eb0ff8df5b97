package almaapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// wantsXML tells whether the answer is XML: format=xml or json first,
// then Accept (the first of application/json and application/xml it
// names), XML when neither says, as Alma.
func wantsXML(c *gin.Context) bool {
	switch strings.ToLower(strings.TrimSpace(c.Query("format"))) {
	case "json":
		return false
	case "xml":
		return true
	}
	acc := strings.ToLower(c.GetHeader("Accept"))
	j, x := strings.Index(acc, "json"), strings.Index(acc, "xml")
	switch {
	case j >= 0 && (x < 0 || j < x):
		return false
	}
	return true
}

// writeXML answers an XML body that write writes after the declaration.
func (a *api) writeXML(c *gin.Context, status int, write func(w io.Writer) error) {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	if err := write(&b); err != nil {
		a.fail(c, err)
		return
	}
	c.Data(status, "application/xml;charset=UTF-8", b.Bytes())
}

// writeJSON answers a JSON body.
func (a *api) writeJSON(c *gin.Context, status int, body []byte) {
	c.Data(status, "application/json;charset=UTF-8", body)
}

// answer answers v, a value of Alma's shape, as XML (v marshalled by
// encoding/xml) or JSON.
func (a *api) answer(c *gin.Context, status int, v any) {
	if wantsXML(c) {
		a.writeXML(c, status, func(w io.Writer) error {
			enc := xml.NewEncoder(w)
			enc.Indent("", "  ")
			return enc.Encode(v)
		})
		return
	}
	out, err := json.Marshal(v)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.writeJSON(c, status, out)
}

// body reads the request body (up to MaxBodyBytes), and whether it is
// XML: by Content-Type, or by its first character when none is given.
func (a *api) body(c *gin.Context) ([]byte, bool, error) {
	return a.bodyUpTo(c, a.opts.MaxBodyBytes)
}

// bodyUpTo is body with a limit of its own.
func (a *api) bodyUpTo(c *gin.Context, limit int64) ([]byte, bool, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, false, &requestError{codeInvalidXML, "the body is larger than the API takes"}
		}
		return nil, false, err
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, false, errEmptyBody
	}
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			return b, false, nil
		case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
			return b, true, nil
		}
	}
	return b, trimmed[0] == '<', nil
}

// errEmptyBody is body's error for a body with nothing in it.
var errEmptyBody = &requestError{codeInvalidXML, "No valid XML was given: the body is empty."}

// decode reads the body into v, as XML or JSON (see body). A body that
// cannot be read answers Alma's error naming what it should be (an
// item_loan...) and returns false. When optional, an empty body leaves v
// as it is.
func (a *api) decode(c *gin.Context, v any, what string, optional bool) bool {
	body, asXML, err := a.body(c)
	if err == errEmptyBody && optional {
		return true
	}
	if err != nil {
		a.fail(c, err)
		return false
	}
	if asXML {
		err = xml.Unmarshal(body, v)
	} else {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		a.fail(c, &requestError{codeInvalidXML, "No valid " + what + " was given: " + err.Error()})
		return false
	}
	return true
}

func pathEscape(s string) string { return url.PathEscape(s) }
