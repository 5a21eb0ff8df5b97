package ginapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
)

// ProblemTypePrefix starts the type URI of every problem this API answers
// with; the rest is a stable slug (validation, not-found...).
const ProblemTypePrefix = "urn:patronkit:problem:"

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string             `json:"type"`
	Title     string             `json:"title"`
	Status    int                `json:"status"`
	Detail    string             `json:"detail,omitempty"`
	Instance  string             `json:"instance,omitempty"`
	RequestID string             `json:"request_id,omitempty"`
	Errors    []fault.FieldError `json:"errors,omitempty"`
	Reasons   []string           `json:"reasons,omitempty"`
	// Blocks are the patron's blocks among the reasons of a refusal.
	Blocks []circulation.Block `json:"blocks,omitempty"`
	// Causes are Reasons one for one, each with its stable code and named
	// values where the service gives them.
	Causes []fault.Reason `json:"causes,omitempty"`
}

// problem writes a problem response and stops the handler chain.
func problem(c *gin.Context, status int, slug, detail string) {
	writeProblem(c, Problem{Type: ProblemTypePrefix + slug, Title: http.StatusText(status), Status: status, Detail: detail})
}

func writeProblem(c *gin.Context, p Problem) {
	p.Instance = c.Request.URL.Path
	p.RequestID = c.GetString(requestIDKey)
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(p.Status, p)
}

// fail answers with the problem that err calls for. Errors the patron
// service classified map to 4xx; anything else is logged and answered 500
// without detail.
func fail(c *gin.Context, err error) {
	var reqErr *requestError
	if errors.As(err, &reqErr) {
		writeProblem(c, Problem{Type: ProblemTypePrefix + reqErr.slug, Title: http.StatusText(reqErr.status), Status: reqErr.status, Detail: reqErr.detail, Errors: reqErr.fields})
		return
	}
	e, ok := fault.As(err)
	if !ok {
		_ = c.Error(err)
		problem(c, http.StatusInternalServerError, "internal", "the server failed; the request id identifies it in the logs")
		return
	}
	p := Problem{Detail: e.Detail, Errors: e.Fields, Reasons: e.Reasons, Causes: e.Why()}
	if be := (*circulation.BlockedError)(nil); errors.As(err, &be) {
		p.Blocks = be.Blocks
	}
	switch e.Kind {
	case fault.Invalid:
		p.Status, p.Type = http.StatusUnprocessableEntity, "validation"
	case fault.NotFound:
		p.Status, p.Type = http.StatusNotFound, "not-found"
	case fault.Conflict:
		p.Status, p.Type = http.StatusConflict, "conflict"
	case fault.Stale:
		p.Status, p.Type = http.StatusPreconditionFailed, "stale-version"
	case fault.Refused:
		p.Status, p.Type = http.StatusConflict, "refused"
	case fault.Locked:
		p.Status, p.Type = http.StatusTooManyRequests, "locked"
		c.Header("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())))
	case fault.Unauthenticated:
		p.Status, p.Type = http.StatusUnauthorized, "unauthenticated"
	case fault.Forbidden:
		p.Status, p.Type = http.StatusForbidden, "forbidden"
	default:
		p.Status, p.Type = http.StatusInternalServerError, "internal"
	}
	p.Type = ProblemTypePrefix + p.Type
	p.Title = http.StatusText(p.Status)
	writeProblem(c, p)
}

// requestError is a client mistake found by the adapter itself (a body
// that is not JSON, a bad query parameter).
type requestError struct {
	status int
	slug   string
	detail string
	fields []fault.FieldError
}

func (e *requestError) Error() string { return e.detail }

func badRequest(detail string, fields ...fault.FieldError) error {
	return &requestError{status: http.StatusBadRequest, slug: "bad-request", detail: detail, fields: fields}
}
