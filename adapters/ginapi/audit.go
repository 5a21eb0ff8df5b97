package ginapi

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/privacy"
)

// auditRoutes registers the faces of the audit trail: its search (and CSV
// export) and verification for auditors, and a patron's own access log.
func (a *api) auditRoutes(g *routes) {
	g.GET("/audit/entries", a.searchAudit)
	g.GET("/audit/verify", a.verifyAudit)
	g.GET("/me/access-log", a.myAccessLog)
}

// auditEntry is an entry of the trail as GET /audit/entries answers it.
type auditEntry struct {
	Seq          int64     `json:"seq"`
	Date         time.Time `json:"date"`
	ActorID      string    `json:"actor_id"`
	ActorKind    string    `json:"actor_kind"`
	ActorRoles   []string  `json:"actor_roles"`
	ActorLibrary string    `json:"actor_library"`
	Action       string    `json:"action"`
	Subject      string    `json:"subject"`
	What         string    `json:"what"`
	Details      string    `json:"details"`
	Via          string    `json:"via"`
	RequestID    string    `json:"request_id"`
	Hash         string    `json:"hash"`
}

// auditPage is one page of a search of the trail.
type auditPage struct {
	Entries []auditEntry `json:"entries"`
	More    bool         `json:"more"`
	// NextCursor and Next are the cursor of the next page, and the
	// path and query that ask for it; absent on the last page.
	NextCursor int64  `json:"next_cursor,omitempty"`
	Next       string `json:"next,omitempty"`
}

// auditLimits are the longest filter values, in characters: what the
// trail's columns hold.
var auditLimits = map[string]int{"subject": 255, "actor": 255, "action": 16, "via": 255}

// auditQuery reads the filters and the page of a search of the trail from
// the query string: text that no entry can hold, a date or number that is
// not one, answers 400 naming the parameter; a value out of range 422.
func (a *api) auditQuery(c *gin.Context) (privacy.Query, error) {
	var q privacy.Query
	for _, name := range []string{"subject", "actor", "action", "via"} {
		v := c.Query(name)
		if !patron.Findable(v) {
			return q, badRequest(name+" is not text an entry holds", fault.FieldError{Field: name, Code: "bad_format", Message: "holds a control character or is not UTF-8 text"})
		}
		if n := auditLimits[name]; utf8.RuneCountInString(v) > n {
			msg := fmt.Sprintf("must be at most %d characters", n)
			return q, &fault.Error{Kind: fault.Invalid, Detail: name + " is too long", Fields: []fault.FieldError{{Field: name, Code: "too_long", Message: msg}}}
		}
		switch name {
		case "subject":
			q.Subject = v
		case "actor":
			q.Actor = v
		case "action":
			q.Action = v
		case "via":
			q.Via = v
		}
	}
	if q.Subject != "" {
		// The trail spells a user as their record does: a user who
		// exists is found whatever the case the auditor types.
		if _, spelled, err := a.kit.Patrons.ID(a.ctx(c), a.who(c).Institution, q.Subject); err == nil {
			q.Subject = spelled
		}
	}
	var err error
	if q.From, err = timeParam(c, "from", false); err != nil {
		return q, err
	}
	if q.To, err = timeParam(c, "to", true); err != nil {
		return q, err
	}
	if q.Before, err = wholeParam(c, "cursor", 1, math.MaxInt64); err != nil {
		return q, err
	}
	limit, err := wholeParam(c, "limit", 1, privacy.MaxSearchLimit)
	if err != nil {
		return q, err
	}
	q.Limit = int(limit)
	return q, q.Validate()
}

