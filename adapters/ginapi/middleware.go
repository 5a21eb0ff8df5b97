package ginapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-ID"

var goodRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID keeps a well-formed incoming request id or makes one, and
// returns it in the response header.
func (a *api) requestID(c *gin.Context) {
	id := c.GetHeader(RequestIDHeader)
	if !goodRequestID.MatchString(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(requestIDKey, id)
	c.Header(RequestIDHeader, id)
	c.Next()
}

// logRequests writes one line per request: no personal data beyond the
// principal's primary_id.
func (a *api) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	who := a.who(c)
	route := c.FullPath()
	if c.GetBool(unmatchedKey) {
		route = "" // a fallback's pattern names no route of the API
	}
	attrs := []any{
		"request_id", c.GetString(requestIDKey),
		"method", c.Request.Method,
		"route", route,
		"status", c.Writer.Status(),
		"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
		"institution", who.Institution,
		"principal", who.ID,
	}
	if len(c.Errors) > 0 {
		attrs = append(attrs, "error", c.Errors.Last().Error())
	}
	level := slog.LevelInfo
	if c.Writer.Status() >= 500 {
		level = slog.LevelError
	}
	a.opts.Logger.Log(c.Request.Context(), level, "patronkit request", attrs...)
}

// recoverProblems turns a panic into a plain 500 problem: no stack trace
// reaches the client; the log has it.
func (a *api) recoverProblems(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			a.opts.Logger.Error("patronkit handler panicked", "request_id", c.GetString(requestIDKey), "panic", r)
			problem(c, http.StatusInternalServerError, "internal", "the server failed; the request id identifies it in the logs")
		}
	}()
	c.Next()
}

// authenticate resolves the principal through the host's resolver.
func (a *api) authenticate(c *gin.Context) {
	who, err := a.opts.Principal(c)
	switch e, isPatronErr := fault.As(err); {
	case err == nil && (who.Institution == "" || who.ID == ""), errors.Is(err, ErrNotSignedIn):
		problem(c, http.StatusUnauthorized, "unauthenticated", "sign in first")
		return
	case isPatronErr && (e.Kind == fault.Locked || e.Kind == fault.Unauthenticated):
		fail(c, err)
		return
	case err != nil:
		fail(c, fmt.Errorf("ginapi: principal resolver: %w", err))
		return
	}
	c.Set(whoKey, who)
	c.Next()
}

// authorize asks the enforcer whether the principal may do the route's
// action (rt, from the route table) in the institution: a role held in
// any library counts here; the routes that concern one library ask again
// there (allowIn). It answers 403 naming the action when not.
func (a *api) authorize(rt Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Set(routeKey, rt)
		ok, err := a.decide(c, "")
		if err != nil {
			fail(c, err)
			return
		}
		if !ok {
			problem(c, http.StatusForbidden, "forbidden", "your roles do not allow "+rt.Action+" ("+c.Request.Method+" "+a.routePath(c)+")")
			return
		}
		c.Next()
	}
}

// checkPathText answers 404, before any lookup, a path whose parameter
// no record can hold (one that breaks the text rule, see
// patron.Findable): it names nothing, and PostgreSQL would refuse even to
// compare it. The services say the same of such keys; this answers every
// route at once, whatever it looks up.
func (a *api) checkPathText(c *gin.Context) {
	for _, p := range c.Params {
		if !patron.Findable(p.Value) {
			problem(c, http.StatusNotFound, "not-found", "the path names nothing: its "+p.Key+" holds a control character or is not UTF-8 text")
			return
		}
	}
	c.Next()
}

func actorContext(ctx context.Context, who Who) context.Context {
	return patron.WithActor(ctx, patron.Actor{Institution: who.Institution, ID: who.ID, Patron: who.Patron})
}

// originContext names the request's route and id as the way in of the
// calls made with ctx, for the audit trail, and for a staff principal
// the roles and library of the last decision that let the request
// through (see decide): the roles they hold in that library, or all of
// them with their libraries when the route concerns the whole
// institution, and the library the roles allowed it in.
func originContext(ctx context.Context, c *gin.Context) context.Context {
	o := patron.Origin{Via: "http " + c.Request.Method + " " + c.FullPath(), RequestID: c.GetString(requestIDKey)}
	if v, ok := c.Get(verdictKey); ok {
		v := v.(casbinmodel.Verdict)
		o.Roles, o.Library = v.Roles, v.Library
	}
	return patron.WithOrigin(ctx, o)
}