// timeParam reads a date-time (RFC 3339) or a date (YYYY-MM-DD, in UTC)
// query parameter; zero when absent. A date read as the end of a range
// (end) stands for the whole day: the start of the next one.
func timeParam(c *gin.Context, name string, end bool) (time.Time, error) {
	s := c.Query(name)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		msg := "must be a date (2026-09-01) or a date-time (2026-09-01T09:00:00Z)"
		return time.Time{}, badRequest(name+" "+msg, fault.FieldError{Field: name, Code: "bad_format", Message: msg})
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// wholeParam reads a whole-number query parameter; 0 when absent. One
// that is not a whole number answers 400, one below min or above max 422,
// each naming it.
func wholeParam(c *gin.Context, name string, min, max int64) (int64, error) {
	s := c.Query(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && !strings.Contains(err.Error(), "out of range") {
		msg := "must be a whole number"
		return 0, badRequest(name+" "+msg, fault.FieldError{Field: name, Code: "bad_format", Message: msg})
	}
	if err != nil || n < min || n > max {
		msg := fmt.Sprintf("must be from %d to %d", min, max)
		return 0, &fault.Error{Kind: fault.Invalid, Detail: name + " is out of range", Fields: []fault.FieldError{{Field: name, Code: "out_of_range", Message: msg}}}
	}
	return n, nil
}

// wantsCSV tells whether a search is asked for as CSV: format=csv, or
// without a format an Accept header that names text/csv.
func wantsCSV(c *gin.Context) (bool, error) {
	f, err := choice(c, "format", "json", "csv")
	if err != nil {
		return false, err
	}
	if c.Query("format") != "" {
		return f == "csv", nil
	}
	for part := range strings.SplitSeq(c.GetHeader("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/csv" {
			return true, nil
		}
	}
	return false, nil
}

func (a *api) searchAudit(c *gin.Context) {
	csv, err := wantsCSV(c)
	if err != nil {
		fail(c, err)
		return
	}
	q, err := a.auditQuery(c)
	if err != nil {
		fail(c, err)
		return
	}
	inst := a.who(c).Institution
	if csv {
		a.exportAudit(c, inst, q)
		return
	}
	p, err := a.kit.Privacy.Search(a.ctx(c), inst, q)
	if err != nil {
		fail(c, err)
		return
	}
	out := auditPage{Entries: make([]auditEntry, 0, len(p.Entries)), More: p.More, NextCursor: p.Next}
	for _, e := range p.Entries {
		out.Entries = append(out.Entries, auditEntry{Seq: e.Seq, Date: e.Time(), ActorID: e.ActorID, ActorKind: e.ActorKind,
			ActorRoles: splitList(e.ActorRoles), ActorLibrary: e.ActorLibrary, Action: e.Action, Subject: e.Subject, What: e.What,
			Details: e.Details, Via: e.Via, RequestID: e.RequestID, Hash: e.Hash})
	}
	if p.More {
		out.Next = a.nextPage(c, p.Next)
		c.Header("Link", "<"+out.Next+`>; rel="next"`)
	}
	c.JSON(http.StatusOK, out)
}

// nextPage is the request's path and query with cursor set to next.
func (a *api) nextPage(c *gin.Context, next int64) string {
	v := c.Request.URL.Query()
	v.Set("cursor", strconv.FormatInt(next, 10))
	return c.Request.URL.Path + "?" + v.Encode()
}

// exportAudit answers every entry the search selects as CSV, once the
// export is on the trail itself: an export by the principal of the
// subject searched for (none when the search names no user), the filters
// in its details. The entries are read and written a batch at a time; a
// failure once the answer has started is logged, and the CSV ends there.
func (a *api) exportAudit(c *gin.Context, inst string, q privacy.Query) {
	filter := map[string]string{}
	for k, v := range map[string]string{"subject": q.Subject, "actor": q.Actor, "action": q.Action, "via": q.Via} {
		if v != "" {
			filter[k] = v
		}
	}
	if !q.From.IsZero() {
		filter["from"] = q.From.UTC().Format(time.RFC3339Nano)
	}
	if !q.To.IsZero() {
		filter["to"] = q.To.UTC().Format(time.RFC3339Nano)
	}
	if q.Before > 0 {
		filter["cursor"] = strconv.FormatInt(q.Before, 10)
	}
	details, err := json.Marshal(filter)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := a.ctx(c)
	if err := a.kit.Patrons.RecordAudit(ctx, inst, patron.AuditExport, q.Subject, "audit trail", string(details)); err != nil {
		fail(c, err)
		return
	}
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": "audit-trail-" + url.PathEscape(inst) + ".csv"})
	if disposition == "" {
		disposition = "attachment"
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", disposition)
	c.Status(http.StatusOK)
	if _, err := a.kit.Privacy.WriteCSV(ctx, c.Writer, inst, q); err != nil {
		_ = c.Error(fmt.Errorf("ginapi: exporting the audit trail: %w", err))
	}
}

// verifyAnswer is what GET /audit/verify answers.
type verifyAnswer struct {
	OK          bool   `json:"ok"`
	Institution string `json:"institution"`
	// The first break, when the trail is not whole.
	Seq    int64  `json:"seq,omitempty"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func (a *api) verifyAudit(c *gin.Context) {
	inst := a.who(c).Institution
	b, err := a.kit.Privacy.Verify(a.ctx(c), inst)
	if err != nil {
		fail(c, err)
		return
	}
	out := verifyAnswer{OK: b == nil, Institution: inst}
	if b != nil {
		out.Seq, out.Reason, out.Detail = b.Seq, b.Reason, b.Detail
	}
	c.JSON(http.StatusOK, out)
}

func (a *api) myAccessLog(c *gin.Context) {
	before, err := wholeParam(c, "cursor", 1, math.MaxInt64)
	if err != nil {
		fail(c, err)
		return
	}
	limit, err := wholeParam(c, "limit", 1, privacy.MaxSearchLimit)
	if err != nil {
		fail(c, err)
		return
	}
	inst := a.who(c).Institution
	_, spelled, err := a.kit.Patrons.ID(a.ctx(c), inst, a.self(c))
	if err != nil {
		fail(c, err)
		return
	}
	p, err := a.kit.Privacy.AccessLog(a.ctx(c), inst, spelled, before, int(limit))
	if err != nil {
		fail(c, err)
		return
	}
	out := accessLogAnswer{AccessLogPage: *p}
	if p.More {
		out.Next = a.nextPage(c, p.Next)
		c.Header("Link", "<"+out.Next+`>; rel="next"`)
	}
	c.JSON(http.StatusOK, out)
}

// accessLogAnswer is a page of the patron's access log, with the path and
// query of the next page.
type accessLogAnswer struct {
	privacy.AccessLogPage
	Next string `json:"next,omitempty"`
}

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}