// allowIn asks the enforcer again, for the route's action in library:
// the routes that change what belongs to one library (lending its items,
// renewing their loans, declaring them lost, editing them or the library
// itself) are allowed only to roles held in that library or in all ("*").
// The authorize step before the handler let the request through on a
// role held in any library. It answers 403 and returns false when the
// roles do not hold there.
func (a *api) allowIn(c *gin.Context, library string) bool {
	ok, err := a.permits(c, library)
	if err != nil {
		fail(c, err)
		return false
	}
	if !ok {
		problem(c, http.StatusForbidden, "forbidden", "your roles do not allow "+a.action(c)+" ("+c.Request.Method+" "+a.routePath(c)+") in library "+library)
		return false
	}
	return true
}

// allowInAny is allowIn for an action that concerns several libraries (a
// request: its pickup library and its item's): the roles must allow the
// route's action in one of them. With none named, only roles held in
// every library ("*") do. It answers 403 naming them and returns false
// otherwise.
func (a *api) allowInAny(c *gin.Context, libraries []string) bool {
	if len(libraries) == 0 {
		return a.allowIn(c, "*")
	}
	for _, lib := range libraries {
		ok, err := a.permits(c, lib)
		if err != nil {
			fail(c, err)
			return false
		}
		if ok {
			return true
		}
	}
	problem(c, http.StatusForbidden, "forbidden", "your roles do not allow "+a.action(c)+" ("+c.Request.Method+" "+a.routePath(c)+") in library "+strings.Join(libraries, " or "))
	return false
}

// permits tells whether the principal's roles allow the route's action in
// library ("" for any library: authorize asked that already).
func (a *api) permits(c *gin.Context, library string) (bool, error) {
	if library == "" {
		return true, nil
	}
	return a.decide(c, library)
}

// decide asks the enforcer whether the principal may do the route's
// action in library ("" for the institution: a role held in any library
// counts), on their own record or account or another's as the route says
// (Route.Whose).
// A staff principal's verdict, when it allows, is kept for the audit
// trail (originContext).
func (a *api) decide(c *gin.Context, library string) (bool, error) {
	v, err := a.verdict(c, a.action(c), library, a.own(c))
	if err == nil && v.Allowed && !a.who(c).Patron {
		c.Set(verdictKey, v)
	}
	return v.Allowed, err
}

// ask asks the enforcer whether the principal may do action in library,
// on their own record (own) or another's.
func (a *api) ask(c *gin.Context, action, library string, own bool) (bool, error) {
	v, err := a.verdict(c, action, library, own)
	return v.Allowed, err
}

// verdict is ask's decision, with where it was allowed and the roles it
// read.
func (a *api) verdict(c *gin.Context, action, library string, own bool) (casbinmodel.Verdict, error) {
	who := a.who(c)
	return a.kit.Access.Decide(c.Request.Context(), casbinmodel.Decision{
		Institution: who.Institution,
		Subject:     who.ID,
		Patron:      who.Patron,
		Library:     library,
		Action:      action,
		Own:         own,
	})
}

// route is the table's entry of the request's route (set by authorize).
func (a *api) route(c *gin.Context) Route {
	rt, _ := c.Get(routeKey)
	r, _ := rt.(Route)
	return r
}

// action is the action of the request's route.
func (a *api) action(c *gin.Context) string { return a.route(c).Action }

// own tells whether the request's route acts on the principal's own
// record or account: the /me routes always; a route naming a user when
// its primary_id is the principal's (in any case, as primary ids match).
func (a *api) own(c *gin.Context) bool {
	switch a.route(c).Whose {
	case WhoseSelf:
		return true
	case WhoseNamed:
		return strings.EqualFold(c.Param("primary_id"), a.who(c).ID)
	}
	return false
}

// routePath is the request's path below the mount.
func (a *api) routePath(c *gin.Context) string {
	return strings.TrimPrefix(c.Request.URL.Path, strings.TrimSuffix(a.base, "/"))
}
